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

function keyPattern(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\?]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`);
}

export function compileRedaction(redaction: Redaction | undefined): Redactor {
  const patterns = (redaction?.attributes ?? []).map(keyPattern);
  const keys = new Set((redaction?.argumentKeys ?? []).map((k) => k.toLowerCase()));
  const redactPayload = (v: AttributeValue, depth = 0): AttributeValue => {
    if (keys.size === 0 || v === null || typeof v !== "object" || depth > 64) return v;
    if (Array.isArray(v)) return v.map((x) => redactPayload(x, depth + 1));
    const out: { [k: string]: AttributeValue } = {};
    for (const [k, x] of Object.entries(v)) out[k] = keys.has(k.toLowerCase()) ? REDACTED : redactPayload(x, depth + 1);
    return out;
  };
  return {
    active: patterns.length > 0 || keys.size > 0,
    attributes(attrs) {
      if (patterns.length === 0) return attrs;
      const out: Attributes = {};
      for (const [k, v] of Object.entries(attrs)) out[k] = patterns.some((p) => p.test(k)) ? REDACTED : v;
      return out;
    },
    payload: (v) => redactPayload(v),
  };
}

export const NO_REDACTION: Redactor = compileRedaction(undefined);
