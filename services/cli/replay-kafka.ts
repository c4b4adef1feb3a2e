import { randomUUID } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import type { Logger } from "pino";
import { headersToStrings } from "../runtime/bus/bus.js";
import { kafkaSecurityOptions } from "../runtime/bus/kafka-bus.js";
import type { KafkaSecurity } from "../runtime/transport-config.js";
import type { ReplayRequest } from "./replay.js";

/**
 * Replay's Kafka source: the OTLP requests on a topic (`otlp_spans`, as the gateway or a
 * Collector's kafka exporter wrote them) between two bounds, from every partition, with
 * each message's content-type header. It reads as a throwaway consumer group that never
 * commits an offset and is deleted afterwards, so the live pipeline's groups are untouched.
 */

/**
 * Where a range starts (`--from`, inclusive) or ends (`--to`, exclusive): a time, resolved
 * per partition to the first offset whose timestamp is at or after it; the same offset in
 * every partition; or an offset per partition (partitions not named keep the default).
 */
export type RangeBound =
  | { kind: "time"; ms: number }
  | { kind: "offset"; offset: number }
  | { kind: "offsets"; offsets: Map<number, number> };

export interface TopicRange {
  brokers: string[];
  /** The topic's name on the broker (with DRIFTWATCH_TOPIC_PREFIX, if the pipeline uses one). */
  topic: string;
  /** Default: the earliest offset each partition still has. */
  from?: RangeBound;
  /** Default: each partition's end when the read starts, so a replay of a live topic ends. */
  to?: RangeBound;
}

/** What was read of one partition: offsets [from, to), and how many messages that was. */
export interface PartitionRead {
  partition: number;
  from: number;
  to: number;
  messages: number;
}

export interface TopicRangeRead {
  topic: string;
  /** In replay order: each partition in offset order, partitions merged by message timestamp. */
  requests: ReplayRequest[];
  partitions: PartitionRead[];
}

export interface ReadOptions {
  clientId?: string;
  /** The throwaway consumer group's name starts with this (e.g. DRIFTWATCH_GROUP_PREFIX, for ACLs). */
  groupPrefix?: string;
  logger?: Logger;
  /** How long to wait for the brokers to answer, and for the read to make progress (default 30 s). */
  timeoutMs?: number;
  /** TLS and SASL to the brokers (DRIFTWATCH_KAFKA_SSL*, DRIFTWATCH_KAFKA_SASL_*). */
  security?: KafkaSecurity;
}

/** A topic range that cannot be read: bad bounds, an unknown topic, brokers that do not answer. */
export class KafkaRangeError extends Error {
  override name = "KafkaRangeError";
}

const BOUND_FORMS = "an ISO 8601 time (2025-06-01T10:00:00Z), epoch milliseconds (1748772000000), offset:N, or offset:P=N,P=N,…";
/** Before 1973-03-03: surely not meant as a time (an offset, or epoch seconds). */
const MIN_EPOCH_MS = 100_000_000_000;

function offsetValue(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new KafkaRangeError(`${what}: "${text}" is not an offset (a whole number)`);
  return n;
}

/** Parses a `--from` / `--to` value; a KafkaRangeError says what forms are accepted. */
export function parseRangeBound(text: string): RangeBound {
  const value = text.trim();
  if (value.startsWith("offset:")) {
    const spec = value.slice("offset:".length);
    if (!spec.includes("=")) return { kind: "offset", offset: offsetValue(spec, value) };
    const offsets = new Map<number, number>();
    for (const part of spec.split(",")) {
      const [p, o, extra] = part.split("=").map((s) => s.trim());
      if (p === undefined || o === undefined || extra !== undefined || !/^\d+$/.test(p)) {
        throw new KafkaRangeError(`"${value}": write offsets per partition as offset:P=N,P=N (e.g. offset:0=120,1=98)`);
      }
      const partition = Number(p);
      if (offsets.has(partition)) throw new KafkaRangeError(`"${value}" names partition ${partition} twice`);
      offsets.set(partition, offsetValue(o, value));
    }
    return { kind: "offsets", offsets };
  }
  if (/^\d+$/.test(value)) {
    const ms = Number(value);
    if (ms < MIN_EPOCH_MS) {
      throw new KafkaRangeError(
        `"${value}" reads as epoch milliseconds (${new Date(ms).toISOString()}); epoch milliseconds have 13 digits, and an offset is written offset:${value}`,
      );
    }
    if (!Number.isSafeInteger(ms) || Number.isNaN(new Date(ms).getTime())) throw new KafkaRangeError(`"${value}" is not a time`);
    return { kind: "time", ms };
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    // a time of day without a zone would be read in this machine's zone: ask for one
    if (/[T ]\d{2}:\d{2}/.test(value) && !/(Z|[+-]\d{2}(:?\d{2})?)$/i.test(value)) {
      throw new KafkaRangeError(`"${value}" has no time zone: add one (Z for UTC, or an offset such as +02:00)`);
    }
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new KafkaRangeError(`"${value}" is not a valid ISO 8601 time`);
    return { kind: "time", ms };
  }
  throw new KafkaRangeError(`"${value}" is not a range bound; give ${BOUND_FORMS}`);
}

