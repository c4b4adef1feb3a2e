import type { Attributes, AttributeValue } from "../../schemas/action.js";
import { DEADLETTER_LIMITS } from "../../schemas/deadletter.js";
import type { DecodedTraces, OtlpSpan } from "./otlp.js";
import { PAYLOAD_ATTRIBUTES, type Redactor } from "./redaction.js";

/**
 * What ingest's dead letters keep of the input (schemas/deadletter.ts): never the message,
 * never a value the redaction policy names.
 */

/**
 * The first bytes of undecodable input, cut before the first place that names something
 * the policy redacts (a key comes before its value in what honest encoders write, so the
 * value is cut with it); undefined when that is the very start (or the policy has a
 * pattern with no literal part: anything may be named anywhere).
 */
export function screenedPrefix(bytes: Buffer, redactor: Redactor): Buffer | undefined {
  const head = bytes.subarray(0, DEADLETTER_LIMITS.prefixBytes);
  const at = redactor.namedAt(head.toString("latin1"));
  if (at === 0 || head.length === 0) return undefined;
  return at > 0 ? head.subarray(0, at) : head;
}

/** Strings in an excerpt are cut to this (after redaction). */
const EXCERPT_STRING_CHARS = 200;
const TRUNCATED = "…[truncated]";

function short(v: AttributeValue, depth = 0): AttributeValue {
  if (typeof v === "string") return v.length > EXCERPT_STRING_CHARS ? `${v.slice(0, EXCERPT_STRING_CHARS)}${TRUNCATED}` : v;
  if (v === null || typeof v !== "object") return v;
  if (depth >= 4) return "[…]";
  if (Array.isArray(v)) return v.slice(0, 10).map((x) => short(x, depth + 1));
  const out: { [k: string]: AttributeValue } = {};
  for (const k of Object.keys(v).slice(0, 20)) out[k] = short(v[k] as AttributeValue, depth + 1);
  return out;
}

/** Attributes as the policy lets them be seen: redacted keys, payload keys inside tool payloads; then shortened. */
function redacted(attrs: Attributes, redactor: Redactor): Attributes {
  const r = redactor.attributes(attrs);
  const out: Attributes = {};
  for (const k of Object.keys(r).slice(0, 50)) {
    let v = r[k] as AttributeValue;
    if (PAYLOAD_ATTRIBUTES.has(k)) v = typeof v === "string" ? redactor.payloadText(v) : redactor.payload(v);
    out[k] = short(v);
  }
  return out;
}

/** A bad span as ingest read it (name, attributes, resource), redacted, as JSON cut to the excerpt's length. */
export function badSpanExcerpt(span: OtlpSpan, redactor: Redactor): string {
  const text = JSON.stringify({
    name: short(span.name),
    attributes: redacted(span.attributes, redactor),
    resource: redacted(span.resource, redactor),
  });
  return text.length > DEADLETTER_LIMITS.excerptChars ? `${text.slice(0, DEADLETTER_LIMITS.excerptChars)}${TRUNCATED}` : text;
}

/** The position in the request of each decoded span (the decoder's rejected spans sit between them). */
export function requestIndexes(value: DecodedTraces): (at: number) => number {
  const rejected = value.rejected.map((r) => r.index).sort((a, b) => a - b);
  return (at) => {
    let index = at;
    for (const r of rejected) if (r <= index) index++;
    return index;
  };
}
