import { createHash } from "node:crypto";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it } from "vitest";
import { AgentAction } from "../../schemas/action.js";
import { DeadLetter } from "../../schemas/deadletter.js";
import { collectTopic } from "../../test/support/collect.js";
import { QueuedIds } from "../../test/support/ids.js";
import { eventually } from "../../test/support/wait.js";
import type { BusMessage, Subscription } from "../runtime/bus/bus.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { createLogger } from "../runtime/logging.js";
import { BadInput, runStage } from "../runtime/stage.js";
import { Metrics } from "../runtime/telemetry.js";
import { ingestStage } from "./ingest.js";
import type { DecodedTraces } from "./otlp.js";
import { compileRedaction, REDACTED, type Redactor } from "./redaction.js";

const PREFIX = "it.";
const INPUT = `${PREFIX}otlp_spans`;
const ACTIONS = `${PREFIX}agent.actions`;
const DEADLETTER = `${PREFIX}agent.deadletter`;
const NOW = 1_700_000_100_000;

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";

interface SpanSpec {
  name: string;
  attributes?: Record<string, string | number | boolean>;
  traceId?: string;
  spanId: string;
}

/** An OTLP export request made by the real OTel JS SDK and serializer. */
function request(specs: SpanSpec[], encoding: "protobuf" | "json" = "protobuf"): Buffer {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "agent", "gen_ai.agent.id": "billing-agent" }),
    idGenerator: new QueuedIds(
      specs.map((s) => s.traceId ?? TRACE),
      specs.map((s) => s.spanId),
    ),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("ingest-test");
  // each span is a root span, so each takes the next trace id
  for (const s of specs) tracer.startSpan(s.name, { attributes: s.attributes ?? {}, root: true }).end();
  const spans = exporter.getFinishedSpans();
  const bytes = encoding === "json" ? JsonTraceSerializer.serializeRequest(spans) : ProtobufTraceSerializer.serializeRequest(spans);
  if (!bytes) throw new Error("serializer returned nothing");
  return Buffer.from(bytes);
}

function message(value: Buffer, headers: Record<string, string> = {}, offset = "0"): BusMessage {
  return { topic: INPUT, partition: 0, offset, key: null, value, headers, timestampMs: NOW };
}

const GOOD: SpanSpec[] = [
  { name: "step one", spanId: "1111111111111111", attributes: { "agent.task.id": "task-a", "gen_ai.tool.name": "invoices.read" } },
  { name: "step two", spanId: "2222222222222222", attributes: { "gen_ai.conversation.id": "conv-b" } },
];

