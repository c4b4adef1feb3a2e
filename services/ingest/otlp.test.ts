import { context, type Link, type Attributes as OtelAttributes, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  type IdGenerator,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { OTLP_TRACE_PROTO } from "../../schemas/otlp/trace-proto.js";
import {
  type DecodedTraces,
  decodeJson,
  decodeProtobuf,
  decodeProtobufReference,
  decodeTraces,
  detectEncoding,
  encodeExportResponse,
  OtlpDecodeError,
  type OtlpSpan,
} from "./otlp.js";

// ---- spans made by the real OpenTelemetry JS SDK ----------------------------------------

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const ROOT_SPAN_ID = "00f067aa0ba902b7";
const CHILD_SPAN_ID = "a1b2c3d4e5f60718";
const LINKED = { traceId: "abcdef0123456789abcdef0123456789", spanId: "fedcba9876543210" };

/** Hands out the given ids in order, so the test knows what the SDK put on the wire. */
class QueuedIds implements IdGenerator {
  constructor(
    private readonly traceIds: string[],
    private readonly spanIds: string[],
  ) {}
  generateTraceId(): string {
    const id = this.traceIds.shift();
    if (!id) throw new Error("test ran out of trace ids");
    return id;
  }
  generateSpanId(): string {
    const id = this.spanIds.shift();
    if (!id) throw new Error("test ran out of span ids");
    return id;
  }
}

const TOOL_ARGS = JSON.stringify({ query: "SELECT * FROM invoices", options: { limit: 10, tags: ["a", "b"], nested: { deep: true } } });

const CHILD_ATTRIBUTES: OtelAttributes = {
  "gen_ai.operation.name": "execute_tool",
  "gen_ai.tool.name": "sql.query",
  "gen_ai.tool.call.arguments": TOOL_ARGS,
  "attr.int": 42,
  "attr.negative": -7,
  "attr.zero": 0,
  "attr.big": 2 ** 60,
  "attr.double": 3.25,
  "attr.bool.true": true,
  "attr.bool.false": false,
  "attr.empty": "",
  "attr.strings": ["x", "y", "z"],
  "attr.ints": [1, 2, 3],
  "attr.doubles": [0.5, 1.5],
  "attr.bools": [true, false, true],
};

const RESOURCE_ATTRIBUTES = {
  "service.name": "billing-agent",
  "spiffe.id": "spiffe://acme.org/agents/billing",
  "deployment.environment.name": "prod",
  "host.cpu.count": 8,
  "resource.ratio": 0.75,
  "resource.flag": true,
};

/** A root span and a CLIENT child (with every attribute type, a link and an error status). */
function sdkSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(RESOURCE_ATTRIBUTES),
    idGenerator: new QueuedIds([TRACE_ID], [ROOT_SPAN_ID, CHILD_SPAN_ID]),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("driftwatch-test-scope", "9.8.7");
  const root = tracer.startSpan("invoke_agent billing", { kind: SpanKind.INTERNAL, startTime: [1_700_000_000, 123_456_789] });
  const link: Link = { context: { ...LINKED, traceFlags: 1 } };
  const child = tracer.startSpan(
    "execute_tool sql.query",
    { kind: SpanKind.CLIENT, attributes: CHILD_ATTRIBUTES, links: [link], startTime: [1_700_000_001, 1] },
    trace.setSpan(context.active(), root),
  );
  child.setStatus({ code: SpanStatusCode.ERROR, message: "permission denied" });
  child.end([1_700_000_002, 999_999_999]);
  root.setStatus({ code: SpanStatusCode.OK });
  root.end([1_700_000_003, 0]);
  const spans = exporter.getFinishedSpans();
  expect(spans).toHaveLength(2);
  return spans;
}

function protobufOf(spans: ReadableSpan[]): Uint8Array {
  const bytes = ProtobufTraceSerializer.serializeRequest(spans);
  if (!bytes) throw new Error("serializer returned nothing");
  return bytes;
}

function jsonOf(spans: ReadableSpan[]): Uint8Array {
  const bytes = JsonTraceSerializer.serializeRequest(spans);
  if (!bytes) throw new Error("serializer returned nothing");
  return bytes;
}

