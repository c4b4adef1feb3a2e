import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AgentAction } from "../../schemas/action.js";
import { DeadLetter } from "../../schemas/deadletter.js";
import { Finding, type RuleMode, type Severity } from "../../schemas/finding.js";
import { Revocation } from "../../schemas/revocation.js";
import { eventually } from "../../test/support/wait.js";
import { newSecret, WebhookReceiver } from "../../test/support/webhook-receiver.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import type { BusMessage, Subscription } from "../runtime/bus/bus.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { createLogger } from "../runtime/logging.js";
import type { Emit } from "../runtime/stage.js";
import { runStage } from "../runtime/stage.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { taskKey } from "../runtime/store/store.js";
import { Metrics } from "../runtime/telemetry.js";
import { WebhookClient } from "../runtime/webhook-client.js";
import type { CredentialStore } from "./credential-stores/credential-store.js";
import { RecordOnlyCredentialStore } from "./credential-stores/record-only.js";
import { WebhookCredentialStore } from "./credential-stores/webhook.js";
import { responseFor } from "./response-policy.js";
import { revocationId, revokerStage } from "./revoker.js";

const T0 = 1_760_000_000_000;
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const REVOCATIONS = "agent.revocations";

function finding(over: Partial<Finding> = {}): Finding {
  return Finding.parse({
    id: "f-1",
    taskId: "task-1",
    agentId: "billing-agent",
    stepIndex: 2,
    traceId: TRACE,
    spanId: "00f067aa0ba902b7",
    ruleId: "scope.tool",
    kind: "out_of_scope",
    severity: "high",
    mode: "enforce",
    confidence: 0.95,
    explanation: 'billing-agent called tool "shell.exec", which is outside its profile "billing-agent".',
    evidence: { observed: { tool: "shell.exec" }, expected: { tools: ["invoices.read"] } },
    tags: { owaspAgentic: [], maestro: [], nistAiRmf: [] },
    spanEndMs: T0,
    detectedAtMs: T0 + 5,
    policyVersion: "abc",
    ...over,
  });
}

let offset = 0;
function message(value: unknown): BusMessage {
  const f = value as Finding;
  return {
    topic: "agent.findings",
    partition: 0,
    offset: String(offset++),
    key: f.taskId ?? null,
    value: Buffer.from(JSON.stringify(value)),
    headers: {},
    timestampMs: T0,
  };
}

async function bind(tasks: TaskStore, taskId: string, credentials: string[]) {
  await recordActions(
    tasks,
    credentials.map((c, i) =>
      AgentAction.parse({
        id: `${TRACE}:${(offset + i + 1).toString(16).padStart(16, "0")}`,
        traceId: TRACE,
        spanId: (offset + i + 1).toString(16).padStart(16, "0"),
        taskId,
        taskIdSource: "attribute",
        name: "execute_tool invoices.read",
        agent: { id: "billing-agent" },
        credentialId: c,
        startTimeMs: T0 + i,
        endTimeMs: T0 + i + 1,
        status: "ok",
        links: [],
        attributes: {},
        receivedAtMs: T0 + 10,
      }),
    ),
  );
  offset += credentials.length + 1;
}

const revocations = (emits: Emit[]) =>
  emits.map((e) => {
    expect(e.topic).toBe(REVOCATIONS);
    const r = Revocation.parse(JSON.parse(String(e.message.value)));
    expect(e.message.key).toBe(r.taskId);
    return r;
  });

