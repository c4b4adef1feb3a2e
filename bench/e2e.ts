/**
 * End-to-end throughput through the real Kafka broker and Redis, each stage its own process
 * (`driftwatch run ingest|analyser`, or `ingest|pathfinder|detector`, from source, as
 * deployed), against a baseline measured in the same run: the same messages through a chain
 * of plain kafkajs relays (one process each) over the same number of hops.
 *
 *   npm run bench:e2e -- [tasks] [spans per task] [partitions]     (defaults: 20000 10 3)
 *
 * BENCH_LAYOUT=analyser (default), stages, or analyser,stages: which deployment(s), each on
 * topics and Redis keys of its own, each with its relay chain (2 hops, 3 hops).
 * BENCH_INSTANCES=n: n processes of every stage (and relay) in each group (scale-out).
 * After the Kafka runs, the replay engine (`driftwatch replay`: ingest → analyser embedded,
 * on the recording's clock) is timed over the same requests from memory (BENCH_REPLAY=0: not).
 *
 * Method: the run's input topic is filled first (one OTLP protobuf message per task holding
 * its whole trace, keyed by trace id, as the Collector's Kafka exporter with
 * `partition_traces_by_id` writes them; one task in ten drifts to a tool outside its
 * profile). The later hops start first and wait, idle, on their empty topics; then the
 * first hop starts, and the clock runs from the moment its consumer group is ready to the
 * moment every hop has committed the end of its input (Driftwatch commits after producing,
 * so a committed offset means the hop's output is on the broker). Offsets are polled every
 * 100 ms; Driftwatch's stages commit every 500 ms, the relays after each batch (so the
 * pipeline's clock may run up to half a second long). Then the run's findings are read back
 * and checked: every drifting task flagged (`scope.tool`), no benign task flagged.
 *
 * Also printed: each process's CPU over the window (% of one core), the broker's and Redis's,
 * and the machine's. `BENCH_PROF=ingest,pathfinder,detector` writes CPU profiles
 * ($TMPDIR/driftwatch-bench/prof). `BENCH_BASELINE=0` skips the relays.
 * Uses DRIFTWATCH_TEST_KAFKA_BROKERS / DRIFTWATCH_TEST_REDIS_URL, else starts the test
 * servers with scripts/test-env.sh.
 */
import { randomBytes } from "node:crypto";
import { Kafka, logLevel, Partitioners, type Producer } from "kafkajs";
import { TOPICS, topicName } from "../schemas/topics.js";
import { replay } from "../services/cli/replay.js";
import { loadConfig } from "../services/runtime/config.js";
import { testServers } from "./lib/kafka.js";
import { cpuShares, cpuSnapshot, createTopics, pipelineEnv, type Setting, sleep } from "./lib/latency.js";
import { type Child, startChild, startService, stopChildren, waitForGroups } from "./lib/processes.js";
import { nowMs } from "./lib/store.js";
import { fmt, type TaskRequest, taskRequests } from "./lib/workload.js";

const tasks = Number(process.argv[2] ?? 20_000);
const stepsPerTask = Number(process.argv[3] ?? 10);
const partitions = Number(process.argv[4] ?? 3);
const DRIFT_EVERY = 10;

