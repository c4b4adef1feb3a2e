/**
 * Detection-to-revocation latency through the real Kafka broker and Redis, with the
 * pipeline deployed as separate processes (`driftwatch run ingest|analyser|revoker`; BENCH_LAYOUT=stages: `ingest|pathfinder|detector|revoker`),
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
 * credential. Both on this machine's clock. Every task completes in its one message (its root
 * span is in it), so the task's end revokes its credential too (issue 7): a background task's
 * at its end, and a drifting task's by whichever comes first, the finding or the task's end
 * (the ledger's records of the drifting tasks, by trigger, are printed).
 *
 * Baseline: the same load through the same Kafka topology with no work at the stages: one
 * plain kafkajs relay per stage (each its own process, consuming as the Kafka bus does) forwards every
 * message through as many topics, and the last POSTs each probe's id to the same store.
 *
 * Span → finding (BENCH_HOPS=findings): a consumer here reads agent.findings only (few
 * messages) and prints, for each drifting task, its finding's detectedAtMs less the moment its
 * message was handed to the producer.
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
import { Kafka, logLevel, Partitioners } from "kafkajs";
import type { AgentAction } from "../schemas/action.js";
import type { Finding } from "../schemas/finding.js";
import type { Revocation } from "../schemas/revocation.js";
import { TOPICS } from "../schemas/topics.js";
import { testServers } from "./lib/kafka.js";
import {
  answered,
  drive,
  header,
  type Load,
  lagLine,
  latencies,
  ledgerRecords,
  measureCpu,
  rateOf,
  ratio,
  row,
  runBaseline,
  type Setting,
  STAGES,
  STAGES_LABEL,
  type Stats,
  startPipeline,
  stats,
  triggerCounts,
  watchLag,
} from "./lib/latency.js";
import { waitForGroups } from "./lib/processes.js";
import { fmt, taskRequests } from "./lib/workload.js";

const rate = Number(process.argv[2] ?? 1000);
const driftRate = Number(process.argv[3] ?? 10);
const seconds = Number(process.argv[4] ?? 30);
const spansPerTask = Number(process.argv[5] ?? 4);
const warmUpSeconds = 5;
const partitions = 3;
const hops = process.env.BENCH_HOPS === "1";
/** BENCH_HOPS=findings: read agent.findings only, for span → finding (light: the findings are few). */
const findingsOnly = process.env.BENCH_HOPS === "findings";
const watching = hops || findingsOnly;
const withBaseline = process.env.BENCH_BASELINE !== "0";

const servers = testServers();
const run = randomBytes(3).toString("hex");
const prefix = `bench-rl-${run}.`;
const kafka = new Kafka({ brokers: servers.brokers.split(","), clientId: "bench", logLevel: logLevel.NOTHING });

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

/** The load: the background, and the drifting tasks as probes (one message each), keyed by `probeKey`. */
const loadOf = (probeKey: (i: number) => string): Load => ({
  background,
  rate,
  probes: drifting.map((t, i) => [{ key: probeKey(i), value: t.request, delayMs: 0 }]),
  probeRate: driftRate,
  warmUpSeconds,
  totalSeconds,
});

// ---------- the pipeline ----------

interface HopTimes {
  actions?: number;
  steps?: number;
  detected?: number;
  findings?: number;
  requested?: number;
}