function byName(decoded: DecodedTraces, name: string): OtlpSpan {
  const span = decoded.spans.find((s) => s.name === name);
  if (!span) throw new Error(`no span named ${name} in ${decoded.spans.map((s) => s.name).join(", ")}`);
  return span;
}

/** What both encodings must yield for the SDK spans. */
function expectSdkSpans(decoded: DecodedTraces, bigInt: string | number) {
  expect(decoded.rejected).toEqual([]);
  expect(decoded.spans).toHaveLength(2);

  const root = byName(decoded, "invoke_agent billing");
  const child = byName(decoded, "execute_tool sql.query");

  expect(root.traceId).toBe(TRACE_ID);
  expect(root.spanId).toBe(ROOT_SPAN_ID);
  expect(root.parentSpanId).toBeUndefined();
  expect("parentSpanId" in root).toBe(false);
  expect(root.kind).toBe(1); // SPAN_KIND_INTERNAL (API kind + 1)
  expect(root.status).toEqual({ code: 1 });
  expect(root.startTimeUnixNano).toBe(1_700_000_000_123_456_789n);
  expect(root.endTimeUnixNano).toBe(1_700_000_003_000_000_000n);
  expect(root.attributes).toEqual({});
  expect(root.links).toEqual([]);

  expect(child.traceId).toBe(TRACE_ID);
  expect(child.spanId).toBe(CHILD_SPAN_ID);
  expect(child.parentSpanId).toBe(ROOT_SPAN_ID);
  for (const id of [child.traceId, child.spanId, child.parentSpanId ?? ""]) expect(id).toMatch(/^[0-9a-f]+$/);
  expect(child.kind).toBe(3); // SPAN_KIND_CLIENT
  expect(typeof child.startTimeUnixNano).toBe("bigint");
  expect(child.startTimeUnixNano).toBe(1_700_000_001_000_000_001n);
  expect(child.endTimeUnixNano).toBe(1_700_000_002_999_999_999n);
  expect(child.status).toEqual({ code: 2, message: "permission denied" });
  expect(child.links).toEqual([LINKED]);
  expect(child.scope).toEqual({ name: "driftwatch-test-scope", version: "9.8.7" });

  expect(child.attributes).toEqual({
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "sql.query",
    "gen_ai.tool.call.arguments": TOOL_ARGS, // still a string here: normalise parses it
    "attr.int": 42,
    "attr.negative": -7,
    "attr.zero": 0,
    "attr.big": bigInt,
    "attr.double": 3.25,
    "attr.bool.true": true,
    "attr.bool.false": false,
    "attr.empty": "",
    "attr.strings": ["x", "y", "z"],
    "attr.ints": [1, 2, 3],
    "attr.doubles": [0.5, 1.5],
    "attr.bools": [true, false, true],
  });
  expect(JSON.parse(child.attributes["gen_ai.tool.call.arguments"] as string)).toEqual(JSON.parse(TOOL_ARGS));

  for (const span of [root, child]) expect(span.resource).toEqual(RESOURCE_ATTRIBUTES);
}

describe("decodeProtobuf with bytes from the OpenTelemetry JS ProtobufTraceSerializer", () => {
  it("decodes ids, times, kinds, status, links, scope, resource and attributes of every type", () => {
    // 2^60 does not fit a double exactly as a JS number would print it; int64 keeps its exact decimal
    expectSdkSpans(decodeProtobuf(protobufOf(sdkSpans())), "1152921504606846976");
  });

  it("is what decodeTraces picks for the protobuf encoding and detectEncoding infers from the bytes", () => {
    const bytes = protobufOf(sdkSpans());
    expect(detectEncoding(bytes)).toBe("protobuf");
    expect(decodeTraces(bytes, "protobuf")).toEqual(decodeProtobuf(bytes));
  });

  it("keeps non-finite doubles as their names, like the JSON encoding does", () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const span = provider
      .getTracer("t")
      .startSpan("s", { attributes: { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, ninf: -Infinity } });
    span.end();
    const decoded = decodeProtobuf(protobufOf(exporter.getFinishedSpans()));
    expect(decoded.spans[0]?.attributes).toEqual({ nan: "NaN", inf: "Infinity", ninf: "-Infinity" });
  });
});

