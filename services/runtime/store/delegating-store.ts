import type { Store } from "./store.js";

/**
 * A Store that hands every call to another: the base of the wrappers that watch what is
 * written (the embedded mode's bounds, services/pathfinder/task-retention.ts and
 * services/cli/record-retention.ts), which override only the calls they act on.
 */
export class DelegatingStore implements Store {
  constructor(protected readonly inner: Store) {}

  get(key: string): Promise<string | null> {
    return this.inner.get(key);
  }
  set(key: string, value: string, options?: { ttlMs?: number }): Promise<void> {
    return this.inner.set(key, value, options);
  }
  setIfAbsent(key: string, value: string, options?: { ttlMs?: number }): Promise<boolean> {
    return this.inner.setIfAbsent(key, value, options);
  }
  delete(...keys: string[]): Promise<void> {
    return this.inner.delete(...keys);
  }
  expire(key: string, ttlMs: number): Promise<void> {
    return this.inner.expire(key, ttlMs);
  }
  hashSet(key: string, fields: Record<string, string>): Promise<void> {
    return this.inner.hashSet(key, fields);
  }
  hashSetIfAbsent(key: string, fields: Record<string, string>): Promise<void> {
    return this.inner.hashSetIfAbsent(key, fields);
  }
  hashGetAll(key: string): Promise<Record<string, string>> {
    return this.inner.hashGetAll(key);
  }
  hashGet(key: string, fields: string[]): Promise<(string | null)[]> {
    return this.inner.hashGet(key, fields);
  }
  hashIncrement(key: string, field: string, by: number): Promise<number> {
    return this.inner.hashIncrement(key, field, by);
  }
  listPush(key: string, values: string[]): Promise<number> {
    return this.inner.listPush(key, values);
  }
  listRange(key: string, start: number, stop: number): Promise<string[]> {
    return this.inner.listRange(key, start, stop);
  }
  listTrim(key: string, start: number, stop: number): Promise<void> {
    return this.inner.listTrim(key, start, stop);
  }
  setAdd(key: string, members: string[]): Promise<number> {
    return this.inner.setAdd(key, members);
  }
  setMembers(key: string): Promise<string[]> {
    return this.inner.setMembers(key);
  }
  sortedAdd(key: string, entries: { score: number; member: string }[]): Promise<void> {
    return this.inner.sortedAdd(key, entries);
  }
  sortedRange(key: string, options: { offset: number; limit: number; reverse?: boolean }): Promise<string[]> {
    return this.inner.sortedRange(key, options);
  }
  sortedRangeByScore(
    key: string,
    options: { min: number; max: number; offset: number; limit: number; reverse?: boolean },
  ): Promise<{ member: string; score: number }[]> {
    return this.inner.sortedRangeByScore(key, options);
  }
  sortedRemove(key: string, members: string[]): Promise<void> {
    return this.inner.sortedRemove(key, members);
  }
  sortedCount(key: string): Promise<number> {
    return this.inner.sortedCount(key);
  }
  sortedRank(key: string, member: string): Promise<number | null> {
    return this.inner.sortedRank(key, member);
  }
  ping(): Promise<boolean> {
    return this.inner.ping();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