function showBound(b: RangeBound): string {
  if (b.kind === "time") return new Date(b.ms).toISOString();
  if (b.kind === "offset") return `offset:${b.offset}`;
  return `offset:${[...b.offsets].map(([p, o]) => `${p}=${o}`).join(",")}`;
}

/** Catches bounds that cannot make a range, before any broker is asked. */
export function checkRangeBounds(from: RangeBound | undefined, to: RangeBound | undefined): void {
  if (!from || !to) return;
  const problem = `--from ${showBound(from)} is not before --to ${showBound(to)}: the range is empty`;
  if (from.kind === "time" && to.kind === "time") {
    if (from.ms >= to.ms) throw new KafkaRangeError(problem);
    return;
  }
  if (from.kind === "time" || to.kind === "time") return; // a time and an offset meet only on the broker
  const at = (b: RangeBound, p: number) => (b.kind === "offset" ? b.offset : b.kind === "offsets" ? b.offsets.get(p) : undefined);
  if (from.kind === "offset" && to.kind === "offset") {
    if (from.offset >= to.offset) throw new KafkaRangeError(problem);
    return;
  }
  const partitions = new Set([
    ...(from.kind === "offsets" ? from.offsets.keys() : []),
    ...(to.kind === "offsets" ? to.offsets.keys() : []),
  ]);
  for (const p of partitions) {
    const f = at(from, p);
    const t = at(to, p);
    if (f !== undefined && t !== undefined && f > t) {
      throw new KafkaRangeError(`--from offset ${f} is after --to offset ${t} in partition ${p}`);
    }
  }
}

/** Settles with `work`, or fails with `message` once `ms` have passed. */
async function within<T>(work: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KafkaRangeError(message())), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** kafkajs's own logs, at debug level: what goes wrong is said by the error replay raises. */
function debugLogCreator(logger: Logger | undefined) {
  return () =>
    ({ log }: { log: { message: string } & Record<string, unknown> }) => {
      const { message, ...extra } = log;
      logger?.debug(extra, `kafka: ${message}`);
    };
}

/** A message read, with its timestamp (for the merge). */
interface Timed {
  timestampMs: number;
  request: ReplayRequest;
}

/** Merges the partitions' messages by timestamp (ties: the lower partition), keeping each partition's offset order. */
function mergeByTime(perPartition: Timed[][]): ReplayRequest[] {
  const queues = perPartition.map((messages) => ({ messages, next: 0 }));
  const out: ReplayRequest[] = [];
  for (;;) {
    let best: { head: Timed; queue: (typeof queues)[number] } | undefined;
    for (const queue of queues) {
      const head = queue.messages[queue.next];
      if (head && (!best || head.timestampMs < best.head.timestampMs)) best = { head, queue };
    }
    if (!best) return out;
    out.push(best.head.request);
    best.queue.next++;
  }
}

