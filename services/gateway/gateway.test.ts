import { gzipSync } from "node:zlib";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { QueuedIds } from "../../test/support/ids.js";
import { eventually } from "../../test/support/wait.js";
import { decodeTraces } from "../ingest/otlp.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { createLogger } from "../runtime/logging.js";
import { Metrics } from "../runtime/telemetry.js";
import { createGateway } from "./gateway.js";
import { decodeStatus } from "./status.js";

const TOPIC = "gw.otlp_spans";
const MAX_BODY = 64 * 1024;
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";

/** An export request from the real OTel JS SDK and serializer; each span is a root span taking the next trace id. */
function exportRequest(
  encoding: "protobuf" | "json",
  traceIds: string[] = [TRACE, TRACE],
  attributes: Record<string, string> = {},
): Buffer {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "agent" }),
    idGenerator: new QueuedIds([...traceIds], ["1111111111111111", "2222222222222222", "3333333333333333", "4444444444444444"]),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("gateway-test");
  traceIds.forEach((_, i) => {
    tracer.startSpan(`span ${i}`, { root: true, attributes: { "agent.task.id": "task-1", ...attributes } }).end();
  });
  const spans = exporter.getFinishedSpans();
  const bytes = encoding === "json" ? JsonTraceSerializer.serializeRequest(spans) : ProtobufTraceSerializer.serializeRequest(spans);
  if (!bytes) throw new Error("serializer returned nothing");
  return Buffer.from(bytes);
}

const PROTOBUF = { "content-type": "application/x-protobuf" };
const JSON_CT = { "content-type": "application/json" };

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup(maxBodyBytes = MAX_BODY) {
  const bus = new MemoryBus({ partitions: 1 });
  const metrics = new Metrics(false);
  const app: FastifyInstance = createGateway({ bus, topic: TOPIC, maxBodyBytes, logger: createLogger("silent"), metrics });
  cleanup.push(async () => {
    await app.close();
    await bus.close();
  });
  const published: BusMessage[] = [];
  cleanup.push(
    (
      await bus.subscribe({ group: "collector", topics: [TOPIC], fromBeginning: true }, async (batch) => {
        published.push(...batch);
      })
    ).close,
  );
  await app.ready();
  const received = async () => (await metrics.spansReceived.get()).values.reduce((s, v) => s + v.value, 0);
  return { app, bus, metrics, published, received };
}

const post = (app: FastifyInstance, payload: Buffer | string, headers: Record<string, string>) =>
  app.inject({ method: "POST", url: "/v1/traces", payload, headers });

/** The google.rpc.Status of a 4xx/5xx answer, read per its content type (OTLP: binary protobuf or JSON, never text). */
function status(res: { headers: Record<string, unknown>; rawPayload: Buffer }): { code: number; message: string } {
  const type = String(res.headers["content-type"]);
  if (type.startsWith("application/json")) return decodeStatus("json", res.rawPayload);
  expect(type).toBe("application/x-protobuf");
  return decodeStatus("protobuf", res.rawPayload);
}

/** Waits for the bus to deliver whatever was published (or to be sure nothing was). */
async function settle(bus: MemoryBus) {
  await eventually(() => (bus.idle() ? true : undefined), 5_000, "the bus to deliver");
}

