/**
 * One hop of the latency benchmark's baseline: a plain kafkajs consumer that forwards every
 * message of `RELAY_FROM` to `RELAY_TO` unchanged (same key, value and headers), or, on the
 * last hop (`RELAY_STORE` set), POSTs `{"credential_id": <key>}` to the store for each probe
 * message (key starting with `probe-`), or for every message with `RELAY_POST_ALL=1` (as
 * many requests as a pipeline that revokes every task's credential makes). It consumes as
 * the Kafka bus does (services/runtime/bus/kafka-bus.ts: eachBatch, 3 partitions at once, produce with
 * acks=all, then resolve and commit), with kafkajs's default fetch settings, and does
 * nothing else: what the pipeline's Kafka topology costs when its stages have no work.
 *
 *   node --import tsx bench/lib/relay.ts      (env: RELAY_BROKERS, RELAY_GROUP, RELAY_FROM, RELAY_TO | RELAY_STORE [RELAY_POST_ALL])
 */
import { Kafka, logLevel, Partitioners } from "kafkajs";

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const kafka = new Kafka({ clientId: "bench-relay", brokers: env("RELAY_BROKERS").split(","), logLevel: logLevel.NOTHING });
const to = process.env.RELAY_TO;
const store = process.env.RELAY_STORE;
const postAll = process.env.RELAY_POST_ALL === "1";
const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
const consumer = kafka.consumer({
  groupId: env("RELAY_GROUP"),
  allowAutoTopicCreation: false,
  sessionTimeout: 30_000,
  heartbeatInterval: 3_000,
});
if (to) await producer.connect();
await consumer.connect();
await consumer.subscribe({ topics: [env("RELAY_FROM")], fromBeginning: true });
await consumer.run({
  autoCommit: true,
  eachBatchAutoResolve: false,
  partitionsConsumedConcurrently: 3,
  eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isRunning, isStale }) => {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    if (to) {
      await producer.send({
        topic: to,
        acks: -1,
        messages: batch.messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers ?? {} })),
      });
    } else if (store) {
      await Promise.all(
        batch.messages
          .map((m) => m.key?.toString("utf8") ?? "")
          .filter((k) => postAll || k.startsWith("probe-"))
          .map((k) =>
            fetch(store, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ credential_id: k }),
            }).then((r) => r.arrayBuffer()),
          ),
      );
    }
    resolveOffset(batch.messages[batch.messages.length - 1]?.offset as string);
    await commitOffsetsIfNecessary();
    await heartbeat();
  },
});
process.send?.("ready");
const stop = async () => {
  await consumer.disconnect().catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  process.exit(0);
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
