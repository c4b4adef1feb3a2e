import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AgentAction } from "../../schemas/action.js";
import { DeadLetter } from "../../schemas/deadletter.js";
import { fuzzEmbedded, mutation } from "../../test/support/otlp-fuzz.js";
import { eventually } from "../../test/support/wait.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { createLogger } from "../runtime/logging.js";
import { BadInput, runStage } from "../runtime/stage.js";
import { Metrics } from "../runtime/telemetry.js";
import { ingestStage } from "./ingest.js";

/**
 * Fuzzing the ingest stage: thousands of payloads mutated from real OTel SDK exports
 * (bit flips, truncation, splices, random bytes, JSON edits). Whatever comes in, the
 * stage must not crash, and every message must be accounted for: each span either
 * becomes an action or is reported, and a message with any problem is dead-lettered.
 * Then the whole embedded process over HTTP (test/support/otlp-fuzz.ts; its long run is
 * `npm run bench:fuzz`).
 */
function seedRequests(): { proto: Uint8Array; json: Uint8Array } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "fuzz-agent", "spiffe.id": "spiffe://acme.example/agents/fuzz" }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("fuzz");
  const root = tracer.startSpan("invoke_agent fuzz", {
    attributes: { "gen_ai.operation.name": "invoke_agent", "agent.task.id": "fuzz-task", "agent.task.scope": '{"tools":["a"]}' },
  });
  for (let i = 0; i < 4; i++) {
    tracer
      .startSpan(`execute_tool t${i}`, {
        attributes: {
          "gen_ai.tool.name": `t${i}`,
          "agent.task.id": "fuzz-task",
          "gen_ai.tool.call.arguments": JSON.stringify({ n: i, nested: { deep: [1, 2, { x: "y" }] } }),
          "data.classification": "internal",
          count: i,
          ratio: i / 3,
          ok: i % 2 === 0,
          tags: ["a", "b"],
        },
      })
      .end();
  }
  root.end();
  const spans = exporter.getFinishedSpans();
  return {
    proto: ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array,
    json: JsonTraceSerializer.serializeRequest(spans) as Uint8Array,
  };
}

const seeds = seedRequests();
const stage = ingestStage("fz.", () => 1_700_000_000_000);

function message(value: Buffer, contentType?: string): BusMessage {
  return {
    topic: "fz.otlp_spans",
    partition: 0,
    offset: "0",
    key: null,
    value,
    headers: contentType ? { "content-type": contentType } : {},
    timestampMs: 0,
  };
}

/** Runs one message through parse and handle; returns what became of it. */
async function account(m: BusMessage) {
  let decoded: ReturnType<typeof stage.parse>;
  try {
    decoded = stage.parse(m);
  } catch (err) {
    expect(err).toBeInstanceOf(BadInput);
    return { deadLettered: 1, actions: 0, spans: 0 };
  }
  const rejections: string[] = [];
  const emits = await stage.handle([{ message: m, value: decoded }], (_m, reason) => rejections.push(reason));
  for (const e of emits) AgentAction.parse(JSON.parse(String(e.message.value)));
  const spans = decoded.spans.length + decoded.rejected.length;
  expect(rejections.length).toBeLessThanOrEqual(1);
  // every span is either an action or counted in the rejection
  if (emits.length < spans) expect(rejections).toHaveLength(1);
  if (rejections.length === 1) expect(rejections[0]).toMatch(new RegExp(`of ${spans} spans rejected`));
  expect(emits.length).toBeLessThanOrEqual(spans);
  return { deadLettered: rejections.length, actions: emits.length, spans };
}