describe("POST /v1/traces, protobuf", () => {
  it("answers 200 with an ExportTraceServiceResponse and publishes the raw body with its content type", async () => {
    const { app, bus, published, received } = await setup();
    const body = exportRequest("protobuf");
    const res = await post(app, body, PROTOBUF);
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("application/x-protobuf");
    expect(ProtobufTraceSerializer.deserializeResponse(res.rawPayload)).toEqual({});

    await settle(bus);
    expect(published).toHaveLength(1);
    expect(published[0]?.value.equals(body)).toBe(true);
    expect(published[0]?.headers).toEqual({ "content-type": "application/x-protobuf" });
    expect(decodeTraces(published[0]?.value ?? Buffer.alloc(0), "protobuf").spans).toHaveLength(2);
    expect(await received()).toBe(2);
  });

  it("accepts application/protobuf too", async () => {
    const { app, bus, published } = await setup();
    const res = await post(app, exportRequest("protobuf"), { "content-type": "application/protobuf" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("application/x-protobuf");
    await settle(bus);
    expect(published).toHaveLength(1);
  });

  it("malformed protobuf → 400 with a clear message, nothing published", async () => {
    const { app, bus, published, received } = await setup();
    const body = exportRequest("protobuf");
    const res = await post(app, body.subarray(0, body.length - 5), PROTOBUF);
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toBe("application/x-protobuf");
    expect(status(res)).toEqual({ code: 400, message: expect.stringMatching(/^malformed OTLP protobuf: /) });
    await settle(bus);
    expect(published).toEqual([]);
    expect(await received()).toBe(0);
  });

  it("an empty body → 400", async () => {
    const { app } = await setup();
    const res = await post(app, Buffer.alloc(0), PROTOBUF);
    expect(res.statusCode).toBe(400);
    expect(status(res).message).toBe("empty request body");
  });

  it("one bad span → 200 with partial_success rejected_spans=1; the request is still published", async () => {
    const { app, bus, published, received } = await setup();
    const body = exportRequest("protobuf", ["0".repeat(32), TRACE]);
    const res = await post(app, body, PROTOBUF);
    expect(res.statusCode).toBe(200);
    const answer = ProtobufTraceSerializer.deserializeResponse(res.rawPayload);
    expect(answer.partialSuccess?.rejectedSpans).toBe(1);
    expect(answer.partialSuccess?.errorMessage).toMatch(/^span 0: trace id must be 16 non-zero bytes/);
    await settle(bus);
    expect(published).toHaveLength(1);
    expect(await received()).toBe(1);
  });

  it("all spans bad → 200 with partial success, nothing published", async () => {
    const { app, bus, published } = await setup();
    const res = await post(app, exportRequest("protobuf", ["0".repeat(32), "0".repeat(32)]), PROTOBUF);
    expect(res.statusCode).toBe(200);
    expect(ProtobufTraceSerializer.deserializeResponse(res.rawPayload).partialSuccess?.rejectedSpans).toBe(2);
    await settle(bus);
    expect(published).toEqual([]);
  });
});

describe("POST /v1/traces, JSON", () => {
  it("answers 200 with {} and publishes the body with a JSON content type", async () => {
    const { app, bus, published } = await setup();
    const body = exportRequest("json");
    const res = await post(app, body, JSON_CT);
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(res.json()).toEqual({});
    await settle(bus);
    expect(published).toHaveLength(1);
    expect(published[0]?.value.equals(body)).toBe(true);
    expect(published[0]?.headers["content-type"]).toBe("application/json");
  });

  it("accepts a charset parameter", async () => {
    const { app } = await setup();
    const res = await post(app, exportRequest("json"), { "content-type": "application/json; charset=utf-8" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({});
  });

  it("malformed JSON → 400 with a google.rpc.Status-like {code, message}", async () => {
    const { app, bus, published } = await setup();
    const res = await post(app, '{"resourceSpans": [', JSON_CT);
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const status = res.json() as { code: number; message: string };
    expect(status.code).toBe(400);
    expect(status.message).toMatch(/^malformed OTLP JSON: /);
    await settle(bus);
    expect(published).toEqual([]);
  });

  it("JSON that is not an export request → 400 naming the field", async () => {
    const { app } = await setup();
    const res = await post(app, '{"resourceSpans": {"not": "a list"}}', JSON_CT);
    expect(res.statusCode).toBe(400);
    expect((res.json() as { message: string }).message).toMatch(/resourceSpans/);
  });

  it("hostile nesting → 400, not a 500", async () => {
    const { app } = await setup(1024 * 1024);
    const deep = `${'{"arrayValue":{"values":['.repeat(5000)}{"stringValue":"x"}${"]}}".repeat(5000)}`;
    const res = await post(app, `{"resourceSpans":[{"resource":{"attributes":[{"key":"deep","value":${deep}}]}}]}`, JSON_CT);
    expect(res.statusCode).toBe(400);
    expect((res.json() as { message: string }).message).toMatch(/nested too deeply/);
  });

  it("one bad span → 200 with partialSuccess (rejectedSpans as an int64 string)", async () => {
    const { app, bus, published } = await setup();
    const res = await post(app, exportRequest("json", [TRACE, "0".repeat(32)]), JSON_CT);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      partialSuccess: { rejectedSpans: "1", errorMessage: expect.stringMatching(/^span 1: trace id must be 16 non-zero bytes/) },
    });
    await settle(bus);
    expect(published).toHaveLength(1);
  });
});

describe("content types, sizes and encodings", () => {
  it("text/plain → 415", async () => {
    const { app, bus, published } = await setup();
    const res = await post(app, "hello", { "content-type": "text/plain" });
    expect(res.statusCode).toBe(415);
    expect(status(res).message).toMatch(/unsupported Content-Type/);
    await settle(bus);
    expect(published).toEqual([]);
  });

  it("other content types → 415", async () => {
    const { app } = await setup();
    for (const ct of ["application/xml", "application/octet-stream", "multipart/form-data; boundary=x"]) {
      const res = await post(app, exportRequest("protobuf"), { "content-type": ct });
      expect(res.statusCode, ct).toBe(415);
    }
  });

  it("a body over maxBodyBytes → 413", async () => {
    const { app, bus, published } = await setup(1024);
    const res = await post(app, Buffer.alloc(2048, 0x0a), PROTOBUF);
    expect(res.statusCode).toBe(413);
    expect(status(res).message).toBe("request body larger than 1024 bytes");
    const asJson = await post(app, `{"resourceSpans":[],"pad":"${"x".repeat(2048)}"}`, JSON_CT);
    expect(asJson.statusCode).toBe(413);
    expect(asJson.json()).toEqual({ code: 413, message: "request body larger than 1024 bytes" });
    await settle(bus);
    expect(published).toEqual([]);
  });

  it("accepts a gzip body and publishes it decompressed", async () => {
    const { app, bus, published } = await setup();
    const body = exportRequest("protobuf");
    const res = await post(app, gzipSync(body), { ...PROTOBUF, "content-encoding": "gzip" });
    expect(res.statusCode).toBe(200);
    expect(ProtobufTraceSerializer.deserializeResponse(res.rawPayload)).toEqual({});
    await settle(bus);
    expect(published).toHaveLength(1);
    expect(published[0]?.value.equals(body)).toBe(true);
  });

  it("accepts gzip JSON, with the encoding in any case", async () => {
    const { app } = await setup();
    const res = await post(app, gzipSync(exportRequest("json")), { ...JSON_CT, "content-encoding": "GZIP" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({});
  });

  it("accepts identity encoding", async () => {
    const { app } = await setup();
    const res = await post(app, exportRequest("protobuf"), { ...PROTOBUF, "content-encoding": "identity" });
    expect(res.statusCode).toBe(200);
  });

  it("a gzip bomb (small body inflating past the limit) → 413, and the server keeps serving", async () => {
    const { app, bus, published } = await setup(64 * 1024);
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x0a));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const res = await post(app, bomb, { ...PROTOBUF, "content-encoding": "gzip" });
    expect(res.statusCode).toBe(413);
    expect(status(res).message).toMatch(/larger than 65536 bytes/);
    // a truncated bomb: the stream would fail after fastify stopped listening to it
    const truncated = bomb.subarray(0, bomb.length - 100);
    const res2 = await post(app, truncated, { ...PROTOBUF, "content-encoding": "gzip" });
    expect(res2.statusCode).toBe(413);
    await new Promise((r) => setTimeout(r, 50));
    const after = await post(app, exportRequest("protobuf"), PROTOBUF);
    expect(after.statusCode).toBe(200);
    await settle(bus);
    expect(published).toHaveLength(1);
  });

  it("a gzip bomb with a bad checksum → 413, and no uncaught error once fastify stopped listening", async () => {
    const { app } = await setup(64 * 1024);
    const bomb = Buffer.from(gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x0a)));
    for (let i = bomb.length - 60; i < bomb.length - 20; i++) bomb[i] = 0xff; // fails only after the limit is hit
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on("uncaughtException", onUncaught);
    try {
      const res = await post(app, bomb, { ...PROTOBUF, "content-encoding": "gzip" });
      expect(res.statusCode).toBe(413);
      await new Promise((r) => setTimeout(r, 300)); // let inflation run to the corrupt part
    } finally {
      process.off("uncaughtException", onUncaught);
    }
    expect(uncaught).toEqual([]);
    expect((await post(app, exportRequest("protobuf"), PROTOBUF)).statusCode).toBe(200);
  });

  it("a compressed body within the limit that inflates past it → 413 even when the compressed size is small", async () => {
    const { app } = await setup(4096);
    const res = await post(app, gzipSync(Buffer.alloc(8192, 0x0a)), { ...PROTOBUF, "content-encoding": "gzip" });
    expect(res.statusCode).toBe(413);
  });

  it("invalid gzip → 400", async () => {
    const { app } = await setup();
    const res = await post(app, exportRequest("protobuf"), { ...PROTOBUF, "content-encoding": "gzip" });
    expect(res.statusCode).toBe(400);
    expect(status(res).message).toMatch(/^malformed gzip body: /);
    const json = await post(app, Buffer.from("not gzip at all"), { ...JSON_CT, "content-encoding": "gzip" });
    expect(json.statusCode).toBe(400);
    expect((json.json() as { code: number; message: string }).message).toMatch(/^malformed gzip body: /);
  });

  it("a truncated gzip body → 400", async () => {
    const { app } = await setup();
    const gz = gzipSync(exportRequest("protobuf"));
    const res = await post(app, gz.subarray(0, gz.length - 10), { ...PROTOBUF, "content-encoding": "gzip" });
    expect(res.statusCode).toBe(400);
  });

  it("unsupported content-encoding (br) → 415", async () => {
    const { app, bus, published } = await setup();
    const res = await post(app, exportRequest("protobuf"), { ...PROTOBUF, "content-encoding": "br" });
    expect(res.statusCode).toBe(415);
    expect(status(res).message).toMatch(/unsupported Content-Encoding "br"/);
    const json = await post(app, exportRequest("json"), { ...JSON_CT, "content-encoding": "deflate" });
    expect(json.statusCode).toBe(415);
    expect(json.json()).toEqual({ code: 415, message: expect.stringMatching(/unsupported Content-Encoding "deflate"/) });
    await settle(bus);
    expect(published).toEqual([]);
  });
});

