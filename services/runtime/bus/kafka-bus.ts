import { type Consumer, Kafka, type KafkaConfig, logLevel, Partitioners, type Producer } from "kafkajs";
import type { Logger } from "pino";
import {
  type BatchHandler,
  type Bus,
  type BusMessage,
  headersToStrings,
  type OutgoingMessage,
  type SubscribeOptions,
  type Subscription,
} from "./bus.js";

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  partitions: number;
  replicationFactor: number;
  logger: Logger;
  /** How many partitions one consumer works on at once (order is kept within each). */
  partitionsConsumedConcurrently?: number;
  /** How often resolved offsets are committed (default 500 ms). */
  commitIntervalMs?: number;
}

/** Routes kafkajs's own logs into the process logger. */
function kafkaLogCreator(logger: Logger) {
  return () =>
    ({ level, log }: { level: logLevel; log: { message: string } & Record<string, unknown> }) => {
      const { message, ...extra } = log;
      if (level <= logLevel.ERROR) logger.error(extra, `kafka: ${message}`);
      else if (level === logLevel.WARN) logger.warn(extra, `kafka: ${message}`);
      else logger.debug(extra, `kafka: ${message}`);
    };
}

/**
 * The Bus on Apache Kafka (kafkajs). Produces with acks=all; consumes with consumer
 * groups and commits a partition's offsets only after the batch handler resolved.
 */
export class KafkaBus implements Bus {
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private producerConnected: Promise<void> | undefined;
  private readonly consumers = new Set<Consumer>();

  constructor(private readonly options: KafkaBusOptions) {
    const config: KafkaConfig = {
      clientId: options.clientId,
      brokers: options.brokers,
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(options.logger),
      retry: { retries: 8, initialRetryTime: 200 },
    };
    this.kafka = new Kafka(config);
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: false,
      // the Java client's murmur2 partitioner: a key lands where other Kafka clients would put it
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  async ensureTopics(topics: string[]): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t));
      if (missing.length > 0) {
        try {
          await admin.createTopics({
            waitForLeaders: true,
            topics: missing.map((topic) => ({
              topic,
              numPartitions: this.options.partitions,
              replicationFactor: this.options.replicationFactor,
            })),
          });
        } catch (err) {
          // several services starting at once race to create the same topics: losing the race is fine
          const all = [err, ...((err as { errors?: unknown[] }).errors ?? [])] as { type?: string }[];
          if (!all.some((e) => e.type === "TOPIC_ALREADY_EXISTS")) throw err;
        }
      }
    } finally {
      await admin.disconnect();
    }
  }

  async ready(): Promise<boolean> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      await admin.describeCluster();
      return true;
    } catch {
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private connectProducer(): Promise<void> {
    this.producerConnected ??= this.producer.connect().catch((err: unknown) => {
      this.producerConnected = undefined;
      throw err;
    });
    return this.producerConnected;
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.connectProducer();
    await this.producer.send({
      topic,
      acks: -1,
      messages: messages.map((m) => ({ key: m.key ?? null, value: m.value, headers: m.headers ?? {} })),
    });
  }

  async subscribe(options: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
    const consumer = this.kafka.consumer({
      groupId: options.group,
      allowAutoTopicCreation: false,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
    });
    this.consumers.add(consumer);
    let resolveJoined: () => void = () => undefined;
    const joined = new Promise<void>((resolve) => {
      resolveJoined = resolve;
    });
    // every (re)join may bring another share of the partitions
    consumer.on(consumer.events.GROUP_JOIN, () => {
      options.onRebalance?.();
      resolveJoined();
    });
    consumer.on(consumer.events.CRASH, (e) => {
      this.options.logger.error({ err: e.payload.error, group: options.group, restart: e.payload.restart }, "kafka consumer crashed");
    });
    await consumer.connect();
    await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning ?? false });
    await consumer.run({
      // Only resolved offsets are ever committed, and an offset is resolved only after the
      // handler (and so the stage's produce, acks=all) finished: commit-after-produce holds.
      // Committing on an interval rather than after every batch saves a round trip per
      // batch; a crash redelivers at most the last interval's batches (effects are idempotent).
      autoCommit: true,
      autoCommitInterval: this.options.commitIntervalMs ?? 500,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 3,
      eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary }) => {
        if (batch.messages.length === 0 || !isRunning() || isStale()) return;
        const messages: BusMessage[] = batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key ? m.key.toString("utf8") : null,
          value: m.value ?? Buffer.alloc(0),
          headers: headersToStrings(m.headers),
          timestampMs: Number(m.timestamp),
        }));
        await handler(messages);
        const last = messages[messages.length - 1] as BusMessage;
        // the fetch position moves only past resolved offsets; the commit makes it durable
        resolveOffset(last.offset);
        await commitOffsetsIfNecessary();
        await heartbeat();
      },
    });
    await Promise.race([
      joined,
      new Promise<void>((_, reject) =>
        setTimeout(() => reject(new Error(`consumer group ${options.group} did not join within 60s`)), 60_000).unref(),
      ),
    ]);
    return {
      close: async () => {
        this.consumers.delete(consumer);
        await consumer.disconnect();
      },
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.consumers].map((c) => c.disconnect()));
    this.consumers.clear();
    if (this.producerConnected) await this.producer.disconnect().catch(() => undefined);
  }
}
