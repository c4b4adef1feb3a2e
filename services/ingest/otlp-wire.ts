import protobuf from "protobufjs";
import type { Attributes, AttributeValue } from "../../schemas/action.js";
import {
  byteIdsOk,
  byteLinkOk,
  type DecodedTraces,
  MAX_DEPTH,
  NESTED_TOO_DEEP,
  OtlpDecodeError,
  type OtlpSpan,
  spanIdProblem,
} from "./otlp-span.js";

/**
 * OTLP ExportTraceServiceRequest protobuf → flat spans, read straight off the wire.
 *
 * The bytes are walked with protobufjs's own Reader (its varint, fixed64, double, bytes
 * and UTF-8 primitives), and the spans are built as the fields go by, without the message
 * objects protobufjs's reflection decoder makes (and the `delete`s its oneof setter does on
 * every attribute value). The result is exactly what the reference decoder
 * (`decodeProtobufReference` in otlp.ts: protobufjs decode, then conversion) gives, and
 * otlp-wire.test.ts checks that on SDK payloads, hand-built ones and thousands of mutations.
 *
 * Protobuf semantics kept from protobufjs:
 * - fields may come in any order; a scalar field seen twice keeps the last value; a message
 *   field seen twice (status, scope, resource, an attribute's value) is merged; repeated
 *   fields append;
 * - in AnyValue's `value` oneof the last member seen wins; the same message member seen
 *   again (array_value twice) merges, i.e. the arrays are concatenated;
 * - a field of unknown number, or of a known number with an unexpected wire type, is
 *   skipped (forward compatibility); groups are skipped with protobufjs's recursion limit;
 * - everything the reference decodes is read and checked the same way, also what ingest
 *   then throws away (events, link and scope attributes, trace_state, schema_url): a
 *   truncated or malformed field anywhere makes the whole request an OtlpDecodeError;
 * - strings are read with `stringVerify`, as protobufjs reads proto3 strings: invalid
 *   UTF-8 is not replaced but rejects the request (OtlpDecodeError).
 *
 * One deliberate difference: an array or kvlist value nested MAX_DEPTH levels deep becomes
 * "[nested too deep]" without its bytes being read (only its length is checked against the
 * enclosing message). The reference parses those bytes before cutting them, so it rejects
 * the whole request when they are malformed or nest past protobufjs's recursion limit (100).
 * Bytes that are thrown away cannot change the spans, and hostile nesting cannot make this
 * decoder recurse deeper than MAX_DEPTH.
 */

type Reader = protobuf.Reader;
type Long = ReturnType<Reader["fixed64"]>;

/*
 * Field tags below are written `(field << 3) | wireType` with literal numbers (wire types:
 * 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32), so one switch on the tag picks the
 * field and checks its wire type at once; a known field number with another wire type
 * falls to `default` and is skipped, as protobufjs does.
 */

const hex = (b: Uint8Array): string => (b as Buffer).toString("hex");

/** A signed int64 attribute: a number when exact, else its decimal string. */
function int64Value(v: Long | number): number | string {
  if (typeof v === "number") return Number.isSafeInteger(v) ? v : BigInt(v).toString();
  // exact whenever the true value is a safe integer; otherwise it rounds past 2^53 and is not one
  const n = v.high * 4294967296 + (v.low >>> 0);
  if (Number.isSafeInteger(n)) return n;
  return BigInt.asIntN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0)).toString();
}

/** An unsigned fixed64 timestamp. */
function uint64(v: Long | number | undefined): bigint {
  if (v === undefined) return 0n;
  if (typeof v === "number") return BigInt(Math.trunc(v));
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

const isMap = (v: AttributeValue | undefined): v is { [key: string]: AttributeValue } =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Attribute keys repeat from span to span: a key whose bytes were decoded before gets the
 * same string back, which spares decoding it and, above all, interning it again when it
 * becomes a property name (the biggest single cost of building the attribute maps).
 * Direct-mapped by a hash of the bytes, so it stays small whatever comes in; a slot holds
 * the last key that hashed there. Only strings stringVerify returned are kept, and equal
 * bytes decode to an equal string, so a hit is exactly what decoding would give.
 */
const KEY_CACHE_BITS = 12;
const MAX_CACHED_KEY_BYTES = 64;
const keyCacheBytes: (Uint8Array | undefined)[] = new Array(1 << KEY_CACHE_BITS).fill(undefined);
const keyCacheStrings: string[] = new Array(1 << KEY_CACHE_BITS).fill("");

/** The slot of a key: its length and a few of its bytes (the ends, where attribute names differ), mixed. */
function keySlot(buf: Uint8Array, start: number, length: number): number {
  const end = start + length;
  let h = Math.imul(length, 0x9e3779b1);
  h ^=
    (buf[start] as number) |
    ((buf[start + (length >> 1)] as number) << 8) |
    ((buf[end - 1] as number) << 16) |
    ((buf[end - 2] as number) << 24);
  h ^= (buf[end - 3] as number) | ((buf[end - 4] as number) << 8) | ((buf[start + 1] as number) << 16);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> (32 - KEY_CACHE_BITS);
}

function sameBytes(a: Uint8Array, buf: Uint8Array, start: number): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== buf[start + i]) return false;
  return true;
}

