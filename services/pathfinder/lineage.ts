import { parse as parseYaml } from "yaml";
import type { AgentAction, AttributeValue } from "../../schemas/action.js";
import { entitiesOf } from "../../schemas/entities.js";
import type { ArgumentTerm, TermOrigin, TermPattern, TermPlace } from "../../schemas/lineage.js";
import { Sensitivity } from "../../schemas/policy.js";

/**
 * Data lineage: where the values of a step's arguments came from, worked out from what the
 * path holds before the step (the task's objective, the user's messages, every earlier tool
 * output). Policy-free: the detector decides which sources are trusted and which arguments
 * matter (schemas/lineage.ts).
 *
 * Each tool output is indexed once, when its step is placed (`indexOutput`): the whole values
 * of its fields, its mapping keys, and its text (prose and content fields), normalised. A
 * step's argument values (`argumentTerms`) are then looked up in the request, the user's
 * words and each earlier output (`originsOf`).
 */

/** What the path keeps of a tool output for lineage. */
export interface OutputIndex {
  /** Whole values of its fields (short strings, whole numbers) and the entities inside them. */
  v: string[];
  /** Mapping keys that are values themselves (an address, a name), not a schema's field names. */
  k?: string[];
  /** Its text: prose, plain-text results, content fields (title, body, description, …). */
  t?: string;
  /** Words in its text with the marks of an instruction aimed at the agent (`injectionMarkOf`): the first found. */
  m?: string;
}

/** Any character within a sentence: a period only inside a word or address (`bills/march.txt`, `alice.m@x`). */
const GAP = String.raw`(?:[^.?!|]|\.(?=\S))`;

/** At most this many argument values per step. */
const MAX_TERMS = 48;
/** At most this many origins per value. */
const MAX_ORIGINS = 8;
const MAX_VALUES = 500;
const MAX_KEYS = 100;
const MAX_TEXT = 8 * 1024;
/** A string this short (and on one line, of few words) is a value: a name, an id, an address. */
const VALUE_CHARS = 100;
const VALUE_WORDS = 10;
/** The user's words kept per span, and per step. */
export const MAX_USER_TEXT = 4 * 1024;
/** Argument values a read keeps, to tell whether the user named what it read. */
const MAX_NAMING_TERMS = 16;

/**
 * Fields that hold somebody's words even when short: a title, a subject, a body, a review.
 * What they say is text, not the tool's structured data about what it returned.
 */
const CONTENT_FIELDS = new Set(
  "title subject body content contents text description message messages snippet summary note notes comment comments review reviews bio about details instructions html markdown caption post posts transcript reply answer".split(
    " ",
  ),
);