describe("decodeJson with bytes from the OpenTelemetry JS JsonTraceSerializer", () => {
  it("decodes the same spans as the protobuf encoding", () => {
    const bytes = jsonOf(sdkSpans());
    // the JSON serializer writes int attributes as JSON numbers; past 2^53 the exact value of the
    // double is written out, as protobuf's int64 gives it
    expectSdkSpans(decodeJson(bytes), "1152921504606846976");
  });

  it("agrees with the protobuf decoding span for span", () => {
    const spans = sdkSpans();
    expect(decodeJson(jsonOf(spans))).toEqual(decodeProtobuf(protobufOf(spans)));
  });

  it("is detected as JSON from its first byte and from the content type", () => {
    const bytes = jsonOf(sdkSpans());
    expect(detectEncoding(bytes)).toBe("json");
    expect(detectEncoding(bytes, "application/json")).toBe("json");
    expect(decodeTraces(bytes, "json")).toEqual(decodeJson(bytes));
  });
});

// ---- hand-written OTLP/JSON, per the spec ------------------------------------------------

const T1 = "5b8efff798038103d269b633813fc60c";
const S1 = "eee19b7ec3c1b174";
const S2 = "eee19b7ec3c1b173";

const pbRequestType = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: true }).root.lookupType("otlp.ExportTraceServiceRequest");

/** A protobuf request written with protobufjs from the OTLP description (for cases the SDK will not produce). */
function pbRequest(spans: Record<string, unknown>[]): Uint8Array {
  return pbRequestType.encode(pbRequestType.fromObject({ resource_spans: [{ scope_spans: [{ spans }] }] })).finish();
}

function jsonRequest(spans: unknown[], resourceAttributes: unknown[] = [], scope: unknown = { name: "my.library", version: "1.0.0" }) {
  return Buffer.from(JSON.stringify({ resourceSpans: [{ resource: { attributes: resourceAttributes }, scopeSpans: [{ scope, spans }] }] }));
}

