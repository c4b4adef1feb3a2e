import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

const SECRET = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
const OTHER_SECRET = `whsec_${Buffer.from("fedcba9876543210fedcba9876543210").toString("base64")}`;

const dir = mkdtempSync(join(tmpdir(), "dw-config-test-"));
const EC_PEM = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
/** The notifier's settings when no DRIFTWATCH_ALERT_* variable is set. */
const NOTIFIER_DEFAULTS = {
  stdout: true,
  minSeverity: { stdout: "info", jsonl: "info", webhook: "info", slack: "info", splunk: "info", syslog: "info" },
  retry: { rounds: 20, baseMs: 1_000, maxMs: 300_000, sweepMs: 1_000 },
};
/** What a CAEP receiver URL needs beside it. */
const CAEP_REST = {
  DRIFTWATCH_CAEP_ISSUER: "https://driftwatch.example.com/",
  DRIFTWATCH_CAEP_AUDIENCE: "https://idp.example.com/caep",
  DRIFTWATCH_CAEP_SIGNING_KEY: EC_PEM,
};
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
      stepsOutput: true,
      redis: { url: "redis://127.0.0.1:6379", keyPrefix: "dw:" },
      otlp: {
        host: "127.0.0.1",
        port: 4318,
        maxBodyBytes: 4 * 1024 * 1024,
        maxInflight: 64,
        limits: { requestsPerSecond: 100, spansPerMinute: 600_000, maxSpansPerRequest: 20_000, maxTracesPerRequest: 10_000 },
      },
      embedded: { maxTasks: 10_000, maxBytes: 128 * 1024 * 1024 },
      ingest: { encoding: "auto", requireSender: false },
      agentAuth: { mode: "none", spiffeAudience: "driftwatch" },
      ops: { host: "127.0.0.1", port: 9464 },
      api: { host: "127.0.0.1", port: 8080, tokens: [] },
      policyDir: "policies",
      tasks: { latenessMs: 30_000, idleMs: 300_000, ttlMs: 604_800_000, cachedTasks: 50_000, silenceSweepMs: 10_000 },
      baselines: { sweepMs: 10_000, settleMs: 60_000, holdMs: 86_400_000 },
      revoker: { minSeverity: "high", maxAttempts: 30, retryBaseMs: 1_000, retryMaxMs: 60_000, sweepMs: 1_000 },
      notifier: NOTIFIER_DEFAULTS,
      webhookTimeoutMs: 5000,
      delivery: { maxAttempts: 4, backoffMs: 200, maxDelayMs: 10_000, budgetMs: 30_000, circuitFailures: 5, circuitCooldownMs: 30_000 },
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
      DRIFTWATCH_REVOKE_MAX_ATTEMPTS: "12",
      DRIFTWATCH_REVOKE_RETRY_BASE_MS: "500",
      DRIFTWATCH_REVOKE_RETRY_MAX_MS: "20000",
      DRIFTWATCH_REVOKE_SWEEP_MS: "250",
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
    expect(c.revoker).toEqual({
      minSeverity: "critical",
      maxAttempts: 12,
      retryBaseMs: 500,
      retryMaxMs: 20_000,
      sweepMs: 250,
      webhook: { url: "https://vault-bridge.internal/revoke", secret: SECRET },
    });
    expect(c.notifier).toEqual({ ...NOTIFIER_DEFAULTS, stdout: false, webhook: { url: "http://soc.internal/hook", secret: OTHER_SECRET } });
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
    ["DRIFTWATCH_VAULT_ADDR", "vault.internal:8200"],
    ["DRIFTWATCH_VAULT_NAMESPACE", "admin team"],
    ["DRIFTWATCH_VAULT_TIMEOUT_MS", "-5"],
    ["DRIFTWATCH_VAULT_PREFIX_ROOTS", " , "],
    ["DRIFTWATCH_CAEP_RECEIVER_URL", "mailto:soc@example.com"],
    ["DRIFTWATCH_CAEP_ISSUER", "driftwatch"],
    ["DRIFTWATCH_CAEP_TIMEOUT_MS", "0"],
    ["DRIFTWATCH_DELIVERY_MAX_ATTEMPTS", "0"],
    ["DRIFTWATCH_DELIVERY_BACKOFF_MS", "fast"],
    ["DRIFTWATCH_DELIVERY_MAX_DELAY_MS", "1.5"],
    ["DRIFTWATCH_DELIVERY_BUDGET_MS", "-1"],
    ["DRIFTWATCH_CIRCUIT_FAILURES", "none"],
    ["DRIFTWATCH_CIRCUIT_COOLDOWN_MS", "0"],
    ["DRIFTWATCH_ALERT_MIN_SEVERITY", "urgent"],
    ["DRIFTWATCH_ALERT_SLACK_MIN_SEVERITY", "HIGH"],
    ["DRIFTWATCH_ALERT_SYSLOG", "syslog.internal:514"],
    ["DRIFTWATCH_ALERT_SYSLOG", "tls://syslog.internal:6514"],
    ["DRIFTWATCH_ALERT_SYSLOG", "udp://syslog.internal:99999"],
    ["DRIFTWATCH_ALERT_SYSLOG_FACILITY", "local9"],
    ["DRIFTWATCH_ALERT_SYSLOG_FACILITY", "24"],
    ["DRIFTWATCH_ALERT_SPLUNK_HEC_URL", "splunk:8088"],
    ["DRIFTWATCH_ALERT_SPLUNK_INDEX", "my index"],
    ["DRIFTWATCH_ALERT_SPLUNK_SOURCETYPE", "driftwatch ocsf"],
    ["DRIFTWATCH_ALERT_RETRY_ROUNDS", "0"],
    ["DRIFTWATCH_ALERT_RETRY_BASE_MS", "soon"],
    ["DRIFTWATCH_ALERT_SWEEP_MS", "-1"],
  ])("%s=%j", (name, value) => {
    const env: NodeJS.ProcessEnv = { [name]: value };
    if (name === "DRIFTWATCH_REVOKE_WEBHOOK_URL") env.DRIFTWATCH_REVOKE_WEBHOOK_SECRET = SECRET;
    if (name === "DRIFTWATCH_CAEP_RECEIVER_URL") Object.assign(env, CAEP_REST);
    if (name === "DRIFTWATCH_ALERT_SPLUNK_HEC_URL") env.DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN = "hec-token";
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
    expect(loadConfig({ DRIFTWATCH_ALERT_WEBHOOK_SECRET: SECRET }).notifier).toEqual(NOTIFIER_DEFAULTS);
    expect(loadConfig({ DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN: "abc" }).notifier).toEqual(NOTIFIER_DEFAULTS);
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

  it("reads the console API's tokens (the token from a file), and refuses a read token alone, one equal to the token, or a short one", () => {
    const file = join(dir, "api-token");
    writeFileSync(file, "console-token-0123456789\n");
    const c = loadConfig({ DRIFTWATCH_API_TOKEN_FILE: file, DRIFTWATCH_API_READ_TOKEN: "reader-token-0123456789" });
    expect(c.api).toEqual({
      host: "127.0.0.1",
      port: 8080,
      token: "console-token-0123456789",
      readToken: "reader-token-0123456789",
      tokens: [
        { name: "api-token", role: "admin", token: "console-token-0123456789" },
        { name: "api-read-token", role: "viewer", token: "reader-token-0123456789" },
      ],
    });
    expect(configError({ DRIFTWATCH_API_READ_TOKEN: "reader-token-0123456789" }).problems).toEqual([
      expect.stringMatching(/^DRIFTWATCH_API_READ_TOKEN: requires DRIFTWATCH_API_TOKEN/),
    ]);
    expect(
      configError({ DRIFTWATCH_API_TOKEN: "same-token-0123456789", DRIFTWATCH_API_READ_TOKEN: "same-token-0123456789" }).problems,
    ).toEqual([expect.stringMatching(/^DRIFTWATCH_API_READ_TOKEN: must differ/)]);
    const short = configError({ DRIFTWATCH_API_TOKEN: "short" });
    expect(short.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_API_TOKEN: /)]);
    expect(short.message).not.toContain('short"');
  });

  it("reads named API tokens with roles from a file, and OIDC settings; refuses a bad file without echoing a token", () => {
    const file = join(dir, "api-tokens.yaml");
    writeFileSync(
      file,
      "- { name: alice, role: responder, token: alice-token-0123456789 }\n- { name: ci, role: admin, token: ci-token-0123456789abc }\n",
    );
    const c = loadConfig({
      DRIFTWATCH_API_TOKENS_FILE: file,
      DRIFTWATCH_API_OIDC_ISSUER: "https://id.acme.example/realms/soc",
      DRIFTWATCH_API_OIDC_AUDIENCE: "driftwatch",
      DRIFTWATCH_API_OIDC_ROLES_CLAIM: "realm_access.roles",
      DRIFTWATCH_API_OIDC_ROLE_MAP: "admin=dw-admins,responder=soc|soc-leads",
    });
    expect(c.api.tokens.map((t) => [t.name, t.role])).toEqual([
      ["alice", "responder"],
      ["ci", "admin"],
    ]);
    expect(c.api.oidc).toEqual({
      issuer: "https://id.acme.example/realms/soc",
      audience: "driftwatch",
      rolesClaim: "realm_access.roles",
      roleMap: { admin: ["dw-admins"], responder: ["soc", "soc-leads"] },
    });
    writeFileSync(file, "- { name: alice, role: root, token: alice-token-0123456789 }\n");
    const bad = configError({ DRIFTWATCH_API_TOKENS_FILE: file });
    expect(bad.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_API_TOKENS_FILE: .*0\.role/)]);
    expect(bad.message).not.toContain("alice-token");
    expect(configError({ DRIFTWATCH_API_OIDC_ISSUER: "https://id.acme.example" }).problems).toEqual([
      expect.stringMatching(/^DRIFTWATCH_API_OIDC_AUDIENCE: /),
    ]);
    expect(configError({ DRIFTWATCH_API_OIDC_ROLE_MAP: "root=x" }).problems).toEqual([
      expect.stringMatching(/^DRIFTWATCH_API_OIDC_ROLE_MAP: /),
    ]);
  });

  it("asks every OTLP request for an agent credential once credentials are configured; refuses auth with nothing to check or a sender requirement without a key", () => {
    const c = loadConfig({ DRIFTWATCH_OTLP_TOKENS_FILE: "/etc/driftwatch/agents.yaml", DRIFTWATCH_INGEST_SIGNING_KEY: "k".repeat(32) });
    expect(c.agentAuth).toEqual({ mode: "required", tokensFile: "/etc/driftwatch/agents.yaml", spiffeAudience: "driftwatch" });
    expect(c.ingest.senderKey?.toString()).toBe("k".repeat(32));
    expect(loadConfig({ DRIFTWATCH_OTLP_TOKENS_FILE: "/x.yaml", DRIFTWATCH_OTLP_AUTH: "optional" }).agentAuth.mode).toBe("optional");
    expect(configError({ DRIFTWATCH_OTLP_AUTH: "required" }).problems).toEqual([
      expect.stringMatching(/^DRIFTWATCH_OTLP_AUTH: required needs agent credentials/),
    ]);
    expect(configError({ DRIFTWATCH_INGEST_REQUIRE_SENDER: "true" }).problems).toEqual([
      expect.stringMatching(/^DRIFTWATCH_INGEST_REQUIRE_SENDER: needs DRIFTWATCH_INGEST_SIGNING_KEY/),
    ]);
    const short = configError({ DRIFTWATCH_INGEST_SIGNING_KEY: "short-key" });
    expect(short.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_INGEST_SIGNING_KEY: /)]);
    expect(short.message).not.toContain("short-key");
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

