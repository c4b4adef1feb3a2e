import { describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import type { Step } from "../../schemas/step.js";
import { agentAction, toolCall } from "../../test/support/actions.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { pathfinderStage, recordActions } from "./pathfinder.js";
import { TaskStore } from "./task-store.js";

const T0 = 1_760_000_000_000;

/** An action of task `task-1` as ingest emits it. */
const action = (spanId: string, over: Partial<AgentAction> = {}): AgentAction =>
  agentAction({
    spanId,
    taskId: "task-1",
    agent: { id: "billing-agent", name: "Billing", spiffeId: "spiffe://acme.example/agents/billing" },
    startTimeMs: T0,
    endTimeMs: T0 + 10,
    receivedAtMs: T0 + 100,
    ...over,
  });

const span = (n: number) => n.toString(16).padStart(16, "0");

function fresh() {
  const store = new MemoryStore();
  return { store, tasks: new TaskStore(store) };
}

describe("pathfinder: recording a task's actions", () => {
  it("orders a task's steps by start time, whatever the arrival order, and numbers them", async () => {
    const { tasks } = fresh();
    const steps = await recordActions(tasks, [
      action(span(3), { startTimeMs: T0 + 30 }),
      action(span(1), { startTimeMs: T0 + 10 }),
      action(span(2), { startTimeMs: T0 + 20 }),
    ]);
    expect(steps.map((s) => [s.spanId, s.index])).toEqual([
      [span(1), 0],
      [span(2), 1],
      [span(3), 2],
    ]);
    const path = await tasks.path("task-1");
    expect(path.map((s) => [s.spanId, s.index])).toEqual([
      [span(1), 0],
      [span(2), 1],
      [span(3), 2],
    ]);
    // the stored step keeps the action's content
    expect(path[0]).toMatchObject({ taskId: "task-1", startTimeMs: T0 + 10, agent: { id: "billing-agent" } });
  });

  it("places a later batch's earlier step before the steps already recorded", async () => {
    const { tasks } = fresh();
    await recordActions(tasks, [action(span(2), { startTimeMs: T0 + 20 })]);
    const [late] = await recordActions(tasks, [action(span(1), { startTimeMs: T0 + 10 })]);
    expect(late?.index).toBe(0);
    expect((await tasks.path("task-1")).map((s) => s.spanId)).toEqual([span(1), span(2)]);
  });

  it("breaks equal start times by causality: a parent comes before its child even when the child's id sorts first", async () => {
    const { tasks } = fresh();
    const root = action("ffffffffffffff01", { startTimeMs: T0, name: "invoke_agent billing" });
    const child = action("0000000000000002", { startTimeMs: T0, parentSpanId: root.spanId, name: "execute_tool invoices.read" });
    const grandchild = action("0000000000000001", { startTimeMs: T0, parentSpanId: child.spanId, name: "http GET" });
    expect(child.id < root.id).toBe(true);
    const steps = await recordActions(tasks, [grandchild, child, root]);
    expect(steps.map((s) => s.name)).toEqual(["invoke_agent billing", "execute_tool invoices.read", "http GET"]);
    expect(steps.map((s) => s.index)).toEqual([0, 1, 2]);
    expect((await tasks.path("task-1")).map((s) => s.name)).toEqual(["invoke_agent billing", "execute_tool invoices.read", "http GET"]);
  });

  it("keeps causal order when the parent was recorded in an earlier batch", async () => {
    const { tasks } = fresh();
    const root = action("ffffffffffffff01", { startTimeMs: T0 });
    const child = action("ffffffffffffff02", { startTimeMs: T0, parentSpanId: root.spanId });
    const grandchild = action("0000000000000001", { startTimeMs: T0, parentSpanId: child.spanId });
    await recordActions(tasks, [root, child]);
    const [g] = await recordActions(tasks, [grandchild]);
    expect(g?.index).toBe(2);
    expect((await tasks.path("task-1")).map((s) => s.spanId)).toEqual([root.spanId, child.spanId, grandchild.spanId]);
  });

  it("a later start still comes after an earlier one, however deep it is", async () => {
    const { tasks } = fresh();
    let parent: string | undefined;
    const chain: AgentAction[] = [];
    for (let i = 1; i <= 70; i++) {
      const a = action(span(0x100 + i), { startTimeMs: T0, ...(parent ? { parentSpanId: parent } : {}) });
      chain.push(a);
      parent = a.spanId;
    }
    const later = action(span(1), { startTimeMs: T0 + 1 });
    const steps = await recordActions(tasks, [later, ...chain.reverse()]);
    expect(steps.at(-1)?.spanId).toBe(later.spanId);
    expect(steps[0]?.spanId).toBe(span(0x101));
  });

  it("folds a span seen twice (in one batch or across batches) into one step", async () => {
    const { tasks } = fresh();
    const a = action(span(1));
    const b = action(span(2), { startTimeMs: T0 + 5 });
    const first = await recordActions(tasks, [a, b, structuredClone(a)]);
    expect(first.map((s) => [s.spanId, s.index])).toEqual([
      [span(1), 0],
      [span(2), 1],
    ]);
    const again = await recordActions(tasks, [{ ...a, receivedAtMs: T0 + 999, name: "changed" }]);
    // a redelivered span is not a new step, but it is emitted again, as it was (same index):
    // the first emission may not have reached the bus
    expect(again.map((s) => [s.spanId, s.index, s.reevaluated])).toEqual([[span(1), 0, undefined]]);
    const path = await tasks.path("task-1");
    expect(path).toHaveLength(2);
    // the first recording wins
    expect(path[0]?.name).toBe(`step ${span(1)}`);
    expect((await tasks.summary("task-1"))?.steps).toBe(2);
  });

  it("binds the credentials the task's actions used", async () => {
    const { tasks } = fresh();
    await recordActions(tasks, [
      action(span(1), { credentialId: "vault:lease/b" }),
      action(span(2), { credentialId: "vault:lease/a", startTimeMs: T0 + 1 }),
      action(span(3), { credentialId: "vault:lease/b", startTimeMs: T0 + 2 }),
      action(span(4), { startTimeMs: T0 + 3 }),
    ]);
    await recordActions(tasks, [action(span(5), { credentialId: "token:c", startTimeMs: T0 + 4 })]);
    expect(await tasks.credentials("task-1")).toEqual(["token:c", "vault:lease/a", "vault:lease/b"]);
    expect(await tasks.credentials("task-2")).toEqual([]);
  });

  it("keeps tasks apart", async () => {
    const { tasks } = fresh();
    await recordActions(tasks, [action(span(1))]);
    await recordActions(tasks, [action(span(2), { taskId: "task-2", credentialId: "c2" })]);
    expect((await tasks.path("task-1")).map((s) => s.spanId)).toEqual([span(1)]);
    expect((await tasks.path("task-2")).map((s) => s.spanId)).toEqual([span(2)]);
    expect(await tasks.credentials("task-1")).toEqual([]);
  });
});

describe("TaskStore: summary, declared scope, list, revocation", () => {
  it("summarises a task: first values win for identity, intent and scope; last seen follows new actions", async () => {
    const { tasks } = fresh();
    await recordActions(tasks, [
      action(span(1), {
        intent: "send the March invoice reminders",
        declaredScope: { tools: ["invoices.read"], dataCeiling: "internal" },
        credentialId: "lease-1",
        receivedAtMs: T0 + 100,
      }),
    ]);
    await recordActions(tasks, [
      action(span(2), {
        startTimeMs: T0 + 50,
        intent: "something else",
        agent: { id: "impostor" },
        declaredScope: { tools: ["shell.exec"] },
        receivedAtMs: T0 + 200,
      }),
    ]);
    expect(await tasks.summary("task-1", T0 + 300)).toEqual({
      taskId: "task-1",
      status: "active",
      agentId: "billing-agent",
      agentName: "Billing",
      spiffeId: "spiffe://acme.example/agents/billing",
      intent: "send the March invoice reminders",
      scope: { tools: ["invoices.read"], dataCeiling: "internal" },
      firstSeenMs: T0 + 100,
      lastSeenMs: T0 + 200,
      startMs: T0,
      endMs: T0 + 10,
      durationMs: 10,
      steps: 2,
      agents: ["billing-agent", "impostor"],
      tools: [],
      dataClassifications: [],
      environments: [],
      destinations: [],
      credentials: ["lease-1"],
      children: [],
    });
    // an idle timeout after the last span, the task is idle
    expect((await tasks.summary("task-1", T0 + 200 + tasks.idleMs + 1))?.status).toBe("idle");
  });

  it("has no summary and no path for an unknown task", async () => {
    const { tasks } = fresh();
    expect(await tasks.summary("nope")).toBeUndefined();
    expect(await tasks.path("nope")).toEqual([]);
  });

  it("reports a scope declaration that could not be used", async () => {
    const { tasks } = fresh();
    const [step] = await recordActions(tasks, [action(span(1), { declaredScopeError: "agent.task.scope: not JSON" })]);
    expect(step?.context).toEqual({ declaredScopeError: "agent.task.scope: not JSON" });
    expect((await tasks.summary("task-1"))?.scopeError).toBe("agent.task.scope: not JSON");
  });

  it("lists tasks most recently active first, with paging and a count", async () => {
    const { tasks } = fresh();
    await recordActions(tasks, [action(span(1), { taskId: "a", receivedAtMs: T0 + 1 })]);
    await recordActions(tasks, [action(span(2), { taskId: "b", receivedAtMs: T0 + 3 })]);
    await recordActions(tasks, [action(span(3), { taskId: "c", receivedAtMs: T0 + 2 })]);
    expect(await tasks.list({ offset: 0, limit: 10 })).toEqual({ taskIds: ["b", "c", "a"], total: 3 });
    expect(await tasks.list({ offset: 1, limit: 1 })).toEqual({ taskIds: ["c"], total: 3 });
    await recordActions(tasks, [action(span(4), { taskId: "a", receivedAtMs: T0 + 10 })]);
    expect(await tasks.list({ offset: 0, limit: 10 })).toEqual({ taskIds: ["a", "b", "c"], total: 3 });
  });

  it("marks a task revoked; the first mark wins", async () => {
    const { tasks } = fresh();
    await recordActions(tasks, [action(span(1))]);
    expect(await tasks.revoked("task-1")).toBeUndefined();
    expect(await tasks.markRevoked("task-1", { atMs: T0 + 500, findingId: "f1" })).toEqual({ atMs: T0 + 500, findingId: "f1" });
    expect(await tasks.markRevoked("task-1", { atMs: T0 + 900, findingId: "f2" })).toEqual({ atMs: T0 + 500, findingId: "f1" });
    expect(await tasks.revoked("task-1")).toEqual({ atMs: T0 + 500, findingId: "f1" });
    const summary = await tasks.summary("task-1");
    expect(summary?.status).toBe("revoked");
    expect(summary?.revokedAtMs).toBe(T0 + 500);
    expect(await tasks.revoked("task-2")).toBeUndefined();
  });

  it("state expires after the task's time-to-live", async () => {
    const store = new MemoryStore();
    const tasks = new TaskStore(store, { ttlMs: 30 });
    await recordActions(tasks, [action(span(1), { credentialId: "c" })]);
    await tasks.markRevoked("task-1", { atMs: T0, findingId: "f" });
    expect(await tasks.summary("task-1")).toBeDefined();
    await new Promise((r) => setTimeout(r, 60));
    expect(await tasks.summary("task-1")).toBeUndefined();
    expect(await tasks.path("task-1")).toEqual([]);
    expect(await tasks.credentials("task-1")).toEqual([]);
    expect(await tasks.revoked("task-1")).toBeUndefined();
  });
});

describe("pathfinder: the paths it keeps in memory", () => {
  const T = 1_770_000_000_000;
  const handle = async (stage: ReturnType<typeof pathfinderStage>, actions: AgentAction[]) => {
    const message = { topic: "", partition: 0, offset: "0", key: null, value: Buffer.alloc(0), headers: {}, timestampMs: 0 };
    const emits = await stage.handle(
      actions.map((value) => ({ message, value })),
      () => undefined,
    );
    return emits.map((e) => JSON.parse(String(e.message.value)) as Step);
  };

  it("keeps an open task's path, lets a completed one's go, and reloads it for a span that comes after its end", async () => {
    const stage = pathfinderStage("", new TaskStore(new MemoryStore()));
    const root = agentAction({ taskId: "t-kept", operation: "invoke_agent", name: "invoke_agent a", agent: { id: "a" }, startTimeMs: T });
    const call = (at: number) =>
      toolCall({ taskId: "t-kept", agent: { id: "a" }, parentSpanId: root.spanId, startTimeMs: at, endTimeMs: at + 1 });

    await handle(stage, [call(T + 10)]);
    expect(stage.cachedTasks).toBe(1);
    // OTel exports the root last: its end completes the task
    const [first] = await handle(stage, [{ ...root, endTimeMs: T + 50 }]);
    expect(first?.index).toBe(0);
    expect(stage.cachedTasks).toBe(0);
    // a straggler after the end: placed in the path the store holds, after the others
    const late = await handle(stage, [call(T + 40)]);
    expect(late.map((s) => s.index)).toEqual([2]);
    expect(late[0]?.before?.agentSteps).toBe(2);
    expect(stage.cachedTasks).toBe(0);
  });
});
