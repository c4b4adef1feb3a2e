import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { type Logger, pino } from "pino";
import protobuf from "protobufjs";
import { Pool } from "undici";
import { DeadLetter } from "../../schemas/deadletter.js";
import { OTLP_TRACE_PROTO } from "../../schemas/otlp/trace-proto.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { type App, type ServiceName, startEmbedded } from "../../services/cli/app.js";
import { decodeStatus } from "../../services/gateway/status.js";
import { loadConfig } from "../../services/runtime/config.js";
import { type AttrValue, hexId, jsonRequest, protobufRequest, type RequestSpec, type SpanSpec } from "./otlp-build.js";

/**
 * Fuzzing OTLP/HTTP against the real gateway and pipeline in one process (the embedded
 * mode, `startEmbedded`): generated payloads, valid, near-valid and hostile, protobuf and
 * JSON, are sent over HTTP and every answer is checked, while the process's RSS is
 * sampled. A fast-check property over batches of payloads sent at once; a violation ends
 * the run with the seed and path that reproduce it.
 *
 * Used by `npm run bench:fuzz` (bench/fuzz.ts: the long run) and by a unit test (a short one).
 */

// ---- payloads -------------------------------------------------------------------------

/** Byte edits of a request (what the ingest fuzz test does to SDK payloads), positions as fractions of its length. */
export type Mutation =
  | { op: "flip"; edits: [number, number][] }
  | { op: "truncate"; at: number }
  | { op: "splice"; at: number; bytes: number[] }
  | { op: "duplicate"; at: number; length: number };

