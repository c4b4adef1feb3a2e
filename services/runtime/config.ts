import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { type Role, type StaticToken, TokensFile } from "../../schemas/api-identity.js";
import { DEFAULT_CIRCUIT, DEFAULT_RETRY } from "./delivery.js";
import { loadSigningKey } from "./signing-key.js";
import { type KafkaSecurity, type RedisSecurity, TRANSPORT_SECRET_VARS, transportConfig } from "./transport-config.js";

/**
 * Configuration from DRIFTWATCH_* environment variables, validated at start. A bad
 * variable stops the process with an error naming it. Secrets may come from a file
 * (`<NAME>_FILE`) instead of the variable itself; they are never logged.
 */
const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => v === "true" || v === "1" || v === "yes");
const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const url = z.url({ protocol: /^https?$/ });
const list = z
  .string()
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string()).min(1));
/** A Standard Webhooks signing secret: base64, optionally prefixed `whsec_`. */
const webhookSecret = z
  .string()
  .regex(/^(whsec_)?[A-Za-z0-9+/]+={0,2}$/, "must be a base64 secret, optionally prefixed whsec_")
  .refine((s) => Buffer.from(s.replace(/^whsec_/, ""), "base64").length >= 24, "must decode to at least 24 bytes");

/** A Vault token: printable characters, no whitespace (it travels in the X-Vault-Token header). */
const vaultToken = z.string().regex(/^[\x21-\x7e]+$/, "must be printable characters without whitespace");
/** An HTTP header value (the CAEP receiver's Authorization). */
const headerValue = z.string().regex(/^[\x20-\x7e]+$/, "must be printable characters (an HTTP header value)");
const severity = z.enum(["info", "low", "medium", "high", "critical"]);
/** A Splunk HEC token: printable characters, no whitespace (it travels in the Authorization header). */
const hecToken = z.string().regex(/^[\x21-\x7e]+$/, "must be printable characters without whitespace");

/** Syslog facilities by name (RFC 5424, 6.2.1). */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  audit: 13,
  alert: 14,
  clock: 15,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** A syslog collector: `udp://host[:port]` or `tcp://host[:port]` (port 514 by default; IPv6 in brackets). */
const syslogTarget = z.string().transform((value, ctx) => {
  const m = /^(udp|tcp):\/\/(\[[0-9A-Fa-f:.]+\]|[^\s/:@[\]]+)(?::(\d{1,5}))?\/?$/.exec(value);
  const port = m?.[3] === undefined ? 514 : Number(m[3]);
  if (!m || port < 1 || port > 65535) {
    ctx.addIssue({ code: "custom", message: "must be udp://host:port or tcp://host:port" });
    return z.NEVER;
  }
  return { transport: m[1] as "udp" | "tcp", host: (m[2] as string).replace(/^\[|\]$/g, ""), port };
});

/** A syslog facility, by name (`auth`, `local0`, ...) or number (0-23). */
const syslogFacility = z.string().transform((value, ctx) => {
  const v = value.trim().toLowerCase();
  const n = /^\d{1,2}$/.test(v) ? Number(v) : SYSLOG_FACILITIES[v];
  if (n === undefined || n > 23) {
    ctx.addIssue({ code: "custom", message: `must be a facility name (${Object.keys(SYSLOG_FACILITIES).join(", ")}) or 0-23` });
    return z.NEVER;
  }
  return n;
});