describe("loadConfig: Vault", () => {
  it("reads the address, token, namespace, prefix roots and time-out", () => {
    const c = loadConfig({
      DRIFTWATCH_VAULT_ADDR: "https://vault.internal:8200",
      DRIFTWATCH_VAULT_TOKEN: "hvs.CAESIJtoken",
      DRIFTWATCH_VAULT_NAMESPACE: "admin/team-a",
      DRIFTWATCH_VAULT_PREFIX_ROOTS: "database/creds/agents/, aws/creds/agent-tasks",
      DRIFTWATCH_VAULT_TIMEOUT_MS: "1500",
    });
    expect(c.revoker.vault).toEqual({
      addr: "https://vault.internal:8200",
      token: { value: "hvs.CAESIJtoken" },
      namespace: "admin/team-a",
      prefixRoots: ["database/creds/agents/", "aws/creds/agent-tasks"],
      timeoutMs: 1500,
    });
  });

  it("defaults: no prefix roots, the webhook time-out; no Vault without an address", () => {
    const c = loadConfig({
      DRIFTWATCH_VAULT_ADDR: "http://127.0.0.1:8200",
      DRIFTWATCH_VAULT_TOKEN: "root",
      DRIFTWATCH_WEBHOOK_TIMEOUT_MS: "700",
    });
    expect(c.revoker.vault).toEqual({ addr: "http://127.0.0.1:8200", token: { value: "root" }, prefixRoots: [], timeoutMs: 700 });
    expect(loadConfig({ DRIFTWATCH_VAULT_TOKEN: "root" }).revoker.vault).toBeUndefined();
  });

  it("a token file is handed over as a file (re-read when it changes), after checking it now", () => {
    const file = join(dir, "vault-token");
    writeFileSync(file, "hvs.from-file\n");
    const c = loadConfig({ DRIFTWATCH_VAULT_ADDR: "https://vault.internal:8200", DRIFTWATCH_VAULT_TOKEN_FILE: file });
    expect(c.revoker.vault?.token).toEqual({ file });
    const missing = join(dir, "no-vault-token");
    const err = configError({ DRIFTWATCH_VAULT_ADDR: "https://vault.internal:8200", DRIFTWATCH_VAULT_TOKEN_FILE: missing });
    expect(err.problems.some((p) => p.startsWith(`DRIFTWATCH_VAULT_TOKEN_FILE: cannot read ${missing}`))).toBe(true);
  });

  it("an address without a token is an error naming the token variable", () => {
    const err = configError({ DRIFTWATCH_VAULT_ADDR: "https://vault.internal:8200" });
    expect(err.problems).toEqual(["DRIFTWATCH_VAULT_TOKEN: required when DRIFTWATCH_VAULT_ADDR is set (or DRIFTWATCH_VAULT_TOKEN_FILE)"]);
  });

  it("a malformed token is reported without its value, from the variable or a file", () => {
    const err = configError({ DRIFTWATCH_VAULT_ADDR: "https://vault.internal:8200", DRIFTWATCH_VAULT_TOKEN: "hvs.secret part" });
    expect(err.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_VAULT_TOKEN: must be printable characters without whitespace$/)]);
    expect(err.message).not.toContain("secret part");
    const file = join(dir, "vault-token-bad");
    writeFileSync(file, "hvs.secret\tpart\n");
    const fromFile = configError({ DRIFTWATCH_VAULT_ADDR: "https://vault.internal:8200", DRIFTWATCH_VAULT_TOKEN_FILE: file });
    expect(fromFile.message).not.toContain("secret");
  });
});

