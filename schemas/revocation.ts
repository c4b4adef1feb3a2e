import { z } from "zod";
import { LifecycleTrigger } from "./lifecycle.js";

/**
 * Why a credential was revoked. `finding`: a finding's response; `quarantine`: its agent was
 * quarantined; `approval`: a human approved the response; `approval_timeout`: no one
 * answered in time and the default applied; and the task's lifecycle (schemas/lifecycle.ts):
 * it completed or went idle, its scope or environment changed, its telemetry went silent, or
 * the credential was used on another task.
 */
export const RevocationTrigger = z.enum(["finding", "quarantine", "approval", "approval_timeout", ...LifecycleTrigger.options]);
export type RevocationTrigger = z.infer<typeof RevocationTrigger>;

/**
 * `revoked`: the credential store said so (2xx); `recorded`: no store configured, decided and
 * recorded only; `dry_run`: what a dry-run response would have done; `failed`: the store
 * could not be reached or refused, retried later while `retrying`; `dead_lettered`: given
 * up after the last attempt (on `agent.deadletter`, and alerted); `suspended` / `resumed`: a
 * credential taken away while its task's telemetry was silent, and given back when it
 * reported again (a record of its own, `<revocation id>-suspension`; a revocation later is
 * recorded as usual).
 */
export const RevocationStatus = z.enum(["revoked", "recorded", "dry_run", "failed", "dead_lettered", "suspended", "resumed"]);
export type RevocationStatus = z.infer<typeof RevocationStatus>;

/**
 * One credential's revocation, as the ledger holds it (who, what, when, why, latency,
 * outcome). On `agent.revocations`, keyed by task id, each time its outcome changes.
 */
export const Revocation = z.object({
  /** Deterministic per credential and store: revoked once, whatever the number of findings and tasks. */
  id: z.string().min(1),
  taskId: z.string().min(1),
  agentId: z.string().optional(),
  credentialId: z.string().min(1),
  credentialStore: z.string().min(1),
  /** The finding (or lifecycle event, or approval) that caused it. */
  findingId: z.string().min(1),
  trigger: RevocationTrigger.default("finding"),
  /** Who decided: `policy:<response rule>` or `human:<name>`. */
  decidedBy: z.string().default("policy:default"),
  status: RevocationStatus,
  detail: z.string(),
  /** Requests sent to the store so far (0: none, e.g. a dry run or a malformed reference). */
  attempts: z.number().int().nonnegative(),
  /** A failed revocation is tried again at this time. */
  retryAtMs: z.number().optional(),
  /** When its trigger happened: the finding's detection, or the lifecycle event (e.g. the task's final span arriving). */
  triggeredAtMs: z.number().optional(),
  requestedAtMs: z.number(),
  completedAtMs: z.number(),
  /** From the trigger, from the finding's detection, and from the offending span's end, to the store's answer. */
  latencyMs: z.object({ fromTrigger: z.number(), fromDetection: z.number(), fromSpanEnd: z.number() }).partial().optional(),
});
export type Revocation = z.infer<typeof Revocation>;
