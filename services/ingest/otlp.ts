import protobuf from "protobufjs";
import { z } from "zod";
import type { Attributes, AttributeValue } from "../../schemas/action.js";
import { OTLP_TRACE_PROTO } from "../../schemas/otlp/trace-proto.js";
import { type DecodedTraces, MAX_DEPTH, NESTED_TOO_DEEP, OtlpDecodeError, type OtlpSpan, spanIdProblem, validLink } from "./otlp-span.js";
import { decodeProtobufWire } from "./otlp-wire.js";

/**
 * Decoding OTLP trace export requests, protobuf and JSON, into flat spans with their
 * resource and scope. Structural damage (truncated or garbage bytes, invalid JSON) throws
 * OtlpDecodeError; a span that is readable but invalid (bad ids) is rejected alone, so the
 * good spans of a batch still go through.
 */
export type { DecodedTraces, OtlpSpan, RejectedSpan } from "./otlp-span.js";
export { OtlpDecodeError } from "./otlp-span.js";

export type OtlpEncoding = "protobuf" | "json";

const root = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: true }).root;
const RequestType = root.lookupType("otlp.ExportTraceServiceRequest");
const ResponseType = root.lookupType("otlp.ExportTraceServiceResponse");

// ---- protobuf -------------------------------------------------------------------------

interface PbAnyValue {
  string_value?: string;
  bool_value?: boolean;
  int_value?: Int64;
  double_value?: number;
  array_value?: { values?: PbAnyValue[] };
  kvlist_value?: { values?: PbKeyValue[] };
  bytes_value?: Uint8Array;
}
interface PbKeyValue {
  key: string;
  value?: PbAnyValue;
}

/** 64 bits as protobufjs hands them over (a Long) or as JSON writes them. */
type Int64 = { low: number; high: number } | number | string;

