import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import type { Bus } from "../../services/runtime/bus/bus.js";
import { KafkaBus } from "../../services/runtime/bus/kafka-bus.js";
import { type Config, loadConfig } from "../../services/runtime/config.js";
import { createLogger } from "../../services/runtime/logging.js";
import { RedisStore } from "../../services/runtime/store/redis-store.js";

/** Names that keep one test's topics, groups and keys apart from every other test's. */
export function isolation(label: string) {
  const id = `${label}-${randomBytes(4).toString("hex")}`;
  return { id, topicPrefix: `t-${id}.`, groupPrefix: `g-${id}.`, keyPrefix: `k-${id}:` };
}

export const testLogger = createLogger(process.env.DRIFTWATCH_TEST_LOG_LEVEL ?? "silent");

export function kafkaBus(partitions = 3): Bus {
  return new KafkaBus({
    brokers: inject("kafkaBrokers").split(","),
    clientId: "driftwatch-test",
    partitions,
    replicationFactor: 1,
    logger: testLogger,
  });
}

export function redisStore(keyPrefix: string): RedisStore {
  return new RedisStore({ url: inject("redisUrl"), keyPrefix });
}

/** A config for the distributed mode on the test servers, isolated by prefixes, HTTP on free ports. */
export function distributedConfig(iso: ReturnType<typeof isolation>, extra: Record<string, string> = {}): Config {
  return loadConfig({
    DRIFTWATCH_LOG_LEVEL: process.env.DRIFTWATCH_TEST_LOG_LEVEL ?? "silent",
    DRIFTWATCH_KAFKA_BROKERS: inject("kafkaBrokers"),
    DRIFTWATCH_KAFKA_PARTITIONS: "3",
    DRIFTWATCH_REDIS_URL: inject("redisUrl"),
    DRIFTWATCH_REDIS_KEY_PREFIX: iso.keyPrefix,
    DRIFTWATCH_TOPIC_PREFIX: iso.topicPrefix,
    DRIFTWATCH_GROUP_PREFIX: iso.groupPrefix,
    DRIFTWATCH_OTLP_PORT: "0",
    DRIFTWATCH_API_PORT: "0",
    DRIFTWATCH_OPS_PORT: "0",
    DRIFTWATCH_ALERT_STDOUT: "false",
    ...extra,
  });
}
