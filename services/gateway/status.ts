import protobuf from "protobufjs";
import type { OtlpEncoding } from "../ingest/otlp.js";

/**
 * The body of every OTLP/HTTP 4xx and 5xx answer: a google.rpc.Status (OTLP specification,
 * "OTLP/HTTP Response", Failures), binary protobuf for protobuf requests and its JSON form
 * for JSON ones. `code` carries the HTTP status (clients are not expected to act on it);
 * `details` is left out.
 */
const Status = protobuf
  .parse(`syntax = "proto3"; package google.rpc; message Status { int32 code = 1; string message = 2; }`, { keepCase: true })
  .root.lookupType("google.rpc.Status");

export const STATUS_CONTENT_TYPE = { protobuf: "application/x-protobuf", json: "application/json" } as const;

export function encodeStatus(encoding: OtlpEncoding, code: number, message: string): Buffer {
  if (encoding === "json") return Buffer.from(JSON.stringify({ code, message }));
  return Buffer.from(Status.encode(Status.create({ code, message })).finish());
}

/** A Status from an answer's body (for tests and the fuzz harness). */
export function decodeStatus(encoding: OtlpEncoding, body: Uint8Array): { code: number; message: string } {
  if (encoding === "json") return JSON.parse(Buffer.from(body).toString("utf8")) as { code: number; message: string };
  const s = Status.toObject(Status.decode(body), { defaults: true }) as { code: number; message: string };
  return { code: s.code, message: s.message };
}