const Env = z.object({
  DRIFTWATCH_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  DRIFTWATCH_KAFKA_BROKERS: list.default(["127.0.0.1:9092"]),
  DRIFTWATCH_KAFKA_CLIENT_ID: z.string().min(1).default("driftwatch"),
  DRIFTWATCH_KAFKA_PARTITIONS: positiveInt.default(6),
  DRIFTWATCH_KAFKA_REPLICATION_FACTOR: positiveInt.default(1),
  DRIFTWATCH_TOPIC_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, "only letters, digits, '.', '_' and '-'")
    .default(""),
  DRIFTWATCH_GROUP_PREFIX: z.string().min(1).default("driftwatch."),
  DRIFTWATCH_PACK_RECORDS: bool.default(true),
  DRIFTWATCH_STEPS_OUTPUT: bool.default(true),
  DRIFTWATCH_REDIS_URL: z.url({ protocol: /^rediss?$/ }).default("redis://127.0.0.1:6379"),
  DRIFTWATCH_REDIS_KEY_PREFIX: z.string().default("dw:"),
  DRIFTWATCH_OTLP_HOST: z.string().min(1).default("127.0.0.1"),
  DRIFTWATCH_OTLP_PORT: port.default(4318),
  DRIFTWATCH_API_HOST: z.string().min(1).default("127.0.0.1"),
  DRIFTWATCH_API_PORT: port.default(8080),
  /** A distributed process's /healthz, /readyz and /metrics (services/runtime/ops.ts); 0: any free port. */
  DRIFTWATCH_OPS_HOST: z.string().min(1).default("127.0.0.1"),
  DRIFTWATCH_OPS_PORT: port.default(9464),
  /** When set, every /api/v1 request needs `Authorization: Bearer <token>` (reads may use the read token). */
  DRIFTWATCH_API_TOKEN: z.string().min(16, "at least 16 characters").optional(),
  DRIFTWATCH_API_READ_TOKEN: z.string().min(16, "at least 16 characters").optional(),
  /** Named tokens with roles (YAML or JSON list of {name, role, token}). */
  DRIFTWATCH_API_TOKENS_FILE: z.string().min(1).optional(),
  DRIFTWATCH_API_OIDC_ISSUER: url.optional(),
  DRIFTWATCH_API_OIDC_AUDIENCE: z.string().min(1).optional(),
  DRIFTWATCH_API_OIDC_JWKS_URL: url.optional(),
  DRIFTWATCH_API_OIDC_ROLES_CLAIM: z.string().min(1).default("roles"),
  /** `admin=group-a|group-b,responder=group-c,viewer=group-d`: which claim values give which role. */
  DRIFTWATCH_API_OIDC_ROLE_MAP: z
    .string()
    .regex(
      /^(?:(?:viewer|responder|admin)=[^,=|]+(?:\|[^,=|]+)*)(?:,(?:viewer|responder|admin)=[^,=|]+(?:\|[^,=|]+)*)*$/,
      "role=value|value,role=value (roles: viewer, responder, admin)",
    )
    .optional(),
  DRIFTWATCH_MAX_BODY_BYTES: positiveInt.default(4 * 1024 * 1024),
  DRIFTWATCH_OTLP_MAX_INFLIGHT: positiveInt.default(64),
  // per-client budgets and per-request caps of the OTLP gateway (services/gateway/limits.ts)
  DRIFTWATCH_OTLP_CLIENT_REQUESTS_PER_SECOND: positiveInt.default(100),
  DRIFTWATCH_OTLP_CLIENT_SPANS_PER_MINUTE: positiveInt.default(600_000),
  DRIFTWATCH_OTLP_MAX_SPANS_PER_REQUEST: positiveInt.default(20_000),
  DRIFTWATCH_OTLP_MAX_TRACES_PER_REQUEST: positiveInt.default(10_000),
  /** Tasks the embedded mode's in-memory store keeps; the least recently active leave first. */
  DRIFTWATCH_EMBEDDED_MAX_TASKS: positiveInt.default(10_000),
  /** ... and what their state may take, in MiB as written (the memory it takes is a few times this). */
  DRIFTWATCH_EMBEDDED_MAX_STORE_MB: positiveInt.default(128),
  DRIFTWATCH_INGEST_ENCODING: z.enum(["auto", "otlp_proto", "otlp_json"]).default("auto"),
  /** Agent authentication at the gateway (docs/trust-model.md). */
  DRIFTWATCH_OTLP_AUTH: z.enum(["none", "optional", "required"]).optional(),
  DRIFTWATCH_OTLP_TOKENS_FILE: z.string().min(1).optional(),
  DRIFTWATCH_OTLP_SPIFFE_BUNDLE: z.string().min(1).optional(),
  DRIFTWATCH_OTLP_SPIFFE_AUDIENCE: z.string().min(1).default("driftwatch"),
  DRIFTWATCH_OTLP_SPIFFE_TRUST_DOMAIN: z
    .string()
    .regex(/^[a-z0-9._-]+$/, "a trust domain name, e.g. acme.org")
    .optional(),
  /** The key the gateway signs senders with and ingest checks them with (at least 32 characters). */
  DRIFTWATCH_INGEST_SIGNING_KEY: z.string().min(32, "at least 32 characters").optional(),
  DRIFTWATCH_INGEST_REQUIRE_SENDER: bool.default(false),
  DRIFTWATCH_POLICY_DIR: z.string().min(1).default("policies"),
  DRIFTWATCH_LATENESS_MS: z.coerce.number().int().min(0).default(30_000),
  DRIFTWATCH_TASK_IDLE_MS: positiveInt.default(300_000),
  DRIFTWATCH_TASK_TTL_MS: positiveInt.default(7 * 24 * 3600 * 1000),
  DRIFTWATCH_PATHFINDER_CACHED_TASKS: positiveInt.default(50_000),
  DRIFTWATCH_SILENCE_SWEEP_MS: positiveInt.default(10_000),
  DRIFTWATCH_BASELINE_SWEEP_MS: positiveInt.default(10_000),
  DRIFTWATCH_REVOKE_MAX_ATTEMPTS: positiveInt.default(30),
  DRIFTWATCH_REVOKE_RETRY_BASE_MS: positiveInt.default(1_000),
  DRIFTWATCH_REVOKE_RETRY_MAX_MS: positiveInt.default(60_000),
  DRIFTWATCH_REVOKE_SWEEP_MS: positiveInt.default(1_000),
  DRIFTWATCH_BASELINE_SETTLE_MS: positiveInt.default(60_000),
  DRIFTWATCH_BASELINE_HOLD_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(24 * 3_600_000),
  DRIFTWATCH_REVOKE_MIN_SEVERITY: z.enum(["info", "low", "medium", "high", "critical"]).default("high"),
  DRIFTWATCH_REVOKE_WEBHOOK_URL: url.optional(),
  DRIFTWATCH_REVOKE_WEBHOOK_SECRET: webhookSecret.optional(),
  DRIFTWATCH_ALERT_STDOUT: bool.default(true),
  DRIFTWATCH_ALERT_JSONL: z.string().min(1).optional(),
  DRIFTWATCH_ALERT_WEBHOOK_URL: url.optional(),
  DRIFTWATCH_ALERT_WEBHOOK_SECRET: webhookSecret.optional(),
  DRIFTWATCH_ALERT_SLACK_WEBHOOK_URL: url.optional(),
  DRIFTWATCH_ALERT_SPLUNK_HEC_URL: url.optional(),
  DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN: hecToken.optional(),
  DRIFTWATCH_ALERT_SPLUNK_INDEX: z
    .string()
    .regex(/^[A-Za-z0-9_][A-Za-z0-9_-]*$/, "must be an index name (letters, digits, '_' and '-')")
    .optional(),
  DRIFTWATCH_ALERT_SPLUNK_SOURCETYPE: z
    .string()
    .regex(/^[\x21-\x7e]+$/, "must be printable characters without whitespace")
    .default("driftwatch:ocsf"),
  DRIFTWATCH_ALERT_SPLUNK_SOURCE: z.string().min(1).default("driftwatch"),
  DRIFTWATCH_ALERT_SYSLOG: syslogTarget.optional(),
  DRIFTWATCH_ALERT_SYSLOG_FACILITY: syslogFacility.default(4),
  DRIFTWATCH_ALERT_MIN_SEVERITY: severity.default("info"),
  DRIFTWATCH_ALERT_STDOUT_MIN_SEVERITY: severity.optional(),
  DRIFTWATCH_ALERT_JSONL_MIN_SEVERITY: severity.optional(),
  DRIFTWATCH_ALERT_WEBHOOK_MIN_SEVERITY: severity.optional(),
  DRIFTWATCH_ALERT_SLACK_MIN_SEVERITY: severity.optional(),
  DRIFTWATCH_ALERT_SPLUNK_MIN_SEVERITY: severity.optional(),
  DRIFTWATCH_ALERT_SYSLOG_MIN_SEVERITY: severity.optional(),
  DRIFTWATCH_ALERT_RETRY_ROUNDS: positiveInt.default(20),
  DRIFTWATCH_ALERT_RETRY_BASE_MS: positiveInt.default(1_000),
  DRIFTWATCH_ALERT_RETRY_MAX_MS: positiveInt.default(300_000),
  DRIFTWATCH_ALERT_SWEEP_MS: positiveInt.default(1_000),
  DRIFTWATCH_WEBHOOK_TIMEOUT_MS: positiveInt.default(5000),
  DRIFTWATCH_VAULT_ADDR: url.optional(),
  DRIFTWATCH_VAULT_TOKEN: vaultToken.optional(),
  DRIFTWATCH_VAULT_NAMESPACE: z
    .string()
    .regex(/^[^\s]+$/, "must have no whitespace")
    .optional(),
  DRIFTWATCH_VAULT_PREFIX_ROOTS: list.optional(),
  DRIFTWATCH_VAULT_TIMEOUT_MS: positiveInt.optional(),
  DRIFTWATCH_CAEP_RECEIVER_URL: url.optional(),
  DRIFTWATCH_CAEP_ISSUER: url.optional(),
  DRIFTWATCH_CAEP_AUDIENCE: list.optional(),
  DRIFTWATCH_CAEP_SIGNING_KEY: z.string().min(1).optional(),
  DRIFTWATCH_CAEP_KEY_ID: z.string().min(1).optional(),
  DRIFTWATCH_CAEP_AUTHORIZATION: headerValue.optional(),
  DRIFTWATCH_CAEP_TIMEOUT_MS: positiveInt.optional(),
  DRIFTWATCH_DELIVERY_MAX_ATTEMPTS: positiveInt.default(DEFAULT_RETRY.maxAttempts),
  DRIFTWATCH_DELIVERY_BACKOFF_MS: positiveInt.default(DEFAULT_RETRY.baseDelayMs),
  DRIFTWATCH_DELIVERY_MAX_DELAY_MS: positiveInt.default(DEFAULT_RETRY.maxDelayMs),
  DRIFTWATCH_DELIVERY_BUDGET_MS: positiveInt.default(DEFAULT_RETRY.budgetMs ?? 30_000),
  DRIFTWATCH_CIRCUIT_FAILURES: positiveInt.default(DEFAULT_CIRCUIT.failureThreshold),
  DRIFTWATCH_CIRCUIT_COOLDOWN_MS: positiveInt.default(DEFAULT_CIRCUIT.coolDownMs),
});

