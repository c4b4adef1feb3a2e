import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AgentAction } from "../../schemas/action.js";
import { DeadLetter } from "../../schemas/deadletter.js";
import type { Finding, RuleMode, Severity } from "../../schemas/finding.js";
import { ResponsePolicy } from "../../schemas/policy.js";
import { Revocation } from "../../schemas/revocation.js";
import { aFinding } from "../../test/support/findings.js";
import { eventually } from "../../test/support/wait.js";
import { newSecret, WebhookReceiver } from "../../test/support/webhook-receiver.js";
import type { Policy } from "../detector/policy.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import type { BusMessage, Subscription } from "../runtime/bus/bus.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { createLogger } from "../runtime/logging.js";
import type { Emit } from "../runtime/stage.js";
import { runStage, Unavailable } from "../runtime/stage.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { Metrics } from "../runtime/telemetry.js";
import { WebhookClient } from "../runtime/webhook-client.js";
import { Approvals } from "./approvals.js";
import type { CredentialStore } from "./credential-stores/credential-store.js";
import { RecordOnlyCredentialStore } from "./credential-stores/record-only.js";
import { CredentialStores } from "./credential-stores/stores.js";
import { WebhookCredentialStore } from "./credential-stores/webhook.js";
import { RevocationLedger } from "./ledger.js";
import { AgentQuarantine } from "./quarantine.js";
import { responseFor } from "./response-policy.js";
import { Responder, type RevokerDeps, revocationId, revokerStage } from "./revoker.js";

const T0 = 1_760_000_000_000;
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const REVOCATIONS = "agent.revocations";

/** A policy with only response rules (the revoker reads nothing else of it). */
const responsePolicy = (responses: unknown = { rules: [] }): Policy => ({
  version: "revoker-test",
  profiles: [],
  rules: new Map(),
  redaction: { attributes: [], argumentKeys: [] },
  responses: ResponsePolicy.parse(responses),
  files: [],
});

/** The revoker's parts over one store. */
function responder(store: MemoryStore, tasks: TaskStore, credentialStore: CredentialStore, over: Partial<RevokerDeps> = {}) {
  return new Responder({
    tasks,
    store,
    stores: new CredentialStores({ default: credentialStore }),
    ledger: new RevocationLedger(store),
    approvals: new Approvals(store),
    quarantine: new AgentQuarantine(store),
    policy: () => responsePolicy(),
    minSeverity: "high",
    random: () => 0.5,
    ...over,
  });
}

