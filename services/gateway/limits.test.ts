import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { ExportRequest, hexId, jsonRequest, oneSpanTraces, protobufRequest } from "../../test/support/otlp-build.js";
import { eventually } from "../../test/support/wait.js";
import { loadPolicy } from "../detector/policy.js";
import { decodeTraces } from "../ingest/otlp.js";
import { compileRedaction, REDACTED } from "../ingest/redaction.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { createLogger } from "../runtime/logging.js";
import { Metrics } from "../runtime/telemetry.js";
import { createGateway, type GatewayOptions } from "./gateway.js";
import { ClientBudgets, DEFAULT_CLIENT_LIMITS, requestCapProblem } from "./limits.js";
import { decodeStatus } from "./status.js";

const TOPIC = "gw.otlp_spans";
const PROTOBUF = { "content-type": "application/x-protobuf" };
const JSON_CT = { "content-type": "application/json" };

describe("ClientBudgets (token buckets per client)", () => {
  it("lets a client make requestsPerSecond requests at once, then asks it to wait, and refills over time", () => {
    let t = 0;
    const b = new ClientBudgets({ ...DEFAULT_CLIENT_LIMITS, requestsPerSecond: 2 }, () => t);
    expect(b.takeRequest("a")).toBeUndefined();
    expect(b.takeRequest("a")).toBeUndefined();
    expect(b.takeRequest("a")).toBe(1);
    expect(b.takeRequest("b")).toBeUndefined(); // another client has its own bucket
    t += 500; // half a second: one request's worth back
    expect(b.takeRequest("a")).toBeUndefined();
    expect(b.takeRequest("a")).toBe(1);
  });

  it("counts spans per minute; the wait is how long the missing spans take to come back", () => {
    let t = 0;
    const b = new ClientBudgets({ ...DEFAULT_CLIENT_LIMITS, spansPerMinute: 600 }, () => t); // 10 a second
    expect(b.takeSpans("a", 600)).toBeUndefined();
    expect(b.takeSpans("a", 1)).toBe(1);
    t += 5_000; // 50 back
    expect(b.takeSpans("a", 100)).toBe(5); // 50 short: 5 s
    expect(b.takeSpans("a", 50)).toBeUndefined(); // a refusal took nothing
    expect(b.takeSpans("a", 1)).toBe(1);
  });

  it("forgets the least recently seen client past its bound (a forgotten client starts with full buckets)", () => {
    const b = new ClientBudgets({ ...DEFAULT_CLIENT_LIMITS, requestsPerSecond: 1 }, () => 0, 2);
    expect(b.takeRequest("a")).toBeUndefined();
    expect(b.takeRequest("b")).toBeUndefined();
    expect(b.takeRequest("a")).toBe(1); // a is now the most recent
    expect(b.takeRequest("c")).toBeUndefined(); // b goes
    expect(b.size).toBe(2);
    expect(b.takeRequest("a")).toBe(1); // a kept its empty bucket
    expect(b.takeRequest("b")).toBeUndefined(); // b forgotten: full again
  });

  it("requestCapProblem names the cap a request breaks", () => {
    const caps = { maxSpansPerRequest: 3, maxTracesPerRequest: 2 };
    expect(requestCapProblem(caps, 3, ["t1", "t1", "t2"])).toBeUndefined();
    expect(requestCapProblem(caps, 4, [])?.reason).toBe("too_many_spans");
    expect(requestCapProblem(caps, 3, ["t1", "t2", "t3"])).toEqual({
      reason: "too_many_traces",
      message: expect.stringMatching(/more than 2 distinct traces/),
    });
  });
});

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup(options: Partial<GatewayOptions> = {}) {
  const bus = new MemoryBus({ partitions: 1 });
  const metrics = new Metrics(false);
  const app: FastifyInstance = createGateway({
    bus,
    topic: TOPIC,
    maxBodyBytes: 4 * 1024 * 1024,
    logger: createLogger("silent"),
    metrics,
    // the tests name their client in a header; the default is the remote address
    clientKey: (req) => String(req.headers["x-client"] ?? req.ip),
    ...options,
  });
  const published: BusMessage[] = [];
  const sub = await bus.subscribe({ group: "watch", topics: [TOPIC], fromBeginning: true }, async (batch) => {
    published.push(...batch);
  });
  cleanup.push(async () => {
    await sub.close();
    await app.close();
    await bus.close();
  });
  await app.ready();
  const rejected = async (reason: string) => (await metrics.otlpRejected.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  const settle = () => eventually(() => (bus.idle() ? true : undefined), 5_000, "the bus to deliver");
  return { app, bus, metrics, published, rejected, settle };
}

const post = (app: FastifyInstance, payload: Buffer, headers: Record<string, string>) =>
  app.inject({ method: "POST", url: "/v1/traces", payload, headers });

describe("gateway: per-client budgets", () => {
  it("answers 429 with Retry-After and a google.rpc.Status past the requests per second, per client, and again once refilled", async () => {
    let t = 0;
    const { app, rejected } = await setup({ limits: { requestsPerSecond: 3 }, now: () => t });
    const body = protobufRequest({ spans: oneSpanTraces(1) });
    for (let i = 0; i < 3; i++) expect((await post(app, body, { ...PROTOBUF, "x-client": "a" })).statusCode).toBe(200);
    const refused = await post(app, body, { ...PROTOBUF, "x-client": "a" });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.headers["content-type"]).toBe("application/x-protobuf");
    expect(decodeStatus("protobuf", refused.rawPayload)).toEqual({
      code: 429,
      message: "rate limited: more than 3 requests per second from this client; retry after 1 s",
    });
    // a JSON client gets the JSON form of the same Status
    const asJson = await post(app, jsonRequest({ spans: oneSpanTraces(1) }), { ...JSON_CT, "x-client": "a" });
    expect(asJson.statusCode).toBe(429);
    expect(asJson.headers["content-type"]).toMatch(/^application\/json/);
    expect(asJson.json()).toEqual({ code: 429, message: expect.stringMatching(/^rate limited/) });
    expect((await post(app, body, { ...PROTOBUF, "x-client": "b" })).statusCode).toBe(200);
    expect(await rejected("rate_limited")).toBe(2);
    t += 1_000;
    expect((await post(app, body, { ...PROTOBUF, "x-client": "a" })).statusCode).toBe(200);
  });

  it("answers 429 past the spans per minute, publishing nothing of the refused request; Retry-After says when it would fit", async () => {
    let t = 0;
    const { app, published, rejected, settle } = await setup({ limits: { spansPerMinute: 60, maxSpansPerRequest: 60 }, now: () => t });
    expect((await post(app, protobufRequest({ spans: oneSpanTraces(50) }), PROTOBUF)).statusCode).toBe(200);
    const refused = await post(app, protobufRequest({ spans: oneSpanTraces(20) }), PROTOBUF);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers["retry-after"]).toBe("10"); // 10 spans short at one a second
    expect(decodeStatus("protobuf", refused.rawPayload).message).toMatch(/^span budget exceeded: more than 60 spans per minute/);
    expect(await rejected("span_budget")).toBe(1);
    t += 10_000;
    expect((await post(app, protobufRequest({ spans: oneSpanTraces(20) }), PROTOBUF)).statusCode).toBe(200);
    await settle();
    expect(published.map((m) => decodeTraces(m.value, "protobuf").spans.length)).toEqual([50, 20]);
  });

  it("the remote address is the client by default", async () => {
    const bus = new MemoryBus({ partitions: 1 });
    const metrics = new Metrics(false);
    const app = createGateway({
      bus,
      topic: TOPIC,
      maxBodyBytes: 1 << 20,
      logger: createLogger("silent"),
      metrics,
      limits: { requestsPerSecond: 1 },
      now: () => 0,
    });
    cleanup.push(async () => {
      await app.close();
      await bus.close();
    });
    const body = protobufRequest({ spans: oneSpanTraces(1) });
    const from = (remoteAddress: string) =>
      app.inject({ method: "POST", url: "/v1/traces", payload: body, headers: PROTOBUF, remoteAddress });
    expect((await from("10.0.0.1")).statusCode).toBe(200);
    expect((await from("10.0.0.1")).statusCode).toBe(429);
    expect((await from("10.0.0.2")).statusCode).toBe(200);
  });
});

