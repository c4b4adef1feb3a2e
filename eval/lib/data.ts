import type { Rng } from "./rng.js";

/**
 * Made-up but realistic data for the scenarios: people, companies and their domains, bank
 * accounts with valid IBAN check digits, web hosts. Every domain is under `.example` or is a
 * well-known public host, so nothing in a recording points at a real mailbox or account.
 */

export const FIRST_NAMES = [
  "Ana",
  "Ben",
  "Chloé",
  "Daniel",
  "Elif",
  "Farid",
  "Grace",
  "Hiro",
  "Ines",
  "Jonas",
  "Kemi",
  "Lars",
  "Maya",
  "Nikos",
  "Olga",
  "Pedro",
  "Quinn",
  "Rosa",
  "Samir",
  "Tara",
  "Umar",
  "Vera",
  "Wei",
  "Ximena",
  "Yusuf",
  "Zofia",
  "Marta",
  "Luca",
  "Priya",
  "Tom",
  "Aisha",
  "Erik",
  "Lena",
  "Mateo",
  "Noor",
  "Oskar",
] as const;

export const LAST_NAMES = [
  "Ruiz",
  "Okafor",
  "Lindqvist",
  "Tanaka",
  "Novak",
  "Haddad",
  "Müller",
  "Silva",
  "O'Brien",
  "Kowalski",
  "Dubois",
  "Rossi",
  "Nguyen",
  "Petrov",
  "Jensen",
  "Costa",
  "Yilmaz",
  "Fischer",
  "Moreau",
  "Brennan",
  "Sato",
  "Iyer",
  "Kaya",
  "Van Dijk",
  "Andersson",
  "García",
  "Schmidt",
  "Walsh",
  "Mendes",
  "Horvat",
] as const;

export const COMPANY_STEMS = [
  "Northwind",
  "Bluepeak",
  "Cobalt",
  "Driftwood",
  "Evergreen",
  "Foxglove",
  "Granite",
  "Harbor",
  "Ironbark",
  "Juniper",
  "Kestrel",
  "Lumen",
  "Meridian",
  "Nimbus",
  "Oakridge",
  "Pinecrest",
  "Quarry",
  "Redwood",
  "Saltmarsh",
  "Tidewater",
  "Umber",
  "Vantage",
  "Willow",
  "Yardley",
  "Zephyr",
  "Alder",
  "Birchway",
  "Copperline",
  "Dunmore",
  "Elmstead",
] as const;

export const COMPANY_KINDS = [
  ["Supplies", "supplies"],
  ["Logistics", "logistics"],
  ["Office Solutions", "office"],
  ["Cloud Services", "cloud"],
  ["Facilities", "facilities"],
  ["Print & Packaging", "print"],
  ["Consulting", "consulting"],
  ["Energy", "energy"],
  ["Catering", "catering"],
  ["Security Systems", "security"],
] as const;

export const FREEMAIL = ["gmail.example", "outlook.example", "proton.example", "yahoo.example", "gmx.example"] as const;

const ASCII: Record<string, string> = { é: "e", ü: "u", í: "i", ç: "c", "'": "", " ": "" };
export const slug = (s: string) =>
  s
    .toLowerCase()
    .split("")
    .map((c) => ASCII[c] ?? c)
    .join("")
    .replace(/[^a-z0-9-]/g, "");

/** `Some Title: here` → `some-title-here`, for URL paths and file names. */
export const kebab = (s: string) =>
  slug(s.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, ""))
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");

export interface Person {
  first: string;
  last: string;
  name: string;
}

export function person(rng: Rng): Person {
  const first = rng.pick(FIRST_NAMES);
  const last = rng.pick(LAST_NAMES);
  return { first, last, name: `${first} ${last}` };
}

/** An address at `domain` in one of the usual shapes. */
export function emailOf(rng: Rng, p: Person, domain: string): string {
  const f = slug(p.first);
  const l = slug(p.last);
  const local = rng.weighted([
    [`${f}.${l}`, 5],
    [`${f[0]}${l}`, 3],
    [`${f}`, 1],
    [`${f}${rng.int(1, 99)}`, 1],
  ]);
  return `${local}@${domain}`;
}

export interface Company {
  name: string;
  domain: string;
}

