import protobuf from "protobufjs";
import { MAX_DEPTH, NESTED_TOO_DEEP, OtlpDecodeError } from "./otlp-span.js";
import { PAYLOAD_ATTRIBUTES, REDACTED, type Redactor } from "./redaction.js";

/**
 * Redaction of a whole OTLP trace export request, in its own encoding, so that what is
 * published on `otlp_spans` is still an OTLP request as a Collector's Kafka exporter writes
 * it, only without the values the redaction policy names:
 *
 * - every attribute list (resource, scope, span, span event, span link) loses the values of
 *   keys the policy's `attributes` patterns match: they become the string "[redacted]";
 * - tool arguments and results (`gen_ai.tool.call.arguments` / `.result`) lose the values
 *   of the policy's `argumentKeys` inside them, at any depth: in JSON text (re-serialised),
 *   and in kvlist and array values (where a value nested MAX_DEPTH deep becomes
 *   "[nested too deep]", which is all ingest ever reads of it).
 *
 * Protobuf is rewritten on the wire: only the messages on the way to a changed value are
 * re-encoded (new lengths), every other byte is copied as it came, unknown fields included.
 * JSON is parsed, changed and serialised again. A request with nothing to redact comes back
 * as the same Buffer; the policy's key names not occurring anywhere in the bytes is checked
 * first, so most requests cost one search over their bytes.
 *
 * The bytes must have decoded (the gateway decodes first); damage found anyway is an
 * OtlpDecodeError.
 */
export function redactRequest(body: Buffer, encoding: "protobuf" | "json", redactor: Redactor): Buffer {
  if (!redactor.active) return body;
  if (redactor.namedAt(body.toString("latin1")) < 0) return body;
  try {
    if (encoding === "json") return redactJson(body, redactor);
    const out = rewrite(body, 0, body.length, REQUEST, redactor, 0);
    return out ? Buffer.concat(out.chunks, out.length) : body;
  } catch (err) {
    if (err instanceof OtlpDecodeError) throw err;
    throw new OtlpDecodeError(`malformed OTLP ${encoding === "json" ? "JSON" : "protobuf"}: ${(err as Error).message}`);
  }
}

// ---- protobuf ---------------------------------------------------------------------------

/**
 * A rewritten message as the pieces it is made of (copied ranges of the request, new
 * encodings) and their total length: pieces are assembled once, at the top, not copied
 * again at every level of nesting.
 */
interface Piece {
  chunks: Uint8Array[];
  length: number;
}

/** How a length-delimited field's bytes (`buf[start, end)`) are rewritten: undefined when they stay as they are. */
type Rewriter = (buf: Buffer, start: number, end: number, redactor: Redactor, depth: number) => Piece | undefined;
type MessageShape = Readonly<Record<number, Rewriter>>;

const truncated = () => new OtlpDecodeError("malformed OTLP protobuf: a field runs past the end of its message");

/** A position in one message (`buf[pos, end)`), read field by field (varints as protobufjs reads them). */
class Cursor {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw truncated();
      const b = this.buf[this.pos++] as number;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
    // a 64-bit varint (a scalar field's value): its remaining bytes
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.end) throw truncated();
      if ((this.buf[this.pos++] as number) < 0x80) return value;
    }
    throw new OtlpDecodeError("malformed OTLP protobuf: a varint longer than 10 bytes");
  }

  /** The end of a length-delimited field whose length is next. */
  lengthEnd(): number {
    const length = this.varint(); // read before pos: `pos + varint()` would add to the old pos
    const end = this.pos + length;
    if (end > this.end) throw truncated();
    return end;
  }

  /** Steps over a field's value; groups (wire types 3 and 4) as protobufjs skips them. */
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.pos = this.lengthEnd();
    else if (wireType === 5) this.pos += 4;
    else {
      const reader = protobuf.Reader.create(this.buf.subarray(0, this.end));
      reader.pos = this.pos;
      reader.skipType(wireType);
      this.pos = reader.pos;
    }
    if (this.pos > this.end) throw truncated();
  }
}