/** Edits of a seed's bytes (shared with services/ingest/ingest.fuzz.test.ts). */
export const mutation = (seed: Uint8Array): fc.Arbitrary<Buffer> =>
  fc.oneof(
    // flip bytes at random positions
    fc.array(fc.tuple(fc.nat({ max: seed.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map((edits) => {
      const b = Buffer.from(seed);
      for (const [i, v] of edits) b[i] = v;
      return b;
    }),
    // truncate
    fc.nat({ max: seed.length - 1 }).map((n) => Buffer.from(seed.subarray(0, n))),
    // splice random bytes in
    fc
      .tuple(fc.nat({ max: seed.length }), fc.uint8Array({ minLength: 1, maxLength: 64 }))
      .map(([at, bytes]) => Buffer.concat([seed.subarray(0, at), bytes, seed.subarray(at)])),
    // duplicate a slice (repeated fields, overlong lengths)
    fc
      .tuple(fc.nat({ max: seed.length - 1 }), fc.nat({ max: 200 }))
      .map(([at, len]) => Buffer.concat([seed.subarray(0, at), seed.subarray(at, at + len), seed.subarray(at)])),
    // pure noise
    fc.uint8Array({ minLength: 0, maxLength: 512 }).map((b) => Buffer.from(b)),
  );

function mutate(bytes: Buffer, m: Mutation): Buffer {
  const at = (f: number) => Math.min(bytes.length, Math.floor(f * bytes.length));
  switch (m.op) {
    case "flip": {
      const b = Buffer.from(bytes);
      for (const [f, v] of m.edits) if (b.length > 0) b[Math.min(b.length - 1, at(f))] = v;
      return b;
    }
    case "truncate":
      return bytes.subarray(0, at(m.at));
    case "splice":
      return Buffer.concat([bytes.subarray(0, at(m.at)), Buffer.from(m.bytes), bytes.subarray(at(m.at))]);
    case "duplicate":
      return Buffer.concat([bytes.subarray(0, at(m.at)), bytes.subarray(at(m.at), at(m.at) + m.length), bytes.subarray(at(m.at))]);
  }
}

/** A span as generated: which task, agent and tool, a few attributes, tool arguments. */
interface GenSpan {
  task: number;
  agent: number;
  tool: number;
  attrs: Record<string, string | number | boolean>;
  args: Record<string, AttrValue> | null;
  argsAsKvlist: boolean;
}

type Encoding = "protobuf" | "json";

/** What to send, described (the bytes are made at send time, with the payload's own secret marker). */
export type PayloadSpec =
  | { kind: "valid"; encoding: Encoding; gzip: boolean; spans: GenSpan[]; secrets: boolean; oneTrace: boolean }
  | { kind: "bad-ids"; encoding: Encoding; spans: GenSpan[]; bad: ("zero-trace" | "short-span" | "zero-span")[] }
  | { kind: "mutated"; encoding: Encoding; spans: GenSpan[]; mutation: Mutation }
  | { kind: "noise"; encoding: Encoding; bytes: number[] }
  | { kind: "huge-value"; encoding: Encoding; chars: number; inArgs: boolean }
  | { kind: "deep"; encoding: Encoding; depth: number }
  | { kind: "many-spans"; encoding: Encoding; count: number; oneTrace: boolean }
  | { kind: "content-type"; contentType: string }
  | { kind: "content-encoding"; encoding: Encoding; value: "br" | "deflate" | "x-bogus" | "gzip-corrupt" | "gzip-bomb" }
  | { kind: "empty"; encoding: Encoding }
  | { kind: "too-large"; encoding: Encoding; bytes: number };

const AGENTS = ["billing-agent", "support-agent", "coding-agent", "unknown-agent"];
const TOOLS = ["invoices.read", "customers.read", "email.send", "shell.exec", "payments.refund"];
const REDACTED_KEYS = ["http.request.header.authorization", "http.request.header.cookie"];

const genSpan: fc.Arbitrary<GenSpan> = fc.record({
  // mostly a task of its own (the flood that filled the store), now and then one of a few longer tasks (a few
  // hundred steps each over a long run: a task of tens of thousands of steps costs the pathfinder per step in
  // proportion to its length, which would be measured instead)
  task: fc.oneof({ weight: 49, arbitrary: fc.nat({ max: 2 ** 31 }) }, { weight: 1, arbitrary: fc.nat({ max: 20 }) }),
  agent: fc.nat({ max: AGENTS.length - 1 }),
  tool: fc.nat({ max: TOOLS.length - 1 }),
  attrs: fc.dictionary(
    fc.constantFrom("data.classification", "server.address", "deployment.environment.name", "note", "count", "ok", "gen_ai.operation.name"),
    fc.oneof(
      fc.constantFrom("internal", "confidential", "prod", "api.example.com", "execute_tool"),
      fc.string({ maxLength: 30 }),
      fc.integer(),
      fc.boolean(),
    ),
    { maxKeys: 4 },
  ),
  args: fc.option(
    fc.dictionary(fc.constantFrom("customer", "to", "amount", "query", "filter"), fc.oneof(fc.string({ maxLength: 20 }), fc.integer()), {
      maxKeys: 3,
    }),
  ),
  argsAsKvlist: fc.boolean(),
});

const encoding = fc.constantFrom<Encoding>("protobuf", "json");

/** A position in a payload, as a fraction of its length (evenly spread: fc.double favours tiny values). */
const fraction = fc.integer({ min: 0, max: 1_000_000 }).map((n) => n / 1_000_000);

const mutationSpec: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    op: fc.constant("flip" as const),
    edits: fc.array(fc.tuple(fraction, fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 }),
  }),
  fc.record({ op: fc.constant("truncate" as const), at: fraction }),
  fc.record({
    op: fc.constant("splice" as const),
    at: fraction,
    bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 64 }),
  }),
  fc.record({ op: fc.constant("duplicate" as const), at: fraction, length: fc.nat({ max: 200 }) }),
);