function finding(over: Partial<Finding> = {}): Finding {
  return aFinding({ traceId: TRACE, spanEndMs: T0, detectedAtMs: T0 + 5, ...over });
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

  const stage = (minSeverity: Severity = "high") =>
    revokerStage("", responder(store, tasks, credentialStore, { minSeverity, now: () => clock }));
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
      const id = revocationId("webhook", credential);
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
        id: revocationId("webhook", r.credentialId),
        taskId: "task-1",
        agentId: "billing-agent",
        findingId: "f-1",
        credentialStore: "webhook",
        trigger: "finding",
        decidedBy: "policy:default",
        status: "revoked",
        detail: "HTTP 200",
        attempts: 1,
        requestedAtMs: clock,
        completedAtMs: clock,
        latencyMs: { fromDetection: clock - (T0 + 5), fromSpanEnd: clock - T0 },
      });
    }
    expect(await tasks.revoked("task-1")).toEqual({ atMs: clock, findingId: "f-1" });
    expect((await tasks.summary("task-1"))?.status).toBe("revoked");
    expect(await tasks.revoked("task-other")).toBeUndefined();
  });

  it("revocation ids are per store and credential: the same whichever task or finding revokes it", () => {
    const id = revocationId("webhook", "lease-a");
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(revocationId("webhook", "lease-a")).toBe(id);
    expect(revocationId("vault", "lease-a")).not.toBe(id);
    expect(revocationId("webhook", "lease-b")).not.toBe(id);
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

  it("a store answering 500 gives a failed revocation the sweep tries again, later, with the same id, until it works", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    const r = responder(store, tasks, credentialStore, { now: () => clock, retryBaseMs: 1_000 });
    const logic = revokerStage("", r);
    status = 500;
    const [failed, ...restFailed] = revocations(await deliver(logic, finding()));
    expect(restFailed).toEqual([]);
    const id = revocationId("webhook", "lease-a");
    // full jitter (random 0.5) on the first round's 1 s
    expect(failed).toMatchObject({ id, status: "failed", detail: "HTTP 500", attempts: 2, findingId: "f-1", retryAtMs: clock + 500 });
    // the client retried once, with the same message id
    expect(receiver.received.map((x) => x.id)).toEqual([id, id]);
    // the task is marked even though the credential store failed
    expect(await tasks.revoked("task-1")).toBeDefined();
    // another finding meanwhile re-emits the failed record: the retry is the sweep's, not a second call
    const [meanwhile] = revocations(await deliver(logic, finding({ id: "f-2" })));
    expect(meanwhile).toMatchObject({ id, status: "failed" });
    expect(receiver.received).toHaveLength(2);
    // not due yet
    expect((await r.retryDue()).revocations).toEqual([]);
    status = 200;
    clock += 500;
    const retried = await r.retryDue();
    expect(retried.revocations).toHaveLength(1);
    expect(retried.revocations[0]).toMatchObject({ id, status: "revoked", attempts: 3, findingId: "f-1", requestedAtMs: T0 + 1_000 });
    expect(receiver.received).toHaveLength(3);
    expect(receiver.received[2]?.signatureValid).toBe(true);
    // and it is done: nothing more is sent, by the sweep or by another finding
    expect((await r.retryDue()).revocations).toEqual([]);
    await deliver(logic, finding({ id: "f-3" }));
    expect(receiver.received).toHaveLength(3);
    const ledger = new RevocationLedger(store);
    expect((await ledger.history(id)).map((h) => h.status)).toEqual(["failed", "revoked"]);
  });

  it("a revoker that dies in the middle of a retry round loses nothing: another takes the round up once the claim lapses", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    status = 500;
    const claimTtlMs = 100;
    const first = responder(store, tasks, credentialStore, { now: () => clock, retryBaseMs: 1_000, claimTtlMs });
    await deliver(revokerStage("", first), finding());
    // A takes the round and never comes back (its store call hangs: a process that died)
    const hanging: CredentialStore = { name: "webhook", revoke: () => new Promise(() => undefined) };
    const a = responder(store, tasks, hanging, { now: () => clock, retryBaseMs: 1_000, claimTtlMs });
    clock += 1_000;
    void a.retryDue();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // B, meanwhile: not due (A holds the round)
    status = 200;
    const b = responder(store, tasks, credentialStore, { now: () => clock, retryBaseMs: 1_000, claimTtlMs });
    expect((await b.retryDue()).revocations).toEqual([]);
    // once A's claim on the round lapses, B runs it
    await new Promise((resolve) => setTimeout(resolve, claimTtlMs + 50));
    clock += claimTtlMs;
    const out = await b.retryDue();
    expect(out.revocations.map((r) => [r.credentialId, r.status])).toEqual([["lease-a", "revoked"]]);
    expect((await b.retryDue()).revocations).toEqual([]);
  });

  it("a claim this revoker left pending (a store error midway) does not make it wait for its own claim", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    const r = responder(store, tasks, credentialStore, { now: () => clock });
    const owner = (r as unknown as { owner: string }).owner;
    await store.set("credential:{lease-a}:revocation", JSON.stringify({ state: "pending", owner, atMs: clock }), { ttlMs: 60_000 });
    const records = revocations(await deliver(revokerStage("", r), finding()));
    expect(records.map((x) => x.status)).toEqual(["revoked"]);
  });

  it("gives up after the last attempt: dead-lettered with the request, and the ledger says so", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    status = 503;
    const r = responder(store, tasks, credentialStore, { now: () => clock, maxAttempts: 4, retryBaseMs: 10 });
    const logic = revokerStage("", r);
    const [first] = revocations(await deliver(logic, finding()));
    expect(first).toMatchObject({ status: "failed", attempts: 2 });
    clock += 1_000;
    const out = await r.retryDue();
    expect(out.revocations[0]).toMatchObject({ status: "dead_lettered", attempts: 4 });
    expect(out.revocations[0]?.detail).toMatch(/HTTP 503 \(gave up: 4 attempts in 2 rounds\)/);
    expect(out.deadLetters).toHaveLength(1);
    const letter = DeadLetter.parse(out.deadLetters[0]);
    expect(letter).toMatchObject({ stage: "revoker", source: { topic: "agent.findings", partition: 0 } });
    expect(letter.reason).toMatch(/revocation of lease-a \(task task-1\) at webhook failed/);
    expect(letter.record).toMatchObject({
      request: { credentialId: "lease-a", taskId: "task-1" },
      revocation: { status: "dead_lettered" },
    });
    // nothing more
    clock += 60_000;
    expect((await r.retryDue()).revocations).toEqual([]);
    expect(receiver.received).toHaveLength(4);
  });

  it("a store refusing with 4xx is not retried: dead-lettered at once", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    status = 403;
    const emits = await deliver(stage(), finding());
    const [r] = revocations(emits.filter((e) => e.topic === REVOCATIONS));
    expect(r).toMatchObject({ status: "dead_lettered", attempts: 1 });
    expect(r?.detail).toMatch(/HTTP 403/);
    expect(emits.filter((e) => e.topic === "agent.deadletter")).toHaveLength(1);
    expect(receiver.received).toHaveLength(1);
  });

  it("an unreachable store gives a failed revocation to retry, not a stage failure", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    credentialStore = new WebhookCredentialStore(
      { url: "http://127.0.0.1:1/hook", secret },
      new WebhookClient({ timeoutMs: 1000, retries: 0, backoffMs: 1 }),
    );
    const [r] = revocations(await deliver(stage(), finding()));
    expect(r?.status).toBe("failed");
    expect(r?.attempts).toBe(1);
    expect(r?.retryAtMs).toBeGreaterThan(clock);
    expect(r?.detail.length).toBeGreaterThan(0);
  });

  it("a claim another revoker holds makes the batch wait; once that claim lapses (a crash), the credential is revoked", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    await store.set("credential:{lease-a}:revocation", JSON.stringify({ state: "pending", owner: "crashed", atMs: T0 }), { ttlMs: 150 });
    const logic = stage();
    await expect(deliver(logic, finding())).rejects.toBeInstanceOf(Unavailable);
    expect(receiver.received).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const records = revocations(await deliver(logic, finding()));
    expect(records.map((x) => x.status)).toEqual(["revoked"]);
    expect(receiver.received.map((x) => x.id)).toEqual([revocationId("webhook", "lease-a")]);
  });

  it("two revokers at once revoke each credential once: the second waits, then re-emits the same record", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    const a = revokerStage("", responder(store, tasks, credentialStore, { now: () => clock }));
    const b = revokerStage("", responder(store, tasks, credentialStore, { now: () => clock }));
    const results = await Promise.allSettled([deliver(a, finding()), deliver(b, finding({ id: "f-2" }))]);
    expect(receiver.received).toHaveLength(1);
    const waited = results.filter((x) => x.status === "rejected");
    expect(waited).toHaveLength(1);
    expect((waited[0] as PromiseRejectedResult).reason).toBeInstanceOf(Unavailable);
    // the bus redelivers the waiting batch: now the record is there
    const again = revocations(await deliver(b, finding({ id: "f-2" })));
    expect(again.map((x) => [x.status, x.findingId])).toEqual([["revoked", expect.stringMatching(/^f-[12]$/)]]);
    expect(receiver.received).toHaveLength(1);
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
      await runStage(revokerStage("dw.", responder(store, tasks, credentialStore, { now: () => clock })), {
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
  it("records the revocation (status recorded) once per credential and marks the task as recorded, not revoked", async () => {
    const store = new MemoryStore();
    const tasks = new TaskStore(store);
    let clock = T0;
    await bind(tasks, "task-1", ["lease-a", "lease-b"]);
    const logic = revokerStage("", responder(store, tasks, new RecordOnlyCredentialStore(), { now: () => clock }));
    const m = message(finding());
    const first = revocations(await logic.handle([{ message: m, value: logic.parse(m) as Finding }], () => undefined));
    expect(first.map((r) => r.credentialId).sort()).toEqual(["lease-a", "lease-b"]);
    for (const r of first) {
      expect(r).toMatchObject({
        id: revocationId("record-only", r.credentialId),
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
    expect(await tasks.revoked("task-1")).toEqual({ atMs: T0, findingId: "f-1", recordedOnly: true });
    // the task and its credentials show what happened: decided, not done
    expect((await tasks.summary("task-1", T0 + 10_000))?.status).toBe("recorded");
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

describe("responses: quarantine, ask a human, dry run", () => {
  const secret = newSecret();
  let receiver: WebhookReceiver;
  let store: MemoryStore;
  let tasks: TaskStore;
  let clock: number;

  beforeAll(async () => {
    receiver = await new WebhookReceiver(secret, () => 200).start();
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(() => {
    receiver.received.length = 0;
    store = new MemoryStore();
    tasks = new TaskStore(store);
    clock = T0 + 1_000;
  });

  const revoked = () => receiver.received.map((r) => (r.body as { credential_id: string }).credential_id).sort();
  const setup = (responses: unknown) => {
    const r = responder(
      store,
      tasks,
      new WebhookCredentialStore({ url: receiver.url, secret }, new WebhookClient({ timeoutMs: 5000, retries: 0 })),
      { now: () => clock, policy: () => responsePolicy(responses) },
    );
    return { r, approvals: new Approvals(store), quarantine: new AgentQuarantine(store), ledger: new RevocationLedger(store) };
  };

  it("quarantine: revokes the task's credentials and those of the agent's other recent tasks, and marks the agent", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    await bind(tasks, "task-2", ["lease-b"]);
    await bind(tasks, "task-3", ["lease-c"]);
    const { r, quarantine, ledger } = setup({ rules: [{ id: "exfil", when: { kinds: ["flow"] }, action: "quarantine" }] });
    const out = await r.respond(finding({ kind: "flow", ruleId: "flow.egress_after_sensitive_read" }));
    expect(revoked()).toEqual(["lease-a", "lease-b", "lease-c"]);
    const byCredential = new Map(out.revocations.map((x) => [x.credentialId, x]));
    expect(byCredential.get("lease-a")).toMatchObject({
      taskId: "task-1",
      trigger: "finding",
      decidedBy: "policy:exfil",
      status: "revoked",
    });
    expect(byCredential.get("lease-b")).toMatchObject({
      taskId: "task-2",
      trigger: "quarantine",
      decidedBy: "policy:exfil",
      status: "revoked",
    });
    expect(await quarantine.get("billing-agent")).toMatchObject({
      agentId: "billing-agent",
      findingId: "f-1",
      taskId: "task-1",
      by: "policy:exfil",
    });
    for (const t of ["task-1", "task-2", "task-3"]) expect(await tasks.revoked(t)).toBeDefined();
    expect((await ledger.list({ offset: 0, limit: 10 })).length).toBe(3);
    // a second finding does not quarantine again
    await r.respond(finding({ id: "f-2", kind: "flow", ruleId: "flow.egress_after_sensitive_read" }));
    expect(receiver.received).toHaveLength(3);
  });

  it("ask a human: nothing is revoked until approved; the approval carries it out once, decided by that human", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    const { r, approvals, ledger } = setup({
      rules: [{ id: "ask", action: "ask_human", approval: { timeoutMs: 60_000, onTimeout: "notify" } }],
    });
    await r.respond(finding());
    await r.respond(finding({ id: "f-2" }));
    expect(receiver.received).toHaveLength(0);
    expect(await tasks.revoked("task-1")).toBeUndefined();
    const [pending, ...others] = await approvals.list({ offset: 0, limit: 10, status: "pending" });
    expect(others).toEqual([]);
    expect(pending).toMatchObject({
      taskId: "task-1",
      findingIds: ["f-1", "f-2"],
      rule: "ask",
      proposed: "revoke",
      expiresAtMs: clock + 60_000,
    });
    // nothing due before a decision
    expect((await r.approvalsDue()).revocations).toEqual([]);
    const id = pending?.id as string;
    expect(await approvals.decide(id, { decision: "approve", by: "alice", comment: "confirmed exfil" }, clock)).toMatchObject({ ok: true });
    expect(await approvals.decide(id, { decision: "reject", by: "bob" }, clock)).toMatchObject({ ok: false, reason: "already_decided" });
    const out = await r.approvalsDue();
    expect(out.revocations).toEqual([
      expect.objectContaining({ credentialId: "lease-a", trigger: "approval", decidedBy: "human:alice", status: "revoked" }),
    ]);
    expect((await ledger.forTask("task-1")).map((x) => x.decidedBy)).toEqual(["human:alice"]);
    expect(await tasks.revoked("task-1")).toBeDefined();
    // carried out once
    expect((await r.approvalsDue()).revocations).toEqual([]);
    expect(receiver.received).toHaveLength(1);
    expect((await approvals.get(id))?.status).toBe("approved");
  });

  it("ask a human: a rejection revokes nothing; no answer in time takes the rule's default", async () => {
    await bind(tasks, "task-1", ["lease-a"]);
    await bind(tasks, "task-2", ["lease-b"]);
    const { r, approvals } = setup({ rules: [{ id: "ask", action: "ask_human", approval: { timeoutMs: 60_000, onTimeout: "revoke" } }] });
    await r.respond(finding());
    await r.respond(finding({ id: "f-9", taskId: "task-2" }));
    const all = await approvals.list({ offset: 0, limit: 10 });
    const first = all.find((a) => a.taskId === "task-1");
    const second = all.find((a) => a.taskId === "task-2");
    expect(await approvals.decide(first?.id as string, { decision: "reject", by: "alice" }, clock)).toMatchObject({ ok: true });
    expect((await r.approvalsDue()).revocations).toEqual([]);
    expect(await tasks.revoked("task-1")).toBeUndefined();
    // a minute later: task-2's approval expired unanswered; the default revokes, and a late answer is refused
    clock += 60_000;
    const out = await r.approvalsDue();
    expect(out.revocations).toEqual([
      expect.objectContaining({ credentialId: "lease-b", trigger: "approval_timeout", decidedBy: "policy:ask", status: "revoked" }),
    ]);
    expect((await approvals.get(second?.id as string))?.status).toBe("expired");
    expect(await approvals.decide(second?.id as string, { decision: "approve", by: "late" }, clock)).toMatchObject({ ok: false });
    expect(revoked()).toEqual(["lease-b"]);
  });

  it("dry run: records what it would have done, calls no store, marks nothing", async () => {
    await bind(tasks, "task-1", ["lease-a", "lease-b"]);
    const { r, ledger, quarantine } = setup({ dryRun: true, rules: [{ id: "q", action: "quarantine" }] });
    const out = await r.respond(finding());
    expect(out.revocations.map((x) => [x.credentialId, x.status, x.attempts])).toEqual([
      ["lease-a", "dry_run", 0],
      ["lease-b", "dry_run", 0],
    ]);
    expect(out.revocations[0]?.detail).toMatch(/would have revoked lease-a at webhook \(policy:q\)/);
    expect(receiver.received).toHaveLength(0);
    expect(await tasks.revoked("task-1")).toBeUndefined();
    expect(await quarantine.get("billing-agent")).toBeUndefined();
    expect((await ledger.forTask("task-1")).map((x) => x.status)).toEqual(["dry_run", "dry_run"]);
    // a real response later still revokes (the dry run did not claim the credentials)
    const real = responder(
      store,
      tasks,
      new WebhookCredentialStore({ url: receiver.url, secret }, new WebhookClient({ timeoutMs: 5000, retries: 0 })),
      { now: () => clock },
    );
    expect((await real.respond(finding({ id: "f-2" }))).revocations.map((x) => x.status)).toEqual(["revoked", "revoked"]);
  });

  it("a credential whose reference names a store that is not configured is refused, dead-lettered and never sent", async () => {
    await bind(tasks, "task-1", ["vault:lease:aws/creds/deploy/abc"]);
    const { r } = setup({ rules: [] });
    const out = await r.respond(finding());
    expect(out.revocations[0]).toMatchObject({ status: "dead_lettered", attempts: 0, credentialStore: "none" });
    expect(out.revocations[0]?.detail).toMatch(/not configured \(set DRIFTWATCH_VAULT_ADDR\)/);
    expect(out.deadLetters).toHaveLength(1);
    expect(receiver.received).toHaveLength(0);
  });
});
