/**
 * Detection-to-revocation latency through the real Kafka broker and Redis, with the
 * pipeline deployed as separate processes (`driftwatch run ingest|pathfinder|detector|revoker`),
 * against a baseline measured in the same run.
 *
 *   npm run bench:revocation -- [background tasks/s] [drifting tasks/s] [seconds] [spans per task]
 *   (defaults 1000 10 30 4; BENCH_HOPS=1: per-hop timestamps; BENCH_BASELINE=0: no baseline)
 *
 * Load: a paced producer writes benign billing-agent tasks to `otlp_spans` at a steady rate
 * (one OTLP protobuf message per task, its whole trace, keyed by trace id, as the
 * Collector's Kafka exporter with `partition_traces_by_id` writes them), and every so often
 * a drifting task whose last tool call is outside the agent's profile.
 *
 * Latency of one revocation: from the moment the drifting task's message is handed to the
 * producer for `otlp_spans` (the offending span arriving at ingest's door: the topic ingest
 * reads) to the moment the loopback credential store writes its 2xx for the task's
 * credential. Both on this machine's clock.
 *
 * Baseline: the same load through the same Kafka topology with no work at the stages: four
 * plain kafkajs relays (each its own process, consuming as the Kafka bus does) forward every
 * message through four topics, and the fourth POSTs each probe's id to the same store.
 *
 * Per hop (BENCH_HOPS=1): the Kafka timestamps of the drifting task's messages on
 * agent.actions (ingest produced them), agent.steps (pathfinder), agent.findings (detector),
 * and the finding's detectedAtMs and the revocation's requestedAtMs, read by a consumer here.
 * That consumer reads all of agent.actions and agent.steps: on a small machine it takes CPU
 * from the pipeline and so raises the latency it helps explain; leave it off for the figures.
 *
 * Uses DRIFTWATCH_TEST_KAFKA_BROKERS / DRIFTWATCH_TEST_REDIS_URL, else starts the test
 * servers with scripts/test-env.sh.
 */
import { randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { type Admin, Kafka, logLevel, Partitioners, type Producer } from "kafkajs";
import type { AgentAction } from "../schemas/action.js";
import type { Finding } from "../schemas/finding.js";
import type { Revocation } from "../schemas/revocation.js";
import { TOPICS, topicName } from "../schemas/topics.js";
import { testServers } from "./lib/kafka.js";
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
} from "./lib/processes.js";
import { nowMs, TimestampingStore } from "./lib/store.js";
import { fmt, quantile, type TaskRequest, taskRequests } from "./lib/workload.js";

const rate = Number(process.argv[2] ?? 1000);
const driftRate = Number(process.argv[3] ?? 10);
const seconds = Number(process.argv[4] ?? 30);
const spansPerTask = Number(process.argv[5] ?? 4);
const warmUpSeconds = 5;
const partitions = 3;
const hops = process.env.BENCH_HOPS === "1";
const withBaseline = process.env.BENCH_BASELINE !== "0";

const servers = testServers();
const run = randomBytes(3).toString("hex");
const prefix = `bench-rl-${run}.`;
const kafka = new Kafka({ brokers: servers.brokers.split(","), clientId: "bench", logLevel: logLevel.NOTHING });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------- the workload ----------

const genStart = performance.now();
const totalSeconds = warmUpSeconds + seconds;
const background = taskRequests(Math.ceil(rate * totalSeconds), {
  stepsPerTask: spansPerTask,
  idPrefix: `bg-${run}-`,
  drift: false,
  credential: (i) => `bg-cred-${run}-${i}`,
});
const drifting = taskRequests(Math.ceil(driftRate * totalSeconds), {
  stepsPerTask: spansPerTask,
  idPrefix: `drift-${run}-`,
  drift: true,
  credential: (i) => `drift-cred-${run}-${i}`,
});
const genMs = performance.now() - genStart;
const bytesPerTask = [...background, ...drifting].reduce((n, t) => n + t.request.length, 0) / (background.length + drifting.length);

// ---------- the paced load ----------

