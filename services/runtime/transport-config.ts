import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { z } from "zod";
import type { SecretRef } from "./config.js";

/**
 * Transport security of the connections to Kafka and Redis, from DRIFTWATCH_* variables
 * (docs/transport-security.md): TLS (server verification, mutual TLS), Kafka SASL
 * (PLAIN, SCRAM-SHA-256/512) and Redis 6 ACL users. config.ts calls `transportConfig`
 * and puts the result under `kafka` and `redis`. Certificate and key files are read
 * and checked at start, so a wrong path or a key that does not match its certificate
 * stops the process with an error naming the variable. Passwords may come from
 * `<NAME>_FILE` (config.ts reads them like every secret); they, and the key files'
 * content, never appear in an error.
 */

export type KafkaSaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512";
export const KAFKA_SASL_MECHANISMS: readonly KafkaSaslMechanism[] = ["plain", "scram-sha-256", "scram-sha-512"];

/** A client's TLS settings: the PEM text of the files named, and how the server's certificate is checked. */
export interface TlsClientConfig {
  /** Trusted CA certificates (PEM); without it, Node's built-in CA list. */
  ca?: string;
  /** Client certificate (chain) and its private key, PEM: mutual TLS. */
  cert?: string;
  key?: string;
  /** Verify the server's certificate chain and name (false only for testing: anyone can then pose as the server). */
  rejectUnauthorized: boolean;
  /** The name the server's certificate must carry, also sent as SNI (default: the host connected to). */
  servername?: string;
}

export interface KafkaSaslConfig {
  mechanism: KafkaSaslMechanism;
  username: string;
  /** Read at every authentication: a rotated `_FILE` is used by the next connection. */
  password: SecretRef;
}

/** What config.ts adds under `kafka`: present only when configured. */
export interface KafkaSecurity {
  ssl?: TlsClientConfig;
  sasl?: KafkaSaslConfig;
}

/** What config.ts adds under `redis`: present only when configured. */
export interface RedisSecurity {
  tls?: TlsClientConfig;
  /** A Redis 6+ ACL user (with the password), instead of the default user. */
  username?: string;
  /** Read again on every reconnection: a rotated `_FILE` is used by the next connection. */
  password?: SecretRef;
}

/** The secret variables of this block: config.ts resolves their `_FILE` and never echoes them. */
export const TRANSPORT_SECRET_VARS = ["DRIFTWATCH_KAFKA_SASL_PASSWORD", "DRIFTWATCH_REDIS_PASSWORD"] as const;

/** Node's `tls.connect` options from a TlsClientConfig (kafkajs `ssl`, ioredis `tls`). */
export function tlsConnectionOptions(tls: TlsClientConfig): ConnectionOptions {
  return {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.servername ? { servername: tls.servername } : {}),
  };
}

const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => v === "true" || v === "1" || v === "yes");
const file = z.string().min(1);
const noSpace = z.string().regex(/^[^\s]+$/, "must have no whitespace");
const hostname = z
  .string()
  .regex(
    /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/,
    "must be a host name",
  );

const TransportEnv = z.object({
  DRIFTWATCH_KAFKA_SSL: bool.default(false),
  DRIFTWATCH_KAFKA_SSL_CA_FILE: file.optional(),
  DRIFTWATCH_KAFKA_SSL_CERT_FILE: file.optional(),
  DRIFTWATCH_KAFKA_SSL_KEY_FILE: file.optional(),
  DRIFTWATCH_KAFKA_SSL_REJECT_UNAUTHORIZED: bool.default(true),
  DRIFTWATCH_KAFKA_SSL_SERVERNAME: hostname.optional(),
  DRIFTWATCH_KAFKA_SASL_MECHANISM: z
    .string()
    .transform((s) => s.trim().toLowerCase())
    .pipe(
      z.enum(KAFKA_SASL_MECHANISMS as [KafkaSaslMechanism, ...KafkaSaslMechanism[]], {
        error: "must be plain, scram-sha-256 or scram-sha-512",
      }),
    )
    .optional(),
  DRIFTWATCH_KAFKA_SASL_USERNAME: noSpace.optional(),
  DRIFTWATCH_KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  DRIFTWATCH_KAFKA_SASL_ALLOW_PLAINTEXT: bool.default(false),
  DRIFTWATCH_REDIS_TLS_CA_FILE: file.optional(),
  DRIFTWATCH_REDIS_TLS_CERT_FILE: file.optional(),
  DRIFTWATCH_REDIS_TLS_KEY_FILE: file.optional(),
  DRIFTWATCH_REDIS_TLS_REJECT_UNAUTHORIZED: bool.default(true),
  DRIFTWATCH_REDIS_USERNAME: noSpace.optional(),
  DRIFTWATCH_REDIS_PASSWORD: z.string().min(1).optional(),
});

type Raw = Record<string, string | undefined>;