async function pipeline(setting: Setting) {
  const pipe = await startPipeline(setting);
  const { topic } = pipe;
  const driftIds = new Map(drifting.map((t, i) => [t.taskId, i]));
  const times: HopTimes[] = drifting.map(() => ({}));
  const watcher = kafka.consumer({ groupId: `${prefix}hops` });
  try {
    if (watching) {
      await watcher.connect();
      await watcher.subscribe({
        topics: findingsOnly
          ? [topic(TOPICS.findings)]
          : [topic(TOPICS.actions), topic(TOPICS.steps), topic(TOPICS.findings), topic(TOPICS.revocations)],
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
      await waitForGroups(setting.admin, [`${prefix}hops`], pipe.children);
    }
    const load = loadOf((i) => (drifting[i] as (typeof drifting)[number]).traceId);
    const driving = drive(setting.producer, topic(TOPICS.otlpSpans), load);
    const cpu = measureCpu(pipe.children, driving, warmUpSeconds);
    const lag = watchLag(setting.admin, pipe.groups, driving);
    const sent = await driving;
    const got = await answered(pipe.store, sent, (i) => [`drift-cred-${run}-${i}`]);
    await lag.loop;
    await new Promise((r) => setTimeout(r, 500));
    const answeredCredentials = [...pipe.store.answeredAt.keys()];
    const backgroundRevoked = answeredCredentials.filter((c) => c.startsWith(`bg-cred-${run}-`)).length;
    const unexpected = answeredCredentials.filter((c) => !c.startsWith(`drift-cred-${run}-`) && !c.startsWith(`bg-cred-${run}-`)).length;
    const duplicates = [...pipe.store.requestsFor.values()].filter((n) => n > 1).length;
    const ledger = await ledgerRecords(
      setting,
      got.map((g) => (drifting[g.i] as (typeof drifting)[number]).taskId),
    );
    return { sent, got, lag, times, backgroundRevoked, unexpected, duplicates, ledger, cpu: await cpu };
  } finally {
    if (watching) await watcher.disconnect().catch(() => undefined);
    await pipe.stop();
  }
}

// ---------- run and report ----------

const admin = kafka.admin();
await admin.connect();
const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();
const setting: Setting = { admin, producer, servers, prefix, partitions };
const load1 = loadavg()[0] as number;
const probeKey = (i: number) => `probe-${run}-${i}`;
const base = withBaseline ? await runBaseline(setting, loadOf(probeKey), (i) => [probeKey(i)]) : undefined;
const pipe = await pipeline(setting);
await producer.disconnect();
await admin.disconnect();

console.log(
  `revocation latency: ${fmt(rate)} background tasks/s (${spansPerTask} spans, ${fmt(bytesPerTask)} bytes of OTLP each) + ${driftRate} drifting tasks/s, ` +
    `${seconds} s measured after a ${warmUpSeconds} s warm-up; ${partitions} partitions; ${cpus().length} cores, load average ${load1.toFixed(2)} before; workload made in ${fmt(genMs)} ms`,
);
console.log("from: the drifting task's OTLP message handed to the producer for otlp_spans; to: the credential store writing its 2xx (ms)");
console.log(header());
let baseStats: Stats | undefined;
if (base) {
  baseStats = stats(latencies(base.got));
  console.log(row(`baseline: ${STAGES.length} plain kafkajs relays + HTTP POST`, baseStats));
}
const pipeStats = stats(latencies(pipe.got));
console.log(row(`pipeline: ${STAGES_LABEL}`, pipeStats));
if (watching) {
  const decided = pipe.got.flatMap((g) => {
    const at = pipe.times[g.i]?.detected;
    return at === undefined ? [] : [at - g.handedAt];
  });
  console.log(row("  of which span → finding decided (detectedAtMs)", stats(decided)));
}
if (baseStats) console.log(`ratio pipeline ÷ baseline: ${ratio(pipeStats, baseStats)}`);
const missing = pipe.got.filter((g) => g.answeredAt === undefined).length;
console.log(
  `pipeline: background achieved ${fmt(rateOf(pipe.sent))} tasks/s; ${missing} of ${pipe.got.length} drifting tasks not revoked within 60 s of the load's end; ` +
    `background credentials revoked (their tasks completed) ${fmt(pipe.backgroundRevoked)} of ${fmt(pipe.sent.backgroundSent)} sent; ` +
    `${pipe.unexpected} other credentials revoked; ${pipe.duplicates} credentials with more than one store request; produce calls in flight at most ${pipe.sent.maxInFlight}`,
);
// a drifting task also completes (its whole trace is one message): its credential is revoked by whichever comes first, the finding or the task's end
console.log(`pipeline: the drifting tasks' ledger records by trigger: ${triggerCounts([...pipe.ledger.values()].flat())}`);
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
