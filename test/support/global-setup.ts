import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type {} from "vitest";
import type { TestProject } from "vitest/node";

/**
 * Finds or starts the real servers the integration tests need:
 * - DRIFTWATCH_TEST_KAFKA_BROKERS and DRIFTWATCH_TEST_REDIS_URL, when set, are used as they are;
 * - otherwise scripts/test-env.sh starts a single-node KRaft Apache Kafka broker (from its
 *   Maven Central jars) and a redis-server on loopback, or says clearly why it cannot.
 */
declare module "vitest" {
  export interface ProvidedContext {
    kafkaBrokers: string;
    redisUrl: string;
  }
}

const script = fileURLToPath(new URL("../../scripts/test-env.sh", import.meta.url));

export default function setup(project: TestProject) {
  let kafka = process.env.DRIFTWATCH_TEST_KAFKA_BROKERS;
  let redis = process.env.DRIFTWATCH_TEST_REDIS_URL;
  let started = false;
  if (!kafka || !redis) {
    try {
      execFileSync("bash", [script, "up"], { stdio: ["ignore", "inherit", "inherit"] });
    } catch {
      throw new Error(
        "Integration tests need a Kafka broker and a Redis server, and scripts/test-env.sh could not start them (see its message above). " +
          "Either install what it asks for, or point DRIFTWATCH_TEST_KAFKA_BROKERS and DRIFTWATCH_TEST_REDIS_URL at running servers.",
      );
    }
    started = true;
    const env = execFileSync("bash", [script, "env"], { encoding: "utf8" });
    for (const line of env.split("\n")) {
      const [k, ...v] = line.split("=");
      if (k === "DRIFTWATCH_TEST_KAFKA_BROKERS" && !kafka) kafka = v.join("=");
      if (k === "DRIFTWATCH_TEST_REDIS_URL" && !redis) redis = v.join("=");
    }
  }
  if (!kafka || !redis) throw new Error("scripts/test-env.sh env did not name the Kafka brokers and Redis URL");
  project.provide("kafkaBrokers", kafka);
  project.provide("redisUrl", redis);
  return () => {
    if (started && process.env.DRIFTWATCH_TEST_KEEP_ENV !== "1") {
      execFileSync("bash", [script, "down"], { stdio: ["ignore", "inherit", "inherit"] });
    }
  };
}
