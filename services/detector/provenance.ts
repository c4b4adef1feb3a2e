import type { ArgumentTerm, TermOrigin } from "../../schemas/lineage.js";
import type { AgentProfile, ArgumentKind, Sensitivity, ToolGrant } from "../../schemas/policy.js";
import type { Step } from "../../schemas/step.js";
import { normalise, SENSITIVE_ASKS } from "../pathfinder/lineage.js";
import { effectOf, grantOf, isOwnIdentity, kindOf } from "./arguments.js";
import type { Hit } from "./rules.js";

/**
 * Provenance and intent: whether what a step does came from the user or from content the
 * agent read. The pathfinder says where each argument value had been seen (schemas/lineage.ts);
 * these rules judge it against the profile (which tools' output is untrusted, what each
 * argument is, which tools are sensitive).
 *
 * A value is **vouched for** by the user's request or messages, the owner's own identities, a
 * trusted tool's structured data (a field's whole value or a key, never its text), or a source
 * the user directed the agent to act on ("pay the bill in bills/march.txt"). It is **tainted**
 * when, vouched by none of these, it appears in text the agent read (an untrusted output, or
 * any output's text fields: somebody's words), where an injected instruction can put it. An
 * untrusted tool's own structured data (a message's sender, a listing's ids) neither vouches
 * nor taints: replying to a sender is ordinary.
 */

/** Kinds whose whole value says what the call acts on or where it goes. */
const ADDRESSED: ReadonlySet<ArgumentKind> = new Set(["recipient", "url", "account", "id", "name", "secret"]);
/** Kinds whose value, made up from nowhere after untrusted content, is suspicious in itself. */
const DESTINATION: ReadonlySet<ArgumentKind> = new Set(["recipient", "url", "account"]);
/** Entities inside text that say where something goes; the shapes of an address, a link, an account. */
const TEXT_ENTITIES = new Set(["email", "url", "host", "iban", "phone"]);
const ADDRESS_PATTERNS = TEXT_ENTITIES;
/** Links and addresses: what a phishing message carries. */
const LINK_PATTERNS = new Set(["email", "url", "host"]);

const trusted = (profile: AgentProfile, tool: string | undefined) =>
  tool !== undefined && profile.tools.find((t) => t.name === tool)?.output === "trusted";

/** Whether the task read untrusted content before the step: an untrusted tool's output (a tool the profile does not know is untrusted). */
export function readUntrusted(step: Step, profile: AgentProfile): string | undefined {
  return step.before?.reads?.find((r) => !trusted(profile, r.tool))?.tool;
}

type Verdict = { vouched: string } | { tainted: TermOrigin; named?: string } | { explained: TermOrigin } | { nowhere: true };

/**
 * How the task came by a value, in this order:
 * 1. vouched for by the user's words, the system instructions, the owner's identities, or a
 *    trusted tool's structured data;
 * 2. tainted by text that carries the marks of an instruction aimed at the agent, whatever the
 *    tool, even a source the user pointed at ("pay the bill in …" does not cover "and also, AI
 *    assistant, send 500 EUR to …");
 * 3. vouched for by a trusted tool's text (a name or id in a plain-text listing; not an address,
 *    link or account a trusted tool merely mirrors), by a source the user directed
 *    the agent to act on ("do what Ben's message asks", "the restaurant Pedro recommended"), by
 *    the party the user named by role ("send the vendor …": the address after "vendor" in the
 *    ticket) or, for a value inside the text the call writes (a link in a summary), by a source
 *    the user named ("a digest of #general");
 * 4. tainted by untrusted text, where an injected instruction hides;
 * 5. explained by an untrusted tool's own structured data (a message's sender), or seen nowhere.
 */
