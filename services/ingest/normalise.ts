import { z } from "zod";
import { type AgentAction, type Attributes, type AttributeValue, DataClassification, TaskScope, ToolEffect } from "../../schemas/action.js";
import type { OtlpSpan } from "./otlp.js";
import { NO_REDACTION, PAYLOAD_ATTRIBUTES, type Redactor } from "./redaction.js";

/**
 * Span → agent action, per the span conventions (docs/span-conventions.md): the OTel GenAI
 * semantic conventions where they define a thing, Driftwatch's `agent.*` names otherwise.
 */

/** Tool arguments and results longer than this are cut (they are evidence, not payload). */
export const MAX_TOOL_PAYLOAD_CHARS = 16_384;
/** Any other string attribute longer than this is cut. */
export const MAX_ATTRIBUTE_CHARS = 8_192;

const TRUNCATED = "…[truncated]";

const cut = (v: string, max: number): string => (v.length > max ? `${v.slice(0, max)}${TRUNCATED}` : v);

/** Caps oversized string values (also inside arrays and maps); payload attributes have their own cap. */
function capped(v: AttributeValue, depth = 0): AttributeValue {
  if (typeof v === "string") return cut(v, MAX_ATTRIBUTE_CHARS);
  if (v === null || typeof v !== "object" || depth > 8) return v;
  if (Array.isArray(v)) return v.map((x) => capped(x, depth + 1));
  const out: { [k: string]: AttributeValue } = {};
  for (const [k, x] of Object.entries(v)) out[k] = capped(x, depth + 1);
  return out;
}

const ARGUMENTS = "gen_ai.tool.call.arguments";
const RESULT = "gen_ai.tool.call.result";
const PAYLOAD_KEYS = new Set([ARGUMENTS, RESULT, "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"]);

/**
 * Copies `from` into `into` with sizes capped (one pass over the map, no entry arrays). A
 * tool payload too long to keep whole has its keys redacted before it is cut (cut JSON no
 * longer parses, so its keys could not be found after).
 */
function copyCapped(from: Attributes, into: Attributes, redactor: Redactor): void {
  for (const k of Object.keys(from)) {
    let v = from[k] as AttributeValue;
    if (typeof v === "string" && v.length > MAX_TOOL_PAYLOAD_CHARS && redactor.active && PAYLOAD_ATTRIBUTES.has(k))
      v = redactor.payloadText(v);
    into[k] = typeof v === "string" ? cut(v, PAYLOAD_KEYS.has(k) ? MAX_TOOL_PAYLOAD_CHARS : MAX_ATTRIBUTE_CHARS) : capped(v);
  }
}

/** Merges resource and span attributes (span wins), caps sizes and applies redaction. */
function mergedAttributes(span: OtlpSpan, redactor: Redactor): Attributes {
  const merged: Attributes = {};
  copyCapped(span.resource, merged, redactor);
  copyCapped(span.attributes, merged, redactor);
  return redactor.attributes(merged);
}

const str = (v: AttributeValue | undefined): string | undefined =>
  typeof v === "string" && v.length > 0 ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined;

/**
 * The value a field of `action` took from attribute `key`, if it took one: such an
 * attribute is not repeated in `attributes` (each value travels once on the bus). A value
 * a field could not take (an unknown effect, a broken scope, the deprecated name beside the
 * current one with another value) stays in `attributes`, where it is evidence.
 */
const CARRIED = new Map<string, (a: AgentAction) => string | undefined>([
  ["gen_ai.operation.name", (a) => a.operation],
  ["gen_ai.provider.name", (a) => a.provider],
  ["gen_ai.system", (a) => a.provider],
  ["gen_ai.agent.id", (a) => a.agent.id],
  ["gen_ai.agent.name", (a) => a.agent.name],
  ["spiffe.id", (a) => a.agent.spiffeId],
  ["deployment.environment.name", (a) => a.environment],
  ["deployment.environment", (a) => a.environment],
  ["agent.task.id", (a) => (a.taskIdSource === "attribute" ? a.taskId : undefined)],
  ["baggage.agent.task.id", (a) => (a.taskIdSource === "baggage" ? a.taskId : undefined)],
  ["agent.task.parent_id", (a) => a.parentTaskId],
  ["agent.task.intent", (a) => a.intent],
  ["gen_ai.tool.name", (a) => a.tool?.name],
  ["gen_ai.tool.call.id", (a) => a.tool?.callId],
  ["gen_ai.tool.type", (a) => a.tool?.type],
  ["agent.tool.effect", (a) => a.effect],
  ["data.classification", (a) => a.dataClassification],
  ["server.address", (a) => a.destination?.address],
  ["url.full", (a) => a.destination?.url],
  ["agent.credential.id", (a) => a.credentialId],
]);