const PENDING_SCOPE: OtlpSpan["scope"] = Object.freeze({ name: "" });

/**
 * One request's walk. Each method reads one message: it takes the length prefix, narrows
 * the reader to that message (as protobufjs does, so no read can run past its end), reads
 * its fields and restores the outer limit. `q` is protobufjs's nesting depth of the
 * message (request 0, ResourceSpans 1, ...), passed on to skipType for groups.
 */
class WireDecoder {
  private index = 0;
  // the message fields that may be merged across several occurrences
  private scopeName = "";
  private scopeVersion = "";
  private statusCode = 0;
  private statusMessage = "";

  constructor(
    private readonly r: Reader,
    private readonly out: DecodedTraces,
  ) {}

  private enter(): number {
    const r = this.r;
    const end = r.size() + r.pos;
    if (end > r.len) throw new RangeError("index out of range");
    const outer = r.len;
    r.len = end;
    return outer;
  }

  private leave(outer: number): void {
    const r = this.r;
    if (r.pos !== r.len) throw new RangeError("index out of range");
    r.len = outer;
  }

  private skip(tag: number, q: number): void {
    this.r.skipType(tag & 7, q, tag >>> 3);
  }

  /** ExportTraceServiceRequest (q 0), the whole buffer. */
  request(): void {
    const r = this.r;
    while (r.pos < r.len) {
      const tag = r.tag();
      if (tag === ((1 << 3) | 2)) this.resourceSpans();
      else this.skip(tag, 0);
    }
  }