describe("ingest under fuzzing", () => {
  it("survives thousands of mutated protobuf payloads, every span accounted for", async () => {
    await fc.assert(
      fc.asyncProperty(mutation(seeds.proto), async (bytes) => {
        await account(message(bytes));
        await account(message(bytes, "application/x-protobuf"));
      }),
      { numRuns: 3000 },
    );
  });

  it("survives thousands of mutated OTLP JSON payloads", async () => {
    const text = Buffer.from(seeds.json).toString("utf8");
    const jsonEdits = fc.oneof(
      mutation(seeds.json),
      // structurally valid JSON with wrong types in random places
      fc
        .tuple(fc.nat({ max: text.length - 1 }), fc.constantFrom('"', "1", "null", "[]", "{}", "-", "\\u0000", "\u{1F600}", "true"))
        .map(([at, ins]) => Buffer.from(text.slice(0, at) + ins + text.slice(at))),
      fc.jsonValue({ maxDepth: 6 }).map((v) => Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [v] }] }] }))),
      fc.jsonValue({ maxDepth: 6 }).map((v) => Buffer.from(JSON.stringify(v))),
    );
    await fc.assert(
      fc.asyncProperty(jsonEdits, async (bytes) => {
        await account(message(bytes, "application/json"));
      }),
      { numRuns: 3000 },
    );
  });

  it("through the bus: 1000 mixed good and mutated messages, each decoded or dead-lettered, the stage still running", async () => {
    const bus = new MemoryBus({ partitions: 2 });
    const sub = await runStage(ingestStage("fz."), {
      bus,
      logger: createLogger("silent"),
      metrics: new Metrics(false),
      topicPrefix: "fz.",
      groupPrefix: "fz-",
      healthy: async () => true,
    });
    const actions: BusMessage[] = [];
    const letters: BusMessage[] = [];
    await bus.subscribe({ group: "watch-a", topics: ["fz.agent.actions"], fromBeginning: true }, async (b) => {
      actions.push(...b);
    });
    await bus.subscribe({ group: "watch-d", topics: ["fz.agent.deadletter"], fromBeginning: true }, async (b) => {
      letters.push(...b);
    });
    const inputs = fc.sample(fc.oneof(mutation(seeds.proto), fc.constant(Buffer.from(seeds.proto))), { numRuns: 1000, seed: 42 });
    let expectedActions = 0;
    let expectedLetters = 0;
    for (const bytes of inputs) {
      const r = await account(message(bytes));
      expectedActions += r.actions;
      expectedLetters += r.deadLettered;
      await bus.publish("fz.otlp_spans", [{ key: null, value: bytes }]);
    }
    await eventually(
      () => (bus.idle() && actions.length === expectedActions && letters.length === expectedLetters ? true : undefined),
      30_000,
      "all messages handled",
    );
    expect(expectedActions).toBeGreaterThan(0);
    expect(expectedLetters).toBeGreaterThan(0);
    // each dead letter names its source offset, and holds the offending part only: a prefix of undecodable
    // bytes, or the bad spans; never more than a few KB whatever the message
    const parsed = letters.map((l) => DeadLetter.parse(JSON.parse(String(l.value))));
    const offsets = new Set(parsed.map((l) => `${l.source.partition}/${l.source.offset}`));
    expect(offsets.size).toBe(letters.length);
    for (const [i, l] of parsed.entries()) {
      expect(l.message?.bytes).toBeGreaterThanOrEqual(0);
      expect(l.prefix !== undefined || l.spans !== undefined || l.message?.bytes === 0).toBe(true);
      expect(Buffer.from(l.prefix ?? "", "base64").length).toBeLessThanOrEqual(256);
      expect(letters[i]?.value.length).toBeLessThan(32 * 1024);
    }
    await sub.close();
    await bus.close();
  });
});

describe("the embedded process under fuzzing: gateway, ingest and the rest over HTTP", () => {
  it("answers thousands of generated payloads (valid, near-valid, hostile) well formed, throws nothing, publishes no secret, stays bounded", async () => {
    const report = await fuzzEmbedded({
      payloads: 2_400,
      seed: 42,
      concurrency: 8,
      env: {
        // one client sends everything here: its request rate is not what is tested
        DRIFTWATCH_OTLP_CLIENT_REQUESTS_PER_SECOND: "1000000",
        // a small store bound, so that it is reached
        DRIFTWATCH_EMBEDDED_MAX_TASKS: "300",
      },
      maxRssGrowthBytes: 768 * 2 ** 20,
    });
    expect(report.failure).toBeUndefined();
    expect(report.payloads).toBeGreaterThanOrEqual(2_400);
    expect(report.errorLogs).toEqual([]);
    // every kind of answer came up
    for (const status of ["200", "400", "413", "415"]) expect(report.byStatus[status], status).toBeGreaterThan(0);
    expect(report.spansPublished).toBeGreaterThan(0);
    expect(report.deadLetters).toBeGreaterThan(0);
    expect(report.storeTasks).toBeLessThanOrEqual(300);
    expect(report.evictedTasks).toBeGreaterThan(0);
  }, 300_000);
});
