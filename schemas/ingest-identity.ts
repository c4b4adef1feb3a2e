import { z } from "zod";

/**
 * Who sent spans, as the gateway authenticated them (docs/trust-model.md): an agent's bearer
 * token, or a SPIFFE JWT-SVID. The gateway puts the sender on the message it publishes to
 * `otlp_spans` (`driftwatch-sender`) and signs it together with the body
 * (`driftwatch-signature`: HMAC-SHA256 with the key it shares with ingest), so that ingest
 * can tell a sender the gateway vouched for from a header anyone producing to the topic wrote.
 */
export const Sender = z.object({
  /** The token's name, or the JWT-SVID's SPIFFE id. */
  name: z.string().min(1).max(512),
  via: z.enum(["token", "jwt-svid"]),
  /** The SPIFFE id the credential proves (a JWT-SVID's subject; a token's, when its entry names one). */
  spiffeId: z.string().min(1).max(2048).optional(),
  /** `gen_ai.agent.id` values the credential may speak for (`*` wildcard); empty: none named. */
  agentIds: z.array(z.string().min(1).max(256)).max(100).default([]),
  /** SPIFFE id patterns (`*` within a segment, `**` across) the credential may speak for. */
  spiffeIds: z.array(z.string().min(1).max(2048)).max(100).default([]),
});
export type Sender = z.infer<typeof Sender>;

export const SENDER_HEADER = "driftwatch-sender";
export const SIGNATURE_HEADER = "driftwatch-signature";
