import type { AttributeValue } from "./action.js";

/**
 * Argument entities: the values in a tool call's arguments or results that can steer
 * where data goes or what is changed (e-mail addresses, URLs and domains, account and
 * phone numbers, IBANs, file ids). The provenance rule asks where an argument's entities
 * came from; the pathfinder keeps the entities each step's output held.
 */
export const MAX_ENTITIES = 32;

/**
 * Endings that make a dotted word a file name rather than a domain. A few are also country
 * domains (`.md`, `.sh`, `.py`, `.rs`): such a domain still counts inside a URL or an e-mail
 * address, just not as a bare word.
 */
const FILE_EXTENSIONS = new Set(
  "md markdown txt rst json jsonl yaml yml toml ini cfg conf env lock log csv tsv xml html htm css scss js mjs cjs jsx ts tsx py rb go rs java kt c h cpp hpp cs php sh bash ps1 sql pdf doc docx xls xlsx ppt pptx odt png jpg jpeg gif svg webp zip tar gz tgz bz2 xz whl jar war exe dll so dylib bin dat bak tmp pem key crt".split(
    " ",
  ),
);

/*
 * Every pattern does bounded work per position: a tool payload is up to 16 KB of text a
 * client chose, and a pattern that tries an unbounded run from every position of a long run
 * (`[…]+@` on 16 KB without an `@`) costs a second of CPU per value. Hence the local part of
 * an e-mail address at most 64 characters (RFC 5321's limit) and a domain at most 16 labels.
 */
const PATTERNS: { re: RegExp; norm: (m: string) => string | undefined; needs?: string }[] = [
  // `needs`: text without it cannot match (and is not searched)
  { re: /[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, norm: (m) => m.toLowerCase(), needs: "@" },
  {
    needs: "://",
    re: /https?:\/\/[^\s"'<>]+/g,
    norm: (m) => {
      try {
        return new URL(m).hostname.toLowerCase() || undefined;
      } catch {
        return undefined;
      }
    },
  },
  {
    // a domain, not the local part of an e-mail address, nor a file name (`notes.md`, `package.json`)
    re: /\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,16}[a-z]{2,24}\b(?![@\w-])/gi,
    norm: (m) => (FILE_EXTENSIONS.has(m.slice(m.lastIndexOf(".") + 1).toLowerCase()) ? undefined : m.toLowerCase()),
  },
  { re: /\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b/g, norm: (m) => m },
  // an IBAN written in groups of four, as people write them (`DE89 3704 0044 0532 0130 00`)
  { re: /\b[A-Z]{2}\d{2}(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?\b/g, norm: (m) => m.replace(/ /g, "") },
  { re: /\+\d[\d\s().-]{7,}\d/g, norm: (m) => `+${m.replace(/\D/g, "")}`, needs: "+" },
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
      for (const { re, norm, needs } of PATTERNS) {
        if (needs !== undefined && !v.includes(needs)) continue;
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

const WHITESPACE = /\s/;
const ANGLE_ADDRESS = /^[^<>]{0,200}<([^<>\s]+)>$/;

/**
 * The entities a value *addresses*: those that are a field's whole value (`{"to":
 * "a@b.example"}`, `{"iban": "GB33…"}`, `{"url": "https://…"}`, an account number), or an
 * address in `Name <a@b.example>` form. Entities merely mentioned in prose (a note, a
 * message body, code) are not where an action is addressed, so they are left out.
 */
export function addressedEntitiesOf(value: AttributeValue | undefined): string[] {
  const out = new Set<string>();
  const visit = (v: AttributeValue | undefined, depth: number) => {
    if (out.size >= MAX_ENTITIES || v === undefined || v === null || depth > 16 || typeof v === "boolean") return;
    if (typeof v === "number") {
      for (const e of entitiesOf(v)) out.add(e);
      return;
    }
    if (typeof v === "string") {
      const s = v.trim();
      const angle = ANGLE_ADDRESS.exec(s);
      const whole = angle ? angle[1] : WHITESPACE.test(s) ? undefined : s;
      if (whole) for (const e of entitiesOf(whole)) out.add(e);
      return;
    }
    if (Array.isArray(v)) for (const x of v) visit(x, depth + 1);
    else for (const k of Object.keys(v)) visit(v[k], depth + 1);
  };
  visit(value, 0);
  return [...out].slice(0, MAX_ENTITIES);
}

/**
 * The entities a value carries in prose: in text with words around them (a message body, a
 * web page, a ticket), where an injected instruction can put them. A field whose whole value
 * is one entity (a sender's address, an attachment id, a result's URL) is the tool's own
 * structured data about what it returned, and is left out. A bare string result is prose.
 */
export function proseEntitiesOf(value: AttributeValue | undefined): string[] {
  if (typeof value === "string") return entitiesOf(value);
  const out = new Set<string>();
  const visit = (v: AttributeValue | undefined, depth: number) => {
    if (out.size >= MAX_ENTITIES || v === undefined || v === null || depth > 16 || typeof v !== "object") {
      if (typeof v === "string" && WHITESPACE.test(v.trim())) for (const e of entitiesOf(v)) out.add(e);
      return;
    }
    if (Array.isArray(v)) for (const x of v) visit(x, depth + 1);
    else for (const k of Object.keys(v)) visit(v[k], depth + 1);
  };
  visit(value, 0);
  return [...out].slice(0, MAX_ENTITIES);
}
