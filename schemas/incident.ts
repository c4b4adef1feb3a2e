import { z } from "zod";
import { Finding, FindingKind, Severity } from "./finding.js";
import { Revocation, RevocationStatus } from "./revocation.js";

/**
 * An incident: every alertable finding of one task, rolled up, and what became of the
 * task's credentials. The notifier keeps one per task (its id is a hash of the task id)
 * and sends each change of it to the SOC sinks as a new version.
 */
export const IncidentStatus = z.enum(["open", "closed"]);
export type IncidentStatus = z.infer<typeof IncidentStatus>;

/** One rule that fired in the task: its highest severity and how many findings it made. */
export const IncidentRule = z.object({
  ruleId: z.string().min(1),
  kind: FindingKind,
  severity: Severity,
  count: z.number().int().positive(),
});
export type IncidentRule = z.infer<typeof IncidentRule>;

/** What one finding showed, kept in the incident (the most severe and newest, at most `MAX_EVIDENCE`). */
export const IncidentEvidence = z.object({
  findingId: z.string().min(1),
  ruleId: z.string().min(1),
  kind: FindingKind,
  severity: Severity,
  confidence: z.number().min(0).max(1),
  agentId: z.string().optional(),
  stepIndex: z.number().int().nonnegative(),
  traceId: z.string(),
  spanId: z.string(),
  explanation: z.string(),
  observed: z.unknown(),
  expected: z.unknown(),
  spanEndMs: z.number(),
  detectedAtMs: z.number(),
});
export type IncidentEvidence = z.infer<typeof IncidentEvidence>;

/** A credential of the task, as the revoker last reported it. */
export const IncidentRevocation = z.object({
  id: z.string().min(1),
  credentialId: z.string().min(1),
  credentialStore: z.string().min(1),
  status: RevocationStatus,
  detail: z.string(),
  attempts: z.number().int().nonnegative(),
  findingId: z.string().min(1),
  decidedBy: z.string(),
  atMs: z.number(),
});
export type IncidentRevocation = z.infer<typeof IncidentRevocation>;

/**
 * Something the SOC must act on beyond the findings: a credential that could not be
 * revoked (`revocation_failed` while the revoker retries, `revocation_dead_lettered` once it
 * gave up), or, later, revoked after all (`revocation_recovered`).
 */
export const IncidentAlert = z.object({
  kind: z.enum(["revocation_failed", "revocation_dead_lettered", "revocation_recovered"]),
  revocationId: z.string().min(1),
  credentialId: z.string().min(1),
  message: z.string().min(1),
  atMs: z.number(),
});
export type IncidentAlert = z.infer<typeof IncidentAlert>;

export const Incident = z.object({
  /** Deterministic per task. */
  id: z.string().min(1),
  taskId: z.string().min(1),
  status: IncidentStatus,
  /** Increments with each change sent to the sinks; 0 while nothing has been sent (e.g. only a revocation is known). */
  version: z.number().int().nonnegative(),
  /** The highest severity of its findings and alerts. */
  severity: Severity,
  title: z.string().min(1),
  agents: z.array(z.string()),
  /** Alertable findings (enforce and alert mode), each counted once. */
  findingCount: z.number().int().nonnegative(),
  /** The earliest and latest span end of its findings (absent until it has one). */
  firstSeenMs: z.number().optional(),
  lastSeenMs: z.number().optional(),
  maxConfidence: z.number().min(0).max(1),
  rules: z.array(IncidentRule),
  tags: z.object({
    owaspAgentic: z.array(z.string()),
    maestro: z.array(z.string()),
    nistAiRmf: z.array(z.string()),
  }),
  /** Tools and destinations the findings observed (at most 50 each). */
  observed: z.object({ tools: z.array(z.string()), destinations: z.array(z.string()) }),
  evidence: z.array(IncidentEvidence),
  revocations: z.array(IncidentRevocation),
  alerts: z.array(IncidentAlert),
  createdAtMs: z.number(),
  updatedAtMs: z.number(),
});
export type Incident = z.infer<typeof Incident>;

/**
 * One version of an incident, as the sinks receive it (the signed webhook and JSON lines
 * sinks send it whole, with the OCSF record beside it). `findings` are the findings this
 * version added; `finding` is the most severe of them, so receivers that keyed alerts on a
 * finding keep working; `revocation` is the revocation this version is about.
 */
export const IncidentUpdate = z.object({
  type: z.literal("driftwatch.incident"),
  incident: Incident,
  change: z.object({
    cause: z.enum(["findings", "revocation"]),
    summary: z.string().min(1),
  }),
  findings: z.array(Finding),
  finding: Finding.optional(),
  revocation: Revocation.optional(),
});
export type IncidentUpdate = z.infer<typeof IncidentUpdate>;
