import { afterEach, describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import { Finding } from "../../schemas/finding.js";
import { TaskEvent } from "../../schemas/lifecycle.js";
import { AgentProfile } from "../../schemas/policy.js";
import { agentAction, toolCall } from "../../test/support/actions.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import { claimKey, RevocationLedger } from "../revoker/ledger.js";
import type { BusMessage, OutgoingMessage } from "../runtime/bus/bus.js";
import { createLogger } from "../runtime/logging.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { detectorStage } from "./detector.js";
import { type IdleWatch, watchIdleTasks } from "./idle.js";
import { eventId, zoneOf } from "./lifecycle.js";
import type { Policy } from "./policy.js";
import { SILENCE_MARK, watchSilence } from "./silence.js";

const T0 = 1_760_000_000_000;
const TRACE = "7bf92f3577b34da6a3ce929d0e0e4731";

const profile = (id: string, agentId: string, lifecycle?: unknown, more: Record<string, unknown> = {}) =>
  AgentProfile.parse({
    id,
    match: { agentIds: [agentId] },
    tools: [{ name: "crm.read" }, { name: "crm.write" }],
    environments: ["sandbox", "dev", "prod"],
    ...(lifecycle ? { lifecycle } : {}),
    ...more,
  });

const policy: Policy = {
  version: "lifecycle-test",
  profiles: [
    profile("defaults", "agent-a"),
    profile("notifies", "agent-n", { onTaskEnd: "notify", onScopeChange: "notify", onEnvironmentChange: "notify", onReuse: "notify" }),
    profile("ignores", "agent-i", { onTaskEnd: "ignore", onScopeChange: "ignore", onEnvironmentChange: "ignore", onReuse: "ignore" }),
    profile("graceful", "agent-g", { graceMs: 30_000, trustZones: { nonprod: ["sandbox", "dev*"] } }),
    profile("silent-watch", "agent-s", undefined, { telemetry: { silenceMs: 60_000 } }),
    profile("silent-ok", "agent-q", { onSilence: "ignore" }, { telemetry: { silenceMs: 60_000 } }),
    profile("suspends", "agent-p", { onSilence: "suspend" }, { telemetry: { silenceMs: 60_000 } }),
  ],
  rules: new Map(),
  redaction: { attributes: [], argumentKeys: [] },
  files: [],
};

const call = (taskId: string, agentId: string, at: number, over: Partial<AgentAction> = {}): AgentAction =>
  toolCall({ taskId, traceId: TRACE, agent: { id: agentId }, tool: { name: "crm.read" }, startTimeMs: at, ...over });

/** The task's root span: an agent invocation with no parent (its end completes the task). */
const root = (taskId: string, agentId: string, at: number, over: Partial<AgentAction> = {}): AgentAction =>
  agentAction({
    taskId,
    traceId: TRACE,
    agent: { id: agentId },
    operation: "invoke_agent",
    name: `invoke_agent ${agentId}`,
    startTimeMs: at,
    ...over,
  });

const message: BusMessage = { topic: "", partition: 0, offset: "0", key: null, value: Buffer.alloc(0), headers: {}, timestampMs: 0 };

/** Spans through the real pathfinder, their steps through the detector: what it publishes where. */
async function detect(tasks: TaskStore, actions: AgentAction[], ledger?: RevocationLedger) {
  const steps = await recordActions(tasks, actions);
  const stage = detectorStage("", { policy: () => policy, tasks, ...(ledger ? { ledger } : {}), now: () => T0 + 3_600_000 });
  const emits = await stage.handle(
    steps.map((value) => ({ message, value })),
    () => undefined,
  );
  const events = emits.filter((e) => e.topic === "agent.lifecycle").map((e) => TaskEvent.parse(JSON.parse(String(e.message.value))));
  const findings = emits.filter((e) => e.topic === "agent.findings").map((e) => Finding.parse(JSON.parse(String(e.message.value))));
  return { events, findings };
}

describe("task lifecycle from steps", () => {
  it("reports a task's completion once its root span arrives, timed at that span's arrival", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const running = await detect(tasks, [call("t-done", "agent-a", T0)]);
    expect(running.events).toEqual([]);
    const done = await detect(tasks, [root("t-done", "agent-a", T0 - 5, { receivedAtMs: T0 + 900 })]);
    expect(done.events).toEqual([
      expect.objectContaining({
        id: eventId("task_completed", "t-done"),
        taskId: "t-done",
        agentId: "agent-a",
        profileId: "defaults",
        trigger: "task_completed",
        atMs: T0 + 900,
      }),
    ]);
    expect(done.events[0]?.dueAtMs).toBeUndefined();
    // a late span after completion reports it again with the same id (idempotent downstream)
    const late = await detect(tasks, [call("t-done", "agent-a", T0 + 10)]);
    expect(late.events.map((e) => e.id)).toEqual([eventId("task_completed", "t-done")]);
  });

  it("holds a completion for the profile's grace period, and says nothing when the profile notifies or ignores task ends", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const graceful = await detect(tasks, [call("t-g", "agent-g", T0), root("t-g", "agent-g", T0 - 1, { receivedAtMs: T0 + 50 })]);
    expect(graceful.events).toEqual([expect.objectContaining({ trigger: "task_completed", atMs: T0 + 50, dueAtMs: T0 + 50 + 30_000 })]);
    for (const agent of ["agent-n", "agent-i"]) {
      const quiet = await detect(tasks, [call(`t-${agent}`, agent, T0), root(`t-${agent}`, agent, T0 - 1)]);
      expect(quiet).toEqual({ events: [], findings: [] });
    }
  });

  it("reports a scope the registry put in force mid-task once, from the scope before to the one after", async () => {
    const tasks = new TaskStore(new MemoryStore(), { registryCheckMs: 0 });
    await tasks.registerScope("t-reg", { tools: ["crm.read", "crm.write"] }, T0);
    const first = await detect(tasks, [call("t-reg", "agent-a", T0)]);
    // registered before the task began: its scope from the start, no change
    expect(first.events).toEqual([]);
    await tasks.registerScope("t-reg", { tools: ["crm.read"] }, T0 + 1_000);
    const after = await detect(tasks, [call("t-reg", "agent-a", T0 + 2_000)]);
    // every step is looked at again under the new scope; the change is one event and one finding
    const changes = after.events.filter((e) => e.trigger === "scope_changed");
    expect(new Set(changes.map((e) => e.id)).size).toBe(1);
    expect(changes[0]).toMatchObject({
      atMs: T0 + 1_000,
      from: { tools: ["crm.read", "crm.write"] },
      to: { tools: ["crm.read"] },
    });
    const findings = after.findings.filter((f) => f.ruleId === "task.scope_changed");
    expect(new Set(findings.map((f) => f.id)).size).toBe(1);
    expect(findings[0]).toMatchObject({ kind: "context_change", mode: "alert", severity: "medium" });
    expect(changes[0]?.findingId).toBe(findings[0]?.id);
  });

  it("reports a span declaring another scope or objective than its task's, not the same scope written in another order", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const declared = { tools: ["crm.read", "crm.write"], egress: ["api.example.com"] };
    await detect(tasks, [call("t-decl", "agent-a", T0, { declaredScope: declared, intent: "Update the customer's address" })]);
    const same = await detect(tasks, [
      call("t-decl", "agent-a", T0 + 10, { declaredScope: { egress: ["API.example.com"], tools: ["crm.write", "crm.read"] } }),
    ]);
    expect(same.events).toEqual([]);
    const wider = await detect(tasks, [
      call("t-decl", "agent-a", T0 + 20, { declaredScope: { tools: ["crm.read", "crm.write", "shell.exec"] } }),
    ]);
    expect(wider.events).toEqual([
      expect.objectContaining({ trigger: "scope_changed", to: { tools: ["crm.read", "crm.write", "shell.exec"] } }),
    ]);
    const objective = await detect(tasks, [call("t-decl", "agent-a", T0 + 30, { intent: "Export every customer" })]);
    expect(objective.events).toEqual([
      expect.objectContaining({ trigger: "scope_changed", from: "Update the customer's address", to: "Export every customer" }),
    ]);
    expect(objective.findings.map((f) => f.ruleId)).toEqual(["task.scope_changed"]);
  });

  it("reports a task reaching another environment, unless the profile's trust zones put both in one zone", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const moved = await detect(tasks, [
      call("t-env", "agent-a", T0, { environment: "sandbox" }),
      call("t-env", "agent-a", T0 + 10, { environment: "prod", receivedAtMs: T0 + 500 }),
    ]);
    expect(moved.events).toEqual([
      expect.objectContaining({
        trigger: "environment_changed",
        atMs: T0 + 500,
        from: { environment: "sandbox", zone: "sandbox" },
        to: { environment: "prod", zone: "prod" },
      }),
    ]);
    expect(moved.findings).toEqual([expect.objectContaining({ ruleId: "task.environment_changed", kind: "context_change" })]);
    const zoned = await detect(tasks, [
      call("t-zone", "agent-g", T0, { environment: "sandbox" }),
      call("t-zone", "agent-g", T0 + 10, { environment: "dev-eu" }),
    ]);
    expect(zoned.events).toEqual([]);
    const leaving = await detect(tasks, [call("t-zone", "agent-g", T0 + 20, { environment: "prod" })]);
    expect(leaving.events).toEqual([
      expect.objectContaining({ trigger: "environment_changed", from: { environment: "sandbox", zone: "nonprod" } }),
    ]);
    expect(zoneOf("dev-us", { nonprod: ["sandbox", "dev*"] })).toBe("nonprod");
    expect(zoneOf("staging", { nonprod: ["sandbox", "dev*"] })).toBe("staging");
  });

  it("catches a credential used on a task it is not bound to, a delegate's use of its parent's included, and not the owner's own use", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const own = await detect(tasks, [call("t-owner", "agent-a", T0, { credentialId: "vault:lease:db/creds/a/1" })]);
    expect(own).toEqual({ events: [], findings: [] });
    expect((await tasks.bindings.get("vault:lease:db/creds/a/1"))?.taskId).toBe("t-owner");
    const other = await detect(tasks, [call("t-other", "agent-a", T0 + 10, { credentialId: "vault:lease:db/creds/a/1" })]);
    expect(other.findings).toEqual([
      expect.objectContaining({ taskId: "t-other", ruleId: "credential.reuse", kind: "credential_reuse", severity: "high" }),
    ]);
    expect(other.events).toEqual([
      expect.objectContaining({
        taskId: "t-other",
        trigger: "credential_reuse",
        credentialId: "vault:lease:db/creds/a/1",
        ownerTaskId: "t-owner",
        findingId: other.findings[0]?.id,
      }),
    ]);
    // the binding does not move: the owner's later use is still its own
    expect((await detect(tasks, [call("t-owner", "agent-a", T0 + 20, { credentialId: "vault:lease:db/creds/a/1" })])).events).toEqual([]);

    // a delegate: its own credential is its own; its parent's is not inherited
    await detect(tasks, [call("t-parent", "agent-a", T0, { credentialId: "cred-parent" })]);
    const delegate = await detect(tasks, [
      call("t-child", "agent-a", T0 + 30, { parentTaskId: "t-parent", credentialId: "cred-child" }),
      call("t-child", "agent-a", T0 + 40, { parentTaskId: "t-parent", credentialId: "cred-parent" }),
    ]);
    expect(delegate.events.map((e) => [e.trigger, e.credentialId, e.ownerTaskId])).toEqual([
      ["credential_reuse", "cred-parent", "t-parent"],
    ]);
    expect((await tasks.bindings.get("cred-child"))?.taskId).toBe("t-child");
    // a profile that only notifies: the finding, no revocation; one that ignores: neither
    await detect(tasks, [call("t-n1", "agent-n", T0, { credentialId: "cred-n" })]);
    const notified = await detect(tasks, [call("t-n2", "agent-n", T0 + 1, { credentialId: "cred-n" })]);
    expect([notified.events.length, notified.findings.map((f) => f.ruleId)]).toEqual([0, ["credential.reuse"]]);
    // the owner's profile decides: a credential of a notify-on-reuse agent's task, reused by a revoking agent
    await detect(tasks, [call("t-n3", "agent-n", T0, { credentialId: "cred-n3" })]);
    const byOther = await detect(tasks, [call("t-a3", "agent-a", T0 + 1, { credentialId: "cred-n3" })]);
    expect([byOther.events.length, byOther.findings.map((f) => f.taskId)]).toEqual([0, ["t-a3"]]);
    await detect(tasks, [call("t-a4", "agent-a", T0, { credentialId: "cred-a4" })]);
    const byNotifier = await detect(tasks, [call("t-n4", "agent-n", T0 + 1, { credentialId: "cred-a4" })]);
    expect(byNotifier.events.map((e) => [e.trigger, e.profileId])).toEqual([["credential_reuse", "defaults"]]);
    await detect(tasks, [call("t-i1", "agent-i", T0, { credentialId: "cred-i" })]);
    expect(await detect(tasks, [call("t-i2", "agent-i", T0 + 1, { credentialId: "cred-i" })])).toEqual({ events: [], findings: [] });
  });
});

