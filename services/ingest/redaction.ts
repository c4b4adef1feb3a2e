import type { Attributes, AttributeValue } from "../../schemas/action.js";
import type { Redaction } from "../../schemas/policy.js";

/**
 * Policy-driven redaction, applied by ingest before an action is stored or sent on:
 * attribute values by key pattern, and keys inside tool arguments and results.
 */
export const REDACTED = "[redacted]";

export interface Redactor {
  attributes(attrs: Attributes): Attributes;
  payload(value: AttributeValue): AttributeValue;
  readonly active: boolean;
}

/** The attribute-key globs as one anchored alternation (`*` matches anything). */
function keyMatcher(globs: string[]): RegExp | undefined {
  if (globs.length === 0) return undefined;
  const alternatives = globs.map((g) => g.replace(/[.+^${}()|[\]\\?]/g, "\\$&").replace(/\*/g, ".*"));
  return new RegExp(`^(?:${alternatives.join("|")})$`);
}

/** Attribute keys repeat from span to span: the verdict per key is remembered (bounded). */
const MAX_REMEMBERED_KEYS = 10_000;

const MAX_PAYLOAD_DEPTH = 64;

export function compileRedaction(redaction: Redaction | undefined): Redactor {
  const matcher = keyMatcher(redaction?.attributes ?? []);
  const keys = new Set((redaction?.argumentKeys ?? []).map((k) => k.toLowerCase()));
  const verdicts = new Map<string, boolean>();
  const redactKey = (k: string): boolean => {
    let verdict = verdicts.get(k);
    if (verdict === undefined) {
      verdict = matcher?.test(k) ?? false;
      if (verdicts.size >= MAX_REMEMBERED_KEYS) verdicts.clear();
      verdicts.set(k, verdict);
    }
    return verdict;
  };
  const payloadKeyHit = (k: string) => keys.has(k.toLowerCase());
  /** Whether anything in `v` is to be redacted: payloads are copied only when it is. */
  const needsRedaction = (v: AttributeValue, depth: number): boolean => {
    if (v === null || typeof v !== "object" || depth > MAX_PAYLOAD_DEPTH) return false;
    if (Array.isArray(v)) return v.some((x) => needsRedaction(x, depth + 1));
    for (const k in v) if (payloadKeyHit(k) || needsRedaction(v[k] as AttributeValue, depth + 1)) return true;
    return false;
  };
  const redactPayload = (v: AttributeValue, depth: number): AttributeValue => {
    if (v === null || typeof v !== "object" || depth > MAX_PAYLOAD_DEPTH) return v;
    if (Array.isArray(v)) return v.map((x) => redactPayload(x, depth + 1));
    const out: { [k: string]: AttributeValue } = {};
    for (const [k, x] of Object.entries(v)) out[k] = payloadKeyHit(k) ? REDACTED : redactPayload(x, depth + 1);
    return out;
  };
  return {
    active: matcher !== undefined || keys.size > 0,
    attributes(attrs) {
      if (!matcher) return attrs;
      let out: Attributes | undefined;
      for (const k of Object.keys(attrs)) {
        if (!redactKey(k)) continue;
        out ??= { ...attrs };
        out[k] = REDACTED;
      }
      return out ?? attrs;
    },
    payload: (v) => (keys.size > 0 && needsRedaction(v, 0) ? redactPayload(v, 0) : v),
  };
}

export const NO_REDACTION: Redactor = compileRedaction(undefined);