function int64Bits(v: { low: number; high: number }): bigint {
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

/** A signed int64 attribute: a number when exact, else its decimal string. */
function longToNumber(v: Int64): number | string {
  // a JSON number past 2^53 is already rounded; its exact value is written out like protobuf's
  const big = typeof v === "object" ? BigInt.asIntN(64, int64Bits(v)) : BigInt(v);
  const n = Number(big);
  return Number.isSafeInteger(n) ? n : big.toString();
}

/** An unsigned fixed64 timestamp. */
function longToBigInt(v: Int64 | undefined): bigint {
  if (v === undefined) return 0n;
  if (typeof v === "number") return BigInt(Math.trunc(v));
  if (typeof v === "string") return BigInt(v);
  return int64Bits(v);
}

/**
 * Which member of the `value` oneof is set. protobufjs puts every field's default on the
 * message prototype (`string_value` reads "" even when another member was sent), so only
 * own properties say what was on the wire.
 */
const isSet = <K extends keyof PbAnyValue>(v: PbAnyValue, k: K): v is PbAnyValue & Required<Pick<PbAnyValue, K>> =>
  Object.hasOwn(v, k) && v[k] !== undefined && v[k] !== null;

function pbValue(v: PbAnyValue | undefined, depth: number): AttributeValue {
  if (!v) return null;
  if (isSet(v, "string_value")) return v.string_value;
  if (isSet(v, "bool_value")) return v.bool_value;
  if (isSet(v, "int_value")) return longToNumber(v.int_value);
  // NaN and ±Infinity are not JSON numbers: kept as their names, as OTLP/JSON writes them
  if (isSet(v, "double_value")) return Number.isFinite(v.double_value) ? v.double_value : String(v.double_value);
  if (isSet(v, "bytes_value")) return Buffer.from(v.bytes_value).toString("base64");
  if (depth >= MAX_DEPTH) return NESTED_TOO_DEEP;
  if (isSet(v, "array_value")) return (v.array_value.values ?? []).map((x) => pbValue(x, depth + 1));
  if (isSet(v, "kvlist_value")) return pbAttributes(v.kvlist_value.values, depth + 1);
  return null;
}

function pbAttributes(kvs: PbKeyValue[] | undefined, depth = 0): Attributes {
  const out: Attributes = {};
  for (const kv of kvs ?? []) if (kv.key !== "__proto__") out[kv.key] = pbValue(kv.value, depth);
  return out;
}

const hexOf = (b: Uint8Array | undefined) => (b && b.length > 0 ? Buffer.from(b).toString("hex") : "");

interface PbSpan {
  trace_id?: Uint8Array;
  span_id?: Uint8Array;
  parent_span_id?: Uint8Array;
  name?: string;
  kind?: number;
  start_time_unix_nano?: Int64;
  end_time_unix_nano?: Int64;
  attributes?: PbKeyValue[];
  links?: { trace_id?: Uint8Array; span_id?: Uint8Array }[];
  status?: { code?: number; message?: string };
}
interface PbRequest {
  resource_spans?: {
    resource?: { attributes?: PbKeyValue[] };
    scope_spans?: { scope?: { name?: string; version?: string }; spans?: PbSpan[] }[];
  }[];
}

/** Protobuf decoding: the direct wire decoder (otlp-wire.ts), same results as the reference below. */
export function decodeProtobuf(bytes: Uint8Array): DecodedTraces {
  return decodeProtobufWire(bytes);
}

/**
 * The reference protobuf decoding: protobufjs's reflection decode of the request, then
 * conversion. Several times slower than the wire decoder; kept for the differential tests
 * (otlp-wire.test.ts) and the benchmark. `requestType` may be another description of the
 * same wire format (the tests use one in which values nested MAX_DEPTH deep are opaque).
 */
export function decodeProtobufReference(bytes: Uint8Array, requestType: protobuf.Type = RequestType): DecodedTraces {
  let req: PbRequest;
  try {
    req = requestType.decode(bytes) as unknown as PbRequest;
  } catch (err) {
    throw new OtlpDecodeError(`malformed OTLP protobuf: ${(err as Error).message}`);
  }
  const out: DecodedTraces = { spans: [], rejected: [] };
  let index = 0;
  for (const rs of req.resource_spans ?? []) {
    const resource = pbAttributes(rs.resource?.attributes);
    for (const ss of rs.scope_spans ?? []) {
      const scope = { name: ss.scope?.name ?? "", ...(ss.scope?.version ? { version: ss.scope.version } : {}) };
      for (const s of ss.spans ?? []) {
        const raw = {
          traceId: hexOf(s.trace_id),
          spanId: hexOf(s.span_id),
          parentSpanId: hexOf(s.parent_span_id),
          name: s.name ?? "",
          kind: s.kind ?? 0,
          startTimeUnixNano: longToBigInt(s.start_time_unix_nano),
          endTimeUnixNano: longToBigInt(s.end_time_unix_nano),
          attributes: pbAttributes(s.attributes),
          resource,
          scope,
          links: (s.links ?? []).map((l) => ({ traceId: hexOf(l.trace_id), spanId: hexOf(l.span_id) })),
          status: { code: s.status?.code ?? 0, ...(s.status?.message ? { message: s.status.message } : {}) },
        };
        accept(raw, index++, out);
      }
    }
  }
  return out;
}

// ---- JSON (OTLP/JSON: lowerCamelCase fields, hex ids, int64 as string or number) ------

// Numbers past 2^53 are allowed: OTel JS's JSON serializer writes int attributes as JSON numbers
const JsonInt64 = z.union([
  z.string().regex(/^-?\d+$/, "expected an integer string"),
  z.number().refine(Number.isInteger, "expected an integer"),
]);
type JsonAnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number | string;
  arrayValue?: { values?: JsonAnyValue[] };
  kvlistValue?: { values?: JsonKeyValue[] };
  bytesValue?: string;
};
type JsonKeyValue = { key: string; value?: JsonAnyValue };
const JsonAnyValue: z.ZodType<JsonAnyValue> = z.lazy(() =>
  z.object({
    stringValue: z.string().optional(),
    boolValue: z.boolean().optional(),
    intValue: JsonInt64.optional(),
    doubleValue: z.union([z.number(), z.enum(["NaN", "Infinity", "-Infinity"])]).optional(),
    arrayValue: z.object({ values: z.array(JsonAnyValue).optional() }).optional(),
    kvlistValue: z.object({ values: z.array(JsonKeyValue).optional() }).optional(),
    bytesValue: z.string().optional(),
  }),
);
const JsonKeyValue: z.ZodType<JsonKeyValue> = z.lazy(() => z.object({ key: z.string(), value: JsonAnyValue.optional() }));
const JsonSpan = z.object({
  traceId: z.string().optional(),
  spanId: z.string().optional(),
  parentSpanId: z.string().optional(),
  name: z.string().optional(),
  kind: z.union([z.number().int(), z.string()]).optional(),
  startTimeUnixNano: JsonInt64.optional(),
  endTimeUnixNano: JsonInt64.optional(),
  attributes: z.array(JsonKeyValue).optional(),
  links: z.array(z.object({ traceId: z.string().optional(), spanId: z.string().optional() })).optional(),
  status: z.object({ code: z.union([z.number().int(), z.string()]).optional(), message: z.string().optional() }).optional(),
});
const JsonRequest = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes: z.array(JsonKeyValue).optional() }).optional(),
        scopeSpans: z
          .array(
            z.object({
              scope: z.object({ name: z.string().optional(), version: z.string().optional() }).optional(),
              // spans are checked one by one below, so one bad span does not sink the batch
              spans: z.array(z.unknown()).optional(),
            }),
          )
          .optional(),
      }),
    )
    .optional(),
});

