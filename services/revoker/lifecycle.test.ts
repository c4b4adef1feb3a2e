import { beforeEach, describe, expect, it } from "vitest";
import { type LifecycleTrigger, TaskEvent } from "../../schemas/lifecycle.js";
import { ResponsePolicy } from "../../schemas/policy.js";
import { toolCall } from "../../test/support/actions.js";
import { VIOLATION_MARK } from "../detector/learner.js";
import { eventId } from "../detector/lifecycle.js";
import type { Policy } from "../detector/policy.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { Approvals } from "./approvals.js";
import type { CredentialStore, RevocationOutcome, RevocationRequest } from "./credential-stores/credential-store.js";
import { CredentialStores } from "./credential-stores/stores.js";
import { RevocationLedger } from "./ledger.js";
import { LifecycleResponder, lifecycleStage } from "./lifecycle.js";
import { AgentQuarantine } from "./quarantine.js";
import { Responder, revocationId } from "./revoker.js";

const T0 = 1_760_000_000_000;
const TRACE = "8bf92f3577b34da6a3ce929d0e0e4732";

/** A credential store that says yes and remembers what it was asked. */
class CountingStore implements CredentialStore {
  readonly name = "counting";
  readonly requests: RevocationRequest[] = [];
  async revoke(request: RevocationRequest): Promise<RevocationOutcome> {
    this.requests.push(request);
    return { status: "revoked", detail: "200 OK", attempts: 1 };
  }
}

/** One that can also suspend and resume (as the generic webhook can); `failing` refuses suspensions. */
class SuspendingStore extends CountingStore {
  readonly actions: string[] = [];
  failing = false;
  async suspend(request: RevocationRequest): Promise<RevocationOutcome> {
    this.actions.push(`suspend ${request.credentialId}`);
    return this.failing ? { status: "failed", detail: "HTTP 503", attempts: 2 } : { status: "revoked", detail: "200 OK", attempts: 1 };
  }
  async resume(request: RevocationRequest): Promise<RevocationOutcome> {
    this.actions.push(`resume ${request.credentialId}`);
    return { status: "revoked", detail: "200 OK", attempts: 1 };
  }
}

const policy = (dryRun = false): Policy => ({
  version: "lifecycle-revoker-test",
  profiles: [],
  rules: new Map(),
  redaction: { attributes: [], argumentKeys: [] },
  responses: ResponsePolicy.parse({ dryRun }),
  files: [],
});

