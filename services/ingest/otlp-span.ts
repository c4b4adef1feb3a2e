import type { Attributes } from "../../schemas/action.js";

/**
 * What the OTLP decoders (otlp.ts: JSON and reference protobuf; otlp-wire.ts: protobuf)
 * share: the flat span they yield, the error they throw, the nesting cut and the id rules.
 */
export class OtlpDecodeError extends Error {
  override name = "OtlpDecodeError";
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  resource: Attributes;
  scope: { name: string; version?: string };
  links: { traceId: string; spanId: string }[];
  status: { code: number; message?: string };
}

export interface RejectedSpan {
  index: number;
  reason: string;
}

export interface DecodedTraces {
  spans: OtlpSpan[];
  rejected: RejectedSpan[];
}

/** Nested values deeper than this are cut (hostile nesting must not blow the stack downstream). */
export const MAX_DEPTH = 8;
/** What a value nested deeper than MAX_DEPTH becomes. */
export const NESTED_TOO_DEEP = "[nested too deep]";

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** Why a span's ids (lowercase hex) make it unusable, or undefined when they are fine. */
export function spanIdProblem(traceId: string, spanId: string, parentSpanId: string, index: number): string | undefined {
  if (!TRACE_ID.test(traceId) || traceId === ZERO_TRACE) {
    return `span ${index}: trace id must be 16 non-zero bytes (got "${traceId.slice(0, 40)}")`;
  }
  if (!SPAN_ID.test(spanId) || spanId === ZERO_SPAN)
    return `span ${index}: span id must be 8 non-zero bytes (got "${spanId.slice(0, 40)}")`;
  if (parentSpanId !== "" && !SPAN_ID.test(parentSpanId)) return `span ${index}: parent span id must be 8 bytes or empty`;
  return undefined;
}

/**
 * spanIdProblem's verdict for ids hex-encoded from protobuf bytes: those are lowercase hex
 * by construction, so only their lengths and all-zero ids can be wrong (no regex needed).
 */
export const byteIdsOk = (traceId: string, spanId: string, parentSpanId: string): boolean =>
  traceId.length === 32 &&
  traceId !== ZERO_TRACE &&
  spanId.length === 16 &&
  spanId !== ZERO_SPAN &&
  (parentSpanId.length === 0 || parentSpanId.length === 16);

/** A link is kept only when both its ids are well formed (a bad link does not reject its span). */
export const validLink = (l: { traceId: string; spanId: string }): boolean => TRACE_ID.test(l.traceId) && SPAN_ID.test(l.spanId);

/** validLink's verdict for ids hex-encoded from protobuf bytes. */
export const byteLinkOk = (traceId: string, spanId: string): boolean => traceId.length === 32 && spanId.length === 16;