/** Whether a directed source's direction covers a value: anything, or what the user pointed at (a link, an address, the account to pay, the restaurant). */
function inScope(o: TermOrigin, term: ArgumentTerm, kind: ArgumentKind | undefined, tool: string): boolean {
  if (!o.scope) return true;
  return o.scope.some((s) => {
    if (s === "url") return term.pattern === "url" || term.pattern === "host" || kind === "url";
    if (s === "contact") return term.pattern === "email" || term.pattern === "phone" || kind === "recipient";
    if (s === "money") return term.pattern === "iban" || kind === "account";
    // a thing: a name given where the call names that kind of thing (`restaurant`, `reserve_restaurant`)
    return kind === "name" && (term.path.toLowerCase().includes(s) || tool.toLowerCase().includes(s));
  });
}

/** Whether the call sends where the user said: a recipient or URL the user gave, or no destination at all (a write in place). */
function destinationFromUser(step: Step, grant: ToolGrant | undefined, profile: AgentProfile): boolean {
  const destinations = (step.before?.arguments ?? []).filter((t) => t.as !== "text" && DESTINATION.has(kindOf(t, grant) ?? "none"));
  return (
    destinations.length === 0 ||
    destinations.some((t) => isOwnIdentity(t.term, profile.identities) || t.origins.some((o) => o.source !== "output"))
  );
}

function verdictOf(
  term: ArgumentTerm,
  profile: AgentProfile,
  call: { kind: ArgumentKind | undefined; tool: string; toUser: boolean },
): Verdict {
  if (isOwnIdentity(term.term, profile.identities)) return { vouched: "the owner's own identity" };
  const outputs: TermOrigin[] = [];
  for (const o of term.origins) {
    if (o.source === "request") return { vouched: "the task's objective" };
    if (o.source === "user") return { vouched: "the user's messages" };
    if (o.source === "system") return { vouched: "the agent's system instructions" };
    if (o.as !== "text" && trusted(profile, o.tool)) return { vouched: `${o.tool}'s structured data (trusted)` };
    outputs.push(o);
  }
  const marked = outputs.find((o) => o.as === "text" && o.mark);
  if (marked) return { tainted: marked, ...(marked.named ? { named: marked.named } : {}) };
  // a trusted tool's text vouches for a name or an id it lists (a plain-text listing of
  // restaurants), not for an address, link or account it mirrors (a page title, a file's content)
  const trustedText = ADDRESS_PATTERNS.has(term.pattern) ? undefined : outputs.find((o) => o.as === "text" && trusted(profile, o.tool));
  if (trustedText) return { vouched: `${trustedText.tool}'s output (trusted)` };
  const directed = outputs.find((o) => o.directed && inScope(o, term, call.kind, call.tool));
  if (directed) return { vouched: `${directed.tool ?? "a source"}, which the user pointed at ("${directed.named}") and asked to act on` };
  const role = outputs.find((o) => o.role);
  if (role) return { vouched: `the ${role.role} the user referred to, as ${role.tool} names them` };
  // a link or address inside what the call passes on, from a source the user named, going where the user said
  const named = term.as === "text" && call.toUser ? outputs.find((o) => o.named) : undefined;
  if (named)
    return { vouched: `${named.tool}, the source the user named ("${named.named}"), whose content the call passes on where the user said` };
  const tainted = outputs.find((o) => o.as === "text");
  if (tainted) return { tainted, ...(tainted.named ? { named: tainted.named } : {}) };
  const explained = outputs[0];
  return explained ? { explained } : { nowhere: true };
}

const where = (o: TermOrigin) =>
  `the text of ${o.tool ?? "an earlier step"}${o.index !== undefined ? ` (step ${o.index + 1})` : ""}, untrusted`;

/**
 * `provenance.untrusted_argument`: a write, an egress or a sensitive call addressed to a value
 * (a recipient, URL, account, id, name, secret; or an address, link or account inside the text
 * it writes or sends) that came from text the agent read and nowhere that vouches for it.
 * `provenance.unexplained_argument`: a recipient, URL or account seen nowhere at all before
 * the call (put together from pieces, spelled out in words), after the task read untrusted
 * content. One finding per step: the first tainted value, else the first unexplained one.
 */
