import { z } from "zod";

/** Cut of a dead letter's excerpts and prefixes: a letter says what was wrong and where, it is no copy of the input. */
export const DEADLETTER_LIMITS = {
  /** Bytes of undecodable input kept (before the cut at anything the redaction policy names). */
  prefixBytes: 256,
  /** Characters of one span's excerpt. */
  excerptChars: 1024,
  /** Offending spans listed; `rejectedSpans` counts them all. */
  spans: 20,
} as const;

/** One offending span of a message that decoded. */
export const DeadLetterSpan = z.object({
  /** Its position in the request (0-based, across resources and scopes). */
  index: z.number().int().nonnegative(),
  traceId: z.string().max(64).optional(),
  spanId: z.string().max(64).optional(),
  reason: z.string(),
  /** The span as ingest read it (name, attributes, resource), redacted by the policy and cut to `excerptChars`. */
  excerpt: z
    .string()
    .max(DEADLETTER_LIMITS.excerptChars + 32)
    .optional(),
});
export type DeadLetterSpan = z.infer<typeof DeadLetterSpan>;

/**
 * Bad input set aside with its reason and origin, on `agent.deadletter`. It holds only the
 * offending part, never the whole message and never a value the redaction policy names:
 * the message's size and sha256 (to find it on its source topic), the offending spans' ids
 * and redacted excerpts, or, for bytes that did not decode, a short prefix cut before
 * anything the policy names. A stage's own undeliverable record (a revocation, an incident
 * version: data already redacted) travels as `record`.
 */
export const DeadLetter = z.object({
  stage: z.string(),
  reason: z.string(),
  source: z.object({
    topic: z.string(),
    partition: z.number().int(),
    offset: z.string(),
  }),
  /** The message the letter is about: its length in bytes and the sha256 (hex) of all of it. */
  message: z
    .object({
      bytes: z.number().int().nonnegative(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
    })
    .optional(),
  /** Undecodable input: its first bytes, base64, at most `prefixBytes`, cut before anything the redaction policy names. */
  prefix: z.string().optional(),
  /** The offending spans of a message that decoded (at most `spans` of them). */
  spans: z.array(DeadLetterSpan).max(DEADLETTER_LIMITS.spans).optional(),
  /** How many spans of the message were rejected in all. */
  rejectedSpans: z.number().int().nonnegative().optional(),
  /** What a stage could not deliver (the revoker's revocation, the notifier's incident version), as JSON. */
  record: z.unknown().optional(),
  atMs: z.number(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;
