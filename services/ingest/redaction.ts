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
  /** Whether the value of this attribute key is redacted. */
  attributeKey(key: string): boolean;
  /** Whether the value of this key inside a tool argument or result is redacted. */
  payloadKey(key: string): boolean;
  /**
   * A tool argument or result as text, redacted: JSON with the payload keys' values replaced
   * (at any depth); text that does not parse stays as it is (no keys to go by), except
   * JSON too deep to walk that names a payload key, which becomes "[redacted]" as a whole.
   */
  payloadText(text: string): string;
  /**
   * Where in `text` (bytes read as latin1 do) something the policy redacts may first be
   * named: a redacted key, or a literal part of a redacted key pattern; -1 when nowhere.
   * A quick filter: a hit says "look closer", not "this is a secret".
   */
  namedAt(text: string): number;
}

/** The attributes whose values are tool payloads (redacted by key inside, not as a whole). */
export const PAYLOAD_ATTRIBUTES: ReadonlySet<string> = new Set(["gen_ai.tool.call.arguments", "gen_ai.tool.call.result"]);

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * A case-insensitive search for the policy's keys and the longest literal part of each key
 * pattern (a key matching the pattern contains it). A pattern with no literal part (`*`), or
 * a non-ASCII part (its bytes and case would not line up with latin1 text), matches
 * everything: undefined.
 */
function namedPattern(globs: string[], keys: string[]): RegExp | null | undefined {
  const parts: string[] = [...keys];
  for (const g of globs) {
    const longest = g.split("*").reduce((a, b) => (b.length > a.length ? b : a), "");
    if (longest.length === 0) return undefined;
    parts.push(longest);
  }
  if (parts.length === 0) return null;
  if (parts.some((p) => /[^\x20-\x7e]/.test(p))) return undefined;
  return new RegExp(parts.map(escapeRegExp).join("|"), "i");
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
  const named = namedPattern(redaction?.attributes ?? [], [...keys]);
  const namedAt = (text: string): number => {
    if (named === null) return -1;
    if (named === undefined) return 0;
    const m = named.exec(text);
    return m ? m.index : -1;
  };
  const keyNamed = keys.size > 0 ? new RegExp([...keys].map(escapeRegExp).join("|"), "i") : undefined;
  /** Whether a parsed payload nests deeper than redaction walks (keys there would be missed). */
  const tooDeep = (v: unknown, depth: number): boolean => {
    if (v === null || typeof v !== "object") return false;
    if (depth > MAX_PAYLOAD_DEPTH) return true;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (tooDeep(x, depth + 1)) return true;
    return false;
  };
  const payloadText = (text: string): string => {
    if (!keyNamed?.test(text)) return text;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      // text, not JSON: no keys to go by; JSON nested past what the parser takes: fail closed
      return err instanceof RangeError ? REDACTED : text;
    }
    if (parsed === null || typeof parsed !== "object") return text;
    if (tooDeep(parsed, 0)) return REDACTED;
    return needsRedaction(parsed as AttributeValue, 0) ? JSON.stringify(redactPayload(parsed as AttributeValue, 0)) : text;
  };
  return {
    attributeKey: redactKey,
    payloadKey: (k) => keys.size > 0 && payloadKeyHit(k),
    payloadText,
    namedAt,
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

/** The redactor of the policy in force, compiled again only when the policy's version changes. */
export function policyRedactor(policy: () => { version: string; redaction?: Redaction | undefined }): () => Redactor {
  let compiled: { version: string; redactor: Redactor } | undefined;
  return () => {
    const current = policy();
    if (compiled?.version !== current.version) compiled = { version: current.version, redactor: compileRedaction(current.redaction) };
    return compiled.redactor;
  };
}