export function provenanceHits(step: Step, profile: AgentProfile): Hit[] {
  const terms = step.before?.arguments;
  if (!step.tool || !terms || terms.length === 0) return [];
  const grant = grantOf(profile, step.tool.name);
  const effect = effectOf(step, profile);
  // a read is judged only by where it goes: a URL an injected instruction gave (a page to visit, a query to leak through)
  const judged = effect === "write" || effect === "egress" || grant?.sensitive !== undefined;
  if (!judged && effect !== "read" && effect !== undefined) return [];
  const agent = step.agent.id ?? "The agent";
  const vouchedBy = [
    "the task's objective",
    "the user's messages",
    "the agent's system instructions",
    "trusted tool data",
    "the owner's identities",
    "a source the user directed",
  ];
  let unexplained: { term: ArgumentTerm; kind: ArgumentKind } | undefined;
  const toUser = destinationFromUser(step, grant, profile);
  for (const term of terms) {
    const kind = kindOf(term, grant);
    if (kind === undefined || kind === "none") {
      if (term.as !== "text") continue;
    }
    const addressed = term.as !== "text" && kind !== undefined && ADDRESSED.has(kind);
    const mentioned = term.as === "text" && TEXT_ENTITIES.has(term.pattern);
    if (!addressed && !mentioned) continue;
    // short numbers under no declared kind are amounts and counts, not references
    if (term.pattern === "number" && kind !== "id" && kind !== "account") continue;
    if (!judged && kind !== "url") continue;
    const verdict = verdictOf(term, profile, { kind, tool: step.tool.name, toUser });
    if ("tainted" in verdict && (judged || verdict.tainted.mark)) {
      const o = verdict.tainted;
      const named = o.mark
        ? ` That text carries the marks of an instruction aimed at the agent ("${o.mark}").`
        : verdict.named
          ? ` The user's words name that source ("${verdict.named}") but do not ask to act on what it says.`
          : "";
      return [
        {
          rule: "provenance.untrusted_argument",
          explanation: `${agent} called ${step.tool.name} (${effect ?? grant?.sensitive}) with "${term.term}" ${
            term.as === "text" ? `inside its ${term.path}` : `as its ${term.path}`
          } (${kind ?? term.pattern}), which came from ${where(o)}, and not from the task's objective, the user's messages or trusted data: the mark of an injected instruction.${named}`,
          observed: {
            tool: step.tool.name,
            argument: term.path,
            kind: kind ?? term.pattern,
            value: term.term,
            placement: term.as === "text" ? "inside text" : "whole value",
            source: { tool: o.tool, step: o.index !== undefined ? o.index + 1 : undefined, in: o.as },
            ...(o.mark ? { injectionMark: o.mark } : {}),
            ...(verdict.named ? { userNamedSource: verdict.named, userDirected: o.directed === true } : {}),
            seenIn: term.origins.map(originLabel),
          },
          expected: { argumentsFrom: vouchedBy },
        },
      ];
    }
    // an address, link or account (not a name: a channel, a user) the call sends to, or a link or
    // address inside what it sends: seen nowhere, it was put together (a de-obfuscated hxxps, "name at domain")
    const destination = addressed && DESTINATION.has(kind as ArgumentKind) && ADDRESS_PATTERNS.has(term.pattern);
    const relayed = mentioned && effect === "egress" && LINK_PATTERNS.has(term.pattern);
    if (judged && "nowhere" in verdict && (destination || relayed)) unexplained ??= { term, kind: kind ?? "text" };
  }
  if (unexplained) {
    const untrustedTool = readUntrusted(step, profile);
    // "seen nowhere" means something only when the task's reads were all recorded (tool results are opt-in in OTel)
    const unrecorded = step.before?.reads?.some((r) => !r.recorded && (grantOf(profile, r.tool)?.effect ?? "read") === "read");
    if (!untrustedTool || unrecorded) return [];
    const { term, kind } = unexplained;
    return [
      {
        rule: "provenance.unexplained_argument",
        explanation: `${agent} called ${step.tool.name} (${effect ?? grant?.sensitive}) with ${kind === "text" ? "" : `${kind} `}"${term.term}" ${term.as === "text" ? `inside its ${term.path}` : `as its ${term.path}`}, a value the task never saw before (not in the objective, the user's or system's messages, or any output), after it read untrusted content (${untrustedTool}): an address put together from pieces or words is how injected instructions evade a plain match.`,
        observed: {
          tool: step.tool.name,
          argument: term.path,
          kind,
          value: term.term,
          placement: term.as === "text" ? "inside text" : "whole value",
          seenIn: [],
          untrustedRead: untrustedTool,
        },
        expected: { argumentsFrom: vouchedBy },
      },
    ];
  }
  return [];
}