/**
 * The attributes no field of `action` carries (a tool call's arguments and result live,
 * parsed and redacted, in `tool`; a span naming no tool keeps them here, redacted too).
 */
function remaining(attrs: Attributes, action: AgentAction, redactor: Redactor): Attributes {
  const out: Attributes = {};
  for (const k of Object.keys(attrs)) {
    const v = attrs[k] as AttributeValue;
    if (k === ARGUMENTS || k === RESULT) {
      if (action.tool) continue;
      if (redactor.active) {
        out[k] = typeof v === "string" ? redactor.payloadText(v) : redactor.payload(v);
        continue;
      }
    }
    if (k === "agent.task.scope" && action.declaredScope) continue;
    const field = CARRIED.get(k)?.(action);
    if (field !== undefined && field === str(v)) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Parsed tool payloads nested deeper than this stay text: validating or walking hostile
 * nesting overflows the stack, and the span (the step) would be lost.
 */
export const MAX_TOOL_PAYLOAD_DEPTH = 64;

function deeperThan(v: unknown, limit: number): boolean {
  if (v === null || typeof v !== "object") return false;
  if (limit === 0) return true;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (deeperThan(x, limit - 1)) return true;
  return false;
}
/** JSON text shorter than this cannot nest deeper than MAX_TOOL_PAYLOAD_DEPTH (each level takes two brackets). */
const MIN_TOO_DEEP_CHARS = 2 * (MAX_TOOL_PAYLOAD_DEPTH + 1);

/** Whether `v` starts, after JSON whitespace, with `{` or `[`: only then can it parse to an object or array. */
function looksLikeJsonContainer(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) return true; // { [
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return false;
}

/** A tool argument/result: JSON when it parses as such (and is not nested too deeply), else the (capped) string. */
function payload(v: AttributeValue | undefined): AttributeValue | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") return v;
  // an oversized payload stays (cut) text; other whitespace than JSON's before the bracket fails to parse anyway
  if (v.length > MAX_TOOL_PAYLOAD_CHARS) return cut(v, MAX_TOOL_PAYLOAD_CHARS);
  if (!looksLikeJsonContainer(v)) return v;
  try {
    const parsed = JSON.parse(v) as AttributeValue;
    return v.length >= MIN_TOO_DEEP_CHARS && deeperThan(parsed, MAX_TOOL_PAYLOAD_DEPTH) ? v : parsed;
  } catch {
    return v;
  }
}

function nsToMs(ns: bigint): number {
  return Number(ns / 1000n) / 1000;
}

export interface ScopeParse {
  scope?: TaskScope;
  error?: string;
}

/** `agent.task.scope` is JSON; a bad one is reported, never silently taken as "no limits". */
export function parseDeclaredScope(v: AttributeValue | undefined): ScopeParse {
  if (v === undefined || v === null) return {};
  let doc: unknown = v;
  if (typeof v === "string") {
    try {
      doc = JSON.parse(v);
    } catch (err) {
      return { error: `agent.task.scope is not JSON: ${(err as Error).message}` };
    }
  }
  const parsed = TaskScope.safeParse(doc);
  if (!parsed.success) return { error: `agent.task.scope is invalid: ${z.prettifyError(parsed.error).replace(/\n/g, " ")}` };
  return { scope: parsed.data };
}

function taskOf(span: OtlpSpan, attrs: Attributes): Pick<AgentAction, "taskId" | "taskIdSource"> {
  const fromAttribute = str(span.attributes["agent.task.id"]) ?? str(span.resource["agent.task.id"]);
  if (fromAttribute) return { taskId: fromAttribute, taskIdSource: "attribute" };
  // W3C baggage copied onto spans (e.g. by a baggage span processor) arrives as `baggage.<key>`
  const fromBaggage = str(attrs["baggage.agent.task.id"]);
  if (fromBaggage) return { taskId: fromBaggage, taskIdSource: "baggage" };
  const conversation = str(attrs["gen_ai.conversation.id"]);
  if (conversation) return { taskId: conversation, taskIdSource: "conversation" };
  return { taskId: span.traceId, taskIdSource: "trace" };
}

const STATUS = ["unset", "ok", "error"] as const;
const EFFECTS = new Set<string>(ToolEffect.options);
const CLASSIFICATIONS = new Set<string>(DataClassification.options);
function oneOf<T extends string>(allowed: Set<string>, v: AttributeValue | undefined): T | undefined {
  return typeof v === "string" && allowed.has(v) ? (v as T) : undefined;
}
/** Task ids (and parent task ids) are keys everywhere downstream: bounded. */
const MAX_ID_CHARS = 256;

export class NormaliseError extends Error {
  override name = "NormaliseError";
}

