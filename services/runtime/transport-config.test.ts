import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaSecurityOptions } from "./bus/kafka-bus.js";
import { ConfigError, loadConfig } from "./config.js";
import { describeRedis } from "./store/redis-store.js";

/**
 * Transport security settings (transport-config.ts, through loadConfig): Kafka TLS and
 * SASL, Redis TLS and ACL users. The certificates are made by openssl for each run (no
 * key material in the repository).
 */
const dir = mkdtempSync(join(tmpdir(), "dw-transport-config-"));
const path = (name: string) => join(dir, name);
const PASSWORD = "sasl-Secret-4f9c2a";
const REDIS_PASSWORD = "redis-Secret-77b1e0";

function openssl(...args: string[]) {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

beforeAll(() => {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", "-new", ...ec, "-keyout", path("ca.key"), "-out", path("ca.crt"), "-days", "2", "-subj", "/CN=test CA");
  openssl("req", "-new", ...ec, "-keyout", path("client.key"), "-out", path("client.csr"), "-subj", "/CN=driftwatch");
  openssl(
    "x509",
    "-req",
    "-in",
    path("client.csr"),
    "-CA",
    path("ca.crt"),
    "-CAkey",
    path("ca.key"),
    "-out",
    path("client.crt"),
    "-days",
    "2",
  );
  openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", path("other.key"));
  openssl(
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-aes256",
    "-pass",
    "pass:x",
    "-out",
    path("encrypted.key"),
  );
  writeFileSync(path("not-pem.txt"), "hello\n");
  writeFileSync(path("kafka-password"), `${PASSWORD}\n`);
  writeFileSync(path("redis-password"), `${REDIS_PASSWORD}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    // no problem ever carries a password
    for (const secret of [PASSWORD, REDIS_PASSWORD]) expect(e.message).not.toContain(secret);
    return e.problems;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

const KAFKA_TLS_SCRAM = {
  DRIFTWATCH_KAFKA_SSL: "true",
  DRIFTWATCH_KAFKA_SASL_MECHANISM: "scram-sha-512",
  DRIFTWATCH_KAFKA_SASL_USERNAME: "driftwatch",
  DRIFTWATCH_KAFKA_SASL_PASSWORD: PASSWORD,
};

describe("Kafka TLS and SASL", () => {
  it("are off by default: no ssl or sasl in the configuration", () => {
    const c = loadConfig({});
    expect(c.kafka).not.toHaveProperty("ssl");
    expect(c.kafka).not.toHaveProperty("sasl");
    expect(kafkaSecurityOptions(c.kafka)).toEqual({});
  });

  it("reads TLS (CA, client certificate, server name) and SCRAM, the mechanism in any case", () => {
    const c = loadConfig({
      ...KAFKA_TLS_SCRAM,
      DRIFTWATCH_KAFKA_SSL_CA_FILE: path("ca.crt"),
      DRIFTWATCH_KAFKA_SSL_CERT_FILE: path("client.crt"),
      DRIFTWATCH_KAFKA_SSL_KEY_FILE: path("client.key"),
      DRIFTWATCH_KAFKA_SSL_SERVERNAME: "kafka.internal",
      DRIFTWATCH_KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
    });
    expect(c.kafka.ssl).toEqual({
      ca: expect.stringContaining("-----BEGIN CERTIFICATE-----"),
      cert: expect.stringContaining("-----BEGIN CERTIFICATE-----"),
      key: expect.stringContaining("PRIVATE KEY-----"),
      rejectUnauthorized: true,
      servername: "kafka.internal",
    });
    expect(c.kafka.sasl).toEqual({ mechanism: "scram-sha-512", username: "driftwatch", password: { value: PASSWORD } });
    const options = kafkaSecurityOptions(c.kafka);
    expect(options.ssl).toMatchObject({
      ca: c.kafka.ssl?.ca,
      cert: c.kafka.ssl?.cert,
      rejectUnauthorized: true,
      servername: "kafka.internal",
    });
    expect(options.sasl).toMatchObject({ mechanism: "scram-sha-512", username: "driftwatch", password: PASSWORD });
  });

  it("TLS alone uses the system CAs; verification can be turned off", () => {
    expect(loadConfig({ DRIFTWATCH_KAFKA_SSL: "yes" }).kafka.ssl).toEqual({ rejectUnauthorized: true });
    expect(loadConfig({ DRIFTWATCH_KAFKA_SSL: "1", DRIFTWATCH_KAFKA_SSL_REJECT_UNAUTHORIZED: "false" }).kafka.ssl).toEqual({
      rejectUnauthorized: false,
    });
  });

  it.each(["plain", "scram-sha-256", "scram-sha-512"])("accepts the %s mechanism", (mechanism) => {
    const c = loadConfig({ ...KAFKA_TLS_SCRAM, DRIFTWATCH_KAFKA_SSL_CA_FILE: path("ca.crt"), DRIFTWATCH_KAFKA_SASL_MECHANISM: mechanism });
    expect(c.kafka.sasl?.mechanism).toBe(mechanism);
  });

  it("reads the SASL password from _FILE, and again when the file changes (rotation)", () => {
    const file = path("kafka-password-rotating");
    writeFileSync(file, "first-password\n");
    const c = loadConfig({
      ...KAFKA_TLS_SCRAM,
      DRIFTWATCH_KAFKA_SSL_CA_FILE: path("ca.crt"),
      DRIFTWATCH_KAFKA_SASL_PASSWORD: undefined,
      DRIFTWATCH_KAFKA_SASL_PASSWORD_FILE: file,
    });
    expect(c.kafka.sasl?.password).toEqual({ file });
    const sasl = kafkaSecurityOptions(c.kafka).sasl as { password: string };
    expect(sasl.password).toBe("first-password");
    writeFileSync(file, "second-password-longer\n");
    expect(sasl.password).toBe("second-password-longer");
  });

  it("refuses SASL without TLS, saying why, unless plaintext is allowed explicitly", () => {
    const env = {
      DRIFTWATCH_KAFKA_SASL_MECHANISM: "plain",
      DRIFTWATCH_KAFKA_SASL_USERNAME: "dw",
      DRIFTWATCH_KAFKA_SASL_PASSWORD: PASSWORD,
    };
    const p = problems(env);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^DRIFTWATCH_KAFKA_SASL_MECHANISM: SASL without TLS is refused/);
    expect(p[0]).toContain("unencrypted");
    expect(p[0]).toContain("DRIFTWATCH_KAFKA_SSL=true");
    expect(p[0]).toContain("DRIFTWATCH_KAFKA_SASL_ALLOW_PLAINTEXT=true");
    const allowed = loadConfig({ ...env, DRIFTWATCH_KAFKA_SASL_ALLOW_PLAINTEXT: "true" });
    expect(allowed.kafka.ssl).toBeUndefined();
    expect(allowed.kafka.sasl).toEqual({ mechanism: "plain", username: "dw", password: { value: PASSWORD } });
    // "false" is still a refusal
    expect(problems({ ...env, DRIFTWATCH_KAFKA_SASL_ALLOW_PLAINTEXT: "false" })[0]).toMatch(
      /^DRIFTWATCH_KAFKA_SASL_MECHANISM: SASL without TLS/,
    );
  });

  it("a mechanism needs a user name and a password; they need a mechanism", () => {
    expect(problems({ DRIFTWATCH_KAFKA_SSL: "true", DRIFTWATCH_KAFKA_SASL_MECHANISM: "scram-sha-256" })).toEqual([
      "DRIFTWATCH_KAFKA_SASL_USERNAME: required when DRIFTWATCH_KAFKA_SASL_MECHANISM is set",
      "DRIFTWATCH_KAFKA_SASL_PASSWORD: required when DRIFTWATCH_KAFKA_SASL_MECHANISM is set (or DRIFTWATCH_KAFKA_SASL_PASSWORD_FILE)",
    ]);
    expect(problems({ DRIFTWATCH_KAFKA_SASL_USERNAME: "dw", DRIFTWATCH_KAFKA_SASL_PASSWORD: PASSWORD })).toEqual([
      expect.stringMatching(/^DRIFTWATCH_KAFKA_SASL_USERNAME: only used with DRIFTWATCH_KAFKA_SASL_MECHANISM/),
      expect.stringMatching(/^DRIFTWATCH_KAFKA_SASL_PASSWORD: only used with DRIFTWATCH_KAFKA_SASL_MECHANISM/),
    ]);
  });

  it.each([
    ["DRIFTWATCH_KAFKA_SASL_MECHANISM", "gssapi", /must be plain, scram-sha-256 or scram-sha-512/],
    ["DRIFTWATCH_KAFKA_SSL", "maybe", /DRIFTWATCH_KAFKA_SSL: /],
    ["DRIFTWATCH_KAFKA_SSL_REJECT_UNAUTHORIZED", "nope", /DRIFTWATCH_KAFKA_SSL_REJECT_UNAUTHORIZED: /],
    ["DRIFTWATCH_KAFKA_SSL_SERVERNAME", "kafka internal", /must be a host name/],
    ["DRIFTWATCH_KAFKA_SASL_USERNAME", "drift watch", /must have no whitespace/],
  ])("%s=%j is named in the error", (name, value, message) => {
    const p = problems({ DRIFTWATCH_KAFKA_SSL: "true", [name]: value });
    expect(p).toEqual([expect.stringMatching(new RegExp(`^${name}: `))]);
    expect(p[0]).toMatch(message);
    expect(p[0]).toContain(JSON.stringify(value));
  });

  it("TLS settings without DRIFTWATCH_KAFKA_SSL=true are an error (not a silent plaintext connection)", () => {
    expect(problems({ DRIFTWATCH_KAFKA_SSL_CA_FILE: path("ca.crt") })).toEqual([
      "DRIFTWATCH_KAFKA_SSL_CA_FILE: only used with TLS; set DRIFTWATCH_KAFKA_SSL=true (or remove it)",
    ]);
    expect(problems({ DRIFTWATCH_KAFKA_SSL: "false", DRIFTWATCH_KAFKA_SSL_REJECT_UNAUTHORIZED: "false" })).toEqual([
      "DRIFTWATCH_KAFKA_SSL_REJECT_UNAUTHORIZED: only used with TLS; set DRIFTWATCH_KAFKA_SSL=true (or remove it)",
    ]);
  });

  it("checks the certificate files at start: readable, PEM, a key that belongs to its certificate", () => {
    const tls = { DRIFTWATCH_KAFKA_SSL: "true" };
    const missing = path("nowhere.crt");
    expect(problems({ ...tls, DRIFTWATCH_KAFKA_SSL_CA_FILE: missing })).toEqual([
      `DRIFTWATCH_KAFKA_SSL_CA_FILE: cannot read ${missing}: ENOENT`,
    ]);
    expect(problems({ ...tls, DRIFTWATCH_KAFKA_SSL_CA_FILE: path("not-pem.txt") })).toEqual([
      `DRIFTWATCH_KAFKA_SSL_CA_FILE: ${path("not-pem.txt")} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    ]);
    expect(problems({ ...tls, DRIFTWATCH_KAFKA_SSL_CERT_FILE: path("client.crt") })).toEqual([
      "DRIFTWATCH_KAFKA_SSL_KEY_FILE: required with DRIFTWATCH_KAFKA_SSL_CERT_FILE (mutual TLS needs the certificate and its private key)",
    ]);
    expect(problems({ ...tls, DRIFTWATCH_KAFKA_SSL_KEY_FILE: path("client.key") })).toEqual([
      "DRIFTWATCH_KAFKA_SSL_CERT_FILE: required with DRIFTWATCH_KAFKA_SSL_KEY_FILE (mutual TLS needs the certificate and its private key)",
    ]);
    expect(
      problems({ ...tls, DRIFTWATCH_KAFKA_SSL_CERT_FILE: path("client.crt"), DRIFTWATCH_KAFKA_SSL_KEY_FILE: path("other.key") }),
    ).toEqual([
      `DRIFTWATCH_KAFKA_SSL_KEY_FILE: the key in ${path("other.key")} does not belong to the certificate in ${path("client.crt")}`,
    ]);
    expect(
      problems({ ...tls, DRIFTWATCH_KAFKA_SSL_CERT_FILE: path("client.crt"), DRIFTWATCH_KAFKA_SSL_KEY_FILE: path("encrypted.key") }),
    ).toEqual([
      `DRIFTWATCH_KAFKA_SSL_KEY_FILE: ${path("encrypted.key")} is an encrypted private key; give it unencrypted (protect the file instead)`,
    ]);
    const notKey = problems({ ...tls, DRIFTWATCH_KAFKA_SSL_CERT_FILE: path("client.crt"), DRIFTWATCH_KAFKA_SSL_KEY_FILE: path("ca.crt") });
    expect(notKey).toEqual([`DRIFTWATCH_KAFKA_SSL_KEY_FILE: ${path("ca.crt")} holds no PEM private key`]);
  });

  it("never echoes the SASL password, set both ways or wrong", () => {
    const p = problems({
      ...KAFKA_TLS_SCRAM,
      DRIFTWATCH_KAFKA_SSL_CA_FILE: path("ca.crt"),
      DRIFTWATCH_KAFKA_SASL_PASSWORD_FILE: path("kafka-password"),
    });
    expect(p).toEqual([expect.stringMatching(/^DRIFTWATCH_KAFKA_SASL_PASSWORD: set both .*_FILE; choose one/)]);
    const missing = path("no-password-file");
    const unreadable = problems({
      ...KAFKA_TLS_SCRAM,
      DRIFTWATCH_KAFKA_SASL_PASSWORD: undefined,
      DRIFTWATCH_KAFKA_SASL_PASSWORD_FILE: missing,
    });
    expect(unreadable).toEqual(
      expect.arrayContaining([expect.stringMatching(/^DRIFTWATCH_KAFKA_SASL_PASSWORD_FILE: cannot read .*ENOENT/)]),
    );
  });
});