describe("gateway: per-request caps", () => {
  it("refuses a request with more spans than the cap with 413 and a Status naming the cap; nothing is published", async () => {
    const { app, published, rejected, settle } = await setup({ limits: { maxSpansPerRequest: 10 } });
    const trace = hexId(16);
    const ok = await post(app, protobufRequest({ spans: Array.from({ length: 10 }, () => ({ traceId: trace })) }), PROTOBUF);
    expect(ok.statusCode).toBe(200);
    const res = await post(app, protobufRequest({ spans: Array.from({ length: 11 }, () => ({ traceId: trace })) }), PROTOBUF);
    expect(res.statusCode).toBe(413);
    expect(res.headers["retry-after"]).toBeUndefined();
    expect(decodeStatus("protobuf", res.rawPayload)).toEqual({
      code: 413,
      message: expect.stringMatching(/^request has 11 spans; at most 10 per request/),
    });
    expect(await rejected("too_many_spans")).toBe(1);
    await settle();
    expect(published).toHaveLength(1);
  });

  it("refuses a request with more distinct traces than the cap (413, JSON Status for a JSON client)", async () => {
    const { app, published, rejected, settle } = await setup({ limits: { maxTracesPerRequest: 3 } });
    expect((await post(app, jsonRequest({ spans: oneSpanTraces(3) }), JSON_CT)).statusCode).toBe(200);
    const res = await post(app, jsonRequest({ spans: oneSpanTraces(4) }), JSON_CT);
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ code: 413, message: expect.stringMatching(/more than 3 distinct traces/) });
    expect(await rejected("too_many_traces")).toBe(1);
    await settle();
    expect(published).toHaveLength(1);
  });

  it("the request that filled the embedded store (3.9 MB, 76,000 one-span traces) is refused at the defaults", async () => {
    const { app, published, settle } = await setup({ clientKey: () => "one" });
    // as small as spans get: ids, a one-letter name, times
    const spans = Array.from({ length: 76_000 }, () => ({
      trace_id: Buffer.from(hexId(16), "hex"),
      span_id: Buffer.from(hexId(8), "hex"),
      name: "x",
      start_time_unix_nano: 1,
      end_time_unix_nano: 2,
    }));
    const body = Buffer.from(ExportRequest.encode(ExportRequest.fromObject({ resource_spans: [{ scope_spans: [{ spans }] }] })).finish());
    expect(body.length).toBeLessThan(4 * 1024 * 1024);
    const res = await post(app, body, PROTOBUF);
    expect(res.statusCode).toBe(413);
    expect(decodeStatus("protobuf", res.rawPayload).message).toMatch(/^request has 76000 spans; at most 20000 per request/);
    await settle();
    expect(published).toEqual([]);
  });
});