function jsonValue(v: JsonAnyValue | undefined, depth: number): AttributeValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return longToNumber(v.intValue);
  if (v.doubleValue !== undefined) return typeof v.doubleValue === "number" ? v.doubleValue : String(v.doubleValue);
  if (v.bytesValue !== undefined) return v.bytesValue;
  if (depth >= MAX_DEPTH) return NESTED_TOO_DEEP;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map((x) => jsonValue(x, depth + 1));
  if (v.kvlistValue !== undefined) return jsonAttributes(v.kvlistValue.values, depth + 1);
  return null;
}

function jsonAttributes(kvs: JsonKeyValue[] | undefined, depth = 0): Attributes {
  const out: Attributes = {};
  // "__proto__" would replace the map's prototype rather than add a key: dropped
  for (const kv of kvs ?? []) if (kv.key !== "__proto__") out[kv.key] = jsonValue(kv.value, depth);
  return out;
}

const STATUS_NAMES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };
const KIND_NAMES: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};

function issuesText(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
    .join("; ");
}

/** zod checks nested values recursively: hostile nesting overflows the stack (undefined here), which is bad input. */
function checkNesting<T>(check: () => T): T | undefined {
  try {
    return check();
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

export function decodeJson(bytes: Uint8Array): DecodedTraces {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    // V8 quotes the text around the error (`Unexpected token 'x', ..."password": hunt"... is not
    // valid JSON`): left out, so a reason (in a dead letter, a log) never carries the input
    const reason = (err as Error).message.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, " (the input is not quoted)");
    throw new OtlpDecodeError(`malformed OTLP JSON: ${reason}`);
  }
  const parsed = checkNesting(() => JsonRequest.safeParse(doc));
  if (parsed === undefined) throw new OtlpDecodeError("malformed OTLP JSON: values nested too deeply");
  if (!parsed.success) throw new OtlpDecodeError(`malformed OTLP JSON: ${issuesText(parsed.error)}`);
  const out: DecodedTraces = { spans: [], rejected: [] };
  let index = 0;
  for (const rs of parsed.data.resourceSpans ?? []) {
    const resource = jsonAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? "", ...(ss.scope?.version ? { version: ss.scope.version } : {}) };
      for (const candidate of ss.spans ?? []) {
        const i = index++;
        const s = checkNesting(() => JsonSpan.safeParse(candidate));
        if (s === undefined) {
          out.rejected.push({ index: i, reason: `span ${i}: attribute values nested too deeply` });
          continue;
        }
        if (!s.success) {
          out.rejected.push({ index: i, reason: `span ${i}: ${issuesText(s.error)}` });
          continue;
        }
        const span = s.data;
        const statusCode = typeof span.status?.code === "string" ? (STATUS_NAMES[span.status.code] ?? 0) : (span.status?.code ?? 0);
        const kind = typeof span.kind === "string" ? (KIND_NAMES[span.kind] ?? 0) : (span.kind ?? 0);
        accept(
          {
            traceId: (span.traceId ?? "").toLowerCase(),
            spanId: (span.spanId ?? "").toLowerCase(),
            parentSpanId: (span.parentSpanId ?? "").toLowerCase(),
            name: span.name ?? "",
            kind,
            startTimeUnixNano: BigInt(span.startTimeUnixNano ?? 0),
            endTimeUnixNano: BigInt(span.endTimeUnixNano ?? 0),
            attributes: jsonAttributes(span.attributes),
            resource,
            scope,
            links: (span.links ?? []).map((l) => ({ traceId: (l.traceId ?? "").toLowerCase(), spanId: (l.spanId ?? "").toLowerCase() })),
            status: { code: statusCode, ...(span.status?.message ? { message: span.status.message } : {}) },
          },
          i,
          out,
        );
      }
    }
  }
  return out;
}

