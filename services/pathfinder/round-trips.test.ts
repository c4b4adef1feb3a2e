import { describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import type { Step } from "../../schemas/step.js";
import { toolCall } from "../../test/support/actions.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import type { Store } from "../runtime/store/store.js";
import { type PathfinderOptions, type PathfinderStage, pathfinderStage, recordActions } from "./pathfinder.js";
import { TaskStore } from "./task-store.js";

const T0 = 1_760_000_000_000;
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";

interface Call {
  method: string;
  key: string;
  burst: number;
}

/**
 * A Store that delegates to a MemoryStore and records each call with its burst: the calls
 * issued in one synchronous run (before any answer can come back) are one burst, as Redis
 * auto-pipelining sends them in one round trip. Each answer comes back on a later turn of
 * the event loop, as from a server, so a call made after an answer is always a new burst.
 */
class CountingStore implements Store {
  readonly calls: Call[] = [];
  readonly inner = new MemoryStore();
  private burst = 0;
  private open = false;
  /** Makes the next call of `method` fail (the store is down), once. */
  failNext: string | undefined;

  private call<T>(method: string, key: string, run: () => Promise<T>): Promise<T> {
    if (!this.open) {
      this.open = true;
      this.burst++;
      queueMicrotask(() => {
        this.open = false;
      });
    }
    this.calls.push({ method, key, burst: this.burst });
    if (this.failNext === method) {
      this.failNext = undefined;
      return new Promise((_, reject) => setImmediate(() => reject(new Error(`store down (${method})`))));
    }
    const result = run();
    return new Promise((resolve) => setImmediate(() => resolve(result)));
  }

  /** The calls since `from`, grouped by burst, in order. */
  burstsSince(from: number): Call[][] {
    const out = new Map<number, Call[]>();
    for (const c of this.calls.slice(from)) out.set(c.burst, [...(out.get(c.burst) ?? []), c]);
    return [...out.values()];
  }

  get(key: string) {
    return this.call("get", key, () => this.inner.get(key));
  }
  set(key: string, value: string, options?: { ttlMs?: number }) {
    return this.call("set", key, () => this.inner.set(key, value, options));
  }
  setIfAbsent(key: string, value: string, options?: { ttlMs?: number }) {
    return this.call("setIfAbsent", key, () => this.inner.setIfAbsent(key, value, options));
  }
  delete(...keys: string[]) {
    return this.call("delete", keys.join(","), () => this.inner.delete(...keys));
  }
  expire(key: string, ttlMs: number) {
    return this.call("expire", key, () => this.inner.expire(key, ttlMs));
  }
  hashSet(key: string, fields: Record<string, string>) {
    return this.call("hashSet", key, () => this.inner.hashSet(key, fields));
  }
  hashSetIfAbsent(key: string, fields: Record<string, string>) {
    return this.call("hashSetIfAbsent", key, () => this.inner.hashSetIfAbsent(key, fields));
  }
  hashGetAll(key: string) {
    return this.call("hashGetAll", key, () => this.inner.hashGetAll(key));
  }
  hashGet(key: string, fields: string[]) {
    return this.call("hashGet", key, () => this.inner.hashGet(key, fields));
  }
  hashIncrement(key: string, field: string, by: number) {
    return this.call("hashIncrement", key, () => this.inner.hashIncrement(key, field, by));
  }
  listPush(key: string, values: string[]) {
    return this.call("listPush", key, () => this.inner.listPush(key, values));
  }
  listRange(key: string, start: number, stop: number) {
    return this.call("listRange", key, () => this.inner.listRange(key, start, stop));
  }
  listTrim(key: string, start: number, stop: number) {
    return this.call("listTrim", key, () => this.inner.listTrim(key, start, stop));
  }

  setAdd(key: string, members: string[]) {
    return this.call("setAdd", key, () => this.inner.setAdd(key, members));
  }
  setMembers(key: string) {
    return this.call("setMembers", key, () => this.inner.setMembers(key));
  }
  sortedAdd(key: string, entries: { score: number; member: string }[]) {
    return this.call("sortedAdd", key, () => this.inner.sortedAdd(key, entries));
  }
  sortedRange(key: string, options: { offset: number; limit: number; reverse?: boolean }) {
    return this.call("sortedRange", key, () => this.inner.sortedRange(key, options));
  }
  sortedRangeByScore(key: string, options: { min: number; max: number; offset: number; limit: number; reverse?: boolean }) {
    return this.call("sortedRangeByScore", key, () => this.inner.sortedRangeByScore(key, options));
  }
  sortedRemove(key: string, members: string[]) {
    return this.call("sortedRemove", key, () => this.inner.sortedRemove(key, members));
  }
  sortedCount(key: string) {
    return this.call("sortedCount", key, () => this.inner.sortedCount(key));
  }
  sortedRank(key: string, member: string) {
    return this.call("sortedRank", key, () => this.inner.sortedRank(key, member));
  }
  ping() {
    return this.call("ping", "", () => this.inner.ping());
  }
  close() {
    return this.inner.close();
  }
}

let counter = 0;
function action(taskId: string, over: Partial<AgentAction> = {}): AgentAction {
  counter++;
  const startTimeMs = T0 + counter;
  return toolCall({ taskId, traceId: TRACE, agent: { id: "billing-agent" }, startTimeMs, receivedAtMs: startTimeMs + 50, ...over });
}

const message: BusMessage = { topic: "", partition: 0, offset: "0", key: null, value: Buffer.alloc(0), headers: {}, timestampMs: 0 };

async function handle(stage: PathfinderStage, actions: AgentAction[]): Promise<Step[]> {
  const emits = await stage.handle(
    actions.map((value) => ({ message, value })),
    () => undefined,
  );
  return emits.map((e) => JSON.parse(String(e.message.value)) as Step);
}

function setup(options: Partial<PathfinderOptions> = {}) {
  const store = new CountingStore();
  const tasks = new TaskStore(store);
  const conflicts: string[] = [];
  const stage = pathfinderStage("", tasks, {
    latenessMs: 30_000,
    cachedTasks: 100,
    onConflict: (t) => conflicts.push(t),
    ...options,
  });
  /** Handles a batch and returns its steps and the store bursts it cost. */
  const run = async (actions: AgentAction[]) => {
    const from = store.calls.length;
    const steps = await handle(stage, actions);
    return { steps, bursts: store.burstsSince(from) };
  };
  return { store, tasks, stage, run, conflicts };
}

const LOAD_READS = ["get", "sortedRangeByScore", "hashGetAll", "setMembers", "setMembers", "hashGet", "get"];
/** Reads in a burst, but the one the save burst always makes: the scope registered for the task, which may change any time. */
const reads = (burst: Call[]) =>
  burst.filter((c) => ["get", "sortedRangeByScore", "hashGetAll", "setMembers"].includes(c.method) && !c.key.endsWith(":registered-scope"));

describe("pathfinder stage: store round trips per batch", () => {
  it("the counting store sees calls issued together as one burst and calls after an answer as another", async () => {
    const store = new CountingStore();
    await Promise.all([store.set("a", "1"), store.set("b", "2")]);
    await store.get("a");
    expect(store.burstsSince(0).map((b) => b.map((c) => `${c.method} ${c.key}`))).toEqual([["set a", "set b"], ["get a"]]);
  });

  it("the first batch of an unknown task costs two bursts: load, then save", async () => {
    const { run } = setup();
    const { steps, bursts } = await run([action("t1"), action("t1")]);
    expect(steps.map((s) => s.index)).toEqual([0, 1]);
    expect(bursts).toHaveLength(2);
    expect(bursts[0]?.map((c) => c.method)).toEqual(LOAD_READS);
    // the save burst writes and asks only for the write count, the steps to emit again and the registered scope
    const save = bursts[1] as Call[];
    expect(save.map((c) => c.method)).toEqual(expect.arrayContaining(["hashSet", "sortedAdd", "set", "hashIncrement", "hashGet"]));
    expect(reads(save)).toEqual([]);
  });

  it("a later batch of a cached task costs exactly one burst: its writes, with nothing read first", async () => {
    const { run } = setup();
    await run([action("t1")]);
    for (let i = 0; i < 3; i++) {
      const { steps, bursts } = await run([action("t1"), action("t1")]);
      expect(steps.map((s) => s.index)).toEqual([1 + 2 * i, 2 + 2 * i]);
      expect(bursts).toHaveLength(1);
      expect(reads(bursts[0] as Call[])).toEqual([]);
      expect(bursts[0]?.some((c) => c.method === "hashIncrement")).toBe(true);
    }
  });

  it("a batch that re-orders a cached task reads the steps to emit again in the same burst", async () => {
    const { run } = setup();
    const early = action("t1");
    const middle = action("t1");
    const last = action("t1");
    await run([middle, last]);
    const { steps, bursts } = await run([early]);
    expect(bursts).toHaveLength(1);
    expect(steps.map((s) => [s.id, s.index, s.reevaluated])).toEqual([
      [early.id, 0, undefined],
      [middle.id, 1, true],
      [last.id, 2, true],
    ]);
    const stepReads = (bursts[0] as Call[]).filter((c) => c.method === "hashGet" && c.key.endsWith(":steps"));
    expect(stepReads).toHaveLength(1);
  });

  it("several cached tasks in one batch cost one burst together", async () => {
    const { run } = setup();
    await run([action("t1")]);
    await run([action("t2")]);
    await run([action("t3")]);
    const { steps, bursts } = await run([action("t1"), action("t2"), action("t3"), action("t1")]);
    expect(steps).toHaveLength(4);
    expect(bursts).toHaveLength(1);
    expect(new Set(bursts[0]?.filter((c) => c.method === "hashIncrement").map((c) => c.key))).toEqual(
      new Set(["task:{t1}:writes", "task:{t2}:writes", "task:{t3}:writes"]),
    );
  });

  it("a batch of only redelivered spans of a cached task costs no store call, and emits the step again as it is", async () => {
    const { run } = setup();
    const a = action("t1");
    const first = await run([a]);
    const { steps, bursts } = await run([structuredClone(a)]);
    expect(steps).toEqual(first.steps);
    expect(bursts).toEqual([]);
  });

  it("a delegate's later batch, its lineage unchanged, still costs one burst (the parent's facts are read with the writes)", async () => {
    const { run } = setup();
    await run([action("parent")]);
    const first = await run([action("child", { parentTaskId: "parent" })]);
    expect(first.steps[0]?.lineage).toEqual([{ taskId: "parent", agentId: "billing-agent" }]);
    const { steps, bursts } = await run([action("child", { parentTaskId: "parent" })]);
    expect(steps.map((s) => [s.index, s.reevaluated, s.lineage])).toEqual([
      [1, undefined, [{ taskId: "parent", agentId: "billing-agent" }]],
    ]);
    expect(bursts).toHaveLength(1);
    expect(bursts[0]?.some((c) => c.method === "get" && c.key === "task:{parent}:facts")).toBe(true);
  });

  it("after a rebalance the memory is dropped: the next batch loads again", async () => {
    const { run, stage } = setup();
    await run([action("t1"), action("t1")]);
    expect(stage.cachedTasks).toBe(1);
    stage.onRebalance();
    expect(stage.cachedTasks).toBe(0);
    const { steps, bursts } = await run([action("t1")]);
    expect(bursts).toHaveLength(2);
    expect(bursts[0]?.map((c) => c.method)).toEqual(LOAD_READS);
    // the reloaded path goes on where it was
    expect(steps.map((s) => s.index)).toEqual([2]);
    expect(stage.cachedTasks).toBe(1);
    expect((await run([action("t1")])).bursts).toHaveLength(1);
  });

  it("keeps at most cachedTasks paths, dropping the least recently used", async () => {
    const { run, stage } = setup({ cachedTasks: 2 });
    await run([action("a")]);
    await run([action("b")]);
    expect(stage.cachedTasks).toBe(2);
    // a is used again: b is now the least recently used
    expect((await run([action("a")])).bursts).toHaveLength(1);
    await run([action("c")]);
    expect(stage.cachedTasks).toBe(2);
    expect((await run([action("a")])).bursts).toHaveLength(1);
    expect((await run([action("c")])).bursts).toHaveLength(1);
    const reloaded = await run([action("b")]);
    expect(reloaded.bursts).toHaveLength(2);
    expect(reloaded.steps.map((s) => s.index)).toEqual([1]);
    // many tasks in one batch: still bounded
    await run(Array.from({ length: 10 }, (_, i) => action(`many-${i}`)));
    expect(stage.cachedTasks).toBe(2);
  });

  it("another writer on a cached task shows as a conflict; the path is reloaded on the next batch", async () => {
    const { run, tasks, conflicts, stage } = setup();
    await run([action("t1")]);
    // a second instance (say, before a rebalance reached this one) writes the same task
    const other = await recordActions(tasks, [action("t1")]);
    expect(other.map((s) => s.index)).toEqual([1]);
    const stale = await run([action("t1")]);
    expect(conflicts).toEqual(["t1"]);
    expect(stale.bursts).toHaveLength(1);
    expect(stage.cachedTasks).toBe(0);
    const { steps, bursts } = await run([action("t1")]);
    expect(bursts).toHaveLength(2);
    expect(steps.map((s) => s.index)).toEqual([3]);
    expect(conflicts).toEqual(["t1"]);
    expect((await tasks.path("t1")).map((s) => s.index)).toEqual([0, 1, 2, 3]);
  });

  it("a batch whose save fails leaves nothing in memory: the retry loads the task again", async () => {
    const { run, store, stage } = setup();
    await run([action("t1")]);
    const retried = [action("t1")];
    store.failNext = "hashIncrement";
    await expect(run(retried)).rejects.toThrow(/store down/);
    expect(stage.cachedTasks).toBe(0);
    const { bursts } = await run(retried);
    expect(bursts[0]?.map((c) => c.method)).toEqual(LOAD_READS);
  });

  // A retry must emit what the failed attempt did not get onto the bus. The failed save had
  // already written the step (a pipeline can fail part-way: here the write count fails after
  // the step's hash, order and spans went in), so the retried batch finds the span recorded:
  // it is emitted again as it is. The same holds when producing to `agent.steps` failed and
  // the bus redelivers the batch.
  it("a batch retried after its save failed part-way still emits its steps", async () => {
    const { run, store } = setup();
    await run([action("t1")]);
    const retried = [action("t1")];
    store.failNext = "hashIncrement";
    await expect(run(retried)).rejects.toThrow(/store down/);
    const { steps } = await run(retried);
    expect(steps.map((s) => [s.id, s.index])).toEqual([[retried[0]?.id, 1]]);
  });
});
