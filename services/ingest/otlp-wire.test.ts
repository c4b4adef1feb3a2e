import { context, type Link, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { TraceState } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import fc from "fast-check";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { OTLP_TRACE_PROTO } from "../../schemas/otlp/trace-proto.js";
import { type DecodedTraces, decodeProtobuf, decodeProtobufReference, OtlpDecodeError } from "./otlp.js";
import { MAX_DEPTH, NESTED_TOO_DEEP } from "./otlp-span.js";
import { decodeProtobufWire } from "./otlp-wire.js";

/**
 * Differential tests: the wire decoder (otlp-wire.ts) against the reference decoder
 * (protobufjs reflection decode + conversion, `decodeProtobufReference`). On every input
 * both give deep-equal spans and rejections (same key order too), or both throw
 * OtlpDecodeError. Inputs: real OTel SDK exports, requests built field by field (merges,
 * oneof members, unknown fields, odd orders, invalid UTF-8), and thousands of mutations.
 *
 * The one documented exception (see otlp-wire.ts): the bytes of an array or kvlist value
 * nested MAX_DEPTH levels deep. Both decoders cut such a value to "[nested too deep]",
 * but the wire decoder skips its bytes unread while the reference parses them first, so
 * the reference alone rejects the request when they are malformed (or nest past
 * protobufjs's recursion limit). The safer side: bytes that are thrown away cannot change
 * the spans, and cannot make a batch of good spans undeliverable or recurse deeply.
 *
 * Precisely: the wire decoder always behaves as the reference does when run with a
 * description of the same wire format in which those deep values are opaque `bytes`
 * (`RequestWithCut` below); and it behaves as the plain reference unless the plain
 * reference throws while that one does not.
 */

type Outcome = { ok: true; value: DecodedTraces } | { ok: false; error: unknown };

function outcome(decode: (b: Uint8Array) => DecodedTraces, bytes: Uint8Array): Outcome {
  try {
    return { ok: true, value: decode(bytes) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** OTLP_TRACE_PROTO with the AnyValue family unrolled per nesting level; at MAX_DEPTH, arrays and maps are opaque bytes. */
function protoWithCut(): string {
  const start = OTLP_TRACE_PROTO.indexOf("message AnyValue {");
  const end = OTLP_TRACE_PROTO.indexOf("message InstrumentationScope {");
  const rest = `${OTLP_TRACE_PROTO.slice(0, start)}${OTLP_TRACE_PROTO.slice(end)}`;
  // Resource, InstrumentationScope, Span, Span.Event and Span.Link hold the attributes
  expect(rest.match(/repeated KeyValue attributes/g)).toHaveLength(5);
  const levels: string[] = [];
  for (let d = 0; d <= MAX_DEPTH; d++) {
    const deep = d === MAX_DEPTH;
    levels.push(`
message AnyValue${d} {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ${deep ? "bytes" : `ArrayValue${d}`} array_value = 5;
    ${deep ? "bytes" : `KeyValueList${d}`} kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message KeyValue${d} { string key = 1; AnyValue${d} value = 2; }`);
    if (!deep)
      levels.push(`message ArrayValue${d} { repeated AnyValue${d + 1} values = 1; }
message KeyValueList${d} { repeated KeyValue${d + 1} values = 1; }`);
  }
  return `${rest.replaceAll("repeated KeyValue attributes", "repeated KeyValue0 attributes")}\n${levels.join("\n")}`;
}
const RequestWithCut = protobuf.parse(protoWithCut(), { keepCase: true }).root.lookupType("otlp.ExportTraceServiceRequest");
const decodeReferenceWithCut = (bytes: Uint8Array) => decodeProtobufReference(bytes, RequestWithCut);

/** The decoded value as text that keeps key order, bigints, -0 and undefined visible. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    typeof x === "bigint" ? `${x}n` : Object.is(x, -0) ? "-0" : x === undefined ? "(undefined)" : (x as unknown),
  );
}

function expectEquivalent(wire: Outcome, other: Outcome, otherName: string): void {
  if (!other.ok) {
    expect(other.error).toBeInstanceOf(OtlpDecodeError);
    if (wire.ok) throw new Error(`${otherName} throws (${(other.error as Error).message}) but the wire decoder does not`);
    expect(wire.error).toBeInstanceOf(OtlpDecodeError);
    expect((wire.error as Error).message).toMatch(/^malformed OTLP protobuf: /);
    return;
  }
  if (!wire.ok) throw new Error(`the wire decoder throws (${(wire.error as Error).message}) but ${otherName} does not`);
  expect(wire.value).toStrictEqual(other.value);
  expect(canonical(wire.value)).toBe(canonical(other.value));
}

/**
 * Compares the wire decoder with the reference on `bytes`: "same" outcome, or the
 * documented "exception" (the reference throws only because of bytes below the cut).
 */
function compare(bytes: Uint8Array): { wire: Outcome; verdict: "same" | "exception" } {
  const wire = outcome(decodeProtobufWire, bytes);
  const withCut = outcome(decodeReferenceWithCut, bytes);
  expectEquivalent(wire, withCut, "the reference with opaque deep values");
  const ref = outcome(decodeProtobufReference, bytes);
  if (!ref.ok && withCut.ok) {
    expect(ref.error).toBeInstanceOf(OtlpDecodeError);
    return { wire, verdict: "exception" };
  }
  expectEquivalent(wire, ref, "the reference");
  return { wire, verdict: "same" };
}

/** Asserts that both decoders agree on `bytes` (no exception); returns the common outcome. */
function expectSameOutcome(bytes: Uint8Array): Outcome {
  const { wire, verdict } = compare(bytes);
  expect(verdict).toBe("same");
  return wire;
}

function decodedOk(bytes: Uint8Array): DecodedTraces {
  const o = expectSameOutcome(bytes);
  if (!o.ok) throw new Error(`expected a decodable request: ${(o.error as Error).message}`);
  return o.value;
}

function expectBothThrow(bytes: Uint8Array): void {
  expect(expectSameOutcome(bytes).ok).toBe(false);
}

// ---- real OTel SDK exports ----------------------------------------------------------------

const T1 = "4bf92f3577b34da6a3ce929d0e0e4736";
const T2 = "abcdef0123456789abcdef0123456789";
const S1 = "00f067aa0ba902b7";
const S2 = "a1b2c3d4e5f60718";
const S3 = "fedcba9876543210";

/** Finished SDK spans with `attributes` replaced (the SDK only takes primitives and flat arrays; the serializer writes any AnyValue). */
function withAttributes(span: ReadableSpan, attributes: Record<string, unknown>): ReadableSpan {
  return Object.create(span, { attributes: { value: attributes } }) as ReadableSpan;
}

function sdkExport(): Uint8Array {
  const exporter = new InMemorySpanExporter();
  const spans: ReadableSpan[] = [];
  const resources = [
    resourceFromAttributes({ "service.name": "billing-agent", "host.cpu.count": 8, ratio: 0.75, flag: true, tags: ["a", "b"] }),
    resourceFromAttributes({ "service.name": "other-agent", "spiffe.id": "spiffe://acme.example/agents/other" }),
  ];
  for (const resource of resources) {
    const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(exporter)] });
    for (const [scope, version] of [
      ["scope-a", "1.2.3"],
      ["scope-b", undefined],
    ] as const) {
      const tracer = provider.getTracer(scope, version);
      const parent = trace.setSpanContext(context.active(), {
        traceId: T1,
        spanId: S1,
        traceFlags: 1,
        isRemote: true,
        traceState: new TraceState("vendor=value,other=x"),
      });
      const link: Link = { context: { traceId: T2, spanId: S3, traceFlags: 1 }, attributes: { "link.attr": "x", n: 3 } };
      const span = tracer.startSpan(
        "execute_tool sql.query",
        {
          kind: SpanKind.CLIENT,
          links: [link],
          startTime: [1_700_000_001, 1],
          attributes: {
            str: "text",
            "str.empty": "",
            "str.unicode": "héllo wörld ✓ 🎉",
            int: 42,
            negative: -7,
            zero: 0,
            big: 2 ** 60,
            maxSafe: Number.MAX_SAFE_INTEGER,
            double: 3.25,
            nan: Number.NaN,
            inf: Number.POSITIVE_INFINITY,
            ninf: Number.NEGATIVE_INFINITY,
            negZero: -0,
            "bool.true": true,
            "bool.false": false,
            strings: ["x", "y"],
            ints: [1, -2, 3],
            doubles: [0.5, 1.5],
            bools: [true, false],
            withNull: [1, null, 3],
            empty: [],
          },
        },
        parent,
      );
      span.addEvent("retry", { attempt: 2, reason: "timeout" }, [1_700_000_001, 500]);
      span.addEvent("bare");
      span.setStatus({ code: SpanStatusCode.ERROR, message: "permission denied" });
      span.end([1_700_000_002, 999_999_999]);
      const root = tracer.startSpan("invoke_agent", { kind: SpanKind.INTERNAL });
      root.setStatus({ code: SpanStatusCode.OK });
      root.end();
    }
  }
  for (const s of exporter.getFinishedSpans()) spans.push(s);
  // values the SDK API does not take but the OTLP serializer writes: maps, bytes, nesting
  const first = spans[0] as ReadableSpan;
  spans[0] = withAttributes(first, {
    ...first.attributes,
    map: { a: 1, b: "two", inner: { deep: [true, { x: 1.5 }] }, empty: {} },
    bytes: new Uint8Array([0, 1, 2, 250, 255]),
    "bytes.empty": new Uint8Array(0),
    mixed: ["a", 1, { k: "v" }, [2, [3]]],
    "null.value": null,
  });
  const bytes = ProtobufTraceSerializer.serializeRequest(spans);
  if (!bytes) throw new Error("serializer returned nothing");
  return bytes;
}

describe("wire decoder vs reference on OTel SDK exports", () => {
  it("agrees on every attribute type, events, links, status, trace state, several resources and scopes", () => {
    const bytes = sdkExport();
    const decoded = decodedOk(bytes);
    expect(decoded.rejected).toEqual([]);
    expect(decoded.spans).toHaveLength(8);
    expect(new Set(decoded.spans.map((s) => s.resource["service.name"]))).toEqual(new Set(["billing-agent", "other-agent"]));
    expect(new Set(decoded.spans.map((s) => JSON.stringify(s.scope)))).toEqual(
      new Set([JSON.stringify({ name: "scope-a", version: "1.2.3" }), JSON.stringify({ name: "scope-b" })]),
    );
    const tool = decoded.spans.find((s) => s.attributes.map !== undefined);
    expect(tool?.attributes).toMatchObject({
      big: "1152921504606846976",
      nan: "NaN",
      ninf: "-Infinity",
      withNull: [1, null, 3],
      map: { a: 1, b: "two", inner: { deep: [true, { x: 1.5 }] }, empty: {} },
      bytes: "AAEC+v8=",
      "bytes.empty": "",
      "null.value": null,
    });
    expect(tool?.links).toEqual([{ traceId: T2, spanId: S3 }]);
    expect(tool?.status).toEqual({ code: 2, message: "permission denied" });
    expect(tool?.parentSpanId).toBe(S1);
    // ingest gets Buffers, the serializer gives Uint8Arrays: the same either way
    expect(decodeProtobufWire(Buffer.from(bytes))).toStrictEqual(decodeProtobufWire(bytes));
    expect(decodeProtobuf(bytes)).toStrictEqual(decodeProtobufWire(bytes));
  });
});

// ---- requests built field by field --------------------------------------------------------

const writer = () => protobuf.Writer.create();
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
/** A length-delimited field. */
const len = (field: number, ...payload: Uint8Array[]) =>
  writer()
    .uint32((field << 3) | 2)
    .bytes(cat(...payload))
    .finish();
const str = (field: number, s: string) =>
  writer()
    .uint32((field << 3) | 2)
    .string(s)
    .finish();
const raw = (field: number, bytes: number[]) => len(field, new Uint8Array(bytes));
const hexField = (field: number, hex: string) => len(field, Buffer.from(hex, "hex"));
const varint = (field: number, v: number) =>
  writer()
    .uint32(field << 3)
    .uint32(v)
    .finish();
const int32 = (field: number, v: number) =>
  writer()
    .uint32(field << 3)
    .int32(v)
    .finish();
const int64 = (field: number, v: string | number) =>
  writer()
    .uint32(field << 3)
    .int64(v)
    .finish();
const fixed64 = (field: number, v: bigint) =>
  writer()
    .uint32((field << 3) | 1)
    .fixed64(v.toString())
    .finish();
const fixed32 = (field: number, v: number) =>
  writer()
    .uint32((field << 3) | 5)
    .fixed32(v)
    .finish();
const double = (field: number, v: number) =>
  writer()
    .uint32((field << 3) | 1)
    .double(v)
    .finish();
const group = (field: number, ...payload: Uint8Array[]) =>
  cat(
    writer()
      .uint32((field << 3) | 3)
      .finish(),
    ...payload,
    writer()
      .uint32((field << 3) | 4)
      .finish(),
  );
const tagOnly = (field: number, wireType: number) =>
  writer()
    .uint32((field << 3) | wireType)
    .finish();

/** Unknown fields of every wire type (numbers no OTLP message here uses). */
const unknowns = () =>
  cat(
    varint(100, 7),
    fixed64(101, 1n),
    fixed32(102, 9),
    str(103, "future"),
    group(104, varint(1, 1), group(2, str(3, "x"))),
    varint(5000, 1),
  );

// AnyValue members
const sv = (s: string) => str(1, s);
const bv = (b: boolean) => varint(2, b ? 1 : 0);
const iv = (i: string | number) => int64(3, i);
const dv = (d: number) => double(4, d);
const av = (...values: Uint8Array[]) => len(5, ...values.map((v) => len(1, v)));
const kvl = (...kvs: Uint8Array[]) => len(6, ...kvs.map((kv) => len(1, kv)));
const bytesV = (b: number[]) => raw(7, b);
/** KeyValue: key, then the AnyValue members given. */
const kv = (key: string, ...value: Uint8Array[]) => cat(str(1, key), len(2, ...value));

const attr = (field: number, key: string, ...value: Uint8Array[]) => len(field, kv(key, ...value));
const span = (...fields: Uint8Array[]) => len(2, ...fields);
const goodIds = (spanId = S1) => cat(hexField(1, T1), hexField(2, spanId));
const scopeSpans = (...fields: Uint8Array[]) => len(2, ...fields);
const resourceSpans = (...fields: Uint8Array[]) => len(1, ...fields);
const request = (...resourceSpansFields: Uint8Array[][]) => cat(...resourceSpansFields.map((f) => resourceSpans(...f)));
/** A request of one resource and one scope holding the given spans. */
const oneScope = (...spans: Uint8Array[]) => request([scopeSpans(len(1, str(1, "scope")), ...spans)]);
const spanWithAttrs = (...attrs: Uint8Array[]) => oneScope(span(goodIds(), str(5, "s"), ...attrs));

/** An AnyValue nested `levels` arrays deep around a string. */
function nestedArrays(levels: number, leaf = sv("leaf")): Uint8Array {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = av(v);
  return v;
}

/** An AnyValue nested `levels` maps deep ({"1": {"2": ...}}) around a bool. */
function nestedMaps(levels: number): Uint8Array {
  let v = bv(true);
  for (let i = levels; i > 0; i--) v = kvl(kv(String(i), v));
  return v;
}

const CRAFTED: Record<string, Uint8Array> = {
  "an empty request": new Uint8Array(0),
  "empty resource and scope spans": request([], [scopeSpans()], [len(1)]),
  "an empty span (rejected)": oneScope(span()),
  "every scalar type and edge value": spanWithAttrs(
    attr(9, "s", sv("text")),
    attr(9, "s.empty", sv("")),
    attr(9, "s.unicode", sv("héllo ✓ 🎉 \u{FEFF}bom \u{FFFD}")),
    attr(9, "b.true", bv(true)),
    attr(9, "b.false", bv(false)),
    attr(9, "i.zero", iv(0)),
    attr(9, "i.neg", iv(-1)),
    attr(9, "i.max", iv("9223372036854775807")),
    attr(9, "i.min", iv("-9223372036854775808")),
    attr(9, "i.safe", iv(Number.MAX_SAFE_INTEGER)),
    attr(9, "i.unsafe", iv("9007199254740992")),
    attr(9, "i.negsafe", iv(-Number.MAX_SAFE_INTEGER)),
    attr(9, "i.negunsafe", iv("-9007199254740992")),
    attr(9, "i.2^32", iv(2 ** 32)),
    attr(9, "i.-2^32-1", iv(-(2 ** 32) - 1)),
    attr(9, "d", dv(2.5)),
    attr(9, "d.negzero", dv(-0)),
    attr(9, "d.nan", dv(Number.NaN)),
    attr(9, "d.inf", dv(Number.POSITIVE_INFINITY)),
    attr(9, "d.ninf", dv(Number.NEGATIVE_INFINITY)),
    attr(9, "d.tiny", dv(Number.MIN_VALUE)),
    attr(9, "bytes", bytesV([1, 2, 3])),
    attr(9, "bytes.empty", bytesV([])),
    attr(9, "empty"),
    len(9, str(1, "no value")),
    len(9, len(2, sv("no key"))),
    len(9),
  ),
  "nested arrays and maps, empty ones, duplicate keys in a map": spanWithAttrs(
    attr(9, "arr", av(sv("a"), iv(1), av(), kvl(kv("k", bv(true))), av(dv(1.5)))),
    attr(9, "map", kvl(kv("x", sv("1")), kv("x", sv("2")), kv("y", kvl()), kv("z"))),
    attr(9, "empty.arr", av()),
    attr(9, "empty.map", kvl()),
  ),
  "several oneof members in one value: the last wins, a repeated message member merges": spanWithAttrs(
    attr(9, "string,int", sv("a"), iv(5)),
    attr(9, "int,string", iv(5), sv("a")),
    attr(9, "array,string", av(sv("x")), sv("a")),
    attr(9, "string,array", sv("a"), av(sv("x"))),
    attr(9, "array,array", av(sv("x")), av(sv("y"), sv("z"))),
    attr(9, "map,map", kvl(kv("a", iv(1))), kvl(kv("b", iv(2)), kv("a", iv(3)))),
    attr(9, "map,array,map", kvl(kv("a", iv(1))), av(sv("x")), kvl(kv("b", iv(2)))),
    attr(9, "array,map,array", av(sv("x")), kvl(kv("a", iv(1))), av(sv("y"))),
    attr(9, "bool,double,bytes", bv(true), dv(1.5), bytesV([9])),
    attr(9, "bytes,bool", bytesV([9]), bv(false)),
  ),
  "a KeyValue's value sent twice is merged": spanWithAttrs(
    len(9, str(1, "k1"), len(2, sv("a")), len(2, iv(2))),
    len(9, str(1, "k2"), len(2, av(sv("x"))), len(2, av(sv("y")))),
    len(9, str(1, "k3"), len(2, sv("a")), len(2)),
    len(9, str(1, "k4"), len(2, kvl(kv("a", iv(1)))), len(2, kvl(kv("b", iv(2))))),
    len(9, str(1, "k5"), len(2, av(sv("x"))), len(2, sv("s")), len(2, av(sv("y")))),
    len(9, len(2, sv("value first")), str(1, "k6"), str(1, "k6, last key wins")),
  ),
  "repeated scalar fields keep the last value; status and scope merge": oneScope(
    span(
      hexField(1, T2),
      hexField(1, T1),
      hexField(2, S2),
      hexField(2, S1),
      str(5, "first"),
      str(5, "second"),
      varint(6, 2),
      varint(6, 3),
      fixed64(7, 5n),
      fixed64(7, 1_700_000_000_000_000_001n),
      fixed64(8, 18_446_744_073_709_551_615n),
      len(15, int32(3, 2)),
      len(15, str(2, "boom")),
      len(15, str(2, "")),
      len(15, str(2, "bang")),
    ),
  ),
  "a repeated id sent again empty is empty (rejected)": oneScope(span(hexField(1, T1), len(1), hexField(2, S1))),
  "scope and resource sent twice merge; scope after the spans; resource after the scope spans": request([
    scopeSpans(
      span(goodIds(), str(5, "a")),
      len(1, str(1, "name1"), str(2, "v1")),
      span(goodIds(S2), str(5, "b")),
      len(1, str(1, "name2")),
    ),
    len(1, attr(1, "r1", sv("x"))),
    scopeSpans(len(1, str(2, "v2")), len(1, str(2, "")), span(goodIds(), str(5, "c"))),
    len(1, attr(1, "r2", iv(2)), attr(1, "r1", sv("y"))),
  ]),
  "unknown fields of every wire type at every level, known numbers with other wire types": cat(
    unknowns(),
    request([
      unknowns(),
      varint(1, 5), // resource as a varint: skipped
      len(1, unknowns(), attr(1, "r", unknowns(), sv("v"), unknowns()), fixed32(2, 1)),
      str(3, "https://schema"),
      scopeSpans(
        unknowns(),
        len(1, unknowns(), str(1, "scope"), varint(2, 1), attr(3, "scope.attr", sv("x"))),
        span(
          unknowns(),
          goodIds(),
          fixed64(5, 1n), // name as fixed64: skipped
          str(5, "named"),
          str(3, "trace=state"),
          fixed32(16, 0x101),
          varint(16, 1), // flags as a varint: skipped
          varint(10, 1),
          varint(12, 2),
          varint(14, 3),
          len(9, unknowns(), str(1, "k"), len(2, unknowns(), iv(1), unknowns())),
          len(9, str(1, "arr"), len(2, len(5, unknowns(), len(1, sv("x")), unknowns()))),
          len(9, str(1, "map"), len(2, len(6, unknowns(), len(1, kv("a", bv(true)))))),
          len(11, fixed64(1, 1n), str(2, "event"), attr(3, "e", sv("x")), varint(4, 1), unknowns()),
          len(13, hexField(1, T2), hexField(2, S3), str(3, "ts"), attr(4, "l", iv(1)), varint(5, 1), fixed32(6, 1), unknowns()),
          len(15, unknowns(), int32(3, 1), unknowns()),
        ),
        str(3, "https://scope-schema"),
      ),
    ]),
  ),
  "negative kind and status code (ten-byte varints)": oneScope(span(goodIds(), int32(6, -1), len(15, int32(3, -5), str(2, "negative")))),
  "bad ids are rejected with their reasons, bad links dropped": oneScope(
    span(hexField(1, "0102"), hexField(2, S1), str(5, "short trace")),
    span(hexField(1, "0".repeat(32)), hexField(2, S1), str(5, "zero trace")),
    span(hexField(1, T1), hexField(2, "0".repeat(16)), str(5, "zero span")),
    span(hexField(1, T1), hexField(2, "01"), str(5, "short span")),
    span(goodIds(), hexField(4, "01"), str(5, "short parent")),
    span(goodIds(), hexField(4, "0".repeat(16)), str(5, "zero parent is fine")),
    span(
      goodIds(S2),
      str(5, "links"),
      len(13, hexField(1, T2), hexField(2, S3)),
      len(13, hexField(1, T2)),
      len(13, hexField(1, "0".repeat(32)), hexField(2, "0".repeat(16))),
      len(13, hexField(1, "01"), hexField(2, S3)),
      len(13),
    ),
  ),
  "values nested exactly MAX_DEPTH levels": spanWithAttrs(attr(9, "deep", nestedArrays(MAX_DEPTH))),
  "values nested deeper than MAX_DEPTH, arrays and maps, cut the same": spanWithAttrs(
    attr(9, "deep.array", nestedArrays(MAX_DEPTH + 4)),
    attr(9, "deep.empty", nestedArrays(MAX_DEPTH, new Uint8Array(0))),
    attr(9, "deep.scalar.after", nestedArrays(MAX_DEPTH, cat(av(sv("x")), iv(3)))),
    attr(9, "deep.array.after", nestedArrays(MAX_DEPTH, cat(iv(3), av(sv("x"))))),
    attr(9, "deep.map", nestedMaps(MAX_DEPTH + 2)),
  ),
};

function crafted(name: string): Uint8Array {
  const bytes = CRAFTED[name];
  if (!bytes) throw new Error(`no crafted request "${name}"`);
  return bytes;
}

/** Requests encoded by protobufjs from the project's OTLP description (plain objects: every member given is written). */
const Request = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: true }).root.lookupType("otlp.ExportTraceServiceRequest");
const id = (hex: string) => Buffer.from(hex, "hex");
const FROM_DESCRIPTION: Record<string, Uint8Array> = {
  "nested kvlists, arrays, several oneof members, repeated fields": Request.encode({
    resource_spans: [
      {
        resource: { attributes: [{ key: "service.name", value: { string_value: "svc" } }], dropped_attributes_count: 1 },
        scope_spans: [
          {
            scope: { name: "lib", version: "2", attributes: [{ key: "scope.k", value: { int_value: 1 } }] },
            spans: [
              {
                trace_id: id(T1),
                span_id: id(S1),
                parent_span_id: id(S2),
                trace_state: "a=b",
                name: "described",
                kind: 2,
                start_time_unix_nano: "1700000000000000001",
                end_time_unix_nano: "1700000000500000000",
                attributes: [
                  {
                    key: "several",
                    value: { string_value: "s", bool_value: true, int_value: 7, double_value: 0.5, bytes_value: id("ff") },
                  },
                  {
                    key: "nested",
                    value: {
                      kvlist_value: {
                        values: [
                          { key: "list", value: { array_value: { values: [{ int_value: "-12" }, { string_value: "two" }, {}] } } },
                          { key: "map", value: { kvlist_value: { values: [{ key: "ok", value: { bool_value: false } }] } } },
                          { key: "both", value: { array_value: { values: [{ int_value: 1 }] }, kvlist_value: { values: [] } } },
                        ],
                      },
                    },
                  },
                  { key: "zero", value: { int_value: 0, double_value: 0, bool_value: false, string_value: "" } },
                  { key: "novalue" },
                ],
                events: [{ time_unix_nano: "5", name: "e", attributes: [{ key: "k", value: { string_value: "v" } }] }],
                links: [
                  {
                    trace_id: id(T2),
                    span_id: id(S3),
                    trace_state: "x=y",
                    attributes: [{ key: "l", value: { bool_value: true } }],
                    flags: 1,
                  },
                  { trace_id: id(T2) },
                ],
                status: { code: 1, message: "fine" },
                flags: 257,
                dropped_attributes_count: 2,
                dropped_events_count: 3,
                dropped_links_count: 4,
              },
              { trace_id: id(T1), span_id: id(S2), name: "second" },
            ],
            schema_url: "https://s",
          },
          { spans: [{ trace_id: id(T2), span_id: id(S3) }] },
        ],
      },
      { scope_spans: [{ spans: [{ trace_id: id("00"), span_id: id(S1), name: "rejected" }] }] },
    ],
  }).finish(),
};

