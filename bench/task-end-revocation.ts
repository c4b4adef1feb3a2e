/**
 * Task end to revocation: the time from the arrival of a task's final span to the credential
 * store's 2xx for the task's credentials, through the real Kafka broker and Redis, with the
 * pipeline deployed as separate processes (`driftwatch run ingest|analyser|revoker`; BENCH_LAYOUT=stages: `ingest|pathfinder|detector|revoker`),
 * under background traffic, against a baseline measured in the same run (issue 7).
 *
 *   npm run bench:task-end -- [background tasks/s] [probe tasks/s] [seconds] [spans per task] [pause ms]
 *   (defaults 300 10 25 4 200; BENCH_BASELINE=0: no baseline)
 *
 * Probes: benign billing-agent tasks (within the profile: nothing to find) binding two
 * credentials (their tool calls report them in turn), sent as two OTLP protobuf messages
 * keyed by trace id: the tool calls first, then, `pause` ms later, the final span alone (the
 * task's root `invoke_agent` span, ended: the task completed). The detector puts a
 * `task_completed` event on `agent.lifecycle`, and the revoker revokes both credentials.
 *
 * Latency of one probe: from the moment its final message is handed to the producer for
 * `otlp_spans` (the final span arriving at ingest's door) to the moment the loopback store
 * writes its 2xx for the last of its two credentials. The server's own view is set next to
 * it: the ledger's `latencyMs.fromTrigger` (from ingest receiving the final span to the
 * revoker reading the store's answer; the larger of the probe's two records).
 *
 * Background: benign tasks at `rate` per second, each one message holding its whole trace
 * (as in bench:revocation); each completes on arrival, so each revokes its credential at its
 * end too: that is real load on the detector, the revoker, Redis and the store, and counted.
 *
 * Checked, not assumed: every measured probe's ledger records are `task_completed` and
 * `revoked`, one per credential; the store received exactly one request per credential
 * (probes and background); no credential outside the run was revoked. A failed check is
 * printed and the exit code is 1.
 *
 * Baseline: the same messages and rates through four plain kafkajs relays (one process each)
 * whose last hop POSTs every message to the same store (as many requests as the pipeline
 * makes); a probe's latency from handing its final message to the store's 2xx for it.
 *
 * Uses DRIFTWATCH_TEST_KAFKA_BROKERS / DRIFTWATCH_TEST_REDIS_URL, else starts the test
 * servers with scripts/test-env.sh.
 */
import { randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { Kafka, logLevel, Partitioners } from "kafkajs";
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
  type Probe,
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
  storeSettled,
  triggerCounts,
  watchLag,
} from "./lib/latency.js";
import { fmt, type TaskRequest, taskRequests } from "./lib/workload.js";

const rate = Number(process.argv[2] ?? 300);
const probeRate = Number(process.argv[3] ?? 10);
const seconds = Number(process.argv[4] ?? 25);
const spansPerTask = Number(process.argv[5] ?? 4);
const pauseMs = Number(process.argv[6] ?? 200);
const warmUpSeconds = 5;
const partitions = 3;
const withBaseline = process.env.BENCH_BASELINE !== "0";
if (spansPerTask < 3) throw new Error("spans per task: at least 3 (a root span and two tool calls, one per credential)");

const servers = testServers();
const run = randomBytes(3).toString("hex");
const prefix = `bench-te-${run}.`;
const kafka = new Kafka({ brokers: servers.brokers.split(","), clientId: "bench", logLevel: logLevel.NOTHING });

// ---------- the workload ----------

const genStart = performance.now();
const totalSeconds = warmUpSeconds + seconds;
const bgCredential = (i: number) => `bg-cred-${run}-${i}`;
const background = taskRequests(Math.ceil(rate * totalSeconds), {
  stepsPerTask: spansPerTask,
  idPrefix: `bg-${run}-`,
  drift: false,
  credential: bgCredential,
});
const probes = taskRequests(Math.ceil(probeRate * totalSeconds), {
  stepsPerTask: spansPerTask,
  idPrefix: `end-${run}-`,
  drift: false,
  credential: (i) => [`end-cred-${run}-${i}-a`, `end-cred-${run}-${i}-b`],
  split: true,
});
const genMs = performance.now() - genStart;
const probe = (i: number) => probes[i] as TaskRequest;
const bytes = (ts: TaskRequest[], f: (t: TaskRequest) => Uint8Array | undefined) =>
  ts.length === 0 ? 0 : ts.reduce((n, t) => n + (f(t)?.length ?? 0), 0) / ts.length;

/** The load: the background, and each probe as its tool calls then, `pauseMs` later, its final span. */
const loadOf = (keys: (i: number) => [string, string]): Load => ({
  background,
  rate,
  probes: probes.map((t, i): Probe => {
    const [first, final] = keys(i);
    return [
      { key: first, value: t.request, delayMs: 0 },
      { key: final, value: t.final as Uint8Array, delayMs: pauseMs },
    ];
  }),
  probeRate,
  warmUpSeconds,
  totalSeconds,
});