describe("Redis TLS and ACL user", () => {
  it("reads a rediss:// URL with a CA, a client certificate and an ACL user whose password is in a file", () => {
    const c = loadConfig({
      DRIFTWATCH_REDIS_URL: "rediss://cache.internal:6380/1",
      DRIFTWATCH_REDIS_TLS_CA_FILE: path("ca.crt"),
      DRIFTWATCH_REDIS_TLS_CERT_FILE: path("client.crt"),
      DRIFTWATCH_REDIS_TLS_KEY_FILE: path("client.key"),
      DRIFTWATCH_REDIS_USERNAME: "driftwatch",
      DRIFTWATCH_REDIS_PASSWORD_FILE: path("redis-password"),
    });
    expect(c.redis).toEqual({
      url: "rediss://cache.internal:6380/1",
      keyPrefix: "dw:",
      tls: {
        ca: expect.stringContaining("-----BEGIN CERTIFICATE-----"),
        cert: expect.stringContaining("-----BEGIN CERTIFICATE-----"),
        key: expect.stringContaining("PRIVATE KEY-----"),
        rejectUnauthorized: true,
      },
      username: "driftwatch",
      password: { file: path("redis-password") },
    });
  });

  it("a password alone authenticates the default user; nothing set adds nothing", () => {
    expect(loadConfig({ DRIFTWATCH_REDIS_PASSWORD: REDIS_PASSWORD }).redis).toEqual({
      url: "redis://127.0.0.1:6379",
      keyPrefix: "dw:",
      password: { value: REDIS_PASSWORD },
    });
    expect(loadConfig({ DRIFTWATCH_REDIS_URL: "rediss://cache:6380" }).redis).toEqual({ url: "rediss://cache:6380", keyPrefix: "dw:" });
    expect(loadConfig({ DRIFTWATCH_REDIS_URL: "rediss://cache:6380", DRIFTWATCH_REDIS_TLS_REJECT_UNAUTHORIZED: "no" }).redis.tls).toEqual({
      rejectUnauthorized: false,
    });
  });

  it("TLS settings need a rediss:// URL", () => {
    expect(problems({ DRIFTWATCH_REDIS_URL: "redis://cache:6379", DRIFTWATCH_REDIS_TLS_CA_FILE: path("ca.crt") })).toEqual([
      "DRIFTWATCH_REDIS_TLS_CA_FILE: needs a rediss:// DRIFTWATCH_REDIS_URL (TLS); it is redis://",
    ]);
    expect(problems({ DRIFTWATCH_REDIS_TLS_REJECT_UNAUTHORIZED: "false" })).toEqual([
      "DRIFTWATCH_REDIS_TLS_REJECT_UNAUTHORIZED: needs a rediss:// DRIFTWATCH_REDIS_URL (TLS); it is redis://",
    ]);
  });

  it("checks the Redis certificate files like Kafka's", () => {
    const url = { DRIFTWATCH_REDIS_URL: "rediss://cache:6380" };
    expect(problems({ ...url, DRIFTWATCH_REDIS_TLS_CA_FILE: path("not-pem.txt") })).toEqual([
      `DRIFTWATCH_REDIS_TLS_CA_FILE: ${path("not-pem.txt")} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    ]);
    expect(
      problems({ ...url, DRIFTWATCH_REDIS_TLS_CERT_FILE: path("client.crt"), DRIFTWATCH_REDIS_TLS_KEY_FILE: path("other.key") }),
    ).toEqual([
      `DRIFTWATCH_REDIS_TLS_KEY_FILE: the key in ${path("other.key")} does not belong to the certificate in ${path("client.crt")}`,
    ]);
  });

  it("a user needs a password; credentials in the URL and in variables are an error that shows neither", () => {
    expect(problems({ DRIFTWATCH_REDIS_USERNAME: "driftwatch" })).toEqual([
      "DRIFTWATCH_REDIS_PASSWORD: required with DRIFTWATCH_REDIS_USERNAME (or DRIFTWATCH_REDIS_PASSWORD_FILE)",
    ]);
    const p = problems({
      DRIFTWATCH_REDIS_URL: `rediss://admin:${PASSWORD}@cache:6380`,
      DRIFTWATCH_REDIS_USERNAME: "driftwatch",
      DRIFTWATCH_REDIS_PASSWORD: REDIS_PASSWORD,
    });
    expect(p).toEqual([
      expect.stringMatching(/^DRIFTWATCH_REDIS_URL: carries a user or password as well as DRIFTWATCH_REDIS_USERNAME\/PASSWORD/),
    ]);
  });

  it("a bad Redis URL is echoed without its password", () => {
    const p = problems({ DRIFTWATCH_REDIS_URL: `http://driftwatch:${PASSWORD}@cache:6379` });
    expect(p).toEqual([expect.stringMatching(/^DRIFTWATCH_REDIS_URL: /)]);
    expect(p[0]).toContain("driftwatch:***@cache");
  });

  it("a store names where it connects without the URL's password", () => {
    expect(describeRedis(`rediss://driftwatch:${PASSWORD}@cache.internal:6380/2`)).toBe("rediss://cache.internal:6380/2 (user driftwatch)");
    expect(describeRedis("rediss://cache.internal:6380", "dw-acl")).toBe("rediss://cache.internal:6380 (user dw-acl)");
    expect(describeRedis(`redis://:${PASSWORD}@cache:6379`)).toBe("redis://cache:6379");
  });
});