const INVALID: Record<string, Uint8Array> = {
  "invalid UTF-8 in a span name": oneScope(span(goodIds(), raw(5, [0x61, 0xff, 0x62]))),
  "invalid UTF-8 in an attribute key": spanWithAttrs(len(9, raw(1, [0xc3]), len(2, sv("v")))),
  "invalid UTF-8 in a string value": spanWithAttrs(attr(9, "k", raw(1, [0xed, 0xa0, 0x80]))),
  "invalid UTF-8 in a long string value": spanWithAttrs(attr(9, "k", raw(1, [...Buffer.from("x".repeat(100)), 0x80]))),
  "invalid UTF-8 in a scope name": request([scopeSpans(len(1, raw(1, [0xfe])))]),
  "invalid UTF-8 in a trace state": oneScope(span(goodIds(), raw(3, [0xc0, 0x80]))),
  "invalid UTF-8 in an event's attribute": oneScope(span(goodIds(), len(11, attr(3, "k", raw(1, [0xff]))))),
  "invalid UTF-8 in a schema url": request([raw(3, [0xff])]),
  "field number 0": cat(tagOnly(0, 0), new Uint8Array([1])),
  "wire type 6": tagOnly(1, 6),
  "wire type 7 inside a span": oneScope(span(goodIds(), tagOnly(20, 7))),
  "an end group without a start": oneScope(span(goodIds(), tagOnly(20, 4))),
  "a group ended by another field's end": cat(tagOnly(50, 3), tagOnly(51, 4)),
  "an unterminated group": tagOnly(50, 3),
  "a length past the end": new Uint8Array([0x0a, 0x05, 0x12, 0x00]),
  "a length past its message's end (not the buffer's)": request([scopeSpans(new Uint8Array([0x12, 0x05, 0x00])), str(3, "abcdefgh")]),
  "a varint cut short": new Uint8Array([0x08, 0xff, 0xff]),
  "an over-long varint in a known field": oneScope(span(goodIds(), cat(tagOnly(6, 0), new Uint8Array([...Array(10).fill(0xff), 0x01])))),
  "a truncated fixed64 timestamp": oneScope(span(goodIds(), cat(tagOnly(7, 1), new Uint8Array([1, 2, 3])))),
  garbage: new Uint8Array(Buffer.from("this is not protobuf at all, just text")),
};

