import { type Attributes, type Context, type HrTime, ROOT_CONTEXT, type Span, SpanKind, type Tracer, trace } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  type IdGenerator,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { Rng } from "./rng.js";

/**
 * Records agent runs with the real OpenTelemetry JS SDK: each agent process is a tracer
 * provider with its own resource and an in-memory exporter; every span gets explicit start
 * and end times from a simulated clock and ids from a seeded generator, so a seed gives the
 * same spans byte for byte. A run's spans are serialised into OTLP protobuf export requests
 * with the SDK's own serializer (as the project's OTLP exporters send them).
 */

/** Span and trace ids from a seeded generator (the SDK's default is Math.random). */
export class SeededIds implements IdGenerator {
  constructor(public rng: Rng) {}
  generateTraceId(): string {
    return this.nonZero(32);
  }
  generateSpanId(): string {
    return this.nonZero(16);
  }
  private nonZero(n: number): string {
    for (;;) {
      const id = this.rng.hex(n);
      if (/[^0]/.test(id)) return id;
    }
  }
}

export type ToolEffect = "read" | "write" | "egress" | "exec" | "delegate";
export type Classification = "public" | "internal" | "confidential" | "restricted";

/** Who a process is: its OTel resource. */
export interface ProcessIdentity {
  serviceName: string;
  spiffeId: string;
  environment: string;
}

/** Who acts in a span: `gen_ai.agent.id` and `.name`. */
export interface AgentIdentity {
  id: string;
  name: string;
}

/** One instrumented agent process (a service): a tracer provider, its resource, an in-memory exporter. */
export class AgentProcess {
  private readonly exporter = new InMemorySpanExporter();
  private readonly provider: BasicTracerProvider;
  readonly tracer: Tracer;

  constructor(
    readonly identity: ProcessIdentity,
    ids: IdGenerator,
  ) {
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        "service.name": identity.serviceName,
        "service.version": "1.4.2",
        "spiffe.id": identity.spiffeId,
        "deployment.environment.name": identity.environment,
        "telemetry.sdk.language": "nodejs",
        "telemetry.sdk.name": "opentelemetry",
      }),
      idGenerator: ids,
      spanProcessors: [new SimpleSpanProcessor(this.exporter)],
    });
    this.tracer = this.provider.getTracer("agent-runtime", "0.9.0");
  }

  /** The spans finished since the last drain, in the order they ended; the exporter forgets them. */
  drain(): ReadableSpan[] {
    const spans = [...this.exporter.getFinishedSpans()];
    this.exporter.reset();
    return spans;
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}

const hr = (ms: number): HrTime => {
  const whole = Math.floor(ms);
  return [Math.floor(whole / 1000), (whole % 1000) * 1_000_000 + Math.round((ms - whole) * 1_000_000)];
};

const json = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

/** The step a malicious run is labelled by: where the harm is done. */
export interface HarmfulStep {
  traceId: string;
  spanId: string;
  startTimeMs: number;
  tool?: string;
  what: string;
}

/** One export request: the spans an agent process sent for this run. */
export interface RecordedRequest {
  service: string;
  bytes: Uint8Array;
  spans: number;
}

/** A tool call as a span: what the instrumentation records. */
export interface ToolCall {
  tool: string;
  effect?: ToolEffect;
  classification?: Classification;
  /** `server.address` */
  server?: string;
  /** `url.full` */
  url?: string;
  args?: unknown;
  result?: unknown;
  /** Typical duration (ms); jittered. */
  ms?: number;
  /** `deployment.environment.name` on the span (the environment the tool acted in), when not the process's. */
  environment?: string;
  /** Marks the run's harmful step (the first one marked counts), with what it does. */
  harmful?: string;
  error?: boolean;
}

/** A run: one or more tasks of one or more agents on a simulated clock, recorded as OTLP requests. */
export class RunRecorder {
  readonly taskIds: string[] = [];
  readonly requests: RecordedRequest[] = [];
  harmful?: HarmfulStep;
  /** Milliseconds since the epoch, simulated. */
  clock: number;
  /** The last span ended was an inference call (the next tool call needs no turn of its own). */
  thought = false;

  constructor(
    readonly rng: Rng,
    startMs: number,
  ) {
    this.clock = startMs;
  }