interface Sent {
  /** Probe index → when it was handed to the producer, and when the broker acknowledged it. */
  handedAt: number[];
  ackedAt: number[];
  /** When the warm-up ended and the load stopped. */
  measureFrom: number;
  measureTo: number;
  /** Background messages acknowledged within the measured window. */
  backgroundAcked: number;
  /** The most produce calls in flight at once. */
  maxInFlight: number;
}

/**
 * Writes the background tasks at `rate` per second and the probes (drifting tasks) at
 * `driftRate` per second to `topic` for warm-up + measured seconds.
 */
async function drive(producer: Producer, topic: string, probeKey: (t: TaskRequest, i: number) => string): Promise<Sent> {
  const headers = { "content-type": "application/x-protobuf" };
  const handedAt: number[] = [];
  const ackedAt: number[] = [];
  let bgNext = 0;
  let probeNext = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let acked = 0;
  let ackedAtWarmUpEnd = -1;
  const sends: Promise<unknown>[] = [];
  const start = nowMs();
  const measureFrom = start + warmUpSeconds * 1000;
  const end = start + totalSeconds * 1000;
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
    const probesDue = Math.min(drifting.length, Math.floor((elapsed * driftRate) / 1000));
    while (probeNext < probesDue) {
      const i = probeNext++;
      const t = drifting[i] as TaskRequest;
      handedAt[i] = nowMs();
      track(producer.send({ topic, acks: -1, messages: [{ key: probeKey(t, i), value: Buffer.from(t.request), headers }] }), () => {
        ackedAt[i] = nowMs();
      });
    }
    const bgDue = Math.min(background.length, Math.floor((elapsed * rate) / 1000));
    if (bgDue > bgNext) {
      const slice = background.slice(bgNext, bgDue);
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
  return { handedAt, ackedAt, measureFrom, measureTo, backgroundAcked: acked - Math.max(0, ackedAtWarmUpEnd), maxInFlight };
}

/** The probes sent after the warm-up, and when the store answered each (undefined: not within the drain time). */
async function answered(store: TimestampingStore, sent: Sent, credentialOf: (i: number) => string, drainMs = 60_000) {
  const measured = sent.handedAt.map((t, i) => ({ i, t })).filter((p) => p.t >= sent.measureFrom);
  const deadline = Date.now() + drainMs;
  while (Date.now() < deadline && measured.some((p) => !store.answeredAt.has(credentialOf(p.i)))) await sleep(50);
  return measured.map((p) => ({ i: p.i, handedAt: p.t, answeredAt: store.answeredAt.get(credentialOf(p.i)) }));
}

interface Stats {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1] ?? Number.NaN };
}
const ms = (v: number) => (Number.isNaN(v) ? "–" : v < 10 ? v.toFixed(1) : fmt(v));
const row = (label: string, s: Stats) =>
  `${label.padEnd(52)} ${String(s.n).padStart(5)} ${ms(s.p50).padStart(7)} ${ms(s.p90).padStart(7)} ${ms(s.p99).padStart(7)} ${ms(s.max).padStart(7)}`;

/** CPU seconds used so far by each child, this process, the broker and Redis, and the machine. */
function cpuSnapshot(children: Child[]) {
  const servers = serverPids();
  const own = process.cpuUsage();
  const per = new Map<string, number>(children.map((c) => [c.name, cpuSeconds(c.process.pid ?? -1)]));
  per.set("this process", (own.user + own.system) / 1e6);
  if (servers.kafka) per.set("Kafka broker", cpuSeconds(servers.kafka));
  if (servers.redis) per.set("Redis", cpuSeconds(servers.redis));
  return { per, machine: machineCpuSeconds(), atMs: nowMs() };
}