describe("loadConfig: CAEP", () => {
  it("reads the receiver, issuer, audience, signing key, key id, authorization and time-out", () => {
    const c = loadConfig({
      DRIFTWATCH_CAEP_RECEIVER_URL: "https://idp.example.com/ssf/events",
      ...CAEP_REST,
      DRIFTWATCH_CAEP_KEY_ID: "dw-2026-01",
      DRIFTWATCH_CAEP_AUTHORIZATION: "Bearer rcv-token",
      DRIFTWATCH_CAEP_TIMEOUT_MS: "2500",
    });
    expect(c.revoker.caep).toEqual({
      receiverUrl: "https://idp.example.com/ssf/events",
      issuer: "https://driftwatch.example.com/",
      audience: "https://idp.example.com/caep",
      signingKey: EC_PEM,
      keyId: "dw-2026-01",
      authorization: "Bearer rcv-token",
      timeoutMs: 2500,
    });
  });

  it("several audiences become a list; secrets may come from files", () => {
    const keyFile = join(dir, "caep-key.pem");
    const authFile = join(dir, "caep-auth");
    writeFileSync(keyFile, EC_PEM);
    writeFileSync(authFile, "Bearer from-file\n");
    const c = loadConfig({
      DRIFTWATCH_CAEP_RECEIVER_URL: "https://idp.example.com/ssf/events",
      DRIFTWATCH_CAEP_ISSUER: "https://driftwatch.example.com/",
      DRIFTWATCH_CAEP_AUDIENCE: "https://idp.example.com/web, https://idp.example.com/mobile",
      DRIFTWATCH_CAEP_SIGNING_KEY_FILE: keyFile,
      DRIFTWATCH_CAEP_AUTHORIZATION_FILE: authFile,
    });
    expect(c.revoker.caep?.audience).toEqual(["https://idp.example.com/web", "https://idp.example.com/mobile"]);
    expect(c.revoker.caep?.signingKey).toBe(EC_PEM.trim());
    expect(c.revoker.caep?.authorization).toBe("Bearer from-file");
    expect(c.revoker.caep?.timeoutMs).toBe(5000);
  });

  it("a receiver URL without issuer, audience and key names each missing variable", () => {
    const err = configError({ DRIFTWATCH_CAEP_RECEIVER_URL: "https://idp.example.com/ssf/events" });
    expect(err.problems).toEqual([
      "DRIFTWATCH_CAEP_ISSUER: required when DRIFTWATCH_CAEP_RECEIVER_URL is set",
      "DRIFTWATCH_CAEP_AUDIENCE: required when DRIFTWATCH_CAEP_RECEIVER_URL is set",
      "DRIFTWATCH_CAEP_SIGNING_KEY: required when DRIFTWATCH_CAEP_RECEIVER_URL is set (or DRIFTWATCH_CAEP_SIGNING_KEY_FILE)",
    ]);
  });

  it.each([
    ["not PEM at all", "hunter2-not-a-key", /not a PEM private key/],
    [
      "an RSA key too short",
      generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
      /at least 2048 bits/,
    ],
    [
      "an EC key on P-384",
      generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
      /P-256/,
    ],
  ])("a signing key that is %s is reported without its value", (_what, key, message) => {
    const err = configError({
      DRIFTWATCH_CAEP_RECEIVER_URL: "https://idp.example.com/ssf/events",
      ...CAEP_REST,
      DRIFTWATCH_CAEP_SIGNING_KEY: key,
    });
    expect(err.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_CAEP_SIGNING_KEY: /)]);
    expect(err.problems[0]).toMatch(message);
    expect(err.message).not.toContain(key.trim().split("\n")[1] ?? key);
    expect(err.message).not.toContain("hunter2");
  });

  it("an authorization value with a newline is refused without echoing it", () => {
    const err = configError({
      DRIFTWATCH_CAEP_RECEIVER_URL: "https://idp.example.com/ssf/events",
      ...CAEP_REST,
      DRIFTWATCH_CAEP_AUTHORIZATION: "Bearer abc\r\nX-Evil: 1",
    });
    expect(err.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_CAEP_AUTHORIZATION: /)]);
    expect(err.message).not.toContain("Bearer abc");
  });
});