describe("a credential used after its revocation", () => {
  it("is a finding when a step begins after the credential was revoked, whatever revoked it; not for a step begun before", async () => {
    const store = new MemoryStore();
    const tasks = new TaskStore(store);
    const ledger = new RevocationLedger(store);
    await detect(tasks, [call("t-used", "agent-a", T0, { credentialId: "cred-ended" })], ledger);
    // its task ended and the credential was revoked at T0 + 1,000
    await store.set(claimKey("cred-ended"), JSON.stringify({ state: "done", revocationId: "r-ended" }));
    await ledger.record({
      id: "r-ended",
      taskId: "t-used",
      credentialId: "cred-ended",
      credentialStore: "webhook",
      findingId: "e-1",
      trigger: "task_completed",
      decidedBy: "lifecycle:defaults",
      status: "revoked",
      detail: "HTTP 200",
      attempts: 1,
      requestedAtMs: T0 + 990,
      completedAtMs: T0 + 1_000,
    });
    // a late span of the task that began before the revocation: nothing
    const late = await detect(tasks, [call("t-used", "agent-a", T0 + 500, { credentialId: "cred-ended" })], ledger);
    expect(late.findings.filter((f) => f.ruleId === "credential.post_revocation")).toEqual([]);
    const after = await detect(tasks, [call("t-used", "agent-a", T0 + 2_000, { credentialId: "cred-ended" })], ledger);
    expect(after.findings.filter((f) => f.ruleId === "credential.post_revocation")).toEqual([
      expect.objectContaining({
        taskId: "t-used",
        kind: "post_revocation",
        severity: "high",
        evidence: {
          observed: { credentialId: "cred-ended", stepStartMs: T0 + 2_000 },
          expected: { revokedAtMs: T0 + 1_000, trigger: "task_completed" },
        },
      }),
    ]);
    // a task revoked for drift says so once (task.post_revocation), not twice
    await tasks.markRevoked("t-used", { atMs: T0 + 1_500, findingId: "f-drift" });
    const marked = await detect(tasks, [call("t-used", "agent-a", T0 + 3_000, { credentialId: "cred-ended" })], ledger);
    expect(marked.findings.map((f) => f.ruleId)).toContain("task.post_revocation");
    expect(marked.findings.map((f) => f.ruleId)).not.toContain("credential.post_revocation");
  });
});