const SECRET_VARS = [
  "DRIFTWATCH_API_TOKEN",
  "DRIFTWATCH_API_READ_TOKEN",
  "DRIFTWATCH_INGEST_SIGNING_KEY",
  "DRIFTWATCH_REVOKE_WEBHOOK_SECRET",
  "DRIFTWATCH_ALERT_WEBHOOK_SECRET",
  "DRIFTWATCH_ALERT_SLACK_WEBHOOK_URL",
  "DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN",
  "DRIFTWATCH_VAULT_TOKEN",
  "DRIFTWATCH_CAEP_SIGNING_KEY",
  "DRIFTWATCH_CAEP_AUTHORIZATION",
  // Kafka SASL and Redis ACL passwords (transport-config.ts)
  ...TRANSPORT_SECRET_VARS,
] as const;

/** Secrets whose file is handed to the adapter rather than read once: it re-reads the file when it changes. */
const ROTATING_SECRETS: readonly string[] = ["DRIFTWATCH_VAULT_TOKEN"];

/** A URL's password (e.g. in a Redis URL) is a secret too: never echoed in an error. */
/** The tokens file's tokens, validated; errors name the file and the entry, never a token. */
function readTokensFile(path: string): StaticToken[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new Error(`${path} is not YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  const parsed = TokensFile.safeParse(data);
  if (!parsed.success) {
    throw new Error(`${path}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`).join("; ")}`);
  }
  return parsed.data;
}

