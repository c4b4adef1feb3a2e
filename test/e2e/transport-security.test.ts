import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Finding } from "../../schemas/finding.js";
import type { TaskEvent } from "../../schemas/lifecycle.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { KafkaSpanExporter } from "../../sdk/kafka-span-exporter.js";
import { type App, startDistributed } from "../../services/cli/app.js";
import { readTopicRange } from "../../services/cli/replay-kafka.js";
import { billingScenario, runScenarioAgent } from "../../services/cli/scenario.js";
import type { BusMessage } from "../../services/runtime/bus/bus.js";
import { KafkaBus, kafkaSecurityOptions } from "../../services/runtime/bus/kafka-bus.js";
import { type Config, loadConfig } from "../../services/runtime/config.js";
import { RedisStore } from "../../services/runtime/store/redis-store.js";
import { isolation } from "../support/ports.js";
import { eventually } from "../support/wait.js";

/**
 * Transport security against the real servers scripts/test-env.sh starts: the broker's
 * SASL_SSL listener (TLS from the test CA; SCRAM-SHA-512, SCRAM-SHA-256, PLAIN) and a
 * TLS-only Redis whose default user is off and whose ACL user may use keys matching dw*.
 * Every client is configured the way a deployment is: DRIFTWATCH_* variables through
 * loadConfig. Nothing is mocked.
 */
const sec = inject("transportSecurity");
if (!sec) console.warn("transport-security tests skipped: no SASL_SSL broker / TLS Redis (see scripts/test-env.sh env)");

/** Log lines written while the tests run: no password may be among them. */
const logLines: string[] = [];
const logger = pino(
  { level: "debug" },
  new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  }),
);

