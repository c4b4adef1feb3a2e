import protobuf from "protobufjs";
import { OTLP_TRACE_PROTO } from "../../schemas/otlp/trace-proto.js";

/**
 * OTLP trace export requests built by hand (protobuf through protobufjs, and the same
 * request as OTLP/JSON), for what the OTel SDK will not make: thousands of one-span traces,
 * bad ids, events and links with attributes, nested kvlist values.
 */
export type AttrValue = string | number | boolean | AttrValue[] | { [key: string]: AttrValue };

export interface SpanSpec {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  attributes?: Record<string, AttrValue>;
  events?: { name: string; attributes?: Record<string, AttrValue> }[];
  links?: { traceId: string; spanId: string; attributes?: Record<string, AttrValue> }[];
}

export interface RequestSpec {
  resource?: Record<string, AttrValue>;
  scope?: { name: string; attributes?: Record<string, AttrValue> };
  spans: SpanSpec[];
}

const root = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: true }).root;
export const ExportRequest = root.lookupType("otlp.ExportTraceServiceRequest");

/** A random id, hex (Math.random: ids by the hundred thousand, no entropy needed). */
export const hexId = (bytes: number): string => {
  let out = "";
  for (let i = 0; i < bytes; i++) out += ((Math.random() * 256) | 0).toString(16).padStart(2, "0");
  return out === "0".repeat(bytes * 2) ? hexId(bytes) : out;
};

type PbValue = Record<string, unknown>;
function pbValue(v: AttrValue): PbValue {
  if (typeof v === "string") return { string_value: v };
  if (typeof v === "boolean") return { bool_value: v };
  if (typeof v === "number") return Number.isInteger(v) ? { int_value: v } : { double_value: v };
  if (Array.isArray(v)) return { array_value: { values: v.map(pbValue) } };
  return { kvlist_value: { values: pbAttrs(v) } };
}
const pbAttrs = (a: Record<string, AttrValue> = {}) => Object.entries(a).map(([key, value]) => ({ key, value: pbValue(value) }));

type JsonValue = Record<string, unknown>;
function jsonValue(v: AttrValue): JsonValue {
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (typeof v === "number") return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(jsonValue) } };
  return { kvlistValue: { values: jsonAttrs(v) } };
}
const jsonAttrs = (a: Record<string, AttrValue> = {}) => Object.entries(a).map(([key, value]) => ({ key, value: jsonValue(value) }));

const T0 = 1_700_000_000_000_000_000n;

function filled(s: SpanSpec, i: number) {
  return {
    traceId: s.traceId ?? hexId(16),
    spanId: s.spanId ?? hexId(8),
    name: s.name ?? `span ${i}`,
    start: T0 + BigInt(i) * 1_000_000n,
    end: T0 + BigInt(i) * 1_000_000n + 500_000n,
  };
}

/** The request in binary protobuf. */
export function protobufRequest(spec: RequestSpec): Buffer {
  const spans = spec.spans.map((s, i) => {
    const f = filled(s, i);
    return {
      trace_id: Buffer.from(f.traceId, "hex"),
      span_id: Buffer.from(f.spanId, "hex"),
      ...(s.parentSpanId ? { parent_span_id: Buffer.from(s.parentSpanId, "hex") } : {}),
      name: f.name,
      kind: 1,
      start_time_unix_nano: f.start.toString(),
      end_time_unix_nano: f.end.toString(),
      attributes: pbAttrs(s.attributes),
      events: (s.events ?? []).map((e) => ({ name: e.name, time_unix_nano: f.start.toString(), attributes: pbAttrs(e.attributes) })),
      links: (s.links ?? []).map((l) => ({
        trace_id: Buffer.from(l.traceId, "hex"),
        span_id: Buffer.from(l.spanId, "hex"),
        attributes: pbAttrs(l.attributes),
      })),
    };
  });
  const message = ExportRequest.fromObject({
    resource_spans: [
      {
        resource: { attributes: pbAttrs(spec.resource ?? { "service.name": "agent" }) },
        scope_spans: [{ scope: { name: spec.scope?.name ?? "test", attributes: pbAttrs(spec.scope?.attributes) }, spans }],
      },
    ],
  });
  return Buffer.from(ExportRequest.encode(message).finish());
}

/** The same request in OTLP/JSON. */
export function jsonRequest(spec: RequestSpec): Buffer {
  const spans = spec.spans.map((s, i) => {
    const f = filled(s, i);
    return {
      traceId: f.traceId,
      spanId: f.spanId,
      ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
      name: f.name,
      kind: 1,
      startTimeUnixNano: f.start.toString(),
      endTimeUnixNano: f.end.toString(),
      attributes: jsonAttrs(s.attributes),
      events: (s.events ?? []).map((e) => ({ name: e.name, timeUnixNano: f.start.toString(), attributes: jsonAttrs(e.attributes) })),
      links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId, attributes: jsonAttrs(l.attributes) })),
    };
  });
  return Buffer.from(
    JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: jsonAttrs(spec.resource ?? { "service.name": "agent" }) },
          scopeSpans: [{ scope: { name: spec.scope?.name ?? "test", attributes: jsonAttrs(spec.scope?.attributes) }, spans }],
        },
      ],
    }),
  );
}

/** `n` spans, each the root of its own trace (the shape of the request that filled the embedded store). */
export function oneSpanTraces(n: number, attributes: Record<string, AttrValue> = {}): SpanSpec[] {
  return Array.from({ length: n }, () => ({ attributes }));
}
