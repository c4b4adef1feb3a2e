import { randomBytes } from "node:crypto";
import type { Admin, Producer } from "kafkajs";
import type { Revocation } from "../../schemas/revocation.js";
import { TOPICS, type TopicName, topicName } from "../../schemas/topics.js";
import { RevocationLedger } from "../../services/revoker/ledger.js";
import { RedisStore } from "../../services/runtime/store/redis-store.js";
import {
  type Child,
  cpuSeconds,
  lagOf,
  machineCpuSeconds,
  serverPids,
  startChild,
  startService,
  stopChildren,
  waitForGroups,
} from "./processes.js";
import { nowMs, TimestampingStore } from "./store.js";
import { fmt, quantile, type TaskRequest } from "./workload.js";

/**
 * What the revocation latency benchmarks share (revocation-latency.ts, task-end-revocation.ts):
 * a paced producer of background tasks and probes, the baseline of plain kafkajs relays, the
 * pipeline as separate processes, consumer lag and CPU while measured, the ledger's records,
 * and the statistics.
 */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------- the paced load ----------

/** One message of a probe: sent `delayMs` after the probe is due. */
export interface ProbeMessage {
  key: string;
  value: Uint8Array;
  delayMs: number;
}
/** A probe's messages; its latency is timed from handing the last of them to the producer. */
export type Probe = ProbeMessage[];

export interface Load {
  /** Written at `rate` per second, one message each, keyed by trace id. */
  background: TaskRequest[];
  rate: number;
  /** Started at `probeRate` per second. */
  probes: Probe[];
  probeRate: number;
  warmUpSeconds: number;
  /** Warm-up included. */
  totalSeconds: number;
}

export interface Sent {
  /** Probe index → when its last message was handed to the producer, and when the broker acknowledged it. */
  handedAt: number[];
  ackedAt: number[];
  /** When the warm-up ended and the load stopped. */
  measureFrom: number;
  measureTo: number;
  /** Background messages acknowledged within the measured window. */
  backgroundAcked: number;
  /** Background messages handed to the producer in all (warm-up included). */
  backgroundSent: number;
  /** The most produce calls in flight at once. */
  maxInFlight: number;
}

/**
 * Writes the background tasks at `rate` per second and the probes at `probeRate` per second
 * to `topic` for warm-up + measured seconds. A probe's later messages (its `delayMs`) go out
 * in time: no probe is started that would end after the background stops.
 */
export async function drive(producer: Producer, topic: string, load: Load): Promise<Sent> {
  const headers = { "content-type": "application/x-protobuf" };
  const handedAt: number[] = [];
  const ackedAt: number[] = [];
  const pending: { due: number; i: number; message: ProbeMessage; last: boolean }[] = [];
  let bgNext = 0;
  let probeNext = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let acked = 0;
  let ackedAtWarmUpEnd = -1;
  const sends: Promise<unknown>[] = [];
  const start = nowMs();
  const measureFrom = start + load.warmUpSeconds * 1000;
  const end = start + load.totalSeconds * 1000;
  const longest = Math.max(0, ...load.probes.flatMap((p) => p.map((m) => m.delayMs)));
  const track = (p: Promise<unknown>, after: () => void) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    sends.push(
      p.then(() => {
        inFlight--;
        after();
      }),
    );
  };
  for (let now = nowMs(); now < end; now = nowMs()) {
    if (ackedAtWarmUpEnd < 0 && now >= measureFrom) ackedAtWarmUpEnd = acked;
    const elapsed = now - start;
    const probesDue = now + longest < end ? Math.min(load.probes.length, Math.floor((elapsed * load.probeRate) / 1000)) : probeNext;
    while (probeNext < probesDue) {
      const i = probeNext++;
      const probe = load.probes[i] as Probe;
      probe.forEach((message, j) => {
        pending.push({ due: now + message.delayMs, i, message, last: j === probe.length - 1 });
      });
    }
    for (let k = 0; k < pending.length; ) {
      const p = pending[k] as (typeof pending)[number];
      if (p.due > now) {
        k++;
        continue;
      }
      pending.splice(k, 1);
      if (p.last) handedAt[p.i] = nowMs();
      track(producer.send({ topic, acks: -1, messages: [{ key: p.message.key, value: Buffer.from(p.message.value), headers }] }), () => {
        if (p.last) ackedAt[p.i] = nowMs();
      });
    }
    const bgDue = Math.min(load.background.length, Math.floor((elapsed * load.rate) / 1000));
    if (bgDue > bgNext) {
      const slice = load.background.slice(bgNext, bgDue);
      bgNext = bgDue;
      track(
        producer.send({ topic, acks: -1, messages: slice.map((t) => ({ key: t.traceId, value: Buffer.from(t.request), headers })) }),
        () => {
          if (nowMs() <= end) acked += slice.length;
        },
      );
    }
    await sleep(4);
  }
  const measureTo = nowMs();
  await Promise.all(sends);
  return {
    handedAt,
    ackedAt,
    measureFrom,
    measureTo,
    backgroundAcked: acked - Math.max(0, ackedAtWarmUpEnd),
    backgroundSent: bgNext,
    maxInFlight,
  };
}

