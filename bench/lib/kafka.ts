import { execFileSync } from "node:child_process";
import type { Kafka } from "kafkajs";
import type { BusMessage } from "../../services/runtime/bus/bus.js";

/**
 * What the Kafka benchmarks share: the test servers, OTLP requests as bus messages, and
 * the baseline every Kafka figure is a ratio against (a raw kafkajs consumer).
 */

/** The test Kafka broker and Redis: from DRIFTWATCH_TEST_* when set, else started with scripts/test-env.sh. */
export function testServers(): { brokers: string; redis: string } {
  const { DRIFTWATCH_TEST_KAFKA_BROKERS: brokers, DRIFTWATCH_TEST_REDIS_URL: redis } = process.env;
  if (brokers && redis) return { brokers, redis };
  execFileSync("bash", ["scripts/test-env.sh", "up"], { stdio: ["ignore", "ignore", "inherit"] });
  const env = execFileSync("bash", ["scripts/test-env.sh", "env"], { encoding: "utf8" });
  return {
    brokers: /DRIFTWATCH_TEST_KAFKA_BROKERS=(.*)/.exec(env)?.[1] ?? "127.0.0.1:19092",
    redis: /DRIFTWATCH_TEST_REDIS_URL=(.*)/.exec(env)?.[1] ?? "redis://127.0.0.1:16379",
  };
}

/** OTLP export requests as the ingest stage receives them off the bus. */
export function otlpMessages(requests: Uint8Array[], topic: string, firstOffset = 0): BusMessage[] {
  return requests.map((r, j) => ({
    topic,
    partition: 0,
    offset: String(firstOffset + j),
    key: null,
    value: Buffer.from(r),
    headers: {},
    timestampMs: 0,
  }));
}

/**
 * The baseline: a raw kafkajs consumer reading `messages` messages of `topic` from the
 * beginning, doing nothing with them. Milliseconds from its first batch to its last (the
 * group join is left out, as it is for the stages measured against it).
 */
export async function rawConsumeMs(kafka: Kafka, topic: string, groupId: string, messages: number): Promise<number> {
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  let t0 = 0;
  let t1 = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        if (t0 === 0) t0 = performance.now();
        seen += batch.messages.length;
        if (seen >= messages) {
          t1 = performance.now();
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return t1 - t0;
}
