import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import { AgentAction, type Attributes } from "../../schemas/action.js";
import {
  MAX_ATTRIBUTE_CHARS,
  MAX_TOOL_PAYLOAD_CHARS,
  MAX_TOOL_PAYLOAD_DEPTH,
  NormaliseError,
  normaliseSpan,
  parseDeclaredScope,
} from "./normalise.js";
import { decodeProtobuf, type OtlpSpan } from "./otlp.js";
import { compileRedaction, REDACTED } from "./redaction.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const PARENT = "a1b2c3d4e5f60718";
const RECEIVED = 1_700_000_005_000;

function span(attributes: Attributes = {}, resource: Attributes = {}, over: Partial<OtlpSpan> = {}): OtlpSpan {
  return {
    traceId: TRACE,
    spanId: SPAN,
    name: "execute_tool invoices.read",
    kind: 1,
    startTimeUnixNano: 1_700_000_000_123_456_789n,
    endTimeUnixNano: 1_700_000_001_000_000_000n,
    attributes,
    resource,
    scope: { name: "test" },
    links: [],
    status: { code: 0 },
    ...over,
  };
}

const norm = (attributes: Attributes = {}, resource: Attributes = {}, over: Partial<OtlpSpan> = {}) =>
  normaliseSpan(span(attributes, resource, over), RECEIVED);

describe("normaliseSpan: attributes", () => {
  it("keeps only the attributes no field carries, so each value travels once", () => {
    const action = norm(
      {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.agent.id": "billing-agent",
        "agent.task.id": "task-1",
        "gen_ai.conversation.id": "conv-9",
        "gen_ai.tool.name": "invoices.read",
        "gen_ai.tool.call.id": "call-1",
        "agent.tool.effect": "read",
        "data.classification": "internal",
        "server.address": "api.example",
        "agent.credential.id": "lease-1",
        "agent.task.scope": '{"tools":["invoices.read"]}',
        "http.response.status_code": 200,
      },
      { "service.name": "billing", "spiffe.id": "spiffe://acme/agents/billing", "deployment.environment.name": "prod" },
    );
    expect(action.attributes).toEqual({
      // not used for the task id (agent.task.id was): still information
      "gen_ai.conversation.id": "conv-9",
      "http.response.status_code": 200,
      "service.name": "billing",
    });
    expect(action).toMatchObject({ operation: "execute_tool", environment: "prod", credentialId: "lease-1" });
    expect(action.agent).toEqual({ id: "billing-agent", spiffeId: "spiffe://acme/agents/billing" });
  });

  it("keeps what a field could not take: a deprecated name with another value, a broken scope", () => {
    const action = norm({
      "gen_ai.provider.name": "openai",
      "gen_ai.system": "az.ai.openai",
      "agent.task.scope": "{not json",
      "agent.tool.effect": "delete",
    });
    expect(action.provider).toBe("openai");
    expect(action.attributes).toEqual({ "gen_ai.system": "az.ai.openai", "agent.task.scope": "{not json", "agent.tool.effect": "delete" });
  });
});