export interface Answer {
  i: number;
  handedAt: number;
  /** When the store answered the last of the probe's credentials (undefined: not all within the drain time). */
  answeredAt?: number;
}

/** The probes sent after the warm-up, and when the store had answered for all of each one's credentials. */
export async function answered(
  store: TimestampingStore,
  sent: Sent,
  credentialsOf: (i: number) => string[],
  drainMs = 60_000,
): Promise<Answer[]> {
  const measured: { i: number; t: number }[] = [];
  sent.handedAt.forEach((t, i) => {
    if (t >= sent.measureFrom) measured.push({ i, t });
  });
  const done = (i: number) => credentialsOf(i).every((c) => store.answeredAt.has(c));
  const deadline = Date.now() + drainMs;
  while (Date.now() < deadline && measured.some((p) => !done(p.i))) await sleep(50);
  return measured.map((p) => {
    const at = credentialsOf(p.i).map((c) => store.answeredAt.get(c));
    return { i: p.i, handedAt: p.t, ...(at.every((a) => a !== undefined) ? { answeredAt: Math.max(...(at as number[])) } : {}) };
  });
}

/** Waits until the store has had no request for `quietMs` (at most `maxMs`): the revocations still on their way are counted. */
export async function storeSettled(store: TimestampingStore, quietMs = 3_000, maxMs = 60_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let seen = store.requests;
  let since = Date.now();
  while (Date.now() < deadline && Date.now() - since < quietMs) {
    await sleep(250);
    if (store.requests !== seen) {
      seen = store.requests;
      since = Date.now();
    }
  }
}

/** Latencies (ms) of the answered probes. */
export const latencies = (got: Answer[]) => got.filter((g) => g.answeredAt !== undefined).map((g) => (g.answeredAt as number) - g.handedAt);

/** Background tasks per second acknowledged within the measured window. */
export const rateOf = (s: Sent) => s.backgroundAcked / ((s.measureTo - s.measureFrom) / 1000);

// ---------- statistics ----------

export interface Stats {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
export function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1] ?? Number.NaN };
}
export const ms = (v: number) => (Number.isNaN(v) ? "–" : v < 10 ? v.toFixed(1) : fmt(v));
export const header = () =>
  `${"".padEnd(52)} ${"n".padStart(5)} ${"p50".padStart(7)} ${"p90".padStart(7)} ${"p99".padStart(7)} ${"max".padStart(7)}`;
export const row = (label: string, s: Stats) =>
  `${label.padEnd(52)} ${String(s.n).padStart(5)} ${ms(s.p50).padStart(7)} ${ms(s.p90).padStart(7)} ${ms(s.p99).padStart(7)} ${ms(s.max).padStart(7)}`;
export const ratio = (a: Stats, b: Stats) =>
  `p50 ${(a.p50 / b.p50).toFixed(1)} ×, p90 ${(a.p90 / b.p90).toFixed(1)} ×, p99 ${(a.p99 / b.p99).toFixed(1)} ×`;

// ---------- CPU and consumer lag while measured ----------

type CpuSnapshot = { per: Map<string, number>; machine: { busy: number; total: number }; atMs: number };

/** CPU seconds used so far by each child, this process, the broker and Redis, and the machine. */
export function cpuSnapshot(children: Child[]): CpuSnapshot {
  const servers = serverPids();
  const own = process.cpuUsage();
  const per = new Map<string, number>(children.map((c) => [c.name, cpuSeconds(c.process.pid ?? -1)]));
  per.set("this process", (own.user + own.system) / 1e6);
  if (servers.kafka) per.set("Kafka broker", cpuSeconds(servers.kafka));
  if (servers.redis) per.set("Redis", cpuSeconds(servers.redis));
  return { per, machine: machineCpuSeconds(), atMs: nowMs() };
}

/** CPU over the measured window, in % of one core, per process and for the machine (the rest: everything else running on it). */
export function cpuShares(from: CpuSnapshot, to: CpuSnapshot): string {
  const seconds = (to.atMs - from.atMs) / 1000;
  const parts: string[] = [];
  let ours = 0;
  for (const [name, end] of to.per) {
    const used = end - (from.per.get(name) ?? Number.NaN);
    if (Number.isNaN(used)) continue;
    ours += used;
    parts.push(`${name} ${fmt((100 * used) / seconds)}`);
  }
  const busy = to.machine.busy - from.machine.busy;
  const capacity = (100 * (to.machine.total - from.machine.total)) / seconds;
  return `${parts.join(", ")}; machine ${fmt((100 * busy) / seconds)} of ${fmt(capacity)} (anything else: ${fmt((100 * (busy - ours)) / seconds)})`;
}