// ---- shared -------------------------------------------------------------------------

function accept(raw: Omit<OtlpSpan, "parentSpanId"> & { parentSpanId: string }, index: number, out: DecodedTraces): void {
  const problem = spanIdProblem(raw.traceId, raw.spanId, raw.parentSpanId, index);
  if (problem) {
    out.rejected.push({ index, reason: problem });
    return;
  }
  const { parentSpanId, ...rest } = raw;
  out.spans.push({
    ...rest,
    links: raw.links.filter(validLink),
    ...(parentSpanId ? { parentSpanId } : {}),
  });
}

/** Picks the encoding from the content type, else from the bytes (OTLP JSON starts with `{`). */
export function detectEncoding(bytes: Uint8Array, contentType?: string): OtlpEncoding {
  const ct = contentType?.toLowerCase() ?? "";
  if (ct.includes("json")) return "json";
  if (ct.includes("protobuf")) return "protobuf";
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  if (bytes[i] !== 0x7b) return "protobuf";
  if (bytes[0] !== 0x0a) return "json";
  // A protobuf request starts with 0x0a (field 1) too, then a length that may read as blank
  // or `{` (a first ResourceSpans of 123 bytes gives 0x0a 0x7b): only a parse tells them apart.
  try {
    JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
    return "json";
  } catch {
    return "protobuf";
  }
}

export function decodeTraces(bytes: Uint8Array, encoding: OtlpEncoding): DecodedTraces {
  return encoding === "json" ? decodeJson(bytes) : decodeProtobuf(bytes);
}

/** An ExportTraceServiceResponse, with partial success when spans were rejected. */
export function encodeExportResponse(encoding: OtlpEncoding, rejected: number, message: string): Buffer {
  const partial = rejected > 0 ? { rejected_spans: rejected, error_message: message } : undefined;
  if (encoding === "json") {
    return Buffer.from(JSON.stringify(partial ? { partialSuccess: { rejectedSpans: String(rejected), errorMessage: message } } : {}));
  }
  return Buffer.from(ResponseType.encode(ResponseType.create(partial ? { partial_success: partial } : {})).finish());
}
