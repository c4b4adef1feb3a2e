import { describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import { agentAction } from "../../test/support/actions.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { taskKey } from "../runtime/store/store.js";
import { Metrics } from "../runtime/telemetry.js";
import { recordActions } from "./pathfinder.js";
import { TaskRetention, taskOfKey } from "./task-retention.js";
import { TaskStore } from "./task-store.js";

const T0 = 1_760_000_000_000;
const span = (n: number) => n.toString(16).padStart(16, "0");
const trace = (n: number) => n.toString(16).padStart(32, "0");

/** An action of `taskId` in trace `t`, as ingest emits it. */
const action = (taskId: string, n: number, t: number, over: Partial<AgentAction> = {}): AgentAction =>
  agentAction({
    taskId,
    traceId: trace(t),
    spanId: span(n),
    agent: { id: "billing-agent" },
    credentialId: `cred-${taskId}`,
    startTimeMs: T0 + n,
    ...over,
  });

function setup(maxTasks: number) {
  const inner = new MemoryStore();
  const metrics = new Metrics(false);
  const store = new TaskRetention(inner, { maxTasks, metrics });
  const tasks = new TaskStore(store);
  // every key the in-memory store holds (white box: what is left of an evicted task)
  const keys = () => [...(inner as unknown as { entries: Map<string, unknown> }).entries.keys()];
  const gauge = async () => (await metrics.storeTasks.get()).values[0]?.value;
  const evicted = async () => (await metrics.storeEvictedTasks.get()).values[0]?.value ?? 0;
  return { inner, store, tasks, keys, gauge, evicted };
}

describe("TaskRetention: a bound on the tasks the embedded store keeps", () => {
  it("taskOfKey reads the task of a task key, and only of one", () => {
    expect(taskOfKey(taskKey("t-1", "facts"))).toBe("t-1");
    expect(taskOfKey(taskKey("a}:b", "once:lifecycle:idle:5"))).toBe("a}:b");
    expect(taskOfKey("tasks:all")).toBeUndefined();
    expect(taskOfKey("trace:{abc}:spans")).toBeUndefined();
  });

  it("evicts the least recently active task past the bound: all of its keys, its index entries, its trace index and credential binding", async () => {
    const { store, tasks, keys, gauge, evicted } = setup(2);
    await recordActions(tasks, [action("task-a", 1, 1), action("task-a", 2, 1)]);
    await recordActions(tasks, [action("task-b", 3, 2)]);
    await tasks.markOnce("task-b", "violation");
    await recordActions(tasks, [action("task-a", 4, 1)]); // a is active again: b is now the least recent
    expect(store.taskIds()).toEqual(["task-b", "task-a"]);
    expect(keys().filter((k) => k.includes("task-b")).length).toBeGreaterThan(5);

    await recordActions(tasks, [action("task-c", 5, 3)]);
    await store.settled();
    expect(store.taskIds()).toEqual(["task-a", "task-c"]);
    // nothing of task-b is left: its own keys, its trace's span index, its credential's binding
    expect(keys().filter((k) => k.includes("task-b") || k.includes(trace(2)))).toEqual([]);
    expect(await tasks.summary("task-b")).toBeUndefined();
    expect(await tasks.bindings.get("cred-task-b")).toBeUndefined();
    expect((await tasks.list({ offset: 0, limit: 10 })).taskIds.sort()).toEqual(["task-a", "task-c"]);
    // the others are whole
    expect((await tasks.path("task-a")).map((s) => s.spanId)).toEqual([span(1), span(2), span(4)]);
    expect((await tasks.bindings.get("cred-task-a"))?.taskId).toBe("task-a");
    expect(await tasks.summary("task-c")).toMatchObject({ steps: 1, credentials: ["cred-task-c"] });
    expect(await gauge()).toBe(2);
    expect(await evicted()).toBe(1);
  });

  it("keeps a trace's span index while another task it holds is kept", async () => {
    const { store, tasks, keys } = setup(2);
    // two tasks with spans in one trace (a task handing work to another within its trace)
    await recordActions(tasks, [action("task-a", 1, 7)]);
    await recordActions(tasks, [action("task-b", 2, 7)]);
    await recordActions(tasks, [action("task-c", 3, 8)]); // a goes
    await store.settled();
    expect(await store.hashGetAll(`trace:{${trace(7)}}:spans`)).toEqual({ [span(1)]: "task-a", [span(2)]: "task-b" });
    await recordActions(tasks, [action("task-d", 4, 9)]); // b goes: nobody holds trace 7 any more
    await store.settled();
    expect(keys().filter((k) => k.includes(trace(7)))).toEqual([]);
  });

  it("stays within its bound under a flood of one-span tasks (what filled the store)", async () => {
    const { store, tasks, keys, evicted } = setup(100);
    for (let i = 0; i < 2_000; i += 50) {
      await recordActions(
        tasks,
        Array.from({ length: 50 }, (_, j) => action(`flood-${i + j}`, i + j + 1, i + j + 1)),
      );
    }
    await store.settled();
    expect(store.tasks).toBe(100);
    expect(await evicted()).toBe(1_900);
    const taskIds = new Set(keys().flatMap((k) => taskOfKey(k) ?? []));
    expect(taskIds.size).toBeLessThanOrEqual(100);
    // per task: its own keys, a trace index, a binding; plus the few indexes
    expect(keys().length).toBeLessThan(100 * 12 + 10);
    expect(await store.sortedCount("tasks:all")).toBe(100);
    // the most recent are the ones kept
    expect(taskIds.has("flood-1999")).toBe(true);
    expect(taskIds.has("flood-0")).toBe(false);
  });

  it("reads count as no activity: a task only looked at is still the first to go", async () => {
    const { store, tasks } = setup(2);
    await recordActions(tasks, [action("task-a", 1, 1)]);
    await recordActions(tasks, [action("task-b", 2, 2)]);
    await tasks.summary("task-a");
    await tasks.path("task-a");
    await recordActions(tasks, [action("task-c", 3, 3)]);
    expect(store.taskIds()).toEqual(["task-b", "task-c"]);
  });
});

describe("TaskRetention: a bound on the bytes the held tasks' state takes", () => {
  it("evicts the least recently active tasks when a long task grows past the budget, never the task being written", async () => {
    const inner = new MemoryStore();
    const store = new TaskRetention(inner, { maxTasks: 1_000, maxBytes: 60_000 });
    const tasks = new TaskStore(store);
    for (let i = 0; i < 5; i++) await recordActions(tasks, [action(`short-${i}`, 100 + i, 100 + i)]);
    expect(store.tasks).toBe(5);
    const long = (n: number) => action("long", 1_000 + n, 42, { attributes: { note: "x".repeat(500) } });
    for (let n = 0; n < 200; n += 10)
      await recordActions(
        tasks,
        Array.from({ length: 10 }, (_, j) => long(n + j)),
      );
    await store.settled();
    // the long task alone is past the budget: everything else went, it stays (it is the one written)
    expect(store.taskIds()).toEqual(["long"]);
    expect((await tasks.path("long")).length).toBe(200);
    expect(await tasks.summary("short-0")).toBeUndefined();
    // what is counted follows what was written, and is given back on eviction
    expect(store.heldBytes).toBeGreaterThan(60_000);
    await recordActions(tasks, [action("next", 5_000, 77)]);
    await store.settled();
    expect(store.taskIds()).toEqual(["next"]);
    expect(store.heldBytes).toBeLessThan(5_000);
  });
});
