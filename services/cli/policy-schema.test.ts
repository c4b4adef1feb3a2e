import { readdirSync, readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parsePolicyText } from "../detector/policy.js";
import { buildCli } from "./main.js";
import { POLICY_SCHEMA_ID, policyJsonSchema } from "./policy-schema.js";

const root = new URL("../../", import.meta.url);
const policiesDir = new URL("policies/", root);
const schemaFile = new URL("schemas/policy.schema.json", root);
const exampleFiles = readdirSync(policiesDir)
  .filter((f) => /\.ya?ml$/i.test(f))
  .sort();

function validator() {
  // strict: unknown keywords, ambiguous types and the like are errors, not warnings
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  return ajv.compile(policyJsonSchema());
}

/** A valid policy file to break one field at a time. */
const validPolicy = () => ({
  apiVersion: "driftwatch/v1",
  profiles: [
    {
      id: "billing-agent",
      match: { agentIds: ["billing-agent"] },
      tools: [{ name: "invoices.read", effect: "read" }],
      dataCeiling: "confidential",
    },
  ],
  rules: [{ id: "scope.tool", severity: "high", mode: "enforce" }],
  redaction: { argumentKeys: ["password"] },
  responses: {
    rules: [
      { id: "ask-finance", when: { agents: ["finance-*"], minSeverity: "high" }, action: "ask_human", approval: { timeoutMs: 60000 } },
      { id: "revoke-rest", action: "revoke" },
    ],
  },
});

describe("policy JSON Schema", () => {
  it("the checked-in schemas/policy.schema.json is what the zod schema generates", () => {
    const checkedIn = JSON.parse(readFileSync(schemaFile, "utf8")) as unknown;
    // compared re-serialised (key order included), not as text: the file is Biome-formatted
    const pretty = (value: unknown) => JSON.stringify(value, null, 2);
    expect(pretty(checkedIn), "schemas/policy.schema.json is out of date: run `npm run schema`").toBe(pretty(policyJsonSchema()));
  });

  it("is a valid draft 2020-12 schema with an id, a title and a description", () => {
    const schema = policyJsonSchema();
    const ajv = new Ajv2020({ strict: true });
    expect(ajv.validateSchema(schema), ajv.errorsText(ajv.errors)).toBe(true);
    expect(schema).toMatchObject({
      $schema: "https://json-schema.org/draft/2020-12/schema",
      $id: POLICY_SCHEMA_ID,
      title: expect.any(String),
      description: expect.any(String),
    });
    expect(validator).not.toThrow();
  });

  it("`driftwatch policy schema` prints it", async () => {
    let out = "";
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      out += chunk;
      return true;
    }) as typeof process.stdout.write;
    try {
      await buildCli().parseAsync(["node", "driftwatch", "policy", "schema"]);
    } finally {
      process.stdout.write = write;
    }
    expect(JSON.parse(out)).toEqual(policyJsonSchema());
  });

  it("finds the example policies", () => {
    expect(exampleFiles.length).toBeGreaterThan(0);
  });

  it.each(exampleFiles)("policies/%s validates against it and names it on its first line", (file) => {
    const text = readFileSync(new URL(file, policiesDir), "utf8");
    expect(text.split("\n")[0]).toBe("# yaml-language-server: $schema=../schemas/policy.schema.json");
    expect(parsePolicyText(text, file).problems).toEqual([]);
    const validate = validator();
    expect(validate(parse(text)), JSON.stringify(validate.errors)).toBe(true);
  });

  it("accepts a minimal file (fields with defaults are optional)", () => {
    const validate = validator();
    expect(validate({ apiVersion: "driftwatch/v1" }), JSON.stringify(validate.errors)).toBe(true);
    expect(validate(validPolicy()), JSON.stringify(validate.errors)).toBe(true);
  });

  const broken: [string, (p: ReturnType<typeof validPolicy>) => unknown][] = [
    ["an unknown data classification", (p) => ({ ...p, profiles: [{ ...p.profiles[0], dataCeiling: "topsecret" }] })],
    ["an unknown top-level key", (p) => ({ ...p, profile: [] })],
    ["an unknown key in a profile", (p) => ({ ...p, profiles: [{ ...p.profiles[0], tool: [] }] })],
    ["a tool without a name", (p) => ({ ...p, profiles: [{ ...p.profiles[0], tools: [{ effect: "read" }] }] })],
    ["a tool with an empty name", (p) => ({ ...p, profiles: [{ ...p.profiles[0], tools: [{ name: "" }] }] })],
    ["an unknown tool effect", (p) => ({ ...p, profiles: [{ ...p.profiles[0], tools: [{ name: "x", effect: "delete" }] }] })],
    ["a profile that matches no agent", (p) => ({ ...p, profiles: [{ ...p.profiles[0], match: {} }] })],
    ["a profile whose id lists are empty", (p) => ({ ...p, profiles: [{ ...p.profiles[0], match: { agentIds: [], spiffeIds: [] } }] })],
    ["an unknown rule mode", (p) => ({ ...p, rules: [{ id: "scope.tool", mode: "block" }] })],
    ["an unknown response action", (p) => ({ ...p, responses: { rules: [{ id: "r", action: "explode" }] } })],
    [
      "an approval on a response that asks no one",
      (p) => ({ ...p, responses: { rules: [{ id: "r", action: "revoke", approval: { timeoutMs: 1000 } }] } }),
    ],
    ["another apiVersion", (p) => ({ ...p, apiVersion: "driftwatch/v2" })],
    ["no apiVersion", ({ apiVersion: _, ...p }) => p],
  ];
  it.each(broken)("rejects %s, as the zod schema does", (_, breakIt) => {
    const policy = breakIt(validPolicy());
    expect(validator()(policy)).toBe(false);
    expect(parsePolicyText(JSON.stringify(policy), "broken.yaml").problems).not.toEqual([]);
  });
});
