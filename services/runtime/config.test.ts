import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

const SECRET = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
const OTHER_SECRET = `whsec_${Buffer.from("fedcba9876543210fedcba9876543210").toString("base64")}`;

const dir = mkdtempSync(join(tmpdir(), "dw-config-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

describe("loadConfig", () => {
  it("gives the documented defaults for an empty environment", () => {
    expect(loadConfig({})).toEqual({
      logLevel: "info",
      kafka: { brokers: ["127.0.0.1:9092"], clientId: "driftwatch", partitions: 6, replicationFactor: 1 },
      topicPrefix: "",
      groupPrefix: "driftwatch.",
      packRecords: true,
      redis: { url: "redis://127.0.0.1:6379", keyPrefix: "dw:" },
      otlp: { host: "127.0.0.1", port: 4318, maxBodyBytes: 4 * 1024 * 1024, maxInflight: 64 },
      ingest: { encoding: "auto" },
      api: { host: "127.0.0.1", port: 8080 },
      policyDir: "policies",
      tasks: { latenessMs: 30_000, idleMs: 300_000, ttlMs: 604_800_000, cachedTasks: 50_000, silenceSweepMs: 10_000 },
      baselines: { sweepMs: 10_000, settleMs: 60_000 },
      revoker: { minSeverity: "high" },
      notifier: { stdout: true },
      webhookTimeoutMs: 5000,
    });
  });

  it("does not read process.env when given an environment", () => {
    const saved = process.env.DRIFTWATCH_API_PORT;
    process.env.DRIFTWATCH_API_PORT = "not-a-port";
    try {
      expect(loadConfig({}).api.port).toBe(8080);
    } finally {
      if (saved === undefined) delete process.env.DRIFTWATCH_API_PORT;
      else process.env.DRIFTWATCH_API_PORT = saved;
    }
  });

  it("reads and converts every kind of variable", () => {
    const c = loadConfig({
      DRIFTWATCH_LOG_LEVEL: "debug",
      DRIFTWATCH_KAFKA_BROKERS: " k1:9092 , k2:9092,, ",
      DRIFTWATCH_KAFKA_PARTITIONS: "12",
      DRIFTWATCH_TOPIC_PREFIX: "staging.",
      DRIFTWATCH_REDIS_URL: "rediss://cache.internal:6380/2",
      DRIFTWATCH_API_PORT: "9090",
      DRIFTWATCH_OTLP_PORT: "0",
      DRIFTWATCH_REVOKE_MIN_SEVERITY: "critical",
      DRIFTWATCH_ALERT_STDOUT: "no",
      DRIFTWATCH_WEBHOOK_TIMEOUT_MS: "250",
      DRIFTWATCH_REVOKE_WEBHOOK_URL: "https://vault-bridge.internal/revoke",
      DRIFTWATCH_REVOKE_WEBHOOK_SECRET: SECRET,
      DRIFTWATCH_ALERT_WEBHOOK_URL: "http://soc.internal/hook",
      DRIFTWATCH_ALERT_WEBHOOK_SECRET: OTHER_SECRET,
    });
    expect(c.logLevel).toBe("debug");
    expect(c.kafka.brokers).toEqual(["k1:9092", "k2:9092"]);
    expect(c.kafka.partitions).toBe(12);
    expect(c.topicPrefix).toBe("staging.");
    expect(c.redis.url).toBe("rediss://cache.internal:6380/2");
    expect(c.api.port).toBe(9090);
    expect(c.otlp.port).toBe(0);
    expect(c.revoker).toEqual({ minSeverity: "critical", webhook: { url: "https://vault-bridge.internal/revoke", secret: SECRET } });
    expect(c.notifier).toEqual({ stdout: false, webhook: { url: "http://soc.internal/hook", secret: OTHER_SECRET } });
    expect(c.webhookTimeoutMs).toBe(250);
  });

  it.each([
    ["true", true],
    ["1", true],
    ["yes", true],
    ["false", false],
    ["0", false],
    ["no", false],
  ])("reads DRIFTWATCH_ALERT_STDOUT=%s as %s", (value, expected) => {
    expect(loadConfig({ DRIFTWATCH_ALERT_STDOUT: value }).notifier.stdout).toBe(expected);
  });

  it("treats an empty variable as unset", () => {
    const c = loadConfig({ DRIFTWATCH_API_PORT: "", DRIFTWATCH_KAFKA_BROKERS: "", DRIFTWATCH_REVOKE_WEBHOOK_URL: "" });
    expect(c.api.port).toBe(8080);
    expect(c.kafka.brokers).toEqual(["127.0.0.1:9092"]);
    expect(c.revoker.webhook).toBeUndefined();
  });

  it("ignores variables without the DRIFTWATCH_ prefix", () => {
    expect(loadConfig({ PORT: "abc", API_PORT: "abc" }).api.port).toBe(8080);
  });
});

describe("loadConfig: a bad variable is named in the error", () => {
  it.each([
    ["DRIFTWATCH_API_PORT", "abc"],
    ["DRIFTWATCH_API_PORT", "70000"],
    ["DRIFTWATCH_OTLP_PORT", "-1"],
    ["DRIFTWATCH_KAFKA_BROKERS", " , ,"],
    ["DRIFTWATCH_KAFKA_PARTITIONS", "0"],
    ["DRIFTWATCH_KAFKA_PARTITIONS", "1.5"],
    ["DRIFTWATCH_LOG_LEVEL", "loud"],
    ["DRIFTWATCH_TOPIC_PREFIX", "a/b"],
    ["DRIFTWATCH_REDIS_URL", "http://127.0.0.1:6379"],
    ["DRIFTWATCH_REVOKE_MIN_SEVERITY", "severe"],
    ["DRIFTWATCH_ALERT_STDOUT", "maybe"],
    ["DRIFTWATCH_REVOKE_WEBHOOK_URL", "ftp://example.com/x"],
    ["DRIFTWATCH_WEBHOOK_TIMEOUT_MS", "soon"],
  ])("%s=%j", (name, value) => {
    const env: NodeJS.ProcessEnv = { [name]: value };
    if (name === "DRIFTWATCH_REVOKE_WEBHOOK_URL") env.DRIFTWATCH_REVOKE_WEBHOOK_SECRET = SECRET;
    const err = configError(env);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(new RegExp(`^${name}: `));
    expect(err.message).toContain(name);
    // the offending value is echoed for non-secret variables
    expect(err.message).toContain(JSON.stringify(value));
  });

  it("lists every bad variable, not only the first", () => {
    const err = configError({ DRIFTWATCH_API_PORT: "abc", DRIFTWATCH_LOG_LEVEL: "loud" });
    expect(err.problems.map((p) => p.split(":")[0]).sort()).toEqual(["DRIFTWATCH_API_PORT", "DRIFTWATCH_LOG_LEVEL"]);
  });

  it("a webhook URL without a secret is an error naming the secret variable", () => {
    const err = configError({ DRIFTWATCH_REVOKE_WEBHOOK_URL: "https://hooks.example/revoke" });
    expect(err.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_REVOKE_WEBHOOK_SECRET: required when DRIFTWATCH_REVOKE_WEBHOOK_URL/)]);
    const alert = configError({ DRIFTWATCH_ALERT_WEBHOOK_URL: "https://hooks.example/alert" });
    expect(alert.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_ALERT_WEBHOOK_SECRET: required when DRIFTWATCH_ALERT_WEBHOOK_URL/)]);
  });

  it("a secret without a URL is accepted and not used", () => {
    expect(loadConfig({ DRIFTWATCH_ALERT_WEBHOOK_SECRET: SECRET }).notifier).toEqual({ stdout: true });
  });
});

