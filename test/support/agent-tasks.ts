import { type Context, context, type Span, type Tracer, trace } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

/**
 * One agent task as its agent reports it, step by step, with the real OTel JS SDK: an
 * `invoke_agent` root span (the task) with `execute_tool` spans below it. A tool span is
 * exported as soon as it ends; the root only when the task completes (`complete()`), as
 * the SDK exports a span when it ends: a task that never completes never sends its root.
 * `export()` gives what ended since the last export as one OTLP protobuf export request
 * (one trace per message, as the Collector's Kafka exporter with `partition_traces_by_id`
 * writes them).
 *
 * The task's agent, SPIFFE id and environment are resource attributes; a step may act in
 * another environment (`deployment.environment.name` on the span), report a credential
 * (`agent.credential.id`), or declare another objective (`agent.task.intent`).
 */
export interface TaskAgent {
  /** `gen_ai.agent.id`: the profile it matches. */
  id: string;
  spiffeId?: string;
  /** `deployment.environment.name` on the resource: where the task begins. */
  environment?: string;
}

export interface ToolStep {
  tool: string;
  effect?: "read" | "write" | "egress" | "exec" | "delegate";
  data?: "public" | "internal" | "confidential" | "restricted";
  credentialId?: string;
  /** Acts in this environment (a span attribute, over the resource's). */
  environment?: string;
  /** Declares this objective instead of the task's. */
  intent?: string;
  arguments?: Record<string, unknown>;
}

export class AgentTask {
  readonly traceId: string;
  private readonly exporter = new InMemorySpanExporter();
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly root: Span;
  private readonly inRoot: Context;
  private calls = 0;
  private completed = false;

  constructor(
    readonly agent: TaskAgent,
    readonly taskId: string,
    readonly options: { intent?: string; parentTaskId?: string } = {},
  ) {
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        "service.name": agent.id,
        ...(agent.environment ? { "deployment.environment.name": agent.environment } : {}),
        ...(agent.spiffeId ? { "spiffe.id": agent.spiffeId } : {}),
      }),
      spanProcessors: [new SimpleSpanProcessor(this.exporter)],
    });
    this.tracer = this.provider.getTracer("driftwatch-test-agent-tasks", "1.0.0");
    this.root = this.tracer.startSpan(`invoke_agent ${agent.id}`, {
      attributes: { ...this.common(), "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent.id },
    });
    this.inRoot = trace.setSpan(context.active(), this.root);
    this.traceId = this.root.spanContext().traceId;
  }

  /** What every span of the task carries. */
  private common(): Record<string, string> {
    return {
      "gen_ai.agent.id": this.agent.id,
      "agent.task.id": this.taskId,
      ...(this.options.intent ? { "agent.task.intent": this.options.intent } : {}),
      ...(this.options.parentTaskId ? { "agent.task.parent_id": this.options.parentTaskId } : {}),
    };
  }

  /** One tool call, ended (exported with the next `export()`). */
  call(step: ToolStep): this {
    if (this.completed) throw new Error(`task ${this.taskId} has completed`);
    const n = this.calls++;
    this.tracer
      .startSpan(
        `execute_tool ${step.tool}`,
        {
          attributes: {
            ...this.common(),
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": step.tool,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": `call-${n}`,
            "agent.tool.effect": step.effect ?? "read",
            "data.classification": step.data ?? "internal",
            "gen_ai.tool.call.arguments": JSON.stringify(step.arguments ?? { page: n }),
            ...(step.credentialId ? { "agent.credential.id": step.credentialId } : {}),
            ...(step.environment ? { "deployment.environment.name": step.environment } : {}),
            ...(step.intent ? { "agent.task.intent": step.intent } : {}),
          },
        },
        this.inRoot,
      )
      .end();
    return this;
  }

  /** Ends the task's root span: the task completed. */
  complete(): this {
    if (!this.completed) this.root.end();
    this.completed = true;
    return this;
  }

  /** The spans ended since the last export, as one OTLP protobuf export request (none: undefined). */
  export(): Uint8Array | undefined {
    const spans = this.exporter.getFinishedSpans();
    this.exporter.reset();
    if (spans.length === 0) return undefined;
    const request = ProtobufTraceSerializer.serializeRequest(spans);
    if (!request) throw new Error(`could not serialise the spans of ${this.taskId}`);
    return request;
  }

  async close(): Promise<void> {
    await this.provider.shutdown();
  }
}
