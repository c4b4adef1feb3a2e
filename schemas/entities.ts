import type { AttributeValue } from "./action.js";

/**
 * Argument entities: the values in a tool call's arguments or results that can steer
 * where data goes or what is changed (e-mail addresses, URLs and domains, account and
 * phone numbers, IBANs, file ids). The provenance rule asks where an argument's entities
 * came from; the pathfinder keeps the entities each step's output held.
 */
export const MAX_ENTITIES = 32;

const PATTERNS: { re: RegExp; norm: (m: string) => string | undefined }[] = [
  { re: /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, norm: (m) => m.toLowerCase() },
  {
    re: /https?:\/\/[^\s"'<>]+/g,
    norm: (m) => {
      try {
        return new URL(m).hostname.toLowerCase() || undefined;
      } catch {
        return undefined;
      }
    },
  },
  { re: /\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b/gi, norm: (m) => m.toLowerCase() },
  { re: /\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b/g, norm: (m) => m },
  { re: /\+\d[\d\s().-]{7,}\d/g, norm: (m) => `+${m.replace(/\D/g, "")}` },
  { re: /\b\d{8,}\b/g, norm: (m) => m },
  { re: /\b(?:file|doc|att)[-_][A-Za-z0-9]{4,}\b/gi, norm: (m) => m.toLowerCase() },
];

/** The entities in a value (its strings, and long numbers), at most MAX_ENTITIES, in order of appearance. */
export function entitiesOf(value: AttributeValue | undefined): string[] {
  const out = new Set<string>();
  const visit = (v: AttributeValue | undefined, depth: number) => {
    if (out.size >= MAX_ENTITIES || v === undefined || v === null || depth > 16) return;
    if (typeof v === "number") {
      if (Number.isInteger(v) && Math.abs(v) >= 10_000_000) out.add(String(Math.abs(v)));
      return;
    }
    if (typeof v === "boolean") return;
    if (typeof v === "string") {
      for (const { re, norm } of PATTERNS) {
        for (const m of v.matchAll(re)) {
          const e = norm(m[0]);
          if (e) out.add(e);
          if (out.size >= MAX_ENTITIES) return;
        }
      }
      return;
    }
    if (Array.isArray(v)) for (const x of v) visit(x, depth + 1);
    else for (const k of Object.keys(v)) visit(v[k], depth + 1);
  };
  visit(value, 0);
  return [...out];
}