/** CPU over the measured window, in % of one core, per process and for the machine (the rest: everything else running on it). */
function cpuShares(from: ReturnType<typeof cpuSnapshot>, to: ReturnType<typeof cpuSnapshot>): string {
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
function measureCpu(children: Child[], load: Promise<unknown>) {
  let from: ReturnType<typeof cpuSnapshot> | undefined;
  const timer = setTimeout(() => {
    from = cpuSnapshot(children);
  }, warmUpSeconds * 1000);
  return load.then(() => {
    clearTimeout(timer);
    const to = cpuSnapshot(children);
    return from ? cpuShares(from, to) : "not measured";
  });
}

async function createTopics(admin: Admin, topics: string[]) {
  await admin.createTopics({
    topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
    waitForLeaders: true,
  });
  await admin.fetchTopicMetadata({ topics });
}

/** Samples the consumer lag of each stage every 5 s while `until` is pending: the largest, and the last. */
function watchLag(admin: Admin, groups: [string, string][], until: Promise<unknown>) {
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

// ---------- the baseline: four plain kafkajs relays ----------

async function baseline(admin: Admin, producer: Producer) {
  const base = `${prefix}base.`;
  const topics = [0, 1, 2, 3].map((n) => `${base}t${n}`);
  await createTopics(admin, topics);
  const store = await new TimestampingStore().start();
  const relays: Child[] = topics.map((from, n) =>
    startChild(`relay-${n + 1}`, ["bench/lib/relay.ts"], {
      RELAY_BROKERS: servers.brokers,
      RELAY_GROUP: `${base}relay-${n + 1}`,
      RELAY_FROM: from,
      ...(n < 3 ? { RELAY_TO: topics[n + 1] as string } : { RELAY_STORE: store.url }),
    }),
  );
  try {
    await waitForGroups(
      admin,
      relays.map((_, n) => `${base}relay-${n + 1}`),
      relays,
    );
    const load = drive(producer, topics[0] as string, (_t, i) => `probe-${run}-${i}`);
    const cpu = measureCpu(relays, load);
    const lag = watchLag(
      admin,
      topics.map((t, n) => [`${base}relay-${n + 1}`, t]),
      load,
    );
    const sent = await load;
    const got = await answered(store, sent, (i) => `probe-${run}-${i}`);
    await lag.loop;
    return { sent, got, lag, cpu: await cpu };
  } finally {
    await stopChildren(relays);
    await store.stop();
  }
}

// ---------- the pipeline ----------

interface HopTimes {
  actions?: number;
  steps?: number;
  detected?: number;
  findings?: number;
  requested?: number;
}

async function pipeline(admin: Admin, producer: Producer) {
  const store = await new TimestampingStore().start();
  const topic = (t: (typeof TOPICS)[keyof typeof TOPICS]) => topicName(prefix, t);
  await createTopics(
    admin,
    Object.values(TOPICS).map((t) => topic(t)),
  );
  const env = {
    DRIFTWATCH_LOG_LEVEL: "warn",
    DRIFTWATCH_KAFKA_BROKERS: servers.brokers,
    DRIFTWATCH_KAFKA_PARTITIONS: String(partitions),
    DRIFTWATCH_REDIS_URL: servers.redis,
    DRIFTWATCH_REDIS_KEY_PREFIX: prefix,
    DRIFTWATCH_TOPIC_PREFIX: prefix,
    DRIFTWATCH_GROUP_PREFIX: `${prefix}g.`,
    DRIFTWATCH_POLICY_DIR: "policies",
    DRIFTWATCH_REVOKE_WEBHOOK_URL: store.url,
    DRIFTWATCH_REVOKE_WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
    DRIFTWATCH_ALERT_STDOUT: "false",
    DRIFTWATCH_TASK_TTL_MS: String(15 * 60_000),
    DRIFTWATCH_OTLP_PORT: "0",
    DRIFTWATCH_API_PORT: "0",
  };
  const stages = ["ingest", "pathfinder", "detector", "revoker"] as const;
  const children = stages.map((s) => startService(s, { ...env, DRIFTWATCH_KAFKA_CLIENT_ID: `bench-${s}` }));
  const driftIds = new Map(drifting.map((t, i) => [t.taskId, i]));
  const times: HopTimes[] = drifting.map(() => ({}));
  const watcher = kafka.consumer({ groupId: `${prefix}hops` });
  try {
    await waitForGroups(
      admin,
      stages.map((s) => `${prefix}g.${s}`),
      children,
    );
    if (hops) {
      await watcher.connect();
      await watcher.subscribe({
        topics: [topic(TOPICS.actions), topic(TOPICS.steps), topic(TOPICS.findings), topic(TOPICS.revocations)],
        fromBeginning: true,
      });
      await watcher.run({
        partitionsConsumedConcurrently: 3,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const i = driftIds.get(m.key?.toString() ?? "");
            if (i === undefined || !m.value) continue;
            const at = Number(m.timestamp);
            const doc = JSON.parse(m.value.toString()) as unknown;
            const records = (Array.isArray(doc) ? doc : [doc]) as Record<string, unknown>[];
            const t = times[i] as HopTimes;
            if (batch.topic === topic(TOPICS.actions)) {
              if (t.actions === undefined && records.some((a) => (a as unknown as AgentAction).tool?.name === "shell.exec")) t.actions = at;
            } else if (batch.topic === topic(TOPICS.steps)) {
              if (t.steps === undefined && records.some((s) => (s as unknown as AgentAction).tool?.name === "shell.exec")) t.steps = at;
            } else if (batch.topic === topic(TOPICS.findings)) {
              const f = records[0] as unknown as Finding;
              if (t.findings === undefined) {
                t.findings = at;
                t.detected = f.detectedAtMs;
              }
            } else {
              const r = records.find((x) => (x as unknown as Revocation).status === "revoked") as Revocation | undefined;
              if (r && t.requested === undefined) t.requested = r.requestedAtMs;
            }
          }
        },
      });
      // the watcher's group joined before the load starts
      await waitForGroups(admin, [`${prefix}hops`], children);
    }
    const load = drive(producer, topic(TOPICS.otlpSpans), (t) => t.traceId);
    const cpu = measureCpu(children, load);
    const lag = watchLag(
      admin,
      [
        [`${prefix}g.ingest`, topic(TOPICS.otlpSpans)],
        [`${prefix}g.pathfinder`, topic(TOPICS.actions)],
        [`${prefix}g.detector`, topic(TOPICS.steps)],
        [`${prefix}g.revoker`, topic(TOPICS.findings)],
      ],
      load,
    );
    const sent = await load;
    const got = await answered(store, sent, (i) => `drift-cred-${run}-${i}`);
    await lag.loop;
    await sleep(500);
    const unexpected = [...store.answeredAt.keys()].filter((c) => !c.startsWith(`drift-cred-${run}-`)).length;
    return { sent, got, lag, times, unexpected, cpu: await cpu };
  } finally {
    if (hops) await watcher.disconnect().catch(() => undefined);
    await stopChildren(children);
    await store.stop();
  }
}