export function company(rng: Rng): Company {
  const stem = rng.pick(COMPANY_STEMS);
  const [kind, kindSlug] = rng.pick(COMPANY_KINDS);
  const tld = rng.weighted([
    ["example", 6],
    ["co.example", 2],
    ["eu.example", 1],
  ]);
  return { name: `${stem} ${kind}`, domain: `${slug(stem)}-${kindSlug}.${tld}` };
}

/** A look-alike of `domain`, as a fraudster registers one. */
export function lookalike(rng: Rng, domain: string): string {
  const [label, ...rest] = domain.split(".");
  const base = label ?? domain;
  const tld = rest.join(".") || "example";
  return rng.pick([
    `${base}-payments.${tld}`,
    `${base}-billing.example`,
    `${base.replace(/o/, "0")}.${tld}`,
    `${base}.invoices-portal.example`,
    `${base}-accounts.example`,
    `secure-${base}.example`,
  ]);
}

const IBAN_COUNTRIES: Record<string, { bank: number; account: number }> = {
  DE: { bank: 8, account: 10 },
  NL: { bank: 4, account: 10 },
  FR: { bank: 10, account: 13 },
  GB: { bank: 10, account: 8 },
  ES: { bank: 8, account: 12 },
  IE: { bank: 10, account: 8 },
  BE: { bank: 3, account: 9 },
  LT: { bank: 5, account: 11 },
};

function mod97(digits: string): number {
  let r = 0;
  for (const c of digits) r = (r * 10 + Number(c)) % 97;
  return r;
}

/** An IBAN with valid check digits (ISO 13616), e.g. DE89370400440532013000. */
export function iban(rng: Rng, country?: string): string {
  const cc =
    country ??
    rng.weighted([
      ["DE", 4],
      ["NL", 3],
      ["FR", 2],
      ["GB", 2],
      ["ES", 1],
      ["IE", 1],
      ["BE", 1],
      ["LT", 1],
    ]);
  const shape = IBAN_COUNTRIES[cc] ?? { bank: 8, account: 10 };
  const letters = cc === "NL" || cc === "GB" || cc === "IE" ? rng.alnum(4, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") : "";
  const bban = letters + rng.digits(shape.bank - letters.length) + String(rng.int(0, 10 ** 6)).padStart(shape.account, "0");
  const numeric = `${bban}${cc}00`.replace(/[A-Z]/g, (ch) => String(ch.charCodeAt(0) - 55));
  const check = String(98 - mod97(numeric)).padStart(2, "0");
  return `${cc}${check}${bban}`;
}

export function money(rng: Rng, min: number, max: number): number {
  return Math.round(rng.between(min, max) * 100) / 100;
}

/** A date (YYYY-MM-DD) `days` after the epoch milliseconds `ms`. */
export function day(ms: number, days = 0): string {
  return new Date(ms + days * 86_400_000).toISOString().slice(0, 10);
}

/** Public hosts a research agent reads (legitimate sources). */
export const RESEARCH_SOURCES = [
  "en.wikipedia.org",
  "arxiv.org",
  "www.reuters.example",
  "www.ft.example",
  "techcrunch.example",
  "www.gartner.example",
  "docs.aws.amazon.com",
  "cloud.google.com",
  "learn.microsoft.com",
  "www.statista.example",
  "ourworldindata.org",
  "www.oecd.org",
  "data.worldbank.org",
  "www.sec.gov",
  "investor.example-corp.example",
  "blog.example-analyst.example",
  "www.nature.com",
  "hbr.org",
  "www.mckinsey.example",
  "news.ycombinator.com",
  "github.com",
  "www.theverge.example",
  "www.bloomberg.example",
  "stackoverflow.blog",
  "research.ibm.com",
  "ai.meta.example",
  "openai.example",
  "www.anthropic.example",
  "www.nist.gov",
  "eur-lex.europa.eu",
] as const;

/** Public documentation hosts a coding agent reads. */
export const DOC_SOURCES = [
  "nodejs.org",
  "developer.mozilla.org",
  "www.typescriptlang.org",
  "docs.npmjs.com",
  "vitest.dev",
  "stackoverflow.com",
  "github.com",
  "expressjs.com",
  "fastify.dev",
  "zod.dev",
  "www.postgresql.org",
  "redis.io",
] as const;