describe("normaliseSpan: identity and timing", () => {
  it("builds a valid AgentAction with ids, times in ms, links and merged attributes", () => {
    const link = { traceId: "abcdef0123456789abcdef0123456789", spanId: "fedcba9876543210" };
    const action = norm(
      { "gen_ai.operation.name": "execute_tool", shared: "span wins", only: "span" },
      { shared: "resource", "service.name": "billing" },
      { parentSpanId: PARENT, links: [link] },
    );
    expect(AgentAction.parse(action)).toEqual(action);
    expect(action.id).toBe(`${TRACE}:${SPAN}`);
    expect(action.traceId).toBe(TRACE);
    expect(action.spanId).toBe(SPAN);
    expect(action.parentSpanId).toBe(PARENT);
    expect(action.name).toBe("execute_tool invoices.read");
    expect(action.operation).toBe("execute_tool");
    expect(action.startTimeMs).toBe(1_700_000_000_123.456);
    expect(action.endTimeMs).toBe(1_700_000_001_000);
    expect(action.links).toEqual([link]);
    expect(action.receivedAtMs).toBe(RECEIVED);
    // gen_ai.operation.name travels once, as `operation`
    expect(action.attributes).toEqual({
      shared: "span wins",
      only: "span",
      "service.name": "billing",
    });
  });

  it("leaves optional fields out when the span has nothing for them", () => {
    const action = norm();
    expect(action.parentSpanId).toBeUndefined();
    expect(action.operation).toBeUndefined();
    expect(action.agent).toEqual({});
    for (const key of [
      "parentSpanId",
      "parentTaskId",
      "operation",
      "environment",
      "intent",
      "declaredScope",
      "declaredScopeError",
      "tool",
      "effect",
      "dataClassification",
      "destination",
      "credentialId",
    ]) {
      expect(key in action, key).toBe(false);
    }
  });

  it.each([
    [0, "unset"],
    [1, "ok"],
    [2, "error"],
    [9, "unset"],
  ] as const)("maps status code %i to %s", (code, status) => {
    expect(norm({}, {}, { status: { code, message: "m" } }).status).toBe(status);
  });
});

describe("normaliseSpan: task id resolution", () => {
  const all = {
    span: { "agent.task.id": "span-task" },
    resource: { "agent.task.id": "resource-task" },
    baggage: { "baggage.agent.task.id": "baggage-task" },
    conversation: { "gen_ai.conversation.id": "conv-1" },
  };

  it("takes agent.task.id on the span first", () => {
    const a = norm({ ...all.span, ...all.baggage, ...all.conversation }, all.resource);
    expect([a.taskId, a.taskIdSource]).toEqual(["span-task", "attribute"]);
  });

  it("then agent.task.id on the resource", () => {
    const a = norm({ ...all.baggage, ...all.conversation }, all.resource);
    expect([a.taskId, a.taskIdSource]).toEqual(["resource-task", "attribute"]);
  });

  it("then baggage.agent.task.id", () => {
    const a = norm({ ...all.baggage, ...all.conversation });
    expect([a.taskId, a.taskIdSource]).toEqual(["baggage-task", "baggage"]);
  });

  it("then gen_ai.conversation.id", () => {
    const a = norm(all.conversation);
    expect([a.taskId, a.taskIdSource]).toEqual(["conv-1", "conversation"]);
  });

  it("then the trace id", () => {
    const a = norm({ unrelated: "x" });
    expect([a.taskId, a.taskIdSource]).toEqual([TRACE, "trace"]);
  });

  it("skips empty values and reads numbers as text", () => {
    expect(norm({ "agent.task.id": "", "baggage.agent.task.id": "b" })).toMatchObject({ taskId: "b", taskIdSource: "baggage" });
    expect(norm({ "agent.task.id": 42 })).toMatchObject({ taskId: "42", taskIdSource: "attribute" });
    expect(norm({ "agent.task.id": null, "gen_ai.conversation.id": "" })).toMatchObject({ taskId: TRACE, taskIdSource: "trace" });
  });

  it("reads the parent task id", () => {
    expect(norm({ "agent.task.parent_id": "task-parent" }).parentTaskId).toBe("task-parent");
  });

  it("a task id over 256 characters breaks the contract: NormaliseError naming the span", () => {
    expect(() => norm({ "agent.task.id": "t".repeat(257) })).toThrow(NormaliseError);
    expect(() => norm({ "agent.task.id": "t".repeat(257) })).toThrow(new RegExp(`^span ${TRACE}/${SPAN}: .*taskId`));
    expect(norm({ "agent.task.id": "t".repeat(256) }).taskId).toHaveLength(256);
  });
});

