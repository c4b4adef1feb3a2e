import { z } from "zod";

/** Tool effect vocabulary (`agent.tool.effect`). */
export const ToolEffect = z.enum(["read", "write", "egress", "exec", "delegate"]);
export type ToolEffect = z.infer<typeof ToolEffect>;

/** Data classification, in increasing sensitivity (`data.classification`). */
export const DATA_CLASSIFICATIONS = ["public", "internal", "confidential", "restricted"] as const;
export const DataClassification = z.enum(DATA_CLASSIFICATIONS);
export type DataClassification = z.infer<typeof DataClassification>;

const hex = (len: number) => z.string().regex(new RegExp(`^[0-9a-f]{${len}}$`), `expected ${len} lowercase hex digits`);
export const TraceId = hex(32);
export const SpanId = hex(16);

export const TaskIdSource = z.enum(["attribute", "baggage", "conversation", "trace"]);

/** A scalar or JSON-ish attribute value after OTLP decoding. */
export type AttributeValue = string | number | boolean | null | AttributeValue[] | { [key: string]: AttributeValue };
/** How deep an attribute value may nest (ingest cuts deeper values; tool payloads stay text beyond 64). */
const MAX_VALUE_DEPTH = 80;

/** Whether `v` is a JSON value (string, finite number, boolean, null, arrays and plain objects of those). */
export function isAttributeValue(v: unknown, depth = 0): v is AttributeValue {
  if (v === null) return true;
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v);
    case "object": {
      if (depth >= MAX_VALUE_DEPTH) return false;
      if (Array.isArray(v)) {
        for (const x of v) if (!isAttributeValue(x, depth + 1)) return false;
        return true;
      }
      if (Object.getPrototypeOf(v) !== Object.prototype) return false;
      for (const k in v) if (!isAttributeValue((v as Record<string, unknown>)[k], depth + 1)) return false;
      return true;
    }
    default:
      return false;
  }
}

/**
 * A JSON value. Checked by one walk rather than a recursive union of schemas: attribute
 * maps and tool payloads are the bulk of every action, and each stage validates them.
 */
export const AttributeValue: z.ZodType<AttributeValue> = z.custom<AttributeValue>((v) => isAttributeValue(v), {
  message: "expected a JSON value (string, finite number, boolean, null, array or object of those)",
});
export const Attributes = z.record(z.string(), AttributeValue);
export type Attributes = z.infer<typeof Attributes>;

/**
 * A task's declared scope (`agent.task.scope`): it may only narrow the agent's profile.
 * Every field is optional; an absent field means "as the profile allows".
 */
export const TaskScope = z
  .object({
    tools: z.array(z.string().min(1)).optional(),
    dataCeiling: DataClassification.optional(),
    environments: z.array(z.string().min(1)).optional(),
    egress: z.array(z.string().min(1)).optional(),
  })
  .strict();
export type TaskScope = z.infer<typeof TaskScope>;

/**
 * One agent action: a normalised span. Produced by ingest on `agent.actions`, keyed by task id.
 */
export const AgentAction = z.object({
  id: z.string().min(1), // `${traceId}:${spanId}`: the same span always yields the same action id
  traceId: TraceId,
  spanId: SpanId,
  parentSpanId: SpanId.optional(),
  taskId: z.string().min(1).max(256),
  taskIdSource: TaskIdSource,
  parentTaskId: z.string().min(1).max(256).optional(),
  name: z.string(),
  operation: z.string().optional(),
  /** The GenAI provider (`gen_ai.provider.name`, or the deprecated `gen_ai.system`). */
  provider: z.string().optional(),
  agent: z.object({
    id: z.string().optional(),
    name: z.string().optional(),
    spiffeId: z.string().optional(),
  }),
  environment: z.string().optional(),
  intent: z.string().optional(),
  declaredScope: TaskScope.optional(),
  /** Why a declared `agent.task.scope` could not be used (the step is kept and flagged, not dropped). */
  declaredScopeError: z.string().optional(),
  tool: z
    .object({
      name: z.string().min(1),
      callId: z.string().optional(),
      type: z.string().optional(),
      arguments: AttributeValue.optional(),
      result: AttributeValue.optional(),
    })
    .optional(),
  effect: ToolEffect.optional(),
  dataClassification: DataClassification.optional(),
  destination: z.object({ address: z.string().optional(), url: z.string().optional() }).optional(),
  credentialId: z.string().min(1).optional(),
  startTimeMs: z.number().nonnegative(),
  endTimeMs: z.number().nonnegative(),
  status: z.enum(["unset", "ok", "error"]),
  links: z.array(z.object({ traceId: TraceId, spanId: SpanId })),
  /** Span and resource attributes as received (resource first, span wins). */
  attributes: Attributes,
  receivedAtMs: z.number().nonnegative(),
  /**
   * Who sent the span, as the gateway authenticated it and ingest verified its signature
   * (schemas/ingest-identity.ts); absent for traffic no gateway vouched for (a Collector
   * writing to the topic directly).
   */
  sender: z.object({ name: z.string(), via: z.enum(["token", "jwt-svid"]), spiffeId: z.string().optional() }).optional(),
  /**
   * The span speaks for an agent or workload its sender's credential does not name: it is
   * recorded and flagged (`ingest.identity_mismatch`), and trusted for nothing (it completes no
   * task, binds no credential, declares no scope or objective, vouches for no value).
   */
  identityMismatch: z
    .object({
      claimed: z.object({ agentId: z.string().optional(), spiffeId: z.string().optional() }),
      allowed: z.object({ agentIds: z.array(z.string()), spiffeIds: z.array(z.string()) }),
    })
    .optional(),
});
export type AgentAction = z.infer<typeof AgentAction>;
