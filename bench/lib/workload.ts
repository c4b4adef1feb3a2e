import { randomBytes } from "node:crypto";
import { context, trace } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

/**
 * A realistic agent workload for benchmarks, made with the real OTel JS SDK: tasks of an
 * invocation span and tool calls with GenAI attributes, JSON arguments and results.
 * One task in ten calls a tool outside the billing profile on its last step.
 */
const TOOLS = ["invoices.read", "customers.read", "email.send", "payments.refund"];

export function agentSpans(tasks: number, stepsPerTask: number): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": "billing-agent",
      "deployment.environment.name": "prod",
      "spiffe.id": "spiffe://acme.example/agents/billing",
      "telemetry.sdk.language": "nodejs",
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("bench", "1.0.0");
  for (let t = 0; t < tasks; t++) {
    const taskId = `bench-${randomBytes(6).toString("hex")}`;
    const root = tracer.startSpan("invoke_agent billing-agent", {
      attributes: {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.id": "billing-agent",
        "gen_ai.agent.name": "Billing assistant",
        "agent.task.id": taskId,
        "agent.task.intent": `Summarise invoices of customer ${t}`,
        "agent.credential.id": `lease-${t}`,
      },
    });
    const inRoot = trace.setSpan(context.active(), root);
    for (let s = 0; s < stepsPerTask - 1; s++) {
      const tool = t % 10 === 0 && s === stepsPerTask - 2 ? "shell.exec" : (TOOLS[s % TOOLS.length] as string);
      provider
        .getTracer("bench")
        // a tool call is a child of its agent invocation, in the same trace
        .startSpan(
          `execute_tool ${tool}`,
          {
            attributes: toolCallAttributes(
              taskId,
              t,
              s,
              tool,
              `lease-${t}`,
              tool === "email.send" ? "smtp.acme.example" : "api.internal.example",
            ),
          },
          inRoot,
        )
        .end();
    }
    root.end();
  }
  return exporter.getFinishedSpans();
}

/** OTLP protobuf export requests of `perRequest` spans, as an SDK's batch exporter sends them. */
export function protobufRequests(spans: ReadableSpan[], perRequest: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < spans.length; i += perRequest) {
    const bytes = ProtobufTraceSerializer.serializeRequest(spans.slice(i, i + perRequest));
    if (bytes) out.push(bytes);
  }
  return out;
}

export const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Best of `runs` timings of `fn` (after one warm-up), as items per second. */
export function rate(items: number, runs: number, fn: () => void): number {
  fn();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return (items / best) * 1000;
}

/**
 * Items per second of each case: the best of `rounds` timings, with the cases taking turns
 * round after round (after one warm-up each), so that a machine that slows down for a
 * while slows them all alike and their ratios hold. Between two timings the event loop
 * turns once (outside the timing), so promises a case left settle and free what they hold.
 */
export async function rates<K extends string>(items: number, rounds: number, cases: Record<K, () => void>): Promise<Record<K, number>> {
  const names = Object.keys(cases) as K[];
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const best = {} as Record<K, number>;
  for (const name of names) {
    cases[name]();
    await settle();
    best[name] = Number.POSITIVE_INFINITY;
  }
  for (let i = 0; i < rounds; i++) {
    for (const name of names) {
      const t0 = performance.now();
      cases[name]();
      best[name] = Math.min(best[name], performance.now() - t0);
      await settle();
    }
  }
  const out = {} as Record<K, number>;
  for (const name of names) out[name] = (items / best[name]) * 1000;
  return out;
}

/** One task's spans as the OTLP export request an agent (or the Collector, one trace per message) sends. */
export interface TaskRequest {
  taskId: string;
  traceId: string;
  /** The task's spans; with `split`, its tool calls only. */
  request: Uint8Array;
  /** With `split`: the task's final span alone (its `invoke_agent` span, ended), for a later request. */
  final?: Uint8Array;
  /** The credentials its spans report. */
  credentials: string[];
}