// ---------- run and report ----------

const admin = kafka.admin();
await admin.connect();
const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();
const load1 = loadavg()[0] as number;
const base = withBaseline ? await baseline(admin, producer) : undefined;
const pipe = await pipeline(admin, producer);
await producer.disconnect();
await admin.disconnect();

const latencies = (got: { handedAt: number; answeredAt?: number }[]) =>
  got.filter((g) => g.answeredAt !== undefined).map((g) => (g.answeredAt as number) - g.handedAt);
const lagLine = (lag: ReturnType<typeof watchLag>) =>
  [...lag.max.keys()].map((g) => `${g.split(".").at(-1)} ${fmt(lag.max.get(g) ?? 0)}/${fmt(lag.last.get(g) ?? 0)}`).join(", ");
const rateOf = (s: Sent) => s.backgroundAcked / ((s.measureTo - s.measureFrom) / 1000);

console.log(
  `revocation latency: ${fmt(rate)} background tasks/s (${spansPerTask} spans, ${fmt(bytesPerTask)} bytes of OTLP each) + ${driftRate} drifting tasks/s, ` +
    `${seconds} s measured after a ${warmUpSeconds} s warm-up; ${partitions} partitions; ${cpus().length} cores, load average ${load1.toFixed(2)} before; workload made in ${fmt(genMs)} ms`,
);
console.log("from: the drifting task's OTLP message handed to the producer for otlp_spans; to: the credential store writing its 2xx (ms)");
console.log(`${"".padEnd(52)} ${"n".padStart(5)} ${"p50".padStart(7)} ${"p90".padStart(7)} ${"p99".padStart(7)} ${"max".padStart(7)}`);
let baseStats: Stats | undefined;
if (base) {
  baseStats = stats(latencies(base.got));
  console.log(row("baseline: 4 plain kafkajs relays + HTTP POST", baseStats));
}
const pipeStats = stats(latencies(pipe.got));
console.log(row("pipeline: ingest → pathfinder → detector → revoker", pipeStats));
if (baseStats)
  console.log(
    `ratio pipeline ÷ baseline: p50 ${(pipeStats.p50 / baseStats.p50).toFixed(1)} ×, p90 ${(pipeStats.p90 / baseStats.p90).toFixed(1)} ×, p99 ${(pipeStats.p99 / baseStats.p99).toFixed(1)} ×`,
  );