describe("loadConfig: delivery", () => {
  it("reads the retry and circuit settings", () => {
    const c = loadConfig({
      DRIFTWATCH_DELIVERY_MAX_ATTEMPTS: "6",
      DRIFTWATCH_DELIVERY_BACKOFF_MS: "50",
      DRIFTWATCH_DELIVERY_MAX_DELAY_MS: "2000",
      DRIFTWATCH_DELIVERY_BUDGET_MS: "9000",
      DRIFTWATCH_CIRCUIT_FAILURES: "3",
      DRIFTWATCH_CIRCUIT_COOLDOWN_MS: "15000",
    });
    expect(c.delivery).toEqual({
      maxAttempts: 6,
      backoffMs: 50,
      maxDelayMs: 2000,
      budgetMs: 9000,
      circuitFailures: 3,
      circuitCooldownMs: 15_000,
    });
  });
});

describe("loadConfig: notifier sinks", () => {
  const SLACK_URL = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnopqrstuvwx";

  it("reads every sink, each with its minimum severity (its own, else the default)", () => {
    const c = loadConfig({
      DRIFTWATCH_ALERT_STDOUT: "false",
      DRIFTWATCH_ALERT_JSONL: "/var/log/driftwatch/alerts.jsonl",
      DRIFTWATCH_ALERT_WEBHOOK_URL: "https://soc.example/hook",
      DRIFTWATCH_ALERT_WEBHOOK_SECRET: SECRET,
      DRIFTWATCH_ALERT_SLACK_WEBHOOK_URL: SLACK_URL,
      DRIFTWATCH_ALERT_SPLUNK_HEC_URL: "https://splunk.example:8088",
      DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN: "11111111-2222-3333-4444-555555555555",
      DRIFTWATCH_ALERT_SPLUNK_INDEX: "security",
      DRIFTWATCH_ALERT_SYSLOG: "tcp://syslog.example:6514",
      DRIFTWATCH_ALERT_SYSLOG_FACILITY: "local3",
      DRIFTWATCH_ALERT_MIN_SEVERITY: "low",
      DRIFTWATCH_ALERT_SLACK_MIN_SEVERITY: "high",
      DRIFTWATCH_ALERT_SYSLOG_MIN_SEVERITY: "critical",
      DRIFTWATCH_ALERT_RETRY_ROUNDS: "5",
      DRIFTWATCH_ALERT_RETRY_BASE_MS: "250",
      DRIFTWATCH_ALERT_RETRY_MAX_MS: "60000",
      DRIFTWATCH_ALERT_SWEEP_MS: "500",
    });
    expect(c.notifier).toEqual({
      stdout: false,
      jsonl: { path: "/var/log/driftwatch/alerts.jsonl" },
      webhook: { url: "https://soc.example/hook", secret: SECRET },
      slack: { url: SLACK_URL },
      splunk: {
        url: "https://splunk.example:8088",
        token: "11111111-2222-3333-4444-555555555555",
        index: "security",
        sourcetype: "driftwatch:ocsf",
        source: "driftwatch",
      },
      syslog: { transport: "tcp", host: "syslog.example", port: 6514, facility: 19 },
      minSeverity: { stdout: "low", jsonl: "low", webhook: "low", slack: "high", splunk: "low", syslog: "critical" },
      retry: { rounds: 5, baseMs: 250, maxMs: 60_000, sweepMs: 500 },
    });
  });

  it("reads syslog targets: UDP or TCP, port 514 by default, IPv6 in brackets, facility by name or number", () => {
    const syslog = (v: string, facility?: string) =>
      loadConfig({ DRIFTWATCH_ALERT_SYSLOG: v, ...(facility ? { DRIFTWATCH_ALERT_SYSLOG_FACILITY: facility } : {}) }).notifier.syslog;
    expect(syslog("udp://10.0.0.5")).toEqual({ transport: "udp", host: "10.0.0.5", port: 514, facility: 4 });
    expect(syslog("tcp://[::1]:1514/", "13")).toEqual({ transport: "tcp", host: "::1", port: 1514, facility: 13 });
    expect(syslog("udp://collector.internal:5514", "AuthPriv")).toEqual({
      transport: "udp",
      host: "collector.internal",
      port: 5514,
      facility: 10,
    });
  });

  it("JSON lines to `-` is stdout", () => {
    const c = loadConfig({ DRIFTWATCH_ALERT_STDOUT: "false", DRIFTWATCH_ALERT_JSONL: "-" });
    expect(c.notifier.stdout).toBe(true);
    expect(c.notifier.jsonl).toBeUndefined();
  });

  it("a HEC URL without a token is an error naming the token variable", () => {
    const err = configError({ DRIFTWATCH_ALERT_SPLUNK_HEC_URL: "https://splunk.example:8088" });
    expect(err.problems).toEqual([
      expect.stringMatching(/^DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN: required when DRIFTWATCH_ALERT_SPLUNK_HEC_URL/),
    ]);
  });

  it("a retry cap below its base is an error", () => {
    const err = configError({ DRIFTWATCH_ALERT_RETRY_BASE_MS: "5000", DRIFTWATCH_ALERT_RETRY_MAX_MS: "1000" });
    expect(err.problems).toEqual(["DRIFTWATCH_ALERT_RETRY_MAX_MS: must be at least DRIFTWATCH_ALERT_RETRY_BASE_MS"]);
  });

  it("the Slack URL and the HEC token are secrets: read from _FILE, never echoed", () => {
    const slackFile = join(dir, "slack-url");
    const tokenFile = join(dir, "hec-token");
    writeFileSync(slackFile, `${SLACK_URL}\n`);
    writeFileSync(tokenFile, "11111111-2222-3333-4444-555555555555\n");
    const c = loadConfig({
      DRIFTWATCH_ALERT_SLACK_WEBHOOK_URL_FILE: slackFile,
      DRIFTWATCH_ALERT_SPLUNK_HEC_URL: "https://splunk.example:8088",
      DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN_FILE: tokenFile,
    });
    expect(c.notifier.slack).toEqual({ url: SLACK_URL });
    expect(c.notifier.splunk?.token).toBe("11111111-2222-3333-4444-555555555555");
    const badSlack = configError({ DRIFTWATCH_ALERT_SLACK_WEBHOOK_URL: "hooks.slack.com/services/T0001/B0001/topsecretpart" });
    expect(badSlack.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_ALERT_SLACK_WEBHOOK_URL: /)]);
    expect(badSlack.message).not.toContain("topsecretpart");
    const badToken = configError({
      DRIFTWATCH_ALERT_SPLUNK_HEC_URL: "https://splunk.example:8088",
      DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN: "secret token",
    });
    expect(badToken.problems).toEqual([expect.stringMatching(/^DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN: /)]);
    expect(badToken.message).not.toContain("secret token");
  });
});