/** Reads a topic range: resolves the bounds on the broker, reads every partition between them, merges. */
export async function readTopicRange(range: TopicRange, options: ReadOptions = {}): Promise<TopicRangeRead> {
  checkRangeBounds(range.from, range.to);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const brokers = range.brokers.join(",");
  const kafka = new Kafka({
    clientId: options.clientId ?? "driftwatch-replay",
    brokers: range.brokers,
    connectionTimeout: Math.min(timeoutMs, 5_000),
    retry: { retries: 3, initialRetryTime: 200 },
    logLevel: logLevel.INFO,
    logCreator: debugLogCreator(options.logger),
    ...kafkaSecurityOptions(options.security),
  });
  const admin = kafka.admin();
  try {
    await within(
      admin.connect().catch((err: Error) => {
        throw new KafkaRangeError(`cannot reach Kafka at ${brokers}: ${err.message}`);
      }),
      timeoutMs,
      () => `cannot reach Kafka at ${brokers}: no answer within ${timeoutMs / 1000} s`,
    );
    const topics = await within(
      admin.listTopics(),
      timeoutMs,
      () => `Kafka at ${brokers} did not list its topics within ${timeoutMs / 1000} s`,
    );
    if (!topics.includes(range.topic))
      throw new KafkaRangeError(`topic "${range.topic}" does not exist on ${brokers}${topicHint(range.topic, topics)}`);
    const partitions = await resolveRange(admin, range, options.logger);
    const requests = await readPartitions(kafka, admin, range.topic, partitions, { ...options, timeoutMs });
    return { topic: range.topic, requests, partitions };
  } finally {
    // a connection still being tried (a broker that does not answer) is dropped, not waited for
    await within(admin.disconnect(), 2_000, () => "disconnect").catch(() => undefined);
  }
}

type Admin = ReturnType<Kafka["admin"]>;

/** Names like the one asked for (the same name under a prefix, or the OTLP topic of another prefix). */
export function topicHint(asked: string, topics: string[]): string {
  const base = asked.slice(asked.lastIndexOf(".") + 1);
  const alike = topics
    .filter((t) => t !== asked && (t.endsWith(asked) || asked.endsWith(t) || t.endsWith(`.${base}`) || t.endsWith("otlp_spans")))
    .sort();
  if (alike.length === 0) return "";
  const shown = alike.slice(0, 5).map((t) => `"${t}"`);
  return ` (topics there with a name like it: ${shown.join(", ")}${alike.length > 5 ? `, and ${alike.length - 5} more` : ""})`;
}

/** Each partition's [from, to): the bounds resolved against the log as it is when the read starts. */
async function resolveRange(admin: Admin, range: TopicRange, logger: Logger | undefined): Promise<PartitionRead[]> {
  const ends = (await admin.fetchTopicOffsets(range.topic)).sort((a, b) => a.partition - b.partition);
  const known = new Set(ends.map((e) => e.partition));
  for (const [name, bound] of [
    ["--from", range.from],
    ["--to", range.to],
  ] as const) {
    if (bound?.kind !== "offsets") continue;
    const unknown = [...bound.offsets.keys()].filter((p) => !known.has(p));
    if (unknown.length > 0) {
      throw new KafkaRangeError(
        `${name} names partition ${unknown.join(", ")}, which topic "${range.topic}" does not have (partitions ${ends[0]?.partition}–${ends[ends.length - 1]?.partition})`,
      );
    }
  }
  const byTime = async (ms: number) =>
    new Map((await admin.fetchTopicOffsetsByTimestamp(range.topic, ms)).map((o) => [o.partition, Number(o.offset)]));
  const fromTimes = range.from?.kind === "time" ? await byTime(range.from.ms) : undefined;
  const toTimes = range.to?.kind === "time" ? await byTime(range.to.ms) : undefined;
  return ends.map(({ partition, low, high }) => {
    const first = Number(low);
    const end = Number(high);
    const pick = (bound: RangeBound | undefined, times: Map<number, number> | undefined, otherwise: number) =>
      bound?.kind === "time"
        ? (times?.get(partition) ?? end)
        : bound?.kind === "offset"
          ? bound.offset
          : bound?.kind === "offsets"
            ? (bound.offsets.get(partition) ?? otherwise)
            : otherwise;
    let from = pick(range.from, fromTimes, first);
    if (from < first) {
      logger?.warn(
        { topic: range.topic, partition, asked: from, earliest: first },
        "offsets before the earliest kept are gone; reading from it",
      );
      from = first;
    }
    // never past the end as it was when the read started: a live topic keeps growing
    const to = Math.min(pick(range.to, toTimes, end), end);
    return { partition, from: Math.min(from, to), to, messages: 0 };
  });
}

