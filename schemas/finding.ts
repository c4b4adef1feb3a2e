import { z } from "zod";

export const Severity = z.enum(["info", "low", "medium", "high", "critical"]);
export type Severity = z.infer<typeof Severity>;
export const SEVERITY_RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

export const RuleMode = z.enum(["enforce", "alert", "shadow"]);
export type RuleMode = z.infer<typeof RuleMode>;

/**
 * `context_change`: the task's scope, objective or environment changed while it ran;
 * `credential_reuse`: a credential bound to one task was used on another;
 * `intent`: a sensitive action the user's request never asked for;
 * `identity`: a span speaks for an agent its sender's credential does not name.
 */
export const FindingKind = z.enum([
  "out_of_scope",
  "flow",
  "provenance",
  "anomaly",
  "post_revocation",
  "telemetry_gap",
  "context_change",
  "credential_reuse",
  "intent",
  "identity",
]);
export type FindingKind = z.infer<typeof FindingKind>;

/** One flagged step. On `agent.findings`, keyed by task id. Its id is the same however often it is produced. */
export const Finding = z.object({
  id: z.string().min(1),
  taskId: z.string().min(1),
  agentId: z.string().optional(),
  stepIndex: z.number().int().nonnegative(),
  traceId: z.string(),
  spanId: z.string(),
  ruleId: z.string().min(1),
  kind: FindingKind,
  severity: Severity,
  mode: RuleMode,
  confidence: z.number().min(0).max(1),
  explanation: z.string().min(1),
  evidence: z.object({
    observed: z.unknown(),
    expected: z.unknown(),
  }),
  tags: z.object({
    owaspAgentic: z.array(z.string()),
    maestro: z.array(z.string()),
    nistAiRmf: z.array(z.string()),
  }),
  spanEndMs: z.number(),
  detectedAtMs: z.number(),
  policyVersion: z.string(),
});
export type Finding = z.infer<typeof Finding>;