/** Takes a CPU snapshot once the warm-up is over and another when `load` ends. */
export function measureCpu(children: Child[], load: Promise<unknown>, warmUpSeconds: number): Promise<string> {
  let from: CpuSnapshot | undefined;
  const timer = setTimeout(() => {
    from = cpuSnapshot(children);
  }, warmUpSeconds * 1000);
  return load.then(() => {
    clearTimeout(timer);
    const to = cpuSnapshot(children);
    return from ? cpuShares(from, to) : "not measured";
  });
}

export interface Lag {
  max: Map<string, number>;
  last: Map<string, number>;
  loop: Promise<void>;
}

/** Samples the consumer lag of each [group, topic] every 5 s while `until` is pending: the largest, and the last. */
export function watchLag(admin: Admin, groups: [string, string][], until: Promise<unknown>): Lag {
  const max = new Map<string, number>();
  const last = new Map<string, number>();
  let done = false;
  void until.finally(() => {
    done = true;
  });
  const loop = (async () => {
    while (!done) {
      await sleep(5000);
      for (const [group, topic] of groups) {
        const lag = await lagOf(admin, group, topic).catch(() => Number.NaN);
        last.set(group, lag);
        max.set(group, Math.max(max.get(group) ?? 0, lag));
      }
    }
  })();
  return { max, last, loop };
}

export const lagLine = (lag: Lag) =>
  [...lag.max.keys()].map((g) => `${g.split(".").at(-1)} ${fmt(lag.max.get(g) ?? 0)}/${fmt(lag.last.get(g) ?? 0)}`).join(", ");

export async function createTopics(admin: Admin, topics: string[], partitions: number): Promise<void> {
  await admin.createTopics({
    topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
    waitForLeaders: true,
  });
  await admin.fetchTopicMetadata({ topics });
}

// ---------- the baseline: plain kafkajs relays, one per stage ----------

export interface Setting {
  admin: Admin;
  producer: Producer;
  servers: { brokers: string; redis: string };
  /** Topic, group and key prefix of this run. */
  prefix: string;
  partitions: number;
}

export interface BaselineRun {
  sent: Sent;
  got: Answer[];
  lag: Lag;
  cpu: string;
  /** Requests the store received. */
  requests: number;
}

/**
 * The same load through plain kafkajs relays, one per stage (one process each), and an HTTP POST to a
 * loopback store for each probe message (key `probe-…`) on the last hop, or for every
 * message with `postAll`; `credentialsOf(i)`: the keys of probe i's POSTs.
 */
export async function runBaseline(
  s: Setting,
  load: Load,
  credentialsOf: (i: number) => string[],
  options: { postAll?: boolean } = {},
): Promise<BaselineRun> {
  const base = `${s.prefix}base.`;
  // as many Kafka hops as the pipeline has stages, the last one POSTing to the store
  const topics = STAGES.map((_, n) => `${base}t${n}`);
  await createTopics(s.admin, topics, s.partitions);
  const store = await new TimestampingStore().start();
  const relays: Child[] = topics.map((from, n) =>
    startChild(`relay-${n + 1}`, ["bench/lib/relay.ts"], {
      RELAY_BROKERS: s.servers.brokers,
      RELAY_GROUP: `${base}relay-${n + 1}`,
      RELAY_FROM: from,
      ...(n < topics.length - 1
        ? { RELAY_TO: topics[n + 1] as string }
        : { RELAY_STORE: store.url, ...(options.postAll ? { RELAY_POST_ALL: "1" } : {}) }),
    }),
  );
  try {
    await waitForGroups(
      s.admin,
      relays.map((_, n) => `${base}relay-${n + 1}`),
      relays,
    );
    const driving = drive(s.producer, topics[0] as string, load);
    const cpu = measureCpu(relays, driving, load.warmUpSeconds);
    const lag = watchLag(
      s.admin,
      topics.map((t, n) => [`${base}relay-${n + 1}`, t]),
      driving,
    );
    const sent = await driving;
    const got = await answered(store, sent, credentialsOf);
    await lag.loop;
    return { sent, got, lag, cpu: await cpu, requests: store.requests };
  } finally {
    await stopChildren(relays);
    await store.stop();
  }
}

// ---------- the pipeline: each service its own process ----------