describe("gateway: redaction before publishing", () => {
  const redactor = compileRedaction(loadPolicy("policies").redaction);

  it("publishes the request without the values the policy names (span, resource, event and link attributes; tool payload keys)", async () => {
    const { app, published, settle } = await setup({ redactor: () => redactor });
    const body = protobufRequest({
      resource: { "service.name": "agent", "http.request.header.cookie": "session=SECRET-cookie" },
      spans: [
        {
          attributes: {
            "agent.task.id": "task-r",
            "gen_ai.tool.name": "email.send",
            "http.request.header.authorization": "Bearer SECRET-bearer",
            "gen_ai.tool.call.arguments": JSON.stringify({ to: "ops@example.com", auth: { password: "SECRET-pw" } }),
            "gen_ai.tool.call.result": { status: "ok", token: "SECRET-kv" },
          },
          events: [{ name: "retry", attributes: { "http.request.header.authorization": "Bearer SECRET-event" } }],
          links: [{ traceId: hexId(16), spanId: hexId(8), attributes: { "http.request.header.cookie": "SECRET-link" } }],
        },
      ],
    });
    expect(body.includes("SECRET-")).toBe(true);
    const res = await post(app, body, PROTOBUF);
    expect(res.statusCode).toBe(200);
    expect(ProtobufTraceSerializer.deserializeResponse(res.rawPayload)).toEqual({});
    await settle();
    expect(published).toHaveLength(1);
    const out = published[0]?.value ?? Buffer.alloc(0);
    expect(out.includes("SECRET-")).toBe(false);
    const [span] = decodeTraces(out, "protobuf").spans;
    expect(span?.attributes["http.request.header.authorization"]).toBe(REDACTED);
    expect(span?.resource["http.request.header.cookie"]).toBe(REDACTED);
    expect(span?.resource["service.name"]).toBe("agent");
    expect(JSON.parse(String(span?.attributes["gen_ai.tool.call.arguments"]))).toEqual({
      to: "ops@example.com",
      auth: { password: REDACTED },
    });
    expect(span?.attributes["gen_ai.tool.call.result"]).toEqual({ status: "ok", token: REDACTED });
    expect(span?.attributes["agent.task.id"]).toBe("task-r");
  });

  it("publishes a JSON request redacted too, and a request with nothing to redact exactly as received", async () => {
    const { app, published, settle } = await setup({ redactor: () => redactor });
    const secret = jsonRequest({ spans: [{ attributes: { "http.request.header.authorization": "Bearer SECRET-json" } }] });
    const clean = protobufRequest({ spans: [{ attributes: { "gen_ai.tool.call.arguments": '{"to":"a@example.com"}' } }] });
    expect((await post(app, secret, JSON_CT)).statusCode).toBe(200);
    expect((await post(app, clean, PROTOBUF)).statusCode).toBe(200);
    await settle();
    expect(published).toHaveLength(2);
    expect(published[0]?.value.includes("SECRET-")).toBe(false);
    expect(decodeTraces(published[0]?.value ?? Buffer.alloc(0), "json").spans[0]?.attributes["http.request.header.authorization"]).toBe(
      REDACTED,
    );
    expect(published[1]?.value.equals(clean)).toBe(true);
  });
});