/** The payload mix: mostly valid and near-valid, some hostile, a few expensive ones. */
export const payloadSpec: fc.Arbitrary<PayloadSpec> = fc.oneof(
  {
    weight: 30,
    arbitrary: fc.record({
      kind: fc.constant("valid" as const),
      encoding,
      gzip: fc.boolean(),
      spans: fc.array(genSpan, { minLength: 1, maxLength: 40 }),
      secrets: fc.boolean(),
      oneTrace: fc.boolean(),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("bad-ids" as const),
      encoding,
      spans: fc.array(genSpan, { minLength: 1, maxLength: 10 }),
      bad: fc.array(fc.constantFrom("zero-trace" as const, "short-span" as const, "zero-span" as const), { minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 30,
    arbitrary: fc.record({
      kind: fc.constant("mutated" as const),
      encoding,
      spans: fc.array(genSpan, { minLength: 1, maxLength: 8 }),
      mutation: mutationSpec,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant("noise" as const), encoding, bytes: fc.array(fc.nat({ max: 255 }), { maxLength: 512 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("huge-value" as const),
      encoding,
      chars: fc.oneof(fc.integer({ min: 10_000, max: 200_000 }), fc.integer({ min: 1_000_000, max: 4_500_000 })),
      inArgs: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("deep" as const),
      encoding,
      depth: fc.oneof(fc.integer({ min: 5, max: 100 }), fc.integer({ min: 1_000, max: 3_000 })),
    }),
  },
  {
    weight: 1,
    // past the per-request caps at their defaults: spans in one trace, or one-span traces
    arbitrary: fc.oneof(
      fc.record({
        kind: fc.constant("many-spans" as const),
        encoding: fc.constant<Encoding>("protobuf"),
        count: fc.integer({ min: 20_001, max: 30_000 }),
        oneTrace: fc.constant(true),
      }),
      fc.record({
        kind: fc.constant("many-spans" as const),
        encoding: fc.constant<Encoding>("protobuf"),
        count: fc.integer({ min: 10_001, max: 15_000 }),
        oneTrace: fc.constant(false),
      }),
    ),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("content-type" as const),
      contentType: fc.constantFrom(
        "text/plain",
        "application/xml",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "image/png",
        "application/grpc",
      ),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("content-encoding" as const),
      encoding,
      value: fc.constantFrom("br" as const, "deflate" as const, "x-bogus" as const, "gzip-corrupt" as const, "gzip-bomb" as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("empty" as const), encoding }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("too-large" as const),
      encoding,
      bytes: fc.integer({ min: 4 * 1024 * 1024 + 1, max: 5 * 1024 * 1024 }),
    }),
  },
);

/** The marker planted under redacted keys: it must never reach the bus. */
export const secretOf = (n: number) => `SECRET-${n}-x`;

function requestSpec(spans: GenSpan[], marker: string | undefined, oneTrace: boolean): RequestSpec {
  const shared = hexId(16);
  return {
    resource: {
      "service.name": "fuzz-agent",
      "spiffe.id": "spiffe://acme.example/agents/fuzz",
      ...(marker ? { "http.request.header.cookie": `session=${marker}` } : {}),
    },
    spans: spans.map((s): SpanSpec => {
      const args = s.args ? { ...s.args, ...(marker ? { password: marker } : {}) } : marker ? { password: marker } : null;
      return {
        traceId: oneTrace ? shared : hexId(16),
        name: `execute_tool ${TOOLS[s.tool]}`,
        attributes: {
          ...s.attrs,
          "agent.task.id": `fuzz-task-${s.task}`,
          "gen_ai.agent.id": AGENTS[s.agent] as string,
          "gen_ai.tool.name": TOOLS[s.tool] as string,
          ...(args ? { "gen_ai.tool.call.arguments": s.argsAsKvlist ? args : JSON.stringify(args) } : {}),
          ...(marker ? { [REDACTED_KEYS[0] as string]: `Bearer ${marker}` } : {}),
        },
      };
    }),
  };
}

const encode = (e: Encoding, spec: RequestSpec) => (e === "json" ? jsonRequest(spec) : protobufRequest(spec));
const CONTENT_TYPE: Record<Encoding, string> = { protobuf: "application/x-protobuf", json: "application/json" };

const Root = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: true }).root;
const AnyValueType = Root.lookupType("otlp.AnyValue");

/** A request with one span whose attribute `deep` is a kvlist nested `depth` levels (built inside out, iteratively). */
function deepRequest(e: Encoding, depth: number): Buffer {
  if (e === "json") {
    const deep = `${'{"kvlistValue":{"values":[{"key":"k","value":'.repeat(depth)}{"stringValue":"x"}${"}]}}".repeat(depth)}`;
    const span = `{"traceId":"${hexId(16)}","spanId":"${hexId(8)}","name":"deep","attributes":[{"key":"deep","value":${deep}}]}`;
    return Buffer.from(`{"resourceSpans":[{"scopeSpans":[{"spans":[${span}]}]}]}`);
  }
  let value = Buffer.from(AnyValueType.encode({ string_value: "x" }).finish());
  for (let i = 0; i < depth; i++) {
    const kv = protobuf.Writer.create().uint32(10).string("k").uint32(18).bytes(value).finish();
    const list = protobuf.Writer.create().uint32(10).bytes(kv).finish();
    value = Buffer.from(protobuf.Writer.create().uint32(50).bytes(list).finish()); // kvlist_value = 6
  }
  const attr = protobuf.Writer.create().uint32(10).string("deep").uint32(18).bytes(value).finish();
  const span = protobuf.Writer.create()
    .uint32(10)
    .bytes(Buffer.from(hexId(16), "hex"))
    .uint32(18)
    .bytes(Buffer.from(hexId(8), "hex"))
    .uint32(42)
    .string("deep")
    .uint32(74)
    .bytes(attr)
    .finish();
  const scopeSpans = protobuf.Writer.create().uint32(18).bytes(span).finish();
  const resourceSpans = protobuf.Writer.create().uint32(18).bytes(scopeSpans).finish();
  return Buffer.from(protobuf.Writer.create().uint32(10).bytes(resourceSpans).finish());
}

const BOMB = gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x0a));

