import { z } from "zod";

/**
 * One entry of the audit log: a write someone asked the console API for (registering a scope
 * or credentials, deciding an approval, lifting a quarantine), allowed or not, with who asked
 * (the authenticated identity, never a name the request gave) and how it ended. Appended to
 * the store (`GET /api/v1/audit`) and published on `agent.audit`, keyed by actor. Never
 * changed once written.
 */
export const AuditRecord = z.object({
  id: z.string().min(1),
  atMs: z.number(),
  actor: z.object({
    id: z.string(),
    name: z.string(),
    role: z.enum(["viewer", "responder", "admin"]).optional(),
    via: z.enum(["token", "oidc", "none", "unauthenticated"]),
  }),
  /** The route asked for: method and path pattern (`POST /api/v1/approvals/:id/decision`). */
  action: z.string(),
  /** The route's parameters (task id, approval id, agent id). */
  target: z.record(z.string(), z.string()),
  /** `ok` (2xx), `denied` (401/403), `rejected` (another 4xx: bad or conflicting input), `error` (5xx). */
  outcome: z.enum(["ok", "denied", "rejected", "error"]),
  status: z.number().int(),
  /** What the request changed, in short (an approval's decision, the number of credentials registered). */
  detail: z.record(z.string(), z.unknown()).optional(),
  remote: z.string().optional(),
});
export type AuditRecord = z.infer<typeof AuditRecord>;