describe("tasks that end without completing", () => {
  let watch: IdleWatch | undefined;
  afterEach(() => watch?.stop());
  const IDLE_MS = 300_000;

  function setup(store = new MemoryStore()) {
    const tasks = new TaskStore(store, { idleMs: IDLE_MS });
    const published: OutgoingMessage[] = [];
    let clock = T0;
    watch = watchIdleTasks({
      tasks,
      store,
      policy: () => policy,
      bus: { publish: async (_topic, messages) => void published.push(...messages) },
      lifecycleTopic: "agent.lifecycle",
      idleMs: IDLE_MS,
      intervalMs: 3_600_000,
      logger: createLogger("silent"),
      now: () => clock,
    });
    const sweep = async (atMs: number) => {
      clock = atMs;
      return (watch as IdleWatch).sweep();
    };
    return { tasks, store, published, sweep };
  }

  it("reports an open task idle past the timeout once, timed at its idle deadline; never a completed one", async () => {
    const { tasks, sweep, published } = setup();
    await recordActions(tasks, [call("t-idle", "agent-a", T0, { receivedAtMs: T0 })]);
    await recordActions(tasks, [
      call("t-complete", "agent-a", T0, { receivedAtMs: T0 }),
      root("t-complete", "agent-a", T0 - 1, { receivedAtMs: T0 }),
    ]);
    expect(await sweep(T0 + IDLE_MS - 1)).toEqual([]);
    const events = await sweep(T0 + IDLE_MS + 5_000);
    expect(events).toEqual([expect.objectContaining({ id: eventId("task_idle", "t-idle"), trigger: "task_idle", atMs: T0 + IDLE_MS })]);
    expect(published.map((m) => m.key)).toEqual(["t-idle"]);
    expect(await sweep(T0 + 10 * IDLE_MS)).toEqual([]);
  });

  it("finds every task that went idle while no detector was looking, however long ago, and one that woke up and went idle again", async () => {
    const { tasks, sweep } = setup();
    for (let i = 0; i < 1_200; i += 100) {
      await recordActions(
        tasks,
        Array.from({ length: 100 }, (_, j) =>
          call(`t-old-${i + j}`, "agent-a", T0 + (i + j) * 1_000, { receivedAtMs: T0 + (i + j) * 1_000 }),
        ),
      );
    }
    // the first sweep runs a day later: all 1,200 are found (over two sweeps at most: 5,000 a sweep)
    const found = await sweep(T0 + 24 * 3_600_000);
    expect(new Set(found.map((e) => e.taskId)).size).toBe(1_200);
    expect(await sweep(T0 + 24 * 3_600_000 + 1)).toEqual([]);
    // one wakes up, then goes idle again: reported again (same id: the revoker ends what it got since)
    const later = T0 + 25 * 3_600_000;
    await recordActions(tasks, [call("t-old-7", "agent-a", later, { receivedAtMs: later })]);
    expect(await sweep(later + IDLE_MS / 2)).toEqual([]);
    expect((await sweep(later + IDLE_MS + 1)).map((e) => [e.taskId, e.atMs])).toEqual([["t-old-7", later + IDLE_MS]]);
  });

  it("keeps to the profile: a grace period after the deadline, nothing where task ends are only notified", async () => {
    const { tasks, sweep } = setup();
    await recordActions(tasks, [call("t-g", "agent-g", T0, { receivedAtMs: T0 }), call("t-n", "agent-n", T0, { receivedAtMs: T0 })]);
    expect(await sweep(T0 + IDLE_MS + 1)).toEqual([expect.objectContaining({ taskId: "t-g", dueAtMs: T0 + IDLE_MS + 30_000 })]);
  });
});