/** The bytes and headers of a payload; `marker` is its own secret. */
export function build(spec: PayloadSpec, marker: string): { body: Buffer; headers: Record<string, string>; encoding: Encoding } {
  switch (spec.kind) {
    case "valid": {
      const body = encode(spec.encoding, requestSpec(spec.spans, spec.secrets ? marker : undefined, spec.oneTrace));
      return spec.gzip
        ? {
            body: gzipSync(body),
            headers: { "content-type": CONTENT_TYPE[spec.encoding], "content-encoding": "gzip" },
            encoding: spec.encoding,
          }
        : { body, headers: { "content-type": CONTENT_TYPE[spec.encoding] }, encoding: spec.encoding };
    }
    case "bad-ids": {
      const rs = requestSpec(spec.spans, marker, false);
      spec.bad.forEach((b, i) => {
        const s = rs.spans[i % rs.spans.length] as SpanSpec;
        if (b === "zero-trace") s.traceId = "0".repeat(32);
        if (b === "zero-span") s.spanId = "0".repeat(16);
        if (b === "short-span") s.spanId = "abcd";
      });
      return { body: encode(spec.encoding, rs), headers: { "content-type": CONTENT_TYPE[spec.encoding] }, encoding: spec.encoding };
    }
    case "mutated": {
      const body = mutate(encode(spec.encoding, requestSpec(spec.spans, marker, false)), spec.mutation);
      return { body, headers: { "content-type": CONTENT_TYPE[spec.encoding] }, encoding: spec.encoding };
    }
    case "noise":
      return { body: Buffer.from(spec.bytes), headers: { "content-type": CONTENT_TYPE[spec.encoding] }, encoding: spec.encoding };
    case "huge-value": {
      const big = "v".repeat(spec.chars);
      const rs = requestSpec([{ task: 1, agent: 0, tool: 0, attrs: {}, args: null, argsAsKvlist: false }], marker, false);
      const span = rs.spans[0] as SpanSpec;
      span.attributes = {
        ...span.attributes,
        ...(spec.inArgs ? { "gen_ai.tool.call.arguments": JSON.stringify({ password: marker, blob: big }) } : { blob: big }),
      };
      return { body: encode(spec.encoding, rs), headers: { "content-type": CONTENT_TYPE[spec.encoding] }, encoding: spec.encoding };
    }
    case "deep":
      return {
        body: deepRequest(spec.encoding, spec.depth),
        headers: { "content-type": CONTENT_TYPE[spec.encoding] },
        encoding: spec.encoding,
      };
    case "many-spans": {
      const trace = hexId(16);
      const spans = Array.from({ length: spec.count }, () => (spec.oneTrace ? { traceId: trace, name: "s" } : { name: "s" }));
      return { body: protobufRequest({ spans }), headers: { "content-type": CONTENT_TYPE.protobuf }, encoding: "protobuf" };
    }
    case "content-type": {
      const body = protobufRequest(
        requestSpec([{ task: 2, agent: 0, tool: 0, attrs: {}, args: null, argsAsKvlist: false }], marker, false),
      );
      return { body, headers: { "content-type": spec.contentType }, encoding: "protobuf" };
    }
    case "content-encoding": {
      const plain = encode(
        spec.encoding,
        requestSpec([{ task: 3, agent: 0, tool: 0, attrs: {}, args: null, argsAsKvlist: false }], marker, false),
      );
      const value = spec.value === "gzip-corrupt" || spec.value === "gzip-bomb" ? "gzip" : spec.value;
      const body =
        spec.value === "gzip-bomb"
          ? BOMB
          : spec.value === "gzip-corrupt"
            ? Buffer.concat([gzipSync(plain).subarray(0, 20), Buffer.from("garbage")])
            : plain;
      return { body, headers: { "content-type": CONTENT_TYPE[spec.encoding], "content-encoding": value }, encoding: spec.encoding };
    }
    case "empty":
      return { body: Buffer.alloc(0), headers: { "content-type": CONTENT_TYPE[spec.encoding] }, encoding: spec.encoding };
    case "too-large":
      return { body: Buffer.alloc(spec.bytes, 0x0a), headers: { "content-type": CONTENT_TYPE[spec.encoding] }, encoding: spec.encoding };
  }
}