describe("loadConfig: secrets", () => {
  const badSecrets = [
    "whsec_not base64 at all!!",
    "whsec_c2hvcnQ=", // base64 of "short": too few bytes
    "hunter2-is-my-password",
  ];

  it.each(badSecrets)("never echoes a bad secret's value (%#)", (secret) => {
    const err = configError({ DRIFTWATCH_REVOKE_WEBHOOK_URL: "https://hooks.example/revoke", DRIFTWATCH_REVOKE_WEBHOOK_SECRET: secret });
    expect(err.problems.length).toBeGreaterThan(0);
    for (const p of err.problems) expect(p).toMatch(/^DRIFTWATCH_REVOKE_WEBHOOK_SECRET: /);
    expect(err.message).not.toContain(secret);
    expect(err.message).not.toContain(secret.replace(/^whsec_/, ""));
  });

  it("never echoes a good secret's value when another variable is bad", () => {
    const err = configError({
      DRIFTWATCH_API_PORT: "abc",
      DRIFTWATCH_ALERT_WEBHOOK_URL: "https://hooks.example/alert",
      DRIFTWATCH_ALERT_WEBHOOK_SECRET: SECRET,
    });
    expect(err.message).not.toContain(SECRET.replace(/^whsec_/, ""));
  });

  it("reads a secret from <NAME>_FILE, trimmed", () => {
    const file = join(dir, "revoke-secret");
    writeFileSync(file, `${SECRET}\n`);
    const c = loadConfig({ DRIFTWATCH_REVOKE_WEBHOOK_URL: "https://hooks.example/revoke", DRIFTWATCH_REVOKE_WEBHOOK_SECRET_FILE: file });
    expect(c.revoker.webhook).toEqual({ url: "https://hooks.example/revoke", secret: SECRET });
  });

  it("a bad secret read from a file is reported without its value", () => {
    const file = join(dir, "bad-secret");
    writeFileSync(file, "whsec_c2hvcnQ=\n");
    const err = configError({ DRIFTWATCH_ALERT_WEBHOOK_URL: "https://hooks.example/a", DRIFTWATCH_ALERT_WEBHOOK_SECRET_FILE: file });
    expect(err.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_ALERT_WEBHOOK_SECRET: /)]);
    expect(err.message).not.toContain("c2hvcnQ");
  });

  it("an unreadable <NAME>_FILE is an error naming the _FILE variable", () => {
    const missing = join(dir, "does-not-exist");
    const err = configError({
      DRIFTWATCH_REVOKE_WEBHOOK_URL: "https://hooks.example/revoke",
      DRIFTWATCH_REVOKE_WEBHOOK_SECRET_FILE: missing,
    });
    expect(err.problems.some((p) => p.startsWith(`DRIFTWATCH_REVOKE_WEBHOOK_SECRET_FILE: cannot read ${missing}`))).toBe(true);
  });

  it("setting both the variable and its _FILE is an error, and neither value is echoed", () => {
    const file = join(dir, "both-secret");
    writeFileSync(file, OTHER_SECRET);
    const err = configError({
      DRIFTWATCH_ALERT_WEBHOOK_URL: "https://hooks.example/alert",
      DRIFTWATCH_ALERT_WEBHOOK_SECRET: SECRET,
      DRIFTWATCH_ALERT_WEBHOOK_SECRET_FILE: file,
    });
    expect(err.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_ALERT_WEBHOOK_SECRET: set both .*_FILE; choose one/)]);
    expect(err.message).not.toContain(SECRET.replace(/^whsec_/, ""));
    expect(err.message).not.toContain(OTHER_SECRET.replace(/^whsec_/, ""));
  });

  it("_FILE is read only for secret variables", () => {
    const file = join(dir, "port");
    writeFileSync(file, "9999");
    expect(loadConfig({ DRIFTWATCH_API_PORT_FILE: file }).api.port).toBe(8080);
  });
});

describe("loadConfig: credentials inside URLs", () => {
  it("never echoes a URL's password in an error", () => {
    const err = configError({ DRIFTWATCH_REDIS_URL: "http://user:hunter2secret@redis.internal:6379" });
    expect(err.message).toContain("DRIFTWATCH_REDIS_URL");
    expect(err.message).not.toContain("hunter2secret");
    expect(err.message).toContain("user:***@redis.internal");
  });
});