function originLabel(o: TermOrigin): string {
  if (o.source !== "output") return o.source;
  const said = o.directed ? ":user-directed" : o.named ? ":user-named" : "";
  return `${o.tool ?? "output"}#${o.index !== undefined ? o.index + 1 : "?"}:${o.as}${said}${o.mark ? ":injection-marks" : ""}`;
}

/** Whether the user's words ask for a call of this tool: its sensitivity's words, its `intents`, an argument value they gave, or a source the user handed the request to. */
export function requestAsks(step: Step, grant: ToolGrant & { sensitive: Sensitivity }): string | undefined {
  const said = [step.context?.intent ? normalise(step.context.intent) : "", step.before?.userText ?? ""].filter(Boolean).join(" | ");
  const word = SENSITIVE_ASKS[grant.sensitive].exec(said)?.[0];
  if (word) return `"${word}"`;
  // the user handed the request to a source ("do what Quinn's e-mail asks"), and that source asks for it
  const delegated = step.before?.reads?.find((r) => r.directed && !r.marked && r.asks?.includes(grant.sensitive));
  if (delegated) return `${delegated.tool} (step ${delegated.index + 1}), the source the user handed the request to ("${delegated.named}")`;
  const intent = grant.intents?.find((w) => said.includes(normalise(w)));
  if (intent) return `"${intent}"`;
  const given = step.before?.arguments?.find(
    (t) =>
      t.as !== "text" && t.term.length >= 3 && ADDRESSED.has(kindOf(t, grant) ?? "none") && t.origins.some((o) => o.source !== "output"),
  );
  if (given) return `the argument value "${given.term}"`;
  return undefined;
}

/**
 * `intent.unrequested_action`: a call of a tool the profile marks sensitive (money,
 * credentials, account, deletion, access, operations) that the user's request never asked
 * for. High when the task had read untrusted content before it (the mark of an injected
 * instruction), medium otherwise. Entity-free harm (a password change, a deletion by id)
 * has no argument for provenance to trace; this is its rule.
 */
export function intentHits(step: Step, profile: AgentProfile): Hit[] {
  if (!step.tool) return [];
  const grant = grantOf(profile, step.tool.name);
  if (!grant?.sensitive) return [];
  const sensitive = grant.sensitive;
  if (requestAsks(step, { ...grant, sensitive })) return [];
  const untrusted = readUntrusted(step, profile);
  const agent = step.agent.id ?? "The agent";
  return [
    {
      rule: "intent.unrequested_action",
      explanation: `${agent} called ${step.tool.name}, a ${sensitive} action, though the user's request never asked for one${
        untrusted ? ` — after reading untrusted content (${untrusted}), the mark of an injected instruction` : ""
      }.`,
      observed: {
        tool: step.tool.name,
        sensitive,
        request: step.context?.intent ?? null,
        ...(untrusted ? { untrustedRead: untrusted } : {}),
      },
      expected: {
        askedFor: `a request that asks for a ${sensitive} action (docs/policy.md), names ${step.tool.name}, or gives its arguments`,
      },
      ...(untrusted ? {} : { severity: "medium" as const }),
    },
  ];
}
