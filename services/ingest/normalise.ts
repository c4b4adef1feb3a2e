import { z } from "zod";
import { type AgentAction, type Attributes, type AttributeValue, DataClassification, TaskScope, ToolEffect } from "../../schemas/action.js";
import type { OtlpSpan } from "./otlp.js";
import { NO_REDACTION, type Redactor } from "./redaction.js";

/**
 * Span → agent action, per the span conventions (docs/span-conventions.md): the OTel GenAI
 * semantic conventions where they define a thing, Driftwatch's `agent.*` names otherwise.
 */

/** Tool arguments and results longer than this are cut (they are evidence, not payload). */
export const MAX_TOOL_PAYLOAD_CHARS = 16_384;
/** Any other string attribute longer than this is cut. */
export const MAX_ATTRIBUTE_CHARS = 8_192;

const TRUNCATED = "…[truncated]";

/** Caps oversized string values (also inside arrays and maps); payload attributes have their own cap. */
function capped(v: AttributeValue, depth = 0): AttributeValue {
  if (typeof v === "string") return v.length > MAX_ATTRIBUTE_CHARS ? `${v.slice(0, MAX_ATTRIBUTE_CHARS)}${TRUNCATED}` : v;
  if (v === null || typeof v !== "object" || depth > 8) return v;
  if (Array.isArray(v)) return v.map((x) => capped(x, depth + 1));
  const out: { [k: string]: AttributeValue } = {};
  for (const [k, x] of Object.entries(v)) out[k] = capped(x, depth + 1);
  return out;
}

const PAYLOAD_KEYS = new Set([
  "gen_ai.tool.call.arguments",
  "gen_ai.tool.call.result",
  "gen_ai.input.messages",
  "gen_ai.output.messages",
  "gen_ai.system_instructions",
]);

/** Merges resource and span attributes (span wins), caps sizes and applies redaction. */
function mergedAttributes(span: OtlpSpan, redactor: Redactor): Attributes {
  const merged: Attributes = {};
  for (const source of [span.resource, span.attributes]) {
    for (const [k, v] of Object.entries(source)) {
      merged[k] =
        PAYLOAD_KEYS.has(k) && typeof v === "string"
          ? v.length > MAX_TOOL_PAYLOAD_CHARS
            ? `${v.slice(0, MAX_TOOL_PAYLOAD_CHARS)}${TRUNCATED}`
            : v
          : capped(v);
    }
  }
  return redactor.attributes(merged);
}

const str = (v: AttributeValue | undefined): string | undefined =>
  typeof v === "string" && v.length > 0 ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined;

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

/** A tool argument/result: JSON when it parses as such (and is not nested too deeply), else the (capped) string. */
function payload(v: AttributeValue | undefined): AttributeValue | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") return v;
  const cut = v.length > MAX_TOOL_PAYLOAD_CHARS ? `${v.slice(0, MAX_TOOL_PAYLOAD_CHARS)}${TRUNCATED}` : v;
  const t = cut.trimStart();
  if (cut === v && (t.startsWith("{") || t.startsWith("["))) {
    try {
      const parsed = JSON.parse(v) as AttributeValue;
      return deeperThan(parsed, MAX_TOOL_PAYLOAD_DEPTH) ? cut : parsed;
    } catch {
      return cut;
    }
  }
  return cut;
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
  const args = payload(attrs["gen_ai.tool.call.arguments"]);
  const result = payload(attrs["gen_ai.tool.call.result"]);
  // a tool call's input and output live in `tool` (parsed, redacted); not twice
  const toolNameRaw = str(attrs["gen_ai.tool.name"]);
  if (toolNameRaw) {
    delete attrs["gen_ai.tool.call.arguments"];
    delete attrs["gen_ai.tool.call.result"];
  }
  const provider = str(attrs["gen_ai.provider.name"]) ?? str(attrs["gen_ai.system"]);
  const toolName = toolNameRaw;
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
  const action: AgentAction = {
    id: `${span.traceId}:${span.spanId}`,
    traceId: span.traceId,
    spanId: span.spanId,
    ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
    ...task,
    ...(parentTaskId ? { parentTaskId } : {}),
    name: span.name,
    ...(str(attrs["gen_ai.operation.name"]) ? { operation: str(attrs["gen_ai.operation.name"]) } : {}),
    ...(provider ? { provider } : {}),
    agent: {
      ...(agentId ? { id: agentId } : {}),
      ...(agentName ? { name: agentName } : {}),
      ...(spiffeId ? { spiffeId } : {}),
    },
    ...(environment ? { environment } : {}),
    ...(str(attrs["agent.task.intent"]) ? { intent: str(attrs["agent.task.intent"]) } : {}),
    ...(declared.scope ? { declaredScope: declared.scope } : {}),
    ...(declared.error ? { declaredScopeError: declared.error } : {}),
    ...(toolName
      ? {
          tool: {
            name: toolName,
            ...(str(attrs["gen_ai.tool.call.id"]) ? { callId: str(attrs["gen_ai.tool.call.id"]) } : {}),
            ...(str(attrs["gen_ai.tool.type"]) ? { type: str(attrs["gen_ai.tool.type"]) } : {}),
            ...(args !== undefined ? { arguments: redactor.payload(args) } : {}),
            ...(result !== undefined ? { result: redactor.payload(result) } : {}),
          },
        }
      : {}),
    ...(effect ? { effect } : {}),
    ...(classification ? { dataClassification: classification } : {}),
    ...(address || url ? { destination: { ...(address ? { address } : {}), ...(url ? { url } : {}) } } : {}),
    ...(str(attrs["agent.credential.id"]) ? { credentialId: str(attrs["agent.credential.id"]) } : {}),
    startTimeMs,
    endTimeMs,
    status: STATUS[span.status.code] ?? "unset",
    links: span.links,
    attributes: attrs,
    receivedAtMs,
  };
  return action;
}