describe("decodeJson with hand-written OTLP/JSON", () => {
  it("reads hex ids (any case), int64 as strings or numbers, enum names and nested values", () => {
    const decoded = decodeJson(
      jsonRequest(
        [
          {
            traceId: T1.toUpperCase(),
            spanId: S1.toUpperCase(),
            parentSpanId: S2,
            name: "I'm a server span",
            kind: "SPAN_KIND_SERVER",
            startTimeUnixNano: "1544712660000000000",
            endTimeUnixNano: "1544712661000000000",
            attributes: [
              { key: "my.span.attr", value: { stringValue: "some value" } },
              { key: "int.string", value: { intValue: "-12" } },
              { key: "int.max", value: { intValue: "9223372036854775807" } },
              { key: "int.min", value: { intValue: "-9223372036854775808" } },
              { key: "int.number", value: { intValue: 5 } },
              { key: "double", value: { doubleValue: 2.5 } },
              { key: "double.nan", value: { doubleValue: "NaN" } },
              { key: "bool", value: { boolValue: false } },
              { key: "bytes", value: { bytesValue: "AQID" } },
              { key: "empty", value: {} },
              {
                key: "nested",
                value: {
                  kvlistValue: {
                    values: [
                      {
                        key: "list",
                        value: { arrayValue: { values: [{ intValue: "1" }, { stringValue: "two" }, { kvlistValue: { values: [] } }] } },
                      },
                      { key: "inner", value: { kvlistValue: { values: [{ key: "ok", value: { boolValue: true } }] } } },
                    ],
                  },
                },
              },
            ],
            links: [{ traceId: "ABCDEF0123456789ABCDEF0123456789", spanId: "0123456789ABCDEF" }],
            status: { code: "STATUS_CODE_ERROR", message: "boom" },
          },
        ],
        [
          { key: "service.name", value: { stringValue: "my.service" } },
          { key: "agent.task.id", value: { stringValue: "task-7" } },
        ],
      ),
    );
    expect(decoded.rejected).toEqual([]);
    expect(decoded.spans).toEqual([
      {
        traceId: T1,
        spanId: S1,
        parentSpanId: S2,
        name: "I'm a server span",
        kind: 2,
        startTimeUnixNano: 1_544_712_660_000_000_000n,
        endTimeUnixNano: 1_544_712_661_000_000_000n,
        attributes: {
          "my.span.attr": "some value",
          "int.string": -12,
          "int.max": "9223372036854775807",
          "int.min": "-9223372036854775808",
          "int.number": 5,
          double: 2.5,
          "double.nan": "NaN",
          bool: false,
          bytes: "AQID",
          empty: null,
          nested: { list: [1, "two", {}], inner: { ok: true } },
        },
        resource: { "service.name": "my.service", "agent.task.id": "task-7" },
        scope: { name: "my.library", version: "1.0.0" },
        links: [{ traceId: "abcdef0123456789abcdef0123456789", spanId: "0123456789abcdef" }],
        status: { code: 2, message: "boom" },
      },
    ]);
  });

  it("takes kind and status as integers too; unknown enum names fall back to 0", () => {
    const decoded = decodeJson(
      jsonRequest([
        { traceId: T1, spanId: S1, name: "a", kind: 4, status: { code: 1 } },
        { traceId: T1, spanId: S2, name: "b", kind: "SPAN_KIND_NONSENSE", status: { code: "STATUS_CODE_NONSENSE" } },
        { traceId: T1, spanId: "1111111111111111", name: "c", kind: "SPAN_KIND_CONSUMER", status: { code: "STATUS_CODE_OK" } },
      ]),
    );
    expect(decoded.rejected).toEqual([]);
    expect(decoded.spans.map((s) => [s.name, s.kind, s.status.code])).toEqual([
      ["a", 4, 1],
      ["b", 0, 0],
      ["c", 5, 1],
    ]);
  });

  it("defaults absent fields: no parent, zero times, empty scope, unset status", () => {
    const doc = { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: T1, spanId: S1 }] }] }] };
    const decoded = decodeJson(Buffer.from(JSON.stringify(doc)));
    expect(decoded.spans).toEqual([
      {
        traceId: T1,
        spanId: S1,
        name: "",
        kind: 0,
        startTimeUnixNano: 0n,
        endTimeUnixNano: 0n,
        attributes: {},
        resource: {},
        scope: { name: "" },
        links: [],
        status: { code: 0 },
      },
    ]);
  });

  it("accepts an empty request", () => {
    expect(decodeJson(Buffer.from("{}"))).toEqual({ spans: [], rejected: [] });
    expect(decodeJson(Buffer.from('{"resourceSpans":[]}'))).toEqual({ spans: [], rejected: [] });
  });

  it("drops links with invalid ids but keeps the span", () => {
    const decoded = decodeJson(
      jsonRequest([
        {
          traceId: T1,
          spanId: S1,
          links: [{ traceId: T1, spanId: "short" }, { spanId: S2 }, { traceId: T1, spanId: S2 }],
        },
      ]),
    );
    expect(decoded.spans[0]?.links).toEqual([{ traceId: T1, spanId: S2 }]);
  });
});