describe("telemetry silence ends access", () => {
  it("reports a task whose credentials were suspended for its silence as resumed when a fresh step arrives, not for one looked at again", async () => {
    const tasks = new TaskStore(new MemoryStore());
    await detect(tasks, [call("t-p", "agent-p", T0)]);
    expect((await detect(tasks, [call("t-p", "agent-p", T0 + 1)])).events).toEqual([]);
    await tasks.markOnce("t-p", SILENCE_MARK);
    const back = await detect(tasks, [call("t-p", "agent-p", T0 + 200_000, { receivedAtMs: T0 + 200_010 })]);
    expect(back.events).toEqual([
      expect.objectContaining({ id: eventId("telemetry_resumed", "t-p"), trigger: "telemetry_resumed", atMs: T0 + 200_010 }),
    ]);
    expect(back.findings).toEqual([]);
    // a span landing before earlier steps re-emits them (reevaluated): only the fresh one counts
    const late = await detect(tasks, [call("t-p", "agent-p", T0 + 2, { receivedAtMs: T0 + 200_020 })]);
    expect(late.events.map((e) => e.trigger)).toEqual(["telemetry_resumed"]);
    // where silence revokes, there is nothing to give back
    await detect(tasks, [call("t-s", "agent-s", T0)]);
    await tasks.markOnce("t-s", SILENCE_MARK);
    expect((await detect(tasks, [call("t-s", "agent-s", T0 + 200_000)])).events).toEqual([]);
  });

  it("publishes the silence finding and, unless the profile ignores silence, the event that revokes", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const published: { topic: string; messages: OutgoingMessage[] }[] = [];
    const watch = watchSilence({
      tasks,
      policy: () => policy,
      bus: { publish: async (topic, messages) => void published.push({ topic, messages }) },
      findingsTopic: "agent.findings",
      lifecycleTopic: "agent.lifecycle",
      intervalMs: 3_600_000,
      logger: createLogger("silent"),
      now: () => T0 + 120_000,
    });
    try {
      await recordActions(tasks, [call("t-s", "agent-s", T0, { receivedAtMs: T0 }), call("t-q", "agent-q", T0, { receivedAtMs: T0 })]);
      await recordActions(tasks, [call("t-p2", "agent-p", T0, { receivedAtMs: T0 - 1 })]);
      const findings = (await watch.sweep()).sort((a, b) => a.taskId.localeCompare(b.taskId));
      expect(findings.map((f) => f.taskId)).toEqual(["t-p2", "t-s"]);
      const events = published
        .filter((p) => p.topic === "agent.lifecycle")
        .flatMap((p) => p.messages.map((m) => TaskEvent.parse(JSON.parse(String(m.value)))));
      expect(events.sort((a, b) => a.taskId.localeCompare(b.taskId))).toEqual([
        expect.objectContaining({ taskId: "t-p2", trigger: "telemetry_silence", suspend: true, findingId: findings[0]?.id }),
        expect.objectContaining({ taskId: "t-s", trigger: "telemetry_silence", findingId: findings[1]?.id, atMs: T0 + 120_000 }),
      ]);
      expect(events[1]?.suspend).toBeUndefined();
    } finally {
      watch.stop();
    }
  });
});