describe("the revoker ends a task's access on its lifecycle events", () => {
  let store: MemoryStore;
  let tasks: TaskStore;
  let credentials: SuspendingStore;
  let vault: CountingStore;
  let ledger: RevocationLedger;
  let clock: number;
  let lifecycle: LifecycleResponder;
  let dryRun: boolean;

  beforeEach(() => {
    store = new MemoryStore();
    tasks = new TaskStore(store);
    credentials = new SuspendingStore();
    vault = new CountingStore();
    ledger = new RevocationLedger(store);
    clock = T0 + 10_000;
    dryRun = false;
    const responder = new Responder({
      tasks,
      store,
      stores: new CredentialStores({ default: credentials, vault }),
      ledger,
      approvals: new Approvals(store),
      quarantine: new AgentQuarantine(store),
      policy: () => policy(dryRun),
      minSeverity: "high",
      now: () => clock,
      random: () => 0.5,
    });
    lifecycle = new LifecycleResponder({ responder, tasks, store, policy: () => policy(dryRun), now: () => clock });
  });

  const use = (taskId: string, credentialId: string, at = T0) =>
    recordActions(tasks, [toolCall({ taskId, traceId: TRACE, agent: { id: "agent-a" }, credentialId, startTimeMs: at })]);

  const event = (trigger: LifecycleTrigger, taskId: string, over: Partial<TaskEvent> = {}): TaskEvent =>
    TaskEvent.parse({
      id: eventId(trigger, taskId, over.credentialId ?? ""),
      taskId,
      agentId: "agent-a",
      profileId: "billing",
      trigger,
      atMs: T0 + 5_000,
      detail: `${trigger} of ${taskId}`,
      detectedAtMs: T0 + 5_100,
      ...over,
    });

  it("revokes every credential bound to an ended task once, however often the end is reported, with the trigger and its latency", async () => {
    await use("t-1", "cred-a");
    await use("t-1", "cred-b", T0 + 1);
    const first = await lifecycle.handle(event("task_completed", "t-1"));
    expect(first.revocations.map((r) => [r.credentialId, r.status, r.trigger, r.decidedBy])).toEqual([
      ["cred-a", "revoked", "task_completed", "lifecycle:billing"],
      ["cred-b", "revoked", "task_completed", "lifecycle:billing"],
    ]);
    expect(first.revocations[0]).toMatchObject({ triggeredAtMs: T0 + 5_000, latencyMs: { fromTrigger: 5_000, fromDetection: 4_900 } });
    // reported again, and then the idle sweep's event for it too: nothing sent again, the ledger as it was
    await lifecycle.handle(event("task_completed", "t-1"));
    const again = await lifecycle.handle(event("task_idle", "t-1"));
    expect(again.revocations.map((r) => r.trigger)).toEqual(["task_completed", "task_completed"]);
    expect(credentials.requests.map((r) => r.credentialId)).toEqual(["cred-a", "cred-b"]);
    expect((await ledger.get(revocationId("counting", "cred-a")))?.trigger).toBe("task_completed");
  });

  it("leaves alone a credential the task used but that is bound to another task, and one already expired", async () => {
    await use("t-owner", "cred-owned");
    await use("t-user", "cred-owned", T0 + 1);
    await use("t-user", "cred-mine", T0 + 2);
    await tasks.bindings.register("t-user", "agent-a", [{ credentialId: "cred-expired", expiresAtMs: clock - 1 }], T0);
    const out = await lifecycle.handle(event("task_completed", "t-user"));
    expect(out.revocations.map((r) => r.credentialId)).toEqual(["cred-mine"]);
  });

  it("on a scope change revokes what was bound before it, not what the platform registered for the new scope", async () => {
    await tasks.bindings.register("t-scope", "agent-a", [{ credentialId: "cred-old" }], T0);
    await tasks.bindings.register("t-scope", "agent-a", [{ credentialId: "cred-new" }], T0 + 6_000);
    const out = await lifecycle.handle(event("scope_changed", "t-scope", { atMs: T0 + 6_000 }));
    expect(out.revocations.map((r) => [r.credentialId, r.trigger])).toEqual([["cred-old", "scope_changed"]]);
  });

  it("on a reuse revokes the reused credential alone, recorded under the task it is bound to", async () => {
    await use("t-a", "cred-shared");
    await use("t-a", "cred-a-only", T0 + 1);
    await use("t-b", "cred-shared", T0 + 2);
    const out = await lifecycle.handle(
      event("credential_reuse", "t-b", { credentialId: "cred-shared", ownerTaskId: "t-a", findingId: "finding-reuse" }),
    );
    expect(out.revocations.map((r) => [r.credentialId, r.taskId, r.trigger, r.findingId])).toEqual([
      ["cred-shared", "t-a", "credential_reuse", "finding-reuse"],
    ]);
    expect(credentials.requests.map((r) => r.credentialId)).toEqual(["cred-shared"]);
  });

  it("keeps an event until its grace period has passed, then carries it out once", async () => {
    await use("t-grace", "cred-g");
    const e = event("task_completed", "t-grace", { dueAtMs: T0 + 35_000 });
    expect((await lifecycle.handle(e)).revocations).toEqual([]);
    // reported twice: still one revocation when due
    await lifecycle.handle(e);
    expect((await lifecycle.due()).revocations).toEqual([]);
    expect(credentials.requests).toEqual([]);
    clock = T0 + 35_000;
    const out = await lifecycle.due();
    expect(out.revocations.map((r) => [r.credentialId, r.trigger, r.triggeredAtMs])).toEqual([["cred-g", "task_completed", T0 + 5_000]]);
    expect((await lifecycle.due()).revocations).toEqual([]);
    expect(credentials.requests).toHaveLength(1);
  });

  it("lets the response to a task's policy finding go first: the end of a task marked with one waits a moment", async () => {
    await use("t-drift", "cred-x");
    await tasks.markOnce("t-drift", VIOLATION_MARK);
    expect((await lifecycle.handle(event("task_completed", "t-drift"))).revocations).toEqual([]);
    clock += 2_000;
    expect((await lifecycle.due()).revocations.map((r) => [r.credentialId, r.trigger])).toEqual([["cred-x", "task_completed"]]);
  });

  it("suspends a silent task's credentials where the store can, resumes them when it reports again, once each", async () => {
    await use("t-quiet", "cred-q1");
    await use("t-quiet", "cred-q2", T0 + 1);
    const silent = event("telemetry_silence", "t-quiet", { suspend: true, atMs: T0 + 5_000 });
    const out = await lifecycle.handle(silent);
    expect(out.revocations.map((r) => [r.credentialId, r.status, r.trigger])).toEqual([
      ["cred-q1", "suspended", "telemetry_silence"],
      ["cred-q2", "suspended", "telemetry_silence"],
    ]);
    expect(out.revocations[0]?.id).toBe(`${revocationId("counting", "cred-q1")}-suspension`);
    await lifecycle.handle(silent);
    expect(credentials.actions).toEqual(["suspend cred-q1", "suspend cred-q2"]);
    expect(credentials.requests).toEqual([]);
    // a step from before the suspension is no sign of life; one after it is
    expect((await lifecycle.handle(event("telemetry_resumed", "t-quiet", { atMs: T0 + 1 }))).revocations).toEqual([]);
    const back = await lifecycle.handle(event("telemetry_resumed", "t-quiet", { atMs: clock + 1 }));
    expect(back.revocations.map((r) => [r.credentialId, r.status, r.trigger])).toEqual([
      ["cred-q1", "resumed", "telemetry_resumed"],
      ["cred-q2", "resumed", "telemetry_resumed"],
    ]);
    await lifecycle.handle(event("telemetry_resumed", "t-quiet", { atMs: clock + 2 }));
    expect(credentials.actions).toHaveLength(4);
    // and when the task ends, they are revoked as usual
    expect((await lifecycle.handle(event("task_completed", "t-quiet"))).revocations.map((r) => r.status)).toEqual(["revoked", "revoked"]);
  });

  it("revokes instead where the store cannot suspend (Vault)", async () => {
    await use("t-vault", "vault:lease:db/creds/q/1");
    const out = await lifecycle.handle(event("telemetry_silence", "t-vault", { suspend: true }));
    expect(out.revocations.map((r) => [r.status, r.trigger])).toEqual([["revoked", "telemetry_silence"]]);
    expect(vault.requests.map((r) => r.reason)).toEqual([expect.stringMatching(/counting cannot suspend a credential: revoked instead/)]);
    expect(credentials.actions).toEqual([]);
  });

  it("revokes instead when the store does not take the suspension, and never resumes a revoked credential", async () => {
    await use("t-down", "cred-d1");
    credentials.failing = true;
    const out = await lifecycle.handle(event("telemetry_silence", "t-down", { suspend: true }));
    expect(out.revocations.map((r) => [r.status, r.trigger])).toEqual([["revoked", "telemetry_silence"]]);
    expect(out.revocations[0]?.detail).toBe("200 OK");
    expect(credentials.requests.map((r) => r.reason)).toEqual([
      expect.stringMatching(/did not take the suspension: HTTP 503; revoked instead/),
    ]);
    expect((await lifecycle.handle(event("telemetry_resumed", "t-down", { atMs: clock + 1 }))).revocations).toEqual([]);
    expect(credentials.actions).toEqual(["suspend cred-d1"]);
  });

  it("as a stage, handles different tasks' events of a batch at once, one task's in order, and still calls the store once per credential", async () => {
    // a store that answers after a moment and notes how many requests it holds at once
    let inFlight = 0;
    let most = 0;
    const slow = new (class extends CountingStore {
      override async revoke(request: RevocationRequest): Promise<RevocationOutcome> {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        return super.revoke(request);
      }
    })();
    const responder = new Responder({
      tasks,
      store,
      stores: new CredentialStores({ default: slow }),
      ledger,
      approvals: new Approvals(store),
      quarantine: new AgentQuarantine(store),
      policy: () => policy(),
      minSeverity: "high",
      now: () => clock,
    });
    const stage = lifecycleStage("", new LifecycleResponder({ responder, tasks, store, policy: () => policy(), now: () => clock }));
    for (let i = 0; i < 8; i++) await use(`t-batch-${i}`, `cred-batch-${i}`, T0 + i);
    const events = [
      // task 0's credential reused by task 1, and task 0 ends: one revocation
      event("credential_reuse", "t-batch-1", { credentialId: "cred-batch-0", ownerTaskId: "t-batch-0" }),
      ...Array.from({ length: 8 }, (_, i) => event("task_completed", `t-batch-${i}`)),
      // task 2 reported twice in the batch: in order, the second re-emits the first's record
      event("task_idle", "t-batch-2"),
    ];
    const emits = await stage.handle(
      events.map((value, offset) => ({
        value,
        message: {
          topic: "agent.lifecycle",
          partition: 0,
          offset: String(offset),
          key: value.taskId,
          value: Buffer.alloc(0),
          headers: {},
          timestampMs: T0,
        },
      })),
      () => undefined,
    );
    expect(most).toBeGreaterThan(1);
    expect(slow.requests.map((r) => r.credentialId).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `cred-batch-${i}`));
    // two tasks' events name it at once: whichever came first, it was revoked once
    expect(["credential_reuse", "task_completed"]).toContain((await ledger.get(revocationId("counting", "cred-batch-0")))?.trigger);
    expect((await ledger.history(revocationId("counting", "cred-batch-0"))).map((h) => h.status)).toEqual(["revoked"]);
    expect((await ledger.get(revocationId("counting", "cred-batch-2")))?.trigger).toBe("task_completed");
    const emitted = emits.map((e) => JSON.parse(String(e.message.value)) as { credentialId: string; trigger: string });
    expect(emitted.filter((r) => r.credentialId === "cred-batch-2").map((r) => r.trigger)).toEqual(["task_completed", "task_completed"]);
  });

  it("in a dry run records what it would have revoked and sends nothing", async () => {
    dryRun = true;
    await use("t-dry", "cred-d");
    const out = await lifecycle.handle(event("environment_changed", "t-dry"));
    expect(out.revocations.map((r) => [r.status, r.trigger])).toEqual([["dry_run", "environment_changed"]]);
    expect(credentials.requests).toEqual([]);
  });
});