  /** Lets simulated time pass (`typical` ms, jittered). */
  wait(typical: number, spread = 0.5): void {
    this.clock += this.rng.ms(typical, spread, 1);
  }

  /** Starts a task of `agent` in `process`: its root `invoke_agent` span. */
  task(process: AgentProcess, agent: AgentIdentity, options: TaskOptions): TaskRecorder {
    if (!this.taskIds.includes(options.taskId)) this.taskIds.push(options.taskId);
    return new TaskRecorder(this, process, agent, options);
  }

  /** Serialises what `process` has finished for this run into one OTLP protobuf export request. */
  flush(process: AgentProcess): void {
    const spans = process.drain();
    if (spans.length === 0) return;
    const bytes = ProtobufTraceSerializer.serializeRequest(spans);
    if (!bytes) throw new Error("the OTLP serializer produced nothing");
    this.requests.push({ service: process.identity.serviceName, bytes, spans: spans.length });
  }

  markHarmful(span: Span, startTimeMs: number, what: string, tool?: string): void {
    if (this.harmful) return;
    const sc = span.spanContext();
    this.harmful = { traceId: sc.traceId, spanId: sc.spanId, startTimeMs, ...(tool ? { tool } : {}), what };
  }
}

export interface TaskOptions {
  taskId: string;
  intent: string;
  credentialId: string;
  /** `agent.task.scope` on the root span. */
  scope?: { tools?: string[]; dataCeiling?: Classification; environments?: string[]; egress?: string[] };
  /** `agent.task.parent_id`: a delegate's own task, under the delegating task. */
  parentTaskId?: string;
  /** The remote parent span (an `invoke_agent` of the delegating agent), as trace context propagation gives it. */
  parent?: Context;
  /** `deployment.environment.name` on every span of the task, when not the process's. */
  environment?: string;
}