/**
 * The services, one process each: ingest, the analyser (the pathfinder and the detector in one
 * process, as `run all` deploys them) and the revoker; with BENCH_LAYOUT=stages, the pathfinder
 * and the detector apart.
 */
export const STAGES: readonly string[] =
  process.env.BENCH_LAYOUT === "stages" ? ["ingest", "pathfinder", "detector", "revoker"] : ["ingest", "analyser", "revoker"];
/** The pipeline's services, as a label. */
export const STAGES_LABEL = STAGES.join(" → ");

export interface Pipeline {
  store: TimestampingStore;
  children: Child[];
  topic: (t: TopicName) => string;
  /** [consumer group, topic] of each stage (the revoker has two: findings and the task lifecycle). */
  groups: [string, string][];
  stop(): Promise<void>;
}

/** The settings of a run's services: its broker, Redis, prefixes, the shipped policies, revoking at `webhookUrl`. */
export function pipelineEnv(s: Setting, webhookUrl: string): Record<string, string> {
  return {
    DRIFTWATCH_LOG_LEVEL: "warn",
    DRIFTWATCH_KAFKA_BROKERS: s.servers.brokers,
    DRIFTWATCH_KAFKA_PARTITIONS: String(s.partitions),
    DRIFTWATCH_REDIS_URL: s.servers.redis,
    DRIFTWATCH_REDIS_KEY_PREFIX: s.prefix,
    DRIFTWATCH_TOPIC_PREFIX: s.prefix,
    DRIFTWATCH_GROUP_PREFIX: `${s.prefix}g.`,
    DRIFTWATCH_POLICY_DIR: "policies",
    DRIFTWATCH_REVOKE_WEBHOOK_URL: webhookUrl,
    DRIFTWATCH_REVOKE_WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
    DRIFTWATCH_ALERT_STDOUT: "false",
    DRIFTWATCH_TASK_TTL_MS: String(15 * 60_000),
    DRIFTWATCH_OTLP_PORT: "0",
    DRIFTWATCH_API_PORT: "0",
  };
}

/**
 * Creates the run's topics and starts `driftwatch run ingest|pathfinder|detector|revoker`
 * (from source, one process each) on the broker and Redis, the shipped policies, revoking at
 * a loopback store; resolves once every stage's consumer group is ready.
 */
export async function startPipeline(s: Setting): Promise<Pipeline> {
  const store = await new TimestampingStore().start();
  const topic = (t: TopicName) => topicName(s.prefix, t);
  await createTopics(
    s.admin,
    Object.values(TOPICS).map((t) => topic(t)),
    s.partitions,
  );
  const env = pipelineEnv(s, store.url);
  const children = STAGES.map((stage) => startService(stage, { ...env, DRIFTWATCH_KAFKA_CLIENT_ID: `bench-${stage}` }));
  const g = (name: string) => `${s.prefix}g.${name}`;
  const groups: [string, string][] = [
    [g("ingest"), topic(TOPICS.otlpSpans)],
    ...(STAGES.includes("analyser")
      ? ([[g("analyser"), topic(TOPICS.actions)]] as [string, string][])
      : ([
          [g("pathfinder"), topic(TOPICS.actions)],
          [g("detector"), topic(TOPICS.steps)],
        ] as [string, string][])),
    [g("revoker"), topic(TOPICS.findings)],
    [g("revoker-lifecycle"), topic(TOPICS.lifecycle)],
  ];
  const stop = async () => {
    await stopChildren(children);
    await store.stop();
  };
  try {
    await waitForGroups(
      s.admin,
      groups.map(([group]) => group),
      children,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { store, children, topic, groups, stop };
}

/** The ledger's records of these tasks (read from Redis, as the console's API reads them). */
export async function ledgerRecords(s: Setting, taskIds: string[]): Promise<Map<string, Revocation[]>> {
  const store = new RedisStore({ url: s.servers.redis, keyPrefix: s.prefix });
  try {
    const ledger = new RevocationLedger(store);
    const out = new Map<string, Revocation[]>();
    for (let k = 0; k < taskIds.length; k += 100) {
      const chunk = taskIds.slice(k, k + 100);
      const records = await Promise.all(chunk.map((t) => ledger.forTask(t)));
      chunk.forEach((t, j) => {
        out.set(t, records[j] as Revocation[]);
      });
    }
    return out;
  } finally {
    await store.close();
  }
}

/** How many of `records` had each trigger, e.g. "task_completed 300, finding 2". */
export function triggerCounts(records: Revocation[]): string {
  const n = new Map<string, number>();
  for (const r of records) n.set(r.trigger, (n.get(r.trigger) ?? 0) + 1);
  return [...n].map(([t, c]) => `${t} ${fmt(c)}`).join(", ") || "none";
}