describe("revoker with a webhook credential store", () => {
  const secret = newSecret();
  let status = 200;
  let receiver: WebhookReceiver;
  let store: MemoryStore;
  let tasks: TaskStore;
  let clock: number;
  let credentialStore: CredentialStore;

  beforeAll(async () => {
    receiver = await new WebhookReceiver(secret, () => status).start();
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(() => {
    receiver.received.length = 0;
    status = 200;
    store = new MemoryStore();
    tasks = new TaskStore(store);
    clock = T0 + 1_000;
    credentialStore = new WebhookCredentialStore(
      { url: receiver.url, secret },
      new WebhookClient({ timeoutMs: 5000, retries: 1, backoffMs: 5 }),
    );
  });
  afterEach(async () => {
    await store.close();
  });

  const stage = (minSeverity: Severity = "high") => revokerStage("", { tasks, store, credentialStore, minSeverity, now: () => clock });
  const deliver = async (logic: ReturnType<typeof stage>, ...findings: Finding[]) => {
    const rejected: string[] = [];
    const emits = await logic.handle(
      findings.map((f) => {
        const m = message(f);
        return { message: m, value: logic.parse(m) as Finding };
      }),
      (_m, reason) => rejected.push(reason),
    );
    expect(rejected).toEqual([]);
    return emits;
  };

  it("revokes every credential bound to the task with a signed call whose webhook-id is the revocation id", async () => {
    await bind(tasks, "task-1", ["lease-a", "lease-b"]);
    await bind(tasks, "task-other", ["lease-other"]);
    const logic = stage();
    expect(logic.input).toBe("agent.findings");
    const emits = await deliver(logic, finding());

    expect(receiver.received).toHaveLength(2);
    const byCredential = new Map(receiver.received.map((r) => [(r.body as { credential_id: string }).credential_id, r]));
    for (const credential of ["lease-a", "lease-b"]) {
      const call = byCredential.get(credential);
      const id = revocationId("webhook", "task-1", credential);
      expect(call?.signatureValid).toBe(true);
      expect(call?.id).toBe(id);
      expect(call?.body).toEqual({
        type: "driftwatch.credential.revoke",
        revocation_id: id,
        credential_id: credential,
        task_id: "task-1",
        finding_id: "f-1",
        reason: `scope.tool: ${finding().explanation}`,
      });
    }

    const records = revocations(emits);
    expect(records.map((r) => r.credentialId).sort()).toEqual(["lease-a", "lease-b"]);
    for (const r of records) {
      expect(r).toMatchObject({
        id: revocationId("webhook", "task-1", r.credentialId),
        taskId: "task-1",
        findingId: "f-1",
        credentialStore: "webhook",
        status: "revoked",
        detail: "HTTP 200",
        attempts: 1,
        requestedAtMs: clock,
        completedAtMs: clock,
      });
    }
    expect(await tasks.revoked("task-1")).toEqual({ atMs: clock, findingId: "f-1" });
    expect((await tasks.summary("task-1"))?.status).toBe("revoked");
    expect(await tasks.revoked("task-other")).toBeUndefined();
  });

  it("revocation ids are per store, task and credential", () => {
    const id = revocationId("webhook", "task-1", "lease-a");
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(revocationId("webhook", "task-1", "lease-a")).toBe(id);
    expect(revocationId("vault", "task-1", "lease-a")).not.toBe(id);
    expect(revocationId("webhook", "task-2", "lease-a")).not.toBe(id);
    expect(revocationId("webhook", "task-1", "lease-b")).not.toBe(id);
  });

  it("revokes once per credential: a redelivered finding and a second finding re-emit the same record without calling again", async () => {
    await bind(tasks, "task-1", ["lease-a", "lease-b"]);
    const logic = stage();
    const first = revocations(await deliver(logic, finding()));
    expect(receiver.received).toHaveLength(2);

    clock += 10_000;
    const redelivered = revocations(await deliver(logic, finding()));
    const second = revocations(await deliver(logic, finding({ id: "f-2", ruleId: "scope.egress", severity: "critical" })));
    expect(receiver.received).toHaveLength(2);
    const sortById = (rs: Revocation[]) => [...rs].sort((a, b) => a.id.localeCompare(b.id));
    expect(sortById(redelivered)).toEqual(sortById(first));
    expect(sortById(second)).toEqual(sortById(first));
    // the first mark stands
    expect(await tasks.revoked("task-1")).toEqual({ atMs: T0 + 1_000, findingId: "f-1" });
  });

  it("two findings of one task in one batch still revoke each credential once", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    const emits = await deliver(stage(), finding(), finding({ id: "f-2" }), finding());
    expect(receiver.received).toHaveLength(1);
    const records = revocations(emits);
    expect(records).toHaveLength(3);
    expect(new Set(records.map((r) => r.id)).size).toBe(1);
  });

  it("a credential bound after the revocation is revoked by the next finding, the earlier ones are not called again", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    const logic = stage();
    await deliver(logic, finding());
    await bind(tasks, "task-1", ["lease-new"]);
    const records = revocations(await deliver(logic, finding({ id: "f-2" })));
    expect(receiver.received.map((r) => (r.body as { credential_id: string }).credential_id)).toEqual(["lease-a", "lease-new"]);
    expect(records.find((r) => r.credentialId === "lease-new")).toMatchObject({ findingId: "f-2", status: "revoked" });
    expect(records.find((r) => r.credentialId === "lease-a")).toMatchObject({ findingId: "f-1", status: "revoked" });
  });

  it.each<[string, Partial<Finding>, Severity]>([
    ["an alert-mode finding", { mode: "alert", severity: "critical" }, "high"],
    ["a shadow-mode finding", { mode: "shadow", severity: "critical" }, "high"],
    ["an enforce finding below the threshold", { severity: "medium" }, "high"],
    ["a high finding when the threshold is critical", { severity: "high" }, "critical"],
  ])("%s revokes nothing and leaves the task active", async (_what, over, minSeverity) => {
    await bind(tasks, "task-1", ["lease-a"]);
    const emits = await deliver(stage(minSeverity), finding(over));
    expect(emits).toEqual([]);
    expect(receiver.received).toHaveLength(0);
    expect(await tasks.revoked("task-1")).toBeUndefined();
  });

  it("a critical finding revokes when the threshold is high; a low one when the threshold is low", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    await bind(tasks, "task-2", ["lease-b"]);
    expect(revocations(await deliver(stage("high"), finding({ severity: "critical" })))).toHaveLength(1);
    expect(revocations(await deliver(stage("low"), finding({ id: "f-9", taskId: "task-2", severity: "low" })))).toHaveLength(1);
    expect(receiver.received).toHaveLength(2);
  });

  it("a task with no bound credential is still marked revoked", async () => {
    await bind(tasks, "task-1", []);
    const emits = await deliver(stage(), finding());
    expect(emits).toEqual([]);
    expect(receiver.received).toHaveLength(0);
    expect(await tasks.revoked("task-1")).toEqual({ atMs: clock, findingId: "f-1" });
  });

  it("a store answering 500 gives a failed revocation; a later finding tries again with the same id and succeeds", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    const logic = stage();
    status = 500;
    const [failed, ...restFailed] = revocations(await deliver(logic, finding()));
    expect(restFailed).toEqual([]);
    const id = revocationId("webhook", "task-1", "lease-a");
    expect(failed).toMatchObject({ id, status: "failed", detail: "HTTP 500", attempts: 2, findingId: "f-1" });
    // the client retried once, with the same message id
    expect(receiver.received.map((r) => r.id)).toEqual([id, id]);
    expect(await store.get(taskKey("task-1", "revocation:lease-a"))).toBeNull();
    // the task is marked even though the credential store failed
    expect(await tasks.revoked("task-1")).toBeDefined();

    status = 200;
    clock += 1_000;
    const [ok] = revocations(await deliver(logic, finding({ id: "f-2" })));
    expect(ok).toMatchObject({ id, status: "revoked", attempts: 1, findingId: "f-2", requestedAtMs: clock });
    expect(receiver.received).toHaveLength(3);
    expect(receiver.received[2]?.signatureValid).toBe(true);
    // and it is done: nothing more is sent
    await deliver(logic, finding({ id: "f-3" }));
    expect(receiver.received).toHaveLength(3);
  });

  it("a store refusing with 4xx is not retried by the client and is reported failed", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    status = 403;
    const [r] = revocations(await deliver(stage(), finding()));
    expect(r).toMatchObject({ status: "failed", detail: "HTTP 403", attempts: 1 });
    expect(receiver.received).toHaveLength(1);
  });

  it("an unreachable store gives a failed revocation, not a stage failure", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    credentialStore = new WebhookCredentialStore(
      { url: "http://127.0.0.1:1/hook", secret },
      new WebhookClient({ timeoutMs: 1000, retries: 0, backoffMs: 1 }),
    );
    const [r] = revocations(await deliver(stage(), finding()));
    expect(r?.status).toBe("failed");
    expect(r?.attempts).toBe(1);
    expect(r?.detail.length).toBeGreaterThan(0);
  });

  it("a claim left pending by a crash is finished on redelivery, with the same revocation id", async () => {
    await bind(tasks, "task-1", ["lease-a", "lease-b"]);
    // a previous attempt claimed lease-a and stopped before recording the outcome
    await store.set(taskKey("task-1", "revocation:lease-a"), "pending");
    const records = revocations(await deliver(stage(), finding()));
    expect(receiver.received.map((r) => r.id).sort()).toEqual(
      [revocationId("webhook", "task-1", "lease-a"), revocationId("webhook", "task-1", "lease-b")].sort(),
    );
    expect(records.every((r) => r.status === "revoked")).toBe(true);
    const claim = await store.get(taskKey("task-1", "revocation:lease-a"));
    expect(Revocation.parse(JSON.parse(claim ?? "null"))).toMatchObject({
      id: revocationId("webhook", "task-1", "lease-a"),
      status: "revoked",
    });
  });

  it("parse rejects a message that is not a finding", () => {
    const logic = stage();
    expect(() => logic.parse(message({ id: "x" }))).toThrow(/not a finding/);
    expect(() => logic.parse({ ...message({}), value: Buffer.from("{") })).toThrow(/not JSON/);
  });

  it("on the bus: a finding produced twice gives one call per credential and the same record twice; bad input is dead-lettered", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    const bus = new MemoryBus({ partitions: 2, retryDelayMs: 10 });
    const got: BusMessage[] = [];
    const dead: BusMessage[] = [];
    const subs: Subscription[] = [
      await bus.subscribe({ group: "c1", topics: ["dw.agent.revocations"], fromBeginning: true }, async (b) => {
        got.push(...b);
      }),
      await bus.subscribe({ group: "c2", topics: ["dw.agent.deadletter"], fromBeginning: true }, async (b) => {
        dead.push(...b);
      }),
    ];
    subs.push(
      await runStage(revokerStage("dw.", { tasks, store, credentialStore, minSeverity: "high", now: () => clock }), {
        bus,
        logger: createLogger("silent"),
        metrics: new Metrics(false),
        topicPrefix: "dw.",
        groupPrefix: "test.",
        healthy: async () => true,
      }),
    );
    const f = finding();
    await bus.publish("dw.agent.findings", [{ key: f.taskId, value: JSON.stringify(f) }]);
    await bus.publish("dw.agent.findings", [
      { key: f.taskId, value: JSON.stringify(f) },
      { key: f.taskId, value: "not a finding" },
    ]);
    await eventually(() => (got.length === 2 && dead.length === 1 ? true : undefined), 10_000, "revocations");
    const records = got.map((m) => Revocation.parse(JSON.parse(m.value.toString())));
    expect(records[0]).toEqual(records[1]);
    expect(receiver.received).toHaveLength(1);
    expect(DeadLetter.parse(JSON.parse(dead[0]?.value.toString() ?? "")).stage).toBe("revoker");
    for (const s of subs) await s.close();
    await bus.close();
  });
});