function readPem(variable: string, path: string, problems: string[]): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    problems.push(`${variable}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return undefined;
  }
}

/** The certificates of a PEM file, parsed; a problem (naming the variable and file) when there is none or one is broken. */
function certificates(variable: string, path: string, problems: string[]): { pem: string; first: X509Certificate } | undefined {
  const pem = readPem(variable, path, problems);
  if (pem === undefined) return undefined;
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    problems.push(`${variable}: ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    return undefined;
  }
  const parsed: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      parsed.push(new X509Certificate(block));
    } catch (err) {
      problems.push(`${variable}: certificate ${i + 1} in ${path} cannot be parsed: ${(err as Error).message}`);
      return undefined;
    }
  }
  return { pem, first: parsed[0] as X509Certificate };
}

/** A PEM private key; the problem never quotes the file. */
function privateKey(variable: string, path: string, problems: string[]): { pem: string; key: KeyObject } | undefined {
  const pem = readPem(variable, path, problems);
  if (pem === undefined) return undefined;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    problems.push(`${variable}: ${path} is an encrypted private key; give it unencrypted (protect the file instead)`);
    return undefined;
  }
  try {
    return { pem, key: createPrivateKey({ key: pem, format: "pem" }) };
  } catch {
    problems.push(`${variable}: ${path} holds no PEM private key`);
    return undefined;
  }
}

/** Reads and checks one client's TLS files (`<prefix>_CA_FILE`, `_CERT_FILE`, `_KEY_FILE`). */
function tlsConfig(
  prefix: "DRIFTWATCH_KAFKA_SSL" | "DRIFTWATCH_REDIS_TLS",
  e: z.infer<typeof TransportEnv>,
  problems: string[],
  extra: { rejectUnauthorized: boolean; servername?: string },
): TlsClientConfig {
  const caVar = `${prefix}_CA_FILE` as const;
  const certVar = `${prefix}_CERT_FILE` as const;
  const keyVar = `${prefix}_KEY_FILE` as const;
  const caFile = e[caVar];
  const certFile = e[certVar];
  const keyFile = e[keyVar];
  const ca = caFile ? certificates(caVar, caFile, problems) : undefined;
  if (Boolean(certFile) !== Boolean(keyFile)) {
    const [missing, given] = certFile ? [keyVar, certVar] : [certVar, keyVar];
    problems.push(`${missing}: required with ${given} (mutual TLS needs the certificate and its private key)`);
  }
  const cert = certFile ? certificates(certVar, certFile, problems) : undefined;
  const key = keyFile ? privateKey(keyVar, keyFile, problems) : undefined;
  if (cert && key && !cert.first.checkPrivateKey(key.key))
    problems.push(`${keyVar}: the key in ${keyFile} does not belong to the certificate in ${certFile}`);
  return {
    ...(ca ? { ca: ca.pem } : {}),
    ...(cert && key ? { cert: cert.pem, key: key.pem } : {}),
    rejectUnauthorized: extra.rejectUnauthorized,
    ...(extra.servername ? { servername: extra.servername } : {}),
  };
}

const KAFKA_TLS_VARS = [
  "DRIFTWATCH_KAFKA_SSL_CA_FILE",
  "DRIFTWATCH_KAFKA_SSL_CERT_FILE",
  "DRIFTWATCH_KAFKA_SSL_KEY_FILE",
  "DRIFTWATCH_KAFKA_SSL_REJECT_UNAUTHORIZED",
  "DRIFTWATCH_KAFKA_SSL_SERVERNAME",
] as const;
const REDIS_TLS_VARS = [
  "DRIFTWATCH_REDIS_TLS_CA_FILE",
  "DRIFTWATCH_REDIS_TLS_CERT_FILE",
  "DRIFTWATCH_REDIS_TLS_KEY_FILE",
  "DRIFTWATCH_REDIS_TLS_REJECT_UNAUTHORIZED",
] as const;

/** Why SASL without TLS is refused (unless DRIFTWATCH_KAFKA_SASL_ALLOW_PLAINTEXT=true). */
export const SASL_PLAINTEXT_REFUSAL =
  "SASL without TLS is refused: the SASL exchange (with plain, the password itself; with SCRAM, a proof open to offline guessing) " +
  "and every message would cross the network unencrypted, to a broker whose identity nobody checked. " +
  "Set DRIFTWATCH_KAFKA_SSL=true, or DRIFTWATCH_KAFKA_SASL_ALLOW_PLAINTEXT=true on a network you trust";

/**
 * The Kafka and Redis transport settings, or undefined when a variable is bad (each
 * problem, naming its variable, is added to `problems`). `raw` is the environment with
 * the secrets' `_FILE`s resolved and empty values removed; `secretFiles` names the
 * secrets that came from a file.
 */
