import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { SENDER_HEADER, Sender, SIGNATURE_HEADER } from "../../schemas/ingest-identity.js";

/**
 * The gateway's word on who sent an OTLP request, carried on the `otlp_spans` message: the
 * sender (`driftwatch-sender`, JSON) and an HMAC-SHA256 over the sender and the body's
 * digest (`driftwatch-signature: v1=<base64url>`) with a key the gateway and ingest share
 * (`DRIFTWATCH_INGEST_SIGNING_KEY`). Anyone may write headers on a Kafka message; only a
 * holder of the key can write ones ingest accepts, and only for that body.
 */
const VERSION = "v1";

const mac = (key: Buffer, sender: string, body: Uint8Array) =>
  createHmac("sha256", key).update(`${VERSION}\n${sender}\n`).update(createHash("sha256").update(body).digest("hex")).digest();

/** The headers that carry `sender` for `body`. */
export function signSender(key: Buffer, sender: Sender, body: Uint8Array): Record<string, string> {
  const json = JSON.stringify(sender);
  return { [SENDER_HEADER]: json, [SIGNATURE_HEADER]: `${VERSION}=${mac(key, json, body).toString("base64url")}` };
}

export type SenderCheck = { sender: Sender } | { unsigned: true } | { forged: string };

/**
 * What a message's headers say of its sender: a sender signed with the key for this body, no
 * sender at all (traffic no gateway vouched for), or a forgery (a sender without a valid
 * signature, or a signature for another body).
 */
export function verifySender(key: Buffer | undefined, headers: Record<string, string | undefined>, body: Uint8Array): SenderCheck {
  const json = headers[SENDER_HEADER];
  const signature = headers[SIGNATURE_HEADER];
  if (json === undefined && signature === undefined) return { unsigned: true };
  if (!key) return { forged: "the message names a sender but this ingest has no signing key to check it (DRIFTWATCH_INGEST_SIGNING_KEY)" };
  if (json === undefined || signature === undefined)
    return { forged: `the message carries ${json === undefined ? "a signature without a sender" : "a sender without a signature"}` };
  if (!signature.startsWith(`${VERSION}=`)) return { forged: "the sender's signature is not a v1 signature" };
  const given = Buffer.from(signature.slice(VERSION.length + 1), "base64url");
  const expected = mac(key, json, body);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { forged: "the sender's signature does not match the message" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return { forged: "the signed sender is not JSON" };
  }
  const sender = Sender.safeParse(parsed);
  return sender.success ? { sender: sender.data } : { forged: "the signed sender is malformed" };
}