const MODELS = ["gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "claude-sonnet-4-20250514"] as const;

/** An agent acting in a task, under a parent span: its tool calls, inference calls and delegations. */
export class Actor {
  constructor(
    protected readonly run: RunRecorder,
    protected readonly process: AgentProcess,
    readonly agent: AgentIdentity,
    readonly taskId: string,
    protected readonly parent: Context,
    protected readonly common: Attributes,
  ) {}

  private start(name: string, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL): { span: Span; at: number } {
    const at = this.run.clock;
    const span = this.process.tracer.startSpan(
      name,
      { kind, attributes: { ...this.common, ...attributes }, startTime: hr(at) },
      this.parent,
    );
    return { span, at };
  }

  /**
   * A tool call (`execute_tool`); returns when it ended (the clock moves on past it). Most
   * tool calls follow a model turn (an agent loop asks the model what to do next); some share
   * the turn of the call before them (several tool calls in one response).
   */
  tool(call: ToolCall): void {
    if (!this.run.thought && this.run.rng.chance(0.7)) this.chat(1800);
    this.run.thought = false;
    const attributes: Attributes = {
      "gen_ai.operation.name": "execute_tool",
      "gen_ai.tool.name": call.tool,
      "gen_ai.tool.call.id": `call_${this.run.rng.alnum(24, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")}`,
      "gen_ai.tool.type": "function",
    };
    if (call.effect) attributes["agent.tool.effect"] = call.effect;
    if (call.classification) attributes["data.classification"] = call.classification;
    if (call.server) attributes["server.address"] = call.server;
    if (call.url) attributes["url.full"] = call.url;
    if (call.environment) attributes["deployment.environment.name"] = call.environment;
    if (call.args !== undefined) attributes["gen_ai.tool.call.arguments"] = json(call.args);
    if (call.result !== undefined) attributes["gen_ai.tool.call.result"] = json(call.result);
    const { span, at } = this.start(`execute_tool ${call.tool}`, attributes);
    if (call.harmful) this.run.markHarmful(span, at, call.harmful, call.tool);
    if (call.error) span.setStatus({ code: 2, message: "tool error" });
    this.run.clock += this.run.rng.ms(call.ms ?? 400, 0.6, 3);
    span.end(hr(this.run.clock));
    this.run.wait(120, 0.8);
  }

  /** An inference call (`chat`): the model thinking between tool calls. */
  chat(typicalMs = 2500): void {
    const rng = this.run.rng;
    const model = rng.weighted([
      [MODELS[0], 6],
      [MODELS[1], 3],
      [MODELS[2], 2],
    ]);
    const { span } = this.start(`chat ${model}`, {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": model.startsWith("claude") ? "anthropic" : "openai",
      "gen_ai.request.model": model,
      "gen_ai.response.model": model,
      "gen_ai.usage.input_tokens": rng.int(900, 14_000),
      "gen_ai.usage.output_tokens": rng.int(40, 900),
      "gen_ai.response.finish_reasons": ["tool_calls"],
    });
    this.run.clock += rng.ms(typicalMs, 0.5, 150);
    span.end(hr(this.run.clock));
    this.run.wait(40, 0.8);
    this.run.thought = true;
  }

  /**
   * Delegation within the task (one task id): an `invoke_agent` span naming the callee, the
   * callee's spans below it.
   */
  invoke(callee: AgentIdentity, body: (delegate: Actor) => void, harmful?: string): void {
    const { span, at } = this.start(`invoke_agent ${callee.name}`, {
      "gen_ai.operation.name": "invoke_agent",
      "gen_ai.agent.id": callee.id,
      "gen_ai.agent.name": callee.name,
    });
    if (harmful) this.run.markHarmful(span, at, harmful);
    this.run.wait(25, 0.5);
    const common: Attributes = { ...this.common, "gen_ai.agent.id": callee.id, "gen_ai.agent.name": callee.name };
    this.run.thought = false;
    body(new Actor(this.run, this.process, callee, this.taskId, trace.setSpan(this.parent, span), common));
    this.run.thought = false;
    span.end(hr(this.run.clock));
    this.run.wait(60, 0.8);
  }

  /**
   * Delegation to an agent in another process with a task of its own: this agent's
   * `invoke_agent` span (a client call), whose context the callee's task continues; the
   * callee's task carries `agent.task.parent_id`.
   */
  invokeRemote(callee: AgentIdentity, body: (parent: Context) => void, harmful?: string): void {
    const { span, at } = this.start(
      `invoke_agent ${callee.name}`,
      { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": callee.id, "gen_ai.agent.name": callee.name },
      SpanKind.CLIENT,
    );
    if (harmful) this.run.markHarmful(span, at, harmful);
    this.run.wait(80, 0.5);
    this.run.thought = false;
    body(trace.setSpan(ROOT_CONTEXT, span));
    this.run.thought = false;
    this.run.wait(80, 0.5);
    span.end(hr(this.run.clock));
    this.run.wait(60, 0.8);
  }
}

/** A task: its root `invoke_agent` span (with the objective, scope and credential) and the agent acting in it. */
export class TaskRecorder extends Actor {
  private readonly root: Span;

  constructor(run: RunRecorder, process: AgentProcess, agent: AgentIdentity, options: TaskOptions) {
    const common: Attributes = {
      "gen_ai.agent.id": agent.id,
      "gen_ai.agent.name": agent.name,
      "agent.task.id": options.taskId,
      "agent.credential.id": options.credentialId,
    };
    if (options.environment) common["deployment.environment.name"] = options.environment;
    if (options.parentTaskId) common["agent.task.parent_id"] = options.parentTaskId;
    const rootAttributes: Attributes = { ...common, "gen_ai.operation.name": "invoke_agent", "agent.task.intent": options.intent };
    if (options.scope) rootAttributes["agent.task.scope"] = JSON.stringify(options.scope);
    const root = process.tracer.startSpan(
      `invoke_agent ${agent.name}`,
      { kind: options.parent ? SpanKind.SERVER : SpanKind.INTERNAL, attributes: rootAttributes, startTime: hr(run.clock) },
      options.parent ?? ROOT_CONTEXT,
    );
    run.wait(30, 0.5);
    run.thought = false;
    super(run, process, agent, options.taskId, trace.setSpan(ROOT_CONTEXT, root), common);
    this.root = root;
  }

  /** Ends the root span: the task is complete. */
  end(): void {
    this.run.wait(50, 0.5);
    this.root.end(hr(this.run.clock));
  }
}