describe("when the bus cannot take the spans", () => {
  it("answers 503 with Retry-After", async () => {
    const { app, bus, received } = await setup();
    await bus.close();
    const res = await post(app, exportRequest("protobuf"), PROTOBUF);
    expect(res.statusCode).toBe(503);
    expect(res.headers["retry-after"]).toBe("2");
    expect(status(res)).toEqual({ code: 503, message: "bus unavailable, retry later" });
    expect(await received()).toBe(0);
    const json = await post(app, exportRequest("json"), JSON_CT);
    expect(json.statusCode).toBe(503);
    expect(json.headers["retry-after"]).toBe("2");
    expect(status(json)).toEqual({ code: 503, message: "bus unavailable, retry later" });
  });
});

describe("health", () => {
  it("/healthz answers ok", async () => {
    const { app } = await setup();
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
  });

  it("/readyz follows the bus", async () => {
    const { app, bus } = await setup();
    const ready = await app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ready" });
    await bus.close();
    const down = await app.inject({ method: "GET", url: "/readyz" });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ status: "bus unavailable" });
  });

  it("/v1/traces takes only POST", async () => {
    const { app } = await setup();
    const res = await app.inject({ method: "GET", url: "/v1/traces" });
    expect(res.statusCode).toBe(404);
  });
});