const missing = pipe.got.filter((g) => g.answeredAt === undefined).length;
console.log(
  `pipeline: background achieved ${fmt(rateOf(pipe.sent))} tasks/s; ${missing} of ${pipe.got.length} drifting tasks not revoked within 60 s of the load's end; ` +
    `${pipe.unexpected} other credentials revoked; produce calls in flight at most ${pipe.sent.maxInFlight}`,
);
console.log(`pipeline: consumer lag (messages, largest/last sample): ${lagLine(pipe.lag)}`);
console.log(`pipeline: CPU while measured, % of one core: ${pipe.cpu}`);
if (base) {
  console.log(
    `baseline: background achieved ${fmt(rateOf(base.sent))} tasks/s; ${base.got.filter((g) => g.answeredAt === undefined).length} probes lost; lag ${lagLine(base.lag)}`,
  );
  console.log(`baseline: CPU while measured, % of one core: ${base.cpu}`);
}
if (hops) {
  const measured = pipe.got.filter((g) => g.answeredAt !== undefined);
  const delta = (f: (i: number, g: (typeof measured)[number]) => number | undefined) =>
    stats(measured.map((g) => f(g.i, g)).filter((v): v is number => v !== undefined && !Number.isNaN(v)));
  const t = (i: number) => pipe.times[i] as HopTimes;
  console.log("per hop (each row: the time from the previous mark to this one; quantiles per row, so they do not add up):");
  console.log(
    row(
      "  produce to otlp_spans (broker ack)",
      delta((i, g) => (pipe.sent.ackedAt[i] ?? Number.NaN) - g.handedAt),
    ),
  );
  console.log(
    row(
      "  → ingest wrote agent.actions",
      delta((i, g) => (t(i).actions ?? Number.NaN) - g.handedAt),
    ),
  );
  console.log(
    row(
      "  → pathfinder wrote agent.steps",
      delta((i) => (t(i).steps ?? Number.NaN) - (t(i).actions ?? Number.NaN)),
    ),
  );
  console.log(
    row(
      "  → detector decided (finding.detectedAtMs)",
      delta((i) => (t(i).detected ?? Number.NaN) - (t(i).steps ?? Number.NaN)),
    ),
  );
  console.log(
    row(
      "  → detector wrote agent.findings",
      delta((i) => (t(i).findings ?? Number.NaN) - (t(i).detected ?? Number.NaN)),
    ),
  );
  console.log(
    row(
      "  → revoker sent the request (requestedAtMs)",
      delta((i) => (t(i).requested ?? Number.NaN) - (t(i).findings ?? Number.NaN)),
    ),
  );
  console.log(
    row(
      "  → store wrote its 2xx",
      delta((i, g) => (g.answeredAt as number) - (t(i).requested ?? Number.NaN)),
    ),
  );
}
console.log(`load average after: ${(loadavg()[0] as number).toFixed(2)}`);
process.exit(0);