describe.skipIf(!sec)("transport security (real Kafka SASL_SSL listener, real TLS Redis with an ACL user)", () => {
  const s = sec as NonNullable<typeof sec>;
  const iso = isolation("tls");
  const dir = mkdtempSync(join(tmpdir(), "dw-transport-"));
  const kafkaPasswordFile = join(dir, "kafka-password");
  const redisPasswordFile = join(dir, "redis-password");
  const keyPrefix = `dw-${iso.id}:`;
  const closers: (() => Promise<unknown>)[] = [];

  /** The variables of a deployment on these servers; `over` changes or (undefined) removes some. */
  function env(over: Record<string, string | undefined> = {}): Record<string, string | undefined> {
    return {
      DRIFTWATCH_LOG_LEVEL: "debug",
      DRIFTWATCH_KAFKA_BROKERS: s.kafkaBrokers,
      DRIFTWATCH_KAFKA_PARTITIONS: "3",
      DRIFTWATCH_KAFKA_SSL: "true",
      DRIFTWATCH_KAFKA_SSL_CA_FILE: s.caFile,
      DRIFTWATCH_KAFKA_SASL_MECHANISM: "scram-sha-512",
      DRIFTWATCH_KAFKA_SASL_USERNAME: s.kafkaUser,
      DRIFTWATCH_KAFKA_SASL_PASSWORD_FILE: kafkaPasswordFile,
      DRIFTWATCH_REDIS_URL: s.redisUrl,
      DRIFTWATCH_REDIS_TLS_CA_FILE: s.caFile,
      DRIFTWATCH_REDIS_USERNAME: s.redisUser,
      DRIFTWATCH_REDIS_PASSWORD_FILE: redisPasswordFile,
      DRIFTWATCH_REDIS_KEY_PREFIX: keyPrefix,
      DRIFTWATCH_TOPIC_PREFIX: iso.topicPrefix,
      DRIFTWATCH_GROUP_PREFIX: iso.groupPrefix,
      DRIFTWATCH_POLICY_DIR: "policies",
      DRIFTWATCH_OTLP_PORT: "0",
      DRIFTWATCH_API_PORT: "0",
      DRIFTWATCH_OPS_PORT: "0",
      DRIFTWATCH_ALERT_STDOUT: "false",
      ...over,
    };
  }
  const configOf = (over: Record<string, string | undefined> = {}): Config => loadConfig(env(over));
  const busOf = (config: Config) => {
    const bus = new KafkaBus({ ...config.kafka, clientId: `driftwatch-test-${iso.id}`, logger });
    closers.push(() => bus.close());
    return bus;
  };
  const storeOf = (config: Config, prefix = keyPrefix) => {
    const store = new RedisStore({ ...config.redis, keyPrefix: prefix, logger });
    closers.push(() => store.close());
    return store;
  };
  /** How a promise failed (it must fail), and how long that took. */
  async function failure(p: Promise<unknown>): Promise<{ message: string; ms: number }> {
    const t0 = Date.now();
    try {
      await p;
    } catch (err) {
      return { message: (err as Error).message, ms: Date.now() - t0 };
    }
    throw new Error("expected a failure");
  }

  beforeAll(() => {
    writeFileSync(kafkaPasswordFile, `${s.kafkaPassword}\n`);
    writeFileSync(redisPasswordFile, `${s.redisPassword}\n`);
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    // nothing any client logged carries a password
    const logs = logLines.join("");
    expect(logs).not.toContain(s.kafkaPassword);
    expect(logs).not.toContain(s.redisPassword);
  });

  describe("Kafka", () => {
    it("a KafkaBus with TLS and SCRAM-SHA-512 produces and consumes; replay reads the range back over the same listener", async () => {
      const config = configOf();
      expect(config.kafka.ssl?.ca).toContain("BEGIN CERTIFICATE");
      expect(config.kafka.sasl).toEqual({ mechanism: "scram-sha-512", username: s.kafkaUser, password: { file: kafkaPasswordFile } });
      const bus = busOf(config);
      const topic = `${iso.topicPrefix}tls-roundtrip`;
      await bus.ensureTopics([topic]);
      const got: BusMessage[] = [];
      const sub = await bus.subscribe({ group: `${iso.groupPrefix}roundtrip`, topics: [topic], fromBeginning: true }, async (batch) => {
        got.push(...batch);
      });
      closers.push(() => sub.close());
      await bus.publish(topic, [
        { key: "task-1", value: "over TLS and SCRAM", headers: { "content-type": "application/json" } },
        { key: "task-2", value: Buffer.from([0, 1, 2, 254, 255]) },
      ]);
      await eventually(() => (got.length >= 2 ? true : undefined), 60_000, "both messages consumed");
      const byKey = new Map(got.map((m) => [m.key, m]));
      expect(byKey.get("task-1")?.value.toString()).toBe("over TLS and SCRAM");
      expect(byKey.get("task-1")?.headers["content-type"]).toBe("application/json");
      expect(byKey.get("task-2")?.value).toEqual(Buffer.from([0, 1, 2, 254, 255]));

      // `driftwatch replay --topic` reads with the same settings
      const read = await readTopicRange(
        { brokers: config.kafka.brokers, topic },
        { security: config.kafka, groupPrefix: iso.groupPrefix, logger },
      );
      expect(read.requests.map((r) => r.bytes.toString("hex")).sort()).toEqual(
        [Buffer.from("over TLS and SCRAM").toString("hex"), Buffer.from([0, 1, 2, 254, 255]).toString("hex")].sort(),
      );
    });

    it.each(["scram-sha-256", "plain"])("%s authenticates over TLS too", async (mechanism) => {
      const bus = busOf(configOf({ DRIFTWATCH_KAFKA_SASL_MECHANISM: mechanism }));
      await expect(bus.ensureTopics([`${iso.topicPrefix}tls-${mechanism}`])).resolves.toBeUndefined();
    });

    it("mutual TLS: the client certificate from the CA is accepted alongside SASL", async () => {
      if (!s.clientCertFile || !s.clientKeyFile) return;
      const config = configOf({ DRIFTWATCH_KAFKA_SSL_CERT_FILE: s.clientCertFile, DRIFTWATCH_KAFKA_SSL_KEY_FILE: s.clientKeyFile });
      expect(config.kafka.ssl?.cert).toContain("BEGIN CERTIFICATE");
      expect(await busOf(config).ready()).toBe(true);
    });

    it("a wrong password fails at once with an authentication error that names the mechanism, not the password", async () => {
      const wrong = "not-the-password-0c5e";
      for (const mechanism of ["scram-sha-512", "plain"] as const) {
        const bus = busOf(
          configOf({
            DRIFTWATCH_KAFKA_SASL_MECHANISM: mechanism,
            DRIFTWATCH_KAFKA_SASL_PASSWORD_FILE: undefined,
            DRIFTWATCH_KAFKA_SASL_PASSWORD: wrong,
          }),
        );
        const { message, ms } = await failure(bus.ensureTopics([`${iso.topicPrefix}never`]));
        expect(message).toMatch(mechanism === "plain" ? /SASL PLAIN authentication failed/ : /SASL SCRAM SHA512 authentication failed/);
        expect(message).toMatch(/invalid (credentials|username or password)/i);
        expect(message).not.toContain(wrong);
        expect(message).not.toContain(s.kafkaPassword);
        expect(ms).toBeLessThan(15_000); // not retried: a wrong password stays wrong
        expect(await bus.ready()).toBe(false);
      }
      expect(logLines.join("")).not.toContain(wrong);
    });

    it("TLS without the test CA fails with a certificate error", async () => {
      const bus = busOf(configOf({ DRIFTWATCH_KAFKA_SSL_CA_FILE: undefined }));
      const { message } = await failure(bus.ensureTopics([`${iso.topicPrefix}never`]));
      expect(message).toMatch(/certificate/i);
      expect(message).toMatch(/self-signed|unable to verify|unable to get (local )?issuer/i);
    });

    it("the name checked against the broker's certificate can be set: one it carries passes, another fails", async () => {
      expect(await busOf(configOf({ DRIFTWATCH_KAFKA_SSL_SERVERNAME: "localhost" })).ready()).toBe(true);
      const bus = busOf(configOf({ DRIFTWATCH_KAFKA_SSL_SERVERNAME: "kafka.invalid" }));
      expect((await failure(bus.ensureTopics([`${iso.topicPrefix}never`]))).message).toMatch(/does not match certificate's altnames/);
    });

    it("the SASL_SSL listener speaks TLS only: a client without TLS gets no answer", async () => {
      const bus = busOf(
        configOf({ DRIFTWATCH_KAFKA_SSL: "false", DRIFTWATCH_KAFKA_SSL_CA_FILE: undefined, DRIFTWATCH_KAFKA_SASL_ALLOW_PLAINTEXT: "true" }),
      );
      expect(await bus.ready()).toBe(false);
    });
  });

  describe("Redis", () => {
    it("a RedisStore over TLS as the ACL user reads and writes (its password from a file)", async () => {
      const config = configOf();
      expect(config.redis).toMatchObject({ username: s.redisUser, password: { file: redisPasswordFile } });
      const store = storeOf(config);
      expect(await store.ping()).toBe(true);
      await store.set("greeting", "hello over TLS", { ttlMs: 60_000 });
      expect(await store.get("greeting")).toBe("hello over TLS");
      await store.hashSetIfAbsent("h", { a: "1" });
      await store.hashSetIfAbsent("h", { a: "2", b: "3" });
      expect(await store.hashGetAll("h")).toEqual({ a: "1", b: "3" });
      await store.sortedAdd("z", [
        { score: 2, member: "two" },
        { score: 1, member: "one" },
      ]);
      expect(await store.sortedRange("z", { offset: 0, limit: 10 })).toEqual(["one", "two"]);
      await store.delete("greeting", "h", "z");
    });

    it("mutual TLS: the client certificate from the CA is accepted", async () => {
      if (!s.clientCertFile || !s.clientKeyFile) return;
      const store = storeOf(configOf({ DRIFTWATCH_REDIS_TLS_CERT_FILE: s.clientCertFile, DRIFTWATCH_REDIS_TLS_KEY_FILE: s.clientKeyFile }));
      await store.set("mtls", "ok", { ttlMs: 60_000 });
      expect(await store.get("mtls")).toBe("ok");
    });

    it("the ACL keeps the user to its keys: a key outside dw* is refused, in a pipeline too", async () => {
      const store = storeOf(configOf(), `other-${iso.id}:`);
      expect((await failure(store.set("k", "v"))).message).toMatch(
        /^Redis rediss:\/\/127\.0\.0\.1:\d+ \(user [^)]+\): refused by the user's ACL: NOPERM/,
      );
      expect((await failure(store.hashSetIfAbsent("h", { a: "1" }))).message).toMatch(/refused by the user's ACL: NOPERM/);
    });

    it("a wrong password fails clearly, naming the server and user, not the password", async () => {
      const wrong = "not-the-password-9a1f";
      const store = storeOf(configOf({ DRIFTWATCH_REDIS_PASSWORD_FILE: undefined, DRIFTWATCH_REDIS_PASSWORD: wrong }));
      const { message } = await failure(store.get("greeting"));
      expect(message).toMatch(/^Redis rediss:\/\/127\.0\.0\.1:\d+ \(user [^)]+\): authentication failed: WRONGPASS/);
      expect(message).not.toContain(wrong);
      expect(await store.ping()).toBe(false);
      expect(logLines.join("")).not.toContain(wrong);
    });

    it("the default user is off on the TLS port", async () => {
      const store = storeOf(configOf({ DRIFTWATCH_REDIS_USERNAME: undefined, DRIFTWATCH_REDIS_PASSWORD_FILE: undefined }));
      expect((await failure(store.get("greeting"))).message).toMatch(/authentication failed: NOAUTH/);
    });

    it("TLS without the test CA fails with a certificate error, not a bare 'max retries'", async () => {
      const store = storeOf(configOf({ DRIFTWATCH_REDIS_TLS_CA_FILE: undefined }));
      const { message } = await failure(store.get("greeting"));
      expect(message).toMatch(/^Redis rediss:\/\/127\.0\.0\.1:\d+ \(user [^)]+\): cannot connect: /);
      expect(message).toMatch(/self-signed certificate|unable to verify/);
      expect(message).toContain("the server's TLS certificate was not accepted");
      expect(logLines.some((l) => l.includes("redis connection error") && /certificate/.test(l))).toBe(true);
    });
  });

  describe("the pipeline", () => {
    let app: App | undefined;
    afterAll(async () => {
      await app?.close();
    });

    it("ingest, pathfinder and detector run end to end over TLS+SCRAM Kafka and TLS+ACL Redis, configured from the environment", async () => {
      const config = configOf();
      app = await startDistributed(config, ["ingest", "pathfinder", "detector"], { logger });

      // what the detector says, read over the same listener
      const watch = busOf(config);
      const findings: Finding[] = [];
      const events: TaskEvent[] = [];
      const findingsTopic = topicName(config.topicPrefix, TOPICS.findings);
      const sub = await watch.subscribe(
        { group: `${iso.groupPrefix}watch`, topics: [findingsTopic, topicName(config.topicPrefix, TOPICS.lifecycle)], fromBeginning: true },
        async (batch) => {
          for (const m of batch) {
            const value = JSON.parse(m.value.toString()) as unknown;
            const records = (Array.isArray(value) ? value : [value]) as (Finding & TaskEvent)[];
            (m.topic === findingsTopic ? findings : events).push(...records);
          }
        },
      );
      closers.push(() => sub.close());

      // an agent exports its spans straight to otlp_spans with the SDK's Kafka exporter, over TLS and SCRAM
      const scenario = billingScenario();
      const exporter = new KafkaSpanExporter({
        brokers: config.kafka.brokers,
        topic: topicName(config.topicPrefix, TOPICS.otlpSpans),
        kafka: kafkaSecurityOptions(config.kafka),
      });
      await runScenarioAgent(scenario, exporter);

      const drift = await eventually(
        () => findings.find((f) => f.taskId === scenario.drifting.taskId),
        90_000,
        "the drifting task's finding",
      );
      expect(drift).toMatchObject({ ruleId: "scope.tool", kind: "out_of_scope", stepIndex: 2, agentId: "billing-agent" });
      expect(drift.evidence.observed).toEqual({ tool: "shell.exec" });
      // the benign task completes without a finding
      await eventually(
        () => events.find((e) => e.taskId === scenario.benign.taskId && e.trigger === "task_completed"),
        60_000,
        "the benign task's completion",
      );
      expect(findings.filter((f) => f.taskId === scenario.benign.taskId)).toEqual([]);

      // the pipeline's state is in the TLS Redis, under the prefix the ACL allows
      const store = storeOf(config);
      const keys = await store.redis.keys(`${keyPrefix}*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.some((k) => k.includes(scenario.drifting.taskId))).toBe(true);
    });
  });
});
