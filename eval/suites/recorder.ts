import { type Attributes, type HrTime, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  type IdGenerator,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { HarmfulStep } from "../lib/recorder.js";
import type { Rng } from "../lib/rng.js";
import { type Agent, type CallOptions, formatResult, type PlannedCall, type ToolSpec } from "./kit.js";

/**
 * A thin recorder of agent runs, on the OpenTelemetry JS SDK, that records only what a generic
 * agent framework's GenAI instrumentation records: an `invoke_agent` span per task, a `chat`
 * span per model turn (with the conversation so far in `gen_ai.input.messages`), an
 * `execute_tool` span per tool call (arguments and result as text). No effect, data
 * classification, destination or credential attributes: frameworks do not know them.
 */

/** One agent service: a tracer provider with its resource and an in-memory exporter. */
export class SuiteProcess {
  private readonly exporter = new InMemorySpanExporter();
  private readonly provider: BasicTracerProvider;
  readonly tracer: Tracer;

  constructor(
    readonly service: string,
    readonly environment: string,
    ids: IdGenerator,
  ) {
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        "service.name": service,
        "service.version": "2.3.0",
        "deployment.environment.name": environment,
        "telemetry.sdk.language": "nodejs",
        "telemetry.sdk.name": "opentelemetry",
      }),
      idGenerator: ids,
      spanProcessors: [new SimpleSpanProcessor(this.exporter)],
    });
    this.tracer = this.provider.getTracer("gen-ai-agent-instrumentation", "0.14.1");
  }

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

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** A run's recordings and its clock. */
export class RunTape {
  readonly taskIds: string[] = [];
  readonly requests: { service: string; bytes: Uint8Array; spans: number }[] = [];
  harmful?: HarmfulStep;

  constructor(
    /** Timing and ids of calls (not content). */
    readonly rng: Rng,
    public clock: number,
  ) {}

  flush(process: SuiteProcess): void {
    const spans = process.drain();
    if (spans.length === 0) return;
    const bytes = ProtobufTraceSerializer.serializeRequest(spans);
    if (!bytes) throw new Error("the OTLP serializer produced nothing");
    this.requests.push({ service: process.service, bytes, spans: spans.length });
  }
}

type Part =
  | { type: "text"; content: string }
  | { type: "tool_call"; id: string; name: string; arguments: Record<string, unknown> }
  | { type: "tool_call_response"; id: string; response: string };
interface Message {
  role: "system" | "user" | "assistant" | "tool";
  parts: Part[];
}

export const MODELS = [
  ["gpt-4.1-2025-04-14", "openai"],
  ["gpt-4o-2024-11-20", "openai"],
  ["claude-sonnet-4-20250514", "anthropic"],
  ["gemini-2.5-flash", "gcp.gemini"],
] as const;

/** The attack a session carries: when its injected text reaches the model, the hijacked agent acts on it. */
export interface AttackHook {
  /** Tool calls of the user's task between the one that returned the injected text and the harmful step. */
  delay: number;
  /** The hijacked agent stops working on the user's task after the harm. */
  stopAfter: boolean;
  act(a: Agent): void;
}

export interface SessionOptions {
  process: SuiteProcess;
  tape: RunTape;
  agent: { id: string; name: string };
  taskId: string;
  intent: string;
  system: string;
  tools: readonly ToolSpec[];
  model: (typeof MODELS)[number];
  attack?: AttackHook;
}

/** One task of one agent, recorded: implements the simulated agent's calls as spans. */
export class Session implements Agent {
  private readonly root: Span;
  private readonly ctx;
  private readonly common: Attributes;
  private readonly messages: Message[];
  private readonly specs: Map<string, ToolSpec>;
  private armed = false;
  private probe = "";
  /** The results of the current step's calls (to check that an injection reached one). */
  private stepResults: string[] = [];
  private delivered = false;
  private countdown = 0;
  private attacking = false;
  private attacked = false;
  private stopped = false;
  private finished = false;

