import type { Store } from "./store.js";

type Value =
  | { kind: "string"; value: string }
  | { kind: "hash"; value: Map<string, string> }
  | { kind: "list"; value: string[] }
  | { kind: "set"; value: Set<string> }
  | { kind: "zset"; value: Map<string, number> };

interface Entry {
  data: Value;
  expiresAt?: number;
}

/** The Store of the embedded mode: Redis's semantics for the operations Driftwatch uses, in memory. */
export class MemoryStore implements Store {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepIntervalMs = 10_000) {
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  private live(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e?.expiresAt !== undefined && e.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private typed<K extends Value["kind"]>(key: string, kind: K, create: boolean): Extract<Value, { kind: K }> | undefined {
    const e = this.live(key);
    if (e) {
      if (e.data.kind !== kind) throw new Error(`WRONGTYPE key ${key} holds a ${e.data.kind}, not a ${kind}`);
      return e.data as Extract<Value, { kind: K }>;
    }
    if (!create) return undefined;
    const fresh = (
      kind === "hash"
        ? { kind, value: new Map() }
        : kind === "list"
          ? { kind, value: [] }
          : kind === "set"
            ? { kind, value: new Set() }
            : kind === "zset"
              ? { kind, value: new Map() }
              : { kind, value: "" }
    ) as Extract<Value, { kind: K }>;
    this.entries.set(key, { data: fresh });
    return fresh;
  }

  async get(key: string): Promise<string | null> {
    return this.typed(key, "string", false)?.value ?? null;
  }

  async set(key: string, value: string, options?: { ttlMs?: number }): Promise<void> {
    this.entries.set(key, { data: { kind: "string", value }, ...(options?.ttlMs ? { expiresAt: Date.now() + options.ttlMs } : {}) });
  }

  async setIfAbsent(key: string, value: string, options?: { ttlMs?: number }): Promise<boolean> {
    if (this.live(key)) return false;
    await this.set(key, value, options);
    return true;
  }

  async delete(...keys: string[]): Promise<void> {
    for (const k of keys) this.entries.delete(k);
  }

  async expire(key: string, ttlMs: number): Promise<void> {
    const e = this.live(key);
    if (e) e.expiresAt = Date.now() + ttlMs;
  }

  async hashSet(key: string, fields: Record<string, string>): Promise<void> {
    const h = this.typed(key, "hash", true)?.value as Map<string, string>;
    for (const [f, v] of Object.entries(fields)) h.set(f, v);
  }

  async hashSetIfAbsent(key: string, fields: Record<string, string>): Promise<void> {
    const h = this.typed(key, "hash", true)?.value as Map<string, string>;
    for (const [f, v] of Object.entries(fields)) if (!h.has(f)) h.set(f, v);
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.typed(key, "hash", false)?.value ?? []);
  }

  async hashGet(key: string, fields: string[]): Promise<(string | null)[]> {
    const h = this.typed(key, "hash", false)?.value;
    return fields.map((f) => h?.get(f) ?? null);
  }

  async hashIncrement(key: string, field: string, by: number): Promise<number> {
    const h = this.typed(key, "hash", true)?.value as Map<string, string>;
    const next = Number(h.get(field) ?? "0") + by;
    h.set(field, String(next));
    return next;
  }

  async listPush(key: string, values: string[]): Promise<number> {
    const l = this.typed(key, "list", true)?.value as string[];
    l.push(...values);
    return l.length;
  }

  async listRange(key: string, start: number, stop: number): Promise<string[]> {
    const l = this.typed(key, "list", false)?.value ?? [];
    const n = l.length;
    const s = start < 0 ? Math.max(n + start, 0) : start;
    const e = stop < 0 ? n + stop : Math.min(stop, n - 1);
    return s > e ? [] : l.slice(s, e + 1);
  }

  async listTrim(key: string, start: number, stop: number): Promise<void> {
    const kept = await this.listRange(key, start, stop);
    const l = this.typed(key, "list", false)?.value as string[] | undefined;
    if (!l) return;
    if (kept.length === 0) await this.delete(key);
    else l.splice(0, l.length, ...kept);
  }

  async setAdd(key: string, members: string[]): Promise<number> {
    const s = this.typed(key, "set", true)?.value as Set<string>;
    let added = 0;
    for (const m of members) {
      if (!s.has(m)) {
        s.add(m);
        added++;
      }
    }
    return added;
  }

  async setMembers(key: string): Promise<string[]> {
    return [...(this.typed(key, "set", false)?.value ?? [])];
  }

  async sortedAdd(key: string, entries: { score: number; member: string }[]): Promise<void> {
    const z = this.typed(key, "zset", true)?.value as Map<string, number>;
    for (const { score, member } of entries) z.set(member, score);
  }

  async sortedRange(key: string, options: { offset: number; limit: number; reverse?: boolean }): Promise<string[]> {
    const z = this.typed(key, "zset", false)?.value;
    if (!z) return [];
    // Redis orders equal scores lexicographically by member
    const sorted = [...z.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (options.reverse) sorted.reverse();
    return sorted.slice(options.offset, options.offset + options.limit).map(([m]) => m);
  }

  async sortedRangeByScore(
    key: string,
    options: { min: number; max: number; offset: number; limit: number; reverse?: boolean },
  ): Promise<{ member: string; score: number }[]> {
    const z = this.typed(key, "zset", false)?.value;
    if (!z) return [];
    const inRange = [...z.entries()]
      .filter(([, score]) => score >= options.min && score <= options.max)
      .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (options.reverse) inRange.reverse();
    return inRange.slice(options.offset, options.offset + options.limit).map(([member, score]) => ({ member, score }));
  }

  async sortedRemove(key: string, members: string[]): Promise<void> {
    const z = this.typed(key, "zset", false)?.value;
    for (const m of members) z?.delete(m);
  }

  async sortedCount(key: string): Promise<number> {
    return this.typed(key, "zset", false)?.value.size ?? 0;
  }

  async sortedRank(key: string, member: string): Promise<number | null> {
    const z = this.typed(key, "zset", false)?.value;
    const score = z?.get(member);
    if (!z || score === undefined) return null;
    let rank = 0;
    for (const [m, s] of z) if (s < score || (s === score && m < member)) rank++;
    return rank;
  }

  async ping(): Promise<boolean> {
    return true;
  }

  /** Stops the sweeper and drops the data: an in-memory store lives only as long as its process uses it. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.entries) if (e.expiresAt !== undefined && e.expiresAt <= now) this.entries.delete(k);
  }
}
