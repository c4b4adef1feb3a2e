/**
 * Pathfinder through the real Kafka broker and Redis, against a baseline measured in the
 * same run: a raw kafkajs consumer reading the same `agent.actions` topic.
 *
 *   npm run bench:pathfinder        (node --expose-gc --import tsx bench/pathfinder-kafka.ts [tasks] [steps per task] [messages per task])
 *
 * With one message per task (the default), every task is new to the pathfinder when its
 * message comes (load, then write). With several, a task's spans come in several messages,
 * the later ones interleaved with other tasks' (as an agent's spans come in several
 * exports), and the pathfinder finds the task in memory.
 *
 * Also measured: Redis round trips per batch per task and per step (from the server's own
 * `total_reads_processed`: one read event per pipelined burst of commands), commands per
 * step, and the heap the pathfinder holds per task it keeps in memory.
 * Uses DRIFTWATCH_TEST_KAFKA_BROKERS / DRIFTWATCH_TEST_REDIS_URL, else starts the test
 * servers with scripts/test-env.sh.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { TOPICS, topicName } from "../schemas/topics.js";
import { startDistributed } from "../services/cli/app.js";
import { ingestStage } from "../services/ingest/ingest.js";
import { loadConfig } from "../services/runtime/config.js";
import { createLogger } from "../services/runtime/logging.js";
import { packRecords } from "../services/runtime/stage.js";
import { otlpMessages, rawConsumeMs, testServers } from "./lib/kafka.js";
import { agentSpans, fmt, protobufRequests } from "./lib/workload.js";

const tasks = Number(process.argv[2] ?? 10_000);
const stepsPerTask = Number(process.argv[3] ?? 10);
const messagesPerTask = Number(process.argv[4] ?? 1);
const partitions = 3;

const env = testServers();
const kafka = new Kafka({ brokers: env.brokers.split(","), clientId: "bench", logLevel: logLevel.NOTHING });
const run = randomBytes(3).toString("hex");
const prefix = `bench-${run}.`;
const actionsTopic = topicName(prefix, TOPICS.actions);

/** agent.actions as ingest writes it: the workload's spans through the ingest stage, packed per task. */
async function fill(): Promise<{ messages: number; actions: number }> {
  const admin = kafka.admin();
  await admin.connect();
  const topics = Object.values(TOPICS).map((t) => ({ topic: topicName(prefix, t), numPartitions: partitions, replicationFactor: 1 }));
  await admin.createTopics({ topics, waitForLeaders: true });
  await admin.disconnect();
  const stage = ingestStage(prefix);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  let actions = 0;
  // one OTLP request per task, as an SDK's batch exporter sends a finished trace
  const requests = protobufRequests(agentSpans(tasks, stepsPerTask), stepsPerTask);
  // each task's actions in `messagesPerTask` parts; part k of every task before part k+1 of any
  const parts: { key: string; value: string }[][] = Array.from({ length: messagesPerTask }, () => []);
  for (let i = 0; i < requests.length; i += 100) {
    const batch = otlpMessages(requests.slice(i, i + 100), "", i);
    const emits = await stage.handle(
      batch.map((m) => ({ message: m, value: stage.parse(m) })),
      () => undefined,
    );
    actions += emits.length;
    const byTask = new Map<string, typeof emits>();
    for (const e of emits) byTask.set(String(e.message.key), [...(byTask.get(String(e.message.key)) ?? []), e]);
    for (const list of byTask.values()) {
      const size = Math.ceil(list.length / messagesPerTask);
      for (let k = 0; k < messagesPerTask; k++) {
        for (const packed of packRecords(list.slice(k * size, (k + 1) * size))) {
          parts[k]?.push({ key: String(packed.message.key), value: String(packed.message.value) });
        }
      }
    }
  }
  let messages = 0;
  for (const part of parts) {
    for (let i = 0; i < part.length; i += 200) {
      await producer.send({ topic: actionsTopic, acks: -1, messages: part.slice(i, i + 200) });
      messages += part.slice(i, i + 200).length;
    }
  }
  await producer.disconnect();
  return { messages, actions };
}

async function redisStats(redis: Redis): Promise<{ reads: number; commands: number }> {
  const info = await redis.info("stats");
  const num = (name: string) => Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? 0);
  return { reads: num("total_reads_processed"), commands: num("total_commands_processed") };
}

const heap = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
};

const { messages, actions } = await fill();
const rawMs = await rawConsumeMs(kafka, actionsTopic, `${prefix}raw`, messages);

const config = loadConfig({
  DRIFTWATCH_LOG_LEVEL: "silent",
  DRIFTWATCH_KAFKA_BROKERS: env.brokers,
  DRIFTWATCH_REDIS_URL: env.redis,
  DRIFTWATCH_REDIS_KEY_PREFIX: prefix,
  DRIFTWATCH_TOPIC_PREFIX: prefix,
  DRIFTWATCH_GROUP_PREFIX: `${prefix}g.`,
  DRIFTWATCH_KAFKA_PARTITIONS: String(partitions),
  DRIFTWATCH_OPS_PORT: "0",
  DRIFTWATCH_PATHFINDER_CACHED_TASKS: String(tasks * 2),
});
const monitor = new Redis(env.redis);
const heapBefore = heap();
const app = await startDistributed(config, ["pathfinder"], { logger: createLogger(process.env.BENCH_LOG === "1" ? "warn" : "silent") });
const count = async (metric: "messagesIn" | "messagesHandled") =>
  (await app.metrics[metric].get()).values.find((v) => v.labels.stage === "pathfinder")?.value ?? 0;
const batches = async () => (await app.metrics.batchSeconds.get()).values.find((v) => v.metricName?.endsWith("_count"))?.value ?? 0;
while ((await count("messagesIn")) === 0) await new Promise((r) => setTimeout(r, 1));
const before = await redisStats(monitor);
const t0 = performance.now();
while ((await count("messagesHandled")) < messages) await new Promise((r) => setTimeout(r, 2));
const ms = performance.now() - t0;
const after = await redisStats(monitor);
const batchCount = await batches();
const cachedMetric = await app.metrics.registry.getSingleMetric("driftwatch_pathfinder_cached_tasks")?.get();
const cached = cachedMetric?.values[0]?.value ?? tasks;
const heapHeld = heap() - heapBefore;
await app.close();
await monitor.quit();

const rawRate = (actions / rawMs) * 1000;
const rate = (actions / ms) * 1000;
// the clock starts after the first batch arrived: its burst is not counted, nor the monitor's own INFO calls (2)
const reads = after.reads - before.reads - 1;
const commands = after.commands - before.commands - 1;
console.log(
  `actions ${fmt(actions)} of ${fmt(tasks)} tasks in ${fmt(messages)} Kafka messages (packed per task), ${partitions} partitions`,
);
console.log(`baseline  raw kafkajs consume of agent.actions   ${fmt(rawRate)} actions/s`);
console.log(`pathfinder consume + place + Redis + produce    ${fmt(rate)} steps/s  (${(rate / rawRate).toFixed(3)} × baseline)`);
console.log(
  `redis     ${fmt(reads)} round trips (server read events) for ${fmt(batchCount)} batches: ${(reads / actions).toFixed(3)} per step`,
);
console.log(`redis     ${fmt(commands)} commands: ${(commands / actions).toFixed(1)} per step`);
console.log(`memory    ${fmt(heapHeld / 1024)} KiB heap held for ${fmt(cached)} tasks in memory: ${fmt(heapHeld / cached)} bytes per task`);