// ---------- the pipeline ----------

async function pipeline(setting: Setting) {
  const pipe = await startPipeline(setting);
  try {
    const driving = drive(
      setting.producer,
      pipe.topic(TOPICS.otlpSpans),
      loadOf((i) => [probe(i).traceId, probe(i).traceId]),
    );
    const cpu = measureCpu(pipe.children, driving, warmUpSeconds);
    const lag = watchLag(setting.admin, pipe.groups, driving);
    const sent = await driving;
    const got = await answered(pipe.store, sent, (i) => probe(i).credentials);
    // the background's revocations still on their way: counted too
    await storeSettled(pipe.store);
    await lag.loop;
    const ledger = await ledgerRecords(
      setting,
      got.map((g) => probe(g.i).taskId),
    );
    const store = {
      requests: pipe.store.requests,
      requestsFor: new Map(pipe.store.requestsFor),
      answeredAt: new Map(pipe.store.answeredAt),
    };
    return { sent, got, lag, ledger, store, cpu: await cpu };
  } finally {
    await pipe.stop();
  }
}

// ---------- run ----------

const admin = kafka.admin();
await admin.connect();
const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();
const setting: Setting = { admin, producer, servers, prefix, partitions };
const load1 = loadavg()[0] as number;
const probeKey = (i: number) => `probe-${run}-${i}`;
const base = withBaseline
  ? await runBaseline(
      setting,
      loadOf((i) => [`tools-${run}-${i}`, probeKey(i)]),
      (i) => [probeKey(i)],
      { postAll: true },
    )
  : undefined;
const pipe = await pipeline(setting);
await producer.disconnect();
await admin.disconnect();

// ---------- checks: is it the task's end that revoked, exactly once? ----------

const failures: string[] = [];
const fail = (what: string, examples: string[]) => {
  if (examples.length > 0) failures.push(`${what}: ${examples.length} (e.g. ${examples.slice(0, 3).join("; ")})`);
};
const measured = pipe.got.map((g) => ({ g, t: probe(g.i), records: pipe.ledger.get(probe(g.i).taskId) ?? [] }));
const records = measured.flatMap((m) => m.records);
fail(
  "probes not revoked within 60 s of the load's end",
  measured.filter((m) => m.g.answeredAt === undefined).map((m) => m.t.taskId),
);
fail(
  "probes whose ledger records are not one per credential",
  measured
    .filter(
      (m) => m.records.length !== m.t.credentials.length || !m.t.credentials.every((c) => m.records.some((r) => r.credentialId === c)),
    )
    .map((m) => `${m.t.taskId}: ${m.records.map((r) => r.credentialId).join(",") || "none"}`),
);
fail(
  "probe ledger records not triggered by task_completed",
  records.filter((r) => r.trigger !== "task_completed").map((r) => `${r.credentialId} ${r.trigger}`),
);
fail(
  "probe ledger records not revoked",
  records.filter((r) => r.status !== "revoked").map((r) => `${r.credentialId} ${r.status}`),
);
fail(
  "probe ledger records without latencyMs.fromTrigger",
  records.filter((r) => r.latencyMs?.fromTrigger === undefined).map((r) => r.credentialId),
);
const perCredential = [...pipe.store.requestsFor];
fail(
  "credentials with more than one store request",
  perCredential.filter(([, n]) => n > 1).map(([c, n]) => `${c} ×${n}`),
);
const ours = (c: string) => c.startsWith(`bg-cred-${run}-`) || c.startsWith(`end-cred-${run}-`);
fail(
  "credentials revoked that are not this run's",
  perCredential.filter(([c]) => !ours(c)).map(([c]) => c),
);
const bgRevoked = background.slice(0, pipe.sent.backgroundSent).filter((_, i) => pipe.store.requestsFor.has(bgCredential(i))).length;

// ---------- report ----------

const serverSide = (m: (typeof measured)[number]) => Math.max(...m.records.map((r: Revocation) => r.latencyMs?.fromTrigger ?? Number.NaN));
const answeredMs = measured.filter((m) => m.g.answeredAt !== undefined && m.records.length > 0);
const server = stats(answeredMs.map(serverSide).filter((v) => !Number.isNaN(v)));
// the part of the client's view the server's leaves out: handing the final message to the producer → ingest receiving it
const toIngest = stats(
  answeredMs.map((m) => Math.min(...m.records.map((r) => r.triggeredAtMs ?? Number.NaN)) - m.g.handedAt).filter((v) => !Number.isNaN(v)),
);
// the ledger's own marks of the probe's last record: the final span received by ingest (triggeredAtMs) → the detector's
// decision (the event's detectedAtMs) → the revoker's request to the store (requestedAtMs) → the store's answer read (completedAtMs)
const lastRecord = (m: (typeof measured)[number]) => m.records.reduce((a, b) => (b.completedAtMs > a.completedAtMs ? b : a));
const hop = (f: (r: Revocation) => number | undefined) =>
  stats(answeredMs.map((m) => f(lastRecord(m)) ?? Number.NaN).filter((v) => !Number.isNaN(v)));