describe("wire decoder vs reference on requests built field by field", () => {
  it.each(Object.entries(CRAFTED))("agrees on %s", (_what, bytes) => {
    decodedOk(bytes);
  });

  it.each(Object.entries(INVALID))("both reject %s with OtlpDecodeError", (_what, bytes) => {
    expectBothThrow(bytes);
  });

  it.each(Object.entries(FROM_DESCRIPTION))("agrees on a request encoded from the OTLP description: %s", (_what, bytes) => {
    const decoded = decodedOk(bytes);
    expect(decoded.spans.map((s) => s.name)).toEqual(["described", "second", ""]);
    expect(decoded.rejected).toEqual([{ index: 3, reason: expect.stringMatching(/^span 3: trace id/) }]);
    // protobufjs writes oneof members in field order: the last written (bytes_value) wins
    expect(decoded.spans[0]?.attributes.several).toBe("/w==");
    expect(decoded.spans[0]?.attributes.nested).toEqual({ list: [-12, "two", null], map: { ok: false }, both: {} });
  });

  it("reads protobuf semantics as the tests above assume", () => {
    // a few spot checks that the shared outcome is what protobuf says (not just agreement)
    const byName = (bytes: Uint8Array) => Object.fromEntries(decodedOk(bytes).spans.map((s) => [s.name, s]));
    const first = (name: string) => decodedOk(crafted(name)).spans[0];
    const oneofs = first("several oneof members in one value: the last wins, a repeated message member merges")?.attributes;
    expect(oneofs).toEqual({
      "string,int": 5,
      "int,string": "a",
      "array,string": "a",
      "string,array": ["x"],
      "array,array": ["x", "y", "z"],
      "map,map": { a: 3, b: 2 },
      "map,array,map": { b: 2 },
      "array,map,array": ["y"],
      "bool,double,bytes": "CQ==",
      "bytes,bool": false,
    });
    const merged = first("a KeyValue's value sent twice is merged")?.attributes;
    expect(merged).toEqual({ k1: 2, k2: ["x", "y"], k3: "a", k4: { a: 1, b: 2 }, k5: ["y"], "k6, last key wins": "value first" });
    const last = first("repeated scalar fields keep the last value; status and scope merge");
    expect(last).toMatchObject({
      traceId: T1,
      spanId: S1,
      name: "second",
      kind: 3,
      startTimeUnixNano: 1_700_000_000_000_000_001n,
      endTimeUnixNano: 18_446_744_073_709_551_615n,
      status: { code: 2, message: "bang" },
    });
    const scopes = byName(crafted("scope and resource sent twice merge; scope after the spans; resource after the scope spans"));
    expect(scopes.a?.scope).toEqual({ name: "name2", version: "v1" });
    expect(scopes.c?.scope).toEqual({ name: "" });
    expect(scopes.a?.resource).toEqual({ r1: "y", r2: 2 });
    const rejected = decodedOk(crafted("bad ids are rejected with their reasons, bad links dropped"));
    expect(rejected.spans.map((s) => s.name)).toEqual(["zero parent is fine", "links"]);
    expect(rejected.spans[1]?.links).toEqual([
      { traceId: T2, spanId: S3 },
      { traceId: "0".repeat(32), spanId: "0".repeat(16) },
    ]);
    expect(rejected.rejected.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    const deep = first("values nested deeper than MAX_DEPTH, arrays and maps, cut the same")?.attributes;
    expect(JSON.stringify(deep?.["deep.array"])).toBe(`${"[".repeat(MAX_DEPTH)}"${NESTED_TOO_DEEP}"${"]".repeat(MAX_DEPTH)}`);
    expect(JSON.stringify(deep?.["deep.empty"])).toBe(`${"[".repeat(MAX_DEPTH)}"${NESTED_TOO_DEEP}"${"]".repeat(MAX_DEPTH)}`);
    expect(JSON.stringify(deep?.["deep.scalar.after"])).toBe(`${"[".repeat(MAX_DEPTH)}3${"]".repeat(MAX_DEPTH)}`);
  });

  it("rejects invalid UTF-8 (as protobufjs's stringVerify does), never replaces it", () => {
    expect(() => decodeProtobufWire(INVALID["invalid UTF-8 in a span name"] as Uint8Array)).toThrow(/malformed OTLP protobuf: .*utf-8/i);
  });
});

// ---- the documented exception: bytes nested past MAX_DEPTH --------------------------------

/** The payload of the array value at depth MAX_DEPTH in `deepSeed`: what the wire decoder skips. */
const SKIPPED = cat(len(1, av(av(sv("below the cut: skipped by the wire decoder")), sv("x"))));
const deepSeed = spanWithAttrs(attr(9, "deep", nestedArrays(MAX_DEPTH, len(5, SKIPPED))), attr(9, "after", sv("ok")));
const skippedAt = Buffer.from(deepSeed).indexOf(Buffer.from(SKIPPED));
const CUT = `${"[".repeat(MAX_DEPTH)}"${NESTED_TOO_DEEP}"${"]".repeat(MAX_DEPTH)}`;

describe("values nested past MAX_DEPTH (the one documented difference)", () => {
  it("describes the same wire format with the deep values opaque (the precise statement of the exception)", () => {
    expect(RequestWithCut.lookupType("otlp.AnyValue8").fields.array_value?.type).toBe("bytes");
    for (const bytes of [deepSeed, ...Object.values(CRAFTED), sdkExport()]) compare(bytes);
  });

  it("a well-formed deep value: both cut it alike", () => {
    expect(skippedAt).toBeGreaterThan(0);
    expect(JSON.stringify(decodedOk(deepSeed).spans[0]?.attributes.deep)).toBe(CUT);
  });

  it("malformed bytes below the cut: the reference rejects the request, the wire decoder cuts the value unread", () => {
    const bytes = Buffer.from(deepSeed);
    bytes[skippedAt] = 0xff; // not a valid tag any more
    expect(compare(bytes).verdict).toBe("exception");
    expect(() => decodeProtobufReference(bytes)).toThrow(OtlpDecodeError);
    const attrs = decodeProtobufWire(bytes).spans[0]?.attributes;
    expect(JSON.stringify(attrs?.deep)).toBe(CUT);
    expect(attrs?.after).toBe("ok");
  });

  it("hostile nesting (thousands of levels): the reference stops at protobufjs's recursion limit, the wire decoder cuts", () => {
    const bytes = spanWithAttrs(attr(9, "deep", nestedArrays(3000)), attr(9, "after", sv("ok")));
    expect(compare(bytes).verdict).toBe("exception");
    expect(() => decodeProtobufReference(bytes)).toThrow(/malformed OTLP protobuf: max depth exceeded/);
    const attrs = decodeProtobufWire(bytes).spans[0]?.attributes;
    expect(JSON.stringify(attrs?.deep)).toBe(CUT);
    expect(attrs?.after).toBe("ok");
  });

  it("the same holds for values the decoders check but do not keep (events, links, scope)", () => {
    const deepEvent = oneScope(span(goodIds(), len(11, str(2, "e"), attr(3, "deep", nestedArrays(MAX_DEPTH, raw(5, [0xff]))))));
    expect(compare(deepEvent).verdict).toBe("exception");
    expect(decodeProtobufWire(deepEvent).spans).toHaveLength(1);
  });
});

// ---- mutations ------------------------------------------------------------------------------

const SEEDS: Uint8Array[] = [sdkExport(), deepSeed, ...Object.values(CRAFTED), ...Object.values(FROM_DESCRIPTION)];

const mutated = fc.oneof(
  // set bytes at random positions (bit flips and more)
  fc
    .tuple(fc.constantFrom(...SEEDS), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }))
    .map(([seed, edits]) => {
      const b = Buffer.from(seed);
      for (const [i, v] of edits) if (b.length > 0) b[i % b.length] = v;
      return b;
    }),
  // flip single bits
  fc.tuple(fc.constantFrom(...SEEDS), fc.array(fc.nat(), { minLength: 1, maxLength: 4 })).map(([seed, bits]) => {
    const b = Buffer.from(seed);
    for (const bit of bits) {
      const i = b.length > 0 ? (bit >> 3) % b.length : -1;
      if (i >= 0) b[i] = (b[i] as number) ^ (1 << (bit & 7));
    }
    return b;
  }),
  // truncate
  fc.tuple(fc.constantFrom(...SEEDS), fc.nat()).map(([seed, n]) => Buffer.from(seed.subarray(0, seed.length === 0 ? 0 : n % seed.length))),
  // splice random bytes in
  fc
    .tuple(fc.constantFrom(...SEEDS), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 32 }))
    .map(([seed, at, bytes]) => Buffer.concat([seed.subarray(0, at % (seed.length + 1)), bytes, seed.subarray(at % (seed.length + 1))])),
  // duplicate a slice (repeated fields, merges, lengths that now lie)
  fc.tuple(fc.constantFrom(...SEEDS), fc.nat(), fc.nat({ max: 300 })).map(([seed, at, n]) => {
    const i = at % (seed.length + 1);
    return Buffer.concat([seed.subarray(0, i), seed.subarray(i, i + n), seed.subarray(i)]);
  }),
  // cut a slice out
  fc.tuple(fc.constantFrom(...SEEDS), fc.nat(), fc.nat({ max: 40 })).map(([seed, at, n]) => {
    const i = at % (seed.length + 1);
    return Buffer.concat([seed.subarray(0, i), seed.subarray(i + n)]);
  }),
  // splice two seeds
  fc
    .tuple(fc.constantFrom(...SEEDS), fc.constantFrom(...SEEDS), fc.nat(), fc.nat())
    .map(([a, b, i, j]) => Buffer.concat([a.subarray(0, i % (a.length + 1)), b.subarray(j % (b.length + 1))])),
  // noise
  fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)),
);

describe("wire decoder vs reference on mutated requests", () => {
  it("agrees on thousands of mutations of SDK exports and built requests", () => {
    const seen = { decodable: 0, rejected: 0, exception: 0 };
    fc.assert(
      fc.property(mutated, (bytes) => {
        const { wire, verdict } = compare(bytes);
        if (verdict === "exception") seen.exception++;
        else if (wire.ok) seen.decodable++;
        else seen.rejected++;
      }),
      { numRuns: 6000, seed: 4242 },
    );
    // every kind of outcome was exercised
    expect(seen.decodable).toBeGreaterThan(300);
    expect(seen.rejected).toBeGreaterThan(300);
    expect(seen.exception).toBeGreaterThan(0);
  });

  it("also with a fresh random seed each run", () => {
    fc.assert(
      fc.property(mutated, (bytes) => {
        compare(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});