const servers = testServers();
const kafka = new Kafka({ brokers: servers.brokers.split(","), clientId: "bench-e2e", logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
await Promise.all([admin.connect(), producer.connect()]);

/** One hop: `members` processes consuming `input` as `group`. */
interface Hop {
  children: () => Child[];
  group: string;
  input: string;
  members: number;
}

const instances = Number(process.env.BENCH_INSTANCES ?? 1);
const suffix = (k: number) => (instances > 1 ? `-${k + 1}` : "");
const each = instances > 1 ? ` (${instances} instances of each)` : "";
const copies = (n: number, start: (k: number) => Child) => Array.from({ length: n }, (_, k) => start(k));

interface Run {
  seconds: number;
  cpu: string;
}

/** Writes the tasks to `topic`, 100 messages a request (under the broker's 1 MB), acks=all. */
async function fill(p: Producer, topic: string, load: TaskRequest[]): Promise<void> {
  const headers = { "content-type": "application/x-protobuf" };
  for (let i = 0; i < load.length; i += 100) {
    await p.send({
      topic,
      acks: -1,
      messages: load.slice(i, i + 100).map((t) => ({ key: t.traceId, value: Buffer.from(t.request), headers })),
    });
  }
}

/** Whether every hop, in order, has committed the end of its input (a hop's output is final once the hop before it is done). */
async function drained(hops: Hop[]): Promise<boolean> {
  for (const hop of hops) {
    const [ends, [committed]] = await Promise.all([
      admin.fetchTopicOffsets(hop.input),
      admin.fetchOffsets({ groupId: hop.group, topics: [hop.input] }),
    ]);
    for (const p of ends) {
      const c = Number(committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? -1);
      if (c < Number(p.high)) return false;
    }
  }
  return true;
}

/** Starts hops 2…n, waits for them, starts hop 1 and times from its group being ready to every hop drained. */
async function timeChain(hops: Hop[]): Promise<Run> {
  const [first, ...rest] = hops as [Hop, ...Hop[]];
  const later = rest.flatMap((h) => h.children());
  const children = [...later];
  try {
    await waitForGroups(
      admin,
      rest.map((h) => h.group),
      later,
      { members: instances },
    );
    const head = first.children();
    children.unshift(...head);
    await waitForGroups(admin, [first.group], head, { members: instances, pollMs: 20 });
    const from = cpuSnapshot(children);
    const started = nowMs();
    const deadline = started + 30 * 60_000;
    while (!(await drained(hops))) {
      if (nowMs() > deadline) throw new Error("the chain did not drain within 30 minutes");
      const dead = children.find((c) => c.process.exitCode !== null);
      if (dead) throw new Error(`${dead.name} exited (log: ${dead.log})`);
      await sleep(100);
    }
    const seconds = (nowMs() - started) / 1000;
    return { seconds, cpu: cpuShares(from, cpuSnapshot(children)) };
  } finally {
    await stopChildren(children);
  }
}

/** The run's findings, read back: how many tasks each rule flagged, and which tasks. */
async function findingsOf(topic: string): Promise<Map<string, Set<string>>> {
  const ends = await admin.fetchTopicOffsets(topic);
  const remaining = new Map(ends.filter((p) => Number(p.high) > 0).map((p) => [p.partition, Number(p.high)]));
  const byRule = new Map<string, Set<string>>();
  if (remaining.size === 0) return byRule;
  const consumer = kafka.consumer({ groupId: `${topic}.check.${randomBytes(3).toString("hex")}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const value = JSON.parse(String(message.value)) as { ruleId: string; taskId: string } | { ruleId: string; taskId: string }[];
        for (const f of Array.isArray(value) ? value : [value]) {
          const set = byRule.get(f.ruleId) ?? new Set<string>();
          set.add(f.taskId);
          byRule.set(f.ruleId, set);
        }
        if (Number(message.offset) + 1 >= (remaining.get(partition) ?? 0)) remaining.delete(partition);
        if (remaining.size === 0) resolve();
      },
    });
  });
  await consumer.disconnect();
  return byRule;
}

const run = randomBytes(3).toString("hex");
const prefix = `bench-${run}.`;
const s: Setting = { admin, producer, servers, prefix, partitions };
const spans = tasks * stepsPerTask;
process.stderr.write(`bench:e2e: ${fmt(tasks)} tasks × ${stepsPerTask} spans, ${partitions} partitions; making the workload…\n`);
const drifting = Math.floor(tasks / DRIFT_EVERY);
const load = [
  ...taskRequests(tasks - drifting, { stepsPerTask, idPrefix: `${prefix}ok-`, drift: false, credential: (i) => `${prefix}cred-ok-${i}` }),
  ...taskRequests(drifting, { stepsPerTask, idPrefix: `${prefix}drift-`, drift: true, credential: (i) => `${prefix}cred-drift-${i}` }),
];
// drifting tasks spread through the load
load.sort((a, b) => (a.traceId < b.traceId ? -1 : 1));
const bytes = load.reduce((n, t) => n + t.request.length, 0);

const topic = (prefix: string, t: (typeof TOPICS)[keyof typeof TOPICS]) => topicName(prefix, t);

/** `hops` plain kafkajs relays in a chain, the first reading a topic filled with the load. */
async function relays(hops: number): Promise<Run> {
  const base = `${prefix}base${hops}.`;
  const topics = Array.from({ length: hops + 1 }, (_, n) => `${base}t${n}`);
  await createTopics(admin, topics, partitions);
  await fill(producer, topics[0] as string, load);
  const chain: Hop[] = topics.slice(0, -1).map((from, n) => {
    const group = `${base}relay-${n + 1}`;
    const env = { RELAY_BROKERS: servers.brokers, RELAY_GROUP: group, RELAY_FROM: from, RELAY_TO: topics[n + 1] as string };
    return {
      group,
      input: from,
      members: instances,
      children: () => copies(instances, (k) => startChild(`relay-${n + 1}${suffix(k)}`, ["bench/lib/relay.ts"], env)),
    };
  });
  process.stderr.write(`bench:e2e: the baseline: ${hops} plain kafkajs relays…\n`);
  return timeChain(chain);
}

const LAYOUTS = {
  analyser: ["ingest", "analyser"],
  stages: ["ingest", "pathfinder", "detector"],
} as const;
type Layout = keyof typeof LAYOUTS;
const INPUT = { ingest: TOPICS.otlpSpans, analyser: TOPICS.actions, pathfinder: TOPICS.actions, detector: TOPICS.steps } as const;

/** The pipeline in `layout`, each service its own process (`instances` of each), on topics and Redis keys of its own. */
async function pipeline(layout: Layout): Promise<{ run: Run; found: Map<string, Set<string>> }> {
  const own = `${prefix}${layout}.`;
  await createTopics(
    admin,
    Object.values(TOPICS).map((t) => topic(own, t)),
    partitions,
  );
  await fill(producer, topic(own, TOPICS.otlpSpans), load);
  const env = pipelineEnv({ ...s, prefix: own }, "http://127.0.0.1:9/unused");
  const chain: Hop[] = LAYOUTS[layout].map((name) => ({
    group: `${own}g.${name}`,
    input: topic(own, INPUT[name]),
    members: instances,
    children: () =>
      copies(instances, (k) =>
        startService(name, { ...env, DRIFTWATCH_KAFKA_CLIENT_ID: `bench-${name}${suffix(k)}` }, `${name}${suffix(k)}`),
      ),
  }));
  process.stderr.write(`bench:e2e: the pipeline: ${LAYOUTS[layout].join(" → ")}…\n`);
  const run = await timeChain(chain);
  return { run, found: await findingsOf(topic(own, TOPICS.findings)) };
}

const layouts = (process.env.BENCH_LAYOUT ?? "analyser").split(",") as Layout[];
for (const l of layouts)
  if (!(l in LAYOUTS)) throw new Error(`BENCH_LAYOUT: unknown layout ${l}; one of ${Object.keys(LAYOUTS).join(", ")}`);
const rate = (r: Run) => spans / r.seconds;
const line = (label: string, r: Run, extra = "") =>
  `${label.padEnd(52)} ${r.seconds.toFixed(1).padStart(7)} s ${fmt(rate(r)).padStart(9)} spans/s ${fmt(tasks / r.seconds).padStart(7)} tasks/s${extra}`;
const report: string[] = [];
const cpu: string[] = [];
let ok = true;
const baselines = new Map<number, Run>();
for (const layout of layouts) {
  const hops = LAYOUTS[layout].length;
  if (process.env.BENCH_BASELINE !== "0" && !baselines.has(hops)) {
    const b = await relays(hops);
    baselines.set(hops, b);
    report.push(line(`baseline: ${hops} kafkajs relays${each}`, b));
    cpu.push(`CPU while ${hops} relays ran (% of one core): ${b.cpu}`);
  }
  const { run: p, found } = await pipeline(layout);
  const b = baselines.get(hops);
  report.push(line(`${LAYOUTS[layout].join(" → ")}${each}`, p, b ? `  (${(rate(p) / rate(b)).toFixed(3)} × ${hops} relays)` : ""));
  cpu.push(`CPU while ${LAYOUTS[layout].join(" → ")} ran (% of one core): ${p.cpu}`);
  const flagged = found.get("scope.tool") ?? new Set<string>();
  const caught = [...flagged].filter((t) => t.startsWith(`${prefix}drift-`)).length;
  const wrong = flagged.size - caught;
  cpu.push(
    `  findings by rule (tasks): ${[...found].map(([r, t]) => `${r} ${fmt(t.size)}`).join(", ") || "none"}; ` +
      `drifting tasks flagged scope.tool: ${fmt(caught)} of ${fmt(drifting)}; benign tasks flagged scope.tool: ${fmt(wrong)}`,
  );
  if (caught !== drifting || wrong !== 0) {
    ok = false;
    cpu.push("  CHECK FAILED: the findings are not the planted drifts");
  }
}
await Promise.all([admin.disconnect(), producer.disconnect()]);

// the replay engine (`driftwatch replay`): ingest → analyser embedded, on the recording's clock, from memory
if (process.env.BENCH_REPLAY !== "0") {
  process.stderr.write("bench:e2e: replay…\n");
  const config = loadConfig({ DRIFTWATCH_LOG_LEVEL: "silent", DRIFTWATCH_POLICY_DIR: "policies", DRIFTWATCH_ALERT_STDOUT: "false" });
  const t0 = nowMs();
  const replayed = await replay(
    config,
    load.map((t, i) => ({ source: `load:${i}`, bytes: Buffer.from(t.request), contentType: "application/x-protobuf" })),
  );
  const seconds = (nowMs() - t0) / 1000;
  const flagged = new Set(replayed.filter((f) => f.ruleId === "scope.tool").map((f) => f.taskId));
  report.push(
    line("replay (driftwatch replay's engine, one process)", { seconds, cpu: "" }, `  (scope.tool on ${fmt(flagged.size)} tasks)`),
  );
  if (flagged.size !== drifting) {
    ok = false;
    cpu.push("CHECK FAILED: the replay's findings are not the planted drifts");
  }
}
console.log(
  `\n${fmt(tasks)} tasks × ${stepsPerTask} spans (${fmt(spans)} spans, ${fmt(bytes / 1e6)} MB of OTLP protobuf), ${partitions} partitions, run ${run}`,
);
for (const r of report) console.log(r);
console.log("");
for (const c of cpu) console.log(c);
process.exit(ok ? 0 : 1);