  /** ResourceSpans (q 1). Its spans share one resource object, filled in wherever the resource comes. */
  private resourceSpans(): void {
    const r = this.r;
    const outer = this.enter();
    const resource: Attributes = {};
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2: // resource
          this.resource(resource);
          break;
        case (2 << 3) | 2: // scope_spans
          this.scopeSpans(resource);
          break;
        case (3 << 3) | 2: // schema_url
          r.stringVerify();
          break;
        default:
          this.skip(tag, 1);
      }
    }
    this.leave(outer);
  }

  /** Resource (q 2). */
  private resource(into: Attributes): void {
    const r = this.r;
    const outer = this.enter();
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2: // attributes
          this.keyValue(into, 0, 3);
          break;
        case (2 << 3) | 0: // dropped_attributes_count
          r.uint32();
          break;
        default:
          this.skip(tag, 2);
      }
    }
    this.leave(outer);
  }

  /** ScopeSpans (q 2). The scope may come after the spans: they get it at the end. */
  private scopeSpans(resource: Attributes): void {
    const r = this.r;
    const outer = this.enter();
    const first = this.out.spans.length;
    this.scopeName = "";
    this.scopeVersion = "";
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2: // scope
          this.scope();
          break;
        case (2 << 3) | 2: // spans
          this.span(resource);
          break;
        case (3 << 3) | 2: // schema_url
          r.stringVerify();
          break;
        default:
          this.skip(tag, 2);
      }
    }
    this.leave(outer);
    const scope = this.scopeVersion ? { name: this.scopeName, version: this.scopeVersion } : { name: this.scopeName };
    const spans = this.out.spans;
    for (let i = first; i < spans.length; i++) (spans[i] as OtlpSpan).scope = scope;
  }

  /** InstrumentationScope (q 3): name and version; its attributes are checked, not kept. */
  private scope(): void {
    const r = this.r;
    const outer = this.enter();
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2: // name
          this.scopeName = r.stringVerify();
          break;
        case (2 << 3) | 2: // version
          this.scopeVersion = r.stringVerify();
          break;
        case (3 << 3) | 2: // attributes
          this.keyValue({}, 0, 4);
          break;
        case (4 << 3) | 0: // dropped_attributes_count
          r.uint32();
          break;
        default:
          this.skip(tag, 3);
      }
    }
    this.leave(outer);
  }

  /** Span (q 3): built, then accepted or rejected by its ids. */
  private span(resource: Attributes): void {
    const r = this.r;
    const outer = this.enter();
    let traceId = "";
    let spanId = "";
    let parentSpanId = "";
    let name = "";
    let kind = 0;
    let start: Long | undefined;
    let end: Long | undefined;
    const attributes: Attributes = {};
    const links: OtlpSpan["links"] = [];
    this.statusCode = 0;
    this.statusMessage = "";
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2: // trace_id
          traceId = hex(r.bytes());
          break;
        case (2 << 3) | 2: // span_id
          spanId = hex(r.bytes());
          break;
        case (3 << 3) | 2: // trace_state
          r.stringVerify();
          break;
        case (4 << 3) | 2: // parent_span_id
          parentSpanId = hex(r.bytes());
          break;
        case (5 << 3) | 2: // name
          name = r.stringVerify();
          break;
        case (6 << 3) | 0: // kind
          kind = r.int32();
          break;
        case (7 << 3) | 1: // start_time_unix_nano
          start = r.fixed64();
          break;
        case (8 << 3) | 1: // end_time_unix_nano
          end = r.fixed64();
          break;
        case (9 << 3) | 2: // attributes
          this.keyValue(attributes, 0, 4);
          break;
        case (10 << 3) | 0: // dropped_attributes_count
        case (12 << 3) | 0: // dropped_events_count
        case (14 << 3) | 0: // dropped_links_count
          r.uint32();
          break;
        case (11 << 3) | 2: // events
          this.event();
          break;
        case (13 << 3) | 2: // links
          this.link(links);
          break;
        case (15 << 3) | 2: // status
          this.status();
          break;
        case (16 << 3) | 5: // flags
          r.fixed32();
          break;
        default:
          this.skip(tag, 3);
      }
    }
    this.leave(outer);

    const index = this.index++;
    const problem = byteIdsOk(traceId, spanId, parentSpanId) ? undefined : spanIdProblem(traceId, spanId, parentSpanId, index);
    if (problem) {
      this.out.rejected.push({ index, reason: problem });
      return;
    }
    const span: OtlpSpan = {
      traceId,
      spanId,
      name,
      kind,
      startTimeUnixNano: uint64(start),
      endTimeUnixNano: uint64(end),
      attributes,
      resource,
      scope: PENDING_SCOPE,
      links,
      status: this.statusMessage ? { code: this.statusCode, message: this.statusMessage } : { code: this.statusCode },
    };
    if (parentSpanId) span.parentSpanId = parentSpanId;
    this.out.spans.push(span);
  }

  /** Status (q 4). */
  private status(): void {
    const r = this.r;
    const outer = this.enter();
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (2 << 3) | 2: // message
          this.statusMessage = r.stringVerify();
          break;
        case (3 << 3) | 0: // code
          this.statusCode = r.int32();
          break;
        default:
          this.skip(tag, 4);
      }
    }
    this.leave(outer);
  }

  /** Span.Link (q 4): kept when both ids are well formed. */
  private link(into: OtlpSpan["links"]): void {
    const r = this.r;
    const outer = this.enter();
    let traceId = "";
    let spanId = "";
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2: // trace_id
          traceId = hex(r.bytes());
          break;
        case (2 << 3) | 2: // span_id
          spanId = hex(r.bytes());
          break;
        case (3 << 3) | 2: // trace_state
          r.stringVerify();
          break;
        case (4 << 3) | 2: // attributes
          this.keyValue({}, 0, 5);
          break;
        case (5 << 3) | 0: // dropped_attributes_count
          r.uint32();
          break;
        case (6 << 3) | 5: // flags
          r.fixed32();
          break;
        default:
          this.skip(tag, 4);
      }
    }
    this.leave(outer);
    if (byteLinkOk(traceId, spanId)) into.push({ traceId, spanId });
  }

  /** Span.Event (q 4): checked, not kept. */
  private event(): void {
    const r = this.r;
    const outer = this.enter();
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (1 << 3) | 1: // time_unix_nano
          r.fixed64();
          break;
        case (2 << 3) | 2: // name
          r.stringVerify();
          break;
        case (3 << 3) | 2: // attributes
          this.keyValue({}, 0, 5);
          break;
        case (4 << 3) | 0: // dropped_attributes_count
          r.uint32();
          break;
        default:
          this.skip(tag, 4);
      }
    }
    this.leave(outer);
  }

  /** An attribute key: stringVerify, through the key cache. */
  private key(): string {
    const r = this.r;
    const at = r.pos;
    const length = r.size();
    const start = r.pos;
    const end = start + length;
    if (length < 4 || length > MAX_CACHED_KEY_BYTES || end > r.len) {
      r.pos = at;
      return r.stringVerify();
    }
    const slot = keySlot(r.buf, start, length);
    const cached = keyCacheBytes[slot];
    if (cached !== undefined && cached.length === length && sameBytes(cached, r.buf, start)) {
      r.pos = end;
      return keyCacheStrings[slot] as string;
    }
    r.pos = at;
    const key = r.stringVerify();
    keyCacheBytes[slot] = new Uint8Array(r.buf.subarray(start, end)); // a copy: Buffer#slice would be a view on the message
    keyCacheStrings[slot] = key;
    return key;
  }

  /** KeyValue (q): sets `into[key]`; a missing value is null, a value sent twice is merged. */
  private keyValue(into: Attributes, depth: number, q: number): void {
    const r = this.r;
    const outer = this.enter();
    let key = "";
    let value: AttributeValue | undefined;
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2: // key
          key = this.key();
          break;
        case (2 << 3) | 2: // value
          value = this.anyValue(depth, q + 1, value);
          break;
        default:
          this.skip(tag, q);
      }
    }
    this.leave(outer);
    // "__proto__" would replace the map's prototype rather than add a key: dropped
    if (key !== "__proto__") into[key] = value === undefined ? null : value;
  }

  /**
   * AnyValue (q) at attribute nesting `depth`, merged into `prev` (the value so far when
   * the field came before): the last oneof member wins, array_value and kvlist_value
   * extend the array or map a previous same member left. At MAX_DEPTH an array or map is
   * cut unread, and a value with no member is cut too (as the reference does).
   */
  private anyValue(depth: number, q: number, prev: AttributeValue | undefined): AttributeValue {
    const r = this.r;
    const outer = this.enter();
    const deep = depth >= MAX_DEPTH;
    let value: AttributeValue = prev !== undefined ? prev : deep ? NESTED_TOO_DEEP : null;
    while (r.pos < r.len) {
      const tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2: // string_value
          value = r.stringVerify();
          break;
        case (2 << 3) | 0: // bool_value
          value = r.bool();
          break;
        case (3 << 3) | 0: // int_value
          value = int64Value(r.int64());
          break;
        case (4 << 3) | 1: {
          // double_value: NaN and ±Infinity are not JSON numbers, kept as their names as OTLP/JSON writes them
          const d = r.double();
          value = Number.isFinite(d) ? d : String(d);
          break;
        }
        case (5 << 3) | 2: // array_value
          if (deep) {
            r.skip(r.size());
            value = NESTED_TOO_DEEP;
          } else {
            const values = Array.isArray(value) ? value : [];
            this.arrayValue(values, depth + 1, q + 1);
            value = values;
          }
          break;
        case (6 << 3) | 2: // kvlist_value
          if (deep) {
            r.skip(r.size());
            value = NESTED_TOO_DEEP;
          } else {
            const map = isMap(value) ? value : {};
            this.keyValueList(map, depth + 1, q + 1);
            value = map;
          }
          break;
        case (7 << 3) | 2: // bytes_value
          value = (r.bytes() as Buffer).toString("base64");
          break;
        default:
          this.skip(tag, q);
      }
    }
    this.leave(outer);
    return value;
  }

  /** ArrayValue (q): its values, at nesting `depth`, appended to `into`. */
  private arrayValue(into: AttributeValue[], depth: number, q: number): void {
    const r = this.r;
    const outer = this.enter();
    while (r.pos < r.len) {
      const tag = r.tag();
      if (tag === ((1 << 3) | 2)) into.push(this.anyValue(depth, q + 1, undefined));
      else this.skip(tag, q);
    }
    this.leave(outer);
  }

  /** KeyValueList (q): its entries, at nesting `depth`, set on `into`. */
  private keyValueList(into: Attributes, depth: number, q: number): void {
    const r = this.r;
    const outer = this.enter();
    while (r.pos < r.len) {
      const tag = r.tag();
      if (tag === ((1 << 3) | 2)) this.keyValue(into, depth, q + 1);
      else this.skip(tag, q);
    }
    this.leave(outer);
  }
}

/** Decodes an OTLP ExportTraceServiceRequest from protobuf bytes; structural damage throws OtlpDecodeError. */
export function decodeProtobufWire(bytes: Uint8Array): DecodedTraces {
  // a Buffer (a view, not a copy) gets protobufjs's BufferReader, whose bytes() are Buffers
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: DecodedTraces = { spans: [], rejected: [] };
  try {
    new WireDecoder(protobuf.Reader.create(buffer), out).request();
  } catch (err) {
    // the Reader's RangeErrors (truncation), Errors (bad tags, wire types) and TypeErrors (invalid UTF-8)
    throw new OtlpDecodeError(`malformed OTLP protobuf: ${(err as Error).message}`);
  }
  return out;
}
