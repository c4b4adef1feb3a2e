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
export const AttributeValue: z.ZodType<AttributeValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(AttributeValue), z.record(z.string(), AttributeValue)]),
);
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
});
export type AgentAction = z.infer<typeof AgentAction>;
