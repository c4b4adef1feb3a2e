import { afterAll, describe, expect, it } from "vitest";
import { boundedStore } from "../../services/cli/app.js";
import { TaskRetention } from "../../services/pathfinder/task-retention.js";
import { MemoryStore } from "../../services/runtime/store/memory-store.js";
import { type Store, taskKey } from "../../services/runtime/store/store.js";
import { Metrics } from "../../services/runtime/telemetry.js";
import { isolation, redisStore } from "../support/ports.js";

/** One contract, two adapters: the in-memory store must answer as Redis does. */
const stores: Store[] = [];
const adapters: [string, () => Store][] = [
  ["memory", () => new MemoryStore(50)],
  // the embedded mode's store: the in-memory one behind its bounds (large enough to evict nothing here)
  ["memory, tasks bounded", () => new TaskRetention(new MemoryStore(50), { maxTasks: 10_000 })],
  ["memory, embedded bounds", () => boundedStore({ maxTasks: 10_000, maxBytes: 2 ** 30 }, new Metrics(false))],
  ["redis", () => redisStore(isolation("store").keyPrefix)],
];

afterAll(async () => {
  for (const s of stores) await s.close();
});

describe.each(adapters)("Store contract: %s", (_name, make) => {
  const store = make();
  stores.push(store);

  it("strings: get, set, setIfAbsent (first writer wins), delete", async () => {
    expect(await store.get("s1")).toBeNull();
    await store.set("s1", "one");
    expect(await store.get("s1")).toBe("one");
    expect(await store.setIfAbsent("s1", "two")).toBe(false);
    expect(await store.get("s1")).toBe("one");
    expect(await store.setIfAbsent("s2", "first")).toBe(true);
    await store.delete("s1", "s2");
    expect(await store.get("s1")).toBeNull();
    expect(await store.get("s2")).toBeNull();
  });

  it("keys expire after their TTL", async () => {
    await store.set("ttl", "x", { ttlMs: 80 });
    expect(await store.setIfAbsent("ttl2", "y", { ttlMs: 80 })).toBe(true);
    await store.hashSet("ttl-h", { a: "1" });
    await store.expire("ttl-h", 80);
    expect(await store.get("ttl")).toBe("x");
    await new Promise((r) => setTimeout(r, 200));
    expect(await store.get("ttl")).toBeNull();
    expect(await store.setIfAbsent("ttl2", "z")).toBe(true);
    expect(await store.hashGetAll("ttl-h")).toEqual({});
  });

  it("hashes: set, set-if-absent per field, increment, read all", async () => {
    await store.hashSet("h", { a: "1", b: "2" });
    await store.hashSetIfAbsent("h", { a: "changed", c: "3" });
    expect(await store.hashIncrement("h", "n", 2)).toBe(2);
    expect(await store.hashIncrement("h", "n", 3)).toBe(5);
    expect(await store.hashGetAll("h")).toEqual({ a: "1", b: "2", c: "3", n: "5" });
    expect(await store.hashGetAll("missing-hash")).toEqual({});
  });

  it("lists: push returns the length; ranges include both ends and accept negatives", async () => {
    expect(await store.listPush("l", ["a", "b"])).toBe(2);
    expect(await store.listPush("l", ["c"])).toBe(3);
    expect(await store.listRange("l", 0, -1)).toEqual(["a", "b", "c"]);
    expect(await store.listRange("l", 1, 1)).toEqual(["b"]);
    expect(await store.listRange("l", -2, -1)).toEqual(["b", "c"]);
    expect(await store.listRange("l", 5, 9)).toEqual([]);
  });

  it("lists: trim keeps the range asked for, and an empty range removes the list", async () => {
    await store.listPush("trimmed", ["a", "b", "c", "d", "e"]);
    await store.listTrim("trimmed", -3, -1);
    expect(await store.listRange("trimmed", 0, -1)).toEqual(["c", "d", "e"]);
    await store.listTrim("trimmed", 0, 0);
    expect(await store.listRange("trimmed", 0, -1)).toEqual(["c"]);
    await store.listTrim("trimmed", 5, 9);
    expect(await store.listRange("trimmed", 0, -1)).toEqual([]);
    expect(await store.listPush("trimmed", ["z"])).toBe(1);
  });

  it("sets: add counts new members only", async () => {
    expect(await store.setAdd("set", ["x", "y"])).toBe(2);
    expect(await store.setAdd("set", ["y", "z"])).toBe(1);
    expect((await store.setMembers("set")).sort()).toEqual(["x", "y", "z"]);
  });

  it("sorted sets: order by score then member, rank, reverse ranges, count, update in place", async () => {
    const key = taskKey("t-1", "order");
    await store.sortedAdd(key, [
      { score: 3, member: "c" },
      { score: 1, member: "a" },
      { score: 2, member: "b2" },
      { score: 2, member: "b1" },
    ]);
    expect(await store.sortedRange(key, { offset: 0, limit: 10 })).toEqual(["a", "b1", "b2", "c"]);
    expect(await store.sortedRange(key, { offset: 1, limit: 2 })).toEqual(["b1", "b2"]);
    expect(await store.sortedRange(key, { offset: 0, limit: 2, reverse: true })).toEqual(["c", "b2"]);
    expect(await store.sortedRank(key, "b2")).toBe(2);
    expect(await store.sortedRank(key, "nope")).toBeNull();
    await store.sortedAdd(key, [{ score: 0, member: "c" }]);
    expect(await store.sortedRank(key, "c")).toBe(0);
    expect(await store.sortedCount(key)).toBe(4);
  });

  it("sorted sets: ranges by score with scores, limits, reverse, infinite bounds; removal", async () => {
    const key = taskKey("t-2", "order");
    await store.sortedAdd(key, [
      { score: 10.5, member: "x" },
      { score: 20, member: "y" },
      { score: 30, member: "z" },
      { score: 20, member: "w" },
    ]);
    expect(await store.sortedRangeByScore(key, { min: 20, max: 30, offset: 0, limit: 10 })).toEqual([
      { member: "w", score: 20 },
      { member: "y", score: 20 },
      { member: "z", score: 30 },
    ]);
    expect(await store.sortedRangeByScore(key, { min: Number.NEGATIVE_INFINITY, max: 25, offset: 1, limit: 1 })).toEqual([
      { member: "w", score: 20 },
    ]);
    expect(await store.sortedRangeByScore(key, { min: 11, max: Number.POSITIVE_INFINITY, offset: 0, limit: 2, reverse: true })).toEqual([
      { member: "z", score: 30 },
      { member: "y", score: 20 },
    ]);
    await store.sortedRemove(key, ["y", "nope"]);
    expect(await store.sortedRange(key, { offset: 0, limit: 10 })).toEqual(["x", "w", "z"]);
    expect(await store.sortedRangeByScore("absent", { min: 0, max: 1, offset: 0, limit: 1 })).toEqual([]);
  });

  it("hashes: read chosen fields, null where absent", async () => {
    await store.hashSet("hg", { a: "1", b: "2" });
    expect(await store.hashGet("hg", ["b", "nope", "a"])).toEqual(["2", null, "1"]);
    expect(await store.hashGet("absent-hash", ["a"])).toEqual([null]);
  });

  it("refuses an operation on a key of another type", async () => {
    await store.set("typed", "v");
    await expect(store.hashSet("typed", { a: "1" })).rejects.toThrow(/WRONGTYPE/);
  });

  it("answers ping", async () => {
    expect(await store.ping()).toBe(true);
  });
});