describe("normaliseSpan: agent, identity, environment", () => {
  it("reads agent id and name from the span, else the resource; span wins", () => {
    expect(norm({ "gen_ai.agent.id": "a1", "gen_ai.agent.name": "Billing" }).agent).toEqual({ id: "a1", name: "Billing" });
    expect(norm({}, { "gen_ai.agent.id": "r1", "gen_ai.agent.name": "R" }).agent).toEqual({ id: "r1", name: "R" });
    expect(norm({ "gen_ai.agent.id": "s1" }, { "gen_ai.agent.id": "r1" }).agent).toEqual({ id: "s1" });
  });

  it("reads spiffe.id from the resource first, else the span", () => {
    expect(norm({}, { "spiffe.id": "spiffe://acme.org/agents/billing" }).agent.spiffeId).toBe("spiffe://acme.org/agents/billing");
    expect(norm({ "spiffe.id": "spiffe://acme.org/span" }, { "spiffe.id": "spiffe://acme.org/resource" }).agent.spiffeId).toBe(
      "spiffe://acme.org/resource",
    );
    expect(norm({ "spiffe.id": "spiffe://acme.org/span" }).agent.spiffeId).toBe("spiffe://acme.org/span");
  });

  it("reads deployment.environment.name from the span over the resource", () => {
    expect(norm({ "deployment.environment.name": "staging" }, { "deployment.environment.name": "prod" }).environment).toBe("staging");
    expect(norm({}, { "deployment.environment.name": "prod" }).environment).toBe("prod");
  });

  it("falls back to the deprecated deployment.environment, after the current name anywhere", () => {
    expect(norm({ "deployment.environment": "dev" }).environment).toBe("dev");
    expect(norm({}, { "deployment.environment": "qa" }).environment).toBe("qa");
    expect(norm({ "deployment.environment": "dev" }, { "deployment.environment.name": "prod" }).environment).toBe("prod");
  });

  it("reads the task intent", () => {
    expect(norm({ "agent.task.intent": "pay invoice 42" }).intent).toBe("pay invoice 42");
  });
});