/**
 * `count` billing-agent tasks of `stepsPerTask` spans each (an `invoke_agent` span and its
 * tool calls, within the shipped billing profile), one OTLP protobuf request per task, made
 * with the real OTel JS SDK. Each task binds the credential `credential(i)` (several: its tool
 * calls report them in turn, the invocation span the first); a drifting task's last tool call
 * is `shell.exec`, outside the profile (scope.tool, high, enforce: revoked). With `split`, a
 * task's tool calls are one request and its final span (the invocation, which the SDK ends
 * last) another, as an agent whose exporter flushed mid-task sends them.
 */
export function taskRequests(
  count: number,
  options: { stepsPerTask: number; idPrefix: string; drift: boolean; credential: (i: number) => string | string[]; split?: boolean },
): TaskRequest[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": "billing-agent",
      "deployment.environment.name": "prod",
      "spiffe.id": "spiffe://acme.example/agents/billing",
      "telemetry.sdk.language": "nodejs",
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("bench", "1.0.0");
  const out: TaskRequest[] = [];
  for (let t = 0; t < count; t++) {
    exporter.reset();
    const taskId = `${options.idPrefix}${t}`;
    const given = options.credential(t);
    const credentials = typeof given === "string" ? [given] : given;
    const credential = credentials[0] as string;
    const used = new Set([credential]);
    const root = tracer.startSpan("invoke_agent billing-agent", {
      attributes: {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.id": "billing-agent",
        "gen_ai.agent.name": "Billing assistant",
        "agent.task.id": taskId,
        "agent.task.intent": `Summarise invoices of customer ${t}`,
        "agent.credential.id": credential,
      },
    });
    const inRoot = trace.setSpan(context.active(), root);
    for (let s = 0; s < options.stepsPerTask - 1; s++) {
      const last = s === options.stepsPerTask - 2;
      const tool = options.drift && last ? "shell.exec" : (TOOLS[s % 2] as string);
      const toolCredential = credentials[s % credentials.length] as string;
      used.add(toolCredential);
      tracer
        .startSpan(
          `execute_tool ${tool}`,
          {
            attributes: toolCallAttributes(taskId, t, s, tool, toolCredential, "api.internal.example"),
          },
          inRoot,
        )
        .end();
    }
    root.end();
    const spans = exporter.getFinishedSpans();
    const traceId = root.spanContext().traceId;
    const rootId = root.spanContext().spanId;
    if (options.split) {
      const request = ProtobufTraceSerializer.serializeRequest(spans.filter((s) => s.spanContext().spanId !== rootId));
      const final = ProtobufTraceSerializer.serializeRequest(spans.filter((s) => s.spanContext().spanId === rootId));
      if (request && final) out.push({ taskId, traceId, request, final, credentials: [...used] });
    } else {
      const request = ProtobufTraceSerializer.serializeRequest(spans);
      if (request) out.push({ taskId, traceId, request, credentials: [...used] });
    }
  }
  void provider.shutdown();
  return out;
}

/** The q-quantile (0..1) of ascending `sorted` values, nearest rank. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** The attributes of a billing agent's tool call `s` of task `t` (both workloads' tool spans). */
function toolCallAttributes(taskId: string, t: number, s: number, tool: string, credentialId: string, serverAddress: string) {
  return {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.agent.id": "billing-agent",
    "agent.task.id": taskId,
    "gen_ai.tool.name": tool,
    "gen_ai.tool.call.id": `call_${t}_${s}`,
    "gen_ai.tool.type": "function",
    "gen_ai.tool.call.arguments": JSON.stringify({ customer: String(t), page: s, filter: { status: "open" } }),
    "gen_ai.tool.call.result": JSON.stringify({ items: [{ id: `INV-${t}-${s}`, amount: 120.5 }], next: null }),
    "data.classification": "internal",
    "agent.credential.id": credentialId,
    "server.address": serverAddress,
  };
}
