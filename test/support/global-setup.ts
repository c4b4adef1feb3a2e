import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type {} from "vitest";
import type { TestProject } from "vitest/node";

/**
 * Finds or starts the real servers the integration tests need:
 * - DRIFTWATCH_TEST_KAFKA_BROKERS and DRIFTWATCH_TEST_REDIS_URL, when set, are used as they are;
 * - otherwise scripts/test-env.sh starts a single-node KRaft Apache Kafka broker (from its
 *   Maven Central jars) and a redis-server on loopback, or says clearly why it cannot;
 * - the transport-security tests' servers (the broker's SASL_SSL listener, a TLS Redis with
 *   an ACL user, the test CA) come from the DRIFTWATCH_TEST_* variables `scripts/test-env.sh env`
 *   prints (or the same variables set by hand); without them those tests are skipped.
 */
declare module "vitest" {
  export interface ProvidedContext {
    kafkaBrokers: string;
    redisUrl: string;
    /** The TLS servers of test/e2e/transport-security.test.ts, or null when there are none (external servers without them). */
    transportSecurity: TransportSecurityEnv | null;
  }
}

/** What scripts/test-env.sh env prints for the transport-security tests (or the same DRIFTWATCH_TEST_* variables, set by hand). */
export interface TransportSecurityEnv {
  /** The test CA (PEM file) that issued the servers' and the client's certificates. */
  caFile: string;
  /** A client certificate and key from that CA (mutual TLS). */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** The broker's SASL_SSL listener (TLS; SCRAM-SHA-512, SCRAM-SHA-256, PLAIN) and its user. */
  kafkaBrokers: string;
  kafkaUser: string;
  kafkaPassword: string;
  /** rediss:// URL of a TLS Redis whose ACL user may use keys matching dw*. */
  redisUrl: string;
  redisUser: string;
  redisPassword: string;
}

const TRANSPORT_VARS = {
  caFile: "DRIFTWATCH_TEST_TLS_CA_FILE",
  clientCertFile: "DRIFTWATCH_TEST_TLS_CLIENT_CERT_FILE",
  clientKeyFile: "DRIFTWATCH_TEST_TLS_CLIENT_KEY_FILE",
  kafkaBrokers: "DRIFTWATCH_TEST_KAFKA_SASL_SSL_BROKERS",
  kafkaUser: "DRIFTWATCH_TEST_KAFKA_SASL_USER",
  kafkaPassword: "DRIFTWATCH_TEST_KAFKA_SASL_PASSWORD",
  redisUrl: "DRIFTWATCH_TEST_REDIS_TLS_URL",
  redisUser: "DRIFTWATCH_TEST_REDIS_ACL_USER",
  redisPassword: "DRIFTWATCH_TEST_REDIS_ACL_PASSWORD",
} as const;

/** The transport-security servers from the given variables, or null when one is missing. */
function transportSecurity(vars: Record<string, string | undefined>): TransportSecurityEnv | null {
  const out: Partial<Record<keyof typeof TRANSPORT_VARS, string>> = {};
  for (const [key, name] of Object.entries(TRANSPORT_VARS)) {
    const value = vars[name];
    if (value) out[key as keyof typeof TRANSPORT_VARS] = value;
  }
  const { caFile, kafkaBrokers, kafkaUser, kafkaPassword, redisUrl, redisUser, redisPassword } = out;
  if (!caFile || !kafkaBrokers || !kafkaUser || !kafkaPassword || !redisUrl || !redisUser || !redisPassword) return null;
  return { ...out, caFile, kafkaBrokers, kafkaUser, kafkaPassword, redisUrl, redisUser, redisPassword };
}

const script = fileURLToPath(new URL("../../scripts/test-env.sh", import.meta.url));

export default function setup(project: TestProject) {
  let kafka = process.env.DRIFTWATCH_TEST_KAFKA_BROKERS;
  let redis = process.env.DRIFTWATCH_TEST_REDIS_URL;
  let started = false;
  const vars: Record<string, string | undefined> = { ...process.env };
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
      if (k?.startsWith("DRIFTWATCH_TEST_") && !vars[k]) vars[k] = v.join("=");
    }
  }
  if (!kafka || !redis) throw new Error("scripts/test-env.sh env did not name the Kafka brokers and Redis URL");
  project.provide("kafkaBrokers", kafka);
  project.provide("redisUrl", redis);
  project.provide("transportSecurity", transportSecurity(vars));
  return () => {
    if (started && process.env.DRIFTWATCH_TEST_KEEP_ENV !== "1") {
      execFileSync("bash", [script, "down"], { stdio: ["ignore", "inherit", "inherit"] });
    }
  };
}
