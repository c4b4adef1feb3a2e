import { z } from "zod";

/** The outcome of revoking one credential bound to a task. On `agent.revocations`, keyed by task id. */
export const Revocation = z.object({
  id: z.string().min(1), // deterministic per credential: revoked once, whatever the number of findings
  taskId: z.string().min(1),
  credentialId: z.string().min(1),
  findingId: z.string().min(1),
  credentialStore: z.string().min(1),
  status: z.enum(["revoked", "failed", "recorded"]),
  detail: z.string(),
  requestedAtMs: z.number(),
  completedAtMs: z.number(),
  attempts: z.number().int().positive(),
});
export type Revocation = z.infer<typeof Revocation>;