describe("backpressure", () => {
  it("answers 429 with Retry-After when consumers are behind, and accepts again once they catch up", async () => {
    const bus = new MemoryBus({ partitions: 1, maxBacklogPerPartition: 2 });
    const app = createGateway({ bus, topic: TOPIC, maxBodyBytes: MAX_BODY, logger: createLogger("silent"), metrics: new Metrics(false) });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const sub = await bus.subscribe({ group: "slow", topics: [TOPIC], fromBeginning: true }, async () => gate);
    cleanup.push(async () => {
      release();
      await sub.close();
      await app.close();
      await bus.close();
    });
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await post(app, exportRequest("protobuf"), PROTOBUF)).statusCode);
    expect(codes.slice(0, 2)).toEqual([200, 200]);
    const refused = await post(app, exportRequest("protobuf"), PROTOBUF);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(status(refused)).toEqual({ code: 429, message: "pipeline is behind, retry later" });
    release();
    await eventually(
      async () => ((await post(app, exportRequest("protobuf"), PROTOBUF)).statusCode === 200 ? true : undefined),
      5_000,
      "acceptance again",
    );
  });

  it("answers 429 when too many requests are being published at once, and 503 when a publish times out", async () => {
    let finish: () => void = () => undefined;
    const stuck = {
      publish: () =>
        new Promise<void>((resolve) => {
          finish = resolve;
        }),
      ready: async () => true,
    };
    const app = createGateway({
      bus: stuck,
      topic: TOPIC,
      maxBodyBytes: MAX_BODY,
      maxInflight: 1,
      publishTimeoutMs: 300,
      logger: createLogger("silent"),
      metrics: new Metrics(false),
    });
    cleanup.push(() => app.close());
    const first = post(app, exportRequest("protobuf"), PROTOBUF);
    await new Promise((r) => setTimeout(r, 50));
    const second = await post(app, exportRequest("protobuf"), PROTOBUF);
    expect(second.statusCode).toBe(429);
    const timedOut = await first;
    expect(timedOut.statusCode).toBe(503);
    expect(timedOut.headers["retry-after"]).toBe("2");
    finish();
  });
});