/** The answers a payload of this kind may get (besides 429 and 503, which any request may get with Retry-After). */
export function expectedStatuses(spec: PayloadSpec): number[] {
  switch (spec.kind) {
    case "valid":
    case "bad-ids":
      return [200];
    case "mutated":
    case "noise":
      return [200, 400];
    case "huge-value":
      return spec.chars > 4 * 1024 * 1024 - 2_000 ? [200, 413] : [200];
    case "deep":
      return [200, 400];
    case "many-spans":
    case "too-large":
      return [413];
    case "content-type":
      return [415];
    case "content-encoding":
      return spec.value === "gzip-corrupt" ? [400] : spec.value === "gzip-bomb" ? [413] : [415];
    case "empty":
      return [400];
  }
}

// ---- the run ----------------------------------------------------------------------------

export interface FuzzOptions {
  /** Payloads to send in all. */
  payloads: number;
  seed: number;
  /** Payloads sent at once (one fast-check run each batch). */
  concurrency?: number;
  /** `DRIFTWATCH_*` settings for the embedded process (the harness sets ports, policy, logging). */
  env?: Record<string, string>;
  services?: ServiceName[];
  /** A run fails when RSS goes past this many bytes, or grows past the idle baseline by more than `maxRssGrowthBytes`. */
  maxRssBytes?: number;
  maxRssGrowthBytes?: number;
  /** Progress lines (the bench prints them). */
  progress?: (line: string) => void;
  /** Looks at the process once the run settled, before it is closed (diagnosis). */
  inspect?: (app: App) => Promise<void>;
}

export interface FuzzReport {
  payloads: number;
  seconds: number;
  byStatus: Record<string, number>;
  byKind: Record<string, number>;
  /** RSS in bytes: idle after start (the baseline), at the start of the run, its peak, and at the end once the pipeline settled. */
  rss: { baseline: number; start: number; peak: number; end: number };
  heapUsedEnd: number;
  spansPublished: number;
  deadLetters: number;
  storeTasks: number;
  evictedTasks: number;
  /** Findings, incidents and revocations the embedded store let go. */
  evictedRecords: number;
  errorLogs: string[];
  /** Time spent making each kind of payload, and waiting for its answer (ms, summed). */
  msByKind: Record<string, { build: number; request: number }>;
  failure?: string;
}

const RESPONSE = Root.lookupType("otlp.ExportTraceServiceResponse");

/** Why an answer is not well formed, or undefined. */
function answerProblem(
  spec: PayloadSpec,
  encoding: Encoding,
  status: number,
  headers: Record<string, unknown>,
  body: Buffer,
): string | undefined {
  const allowed = [...expectedStatuses(spec), 429, 503];
  if (!allowed.includes(status)) return `status ${status}, expected one of ${allowed.join(", ")}`;
  const type = String(headers["content-type"] ?? "");
  const replyEncoding: Encoding = spec.kind === "content-type" ? "protobuf" : encoding;
  if (!type.startsWith(replyEncoding === "json" ? "application/json" : "application/x-protobuf"))
    return `content-type "${type}" for a ${replyEncoding} request`;
  try {
    if (status === 200) {
      if (replyEncoding === "json") {
        const r = JSON.parse(body.toString("utf8")) as { partialSuccess?: { rejectedSpans?: string; errorMessage?: string } };
        if (typeof r !== "object" || r === null) return "200 body is not a JSON object";
        if (r.partialSuccess && !/^\d+$/.test(String(r.partialSuccess.rejectedSpans)))
          return "partialSuccess.rejectedSpans is not an int64 string";
      } else {
        RESPONSE.decode(body);
      }
      return undefined;
    }
    const s = decodeStatus(replyEncoding, body);
    if (s.code !== status || typeof s.message !== "string" || s.message.length === 0) return `Status ${JSON.stringify(s)} for ${status}`;
    if ((status === 429 || status === 503) && !/^[1-9]\d*$/.test(String(headers["retry-after"] ?? "")))
      return `${status} without Retry-After`;
  } catch (err) {
    return `undecodable ${status} body: ${(err as Error).message}`;
  }
  return undefined;
}