describe("malformed input", () => {
  it("throws OtlpDecodeError for truncated protobuf", () => {
    const bytes = protobufOf(sdkSpans());
    for (const cut of [bytes.length - 1, Math.floor(bytes.length / 2), 3]) {
      expect(() => decodeProtobuf(bytes.subarray(0, cut)), `cut at ${cut}`).toThrow(OtlpDecodeError);
    }
    expect(() => decodeProtobuf(bytes.subarray(0, 3))).toThrow(/malformed OTLP protobuf/);
  });

  it("throws OtlpDecodeError for garbage bytes", () => {
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(() => decodeProtobuf(garbage)).toThrow(OtlpDecodeError);
    expect(() => decodeProtobuf(Buffer.from("this is not protobuf at all, just text"))).toThrow(OtlpDecodeError);
  });

  it("throws OtlpDecodeError for JSON that does not parse or is not an export request", () => {
    expect(() => decodeJson(Buffer.from('{"resourceSpans": ['))).toThrow(OtlpDecodeError);
    expect(() => decodeJson(Buffer.from("not json"))).toThrow(/malformed OTLP JSON/);
    expect(() => decodeJson(Buffer.from('{"resourceSpans": "nope"}'))).toThrow(/malformed OTLP JSON: resourceSpans/);
    expect(() => decodeJson(Buffer.from("[1,2,3]"))).toThrow(OtlpDecodeError);
    expect(() => decodeJson(jsonRequest([], [{ key: "k", value: { intValue: "12abc" } }]))).toThrow(/intValue/);
  });

  it("names the error class", () => {
    const err = (() => {
      try {
        decodeProtobuf(Buffer.from([0x0a, 0xff]));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(OtlpDecodeError);
    expect((err as Error).name).toBe("OtlpDecodeError");
  });
});

// ---- bad spans are rejected alone ------------------------------------------------------

describe("a bad span does not sink the batch", () => {
  it("protobuf from the SDK: a zero trace id is rejected, the good span decoded", () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      idGenerator: new QueuedIds(["0".repeat(32), TRACE_ID], [S1, S2]),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracer = provider.getTracer("t");
    tracer.startSpan("bad").end();
    tracer.startSpan("good").end();
    const decoded = decodeProtobuf(protobufOf(exporter.getFinishedSpans()));
    expect(decoded.spans.map((s) => s.name)).toEqual(["good"]);
    expect(decoded.rejected).toHaveLength(1);
    expect(decoded.rejected[0]?.index).toBe(0);
    expect(decoded.rejected[0]?.reason).toMatch(/^span 0: trace id must be 16 non-zero bytes/);
  });

  it.each([
    ["a trace id of the wrong length", { trace_id: hex("0102030405060708"), span_id: hex(S1) }, /trace id must be 16 non-zero bytes/],
    ["an all-zero trace id", { trace_id: Buffer.alloc(16), span_id: hex(S1) }, /trace id must be 16 non-zero bytes/],
    ["a missing trace id", { span_id: hex(S1) }, /trace id must be 16 non-zero bytes \(got ""\)/],
    ["a span id of the wrong length", { trace_id: hex(T1), span_id: hex("0102") }, /span id must be 8 non-zero bytes/],
    ["an all-zero span id", { trace_id: hex(T1), span_id: Buffer.alloc(8) }, /span id must be 8 non-zero bytes/],
    ["a parent span id of the wrong length", { trace_id: hex(T1), span_id: hex(S1), parent_span_id: hex("01") }, /parent span id/],
  ])("protobuf: %s is rejected with its reason, the good span decoded", (_what, bad, reason) => {
    const decoded = decodeProtobuf(
      pbRequest([
        { name: "good", trace_id: hex(T1), span_id: hex(S2) },
        { name: "bad", ...bad },
      ]),
    );
    expect(decoded.spans.map((s) => s.name)).toEqual(["good"]);
    expect(decoded.rejected).toEqual([{ index: 1, reason: expect.stringMatching(reason) }]);
    expect(decoded.rejected[0]?.reason).toMatch(/^span 1: /);
  });

  it.each([
    ["a trace id of the wrong length", { traceId: "abc", spanId: S1 }, /trace id must be 16 non-zero bytes \(got "abc"\)/],
    ["an all-zero trace id", { traceId: "0".repeat(32), spanId: S1 }, /trace id must be 16 non-zero bytes/],
    ["a non-hex trace id", { traceId: "z".repeat(32), spanId: S1 }, /trace id/],
    ["a base64 trace id (protobuf JSON mapping, not OTLP)", { traceId: "W47/95gDgQPSabYzgT/GDA==", spanId: S1 }, /trace id/],
    ["an all-zero span id", { traceId: T1, spanId: "0".repeat(16) }, /span id must be 8 non-zero bytes/],
    ["a span id of the wrong type", { traceId: T1, spanId: 12345 }, /spanId/],
    ["a timestamp that is not an integer", { traceId: T1, spanId: S1, startTimeUnixNano: "12.5" }, /startTimeUnixNano/],
  ])("JSON: %s is rejected with its reason, the good span decoded", (_what, bad, reason) => {
    const decoded = decodeJson(
      jsonRequest([
        { name: "bad", ...bad },
        { name: "good", traceId: T1, spanId: S2 },
      ]),
    );
    expect(decoded.spans.map((s) => s.name)).toEqual(["good"]);
    expect(decoded.rejected).toEqual([{ index: 0, reason: expect.stringMatching(reason) }]);
    expect(decoded.rejected[0]?.reason).toMatch(/^span 0: /);
  });

  it("numbers spans across resource and scope groups", () => {
    const doc = {
      resourceSpans: [
        { scopeSpans: [{ spans: [{ traceId: T1, spanId: S1 }] }, { spans: [{ traceId: T1, spanId: S2 }] }] },
        { scopeSpans: [{ spans: [{ traceId: "00", spanId: S1 }] }] },
      ],
    };
    const decoded = decodeJson(Buffer.from(JSON.stringify(doc)));
    expect(decoded.spans).toHaveLength(2);
    expect(decoded.rejected).toEqual([{ index: 2, reason: expect.stringMatching(/^span 2: trace id/) }]);
  });
});

// ---- hostile nesting ------------------------------------------------------------------

/** Depth of nested arrays, and what sits at the bottom. */
function arrayDepth(v: unknown): { depth: number; bottom: unknown } {
  let depth = 0;
  let cur = v;
  while (Array.isArray(cur)) {
    depth++;
    cur = cur[0];
  }
  return { depth, bottom: cur };
}

describe("nesting", () => {
  const nestedJson = (levels: number): unknown => {
    let v: unknown = { stringValue: "leaf" };
    for (let i = 0; i < levels; i++) v = { arrayValue: { values: [v] } };
    return v;
  };

  it("keeps 8 levels and cuts the rest (JSON)", () => {
    const decoded = decodeJson(jsonRequest([{ traceId: T1, spanId: S1, attributes: [{ key: "deep", value: nestedJson(20) }] }]));
    expect(arrayDepth(decoded.spans[0]?.attributes.deep)).toEqual({ depth: 8, bottom: "[nested too deep]" });
  });

  it("keeps nesting of 8 levels intact (JSON)", () => {
    const decoded = decodeJson(jsonRequest([{ traceId: T1, spanId: S1, attributes: [{ key: "deep", value: nestedJson(8) }] }]));
    expect(arrayDepth(decoded.spans[0]?.attributes.deep)).toEqual({ depth: 8, bottom: "leaf" });
  });

  it("cuts kvlists as well as arrays (protobuf)", () => {
    let value: Record<string, unknown> = { string_value: "leaf" };
    for (let i = 0; i < 12; i++) value = { kvlist_value: { values: [{ key: "level", value }] } };
    const bytes = pbRequest([{ trace_id: hex(T1), span_id: hex(S1), attributes: [{ key: "deep", value }] }]);
    const decoded = decodeProtobuf(bytes);
    let cur: unknown = decoded.spans[0]?.attributes.deep;
    let depth = 0;
    while (cur && typeof cur === "object" && !Array.isArray(cur)) {
      cur = (cur as Record<string, unknown>).level;
      depth++;
    }
    expect(depth).toBe(8);
    expect(cur).toBe("[nested too deep]");
  });

  it("hostile JSON nesting (thousands of levels) is bad input, not a stack overflow", () => {
    // in the resource: the whole request is malformed
    // (written as text: JSON.stringify itself would overflow on such a value)
    const deep = `${'{"arrayValue":{"values":['.repeat(5000)}{"stringValue":"x"}${"]}}".repeat(5000)}`;
    const resourceDeep = `{"resourceSpans":[{"resource":{"attributes":[{"key":"deep","value":${deep}}]},"scopeSpans":[]}]}`;
    expect(() => decodeJson(Buffer.from(resourceDeep))).toThrow(/malformed OTLP JSON: values nested too deeply/);
    // in one span: that span is rejected, the others go through
    const spanDeep = `{"traceId":"${T1}","spanId":"${S1}","attributes":[{"key":"deep","value":${deep}}]}`;
    const good = JSON.stringify({ traceId: T1, spanId: S2, name: "ok" });
    const decoded = decodeJson(Buffer.from(`{"resourceSpans":[{"scopeSpans":[{"spans":[${spanDeep},${good}]}]}]}`));
    expect(decoded.spans.map((s) => s.name)).toEqual(["ok"]);
    expect(decoded.rejected).toEqual([{ index: 0, reason: "span 0: attribute values nested too deeply" }]);
  });

  it("hostile protobuf nesting is cut, not a stack overflow", () => {
    const varint = (n: number): number[] => {
      const out: number[] = [];
      let rest = n;
      while (rest > 127) {
        out.push((rest & 127) | 128);
        rest = Math.floor(rest / 128);
      }
      out.push(rest);
      return out;
    };
    const field = (no: number, payload: Buffer) => Buffer.concat([Buffer.from([(no << 3) | 2, ...varint(payload.length)]), payload]);
    let v = field(1, Buffer.from("x")); // AnyValue.string_value
    for (let i = 0; i < 3000; i++) v = field(5, field(1, v)); // AnyValue.array_value.values
    const span = Buffer.concat([field(1, hex(T1)), field(2, hex(S1)), field(9, Buffer.concat([field(1, Buffer.from("k")), field(2, v)]))]);
    const bytes = field(1, field(2, field(2, span)));
    // the wire decoder keeps 8 levels and skips the rest of the value unread (see otlp-wire.ts)
    const decoded = decodeProtobuf(bytes);
    expect(decoded.rejected).toEqual([]);
    expect(arrayDepth(decoded.spans[0]?.attributes.k)).toEqual({ depth: 8, bottom: "[nested too deep]" });
    // the reference (protobufjs) parses all of it and stops at its recursion limit: the request is bad input
    expect(() => decodeProtobufReference(bytes)).toThrow(OtlpDecodeError);
  });
});

function hex(s: string): Buffer {
  return Buffer.from(s, "hex");
}

// ---- detectEncoding ---------------------------------------------------------------------

describe("detectEncoding", () => {
  it("goes by the content type first", () => {
    expect(detectEncoding(Buffer.from("{}"), "application/x-protobuf")).toBe("protobuf");
    expect(detectEncoding(Buffer.from("{}"), "application/protobuf")).toBe("protobuf");
    expect(detectEncoding(Buffer.from([0x0a, 0x00]), "application/json")).toBe("json");
    expect(detectEncoding(Buffer.from([0x0a, 0x00]), "Application/JSON; charset=utf-8")).toBe("json");
  });

  it("else sniffs the first non-blank byte", () => {
    expect(detectEncoding(Buffer.from('{"resourceSpans":[]}'))).toBe("json");
    expect(detectEncoding(Buffer.from(' \t\r\n {"resourceSpans":[]}'))).toBe("json");
    expect(detectEncoding(Buffer.from('\n{"resourceSpans":[]}'))).toBe("json");
    expect(detectEncoding(Buffer.from([0x0a, 0x7b, 0x0a, 0x00]))).toBe("protobuf");
    expect(detectEncoding(Buffer.from("[]"))).toBe("protobuf");
    expect(detectEncoding(Buffer.alloc(0))).toBe("protobuf");
    expect(detectEncoding(Buffer.from("   "))).toBe("protobuf");
    expect(detectEncoding(Buffer.from("{}"), "")).toBe("json");
    expect(detectEncoding(Buffer.from("{}"), "text/plain")).toBe("json");
  });
});

describe("detectEncoding on real protobuf that starts like blank-then-JSON", () => {
  it("a request whose first ResourceSpans is 123 bytes (0x0a 0x7b ...) is still protobuf", () => {
    // 0x0a is field 1 of the request and also a newline; 123 is "{"
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({}),
      idGenerator: new QueuedIds([TRACE_ID], [S1]),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    provider.getTracer("t").startSpan("x".repeat(44)).end();
    const bytes = protobufOf(exporter.getFinishedSpans());
    expect([bytes[0], bytes[1]]).toEqual([0x0a, 0x7b]);
    expect(detectEncoding(bytes)).toBe("protobuf");
    expect(decodeTraces(bytes, detectEncoding(bytes)).spans.map((s) => s.name)).toEqual(["x".repeat(44)]);
  });
});

// ---- encodeExportResponse ----------------------------------------------------------------

describe("encodeExportResponse", () => {
  it("protobuf: full success is an empty ExportTraceServiceResponse", () => {
    const bytes = encodeExportResponse("protobuf", 0, "");
    expect(bytes.length).toBe(0);
    expect(ProtobufTraceSerializer.deserializeResponse(bytes)).toEqual({});
  });

  it("protobuf: partial success decodes back with rejected_spans and error_message", () => {
    const bytes = encodeExportResponse("protobuf", 3, "span 0: trace id must be 16 non-zero bytes");
    expect(ProtobufTraceSerializer.deserializeResponse(bytes)).toEqual({
      partialSuccess: { rejectedSpans: 3, errorMessage: "span 0: trace id must be 16 non-zero bytes" },
    });
    // and with the OTLP description itself
    const type = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: true }).root.lookupType("otlp.ExportTraceServiceResponse");
    const obj = type.toObject(type.decode(bytes), { longs: String });
    expect(obj).toEqual({ partial_success: { rejected_spans: "3", error_message: "span 0: trace id must be 16 non-zero bytes" } });
  });

  it("JSON: full success is {}", () => {
    const bytes = encodeExportResponse("json", 0, "ignored");
    expect(JSON.parse(bytes.toString("utf8"))).toEqual({});
    expect(JsonTraceSerializer.deserializeResponse(bytes)).toEqual({});
  });

  it("JSON: partial success uses lowerCamelCase with rejectedSpans as an int64 string", () => {
    const bytes = encodeExportResponse("json", 2, "two bad spans");
    expect(JSON.parse(bytes.toString("utf8"))).toEqual({ partialSuccess: { rejectedSpans: "2", errorMessage: "two bad spans" } });
  });
});