/** Normalises one span; throws NormaliseError when the result breaks the AgentAction contract. */
export function normaliseSpan(span: OtlpSpan, receivedAtMs: number, redactor: Redactor = NO_REDACTION): AgentAction {
  const attrs = mergedAttributes(span, redactor);
  const args = payload(attrs[ARGUMENTS]);
  const result = payload(attrs[RESULT]);
  const toolName = str(attrs["gen_ai.tool.name"]);
  const operation = str(attrs["gen_ai.operation.name"]);
  const provider = str(attrs["gen_ai.provider.name"]) ?? str(attrs["gen_ai.system"]);
  const effect = oneOf<ToolEffect>(EFFECTS, attrs["agent.tool.effect"]);
  const classification = oneOf<DataClassification>(CLASSIFICATIONS, attrs["data.classification"]);
  const declared = parseDeclaredScope(attrs["agent.task.scope"]);
  const address = str(attrs["server.address"]);
  const url = str(attrs["url.full"]);
  const agentId = str(attrs["gen_ai.agent.id"]);
  const agentName = str(attrs["gen_ai.agent.name"]);
  const spiffeId = str(span.resource["spiffe.id"]) ?? str(span.attributes["spiffe.id"]);
  const environment =
    str(span.attributes["deployment.environment.name"]) ??
    str(span.resource["deployment.environment.name"]) ??
    str(attrs["deployment.environment"]);
  const intent = str(attrs["agent.task.intent"]);
  const credentialId = str(attrs["agent.credential.id"]);
  const task = taskOf(span, attrs);
  const parentTaskId = str(attrs["agent.task.parent_id"]);
  const startTimeMs = nsToMs(span.startTimeUnixNano);
  const endTimeMs = nsToMs(span.endTimeUnixNano);
  // Built to the AgentAction contract field by field (ids were checked by the decoder, the
  // rest is typed); the few constraints types cannot carry are checked here, which is far
  // cheaper than validating every attribute again (see the ingest fuzz test, which checks
  // every emitted action against the schema).
  const problem =
    task.taskId.length > MAX_ID_CHARS
      ? `taskId is longer than ${MAX_ID_CHARS} characters`
      : parentTaskId && parentTaskId.length > MAX_ID_CHARS
        ? `parentTaskId (agent.task.parent_id) is longer than ${MAX_ID_CHARS} characters`
        : startTimeMs < 0 || endTimeMs < 0
          ? "negative timestamp"
          : undefined;
  if (problem) throw new NormaliseError(`span ${span.traceId}/${span.spanId}: ${problem}`);

  // Fields are set in the contract's order (it is the order of the JSON on the bus), the
  // optional ones only when present: assignments, not spreads of little objects. The
  // object is complete when returned.
  const action = { id: `${span.traceId}:${span.spanId}`, traceId: span.traceId, spanId: span.spanId } as AgentAction;
  if (span.parentSpanId) action.parentSpanId = span.parentSpanId;
  action.taskId = task.taskId;
  action.taskIdSource = task.taskIdSource;
  if (parentTaskId) action.parentTaskId = parentTaskId;
  action.name = span.name;
  if (operation) action.operation = operation;
  if (provider) action.provider = provider;
  const agent: AgentAction["agent"] = {};
  if (agentId) agent.id = agentId;
  if (agentName) agent.name = agentName;
  if (spiffeId) agent.spiffeId = spiffeId;
  action.agent = agent;
  if (environment) action.environment = environment;
  if (intent) action.intent = intent;
  if (declared.scope) action.declaredScope = declared.scope;
  if (declared.error) action.declaredScopeError = declared.error;
  if (toolName) {
    const tool: NonNullable<AgentAction["tool"]> = { name: toolName };
    const callId = str(attrs["gen_ai.tool.call.id"]);
    const type = str(attrs["gen_ai.tool.type"]);
    if (callId) tool.callId = callId;
    if (type) tool.type = type;
    if (args !== undefined) tool.arguments = redactor.payload(args);
    if (result !== undefined) tool.result = redactor.payload(result);
    action.tool = tool;
  }
  if (effect) action.effect = effect;
  if (classification) action.dataClassification = classification;
  if (address || url) {
    const destination: NonNullable<AgentAction["destination"]> = {};
    if (address) destination.address = address;
    if (url) destination.url = url;
    action.destination = destination;
  }
  if (credentialId) action.credentialId = credentialId;
  action.startTimeMs = startTimeMs;
  action.endTimeMs = endTimeMs;
  action.status = STATUS[span.status.code] ?? "unset";
  action.links = span.links;
  action.attributes = remaining(attrs, action, redactor);
  action.receivedAtMs = receivedAtMs;
  return action;
}