/** A logger that counts error-level lines (an unexpected throw in a stage or the gateway logs one). */
function countingLogger(errors: string[]): Logger {
  return pino(
    { level: "error" },
    {
      write(line: string) {
        if (errors.length < 20) errors.push(line.slice(0, 500));
        else errors.push("…");
      },
    },
  );
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function fuzzEmbedded(options: FuzzOptions): Promise<FuzzReport> {
  const concurrency = options.concurrency ?? 8;
  const errorLogs: string[] = [];
  const uncaught: string[] = [];
  const onUncaught = (err: unknown) => uncaught.push(String((err as Error)?.stack ?? err).slice(0, 500));
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);
  const config = loadConfig({
    DRIFTWATCH_OTLP_PORT: "0",
    DRIFTWATCH_API_PORT: "0",
    DRIFTWATCH_POLICY_DIR: "policies",
    DRIFTWATCH_ALERT_STDOUT: "false",
    DRIFTWATCH_LOG_LEVEL: "error",
    ...options.env,
  });
  const app: App = await startEmbedded(config, {
    logger: countingLogger(errorLogs),
    ...(options.services ? { services: options.services } : {}),
  });
  const pool = new Pool(app.gatewayUrl as string, { connections: concurrency, pipelining: 1 });
  const byStatus: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  const violations: string[] = [];
  let sent = 0;
  let spansPublished = 0;
  let deadLetters = 0;
  /** Payload number → whether its secrets sit under intact keys (its bytes were not mutated). */
  const planted = new Map<number, boolean>();

  const leakCheck = (where: string) => (batch: { value: Buffer }[]) => {
    for (const m of batch) {
      const text = m.value.toString("latin1");
      for (const match of text.matchAll(/SECRET-(\d+)-x/g)) {
        const n = Number(match[1]);
        // a mutated payload may have broken the key a secret sits under: then it is no secret to the policy
        if (planted.get(n) === true && violations.length < 10) violations.push(`payload ${n}'s secret reached ${where}`);
      }
    }
  };
  const spansTopic = topicName(config.topicPrefix, TOPICS.otlpSpans);
  const lettersTopic = topicName(config.topicPrefix, TOPICS.deadletter);
  const subs = [
    await app.bus.subscribe({ group: "fuzz.watch-spans", topics: [spansTopic], fromBeginning: false }, async (batch) => {
      spansPublished += batch.length;
      leakCheck(spansTopic)(batch);
    }),
    await app.bus.subscribe({ group: "fuzz.watch-deadletters", topics: [lettersTopic], fromBeginning: false }, async (batch) => {
      deadLetters += batch.length;
      leakCheck(lettersTopic)(batch);
      for (const m of batch) {
        const parsed = DeadLetter.safeParse(JSON.parse(m.value.toString("utf8")));
        if (!parsed.success && violations.length < 10)
          violations.push(`a dead letter breaks its schema: ${parsed.error.message.slice(0, 200)}`);
        if (m.value.length > 32 * 1024 && violations.length < 10) violations.push(`a dead letter of ${m.value.length} bytes`);
      }
    }),
  ];

  // the baseline: this process, everything started, idle
  await settle(2_000);
  (globalThis as { gc?: () => void }).gc?.();
  await settle(200);
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  const maxRss = Math.min(
    options.maxRssBytes ?? Number.POSITIVE_INFINITY,
    baseline + (options.maxRssGrowthBytes ?? Number.POSITIVE_INFINITY),
  );

  const msByKind: Record<string, { build: number; request: number }> = {};
  const sendOne = async (spec: PayloadSpec, n: number): Promise<string | undefined> => {
    const b0 = performance.now();
    const { body, headers, encoding } = build(spec, secretOf(n));
    const b1 = performance.now();
    planted.set(n, spec.kind === "valid" || spec.kind === "bad-ids" || spec.kind === "huge-value");
    const res = await pool.request({ method: "POST", path: "/v1/traces", body, headers, headersTimeout: 120_000, bodyTimeout: 120_000 });
    const answer = Buffer.from(await res.body.arrayBuffer());
    const times = msByKind[spec.kind] ?? { build: 0, request: 0 };
    msByKind[spec.kind] = times;
    times.build += b1 - b0;
    times.request += performance.now() - b1;
    byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
    byKind[spec.kind] = (byKind[spec.kind] ?? 0) + 1;
    const problem = answerProblem(spec, encoding, res.statusCode, res.headers, answer);
    return problem ? `payload ${n} (${spec.kind}, ${encoding}): ${problem}` : undefined;
  };

  const start = process.memoryUsage().rss;
  const t0 = performance.now();
  let failure: string | undefined;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(payloadSpec, { minLength: concurrency, maxLength: concurrency }), async (specs) => {
        const first = sent;
        sent += specs.length;
        const problems = (await Promise.all(specs.map((s, i) => sendOne(s, first + i)))).filter((p) => p !== undefined);
        if (sent % 5_000 < concurrency) {
          options.progress?.(
            `${sent} payloads, ${Math.round(sent / ((performance.now() - t0) / 1000))}/s, rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB (peak ${Math.round(peak / 2 ** 20)})`,
          );
        }
        if (problems.length > 0) throw new Error(problems.join("\n"));
        if (violations.length > 0) throw new Error(violations.join("\n"));
        if (uncaught.length > 0) throw new Error(`uncaught: ${uncaught.join("\n")}`);
        if (errorLogs.length > 0) throw new Error(`error logs: ${errorLogs.join("\n")}`);
        if (peak > maxRss) throw new Error(`RSS ${Math.round(peak / 2 ** 20)} MiB past the bound of ${Math.round(maxRss / 2 ** 20)} MiB`);
      }),
      { numRuns: Math.ceil(options.payloads / concurrency), seed: options.seed, endOnFailure: true, includeErrorInReport: true },
    );
  } catch (err) {
    const cause = (err as Error).cause;
    failure = `${cause instanceof Error ? `${cause.message}\n\n` : ""}${(err as Error).message.slice(0, 4_000)}`;
  }
  const seconds = (performance.now() - t0) / 1000;

  // the pipeline catches up, then the process should give memory back
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && !(app.bus as { idle?: () => boolean }).idle?.()) await settle(200);
  // still serving: health, and one more good request
  const health = await pool.request({ method: "GET", path: "/healthz" });
  await health.body.arrayBuffer();
  const last = await sendOne(
    {
      kind: "valid",
      encoding: "protobuf",
      gzip: false,
      spans: [{ task: 1, agent: 0, tool: 0, attrs: {}, args: null, argsAsKvlist: false }],
      secrets: true,
      oneTrace: false,
    },
    sent,
  );
  if (!failure && (health.statusCode !== 200 || last)) failure = `after the run: /healthz ${health.statusCode}; ${last ?? ""}`;
  await settle(500);
  (globalThis as { gc?: () => void }).gc?.();
  await settle(500);
  clearInterval(sampler);
  const end = process.memoryUsage().rss;
  const heapUsedEnd = process.memoryUsage().heapUsed;
  const metricValue = async (name: "storeTasks" | "storeEvictedTasks") => (await app.metrics[name].get()).values[0]?.value ?? 0;
  const storeTasks = await metricValue("storeTasks");
  const evictedTasks = await metricValue("storeEvictedTasks");
  const evictedRecords = (await app.metrics.storeEvictedRecords.get()).values.reduce((n, v) => n + v.value, 0);
  if (!failure && violations.length > 0) failure = violations.join("\n");
  await options.inspect?.(app);
  for (const s of subs) await s.close();
  await pool.close();
  await app.close();
  process.off("uncaughtException", onUncaught);
  process.off("unhandledRejection", onUncaught);
  return {
    payloads: sent,
    seconds,
    byStatus,
    byKind,
    rss: { baseline, start, peak, end },
    heapUsedEnd,
    spansPublished,
    deadLetters,
    storeTasks,
    evictedTasks,
    evictedRecords,
    errorLogs,
    msByKind,
    ...(failure ? { failure } : {}),
  };
}