describe("ingestStage", () => {
  const stage = ingestStage(PREFIX, () => NOW);

  it("reads the prefixed otlp_spans topic", () => {
    expect(stage.name).toBe("ingest");
    expect(stage.input).toBe(INPUT);
  });

  describe("parse", () => {
    it("decodes protobuf with and without a content-type header", () => {
      const bytes = request(GOOD);
      for (const headers of [{ "content-type": "application/x-protobuf" }, {}] as Record<string, string>[]) {
        const decoded = stage.parse(message(bytes, headers));
        expect(decoded.rejected).toEqual([]);
        expect(decoded.spans.map((s) => s.name)).toEqual(["step one", "step two"]);
      }
    });

    it("decodes JSON with and without a content-type header", () => {
      const bytes = request(GOOD, "json");
      for (const headers of [{ "content-type": "application/json" }, {}] as Record<string, string>[]) {
        expect(stage.parse(message(bytes, headers)).spans.map((s) => s.spanId)).toEqual(["1111111111111111", "2222222222222222"]);
      }
    });

    it("throws BadInput for an empty message", () => {
      expect(() => stage.parse(message(Buffer.alloc(0)))).toThrow(BadInput);
      expect(() => stage.parse(message(Buffer.alloc(0)))).toThrow("empty message");
    });

    it("throws BadInput for garbage, with the decoder's reason", () => {
      const garbage = Buffer.from([0xff, 0xfe, 0xfd, 0x00, 0x13, 0x37, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
      expect(() => stage.parse(message(garbage))).toThrow(BadInput);
      expect(() => stage.parse(message(garbage))).toThrow(/malformed OTLP protobuf/);
      expect(() => stage.parse(message(Buffer.from('{"resourceSpans": [')))).toThrow(/malformed OTLP JSON/);
      expect(() => stage.parse(message(Buffer.from('{"resourceSpans": 5}'), { "content-type": "application/json" }))).toThrow(BadInput);
    });

    it("throws BadInput for truncated protobuf", () => {
      const bytes = request(GOOD);
      expect(() => stage.parse(message(bytes.subarray(0, bytes.length - 7)))).toThrow(BadInput);
    });

    it("throws BadInput, not a stack overflow, for hostile JSON nesting", () => {
      const deep = `${'{"arrayValue":{"values":['.repeat(5000)}{"stringValue":"x"}${"]}}".repeat(5000)}`;
      const doc = `{"resourceSpans":[{"resource":{"attributes":[{"key":"deep","value":${deep}}]}}]}`;
      expect(() => stage.parse(message(Buffer.from(doc)))).toThrow(BadInput);
    });
  });

  describe("handle", () => {
    const run = async (items: BusMessage[]) => {
      const rejects: { message: BusMessage; reason: string }[] = [];
      const parsed: { message: BusMessage; value: DecodedTraces }[] = items.map((m) => ({ message: m, value: stage.parse(m) }));
      const emits = await stage.handle(parsed, (m, reason) => rejects.push({ message: m, reason }));
      return { emits, rejects };
    };

    it("emits one agent.actions message per span, keyed by task id", async () => {
      const { emits, rejects } = await run([message(request(GOOD))]);
      expect(rejects).toEqual([]);
      expect(emits.map((e) => e.topic)).toEqual([ACTIONS, ACTIONS]);
      expect(emits.map((e) => e.message.key)).toEqual(["task-a", "conv-b"]);
      const actions = emits.map((e) => AgentAction.parse(JSON.parse(String(e.message.value))));
      expect(actions[0]).toMatchObject({
        id: `${TRACE}:1111111111111111`,
        taskId: "task-a",
        taskIdSource: "attribute",
        name: "step one",
        tool: { name: "invoices.read" },
        agent: { id: "billing-agent" },
        receivedAtMs: NOW,
      });
      expect(actions[1]).toMatchObject({ taskId: "conv-b", taskIdSource: "conversation", spanId: "2222222222222222" });
    });

    it("keys by trace id when the span names no task", async () => {
      const trace = "abcdefabcdefabcdefabcdefabcdef01";
      const { emits } = await run([message(request([{ name: "lonely", spanId: "3333333333333333", traceId: trace }]))]);
      expect(emits).toHaveLength(1);
      expect(emits[0]?.message.key).toBe(trace);
    });

    it("handles every message of a batch, in order", async () => {
      const second = request([{ name: "third", spanId: "3333333333333333", attributes: { "agent.task.id": "task-c" } }], "json");
      const { emits, rejects } = await run([message(request(GOOD), {}, "0"), message(second, { "content-type": "application/json" }, "1")]);
      expect(rejects).toEqual([]);
      expect(emits.map((e) => e.message.key)).toEqual(["task-a", "conv-b", "task-c"]);
    });

    it("a partly bad message: the good spans are emitted, reject is called once naming the bad span", async () => {
      const bytes = request([
        { name: "bad ids", spanId: "4444444444444444", traceId: "0".repeat(32) },
        ...GOOD,
        { name: "too long a task", spanId: "5555555555555555", attributes: { "agent.task.id": "x".repeat(300) } },
      ]);
      const good = message(request(GOOD), {}, "9");
      const partly = message(bytes, { "content-type": "application/x-protobuf" }, "10");
      const { emits, rejects } = await run([good, partly]);
      expect(emits.map((e) => e.message.key)).toEqual(["task-a", "conv-b", "task-a", "conv-b"]);
      expect(rejects).toHaveLength(1);
      expect(rejects[0]?.message).toBe(partly);
      const reason = rejects[0]?.reason ?? "";
      expect(reason).toMatch(/^2 of 4 spans rejected: /);
      expect(reason).toContain("span 0: trace id must be 16 non-zero bytes");
      expect(reason).toContain(`span ${TRACE}/5555555555555555:`);
    });

    it("a message whose spans are all bad emits nothing and is rejected", async () => {
      const bytes = request([{ name: "bad", spanId: "4444444444444444", traceId: "0".repeat(32) }]);
      const { emits, rejects } = await run([message(bytes)]);
      expect(emits).toEqual([]);
      expect(rejects.map((r) => r.reason)).toEqual([expect.stringMatching(/^1 of 1 spans rejected: span 0: trace id/)]);
    });

    it("an empty request emits nothing and rejects nothing", async () => {
      const { emits, rejects } = await run([message(Buffer.from('{"resourceSpans":[]}'))]);
      expect(emits).toEqual([]);
      expect(rejects).toEqual([]);
    });
  });
});

// ---- on a bus, with the stage runner -----------------------------------------------------

const open: { bus: MemoryBus; subs: Subscription[] }[] = [];
afterEach(async () => {
  for (const { bus, subs } of open.splice(0)) {
    for (const s of subs) await s.close();
    await bus.close();
  }
});

async function runOnBus(redactor?: Redactor) {
  const bus = new MemoryBus({ partitions: 1, retryDelayMs: 10 });
  const entry = { bus, subs: [] as Subscription[] };
  open.push(entry);
  const metrics = new Metrics(false);
  const collect = (topic: string) => collectTopic(bus, topic, entry.subs);
  const actions = await collect(ACTIONS);
  const dead = await collect(DEADLETTER);
  entry.subs.push(
    await runStage(ingestStage(PREFIX, Date.now, redactor ? { redactor: () => redactor } : {}), {
      bus,
      logger: createLogger("silent"),
      metrics,
      topicPrefix: PREFIX,
      groupPrefix: "test.",
      healthy: async () => true,
    }),
  );
  return { bus, metrics, actions, dead };
}

const deadLetters = async (metrics: Metrics) => (await metrics.deadLetters.get()).values.reduce((sum, v) => sum + v.value, 0);

describe("ingest on a MemoryBus (runStage)", () => {
  it("dead-letters a garbage message and goes on to process the next one", async () => {
    const { bus, metrics, actions, dead } = await runOnBus();
    const garbage = Buffer.from("\u0000\u0001definitely not OTLP\u00ff");
    await bus.publish(INPUT, [{ key: "k1", value: garbage, headers: { "content-type": "application/x-protobuf" } }]);
    await eventually(() => (dead.length === 1 ? true : undefined), 5_000, "the dead letter");

    await bus.publish(INPUT, [{ key: null, value: request(GOOD), headers: { "content-type": "application/x-protobuf" } }]);
    await eventually(() => (actions.length === 2 ? true : undefined), 5_000, "the actions of the good message");

    const letter = DeadLetter.parse(JSON.parse(dead[0]?.value.toString("utf8") ?? ""));
    expect(letter.stage).toBe("ingest");
    expect(letter.reason).toMatch(/^malformed OTLP protobuf: /);
    expect(letter.source).toEqual({ topic: INPUT, partition: 0, offset: "0" });
    // no redaction policy here: the prefix is the first bytes, all of them in a message this short
    expect(Buffer.from(letter.prefix ?? "", "base64")).toEqual(garbage);
    expect(letter.message).toEqual({ bytes: garbage.length, sha256: createHash("sha256").update(garbage).digest("hex") });
    expect(dead[0]?.key).toBe("k1");
    expect(dead[0]?.headers["driftwatch-reason"]).toBe(letter.reason.slice(0, 200));

    expect(actions.map((m) => m.key)).toEqual(["task-a", "conv-b"]);
    expect(actions.map((m) => AgentAction.parse(JSON.parse(m.value.toString())).name)).toEqual(["step one", "step two"]);
    expect(dead).toHaveLength(1);
    expect(await deadLetters(metrics)).toBe(1);
    await eventually(() => (bus.idle() ? true : undefined), 5_000, "the bus to settle");
    expect(bus.backlog("test.ingest")).toBe(0);
  });

  it("dead-letters an empty message with its reason", async () => {
    const { bus, dead } = await runOnBus();
    await bus.publish(INPUT, [{ key: null, value: Buffer.alloc(0) }]);
    await eventually(() => (dead.length === 1 ? true : undefined), 5_000, "the dead letter");
    const letter = DeadLetter.parse(JSON.parse(dead[0]?.value.toString("utf8") ?? ""));
    expect(letter.reason).toBe("empty message");
    expect(letter.prefix).toBeUndefined();
    expect(letter.message?.bytes).toBe(0);
  });

  it("a partly bad message: good spans become actions, the message is dead-lettered once with the reason", async () => {
    const { bus, actions, dead } = await runOnBus();
    const bytes = request([{ name: "bad ids", spanId: "4444444444444444", traceId: "0".repeat(32) }, ...GOOD], "json");
    await bus.publish(INPUT, [{ key: null, value: bytes, headers: { "content-type": "application/json" } }]);
    await eventually(() => (actions.length === 2 && dead.length === 1 ? true : undefined), 5_000, "actions and dead letter");
    const letter = DeadLetter.parse(JSON.parse(dead[0]?.value.toString("utf8") ?? ""));
    expect(letter.reason).toMatch(/^1 of 3 spans rejected: span 0: trace id must be 16 non-zero bytes/);
    // the offending span only, not the message
    expect(letter.spans).toEqual([{ index: 0, reason: expect.stringMatching(/^span 0: trace id must be 16 non-zero bytes/) }]);
    expect(letter.rejectedSpans).toBe(1);
    expect(letter.prefix).toBeUndefined();
    expect(letter.message?.bytes).toBe(bytes.length);
    expect(actions.map((m) => m.key)).toEqual(["task-a", "conv-b"]);
    await eventually(() => (bus.idle() ? true : undefined), 5_000, "the bus to settle");
    expect(dead).toHaveLength(1);
  });
});

describe("ingest's dead letters keep only the offending part, redacted", () => {
  const redactor = compileRedaction({ attributes: ["http.request.header.authorization"], argumentKeys: ["password"] });

  it("undecodable bytes: a prefix cut before the first key the policy names, with the length and sha256 of the whole", async () => {
    const { bus, dead } = await runOnBus(redactor);
    const whole = request([
      { name: "a", spanId: "1111111111111111", attributes: { "http.request.header.authorization": "Bearer SECRET-1" } },
    ]);
    const truncated = whole.subarray(0, whole.length - 3);
    await bus.publish(INPUT, [{ key: null, value: truncated, headers: { "content-type": "application/x-protobuf" } }]);
    await eventually(() => (dead.length === 1 ? true : undefined), 5_000, "the dead letter");
    expect(dead[0]?.value.includes("SECRET")).toBe(false);
    const letter = DeadLetter.parse(JSON.parse(dead[0]?.value.toString("utf8") ?? ""));
    const prefix = Buffer.from(letter.prefix ?? "", "base64");
    expect(prefix.length).toBeGreaterThan(0);
    expect(truncated.subarray(0, prefix.length).equals(prefix)).toBe(true);
    expect(truncated.subarray(prefix.length).toString("latin1")).toMatch(/^http\.request\.header\.authorization/);
    expect(letter.message).toEqual({ bytes: truncated.length, sha256: createHash("sha256").update(truncated).digest("hex") });
  });

  it("a span ingest cannot take: its ids, the reason and a redacted, capped excerpt; the good spans go on", async () => {
    const { bus, actions, dead } = await runOnBus(redactor);
    const bytes = request([
      {
        name: "too long a task id",
        spanId: "5555555555555555",
        attributes: {
          "agent.task.id": "t".repeat(300),
          "http.request.header.authorization": "Bearer SECRET-2",
          "gen_ai.tool.call.arguments": JSON.stringify({ user: "u", password: "SECRET-3", pad: "p".repeat(5000) }),
        },
      },
      ...GOOD,
    ]);
    await bus.publish(INPUT, [{ key: null, value: bytes, headers: { "content-type": "application/x-protobuf" } }]);
    await eventually(() => (actions.length === 2 && dead.length === 1 ? true : undefined), 5_000, "actions and dead letter");
    expect(dead[0]?.value.includes("SECRET")).toBe(false);
    const letter = DeadLetter.parse(JSON.parse(dead[0]?.value.toString("utf8") ?? ""));
    expect(letter.rejectedSpans).toBe(1);
    expect(letter.spans).toEqual([
      {
        index: 0,
        traceId: TRACE,
        spanId: "5555555555555555",
        reason: expect.stringMatching(/taskId is longer than 256/),
        excerpt: expect.any(String),
      },
    ]);
    const excerpt = letter.spans?.[0]?.excerpt ?? "";
    expect(excerpt.length).toBeLessThanOrEqual(1024 + 20);
    expect(excerpt).toContain(`"http.request.header.authorization":"${REDACTED}"`);
    expect(excerpt).toContain("too long a task id");
    expect(dead[0]?.value.length).toBeLessThan(4096);
  });
});

describe("ingestStage: configured encoding and redaction", () => {
  it("reads every message as the configured encoding, whatever its header says", () => {
    const proto = request([{ name: "a", spanId: "1111111111111111" }]);
    const asJson = ingestStage(PREFIX, () => NOW, { encoding: "json" });
    const msg = {
      topic: INPUT,
      partition: 0,
      offset: "0",
      key: null,
      value: proto,
      headers: { "content-type": "application/x-protobuf" },
      timestampMs: 0,
    };
    expect(() => asJson.parse(msg)).toThrow(BadInput);
    const asProto = ingestStage(PREFIX, () => NOW, { encoding: "protobuf" });
    expect(asProto.parse({ ...msg, headers: { "content-type": "application/json" } }).spans).toHaveLength(1);
  });

  it("applies the policy's redaction, read per batch so a reload takes effect", async () => {
    let redactor = compileRedaction(undefined);
    const stage = ingestStage(PREFIX, () => NOW, { redactor: () => redactor });
    const value = request([{ name: "a", spanId: "1111111111111111", attributes: { "user.email": "a@b.example" } }]);
    const msg = { topic: INPUT, partition: 0, offset: "0", key: null, value, headers: {}, timestampMs: 0 };
    const before = await stage.handle([{ message: msg, value: stage.parse(msg) }], () => undefined);
    expect(String(before[0]?.message.value)).toContain("a@b.example");
    redactor = compileRedaction({ attributes: ["user.*"], argumentKeys: [] });
    const after = await stage.handle([{ message: msg, value: stage.parse(msg) }], () => undefined);
    expect(String(after[0]?.message.value)).not.toContain("a@b.example");
  });
});