/** Reads [from, to) of each partition, as a consumer group of its own that commits nothing. */
async function readPartitions(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  partitions: PartitionRead[],
  options: ReadOptions & { timeoutMs: number },
): Promise<ReplayRequest[]> {
  const got = new Map(partitions.map((p) => [p.partition, [] as Timed[]]));
  // the next offset wanted in each partition not yet read to its end
  const next = new Map(partitions.filter((p) => p.from < p.to).map((p) => [p.partition, p.from]));
  const range = new Map(partitions.map((p) => [p.partition, p]));
  if (next.size > 0) {
    const groupId = `${options.groupPrefix ?? "driftwatch."}replay.${randomUUID()}`;
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, retry: { retries: 5, initialRetryTime: 200 } });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        let lastProgress = Date.now();
        const finish = (err?: Error) => {
          clearInterval(stall);
          if (err) reject(err);
          else resolve();
        };
        const stall = setInterval(() => {
          if (Date.now() - lastProgress < options.timeoutMs) return;
          const behind = [...next].map(([p, o]) => `partition ${p} at offset ${o} of ${range.get(p)?.to}`).join(", ");
          finish(new KafkaRangeError(`reading ${topic} made no progress for ${options.timeoutMs / 1000} s (${behind})`));
        }, 250);
        const advance = (partition: number, offset: number) => {
          const wanted = next.get(partition);
          if (wanted === undefined) return;
          lastProgress = Date.now();
          if (offset <= wanted) return;
          if (offset < (range.get(partition)?.to ?? 0)) {
            next.set(partition, offset);
            return;
          }
          next.delete(partition);
          consumer.pause([{ topic, partitions: [partition] }]);
          if (next.size === 0) finish();
        };
        consumer.on(consumer.events.CRASH, (e) => {
          if (!e.payload.restart) finish(new KafkaRangeError(`reading ${topic} failed: ${e.payload.error.message}`));
        });
        // also after a batch of control records only (transaction markers), which eachBatch never sees
        consumer.on(consumer.events.END_BATCH_PROCESS, (e) => advance(e.payload.partition, Number(e.payload.lastOffset) + 1));
        consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const r = range.get(batch.partition);
              const list = got.get(batch.partition);
              if (!r || !list) return;
              for (const m of batch.messages) {
                const offset = Number(m.offset);
                // before the seek took hold, or already read, or past the end: not in the range
                if (offset < (next.get(batch.partition) ?? r.to) || offset >= r.to) continue;
                const headers = headersToStrings(m.headers);
                const contentType = headers["content-type"];
                list.push({
                  timestampMs: Number(m.timestamp),
                  request: {
                    source: `${topic}/${batch.partition}@${m.offset}`,
                    bytes: m.value ?? Buffer.alloc(0),
                    ...(contentType ? { contentType } : {}),
                  },
                });
                r.messages++;
                advance(batch.partition, offset + 1);
              }
            },
          })
          .then(() => {
            for (const [partition, offset] of next) consumer.seek({ topic, partition, offset: String(offset) });
          })
          .catch((err: Error) => finish(new KafkaRangeError(`reading ${topic} failed: ${err.message}`)));
      });
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await deleteGroup(admin, groupId, options.logger);
    }
  }
  return mergeByTime([...got.values()]);
}

/** Deletes the throwaway group (nothing was committed, so the broker may have forgotten it already). */
async function deleteGroup(admin: Admin, groupId: string, logger: Logger | undefined): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.deleteGroups([groupId]);
      return;
    } catch (err) {
      const groups = (err as { groups?: { error?: { type?: string } }[] }).groups ?? [];
      const types = groups.map((g) => g.error?.type);
      if (types.length > 0 && types.every((t) => t === "GROUP_ID_NOT_FOUND")) return;
      // the member that just left may still be counted for a moment
      if (attempt < 10 && types.includes("NON_EMPTY_GROUP")) {
        await new Promise((r) => setTimeout(r, 300));
        continue;
      }
      logger?.warn(
        { err, groupId },
        "could not delete replay's consumer group (it holds no offsets); delete it with kafka-consumer-groups --delete",
      );
      return;
    }
  }
}

/** One line for an operator: what was read, per partition. */
export function describeRead(read: TopicRangeRead): string {
  const parts = read.partitions.map((p) => `${p.partition} [${p.from}, ${p.to})`).join(", ");
  return `read ${read.requests.length} message(s) from ${read.topic}: partition ${parts}`;
}