describe("revoker with no credential store configured", () => {
  it("records the revocation (status recorded) once per credential and marks the task", async () => {
    const store = new MemoryStore();
    const tasks = new TaskStore(store);
    let clock = T0;
    await bind(tasks, "task-1", ["lease-a", "lease-b"]);
    const logic = revokerStage("", {
      tasks,
      store,
      credentialStore: new RecordOnlyCredentialStore(),
      minSeverity: "high",
      now: () => clock,
    });
    const m = message(finding());
    const first = revocations(await logic.handle([{ message: m, value: logic.parse(m) as Finding }], () => undefined));
    expect(first.map((r) => r.credentialId).sort()).toEqual(["lease-a", "lease-b"]);
    for (const r of first) {
      expect(r).toMatchObject({
        id: revocationId("record-only", "task-1", r.credentialId),
        credentialStore: "record-only",
        status: "recorded",
        attempts: 1,
        requestedAtMs: T0,
      });
      expect(r.detail).toMatch(/DRIFTWATCH_REVOKE_WEBHOOK_URL/);
    }
    clock += 5_000;
    const m2 = message(finding({ id: "f-2" }));
    const again = revocations(await logic.handle([{ message: m2, value: logic.parse(m2) as Finding }], () => undefined));
    // the stored outcome is re-emitted, not decided again
    expect(again.map((r) => [r.id, r.requestedAtMs, r.findingId]).sort()).toEqual(
      first.map((r) => [r.id, r.requestedAtMs, r.findingId]).sort(),
    );
    expect(await tasks.revoked("task-1")).toEqual({ atMs: T0, findingId: "f-1" });
    await store.close();
  });
});

describe("responseFor", () => {
  const severities: Severity[] = ["info", "low", "medium", "high", "critical"];
  const rank = (s: Severity) => severities.indexOf(s);

  it("revokes only for enforce-mode findings at or above the threshold", () => {
    for (const mode of ["enforce", "alert", "shadow"] as RuleMode[]) {
      for (const severity of severities) {
        for (const min of severities) {
          const expected = mode === "enforce" && rank(severity) >= rank(min) ? "revoke" : "notify";
          expect(responseFor(finding({ mode, severity }), min), `${mode}/${severity} with threshold ${min}`).toBe(expected);
        }
      }
    }
  });

  it("examples", () => {
    expect(responseFor(finding({ mode: "enforce", severity: "high" }), "high")).toBe("revoke");
    expect(responseFor(finding({ mode: "enforce", severity: "medium" }), "high")).toBe("notify");
    expect(responseFor(finding({ mode: "alert", severity: "critical" }), "info")).toBe("notify");
  });
});
