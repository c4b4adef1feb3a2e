import { Redis } from "ioredis";
import type { Logger } from "pino";
import { type SecretSource, secretFrom } from "../secret-source.js";
import { type RedisSecurity, tlsConnectionOptions } from "../transport-config.js";
import type { Store } from "./store.js";

export interface RedisStoreOptions extends RedisSecurity {
  /** `redis://` or `rediss://` (TLS); a password in it is never logged nor put in an error. */
  url: string;
  /** Prepended to every key, to keep deployments (or test runs) apart. */
  keyPrefix?: string;
  /** Where connection problems are reported (once per distinct problem, and the recovery). */
  logger?: Logger;
}

/** Node's TLS verification failures: the server's certificate was not accepted. */
const CERTIFICATE_ERRORS = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** Where a store connects, for messages: the URL without its user and password, and the user. */
export function describeRedis(url: string, username?: string): string {
  try {
    const u = new URL(url);
    const user = username ?? (u.username ? decodeURIComponent(u.username) : undefined);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ""}${user ? ` (user ${user})` : ""}`;
  } catch {
    return "redis (unparsable URL)";
  }
}

/** The Store on Redis (ioredis). */
export class RedisStore implements Store {
  readonly redis: Redis;
  /** Where it connects (no credentials), for messages. */
  readonly where: string;
  /** The last connection error since the last successful connection. */
  private connectionError: Error | undefined;

  constructor(options: RedisStoreOptions) {
    const password: SecretSource | undefined = options.password ? secretFrom(options.password) : undefined;
    this.where = describeRedis(options.url, options.username);
    this.redis = new Redis(options.url, {
      keyPrefix: options.keyPrefix ?? "dw:",
      maxRetriesPerRequest: 5,
      enableAutoPipelining: true,
      lazyConnect: false,
      ...(options.tls ? { tls: tlsConnectionOptions(options.tls) } : {}),
      ...(options.username ? { username: options.username } : {}),
      ...(password ? { password: password.read() } : {}),
    });
    if (options.tls?.rejectUnauthorized === false)
      options.logger?.warn(
        { redis: this.where },
        "Redis TLS: the server's certificate is not verified (DRIFTWATCH_REDIS_TLS_REJECT_UNAUTHORIZED=false)",
      );
    // errors surface on the commands that hit them (explained by `explain`); the log says each new one once
    this.redis.on("error", (err: Error) => {
      if (this.connectionError?.message !== err.message)
        options.logger?.error({ redis: this.where, err: err.message }, "redis connection error");
      this.connectionError = err;
    });
    this.redis.on("ready", () => {
      if (this.connectionError) options.logger?.info({ redis: this.where }, "redis connected");
      this.connectionError = undefined;
    });
    // a rotated password file is used by the next connection
    if (password)
      this.redis.on("reconnecting", () => {
        try {
          this.redis.options.password = password.read();
        } catch (err) {
          options.logger?.error({ redis: this.where, err: (err as Error).message }, "redis password not re-read");
        }
      });
  }

  /**
   * A command's error, said plainly: an authentication or ACL refusal, or the connection
   * problem behind "max retries" (a TLS certificate not accepted, a refused connection).
   */
  private explain(err: unknown): unknown {
    if (!(err instanceof Error)) return err;
    const reply = /^(WRONGPASS|NOAUTH|NOPERM)\b/.exec(err.message)?.[1];
    if (reply === "NOPERM") return new Error(`Redis ${this.where}: refused by the user's ACL: ${err.message}`, { cause: err });
    if (reply) return new Error(`Redis ${this.where}: authentication failed: ${err.message}`, { cause: err });
    const cause = this.connectionError;
    if (cause && (err.name === "MaxRetriesPerRequestError" || err.message === "Connection is closed.")) {
      const code = (cause as NodeJS.ErrnoException).code ?? "";
      const hint = CERTIFICATE_ERRORS.has(code)
        ? " (the server's TLS certificate was not accepted: is the CA that signed it configured?)"
        : "";
      return new Error(`Redis ${this.where}: cannot connect: ${cause.message}${hint}`, { cause: err });
    }
    return err;
  }

  private run<T>(command: Promise<T>): Promise<T> {
    return command.catch((err: unknown) => {
      throw this.explain(err);
    });
  }

  async get(key: string): Promise<string | null> {
    return this.run(this.redis.get(key));
  }

  async set(key: string, value: string, options?: { ttlMs?: number }): Promise<void> {
    if (options?.ttlMs) await this.run(this.redis.set(key, value, "PX", options.ttlMs));
    else await this.run(this.redis.set(key, value));
  }

  async setIfAbsent(key: string, value: string, options?: { ttlMs?: number }): Promise<boolean> {
    const r = options?.ttlMs
      ? await this.run(this.redis.set(key, value, "PX", options.ttlMs, "NX"))
      : await this.run(this.redis.set(key, value, "NX"));
    return r === "OK";
  }

  async delete(...keys: string[]): Promise<void> {
    if (keys.length > 0) await this.run(this.redis.del(...keys));
  }

  async expire(key: string, ttlMs: number): Promise<void> {
    await this.run(this.redis.pexpire(key, ttlMs));
  }

  async hashSet(key: string, fields: Record<string, string>): Promise<void> {
    if (Object.keys(fields).length > 0) await this.run(this.redis.hset(key, fields));
  }

  async hashSetIfAbsent(key: string, fields: Record<string, string>): Promise<void> {
    const entries = Object.entries(fields);
    if (entries.length === 0) return;
    const p = this.redis.pipeline();
    for (const [f, v] of entries) p.hsetnx(key, f, v);
    // a pipeline resolves with each command's error: an ACL refusal must not pass unseen
    const failed = (await this.run(p.exec()))?.find(([err]) => err);
    if (failed?.[0]) throw this.explain(failed[0]);
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    return this.run(this.redis.hgetall(key));
  }

  async hashGet(key: string, fields: string[]): Promise<(string | null)[]> {
    if (fields.length === 0) return [];
    return this.run(this.redis.hmget(key, ...fields));
  }

  async hashIncrement(key: string, field: string, by: number): Promise<number> {
    return Number(await this.run(this.redis.hincrbyfloat(key, field, by)));
  }

  async listPush(key: string, values: string[]): Promise<number> {
    if (values.length === 0) return this.run(this.redis.llen(key));
    return this.run(this.redis.rpush(key, ...values));
  }

  async listRange(key: string, start: number, stop: number): Promise<string[]> {
    return this.run(this.redis.lrange(key, start, stop));
  }

  async listTrim(key: string, start: number, stop: number): Promise<void> {
    await this.run(this.redis.ltrim(key, start, stop));
  }

  async setAdd(key: string, members: string[]): Promise<number> {
    if (members.length === 0) return 0;
    return this.run(this.redis.sadd(key, ...members));
  }

  async setMembers(key: string): Promise<string[]> {
    return this.run(this.redis.smembers(key));
  }

  async sortedAdd(key: string, entries: { score: number; member: string }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.run(this.redis.zadd(key, ...entries.flatMap((e) => [e.score, e.member])));
  }

  async sortedRange(key: string, options: { offset: number; limit: number; reverse?: boolean }): Promise<string[]> {
    const stop = options.offset + options.limit - 1;
    return options.reverse
      ? this.run(this.redis.zrevrange(key, options.offset, stop))
      : this.run(this.redis.zrange(key, options.offset, stop));
  }

  async sortedRangeByScore(
    key: string,
    options: { min: number; max: number; offset: number; limit: number; reverse?: boolean },
  ): Promise<{ member: string; score: number }[]> {
    const bound = (n: number) => (n === Number.POSITIVE_INFINITY ? "+inf" : n === Number.NEGATIVE_INFINITY ? "-inf" : String(n));
    const flat = options.reverse
      ? await this.run(
          this.redis.zrevrangebyscore(key, bound(options.max), bound(options.min), "WITHSCORES", "LIMIT", options.offset, options.limit),
        )
      : await this.run(
          this.redis.zrangebyscore(key, bound(options.min), bound(options.max), "WITHSCORES", "LIMIT", options.offset, options.limit),
        );
    const out: { member: string; score: number }[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ member: flat[i] as string, score: Number(flat[i + 1]) });
    return out;
  }

  async sortedRemove(key: string, members: string[]): Promise<void> {
    if (members.length > 0) await this.run(this.redis.zrem(key, ...members));
  }

  async sortedCount(key: string): Promise<number> {
    return this.run(this.redis.zcard(key));
  }

  async sortedRank(key: string, member: string): Promise<number | null> {
    return this.run(this.redis.zrank(key, member));
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === "PONG";
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