/** Writes `n` as a varint at `at`; returns the position after it. */
function putVarint(into: Buffer, at: number, n: number): number {
  let v = n;
  while (v > 0x7f) {
    into[at++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  into[at++] = v;
  return at;
}

/** Field `fieldNo` (length-delimited) holding `piece`, as a piece. */
function field(fieldNo: number, piece: Piece): Piece {
  const head = Buffer.allocUnsafe(10);
  const n = putVarint(head, putVarint(head, 0, (fieldNo << 3) | 2), piece.length);
  piece.chunks.unshift(head.subarray(0, n));
  piece.length += n;
  return piece;
}

const bytesPiece = (b: Uint8Array): Piece => ({ chunks: [b], length: b.length });

const STRING_VALUE = 1;
const ARRAY_VALUE = 5;
const KVLIST_VALUE = 6;

/** An AnyValue holding only the string `s`. */
const stringValue = (s: string): Piece => field(STRING_VALUE, bytesPiece(Buffer.from(s, "utf8")));

/** A KeyValue with `key` and the string value `s`. */
function keyValue(key: string, s: string): Piece {
  const k = field(1, bytesPiece(Buffer.from(key, "utf8")));
  const v = field(2, stringValue(s));
  k.chunks.push(...v.chunks);
  k.length += v.length;
  return k;
}

/** A message of `buf` re-assembled from the ranges kept as they are and the fields replaced. */
class Splice {
  private out: Piece | undefined;

  constructor(
    private readonly buf: Buffer,
    private copyFrom: number,
  ) {}

  /** The field at `buf[fieldStart, fieldEnd)` is `replacement` instead. */
  replace(fieldStart: number, fieldEnd: number, replacement: Piece): void {
    this.out ??= { chunks: [], length: 0 };
    const kept = this.buf.subarray(this.copyFrom, fieldStart);
    this.out.chunks.push(kept, ...replacement.chunks);
    this.out.length += kept.length + replacement.length;
    this.copyFrom = fieldEnd;
  }

  /** The message up to `end`, re-assembled; undefined when no field was replaced. */
  done(end: number): Piece | undefined {
    if (!this.out) return undefined;
    const rest = this.buf.subarray(this.copyFrom, end);
    this.out.chunks.push(rest);
    this.out.length += rest.length;
    return this.out;
  }
}

/**
 * Walks a message's fields; the length-delimited ones named in `shape` are handed to their
 * rewriter. Returns the message re-assembled when some field changed, else undefined.
 */
function rewrite(buf: Buffer, start: number, end: number, shape: MessageShape, redactor: Redactor, depth: number): Piece | undefined {
  const c = new Cursor(buf, start, end);
  const out = new Splice(buf, start);
  while (!c.done) {
    const fieldStart = c.pos;
    const tag = c.varint();
    const wireType = tag & 7;
    const handler = wireType === 2 ? shape[tag >>> 3] : undefined;
    if (!handler) {
      c.skip(wireType);
      continue;
    }
    const fieldEnd = c.lengthEnd();
    const replaced = handler(buf, c.pos, fieldEnd, redactor, depth);
    c.pos = fieldEnd;
    if (replaced !== undefined) out.replace(fieldStart, fieldEnd, field(tag >>> 3, replaced));
  }
  return out.done(end);
}

/** The key of a KeyValue (the last one, as protobuf reads a repeated scalar). */
function keyOf(buf: Buffer, start: number, end: number): string {
  const c = new Cursor(buf, start, end);
  let key = "";
  while (!c.done) {
    const tag = c.varint();
    if (tag !== ((1 << 3) | 2)) {
      c.skip(tag & 7);
      continue;
    }
    const keyEnd = c.lengthEnd();
    key = buf.toString("utf8", c.pos, keyEnd);
    c.pos = keyEnd;
  }
  return key;
}

/** An attribute (a KeyValue of an attribute list): its value redacted, or its payload's keys. */
const attribute: Rewriter = (buf, start, end, redactor) => {
  const key = keyOf(buf, start, end);
  if (redactor.attributeKey(key)) return keyValue(key, REDACTED);
  if (PAYLOAD_ATTRIBUTES.has(key)) return rewrite(buf, start, end, PAYLOAD_ENTRY, redactor, 0);
  return undefined;
};

/** An AnyValue inside a tool payload: JSON text redacted, kvlists and arrays walked. */
const payloadValue: Rewriter = (buf, start, end, redactor, depth) => {
  const c = new Cursor(buf, start, end);
  const out = new Splice(buf, start);
  while (!c.done) {
    const fieldStart = c.pos;
    const tag = c.varint();
    const fieldNo = tag >>> 3;
    if ((tag & 7) !== 2 || (fieldNo !== STRING_VALUE && fieldNo !== ARRAY_VALUE && fieldNo !== KVLIST_VALUE)) {
      c.skip(tag & 7);
      continue;
    }
    const fieldEnd = c.lengthEnd();
    const valueStart = c.pos;
    c.pos = fieldEnd;
    let replacement: Piece | undefined;
    if (fieldNo === STRING_VALUE) {
      // only the payload's own text is JSON to ingest; strings inside kvlists are values
      if (depth > 0) continue;
      const text = buf.toString("utf8", valueStart, fieldEnd);
      const redacted = redactor.payloadText(text);
      if (redacted !== text) replacement = stringValue(redacted);
    } else if (depth >= MAX_DEPTH) {
      // what the decoders make of it; its bytes (keys included) never reach the bus
      replacement = stringValue(NESTED_TOO_DEEP);
    } else {
      const inner = rewrite(buf, valueStart, fieldEnd, fieldNo === KVLIST_VALUE ? PAYLOAD_KVLIST : PAYLOAD_ARRAY, redactor, depth + 1);
      if (inner !== undefined) replacement = field(fieldNo, inner);
    }
    if (replacement !== undefined) out.replace(fieldStart, fieldEnd, replacement);
  }
  return out.done(end);
};

/** A KeyValue inside a payload kvlist: a payload key's value redacted, else the value walked. */
const payloadEntry: Rewriter = (buf, start, end, redactor, depth) => {
  const key = keyOf(buf, start, end);
  if (redactor.payloadKey(key)) return keyValue(key, REDACTED);
  return rewrite(buf, start, end, PAYLOAD_ENTRY, redactor, depth);
};

/** A KeyValue whose value (field 2) is a payload's, or part of one. */
const PAYLOAD_ENTRY: MessageShape = { 2: payloadValue };
const PAYLOAD_KVLIST: MessageShape = { 1: payloadEntry };
const PAYLOAD_ARRAY: MessageShape = { 1: payloadValue };

const nested =
  (shape: MessageShape): Rewriter =>
  (buf, start, end, redactor, depth) =>
    rewrite(buf, start, end, shape, redactor, depth);

const EVENT: MessageShape = { 3: attribute };
const LINK: MessageShape = { 4: attribute };
const SPAN: MessageShape = { 9: attribute, 11: nested(EVENT), 13: nested(LINK) };
const SCOPE: MessageShape = { 3: attribute };
const SCOPE_SPANS: MessageShape = { 1: nested(SCOPE), 2: nested(SPAN) };
const RESOURCE: MessageShape = { 1: attribute };
const RESOURCE_SPANS: MessageShape = { 1: nested(RESOURCE), 2: nested(SCOPE_SPANS) };
const REQUEST: MessageShape = { 1: nested(RESOURCE_SPANS) };

// ---- JSON -------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObject = (v: Json | undefined): v is { [k: string]: Json } => typeof v === "object" && v !== null && !Array.isArray(v);
const list = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);

function redactJson(body: Buffer, redactor: Redactor): Buffer {
  const doc = JSON.parse(body.toString("utf8")) as Json;
  let changed = false;
  const attributes = (owner: Json | undefined) => {
    if (!isObject(owner)) return;
    for (const kv of list(owner.attributes)) if (isObject(kv) && jsonAttribute(kv, redactor)) changed = true;
  };
  if (!isObject(doc)) return body;
  for (const rs of list(doc.resourceSpans)) {
    if (!isObject(rs)) continue;
    attributes(rs.resource);
    for (const ss of list(rs.scopeSpans)) {
      if (!isObject(ss)) continue;
      attributes(ss.scope);
      for (const span of list(ss.spans)) {
        attributes(span);
        if (!isObject(span)) continue;
        for (const e of list(span.events)) attributes(e);
        for (const l of list(span.links)) attributes(l);
      }
    }
  }
  return changed ? Buffer.from(JSON.stringify(doc)) : body;
}

/** Redacts one `{key, value}` of an attribute list in place; true when it changed. */
function jsonAttribute(kv: { [k: string]: Json }, redactor: Redactor): boolean {
  const key = typeof kv.key === "string" ? kv.key : "";
  if (redactor.attributeKey(key)) {
    kv.value = { stringValue: REDACTED };
    return true;
  }
  if (PAYLOAD_ATTRIBUTES.has(key)) return jsonPayload(kv, redactor, 0);
  return false;
}

/** Redacts the AnyValue in `holder.value` of a payload in place; true when it changed. */
function jsonPayload(holder: { [k: string]: Json }, redactor: Redactor, depth: number): boolean {
  const v = holder.value;
  if (!isObject(v)) return false;
  let changed = false;
  if (typeof v.stringValue === "string" && depth === 0) {
    const redacted = redactor.payloadText(v.stringValue);
    if (redacted !== v.stringValue) {
      v.stringValue = redacted;
      changed = true;
    }
  }
  for (const member of ["kvlistValue", "arrayValue"] as const) {
    const inner = v[member];
    if (!isObject(inner)) continue;
    if (depth >= MAX_DEPTH) {
      holder.value = { stringValue: NESTED_TOO_DEEP };
      return true;
    }
    const items = list(inner.values);
    items.forEach((item, i) => {
      if (!isObject(item)) return;
      if (member === "kvlistValue") {
        const key = typeof item.key === "string" ? item.key : "";
        if (redactor.payloadKey(key)) {
          item.value = { stringValue: REDACTED };
          changed = true;
        } else if (jsonPayload(item, redactor, depth + 1)) changed = true;
        return;
      }
      const slot: { [k: string]: Json } = { value: item };
      if (jsonPayload(slot, redactor, depth + 1)) {
        items[i] = slot.value as Json;
        changed = true;
      }
    });
  }
  return changed;
}