/** `admin=a|b,responder=c` → { admin: ["a", "b"], responder: ["c"] }. */
function roleMapOf(text: string): Partial<Record<Role, string[]>> {
  const map: Partial<Record<Role, string[]>> = {};
  for (const part of text.split(",")) {
    const [role, values] = part.split("=") as [Role, string];
    map[role] = values.split("|");
  }
  return map;
}

function withoutCredentials(value: string | undefined): string | undefined {
  return value?.replace(/(\/\/[^/@:\s]*:)[^/@\s]*@/g, "$1***@");
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export interface Config {
  logLevel: z.infer<typeof Env>["DRIFTWATCH_LOG_LEVEL"];
  /** With TLS (`ssl`) and SASL when configured (transport-config.ts). */
  kafka: { brokers: string[]; clientId: string; partitions: number; replicationFactor: number } & KafkaSecurity;
  topicPrefix: string;
  groupPrefix: string;
  /** Pack a batch's records for one task into one message (a JSON array). */
  packRecords: boolean;
  /** The analyser writes the steps it judged to `agent.steps` (for other consumers; off saves producing them). */
  stepsOutput: boolean;
  /** With TLS settings and an ACL user when configured (transport-config.ts). */
  redis: { url: string; keyPrefix: string } & RedisSecurity;
  otlp: {
    host: string;
    port: number;
    maxBodyBytes: number;
    maxInflight: number;
    /** Per-client budgets (token buckets) and per-request caps. */
    limits: { requestsPerSecond: number; spansPerMinute: number; maxSpansPerRequest: number; maxTracesPerRequest: number };
  };
  /** The embedded mode: tasks its in-memory store keeps (least recently active evicted first). */
  embedded: { maxTasks: number; maxBytes: number };
  ingest: {
    encoding: "auto" | "protobuf" | "json";
    /** The gateway signs the senders it authenticated with it; ingest checks them (embedded mode: a random key per process). */
    senderKey?: Buffer;
    /** Refuse messages no gateway signed a sender for. */
    requireSender: boolean;
  };
  /** Agent authentication at the gateway: files read when the gateway starts. */
  agentAuth: {
    mode: "none" | "optional" | "required";
    tokensFile?: string;
    spiffeBundle?: string;
    spiffeAudience: string;
    spiffeTrustDomain?: string;
  };
  /** Where a distributed process serves /healthz, /readyz and /metrics. */
  ops: { host: string; port: number };
  /** The console API; with a token, it answers only requests that carry it (a read token: GET only). */
  api: {
    host: string;
    port: number;
    token?: string;
    readToken?: string;
    /** Every static token with its holder and role: the two above (admin, viewer) and the tokens file's. */
    tokens: StaticToken[];
    oidc?: {
      issuer: string;
      audience: string;
      jwksUrl?: string;
      rolesClaim: string;
      roleMap?: Partial<Record<Role, string[]>>;
    };
  };
  policyDir: string;
  tasks: {
    /** How far back (by span start) a late span still re-evaluates the steps after it. */
    latenessMs: number;
    /** A task with no new span for this long is idle. */
    idleMs: number;
    /** How long a task's state is kept after its last span. */
    ttlMs: number;
    /** Paths the pathfinder keeps in memory. */
    cachedTasks: number;
    /** How often the detector looks for tasks whose telemetry went silent. */
    silenceSweepMs: number;
  };
  baselines: {
    /** How often the detector learns the tasks that finished. */
    sweepMs: number;
    /** A finished task is learned once no span came for this long (its steps all judged). */
    settleMs: number;
    /** A task that raised an anomaly alert is learned only this long after it finished (0: at once). */
    holdMs: number;
  };
  revoker: {
    minSeverity: z.infer<typeof Env>["DRIFTWATCH_REVOKE_MIN_SEVERITY"];
    /** Store requests per credential before its revocation is dead-lettered. */
    maxAttempts: number;
    /** Delay before a failed revocation's next round (doubling, full jitter), and its ceiling. */
    retryBaseMs: number;
    retryMaxMs: number;
    /** How often the revoker looks for revocations to retry and approvals to carry out. */
    sweepMs: number;
    webhook?: { url: string; secret: string };
    vault?: VaultConfig;
    caep?: CaepConfig;
  };
  notifier: NotifierConfig;
  webhookTimeoutMs: number;
  /** Retries, backoff and circuit breaking of outgoing HTTP (services/runtime/delivery.ts). */
  delivery: {
    maxAttempts: number;
    backoffMs: number;
    maxDelayMs: number;
    budgetMs: number;
    circuitFailures: number;
    circuitCooldownMs: number;
  };
}

export type Severity = z.infer<typeof severity>;
export type AlertSinkName = "stdout" | "jsonl" | "webhook" | "slack" | "splunk" | "syslog";

/** The SOC sinks (services/notifier/outputs), each present when configured, and how failed alerts are retried. */
export interface NotifierConfig {
  /** Incident versions as JSON lines on stdout. */
  stdout: boolean;
  /** ... or appended to this file. */
  jsonl?: { path: string };
  /** Signed (Standard Webhooks) POSTs. */
  webhook?: { url: string; secret: string };
  /** A Slack incoming webhook; the URL is the credential. */
  slack?: { url: string };
  /** A Splunk HTTP Event Collector. */
  splunk?: { url: string; token: string; index?: string; sourcetype: string; source: string };
  /** A syslog collector (RFC 5424 over UDP, or TCP with octet counting). */
  syslog?: { transport: "udp" | "tcp"; host: string; port: number; facility: number };
  /** The least severity each sink is sent. */
  minSeverity: Record<AlertSinkName, Severity>;
  /** Rounds per version and sink before it is dead-lettered; the delay before the next round (doubling, full jitter) and its cap; how often the sweep looks. */
  retry: { rounds: number; baseMs: number; maxMs: number; sweepMs: number };
}

/** A secret given in the environment, or the file that holds it (read again when it changes). */
export type SecretRef = { value: string } | { file: string };

export interface VaultConfig {
  addr: string;
  token: SecretRef;
  namespace?: string;
  /** Lease prefixes below which `vault:prefix:` revocation is allowed (none: refused). */
  prefixRoots: string[];
  timeoutMs: number;
}

export interface CaepConfig {
  receiverUrl: string;
  issuer: string;
  audience: string | string[];
  /** PEM private key (EC P-256 or RSA). */
  signingKey: string;
  keyId?: string;
  /** Authorization header value the receiver requires. */
  authorization?: string;
  timeoutMs: number;
}

/** Reads `<NAME>_FILE` into `<NAME>` for secret variables; a variable set both ways is an error. */
function resolveSecretFiles(env: NodeJS.ProcessEnv, problems: string[], files: Map<string, string>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const name of SECRET_VARS) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name]) {
      problems.push(`${name}: set both ${name} and ${name}_FILE; choose one`);
      continue;
    }
    try {
      out[name] = readFileSync(file, "utf8").trim();
      files.set(name, file);
    } catch (err) {
      problems.push(`${name}_FILE: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  return out;
}

function notifierConfig(e: z.infer<typeof Env>, webhook: { url: string; secret: string } | undefined): NotifierConfig {
  const min = (sink: Severity | undefined) => sink ?? e.DRIFTWATCH_ALERT_MIN_SEVERITY;
  const jsonl = e.DRIFTWATCH_ALERT_JSONL;
  const hec = e.DRIFTWATCH_ALERT_SPLUNK_HEC_URL;
  const token = e.DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN;
  return {
    // `-` is stdout
    stdout: e.DRIFTWATCH_ALERT_STDOUT || jsonl === "-",
    ...(jsonl && jsonl !== "-" ? { jsonl: { path: jsonl } } : {}),
    ...(webhook ? { webhook } : {}),
    ...(e.DRIFTWATCH_ALERT_SLACK_WEBHOOK_URL ? { slack: { url: e.DRIFTWATCH_ALERT_SLACK_WEBHOOK_URL } } : {}),
    ...(hec && token
      ? {
          splunk: {
            url: hec,
            token,
            ...(e.DRIFTWATCH_ALERT_SPLUNK_INDEX ? { index: e.DRIFTWATCH_ALERT_SPLUNK_INDEX } : {}),
            sourcetype: e.DRIFTWATCH_ALERT_SPLUNK_SOURCETYPE,
            source: e.DRIFTWATCH_ALERT_SPLUNK_SOURCE,
          },
        }
      : {}),
    ...(e.DRIFTWATCH_ALERT_SYSLOG ? { syslog: { ...e.DRIFTWATCH_ALERT_SYSLOG, facility: e.DRIFTWATCH_ALERT_SYSLOG_FACILITY } } : {}),
    minSeverity: {
      stdout: min(e.DRIFTWATCH_ALERT_STDOUT_MIN_SEVERITY),
      jsonl: min(e.DRIFTWATCH_ALERT_JSONL_MIN_SEVERITY),
      webhook: min(e.DRIFTWATCH_ALERT_WEBHOOK_MIN_SEVERITY),
      slack: min(e.DRIFTWATCH_ALERT_SLACK_MIN_SEVERITY),
      splunk: min(e.DRIFTWATCH_ALERT_SPLUNK_MIN_SEVERITY),
      syslog: min(e.DRIFTWATCH_ALERT_SYSLOG_MIN_SEVERITY),
    },
    retry: {
      rounds: e.DRIFTWATCH_ALERT_RETRY_ROUNDS,
      baseMs: e.DRIFTWATCH_ALERT_RETRY_BASE_MS,
      maxMs: e.DRIFTWATCH_ALERT_RETRY_MAX_MS,
      sweepMs: e.DRIFTWATCH_ALERT_SWEEP_MS,
    },
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const secretFiles = new Map<string, string>();
  const raw = resolveSecretFiles(env, problems, secretFiles);
  // empty strings mean "unset", as in most shells' `VAR= cmd`
  for (const k of Object.keys(raw)) if (k.startsWith("DRIFTWATCH_") && raw[k] === "") delete raw[k];
  const parsed = Env.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? "environment");
      const secret = (SECRET_VARS as readonly string[]).includes(name);
      // never echo a secret's value back
      problems.push(`${name}: ${issue.message}${secret ? "" : ` (got ${JSON.stringify(withoutCredentials(raw[name]))})`}`);
    }
  }
  const e = parsed.data;
  // the API's static tokens: the admin and read tokens, and the tokens file's named ones
  const apiTokens: StaticToken[] = [];
  if (e?.DRIFTWATCH_API_TOKEN) apiTokens.push({ name: "api-token", role: "admin", token: e.DRIFTWATCH_API_TOKEN });
  if (e?.DRIFTWATCH_API_READ_TOKEN) apiTokens.push({ name: "api-read-token", role: "viewer", token: e.DRIFTWATCH_API_READ_TOKEN });
  if (e) {
    for (const [sink, urlVar, secretVar] of [
      ["revocation webhook", "DRIFTWATCH_REVOKE_WEBHOOK_URL", "DRIFTWATCH_REVOKE_WEBHOOK_SECRET"],
      ["alert webhook", "DRIFTWATCH_ALERT_WEBHOOK_URL", "DRIFTWATCH_ALERT_WEBHOOK_SECRET"],
    ] as const) {
      if (e[urlVar] && !e[secretVar]) problems.push(`${secretVar}: required when ${urlVar} is set (the ${sink} is signed)`);
    }
    if (e.DRIFTWATCH_ALERT_SPLUNK_HEC_URL && !e.DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN)
      problems.push(
        "DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN: required when DRIFTWATCH_ALERT_SPLUNK_HEC_URL is set (or DRIFTWATCH_ALERT_SPLUNK_HEC_TOKEN_FILE)",
      );
    if (e.DRIFTWATCH_API_READ_TOKEN && !e.DRIFTWATCH_API_TOKEN)
      problems.push("DRIFTWATCH_API_READ_TOKEN: requires DRIFTWATCH_API_TOKEN (else writes would need no token and reads one)");
    if (e.DRIFTWATCH_API_READ_TOKEN && e.DRIFTWATCH_API_READ_TOKEN === e.DRIFTWATCH_API_TOKEN)
      problems.push("DRIFTWATCH_API_READ_TOKEN: must differ from DRIFTWATCH_API_TOKEN");
    if (Boolean(e.DRIFTWATCH_API_OIDC_ISSUER) !== Boolean(e.DRIFTWATCH_API_OIDC_AUDIENCE))
      problems.push(
        `${e.DRIFTWATCH_API_OIDC_ISSUER ? "DRIFTWATCH_API_OIDC_AUDIENCE" : "DRIFTWATCH_API_OIDC_ISSUER"}: OIDC needs both the issuer and the audience (the API's own id at the issuer)`,
      );
    if (e.DRIFTWATCH_API_TOKENS_FILE) {
      try {
        const named = readTokensFile(e.DRIFTWATCH_API_TOKENS_FILE);
        for (const t of named) {
          if (apiTokens.some((x) => x.token === t.token))
            problems.push(
              `DRIFTWATCH_API_TOKENS_FILE: the token of "${t.name}" is also DRIFTWATCH_API_TOKEN or _READ_TOKEN (each token names one holder)`,
            );
        }
        apiTokens.push(...named);
      } catch (err) {
        problems.push(`DRIFTWATCH_API_TOKENS_FILE: ${(err as Error).message}`);
      }
    }
    if (e.DRIFTWATCH_OTLP_MAX_SPANS_PER_REQUEST > e.DRIFTWATCH_OTLP_CLIENT_SPANS_PER_MINUTE)
      problems.push(
        "DRIFTWATCH_OTLP_CLIENT_SPANS_PER_MINUTE: must be at least DRIFTWATCH_OTLP_MAX_SPANS_PER_REQUEST (a full request must fit)",
      );
    if (e.DRIFTWATCH_ALERT_RETRY_BASE_MS > e.DRIFTWATCH_ALERT_RETRY_MAX_MS)
      problems.push("DRIFTWATCH_ALERT_RETRY_MAX_MS: must be at least DRIFTWATCH_ALERT_RETRY_BASE_MS");
    if (e.DRIFTWATCH_OTLP_AUTH && e.DRIFTWATCH_OTLP_AUTH !== "none" && !e.DRIFTWATCH_OTLP_TOKENS_FILE && !e.DRIFTWATCH_OTLP_SPIFFE_BUNDLE)
      problems.push(
        `DRIFTWATCH_OTLP_AUTH: ${e.DRIFTWATCH_OTLP_AUTH} needs agent credentials to check: DRIFTWATCH_OTLP_TOKENS_FILE or DRIFTWATCH_OTLP_SPIFFE_BUNDLE`,
      );
    if (e.DRIFTWATCH_INGEST_REQUIRE_SENDER && !e.DRIFTWATCH_INGEST_SIGNING_KEY)
      problems.push("DRIFTWATCH_INGEST_REQUIRE_SENDER: needs DRIFTWATCH_INGEST_SIGNING_KEY (or _FILE) to check the gateway's signatures");
    if (e.DRIFTWATCH_VAULT_ADDR && !e.DRIFTWATCH_VAULT_TOKEN)
      problems.push("DRIFTWATCH_VAULT_TOKEN: required when DRIFTWATCH_VAULT_ADDR is set (or DRIFTWATCH_VAULT_TOKEN_FILE)");
    if (e.DRIFTWATCH_CAEP_RECEIVER_URL) {
      for (const name of ["DRIFTWATCH_CAEP_ISSUER", "DRIFTWATCH_CAEP_AUDIENCE", "DRIFTWATCH_CAEP_SIGNING_KEY"] as const)
        if (!e[name])
          problems.push(`${name}: required when DRIFTWATCH_CAEP_RECEIVER_URL is set${name.endsWith("KEY") ? ` (or ${name}_FILE)` : ""}`);
    }
    if (e.DRIFTWATCH_CAEP_SIGNING_KEY) {
      try {
        loadSigningKey(e.DRIFTWATCH_CAEP_SIGNING_KEY);
      } catch (err) {
        problems.push(`DRIFTWATCH_CAEP_SIGNING_KEY: ${(err as Error).message}`); // the message never quotes the key
      }
    }
  }
  // TLS and SASL to Kafka, TLS and an ACL user to Redis (transport-config.ts)
  const transport = transportConfig(raw, secretFiles, problems);
  if (problems.length > 0 || !e) throw new ConfigError(problems);
  const withSecret = (u?: string, s?: string) => (u && s ? { url: u, secret: s } : undefined);
  const revokeWebhook = withSecret(e.DRIFTWATCH_REVOKE_WEBHOOK_URL, e.DRIFTWATCH_REVOKE_WEBHOOK_SECRET);
  const alertWebhook = withSecret(e.DRIFTWATCH_ALERT_WEBHOOK_URL, e.DRIFTWATCH_ALERT_WEBHOOK_SECRET);
  const secretRef = (name: string, value: string): SecretRef => {
    const file = secretFiles.get(name);
    return file && ROTATING_SECRETS.includes(name) ? { file } : { value };
  };
  const vault: VaultConfig | undefined =
    e.DRIFTWATCH_VAULT_ADDR && e.DRIFTWATCH_VAULT_TOKEN
      ? {
          addr: e.DRIFTWATCH_VAULT_ADDR,
          token: secretRef("DRIFTWATCH_VAULT_TOKEN", e.DRIFTWATCH_VAULT_TOKEN),
          ...(e.DRIFTWATCH_VAULT_NAMESPACE ? { namespace: e.DRIFTWATCH_VAULT_NAMESPACE } : {}),
          prefixRoots: e.DRIFTWATCH_VAULT_PREFIX_ROOTS ?? [],
          timeoutMs: e.DRIFTWATCH_VAULT_TIMEOUT_MS ?? e.DRIFTWATCH_WEBHOOK_TIMEOUT_MS,
        }
      : undefined;
  const audience = e.DRIFTWATCH_CAEP_AUDIENCE;
  const caep: CaepConfig | undefined =
    e.DRIFTWATCH_CAEP_RECEIVER_URL && e.DRIFTWATCH_CAEP_ISSUER && audience && e.DRIFTWATCH_CAEP_SIGNING_KEY
      ? {
          receiverUrl: e.DRIFTWATCH_CAEP_RECEIVER_URL,
          issuer: e.DRIFTWATCH_CAEP_ISSUER,
          audience: audience.length === 1 ? (audience[0] as string) : audience,
          signingKey: e.DRIFTWATCH_CAEP_SIGNING_KEY,
          ...(e.DRIFTWATCH_CAEP_KEY_ID ? { keyId: e.DRIFTWATCH_CAEP_KEY_ID } : {}),
          ...(e.DRIFTWATCH_CAEP_AUTHORIZATION ? { authorization: e.DRIFTWATCH_CAEP_AUTHORIZATION } : {}),
          timeoutMs: e.DRIFTWATCH_CAEP_TIMEOUT_MS ?? e.DRIFTWATCH_WEBHOOK_TIMEOUT_MS,
        }
      : undefined;
  return {
    logLevel: e.DRIFTWATCH_LOG_LEVEL,
    kafka: {
      brokers: e.DRIFTWATCH_KAFKA_BROKERS,
      clientId: e.DRIFTWATCH_KAFKA_CLIENT_ID,
      partitions: e.DRIFTWATCH_KAFKA_PARTITIONS,
      replicationFactor: e.DRIFTWATCH_KAFKA_REPLICATION_FACTOR,
      ...transport?.kafka,
    },
    topicPrefix: e.DRIFTWATCH_TOPIC_PREFIX,
    groupPrefix: e.DRIFTWATCH_GROUP_PREFIX,
    packRecords: e.DRIFTWATCH_PACK_RECORDS,
    stepsOutput: e.DRIFTWATCH_STEPS_OUTPUT,
    redis: { url: e.DRIFTWATCH_REDIS_URL, keyPrefix: e.DRIFTWATCH_REDIS_KEY_PREFIX, ...transport?.redis },
    otlp: {
      host: e.DRIFTWATCH_OTLP_HOST,
      port: e.DRIFTWATCH_OTLP_PORT,
      maxBodyBytes: e.DRIFTWATCH_MAX_BODY_BYTES,
      maxInflight: e.DRIFTWATCH_OTLP_MAX_INFLIGHT,
      limits: {
        requestsPerSecond: e.DRIFTWATCH_OTLP_CLIENT_REQUESTS_PER_SECOND,
        spansPerMinute: e.DRIFTWATCH_OTLP_CLIENT_SPANS_PER_MINUTE,
        maxSpansPerRequest: e.DRIFTWATCH_OTLP_MAX_SPANS_PER_REQUEST,
        maxTracesPerRequest: e.DRIFTWATCH_OTLP_MAX_TRACES_PER_REQUEST,
      },
    },
    embedded: { maxTasks: e.DRIFTWATCH_EMBEDDED_MAX_TASKS, maxBytes: e.DRIFTWATCH_EMBEDDED_MAX_STORE_MB * 2 ** 20 },
    ingest: {
      encoding: e.DRIFTWATCH_INGEST_ENCODING === "otlp_proto" ? "protobuf" : e.DRIFTWATCH_INGEST_ENCODING === "otlp_json" ? "json" : "auto",
      ...(e.DRIFTWATCH_INGEST_SIGNING_KEY ? { senderKey: Buffer.from(e.DRIFTWATCH_INGEST_SIGNING_KEY, "utf8") } : {}),
      requireSender: e.DRIFTWATCH_INGEST_REQUIRE_SENDER,
    },
    agentAuth: {
      // credentials configured: every request must carry one, unless told otherwise
      mode: e.DRIFTWATCH_OTLP_AUTH ?? (e.DRIFTWATCH_OTLP_TOKENS_FILE || e.DRIFTWATCH_OTLP_SPIFFE_BUNDLE ? "required" : "none"),
      ...(e.DRIFTWATCH_OTLP_TOKENS_FILE ? { tokensFile: e.DRIFTWATCH_OTLP_TOKENS_FILE } : {}),
      ...(e.DRIFTWATCH_OTLP_SPIFFE_BUNDLE ? { spiffeBundle: e.DRIFTWATCH_OTLP_SPIFFE_BUNDLE } : {}),
      spiffeAudience: e.DRIFTWATCH_OTLP_SPIFFE_AUDIENCE,
      ...(e.DRIFTWATCH_OTLP_SPIFFE_TRUST_DOMAIN ? { spiffeTrustDomain: e.DRIFTWATCH_OTLP_SPIFFE_TRUST_DOMAIN } : {}),
    },
    ops: { host: e.DRIFTWATCH_OPS_HOST, port: e.DRIFTWATCH_OPS_PORT },
    api: {
      host: e.DRIFTWATCH_API_HOST,
      port: e.DRIFTWATCH_API_PORT,
      ...(e.DRIFTWATCH_API_TOKEN ? { token: e.DRIFTWATCH_API_TOKEN } : {}),
      ...(e.DRIFTWATCH_API_READ_TOKEN ? { readToken: e.DRIFTWATCH_API_READ_TOKEN } : {}),
      tokens: apiTokens,
      ...(e.DRIFTWATCH_API_OIDC_ISSUER && e.DRIFTWATCH_API_OIDC_AUDIENCE
        ? {
            oidc: {
              issuer: e.DRIFTWATCH_API_OIDC_ISSUER,
              audience: e.DRIFTWATCH_API_OIDC_AUDIENCE,
              ...(e.DRIFTWATCH_API_OIDC_JWKS_URL ? { jwksUrl: e.DRIFTWATCH_API_OIDC_JWKS_URL } : {}),
              rolesClaim: e.DRIFTWATCH_API_OIDC_ROLES_CLAIM,
              ...(e.DRIFTWATCH_API_OIDC_ROLE_MAP ? { roleMap: roleMapOf(e.DRIFTWATCH_API_OIDC_ROLE_MAP) } : {}),
            },
          }
        : {}),
    },
    policyDir: e.DRIFTWATCH_POLICY_DIR,
    tasks: {
      latenessMs: e.DRIFTWATCH_LATENESS_MS,
      idleMs: e.DRIFTWATCH_TASK_IDLE_MS,
      ttlMs: e.DRIFTWATCH_TASK_TTL_MS,
      cachedTasks: e.DRIFTWATCH_PATHFINDER_CACHED_TASKS,
      silenceSweepMs: e.DRIFTWATCH_SILENCE_SWEEP_MS,
    },
    baselines: {
      sweepMs: e.DRIFTWATCH_BASELINE_SWEEP_MS,
      settleMs: e.DRIFTWATCH_BASELINE_SETTLE_MS,
      holdMs: e.DRIFTWATCH_BASELINE_HOLD_MS,
    },
    revoker: {
      minSeverity: e.DRIFTWATCH_REVOKE_MIN_SEVERITY,
      maxAttempts: e.DRIFTWATCH_REVOKE_MAX_ATTEMPTS,
      retryBaseMs: e.DRIFTWATCH_REVOKE_RETRY_BASE_MS,
      retryMaxMs: e.DRIFTWATCH_REVOKE_RETRY_MAX_MS,
      sweepMs: e.DRIFTWATCH_REVOKE_SWEEP_MS,
      ...(revokeWebhook ? { webhook: revokeWebhook } : {}),
      ...(vault ? { vault } : {}),
      ...(caep ? { caep } : {}),
    },
    notifier: notifierConfig(e, alertWebhook),
    webhookTimeoutMs: e.DRIFTWATCH_WEBHOOK_TIMEOUT_MS,
    delivery: {
      maxAttempts: e.DRIFTWATCH_DELIVERY_MAX_ATTEMPTS,
      backoffMs: e.DRIFTWATCH_DELIVERY_BACKOFF_MS,
      maxDelayMs: e.DRIFTWATCH_DELIVERY_MAX_DELAY_MS,
      budgetMs: e.DRIFTWATCH_DELIVERY_BUDGET_MS,
      circuitFailures: e.DRIFTWATCH_CIRCUIT_FAILURES,
      circuitCooldownMs: e.DRIFTWATCH_CIRCUIT_COOLDOWN_MS,
    },
  };
}