describe("attribute keys that would reach an object's prototype", () => {
  it("drops a __proto__ attribute key in JSON and protobuf, so it cannot supply inherited values", () => {
    const spoof = {
      key: "__proto__",
      value: { kvlistValue: { values: [{ key: "agent.task.id", value: { stringValue: "someone-elses-task" } }] } },
    };
    const json = Buffer.from(
      JSON.stringify({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  {
                    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
                    spanId: "00f067aa0ba902b7",
                    name: "x",
                    attributes: [spoof, { key: "ok", value: { stringValue: "1" } }],
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    const fromJson = decodeJson(json).spans[0];
    expect(Object.getPrototypeOf(fromJson?.attributes)).toBe(Object.prototype);
    expect(fromJson?.attributes["agent.task.id"]).toBeUndefined();
    expect(fromJson?.attributes.ok).toBe("1");

    const bytes = pbRequest([
      {
        trace_id: hex(T1),
        span_id: hex(S1),
        attributes: [
          {
            key: "__proto__",
            value: { kvlist_value: { values: [{ key: "agent.task.id", value: { string_value: "someone-elses-task" } }] } },
          },
          { key: "ok", value: { string_value: "1" } },
        ],
      },
    ]);
    for (const decoded of [decodeProtobuf(bytes), decodeProtobufReference(bytes)]) {
      const attrs = decoded.spans[0]?.attributes;
      expect(Object.getPrototypeOf(attrs)).toBe(Object.prototype);
      expect(attrs?.["agent.task.id"]).toBeUndefined();
      expect(attrs?.ok).toBe("1");
    }
  });
});

describe("decodeJson's errors", () => {
  it("never quote the input (V8 shows the text around a JSON syntax error; it may hold a secret)", () => {
    expect(() => decodeJson(Buffer.from('{"resourceSpans":[{"password": hunter2-SECRET-value}]}'))).toThrow(
      /^malformed OTLP JSON: Unexpected token 'h' \(the input is not quoted\)$/,
    );
    expect(() => decodeJson(Buffer.from('{"x": SECRET-token-value}'))).toThrow(/^malformed OTLP JSON: (?!.*SECRET)/);
  });
});
