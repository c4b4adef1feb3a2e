import { z } from "zod";

/** Bad input set aside with its reason and origin. On `agent.deadletter`. */
export const DeadLetter = z.object({
  stage: z.string(),
  reason: z.string(),
  source: z.object({
    topic: z.string(),
    partition: z.number().int(),
    offset: z.string(),
  }),
  /** The raw message value, base64. */
  raw: z.string(),
  atMs: z.number(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;