/** Lower case, compatibility forms folded, one space between words, no quotes or punctuation around it. */
export function normalise(s: string): string {
  return s
    .normalize("NFKC")
    .toLowerCase()
    .replace(/\s+/g, " ")
    .trim()
    .replace(/^["'`([{<]+|["'`)\]}>.,;:!?]+$/g, "");
}

const isShort = (s: string) => s.length <= VALUE_CHARS && !s.includes("\n") && s.split(" ").length <= VALUE_WORDS;

/**
 * Top-level domains a bare domain inside text must end with to count as one (`acme.com` in a
 * message), so that code (`items.reduce`, `self.id`) is not read as hosts. A domain in a URL,
 * an e-mail address or a whole value counts whatever its ending.
 */
const TEXT_TLDS = new Set(
  "com net org io co info biz xyz app dev ai me ru cn top site online store shop live click link ly uk de fr nl eu us ca au ch es it se no dk pl be at in jp br tech cloud email world services support".split(
    " ",
  ),
);

/** An entity found inside text, as a term: a bare domain only when it reads as one. */
function textEntityTerm(entity: string, text: string): { term: string; pattern: TermPattern } | undefined {
  const t = entityTerm(entity);
  if (t.pattern !== "host") return t;
  const lower = text.toLowerCase();
  if (lower.includes(`://${entity.toLowerCase()}`) || lower.includes(`www.${t.term}`)) return t;
  return TEXT_TLDS.has(t.term.slice(t.term.lastIndexOf(".") + 1)) ? t : undefined;
}

/** What an entity (as entitiesOf gives it) or a whole value is, by its shape. */
function patternOf(value: string): TermPattern {
  if (/^[^\s@]+@[^\s@]+\.[a-z]{2,}$/i.test(value)) return "email";
  if (/^(?:https?:\/\/|www\.)\S+$/i.test(value)) return "url";
  if (/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/i.test(value.replace(/ /g, ""))) return "iban";
  if (/^\+\d{7,}$/.test(value)) return "phone";
  if (/^\d+$/.test(value)) return "number";
  if (/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}$/i.test(value)) return "host";
  return "value";
}

const stripWww = (host: string) => (host.startsWith("www.") ? host.slice(4) : host);

function hostOfUrl(value: string): string | undefined {
  try {
    return stripWww(new URL(/^https?:\/\//i.test(value) ? value : `https://${value}`).hostname.toLowerCase()) || undefined;
  } catch {
    return undefined;
  }
}

/** A value as a term: normalised; a URL as its host, a host without `www.`, an IBAN without spaces. */
function termOf(raw: string): { term: string; pattern: TermPattern } {
  const value = raw.trim();
  const pattern = patternOf(value);
  if (pattern === "url") return { term: hostOfUrl(value) ?? normalise(value), pattern };
  if (pattern === "host") return { term: stripWww(value.toLowerCase()), pattern };
  if (pattern === "iban") return { term: value.replace(/ /g, "").toLowerCase(), pattern };
  return { term: normalise(value), pattern };
}

/** An entity as entitiesOf gives it, as a term. */
function entityTerm(entity: string): { term: string; pattern: TermPattern } {
  const pattern = patternOf(entity);
  const term = entity.toLowerCase();
  return { term: pattern === "host" || pattern === "url" ? stripWww(term) : term, pattern: pattern === "url" ? "host" : pattern };
}

/** A key that names a field (`recipients`, `file_id`), not a value used as a key (`bob@x.example`). */
const FIELD_NAME = /^[A-Za-z_][\w-]{0,63}$/;

/** The values in a step's arguments: each field's whole value, keys that are values, and the entities inside text. */
type Term = Omit<ArgumentTerm, "origins">;
/** Terms by arguments object: a step's arguments are read at placement (naming) and again for its lineage. */
const termsOf = new WeakMap<object, Term[]>();

export function argumentTerms(args: AttributeValue | undefined): Term[] {
  if (args === null || typeof args !== "object") return termsIn(args);
  let terms = termsOf.get(args);
  if (!terms) {
    terms = termsIn(args);
    termsOf.set(args, terms);
  }
  return terms;
}

function termsIn(args: AttributeValue | undefined): Term[] {
  const out: Term[] = [];
  const seen = new Set<string>();
  const add = (term: string, pattern: TermPattern, path: string, as: TermPlace) => {
    const id = `${as}|${path}|${term}`;
    if (!term || seen.has(id) || out.length >= MAX_TERMS) return;
    seen.add(id);
    out.push({ term, path, as, pattern });
  };
  const visit = (v: AttributeValue | undefined, path: string, depth: number) => {
    if (v === undefined || v === null || depth > 16 || out.length >= MAX_TERMS) return;
    if (typeof v === "number") {
      if (Number.isInteger(v)) add(String(v), "number", path, "value");
      return;
    }
    if (typeof v === "boolean") return;
    if (typeof v === "string") {
      const s = v.trim();
      if (!s) return;
      const whole = isShort(s) ? termOf(s) : undefined;
      if (whole) add(whole.term, whole.pattern, path, "value");
      // an address or URL as a whole value says it all (not its domain again)
      if (whole && whole.pattern !== "value") return;
      for (const e of entitiesOf(s)) {
        const t = textEntityTerm(e, s);
        if (t && t.term !== whole?.term) add(t.term, t.pattern, path, "text");
      }
      return;
    }
    if (Array.isArray(v)) {
      for (const x of v) visit(x, path, depth + 1);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (FIELD_NAME.test(k)) {
        visit(x, path ? `${path}.${k}` : k, depth + 1);
      } else {
        // a value used as a key (`shared_with: {addr: permission}`): it is what the argument names
        const t = termOf(k);
        add(t.term, t.pattern, path || k, "key");
        visit(x, path, depth + 1);
      }
    }
  };
  visit(args, "", 0);
  return out;
}

/** A tool result as structured data: parsed JSON (ingest parses JSON text), or YAML text as many tools print it. */
function structured(result: AttributeValue | undefined): AttributeValue | undefined {
  if (result === undefined || result === null) return undefined;
  if (typeof result !== "string") return typeof result === "object" ? result : undefined;
  const s = result.trim();
  // YAML-shaped text: several lines, some of them `key: value` or `- item`
  if (!s.includes("\n") || !/^\s*(?:- |[\w .'"-]{1,64}:(?: |$))/m.test(s)) return undefined;
  try {
    const parsed = parseYaml(s, { maxAliasCount: 0, uniqueKeys: false }) as unknown;
    return parsed !== null && typeof parsed === "object" ? (parsed as AttributeValue) : undefined;
  } catch {
    return undefined;
  }
}

/** What lineage keeps of a tool's output (undefined: it returned nothing). */
export function indexOutput(result: AttributeValue | undefined): OutputIndex | undefined {
  if (result === undefined || result === null) return undefined;
  const data = structured(result);
  const values = new Set<string>();
  const keys = new Set<string>();
  const text: string[] = [];
  let textLength = 0;
  const addText = (s: string) => {
    if (textLength >= MAX_TEXT) return;
    const n = normalise(s);
    if (!n) return;
    text.push(n);
    textLength += n.length + 3;
  };
  const addValue = (s: string) => {
    if (values.size >= MAX_VALUES) return;
    const { term } = termOf(s);
    if (term) values.add(term);
    for (const e of entitiesOf(s)) if (values.size < MAX_VALUES) values.add(entityTerm(e).term);
  };
  const visit = (v: unknown, field: string, depth: number) => {
    if (v === undefined || v === null || depth > 16) return;
    if (typeof v === "number") {
      if (Number.isInteger(v)) values.add(String(v));
      return;
    }
    if (typeof v === "string") {
      const s = v.trim();
      if (!s) return;
      if (CONTENT_FIELDS.has(field.toLowerCase()) || !isShort(normalise(s))) addText(s);
      else addValue(s);
      return;
    }
    if (typeof v !== "object") return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x, field, depth + 1);
      return;
    }
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (!FIELD_NAME.test(k) && keys.size < MAX_KEYS) keys.add(termOf(k).term);
      visit(x, FIELD_NAME.test(k) ? k : field, depth + 1);
    }
  };
  if (data === undefined) {
    if (typeof result === "string") addText(result);
    else visit(result, "", 0);
  } else {
    visit(data, "", 0);
  }
  const joined = text.join(" | ").slice(0, MAX_TEXT);
  if (values.size === 0 && keys.size === 0 && !joined) return undefined;
  const mark = injectionMarkOf(joined);
  return { v: [...values], ...(keys.size > 0 ? { k: [...keys] } : {}), ...(joined ? { t: joined } : {}), ...(mark ? { m: mark } : {}) };
}

/**
 * The marks of text written to steer an AI agent rather than to inform a person: addressing an
 * assistant or model, telling it to drop or override its instructions, to act before or
 * instead of its task, to keep the user in the dark, or speaking with the user's or a
 * system's voice from inside content; and prompt-format markers. Drawn from the published
 * shapes of prompt injection; English, deterministic. A bill saying "please pay by Friday"
 * has none of them.
 */
const INJECTION_MARKS: RegExp[] = [
  new RegExp(
    String.raw`\b(?:ignore|disregard|forget|override|skip)\b${GAP}{0,30}\b(?:previous|prior|above|earlier|preceding|original|all|any|your|the)\b${GAP}{0,20}\b(?:instructions?|prompts?|rules|directions|guidelines|guidance|tasks?|requests?)\b`,
  ),
  /\b(?:ai|llm|gpt|virtual|digital|dear|hey|hi|attention|note to the|to the) (?:assistant|agent|model|bot)\b/,
  /\b(?:language model|ai model|chatbot|copilot)\b/,
  /\bassistant\s*[:,]/,
  // addressing whatever reads the text: "whoever processes this", "if you are an AI", "to the system handling this"
  /\b(?:whoever|whatever|anyone|anybody|the (?:person|system|agent|tool|bot|program)) (?:is )?(?:process(?:es|ing)|handl(?:es|ing)|read(?:s|ing)|summari[sz](?:es|ing)|act(?:s|ing) on) (?:this|these|it)\b/,
  /\bif you are (?:an? )?(?:ai|assistant|agent|bot|language model|llm)\b/,
  /\b(?:note|message|instructions?|memo|reminder|request) (?:to|for) (?:the |any |an? )?(?:ai |virtual |automated |digital )?(?:assistant|agent|model|bot)s?\b/,
  /\b(?:assistant|agent|bot|ai)s? (?:handling|processing|reading|answering|triaging|working on) (?:this|these|the|my|our)\b/,
  /\b(?:the )?(?:account owner|account holder|owner|user|customer|admin|administrator|management) (?:has|have) (?:already )?(?:authori[sz]ed|approved|asked|requested|instructed|confirmed)\b/,
  // hiding the step from the user
  /\b(?:no need to|don't need to|do not need to|needn't|there is no need to) (?:mention|tell|report|include|say|confirm|notify)\b/,
  new RegExp(
    String.raw`\b(?:before|prior to|instead of|rather than)\b${GAP}{0,20}\b(?:you |doing |completing |solving |answering |finishing |continuing |proceeding |responding )?(?:with )?(?:anything|that|this|it|the (?:\w+ )?(?:task|request|question|summary|answer))\b${GAP}{0,40}\b(?:please|you must|you need|first|make sure)\b`,
  ),
  /\b(?:do not|don't|never) (?:tell|inform|mention|notify|alert|show|ask|let) (?:the user|the customer|the owner|anyone|them|him|her)\b/,
  /\bwithout (?:telling|informing|notifying|asking|alerting|mentioning it to) (?:the user|the customer|the owner|anyone|them)\b/,
  /\b(?:the user|your user|your owner|the account holder|the customer) (?:wants|asked|has asked|would like|instructs|instructed|authori[sz]ed|needs|requires|expects) you\b/,
  /\b(?:new|updated|additional|revised|hidden|secret|system|admin|administrator|developer|priority) (?:instructions?|directives?|orders?|task|objective|policy update)\b/,
  /\b(?:message|note|instructions?|request) (?:from|by) (?:the |your )?(?:user|owner|account holder|assistant|ai|system|administrator|admin|developer|it department|security team)\b/,
  /<\/?(?:information|instructions?|system|important|admin)>|\[\/?(?:system|inst|instructions?|admin)\]|<\|im_start\|>|#{2,}\s*(?:system|instructions?)\b/,
  /\b(?:system prompt|developer mode|jailbreak|you are now|act as (?:an? )?(?:ai|assistant|admin))\b/,
];

/** The first injection mark in a text (normalised), if any. */
export function injectionMarkOf(text: string | undefined): string | undefined {
  if (!text) return undefined;
  for (const re of INJECTION_MARKS) {
    const m = re.exec(text);
    if (m) return m[0].slice(0, 80);
  }
  return undefined;
}

/** The argument values a read keeps, to tell later whether the user named what it read. */
export function namingTerms(args: AttributeValue | undefined): string[] | undefined {
  const terms = argumentTerms(args)
    .filter((t) => t.as !== "text" && (t.pattern !== "value" || t.term.length >= 3) && !(t.pattern === "number" && t.term.length < 2))
    // a path is named by its file name too ("the bill bill-february.txt" for bills/bill-february.txt)
    .flatMap((t) => (t.term.includes("/") && t.pattern === "value" ? [t.term, t.term.slice(t.term.lastIndexOf("/") + 1)] : [t.term]));
  return terms.length > 0 ? [...new Set(terms)].slice(0, MAX_NAMING_TERMS) : undefined;
}

/**
 * The user's own words in an inference span's conversation: `gen_ai.input.messages`, messages
 * with role `user` (a `tool` message is a tool's output), their text parts, normalised. A
 * history cut short by ingest's size limit no longer parses and says nothing.
 */
export function userTextOf(action: AgentAction): string | undefined {
  return messagesTextOf(action, "user");
}

function messagesTextOf(action: AgentAction, role: string): string | undefined {
  const raw = action.attributes["gen_ai.input.messages"];
  if (raw === undefined) return undefined;
  let messages: unknown = raw;
  if (typeof raw === "string") {
    try {
      messages = JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  if (!Array.isArray(messages)) return undefined;
  const parts: string[] = [];
  const collect = (v: unknown, key: string, depth: number) => {
    if (depth > 8 || v === null || v === undefined) return;
    if (typeof v === "string") {
      if (key !== "role" && key !== "type" && key !== "name" && key !== "id") parts.push(v);
      return;
    }
    if (Array.isArray(v)) for (const x of v) collect(x, key, depth + 1);
    else if (typeof v === "object") for (const [k, x] of Object.entries(v as Record<string, unknown>)) collect(x, k, depth + 1);
  };
  for (const m of messages) {
    if (typeof m === "object" && m !== null && (m as { role?: unknown }).role === role) collect(m, "", 0);
  }
  const text = normalise(parts.join(" \n "));
  return text ? text.slice(0, MAX_USER_TEXT) : undefined;
}

/**
 * The agent's system instructions on an inference span (`gen_ai.system_instructions`, or
 * messages with role `system`): what its operator configured, normalised.
 */
export function systemTextOf(action: AgentAction): string | undefined {
  const raw = action.attributes["gen_ai.system_instructions"];
  if (raw !== undefined) {
    const text = normalise(typeof raw === "string" ? raw : JSON.stringify(raw));
    return text ? text.slice(0, MAX_USER_TEXT) : undefined;
  }
  return messagesTextOf(action, "system");
}

const WORD = /[\p{L}\p{N}]/u;
/** Before an e-mail address, these characters would make it part of a longer one. */
const EMAIL_CHAR = /[\p{L}\p{N}._%+-]/u;
/** A short number is a reference only where the text says so (`file 13`, `id: 7`, `#42`), not in a date or an amount. */
const NUMBER_CUE =
  /(?:\bids?|#|\bno\.?|\bnumbers?|\bnr\.?|\bfiles?|\bevents?|\be-?mails?|\bmessages?|\btransactions?|\btickets?|\bitems?|\borders?|\bdocuments?|\bdocs?|\brecords?|\bpr|\bissues?|\bincidents?|\bjobs?|\btasks?)\s*[:=]?\s*["'`(]?$/;

/** Whether `term` occurs in `text` (both normalised) as a whole: not inside a longer word, address or number. */
export function occursIn(text: string | undefined, term: string, pattern: TermPattern): boolean {
  if (!text || !term) return false;
  if (pattern === "iban") {
    const spaced = new RegExp(`(?<![a-z0-9])${[...term].map((c) => c.replace(/[^a-z0-9]/g, "")).join(" ?")}(?![a-z0-9])`);
    return spaced.test(text);
  }
  for (let at = text.indexOf(term); at >= 0; at = text.indexOf(term, at + 1)) {
    const before = at > 0 ? (text[at - 1] as string) : "";
    const after = text[at + term.length] ?? "";
    if (before && (pattern === "email" ? EMAIL_CHAR : WORD).test(before)) continue;
    if (after && WORD.test(after)) continue;
    if (pattern === "number" && term.length < 5 && !NUMBER_CUE.test(text.slice(Math.max(0, at - 16), at))) continue;
    return true;
  }
  return false;
}

/** What a user points at inside a source. */
const SOURCE_NOUNS =
  "links?|urls?|addresse?s?|accounts?|iban|e-?mails?|recipients?|details|info|information|contact|websites?|sites?|articles?|posts?|stor(?:y|ies)|docs?|documents?|files?|numbers?|amounts?|people|persons?|contacts?|users?|hotels?|restaurants?|places?|venues?|tips?|recommendations?|suggestions?|code|values?|changes?|fix(?:es)?|patch(?:es)?|config(?:uration)?|settings|steps|list|message|request";
/** How a user says somebody put a value in a source. */
const POINTING_VERBS =
  "posted|shared|sent|linked|mentioned|given|listed|provided|recommended|included|attached|suggested|specified|named|written|wrote|emailed|e-mailed|messaged|forwarded|proposed|put";
/** Values a user tells the agent to take from a source. */
const VALUE_NOUNS = "links?|urls?|addresse?s?|accounts?|iban|e-?mails?|emails?|contact|details|info|information|numbers?|phone|handle";
/** Where such values are. */
const CONTAINER_NOUNS =
  "websites?|sites?|pages?|profiles?|docs?|documents?|files?|e-?mails?|messages?|dms?|notes?|tickets?|sheets?|spreadsheets?|signatures?|cards?|invoices?|bills?|letters?|threads?|channels?|posts?|comments?";
/** What a delegation verb acts on: the source, its request, or a pronoun for it. */
const DELEGATED =
  "it|this|that|them|these|those|requests?|messages?|e-?mails?|dms?|notes?|tickets?|runbooks?|playbooks?|procedures?|steps|instructions?|checklists?|to-?dos?|lists?|docs?|documents?|files?|bills?|invoices?|comments?|suggestions?|changes?|fix(?:es)?|tasks?|asks?";

/**
 * What the user's words direct the agent to take from a source they name, rather than only to
 * read it. An open delegation hands over the source's whole request: "take care of Farid's
 * message", "apply runbook RB-7", "do what the e-mail asks", "as described in …". A pointer
 * names what to take: "the link Alice posted" (a link), "the restaurant Pedro recommended" (a
 * restaurant), "find her e-mail on her website" (an address), "pay the bill in …" (the account
 * to pay). Replying to a message is not acting on what it says (its sender is the message's own
 * data). Deterministic, English.
 */
export interface Direction {
  /** The user handed over whatever the source asks. */
  open: boolean;
  /** What a pointer points at: `url`, `contact`, `money`, or a thing's name (`restaurant`, `hotel`). Empty when open. */
  scope: string[];
}

const OPEN_DIRECTIVES = [
  new RegExp(
    String.raw`\b(?:handle|deal with|take care of|sort out|process|action|act on|apply|implement|fulfil+|follow|carry out|execute|complete|run through)\b (?:\S+ ){0,3}(?:(?:${DELEGATED})\b|[a-z]{0,8}[-#]?\d+)`,
  ),
  /\bdo (?:what|as|everything|whatever)\b/,
  /\b(?:do|perform|complete|execute|carry out|handle|take care of|follow|action)\b (?:\S+ ){0,3}(?:actions?|tasks?|steps?|instructions?|to-?dos?|requests?|action items?)\b/,
  /\bwhat (?:it|they|he|she|the \w+|\w+) (?:says?|asks?|asked|wants?|wanted|requests?|requested|suggests?|suggested|needs?|needed)\b/,
  /\bas (?:described|specified|instructed|requested|listed|stated|mentioned|outlined|explained|detailed|noted|asked|written|shown|suggested|recommended|agreed) (?:in|by|on|there)\b/,
  /\baccordingly\b/,
  /\b(?:according to|based on|using the (?:details|information|data|info) (?:in|from))\b/,
];
const FIND_POINTER = new RegExp(
  String.raw`\b(?:find|get|take|use|look up|grab|pull|copy)\b${GAP}{0,30}\b(?:${VALUE_NOUNS})\b${GAP}{0,30}\b(?:on|in|from|at)\b${GAP}{0,30}\b(?:${CONTAINER_NOUNS})\b`,
  "g",
);
const POINTERS = [
  // "the link Alice posted", "the restaurant Pedro recommended", "Priya shared an article"
  new RegExp(
    String.raw`\b(?:${SOURCE_NOUNS})\b${GAP}{0,40}\b(?:${POINTING_VERBS})\b|\b(?:${POINTING_VERBS})\b${GAP}{0,30}\b(?:${SOURCE_NOUNS})\b`,
    "g",
  ),
  // "you can find her e-mail on her website", "details are in the onboarding doc"
  FIND_POINTER,
  new RegExp(String.raw`\b(?:${VALUE_NOUNS})\b (?:is|are|can be found|were sent|was sent) (?:in|on|at)\b`, "g"),
  new RegExp(String.raw`\b(?:pay|settle)\b${GAP}{0,30}\b(?:bills?|invoices?|amounts?|rent|balance|fees?|dues?|share|part)\b`, "g"),
];

/** What a pointer's nouns point at (a noun not listed says nothing: "a restaurant tip" points at a restaurant; "details", at contact and payment details). */
const POINTED: [RegExp, string][] = [
  [/^(?:links?|urls?|websites?|sites?|pages?|articles?|posts?|stor(?:y|ies))$/, "url"],
  [/^(?:addresse?s?|e-?mails?|emails?|contacts?|recipients?|people|persons?|users?|phone|handle)$/, "contact"],
  [/^(?:accounts?|iban|bills?|invoices?|amounts?|rent|balance|fees?|dues?|share|part|pay|settle)$/, "money"],
  [/^(?:hotels?|restaurants?|places?|venues?)$/, "thing"],
  [/^(?:details|info|information)$/, "contact"],
  [/^(?:details|info|information)$/, "money"],
  [
    /^(?:code|values?|changes?|fix(?:es)?|patch(?:es)?|config(?:uration)?|settings|steps|list|message|request|docs?|documents?|files?)$/,
    "any",
  ],
];

/** The last directions worked out (a task's steps ask again with the same words). */
const directions = new Map<string, Direction | undefined>();
const MAX_DIRECTIONS = 1_000;

export function directionOf(text: string | undefined): Direction | undefined {
  if (!text) return undefined;
  if (directions.has(text)) return directions.get(text);
  const direction = directionIn(text);
  if (directions.size >= MAX_DIRECTIONS) directions.delete(directions.keys().next().value as string);
  directions.set(text, direction);
  return direction;
}

function directionIn(text: string): Direction | undefined {
  if (OPEN_DIRECTIVES.some((re) => re.test(text))) return { open: true, scope: [] };
  const scope = new Set<string>();
  let pointed = false;
  for (const re of POINTERS) {
    for (const m of text.matchAll(re)) {
      pointed = true;
      // "her e-mail on her website": what is taken (the e-mail), not where it is (the website)
      const taken = re === FIND_POINTER ? m[0].replace(/\b(?:on|in|from|at)\b(?!.*\b(?:on|in|from|at)\b).*$/, "") : m[0];
      for (const word of taken.split(/[^a-z-]+/)) {
        for (const [w, what] of POINTED) {
          if (!w.test(word)) continue;
          if (what === "any") return { open: true, scope: [] };
          scope.add(what === "thing" ? word.replace(/s$/, "") : what);
        }
      }
    }
  }
  return pointed ? { open: false, scope: [...scope] } : undefined;
}

export function directsToSources(text: string | undefined): boolean {
  return directionOf(text) !== undefined;
}

/** An earlier tool output as lineage sees it. */
export interface EarlierOutput {
  index: number;
  tool: string;
  agentId?: string;
  output?: OutputIndex;
  /** What the user named of the call or its output, and whether the user directed the agent to act on it (set by `markNamedSources`). */
  named?: string;
  directed?: boolean;
  /** What the direction covers: whatever the source asks (open), or what the user pointed at (`directionOf`). */
  direction?: Direction;
}

/** The sources of a step: the request, the user's words, and the earlier outputs with what the user said of them. */
export interface Sources {
  request?: string;
  user?: string;
  /** Parties the user's words refer to by role (`rolesOf`). */
  roles?: string[];
  /** The agent's system instructions: its operator's configuration (an address it reports to). */
  system?: string;
  outputs: EarlierOutput[];
}

const valueSets = new WeakMap<OutputIndex, { v: Set<string>; k: Set<string> }>();
function setsOf(o: OutputIndex) {
  let s = valueSets.get(o);
  if (!s) {
    s = { v: new Set(o.v), k: new Set(o.k ?? []) };
    valueSets.set(o, s);
  }
  return s;
}

/** How an output holds a term: a field's whole value or a key first, else in its text; undefined: not at all. */
function placeIn(o: OutputIndex, term: string, pattern: TermPattern): TermPlace | undefined {
  const sets = setsOf(o);
  if (sets.v.has(term)) return "value";
  if (sets.k.has(term)) return "key";
  return occursIn(o.t, term, pattern) ? "text" : undefined;
}

/** A value of an output specific enough that the user's words naming it mean that output (a sender, a file name, a title). */
const namesOutput = (v: string) =>
  v.length >= 3 && !/^\d{1,4}$/.test(v) && !/^(?:true|false|null|none|yes|no|read|unread|sent|draft|inbox|public|private)$/.test(v);

const namedValues = new WeakMap<OutputIndex, { said: string; named: string | undefined }>();

const namedArguments = new WeakMap<string[], { said: string; named: string | undefined }>();

/** The argument of a call the user's words name, if any (remembered per call and words: a task's steps ask again and again). */
function namedByArguments(terms: string[], said: string): string | undefined {
  if (terms.length === 0) return undefined;
  const cached = namedArguments.get(terms);
  if (cached?.said === said) return cached.named;
  const named = terms.find((t) => occursIn(said, t, patternOf(t)));
  namedArguments.set(terms, { said, named });
  return named;
}

/** A value of the output the user's words name, if any (remembered per output and words: steps ask again and again). */
function namedValueOf(o: OutputIndex, said: string): string | undefined {
  const cached = namedValues.get(o);
  if (cached?.said === said) return cached.named;
  let named = o.v.find((v) => namesOutput(v) && occursIn(said, v, patternOf(v)));
  // a person named by first or last name: a part of an address's local part ("Pedro" for pedro.yilmaz@…)
  if (!named) {
    for (const v of o.v) {
      if (patternOf(v) !== "email") continue;
      const part = v
        .slice(0, v.indexOf("@"))
        .split(/[._+-]/)
        .find((p) => p.length >= 3 && !/\d/.test(p) && !MAILBOX_WORDS.has(p) && occursIn(said, p, "value"));
      if (part) {
        named = v;
        break;
      }
    }
  }
  namedValues.set(o, { said, named });
  return named;
}

/** Local parts of addresses that name a mailbox, not a person. */
const MAILBOX_WORDS = new Set(
  "info support admin help contact hello sales billing noreply no reply team office mail news newsletter service services security accounts account invoices orders booking bookings hr jobs careers press marketing notifications alerts ops dev it".split(
    " ",
  ),
);

/**
 * Parties the user refers to by role ("send the vendor the logs", "pay the landlord"): the
 * role words of the user's words. A value in a source's text right after that role word
 * ("Vendor contact: support@datadome.example") is the party the user meant.
 */
const ROLES =
  /\bthe (vendor|supplier|customer|client|sender|author|landlord|contractor|partner|reporter|requester|organi[sz]er|host|agency|recruiter|candidate|new hire|plumber|electrician|school|doctor|insurer|caterer|venue|speaker|guest)s?\b/g;

export function rolesOf(said: string | undefined): string[] {
  if (!said) return [];
  return [...new Set([...said.matchAll(ROLES)].map((m) => m[1] as string))];
}

/** Whether a role word stands shortly before the term in the text (the term is that party's). */
function roleBefore(text: string | undefined, term: string, roles: string[]): string | undefined {
  if (!text || roles.length === 0) return undefined;
  for (let at = text.indexOf(term); at >= 0; at = text.indexOf(term, at + 1)) {
    const window = text.slice(Math.max(0, at - 60), at);
    const role = roles.find((r) => window.includes(r));
    if (role) return role;
  }
  return undefined;
}

/**
 * What the user said of each earlier output: whether the user's words name the call that
 * produced it (one of its argument values) or something it returned (a sender, a file name),
 * and whether they tell the agent to act on such sources. A call whose argument came from an
 * output the user directed the agent to (the link in the message the user pointed at) is
 * named too: the user's direction carries along.
 */
export function markNamedSources(sources: Sources, naming: Map<number, string[]>): void {
  const said = [sources.request, sources.user].filter(Boolean).join(" | ");
  if (!said) return;
  const direction = directionOf(said);
  for (const [i, o] of sources.outputs.entries()) {
    const terms = naming.get(o.index) ?? [];
    let named = namedByArguments(terms, said) ?? (o.output ? namedValueOf(o.output, said) : undefined);
    // named because its argument came from a source the user directed the agent to: named, not directed itself
    let carried = false;
    if (!named) {
      // carried along: an argument found in an earlier output the user directed the agent to
      for (const earlier of sources.outputs.slice(0, i)) {
        if (!earlier.directed || !earlier.output) continue;
        named = terms.find((t) => placeIn(earlier.output as OutputIndex, t, patternOf(t)) !== undefined);
        if (named) {
          carried = true;
          break;
        }
      }
    }
    if (named) {
      o.named = named;
      if (direction && !carried) {
        o.directed = true;
        o.direction = direction;
      }
    }
  }
}

/** Where a value of a step's arguments appears in its sources (the most recent outputs first, at most MAX_ORIGINS). */
export function originsOf(term: string, pattern: TermPattern, sources: Sources): TermOrigin[] {
  const out: TermOrigin[] = [];
  if (occursIn(sources.request, term, pattern)) out.push({ source: "request" });
  if (occursIn(sources.user, term, pattern)) out.push({ source: "user" });
  if (occursIn(sources.system, term, pattern)) out.push({ source: "system" });
  for (let i = sources.outputs.length - 1; i >= 0 && out.length < MAX_ORIGINS; i--) {
    const o = sources.outputs[i] as EarlierOutput;
    if (!o.output) continue;
    const as = placeIn(o.output, term, pattern);
    if (!as) continue;
    out.push({
      source: "output",
      index: o.index,
      tool: o.tool,
      ...(o.agentId ? { agentId: o.agentId } : {}),
      as,
      ...(o.named ? { named: o.named } : {}),
      ...(o.directed ? { directed: true } : {}),
      ...(o.direction && !o.direction.open ? { scope: o.direction.scope } : {}),
      ...(as === "text" && o.output.m ? { mark: o.output.m } : {}),
    });
    if (as === "text") {
      const role = roleBefore(o.output.t, term, sources.roles ?? []);
      if (role) (out.at(-1) as TermOrigin).role = role;
    }
  }
  return out;
}

/** The lineage of a step's arguments. */
export function argumentLineage(args: AttributeValue | undefined, sources: Sources): ArgumentTerm[] {
  return argumentTerms(args).map((t) => ({ ...t, origins: originsOf(t.term, t.pattern, sources) }));
}

/**
 * Words that ask for each kind of sensitive call (English; `intents` in the profile adds
 * more per tool). A request "asks" when it says one of them, names the tool, or gave one of
 * the call's argument values.
 */
export const SENSITIVE_ASKS: Record<Sensitivity, RegExp> = {
  money: new RegExp(
    String.raw`\b(?:pay|pays|paid|paying|payments?|transfers?|transferring|wire|wiring|refunds?|reimburse\w*|settle|top up|deposit|donat\w+|tip|standing orders?|send(?:ing)? (?:\S+ ){0,3}(?:money|funds|cash|amount|sum|eur|euros?|usd|dollars?|gbp|pounds?|chf)|send(?:ing)? (?:[€$£]|\d)|schedul\w+ (?:\S+ ){0,2}(?:payments?|transactions?|transfers?)|book\w*|reserv\w+|rent(?:al|ing)?|hire|(?:take care of|handle|deal with|sort out|process|clear)${GAP}{0,40}\b(?:bills?|invoices?|payments?|rent|fees?|dues|balance|share)|(?:bills?|invoices?)\b${GAP}{0,60}\b(?:take care|handle|deal with|sort|process))\b`,
  ),
  credentials:
    /\b(?:passwords?|passcodes?|passphrases?|pins?|credentials?|secrets?|api[ -]?keys?|keys?|tokens?|2fa|two-factor|mfa|rotat\w+|reset)\b/,
  account: new RegExp(
    String.raw`\b(?:(?:change|changing|update|updating|set|edit|modify|correct|fix|replace|new)\b${GAP}{0,40}\b(?:address|e-?mail|phone|name|profile|details|settings|info|information|account|preferences?)|moved|moving|relocat\w+)\b`,
  ),
  deletion:
    /\b(?:delet\w+|remov\w+|eras\w+|clear\w*|clean(?:ing)? up|trash\w*|purg\w+|discard\w*|get rid of|cancel\w*|unsubscrib\w+|revok\w+|drop|archiv\w+|stop\w*|quit|terminat\w+|discontinu\w+|end (?:my|the|our|it|that|this))\b/,
  access: new RegExp(
    String.raw`\b(?:shar\w+|invit\w+|add(?:ing)?\b${GAP}{0,60}\b(?:to|as)|grant\w*|give\b${GAP}{0,30}\baccess|permissions?|access|onboard\w*|offboard\w*|remov\w+\b${GAP}{0,40}\bfrom|kick\w*)\b`,
  ),
  operations:
    /\b(?:deploy\w*|releas\w+|roll(?:ing)? ?back|roll(?:ing)? ?out|restart\w*|reboot\w*|scal\w+|merg\w+|failover|fail over|shut ?down|disabl\w+|enabl\w+|migrat\w+|apply|hotfix\w*|patch\w*|rotat\w+|redeploy\w*|resolv\w+|close (?:out|it|the)|mitigat\w+)\b/,
};

/** The kinds of sensitive action a text asks for (a source the user handed a request to). */
export function asksOf(text: string | undefined): Sensitivity[] {
  if (!text) return [];
  return Sensitivity.options.filter((k) => SENSITIVE_ASKS[k].test(text));
}