  constructor(private readonly o: SessionOptions) {
    this.specs = new Map(o.tools.map((t) => [t.name, t]));
    this.common = { "gen_ai.agent.id": o.agent.id, "gen_ai.agent.name": o.agent.name, "agent.task.id": o.taskId };
    if (!o.tape.taskIds.includes(o.taskId)) o.tape.taskIds.push(o.taskId);
    this.root = o.process.tracer.startSpan(
      `invoke_agent ${o.agent.name}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          ...this.common,
          "gen_ai.operation.name": "invoke_agent",
          "gen_ai.conversation.id": o.taskId,
          "agent.task.intent": o.intent,
        },
        startTime: hr(o.tape.clock),
      },
      ROOT_CONTEXT,
    );
    this.ctx = trace.setSpan(ROOT_CONTEXT, this.root);
    this.messages = [
      { role: "system", parts: [{ type: "text", content: o.system }] },
      { role: "user", parts: [{ type: "text", content: o.intent }] },
    ];
    this.o.tape.clock += o.tape.rng.int(4, 30);
  }

  /** The injected text went into the result of the call being built now. */
  arm(countdown: number, probe: string): void {
    this.armed = true;
    this.countdown = countdown;
    this.probe = probe;
  }

  get harmDone(): boolean {
    return this.attacked;
  }

  private tick(): void {
    this.o.tape.clock += this.o.tape.rng.int(3, 45);
  }

  private chat(output: Part[], finish: "tool_calls" | "stop"): void {
    const rng = this.o.tape.rng;
    const [model, provider] = this.o.model;
    const input = JSON.stringify(this.messages);
    const at = this.o.tape.clock;
    const span = this.o.process.tracer.startSpan(
      `chat ${model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          ...this.common,
          "gen_ai.operation.name": "chat",
          "gen_ai.provider.name": provider,
          "gen_ai.request.model": model,
          "gen_ai.response.model": model,
          "gen_ai.request.temperature": 0,
          "gen_ai.input.messages": input,
          "gen_ai.output.messages": JSON.stringify([{ role: "assistant", parts: output, finish_reason: finish }]),
          "gen_ai.usage.input_tokens": Math.round(input.length / 3.6) + rng.int(300, 900),
          "gen_ai.usage.output_tokens": Math.round(JSON.stringify(output).length / 3.8) + rng.int(5, 60),
          "gen_ai.response.finish_reasons": [finish],
          "gen_ai.response.id": `resp_${rng.alnum(20)}`,
        },
        startTime: hr(at),
      },
      this.ctx,
    );
    const base = 1500 + Math.min(1900, input.length / 30);
    this.o.tape.clock += clamp(rng.ms(base, 0.25), 1000, 3900) + rng.int(0, 99);
    span.end(hr(this.o.tape.clock));
    this.tick();
    this.messages.push({ role: "assistant", parts: output });
  }

  private validate(tool: string, args: Record<string, unknown>): ToolSpec {
    const spec = this.specs.get(tool);
    if (!spec) throw new Error(`${this.o.agent.id}: no tool ${tool} in the catalogue`);
    for (const k of Object.keys(args)) {
      if (!spec.args.some((a) => a.name === k)) throw new Error(`${tool}: no argument ${k} in the catalogue`);
    }
    for (const a of spec.args) {
      if (!a.optional && !(a.name in args)) throw new Error(`${tool}: required argument ${a.name} missing`);
    }
    return spec;
  }

  private execute(id: string, spec: ToolSpec, args: Record<string, unknown>, result: unknown, options: CallOptions): void {
    const rng = this.o.tape.rng;
    const text = options.error ?? formatResult(spec.format, result);
    const at = this.o.tape.clock;
    const attributes: Attributes = {
      ...this.common,
      "gen_ai.operation.name": "execute_tool",
      "gen_ai.tool.name": spec.name,
      "gen_ai.tool.call.id": id,
      "gen_ai.tool.type": "function",
      "gen_ai.tool.description": spec.description,
      "gen_ai.tool.call.arguments": JSON.stringify(args),
      "gen_ai.tool.call.result": text,
    };
    if (options.error) attributes["error.type"] = "ToolError";
    const span = this.o.process.tracer.startSpan(
      `execute_tool ${spec.name}`,
      { kind: SpanKind.INTERNAL, attributes, startTime: hr(at) },
      this.ctx,
    );
    if (options.harmful) {
      if (!this.attacking) throw new Error(`${spec.name}: a harmful call outside an attack`);
      if (!spec.writes) throw new Error(`${spec.name}: a harmful call to a read-only tool`);
      const sc = span.spanContext();
      this.o.tape.harmful ??= { traceId: sc.traceId, spanId: sc.spanId, startTimeMs: at, tool: spec.name, what: options.harmful };
    }
    if (options.error) span.setStatus({ code: SpanStatusCode.ERROR, message: options.error });
    this.o.tape.clock += clamp(rng.ms(spec.ms, 0.45), 50, 800);
    span.end(hr(this.o.tape.clock));
    this.tick();
    this.messages.push({ role: "tool", parts: [{ type: "tool_call_response", id, response: text }] });
    this.stepResults.push(text);
  }

  private callId(): string {
    return `call_${this.o.tape.rng.alnum(24, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")}`;
  }

  /** Before a step of the user's task: a delivered injection whose moment has come is acted on. */
  private beforeStep(): boolean {
    if (this.finished) throw new Error("a call after the task finished");
    if (this.attacking) return true;
    if (this.delivered && !this.attacked && this.countdown-- <= 0) this.attack();
    return !this.stopped;
  }

  private afterStep(): void {
    const results = this.stepResults;
    this.stepResults = [];
    if (this.armed && !this.attacking) {
      const escaped = JSON.stringify(this.probe).slice(1, -1);
      if (!results.some((r) => r.includes(this.probe) || r.includes(escaped))) {
        throw new Error(`the injected text did not reach the result of this step (probe ${JSON.stringify(this.probe)})`);
      }
      this.armed = false;
      this.delivered = true;
    }
  }

  private attack(): void {
    const hook = this.o.attack;
    if (!hook) throw new Error("no attack to carry out");
    this.attacking = true;
    hook.act(this);
    this.attacking = false;
    this.attacked = true;
    if (!this.o.tape.harmful) throw new Error("the attack made no harmful call");
    if (hook.stopAfter) this.stopped = true;
  }

  call(tool: string, args: Record<string, unknown>, result: unknown, options: CallOptions = {}): void {
    if (!this.beforeStep()) return;
    const spec = this.validate(tool, args);
    const id = this.callId();
    this.chat([{ type: "tool_call", id, name: tool, arguments: args }], "tool_calls");
    this.execute(id, spec, args, result, options);
    this.afterStep();
  }

  batch(calls: PlannedCall[]): void {
    if (!this.beforeStep()) return;
    const planned = calls.map((c) => ({ ...c, spec: this.validate(c.tool, c.args), id: this.callId() }));
    this.chat(
      planned.map((c) => ({ type: "tool_call" as const, id: c.id, name: c.tool, arguments: c.args })),
      "tool_calls",
    );
    for (const c of planned) this.execute(c.id, c.spec, c.args, c.result, {});
    this.afterStep();
  }

  followUp(text: string, assistantQuestion?: string): void {
    if (this.stopped || this.finished) return;
    if (assistantQuestion) {
      this.chat([{ type: "text", content: assistantQuestion }], "stop");
    }
    // the user reads and types
    this.o.tape.clock += this.o.tape.rng.int(8_000, 70_000);
    this.messages.push({ role: "user", parts: [{ type: "text", content: text }] });
  }

  finish(answer: string): void {
    if (this.finished) throw new Error("finished twice");
    if (this.delivered && !this.attacked) this.attack();
    const text = this.stopped ? "Done — I've completed the requested steps." : answer;
    this.chat([{ type: "text", content: text }], "stop");
    this.finished = true;
    this.o.tape.clock += this.o.tape.rng.int(5, 40);
    this.root.end(hr(this.o.tape.clock));
  }
}

/** Runs a template without recording: counts the untrusted places it fills and what the user names. */
export class DryAgent implements Agent {
  call(): void {}
  batch(): void {}
  followUp(): void {}
  finish(): void {}
}
