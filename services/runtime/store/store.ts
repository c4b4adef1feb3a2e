/**
 * The Store port: where stages keep state. Redis in production (redis-store.ts), in memory
 * for the embedded mode (memory-store.ts). Keys are given without the deployment prefix;
 * use `taskKey` so every key of one task lands in one Redis Cluster slot.
 */
export interface Store {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, options?: { ttlMs?: number }): Promise<void>;
  /** Sets the key only if it does not exist; true when this call set it. The idempotency primitive. */
  setIfAbsent(key: string, value: string, options?: { ttlMs?: number }): Promise<boolean>;
  delete(...keys: string[]): Promise<void>;
  expire(key: string, ttlMs: number): Promise<void>;

  hashSet(key: string, fields: Record<string, string>): Promise<void>;
  /** Sets fields only where absent (first value wins). */
  hashSetIfAbsent(key: string, fields: Record<string, string>): Promise<void>;
  hashGetAll(key: string): Promise<Record<string, string>>;
  /** The values of `fields`, null where absent. */
  hashGet(key: string, fields: string[]): Promise<(string | null)[]>;
  hashIncrement(key: string, field: string, by: number): Promise<number>;

  listPush(key: string, values: string[]): Promise<number>;
  listRange(key: string, start: number, stop: number): Promise<string[]>;
  /** Keeps only the elements from `start` to `stop` (inclusive; negative counts from the end). */
  listTrim(key: string, start: number, stop: number): Promise<void>;

  setAdd(key: string, members: string[]): Promise<number>;
  setMembers(key: string): Promise<string[]>;

  sortedAdd(key: string, entries: { score: number; member: string }[]): Promise<void>;
  /** Members by score, highest first when `reverse`. */
  sortedRange(key: string, options: { offset: number; limit: number; reverse?: boolean }): Promise<string[]>;
  /**
   * Members with their scores, min ≤ score ≤ max (ascending, or descending when
   * `reverse`), from `offset`, at most `limit`.
   */
  sortedRangeByScore(
    key: string,
    options: { min: number; max: number; offset: number; limit: number; reverse?: boolean },
  ): Promise<{ member: string; score: number }[]>;
  sortedRemove(key: string, members: string[]): Promise<void>;
  sortedCount(key: string): Promise<number>;
  /** 0-based position by ascending score (ties by member), or null when absent. */
  sortedRank(key: string, member: string): Promise<number | null>;

  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** A key of one task's state; the braces are a Redis Cluster hash tag. */
export function taskKey(taskId: string, part: string): string {
  return `task:{${taskId}}:${part}`;
}
