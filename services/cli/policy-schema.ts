import { writeFileSync } from "node:fs";
import { z } from "zod";
import { AgentProfile, PolicyFile, ResponseRule } from "../../schemas/policy.js";

/**
 * The JSON Schema of a policy file, for editors (`# yaml-language-server: $schema=…`).
 * Generated from the zod schema in schemas/policy.ts, never written by hand: `npm run schema`
 * rewrites the checked-in schemas/policy.schema.json, and a test fails when it drifts.
 */

export const POLICY_SCHEMA_ID = "urn:driftwatch:policy:v1";

/**
 * Refinements (`.refine`) have no JSON Schema form and zod leaves them out without a word, so
 * each one in the policy schema is spelled out here. Generation fails on one that is not.
 */
const REFINEMENTS = new Map<z.core.$ZodType, z.core.JSONSchema.BaseSchema>([
  [
    AgentProfile.shape.match,
    {
      description: "a profile must match at least one agent id or SPIFFE id",
      anyOf: [
        { required: ["agentIds"], properties: { agentIds: { type: "array", minItems: 1 } } },
        { required: ["spiffeIds"], properties: { spiffeIds: { type: "array", minItems: 1 } } },
      ],
    },
  ],
  [
    ResponseRule,
    {
      description: "approval applies only to action ask_human",
      if: { required: ["action"], properties: { action: { not: { const: "ask_human" } } } },
      // biome-ignore lint/suspicious/noThenProperty: `then` is JSON Schema's keyword
      then: { properties: { approval: false } },
    },
  ],
]);

export function policyJsonSchema(): z.core.JSONSchema.BaseSchema {
  const { $schema, ...body } = z.toJSONSchema(PolicyFile, {
    target: "draft-2020-12",
    // what a file may say, not what parsing yields: fields with defaults are optional
    io: "input",
    // a type with no JSON Schema form (z.custom, …) accepts anything; the parser still checks it
    unrepresentable: "any",
    override: ({ zodSchema, jsonSchema, path }) => {
      if (!(zodSchema._zod.def.checks ?? []).some((c) => c._zod.def.check === "custom")) return;
      const extra = REFINEMENTS.get(zodSchema);
      if (!extra) {
        throw new Error(
          `policy schema: the refinement at ${path.join("/") || "the root"} has no JSON Schema form; add one to REFINEMENTS in services/cli/policy-schema.ts`,
        );
      }
      Object.assign(jsonSchema, extra);
    },
  });
  return {
    $schema,
    $id: POLICY_SCHEMA_ID,
    title: "Driftwatch policy file",
    description:
      "One Driftwatch policy file (YAML, apiVersion driftwatch/v1): agent profiles, rule settings, redaction and response rules. A policy folder is the union of its files. Generated from schemas/policy.ts by `npm run schema`; do not edit.",
    ...body,
  };
}

/** The schema as written to schemas/policy.schema.json (before `biome format`). */
export function policySchemaText(): string {
  return `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
}

/** `driftwatch policy schema [--out <file>]`. */
export function writePolicySchema(out: string | undefined): void {
  const text = policySchemaText();
  if (!out) {
    process.stdout.write(text);
    return;
  }
  writeFileSync(out, text);
  process.stderr.write(`wrote ${out}\n`);
}
