/**
 * Ingest through the real Kafka broker, against a baseline measured in the same run: a
 * raw kafkajs consumer reading the same topic (no decoding, no producing).
 *
 *   npm run bench:kafka        (node --import tsx bench/ingest-kafka.ts [spans])
 *
 * Uses DRIFTWATCH_TEST_KAFKA_BROKERS, else starts the test broker with scripts/test-env.sh.
 */
import { randomBytes } from "node:crypto";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { TOPICS, topicName } from "../schemas/topics.js";
import { startDistributed } from "../services/cli/app.js";
import { ingestStage } from "../services/ingest/ingest.js";
import { loadConfig } from "../services/runtime/config.js";
import { createLogger } from "../services/runtime/logging.js";
import { packRecords } from "../services/runtime/stage.js";
import { otlpMessages, rawConsumeMs, testServers } from "./lib/kafka.js";
import { agentSpans, fmt, protobufRequests } from "./lib/workload.js";

const totalSpans = Number(process.argv[2] ?? 100_000);
const spansPerMessage = Number(process.argv[3] ?? 10); // 10: one trace per message, as the Collector (partition_traces_by_id) and the Kafka span exporter write; 100+: whole SDK batches
const partitions = 3;

const servers = testServers();
const brokers = () => servers.brokers;

const kafka = new Kafka({ brokers: brokers().split(","), clientId: "bench", logLevel: logLevel.NOTHING });
const run = randomBytes(3).toString("hex");
const prefix = `bench-${run}.`;
const input = topicName(prefix, TOPICS.otlpSpans);

async function fill(): Promise<Uint8Array[]> {
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
  return requests;
}

/**
 * A second baseline: a raw kafkajs producer writing the ingest stage's output (computed
 * beforehand, so nothing but the produce is timed) in batches like the stage's, three at
 * once like the stage's three partitions. What ingest pays to produce, at the least.
 */
async function rawProduce(requests: Uint8Array[]): Promise<number> {
  const stage = ingestStage(prefix);
  const batches: { key?: string | null; value: string | Buffer }[][] = [];
  const perBatch = Math.max(1, Math.round(1700 / spansPerMessage)); // about what one fetch of a partition brings
  for (let i = 0; i < requests.length; i += perBatch) {
    const messages = otlpMessages(requests.slice(i, i + perBatch), input, i);
    const emits = await stage.handle(
      messages.map((m) => ({ message: m, value: stage.parse(m) })),
      () => undefined,
    );
    batches.push(packRecords(emits).map((e) => e.message));
  }
  const topic = `${prefix}raw-produce`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    for (let b = next++; b < batches.length; b = next++) await producer.send({ topic, acks: -1, messages: batches[b] ?? [] });
  };
  await Promise.all([lane(), lane(), lane()]);
  const ms = performance.now() - t0;
  await producer.disconnect();
  return (totalSpans / ms) * 1000;
}

async function rawConsume(messages: number): Promise<number> {
  return (totalSpans / (await rawConsumeMs(kafka, input, `${prefix}raw`, messages))) * 1000;
}

async function ingest(messages: number): Promise<number> {
  const config = loadConfig({
    DRIFTWATCH_LOG_LEVEL: "silent",
    DRIFTWATCH_KAFKA_BROKERS: brokers(),
    DRIFTWATCH_TOPIC_PREFIX: prefix,
    DRIFTWATCH_GROUP_PREFIX: `${prefix}g.`,
    DRIFTWATCH_KAFKA_PARTITIONS: String(partitions),
    DRIFTWATCH_POLICY_DIR: "policies",
    DRIFTWATCH_OPS_PORT: "0",
  });
  const app = await startDistributed(config, ["ingest"], { logger: createLogger("silent") });
  // As for the baseline, the clock runs from the first batch to the last one finished (its
  // actions written with acks=all): read from the stage's own counters, so that neither the
  // group join nor the final offset commit is counted.
  const count = async (metric: "messagesIn" | "messagesHandled") =>
    (await app.metrics[metric].get()).values.find((v) => v.labels.stage === "ingest")?.value ?? 0;
  while ((await count("messagesIn")) === 0) await new Promise((r) => setTimeout(r, 1));
  const start = performance.now();
  while ((await count("messagesHandled")) < messages) await new Promise((r) => setTimeout(r, 2));
  const ms = performance.now() - start;
  await app.close();
  return (totalSpans / ms) * 1000;
}

const requests = await fill();
const messages = requests.length;
const raw = await rawConsume(messages);
const produced = await rawProduce(requests);
const staged = await ingest(messages);
console.log(`spans ${fmt(totalSpans)} in ${fmt(messages)} Kafka messages (${spansPerMessage} spans each), ${partitions} partitions`);
console.log(`baseline  raw kafkajs consume               ${fmt(raw)} spans/s`);
console.log(`floor     raw kafkajs produce of ingest's output ${fmt(produced)} spans/s (${(produced / raw).toFixed(3)} × raw consume)`);
console.log(`ingest    consume + decode + normalise + produce (acks=all) + commit  ${fmt(staged)} spans/s`);
console.log(`ratio     ingest / raw consume              ${(staged / raw).toFixed(3)}`);
