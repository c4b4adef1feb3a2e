/**
 * Ingest through the real Kafka broker, against a baseline measured in the same run: a
 * raw kafkajs consumer reading the same topic (no decoding, no producing).
 *
 *   npm run bench:kafka        (node --import tsx bench/ingest-kafka.ts [spans])
 *
 * Uses DRIFTWATCH_TEST_KAFKA_BROKERS, else starts the test broker with scripts/test-env.sh.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { TOPICS, topicName } from "../schemas/topics.js";
import { startDistributed } from "../services/cli/app.js";
import { loadConfig } from "../services/runtime/config.js";
import { createLogger } from "../services/runtime/logging.js";
import { agentSpans, fmt, protobufRequests } from "./lib/workload.js";

const totalSpans = Number(process.argv[2] ?? 100_000);
const spansPerMessage = Number(process.argv[3] ?? 10); // 10: one trace per message, as the Collector (partition_traces_by_id) and the Kafka span exporter write; 100+: whole SDK batches
const partitions = 3;

function brokers(): string {
  if (process.env.DRIFTWATCH_TEST_KAFKA_BROKERS) return process.env.DRIFTWATCH_TEST_KAFKA_BROKERS;
  execFileSync("bash", ["scripts/test-env.sh", "up"], { stdio: ["ignore", "ignore", "inherit"] });
  const env = execFileSync("bash", ["scripts/test-env.sh", "env"], { encoding: "utf8" });
  return /DRIFTWATCH_TEST_KAFKA_BROKERS=(.*)/.exec(env)?.[1] ?? "127.0.0.1:19092";
}

const kafka = new Kafka({ brokers: brokers().split(","), clientId: "bench", logLevel: logLevel.NOTHING });
const run = randomBytes(3).toString("hex");
const prefix = `bench-${run}.`;
const input = topicName(prefix, TOPICS.otlpSpans);

async function fill(): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const topics = Object.values(TOPICS).map((t) => ({ topic: topicName(prefix, t), numPartitions: partitions, replicationFactor: 1 }));
  await admin.createTopics({ topics, waitForLeaders: true });
  await admin.disconnect();
  const requests = protobufRequests(agentSpans(totalSpans / 10, 10), spansPerMessage);
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < requests.length; i += 10) {
    await producer.send({
      topic: input,
      acks: -1,
      messages: requests
        .slice(i, i + 10)
        .map((r, j) => ({ key: String(i + j), value: Buffer.from(r), headers: { "content-type": "application/x-protobuf" } })),
    });
  }
  await producer.disconnect();
  return requests.length;
}

/** Waits until `group` has committed every offset of `topic`. */
async function drained(group: string, topic: string, expected: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (;;) {
      const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      const done = offsets[0]?.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0) ?? 0;
      if (done >= expected) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await admin.disconnect();
  }
}

async function rawConsume(messages: number): Promise<number> {
  const consumer = kafka.consumer({ groupId: `${prefix}raw` });
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  let seen = 0;
  let t0 = 0;
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        if (t0 === 0) t0 = performance.now();
        seen += batch.messages.length;
        if (seen >= messages) resolve();
      },
    });
  });
  await done;
  // from the first batch: the group join is the same fixed cost for both and is left out
  const ms = performance.now() - t0;
  await consumer.disconnect();
  return (totalSpans / ms) * 1000;
}

async function ingest(messages: number): Promise<number> {
  const config = loadConfig({
    DRIFTWATCH_LOG_LEVEL: "silent",
    DRIFTWATCH_KAFKA_BROKERS: brokers(),
    DRIFTWATCH_TOPIC_PREFIX: prefix,
    DRIFTWATCH_GROUP_PREFIX: `${prefix}g.`,
    DRIFTWATCH_KAFKA_PARTITIONS: String(partitions),
    DRIFTWATCH_POLICY_DIR: "policies",
  });
  // startDistributed returns once the consumer group has joined; the clock starts there
  const app = await startDistributed(config, ["ingest"], { logger: createLogger("silent") });
  const start = performance.now();
  await drained(`${prefix}g.ingest`, input, messages);
  const ms = performance.now() - start;
  await app.close();
  return (totalSpans / ms) * 1000;
}

const messages = await fill();
const raw = await rawConsume(messages);
const staged = await ingest(messages);
console.log(`spans ${fmt(totalSpans)} in ${fmt(messages)} Kafka messages (${spansPerMessage} spans each), ${partitions} partitions`);
console.log(`baseline  raw kafkajs consume               ${fmt(raw)} spans/s`);
console.log(`ingest    consume + decode + normalise + produce (acks=all) + commit  ${fmt(staged)} spans/s`);
console.log(`ratio     ingest / raw consume              ${(staged / raw).toFixed(3)}`);