const detectedAt = (r: Revocation) => (r.latencyMs?.fromDetection !== undefined ? r.completedAtMs - r.latencyMs.fromDetection : undefined);
const hops = {
  detected: hop((r) => (detectedAt(r) ?? Number.NaN) - (r.triggeredAtMs ?? Number.NaN)),
  requested: hop((r) => r.requestedAtMs - (detectedAt(r) ?? Number.NaN)),
  answered: hop((r) => r.completedAtMs - r.requestedAtMs),
};
const window = (pipe.sent.measureTo - pipe.sent.measureFrom) / 1000;
const answeredInWindow = [...pipe.store.answeredAt.values()].filter((t) => t >= pipe.sent.measureFrom && t <= pipe.sent.measureTo).length;

console.log(
  `task end to revocation: ${fmt(rate)} background tasks/s (${spansPerTask} spans, ${fmt(bytes(background, (t) => t.request))} bytes of OTLP, one message each) + ` +
    `${probeRate} probe tasks/s (tool calls ${fmt(bytes(probes, (t) => t.request))} bytes, then after ${pauseMs} ms the final span ${fmt(bytes(probes, (t) => t.final))} bytes; 2 credentials each), ` +
    `${seconds} s measured after a ${warmUpSeconds} s warm-up; ${partitions} partitions; ${cpus().length} cores, load average ${load1.toFixed(2)} before; workload made in ${fmt(genMs)} ms`,
);
console.log(
  "from: a probe's final span (root invoke_agent, ended) handed to the producer for otlp_spans; to: the store writing its 2xx for the last of its credentials (ms)",
);
console.log(header());
let baseStats: Stats | undefined;
if (base) {
  baseStats = stats(latencies(base.got));
  console.log(row(`baseline: ${STAGES.length} plain kafkajs relays + HTTP POST`, baseStats));
}
const pipeStats = stats(latencies(pipe.got));
console.log(row(`pipeline: ${STAGES_LABEL}`, pipeStats));
console.log(row("  server's view: ledger latencyMs.fromTrigger", server));
console.log(row("  the rest: handed to the producer → ingest received", toIngest));
console.log("  the server's view by hop (the probe's last record; quantiles per row, so they do not add up):");
console.log(row("    ingest received → detector decided (task ended)", hops.detected));
console.log(row("    → revoker sent the request (agent.lifecycle, queue)", hops.requested));
console.log(row("    → store's answer read by the revoker", hops.answered));
if (baseStats) console.log(`ratio pipeline ÷ baseline: ${ratio(pipeStats, baseStats)}`);
console.log(
  `pipeline: probe ledger records by trigger: ${triggerCounts(records)}; by status: ${[...new Set(records.map((r) => r.status))].join(", ") || "none"}`,
);
console.log(
  `pipeline: background achieved ${fmt(rateOf(pipe.sent))} tasks/s; background credentials revoked at their task's end ${fmt(bgRevoked)} of ${fmt(pipe.sent.backgroundSent)} sent; ` +
    `store requests ${fmt(pipe.store.requests)} for ${fmt(pipe.store.requestsFor.size)} credentials (${fmt(answeredInWindow / window)}/s while measured); ` +
    `produce calls in flight at most ${pipe.sent.maxInFlight}`,
);
console.log(`pipeline: consumer lag (messages, largest/last sample): ${lagLine(pipe.lag)}`);
console.log(`pipeline: CPU while measured, % of one core: ${pipe.cpu}`);
if (base) {
  console.log(
    `baseline: background achieved ${fmt(rateOf(base.sent))} tasks/s; ${base.got.filter((g) => g.answeredAt === undefined).length} probes lost; store requests ${fmt(base.requests)}; lag ${lagLine(base.lag)}`,
  );
  console.log(`baseline: CPU while measured, % of one core: ${base.cpu}`);
}
const r0 = (v: number) => (Number.isNaN(v) ? "–" : fmt(v));
console.log(
  `row: | ${fmt(rate)} (${fmt(rateOf(pipe.sent))}) | ${baseStats ? `${r0(baseStats.p50)} / ${r0(baseStats.p99)}` : "–"} | ` +
    `${r0(pipeStats.p50)} / ${r0(pipeStats.p90)} / ${r0(pipeStats.p99)} / ${r0(pipeStats.max)} | ` +
    `${baseStats ? `${(pipeStats.p50 / baseStats.p50).toFixed(1)}, ${(pipeStats.p99 / baseStats.p99).toFixed(1)}` : "–"} | ` +
    `${fmt(pipe.store.requests)} | ${r0(server.p50)} / ${r0(server.p99)} |`,
);
if (failures.length > 0) {
  for (const f of failures) console.log(`CHECK FAILED: ${f}`);
} else {
  console.log(
    `checks passed: ${measured.length} probes, each revoked by task_completed, one ledger record and one store request per credential; ` +
      `no credential revoked twice or outside the run`,
  );
}
console.log(`load average after: ${(loadavg()[0] as number).toFixed(2)}`);
process.exit(failures.length > 0 ? 1 : 0);