describe("normaliseSpan: tool calls", () => {
  it("reads tool name, call id and type", () => {
    const a = norm({ "gen_ai.tool.name": "invoices.read", "gen_ai.tool.call.id": "call_1", "gen_ai.tool.type": "function" });
    expect(a.tool).toEqual({ name: "invoices.read", callId: "call_1", type: "function" });
  });

  it("has no tool without a tool name, even with arguments", () => {
    expect(norm({ "gen_ai.tool.call.arguments": '{"a":1}' }).tool).toBeUndefined();
    expect(norm({ "gen_ai.tool.name": "" }).tool).toBeUndefined();
  });

  it("parses JSON arguments and results", () => {
    const a = norm({
      "gen_ai.tool.name": "pay",
      "gen_ai.tool.call.arguments": '  {"account":"DE89 3704","amount":12.5,"memo":null,"lines":[1,{"x":true}]}',
      "gen_ai.tool.call.result": '["ok", 1]',
    });
    expect(a.tool?.arguments).toEqual({ account: "DE89 3704", amount: 12.5, memo: null, lines: [1, { x: true }] });
    expect(a.tool?.result).toEqual(["ok", 1]);
  });

  it("leaves non-JSON text as text", () => {
    const a = norm({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": "{not json", "gen_ai.tool.call.result": "plain words" });
    expect(a.tool?.arguments).toBe("{not json");
    expect(a.tool?.result).toBe("plain words");
    // JSON scalars stay text: only objects and arrays are parsed
    expect(norm({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": "42" }).tool?.arguments).toBe("42");
  });

  it("keeps structured (non-string) arguments as they are", () => {
    const a = norm({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": { q: "x", n: [1, 2] }, "gen_ai.tool.call.result": 7 });
    expect(a.tool?.arguments).toEqual({ q: "x", n: [1, 2] });
    expect(a.tool?.result).toBe(7);
    expect("arguments" in (norm({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": null }).tool ?? {})).toBe(false);
  });

  it("parses JSON of exactly the cap", () => {
    const args = JSON.stringify({ pad: "p".repeat(MAX_TOOL_PAYLOAD_CHARS - 10) });
    expect(args).toHaveLength(MAX_TOOL_PAYLOAD_CHARS);
    expect(norm({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": args }).tool?.arguments).toEqual(JSON.parse(args));
  });

  it("cuts longer payloads at the cap and keeps them as text", () => {
    const args = JSON.stringify({ pad: "p".repeat(MAX_TOOL_PAYLOAD_CHARS) });
    const a = norm({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": args, "gen_ai.tool.call.result": "r".repeat(100_000) });
    expect(a.tool?.arguments).toBe(`${args.slice(0, MAX_TOOL_PAYLOAD_CHARS)}…[truncated]`);
    expect(a.tool?.result).toBe(`${"r".repeat(MAX_TOOL_PAYLOAD_CHARS)}…[truncated]`);
  });

  it("keeps hostile deeply nested JSON arguments as text, so the step is not lost", () => {
    const hostile = `${"[".repeat(6000)}${"]".repeat(6000)}`;
    const a = norm({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": hostile });
    expect(a.tool?.arguments).toBe(hostile);
    const atLimit = `${"[".repeat(MAX_TOOL_PAYLOAD_DEPTH)}1${"]".repeat(MAX_TOOL_PAYLOAD_DEPTH)}`;
    expect(Array.isArray(norm({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": atLimit }).tool?.arguments)).toBe(true);
    const overLimit = `[${atLimit}]`;
    expect(norm({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": overLimit }).tool?.arguments).toBe(overLimit);
  });
});

describe("normaliseSpan: effect, data, destination, credential", () => {
  it.each(["read", "write", "egress", "exec", "delegate"])("takes effect %s", (effect) => {
    expect(norm({ "agent.tool.effect": effect }).effect).toBe(effect);
  });

  it("ignores an invalid effect but keeps the raw attribute", () => {
    const a = norm({ "agent.tool.effect": "destroy" });
    expect(a.effect).toBeUndefined();
    expect(a.attributes["agent.tool.effect"]).toBe("destroy");
    expect(norm({ "agent.tool.effect": "READ" }).effect).toBeUndefined();
  });

  it.each(["public", "internal", "confidential", "restricted"])("takes data classification %s", (c) => {
    expect(norm({ "data.classification": c }).dataClassification).toBe(c);
  });

  it("ignores an invalid classification but keeps the raw attribute", () => {
    const a = norm({ "data.classification": "top-secret" });
    expect(a.dataClassification).toBeUndefined();
    expect(a.attributes["data.classification"]).toBe("top-secret");
    expect(norm({ "data.classification": 3 }).dataClassification).toBeUndefined();
  });

  it("reads the destination from server.address and url.full", () => {
    expect(norm({ "server.address": "api.stripe.com" }).destination).toEqual({ address: "api.stripe.com" });
    expect(norm({ "url.full": "https://evil.example/x?y=1" }).destination).toEqual({ url: "https://evil.example/x?y=1" });
    expect(norm({ "server.address": "a.example", "url.full": "https://a.example/" }).destination).toEqual({
      address: "a.example",
      url: "https://a.example/",
    });
  });

  it("reads the credential id", () => {
    expect(norm({ "agent.credential.id": "vault-lease-abc" }).credentialId).toBe("vault-lease-abc");
    expect("credentialId" in norm({ "agent.credential.id": "" })).toBe(false);
  });
});

describe("declared task scope", () => {
  it("a valid JSON scope becomes declaredScope", () => {
    const scope = { tools: ["invoices.read"], dataCeiling: "internal", environments: ["prod"], egress: ["api.stripe.com"] };
    const a = norm({ "agent.task.scope": JSON.stringify(scope) });
    expect(a.declaredScope).toEqual(scope);
    expect(a.declaredScopeError).toBeUndefined();
  });

  it("an empty object is a valid scope (no narrowing)", () => {
    expect(norm({ "agent.task.scope": "{}" }).declaredScope).toEqual({});
  });

  it("a scope sent as a structured value (kvlist) is read too", () => {
    expect(norm({ "agent.task.scope": { tools: ["a"] } }).declaredScope).toEqual({ tools: ["a"] });
  });

  it("invalid JSON gives declaredScopeError and the action is still produced", () => {
    const a = norm({ "agent.task.scope": "{tools: [", "gen_ai.tool.name": "t" });
    expect(a.declaredScope).toBeUndefined();
    expect(a.declaredScopeError).toMatch(/^agent\.task\.scope is not JSON: /);
    expect(a.tool?.name).toBe("t");
    expect(AgentAction.safeParse(a).success).toBe(true);
  });

  it.each([
    ["an unknown field", { tools: ["a"], everything: true }],
    ["a bad data ceiling", { dataCeiling: "secret" }],
    ["tools not a list", { tools: "a" }],
    ["an empty tool name", { tools: [""] }],
    ["not an object", ["a"]],
  ])("valid JSON with %s gives declaredScopeError", (_what, doc) => {
    const a = norm({ "agent.task.scope": JSON.stringify(doc) });
    expect(a.declaredScope).toBeUndefined();
    expect(a.declaredScopeError).toMatch(/^agent\.task\.scope is invalid: /);
    expect(a.declaredScopeError).not.toContain("\n");
  });

  it("parseDeclaredScope: absent is neither scope nor error", () => {
    expect(parseDeclaredScope(undefined)).toEqual({});
    expect(parseDeclaredScope(null)).toEqual({});
    expect(parseDeclaredScope('{"tools":["x"]}')).toEqual({ scope: { tools: ["x"] } });
  });
});

describe("normaliseSpan on spans decoded from the real OTel JS serializer", () => {
  it("produces the action an agent instrumented per the conventions should get", () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        "service.name": "billing",
        "spiffe.id": "spiffe://acme.org/agents/billing",
        "deployment.environment.name": "prod",
        "gen_ai.agent.id": "billing-agent",
      }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const s = provider.getTracer("agent").startSpan("execute_tool invoices.read", {
      kind: SpanKind.CLIENT,
      attributes: {
        "gen_ai.operation.name": "execute_tool",
        "agent.task.id": "task-42",
        "gen_ai.tool.name": "invoices.read",
        "gen_ai.tool.call.id": "call_9",
        "gen_ai.tool.call.arguments": JSON.stringify({ invoice: 42, fields: ["amount", "iban"] }),
        "agent.tool.effect": "read",
        "data.classification": "internal",
        "agent.credential.id": "vault-lease-abc",
        "server.address": "invoices.internal",
        "metric.ratio": Number.NaN,
      },
    });
    s.setStatus({ code: SpanStatusCode.OK });
    s.end();
    const bytes = ProtobufTraceSerializer.serializeRequest(exporter.getFinishedSpans());
    if (!bytes) throw new Error("no bytes");
    const decoded = decodeProtobuf(bytes);
    expect(decoded.rejected).toEqual([]);
    const [only] = decoded.spans;
    if (!only) throw new Error("no span");
    const a = normaliseSpan(only, RECEIVED);
    expect(a).toMatchObject({
      traceId: s.spanContext().traceId,
      spanId: s.spanContext().spanId,
      taskId: "task-42",
      taskIdSource: "attribute",
      operation: "execute_tool",
      agent: { id: "billing-agent", spiffeId: "spiffe://acme.org/agents/billing" },
      environment: "prod",
      tool: { name: "invoices.read", callId: "call_9", arguments: { invoice: 42, fields: ["amount", "iban"] } },
      effect: "read",
      dataClassification: "internal",
      destination: { address: "invoices.internal" },
      credentialId: "vault-lease-abc",
      status: "ok",
    });
    // a NaN attribute must not cost the step
    expect(a.attributes["metric.ratio"]).toBe("NaN");
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
  });
});

describe("normaliseSpan: provider, size caps and redaction", () => {
  const base = (attributes: Record<string, unknown>, resource: Record<string, unknown> = {}) =>
    ({
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      name: "execute_tool x",
      kind: 1,
      startTimeUnixNano: 1_700_000_000_000_000_000n,
      endTimeUnixNano: 1_700_000_000_100_000_000n,
      attributes,
      resource,
      scope: { name: "t" },
      links: [],
      status: { code: 0 },
    }) as Parameters<typeof normaliseSpan>[0];

  it("reads the provider from gen_ai.provider.name, else the deprecated gen_ai.system", () => {
    expect(normaliseSpan(base({ "gen_ai.provider.name": "openai", "gen_ai.system": "old" }), 0).provider).toBe("openai");
    expect(normaliseSpan(base({ "gen_ai.system": "anthropic" }), 0).provider).toBe("anthropic");
    expect(normaliseSpan(base({}), 0).provider).toBeUndefined();
  });

  it("cuts oversized string attributes, also inside arrays", () => {
    const big = "x".repeat(MAX_ATTRIBUTE_CHARS + 100);
    const a = normaliseSpan(base({ note: big, list: [big, "ok"] }), 0);
    expect(String(a.attributes.note)).toHaveLength(MAX_ATTRIBUTE_CHARS + "…[truncated]".length);
    expect((a.attributes.list as string[])[0]).toMatch(/…\[truncated\]$/);
    expect((a.attributes.list as string[])[1]).toBe("ok");
  });

  it("keeps tool input and output once, in tool, not again in attributes", () => {
    const a = normaliseSpan(
      base({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": '{"a":1}', "gen_ai.tool.call.result": "done" }),
      0,
    );
    expect(a.tool).toMatchObject({ arguments: { a: 1 }, result: "done" });
    expect(a.attributes["gen_ai.tool.call.arguments"]).toBeUndefined();
    expect(a.attributes["gen_ai.tool.call.result"]).toBeUndefined();
  });

  it("redacts attributes by key pattern and argument keys at any depth, before anything else reads them", () => {
    const redactor = compileRedaction({ attributes: ["gen_ai.input.*", "user.email"], argumentKeys: ["Password", "iban"] });
    const a = normaliseSpan(
      base({
        "gen_ai.input.messages": "my card is 4111",
        "user.email": "a@b.example",
        "gen_ai.tool.name": "payments.create",
        "gen_ai.tool.call.arguments": JSON.stringify({ amount: 5, account: { IBAN: "DE00123", owner: "x" }, items: [{ password: "p" }] }),
        "gen_ai.tool.call.result": JSON.stringify({ ok: true, iban: "DE00123" }),
      }),
      0,
      redactor,
    );
    expect(a.attributes["gen_ai.input.messages"]).toBe(REDACTED);
    expect(a.attributes["user.email"]).toBe(REDACTED);
    expect(a.tool?.arguments).toEqual({ amount: 5, account: { IBAN: REDACTED, owner: "x" }, items: [{ password: REDACTED }] });
    expect(a.tool?.result).toEqual({ ok: true, iban: REDACTED });
    expect(JSON.stringify(a)).not.toContain("DE00123");
    expect(JSON.stringify(a)).not.toContain("4111");
  });

  it("redacts argument keys of a payload on a span that names no tool (kept in attributes), and of one past the size cap (before it is cut)", () => {
    const redactor = compileRedaction({ attributes: [], argumentKeys: ["password"] });
    const noTool = normaliseSpan(
      base({
        "gen_ai.tool.call.arguments": JSON.stringify({ user: "u", password: "SECRET-1" }),
        "gen_ai.tool.call.result": { password: "SECRET-2" },
      }),
      0,
      redactor,
    );
    expect(noTool.tool).toBeUndefined();
    expect(JSON.parse(String(noTool.attributes["gen_ai.tool.call.arguments"]))).toEqual({ user: "u", password: REDACTED });
    expect(noTool.attributes["gen_ai.tool.call.result"]).toEqual({ password: REDACTED });
    const big = JSON.stringify({ password: "SECRET-3", filler: "x".repeat(MAX_TOOL_PAYLOAD_CHARS) });
    const oversize = normaliseSpan(base({ "gen_ai.tool.name": "t", "gen_ai.tool.call.arguments": big }), 0, redactor);
    expect(String(oversize.tool?.arguments)).toMatch(/…\[truncated\]$/);
    expect(JSON.stringify(noTool) + JSON.stringify(oversize)).not.toContain("SECRET-");
  });
});