export function transportConfig(
  raw: Raw,
  secretFiles: ReadonlyMap<string, string>,
  problems: string[],
): { kafka: KafkaSecurity; redis: RedisSecurity } | undefined {
  const parsed = TransportEnv.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? "environment");
      const secret = (TRANSPORT_SECRET_VARS as readonly string[]).includes(name);
      problems.push(`${name}: ${issue.message}${secret ? "" : ` (got ${JSON.stringify(raw[name])})`}`);
    }
    return undefined;
  }
  const e = parsed.data;
  const before = problems.length;
  const secretRef = (name: (typeof TRANSPORT_SECRET_VARS)[number], value: string): SecretRef => {
    const path = secretFiles.get(name);
    return path ? { file: path } : { value };
  };

  // --- Kafka: TLS, then SASL (refused in plaintext unless allowed)
  if (!e.DRIFTWATCH_KAFKA_SSL) {
    for (const name of KAFKA_TLS_VARS)
      if (raw[name] !== undefined) problems.push(`${name}: only used with TLS; set DRIFTWATCH_KAFKA_SSL=true (or remove it)`);
  }
  const ssl = e.DRIFTWATCH_KAFKA_SSL
    ? tlsConfig("DRIFTWATCH_KAFKA_SSL", e, problems, {
        rejectUnauthorized: e.DRIFTWATCH_KAFKA_SSL_REJECT_UNAUTHORIZED,
        ...(e.DRIFTWATCH_KAFKA_SSL_SERVERNAME ? { servername: e.DRIFTWATCH_KAFKA_SSL_SERVERNAME } : {}),
      })
    : undefined;
  const mechanism = e.DRIFTWATCH_KAFKA_SASL_MECHANISM;
  const username = e.DRIFTWATCH_KAFKA_SASL_USERNAME;
  const password = e.DRIFTWATCH_KAFKA_SASL_PASSWORD;
  if (mechanism) {
    if (!username) problems.push("DRIFTWATCH_KAFKA_SASL_USERNAME: required when DRIFTWATCH_KAFKA_SASL_MECHANISM is set");
    if (!password)
      problems.push(
        "DRIFTWATCH_KAFKA_SASL_PASSWORD: required when DRIFTWATCH_KAFKA_SASL_MECHANISM is set (or DRIFTWATCH_KAFKA_SASL_PASSWORD_FILE)",
      );
    if (!ssl && !e.DRIFTWATCH_KAFKA_SASL_ALLOW_PLAINTEXT) problems.push(`DRIFTWATCH_KAFKA_SASL_MECHANISM: ${SASL_PLAINTEXT_REFUSAL}`);
  } else {
    for (const name of ["DRIFTWATCH_KAFKA_SASL_USERNAME", "DRIFTWATCH_KAFKA_SASL_PASSWORD"] as const)
      if (e[name]) problems.push(`${name}: only used with DRIFTWATCH_KAFKA_SASL_MECHANISM (plain, scram-sha-256 or scram-sha-512)`);
  }

  // --- Redis: TLS needs a rediss:// URL; ACL credentials one way only
  let redisUrl: URL | undefined;
  try {
    redisUrl = new URL(raw.DRIFTWATCH_REDIS_URL ?? "redis://127.0.0.1:6379");
  } catch {
    // config.ts reports a bad DRIFTWATCH_REDIS_URL
  }
  const redisTls = redisUrl?.protocol === "rediss:";
  const tlsVarsSet = REDIS_TLS_VARS.filter((name) => raw[name] !== undefined);
  if (redisUrl && !redisTls)
    for (const name of tlsVarsSet) problems.push(`${name}: needs a rediss:// DRIFTWATCH_REDIS_URL (TLS); it is ${redisUrl.protocol}//`);
  const tls =
    redisTls && tlsVarsSet.length > 0
      ? tlsConfig("DRIFTWATCH_REDIS_TLS", e, problems, { rejectUnauthorized: e.DRIFTWATCH_REDIS_TLS_REJECT_UNAUTHORIZED })
      : undefined;
  const redisUser = e.DRIFTWATCH_REDIS_USERNAME;
  const redisPassword = e.DRIFTWATCH_REDIS_PASSWORD;
  if (redisUser && !redisPassword)
    problems.push("DRIFTWATCH_REDIS_PASSWORD: required with DRIFTWATCH_REDIS_USERNAME (or DRIFTWATCH_REDIS_PASSWORD_FILE)");
  if ((redisUser || redisPassword) && (redisUrl?.username || redisUrl?.password))
    problems.push(
      "DRIFTWATCH_REDIS_URL: carries a user or password as well as DRIFTWATCH_REDIS_USERNAME/PASSWORD; give the credentials one way",
    );

  if (problems.length > before) return undefined;
  return {
    kafka: {
      ...(ssl ? { ssl } : {}),
      ...(mechanism && username && password
        ? { sasl: { mechanism, username, password: secretRef("DRIFTWATCH_KAFKA_SASL_PASSWORD", password) } }
        : {}),
    },
    redis: {
      ...(tls ? { tls } : {}),
      ...(redisUser ? { username: redisUser } : {}),
      ...(redisPassword ? { password: secretRef("DRIFTWATCH_REDIS_PASSWORD", redisPassword) } : {}),
    },
  };
}
