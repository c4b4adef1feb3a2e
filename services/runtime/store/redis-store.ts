import { Redis } from "ioredis";
import type { Store } from "./store.js";

export interface RedisStoreOptions {
  url: string;
  /** Prepended to every key, to keep deployments (or test runs) apart. */
  keyPrefix?: string;
}

/** The Store on Redis (ioredis). */
export class RedisStore implements Store {
  readonly redis: Redis;

  constructor(options: RedisStoreOptions) {
    this.redis = new Redis(options.url, {
      keyPrefix: options.keyPrefix ?? "dw:",
      maxRetriesPerRequest: 5,
      enableAutoPipelining: true,
      lazyConnect: false,
    });
    // errors surface on the commands that hit them; this keeps ioredis from printing unhandled-error noise
    this.redis.on("error", () => undefined);
  }

  async get(key: string): Promise<string | null> {
    return this.redis.get(key);
  }

  async set(key: string, value: string, options?: { ttlMs?: number }): Promise<void> {
    if (options?.ttlMs) await this.redis.set(key, value, "PX", options.ttlMs);
    else await this.redis.set(key, value);
  }

  async setIfAbsent(key: string, value: string, options?: { ttlMs?: number }): Promise<boolean> {
    const r = options?.ttlMs ? await this.redis.set(key, value, "PX", options.ttlMs, "NX") : await this.redis.set(key, value, "NX");
    return r === "OK";
  }

  async delete(...keys: string[]): Promise<void> {
    if (keys.length > 0) await this.redis.del(...keys);
  }

  async expire(key: string, ttlMs: number): Promise<void> {
    await this.redis.pexpire(key, ttlMs);
  }

  async hashSet(key: string, fields: Record<string, string>): Promise<void> {
    if (Object.keys(fields).length > 0) await this.redis.hset(key, fields);
  }

  async hashSetIfAbsent(key: string, fields: Record<string, string>): Promise<void> {
    const entries = Object.entries(fields);
    if (entries.length === 0) return;
    const p = this.redis.pipeline();
    for (const [f, v] of entries) p.hsetnx(key, f, v);
    await p.exec();
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    return this.redis.hgetall(key);
  }

  async hashGet(key: string, fields: string[]): Promise<(string | null)[]> {
    if (fields.length === 0) return [];
    return this.redis.hmget(key, ...fields);
  }

  async hashIncrement(key: string, field: string, by: number): Promise<number> {
    return Number(await this.redis.hincrbyfloat(key, field, by));
  }

  async listPush(key: string, values: string[]): Promise<number> {
    if (values.length === 0) return this.redis.llen(key);
    return this.redis.rpush(key, ...values);
  }

  async listRange(key: string, start: number, stop: number): Promise<string[]> {
    return this.redis.lrange(key, start, stop);
  }

  async listTrim(key: string, start: number, stop: number): Promise<void> {
    await this.redis.ltrim(key, start, stop);
  }

  async setAdd(key: string, members: string[]): Promise<number> {
    if (members.length === 0) return 0;
    return this.redis.sadd(key, ...members);
  }

  async setMembers(key: string): Promise<string[]> {
    return this.redis.smembers(key);
  }

  async sortedAdd(key: string, entries: { score: number; member: string }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.redis.zadd(key, ...entries.flatMap((e) => [e.score, e.member]));
  }

  async sortedRange(key: string, options: { offset: number; limit: number; reverse?: boolean }): Promise<string[]> {
    const stop = options.offset + options.limit - 1;
    return options.reverse ? this.redis.zrevrange(key, options.offset, stop) : this.redis.zrange(key, options.offset, stop);
  }

  async sortedRangeByScore(
    key: string,
    options: { min: number; max: number; offset: number; limit: number; reverse?: boolean },
  ): Promise<{ member: string; score: number }[]> {
    const bound = (n: number) => (n === Number.POSITIVE_INFINITY ? "+inf" : n === Number.NEGATIVE_INFINITY ? "-inf" : String(n));
    const flat = options.reverse
      ? await this.redis.zrevrangebyscore(key, bound(options.max), bound(options.min), "WITHSCORES", "LIMIT", options.offset, options.limit)
      : await this.redis.zrangebyscore(key, bound(options.min), bound(options.max), "WITHSCORES", "LIMIT", options.offset, options.limit);
    const out: { member: string; score: number }[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ member: flat[i] as string, score: Number(flat[i + 1]) });
    return out;
  }

  async sortedRemove(key: string, members: string[]): Promise<void> {
    if (members.length > 0) await this.redis.zrem(key, ...members);
  }

  async sortedCount(key: string): Promise<number> {
    return this.redis.zcard(key);
  }

  async sortedRank(key: string, member: string): Promise<number | null> {
    return this.redis.zrank(key, member);
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
