import type { ToolEffect } from "../../schemas/action.js";
import type { ArgumentTerm } from "../../schemas/lineage.js";
import type { AgentProfile, ArgumentKind, ToolGrant } from "../../schemas/policy.js";
import type { Step } from "../../schemas/step.js";

/**
 * What a step's arguments are, as the detector's rules see them: each value's kind (from the
 * profile's `arguments`, else from the value's shape and the argument's name), the tool's
 * grant, and the destinations its arguments name.
 */

export const grantOf = (profile: AgentProfile | undefined, tool: string | undefined): ToolGrant | undefined =>
  tool === undefined ? undefined : profile?.tools.find((t) => t.name === tool);

/**
 * What a step does, failing closed: the profile's grant decides (an agent's own span cannot
 * talk its way out of egress by calling it a read); the span's `agent.tool.effect` counts only
 * where the grant says nothing; and a tool the profile marks sensitive, whose effect nobody
 * says, counts as the worst the profile allows (egress where it allows any, else a write).
 */
export function effectOf(step: Step, profile: AgentProfile | undefined): ToolEffect | undefined {
  const grant = grantOf(profile, step.tool?.name);
  if (grant?.effect) return grant.effect;
  if (step.effect) return step.effect;
  if (grant?.sensitive && profile)
    return profile.egress.length > 0 || profile.tools.some((t) => t.effect === "egress") ? "egress" : "write";
  return undefined;
}

/** The argument's name: its path's last segment (`event.location` → `location`). */
const lastSegment = (path: string) => path.slice(path.lastIndexOf(".") + 1).toLowerCase();

/** Kinds by argument name, where the profile does not say (docs/policy.md). */
const BY_NAME: [RegExp, ArgumentKind][] = [
  [
    /^(?:to|tos|recipients?|cc|bcc|emails?|e_?mail_?address(?:es)?|user|users|user_?name|user_?email|members?|participants?|attendees?|invitees?|assignees?|reviewers?|phone|phone_?number|contact|target_?email|send_?to|forward_?to|reply_?to)$/,
    "recipient",
  ],
  [/^(?:url|urls|uri|link|links|href|website|site|endpoint|webhook|webhook_?url|callback|callback_?url|target_?url|page_?url)$/, "url"],
  [/^(?:iban|account|account_?number|recipient_?account|to_?account|bank_?account|card|card_?number|wallet|beneficiary|payee)$/, "account"],
  [/^(?:ids?|.+_ids?|id_.+)$/, "id"],
  [/^(?:body|content|text|message|description|note|notes|comment|summary|subject|title|caption|post|reply|html|markdown)$/, "text"],
];

/** What an argument value is: declared by the profile for its path (or the path's top-level key), else by its shape and name. */
export function kindOf(term: Pick<ArgumentTerm, "path" | "pattern" | "as">, grant: ToolGrant | undefined): ArgumentKind | undefined {
  const declared = grant?.arguments;
  if (declared) {
    const exact = declared[term.path] ?? declared[lastSegment(term.path)];
    if (exact) return exact;
    const top = term.path.split(".")[0] ?? term.path;
    if (declared[top]) return declared[top];
  }
  if (term.as !== "text") {
    if (term.pattern === "email" || term.pattern === "phone") return "recipient";
    if (term.pattern === "url" || term.pattern === "host") return "url";
    if (term.pattern === "iban") return "account";
  }
  const name = lastSegment(term.path);
  for (const [re, kind] of BY_NAME) if (re.test(name)) return kind;
  return undefined;
}

/** Whether the profile declared the argument's kind (egress and flow rules look only at those). */
export function declaredKindOf(term: Pick<ArgumentTerm, "path">, grant: ToolGrant | undefined): ArgumentKind | undefined {
  const declared = grant?.arguments;
  if (!declared) return undefined;
  return declared[term.path] ?? declared[lastSegment(term.path)] ?? declared[term.path.split(".")[0] ?? term.path];
}

/** A destination a step sends to: a host, or an e-mail address. */
export interface Destination {
  host: string;
  email?: string;
  /** Where it came from: the span's `server.address`/`url.full`, or an argument. */
  from: string;
}

/** The domain part of an e-mail address. */
const domainOfEmail = (email: string) => email.slice(email.lastIndexOf("@") + 1);

/**
 * Where a step sends: the span's destination, and the recipients and URLs of the arguments the
 * profile declares `recipient` or `url` (an e-mail address by its domain; a user or channel
 * name has no destination to judge).
 */
export function destinationsOf(step: Step, grant: ToolGrant | undefined, spanHost: string | undefined): Destination[] {
  const out: Destination[] = [];
  if (spanHost) out.push({ host: spanHost, from: "span" });
  for (const t of step.before?.arguments ?? []) {
    const kind = declaredKindOf(t, grant);
    if (kind !== "recipient" && kind !== "url") continue;
    if (t.pattern === "email") out.push({ host: domainOfEmail(t.term), email: t.term, from: t.path });
    else if (t.pattern === "url" || t.pattern === "host") out.push({ host: t.term, from: t.path });
  }
  const seen = new Set<string>();
  return out.filter((d) => {
    const key = `${d.email ?? d.host}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Whether an allowlist (the profile's egress, a flow's) allows a destination: `*` anything;
 * a host, or `*.example.com` for the domain and its subdomains (an e-mail address by its
 * domain); `*@example.com` or a whole address for e-mail recipients.
 */
export function destinationAllowed(dest: Pick<Destination, "host" | "email">, allow: string[]): boolean {
  const host = dest.host.toLowerCase();
  return allow.some((a) => {
    const p = a.toLowerCase();
    if (p === "*") return true;
    if (p.includes("@")) {
      if (!dest.email) return false;
      return p.startsWith("*@") ? domainOfEmail(dest.email) === p.slice(2) : dest.email === p;
    }
    return p.startsWith("*.") ? host === p.slice(2) || host.endsWith(p.slice(1)) : host === p;
  });
}

/** Whether a value is one of the owner's own identities (`*` wildcard). */
export function isOwnIdentity(term: string, identities: string[]): boolean {
  return identities.some((pattern) => {
    const p = pattern.toLowerCase().replace(/\s+/g, "");
    if (!p.includes("*")) return p === term;
    const re = new RegExp(
      `^${p
        .split("*")
        .map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
    );
    return re.test(term);
  });
}
