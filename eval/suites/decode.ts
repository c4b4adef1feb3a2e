/**
 * A minimal reader of OTLP/protobuf trace export requests (only what the set's checks need:
 * span ids, names, times, status and attributes), so that tests can look inside the recordings
 * without any of the project's own ingest code.
 */

export interface DecodedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeMs: number;
  endTimeMs: number;
  statusCode: number;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
}

type Field = { no: number; wire: number; value: bigint | Uint8Array };

function* fields(buf: Uint8Array): Generator<Field> {
  let i = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error("truncated varint");
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  const fixed = (n: number): bigint => {
    let v = 0n;
    for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(buf[i + k] ?? 0);
    i += n;
    return v;
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) yield { no, wire, value: varint() };
    else if (wire === 1) yield { no, wire, value: fixed(8) };
    else if (wire === 5) yield { no, wire, value: fixed(4) };
    else if (wire === 2) {
      const len = Number(varint());
      yield { no, wire, value: buf.subarray(i, i + len) };
      i += len;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function anyValue(buf: Uint8Array): unknown {
  for (const f of fields(buf)) {
    if (f.no === 1) return text(f.value as Uint8Array);
    if (f.no === 2) return f.value === 1n;
    if (f.no === 3) return Number(BigInt.asIntN(64, f.value as bigint));
    if (f.no === 4) return new Float64Array(new BigUint64Array([f.value as bigint]).buffer)[0];
    if (f.no === 5) {
      const out: unknown[] = [];
      for (const g of fields(f.value as Uint8Array)) if (g.no === 1) out.push(anyValue(g.value as Uint8Array));
      return out;
    }
  }
  return null;
}

function attributes(bufs: Uint8Array[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const b of bufs) {
    let key = "";
    let value: unknown = null;
    for (const f of fields(b)) {
      if (f.no === 1) key = text(f.value as Uint8Array);
      if (f.no === 2) value = anyValue(f.value as Uint8Array);
    }
    out[key] = value;
  }
  return out;
}

const bytesOf = (buf: Uint8Array, no: number) => [...fields(buf)].filter((f) => f.no === no).map((f) => f.value as Uint8Array);

/** The spans of one ExportTraceServiceRequest. */
export function decodeTraceRequest(buf: Uint8Array): DecodedSpan[] {
  const out: DecodedSpan[] = [];
  for (const rs of bytesOf(buf, 1)) {
    const resourceBuf = bytesOf(rs, 1)[0];
    const resource = resourceBuf ? attributes(bytesOf(resourceBuf, 1)) : {};
    for (const ss of bytesOf(rs, 2)) {
      for (const sp of bytesOf(ss, 2)) {
        const span: DecodedSpan = {
          traceId: "",
          spanId: "",
          parentSpanId: "",
          name: "",
          kind: 0,
          startTimeMs: 0,
          endTimeMs: 0,
          statusCode: 0,
          attributes: {},
          resource,
        };
        const attrs: Uint8Array[] = [];
        for (const f of fields(sp)) {
          if (f.no === 1) span.traceId = hex(f.value as Uint8Array);
          else if (f.no === 2) span.spanId = hex(f.value as Uint8Array);
          else if (f.no === 4) span.parentSpanId = hex(f.value as Uint8Array);
          else if (f.no === 5) span.name = text(f.value as Uint8Array);
          else if (f.no === 6) span.kind = Number(f.value);
          else if (f.no === 7) span.startTimeMs = Number((f.value as bigint) / 1_000_000n);
          else if (f.no === 8) span.endTimeMs = Number((f.value as bigint) / 1_000_000n);
          else if (f.no === 9) attrs.push(f.value as Uint8Array);
          else if (f.no === 15) for (const g of fields(f.value as Uint8Array)) if (g.no === 3) span.statusCode = Number(g.value);
        }
        span.attributes = attributes(attrs);
        out.push(span);
      }
    }
  }
  return out;
}
