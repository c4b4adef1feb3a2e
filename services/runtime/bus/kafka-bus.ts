import { type Admin, type Consumer, Kafka, type KafkaConfig, logLevel, Partitioners, type Producer, type SASLOptions } from "kafkajs";
import type { Logger } from "pino";
import { secretFrom } from "../secret-source.js";
import { type KafkaSecurity, tlsConnectionOptions } from "../transport-config.js";
import {
  type BatchHandler,
  type Bus,
  type BusMessage,
  headersToStrings,
  type OutgoingMessage,
  type PartitionLag,
  type SubscribeOptions,
  type Subscription,
} from "./bus.js";

export interface KafkaBusOptions extends KafkaSecurity {
  brokers: string[];
  clientId: string;
  partitions: number;
  replicationFactor: number;
  logger: Logger;
  /** How many partitions one consumer works on at once (order is kept within each). */
  partitionsConsumedConcurrently?: number;
  /** Values sent in one produce call add up to at most this (default 768 KiB, under the broker's 1 MB message.max.bytes). */
  maxRequestBytes?: number;
}

/** What the metadata of a topic just created may answer for a moment. */
const NEW_TOPIC_METADATA_ERRORS = new Set(["UNKNOWN_TOPIC_OR_PARTITION", "LEADER_NOT_AVAILABLE"]);

const DEFAULT_MAX_REQUEST_BYTES = 768 * 1024;

/**
 * kafkajs's `ssl` and `sasl` options for the configured transport security (TLS: the CA,
 * a client certificate, server verification; SASL: plain or SCRAM). The SASL password is
 * read at every authentication, so a rotated password file is used by the next connection.
 */
export function kafkaSecurityOptions(security: KafkaSecurity | undefined): Pick<KafkaConfig, "ssl" | "sasl"> {
  const out: Pick<KafkaConfig, "ssl" | "sasl"> = {};
  if (security?.ssl) out.ssl = tlsConnectionOptions(security.ssl);
  const sasl = security?.sasl;
  if (sasl) {
    const password = secretFrom(sasl.password);
    out.sasl = {
      mechanism: sasl.mechanism,
      username: sasl.username,
      get password() {
        return password.read();
      },
    } as SASLOptions;
  }
  return out;
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
  /** The admin client that reads lag (one connection, made when first asked, kept). */
  private lagAdmin: Promise<Admin> | undefined;

  constructor(private readonly options: KafkaBusOptions) {
    const config: KafkaConfig = {
      clientId: options.clientId,
      brokers: options.brokers,
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(options.logger),
      retry: { retries: 8, initialRetryTime: 200 },
      ...kafkaSecurityOptions(options),
    };
    if (options.ssl?.rejectUnauthorized === false)
      options.logger.warn("Kafka TLS: the brokers' certificates are not verified (DRIFTWATCH_KAFKA_SSL_REJECT_UNAUTHORIZED=false)");
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
      for (let attempt = 1; ; attempt++) {
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
          // after a retry, the topics exist: make sure the broker's metadata knows them before going on
          if (attempt > 1) await admin.fetchTopicMetadata({ topics });
          return;
        } catch (err) {
          // KRaft: right after the controller created a topic, the broker's metadata may not know it
          // yet (UNKNOWN_TOPIC_OR_PARTITION, which kafkajs's wait for leaders does not retry)
          if (attempt >= 20 || !NEW_TOPIC_METADATA_ERRORS.has((err as { type?: string }).type ?? "")) throw err;
          await new Promise((r) => setTimeout(r, 250));
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

  async lag(group: string, topics: string[]): Promise<PartitionLag[]> {
    this.lagAdmin ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })().catch((err: unknown) => {
      this.lagAdmin = undefined;
      throw err;
    });
    const admin = await this.lagAdmin;
    const [committed, ends] = await Promise.all([
      admin.fetchOffsets({ groupId: group, topics }),
      Promise.all(topics.map(async (topic) => ({ topic, offsets: await admin.fetchTopicOffsets(topic) }))),
    ]);
    const done = new Map<string, number>();
    for (const t of committed) for (const p of t.partitions) done.set(`${t.topic}/${p.partition}`, Number(p.offset));
    const out: PartitionLag[] = [];
    for (const { topic, offsets } of ends) {
      for (const p of offsets) {
        const end = Number(p.high);
        // -1: the group has committed nothing on the partition yet, all of it is to read
        const at = done.get(`${topic}/${p.partition}`) ?? -1;
        out.push({ topic, partition: p.partition, lag: at < 0 ? end - Number(p.low) : Math.max(0, end - at) });
      }
    }
    return out;
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
    // The broker refuses a partition's record batch above its message.max.bytes (1 MB by
    // default) and kafkajs sends a call's messages for one partition as one batch: send in
    // chunks whose values add up to less than that, one after another (order is kept).
    const limit = this.options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    let chunk: OutgoingMessage[] = [];
    let bytes = 0;
    const send = async () => {
      if (chunk.length === 0) return;
      await this.producer.send({
        topic,
        acks: -1,
        messages: chunk.map((m) => ({ key: m.key ?? null, value: m.value, headers: m.headers ?? {} })),
      });
      chunk = [];
      bytes = 0;
    };
    for (const m of messages) {
      const size = (typeof m.value === "string" ? Buffer.byteLength(m.value) : m.value.length) + (m.key?.length ?? 0) + 64;
      if (bytes + size > limit) await send();
      chunk.push(m);
      bytes += size;
    }
    await send();
  }

  async subscribe(options: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
    const consumer = this.kafka.consumer({
      groupId: options.group,
      allowAutoTopicCreation: false,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      // a batch handler fails only when something outside the message is wrong (bad input is
      // dead-lettered by the stage): the consumer restarts and the batch is tried again,
      // whatever kafkajs thinks of the error's retriability
      retry: { retries: 8, initialRetryTime: 300, restartOnFailure: async () => true },
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
      // kafkajs (2.2.4) commits the resolved offsets after every batch (runner.js,
      // autoCommitOffsets): a crash redelivers at most the batches in flight.
      autoCommit: true,
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
    const admin = this.lagAdmin;
    this.lagAdmin = undefined;
    if (admin) await admin.then((a) => a.disconnect()).catch(() => undefined);
    if (this.producerConnected) await this.producer.disconnect().catch(() => undefined);
  }
}
