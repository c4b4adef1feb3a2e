import { beforeEach, describe, expect, it } from "vitest";
import { Incident, IncidentUpdate } from "../../schemas/incident.js";
import { finding, revocation, T0 } from "../../test/support/alerts.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import {
  emptyIncident,
  foldFindings,
  foldRevocation,
  INCIDENT_KEYS,
  IncidentBook,
  incidentIdFor,
  mostSevere,
  type Outbox,
  VERSIONS_KEPT,
} from "./incident.js";

class RecordingOutbox implements Outbox {
  readonly queued: IncidentUpdate[] = [];
  async enqueue(update: IncidentUpdate): Promise<void> {
    this.queued.push(update);
  }
}

describe("incident roll-up", () => {
  it("has one deterministic id per task", () => {
    expect(incidentIdFor("task-1")).toBe(incidentIdFor("task-1"));
    expect(incidentIdFor("task-1")).not.toBe(incidentIdFor("task-2"));
    expect(incidentIdFor("task-1")).toMatch(/^[0-9a-f]{32}$/);
  });

  it("rolls findings up: count, highest severity, first and last seen, rules, agents, tags, what they observed", () => {
    const i = foldFindings(
      emptyIncident("task-1", T0),
      [
        finding("a", { severity: "medium", spanEndMs: T0 + 300, confidence: 0.6 }),
        finding("b", {
          severity: "critical",
          ruleId: "flow.egress_after_confidential",
          kind: "flow",
          spanEndMs: T0 + 100,
          agentId: "mailer-agent",
          evidence: { observed: { destination: "evil.example", dataTouchedBefore: ["confidential"] }, expected: {} },
          tags: { owaspAgentic: ["ASI02", "ASI07"], maestro: [], nistAiRmf: ["MEASURE-2.7"] },
        }),
        finding("c", { severity: "low", spanEndMs: T0 + 200 }),
      ],
      T0 + 1000,
    );
    expect(Incident.parse(i)).toEqual(i);
    expect(i).toMatchObject({
      id: incidentIdFor("task-1"),
      taskId: "task-1",
      status: "open",
      findingCount: 3,
      severity: "critical",
      firstSeenMs: T0 + 100,
      lastSeenMs: T0 + 300,
      maxConfidence: 0.95,
      agents: ["billing-agent", "mailer-agent"],
      observed: { tools: ["shell.exec"], destinations: ["evil.example"] },
      updatedAtMs: T0 + 1000,
      createdAtMs: T0,
    });
    // rules by severity, with counts
    expect(i.rules).toEqual([
      { ruleId: "flow.egress_after_confidential", kind: "flow", severity: "critical", count: 1 },
      { ruleId: "scope.tool", kind: "out_of_scope", severity: "medium", count: 2 },
    ]);
    expect(i.tags).toEqual({ owaspAgentic: ["ASI02", "ASI07"], maestro: ["L3"], nistAiRmf: ["MANAGE-2.4", "MEASURE-2.7"] });
    // evidence: most severe first
    expect(i.evidence.map((e) => e.findingId)).toEqual(["b", "a", "c"]);
    expect(i.evidence[0]).toMatchObject({ observed: { destination: "evil.example" }, ruleId: "flow.egress_after_confidential" });
    expect(i.title).toBe("Agent drift: billing-agent and mailer-agent in task task-1");
  });

  it("keeps the 20 most severe, newest pieces of evidence", () => {
    const many = Array.from({ length: 30 }, (_, n) => finding(`f${n}`, { severity: n === 3 ? "critical" : "low", detectedAtMs: T0 + n }));
    const i = foldFindings(emptyIncident("task-1", T0), many, T0);
    expect(i.findingCount).toBe(30);
    expect(i.evidence).toHaveLength(20);
    expect(i.evidence[0]?.findingId).toBe("f3");
    expect(i.evidence[1]?.findingId).toBe("f29");
    expect(i.rules).toEqual([{ ruleId: "scope.tool", kind: "out_of_scope", severity: "critical", count: 30 }]);
  });

  it("picks the most severe finding, the newest among equals", () => {
    expect(mostSevere([finding("a"), finding("b", { detectedAtMs: T0 + 50 }), finding("c", { severity: "low" })])?.id).toBe("b");
    expect(mostSevere([])).toBeUndefined();
  });

  describe("revocations", () => {
    const base = () => foldFindings(emptyIncident("task-1", T0), [finding("f1")], T0);

    it("notes a revoked credential without raising an alert", () => {
      const fold = foldRevocation(base(), revocation(), T0 + 30);
      expect(fold?.alert).toBeUndefined();
      expect(fold?.incident.revocations).toEqual([
        expect.objectContaining({ credentialId: "vault:lease:db/creds/billing/abc", status: "revoked", attempts: 1 }),
      ]);
      // the same outcome again changes nothing
      expect(foldRevocation(fold?.incident as Incident, revocation(), T0 + 40)).toBeUndefined();
    });

    it("a failed revocation raises the incident to at least high, once; further failed rounds are quiet", () => {
      const low = foldFindings(emptyIncident("task-1", T0), [finding("f1", { severity: "low" })], T0);
      const failed = foldRevocation(low, revocation({ status: "failed", detail: "HTTP 503", attempts: 4, retryAtMs: T0 + 999 }), T0 + 30);
      expect(failed?.alert).toMatchObject({ kind: "revocation_failed", credentialId: "vault:lease:db/creds/billing/abc" });
      expect(failed?.alert?.message).toMatch(/could not be revoked yet: HTTP 503/);
      expect(failed?.incident.severity).toBe("high");
      expect(failed?.incident.title).toMatch(/\(credential not revoked\)$/);
      const again = foldRevocation(
        failed?.incident as Incident,
        revocation({ status: "failed", detail: "HTTP 503", attempts: 8, completedAtMs: T0 + 60 }),
        T0 + 60,
      );
      expect(again?.alert).toBeUndefined();
      expect(again?.incident.revocations[0]?.attempts).toBe(8);
    });

    it("a dead-lettered revocation makes it critical: credential X could not be revoked", () => {
      const fold = foldRevocation(base(), revocation({ status: "dead_lettered", detail: "HTTP 500 (gave up: 30 attempts)" }), T0 + 30);
      expect(fold?.alert?.kind).toBe("revocation_dead_lettered");
      expect(fold?.alert?.message).toBe(
        "credential vault:lease:db/creds/billing/abc (vault) could not be revoked: HTTP 500 (gave up: 30 attempts); revoke it by hand",
      );
      expect(fold?.incident.severity).toBe("critical");
    });

    it("a credential revoked after failing says so; an older outcome replayed after a newer is ignored", () => {
      const failed = foldRevocation(base(), revocation({ status: "failed", attempts: 4, completedAtMs: T0 + 20 }), T0 + 20)
        ?.incident as Incident;
      const recovered = foldRevocation(failed, revocation({ status: "revoked", attempts: 5, completedAtMs: T0 + 80 }), T0 + 80);
      expect(recovered?.alert).toMatchObject({ kind: "revocation_recovered", message: expect.stringMatching(/revoked after 5 attempt/) });
      expect(recovered?.incident.title).not.toMatch(/not revoked/);
      expect(
        foldRevocation(recovered?.incident as Incident, revocation({ status: "failed", attempts: 4, completedAtMs: T0 + 20 }), T0 + 90),
      ).toBeUndefined();
    });
  });
});

describe("IncidentBook", () => {
  let store: MemoryStore;
  let outbox: RecordingOutbox;
  let now: number;
  let book: IncidentBook;

  beforeEach(() => {
    store = new MemoryStore();
    outbox = new RecordingOutbox();
    now = T0 + 1000;
    book = new IncidentBook(store, { outbox, now: () => now });
  });

  it("makes version 1 of a task's incident, then a new version for each change, queued before it is written", async () => {
    const v1 = await book.addFindings("task-1", [finding("a"), finding("b", { severity: "critical" })]);
    expect(IncidentUpdate.parse(v1)).toEqual(v1);
    expect(v1?.incident).toMatchObject({ version: 1, findingCount: 2, severity: "critical" });
    expect(v1?.findings.map((f) => f.id)).toEqual(["a", "b"]);
    expect(v1?.finding?.id).toBe("b");
    expect(v1?.change).toEqual({
      cause: "findings",
      summary: expect.stringMatching(/^2 new findings \(scope.tool\); most severe: \[critical]/),
    });
    now += 10;
    const v2 = await book.addFindings("task-1", [finding("c", { severity: "low" })]);
    expect(v2?.incident).toMatchObject({ version: 2, findingCount: 3, severity: "critical" });
    expect(v2?.finding?.id).toBe("c");
    expect(outbox.queued.map((u) => u.incident.version)).toEqual([1, 2]);
    expect(await book.forTask("task-1")).toEqual(v2?.incident);
    expect(await book.version(incidentIdFor("task-1"), 1)).toEqual(v1);
    expect((await book.list({ offset: 0, limit: 10 })).map((i) => i.id)).toEqual([incidentIdFor("task-1")]);
  });

  it("keeps the newest VERSIONS_KEPT versions of a task that keeps drifting; the incident itself counts everything", async () => {
    const total = VERSIONS_KEPT + 30;
    for (let n = 0; n < total; n++) {
      now += 10;
      await book.addFindings("task-busy", [finding(`busy-${n}`)]);
    }
    const id = incidentIdFor("task-busy");
    expect((await book.forTask("task-busy"))?.findingCount).toBe(total);
    expect(await book.version(id, total - VERSIONS_KEPT)).toBeUndefined();
    expect((await book.version(id, total - VERSIONS_KEPT + 1))?.incident.version).toBe(total - VERSIONS_KEPT + 1);
    expect((await book.version(id, total))?.incident.version).toBe(total);
  });

  it("a redelivered finding changes nothing and makes no version; a batch with one new finding makes one", async () => {
    await book.addFindings("task-1", [finding("a")]);
    expect(await book.addFindings("task-1", [finding("a")])).toBeUndefined();
    expect(await book.addFindings("task-1", [finding("a"), finding("a")])).toBeUndefined();
    const v2 = await book.addFindings("task-1", [finding("a"), finding("b"), finding("b")]);
    expect(v2?.incident).toMatchObject({ version: 2, findingCount: 2 });
    expect(v2?.findings.map((f) => f.id)).toEqual(["b"]);
    expect(outbox.queued).toHaveLength(2);
  });

  it("a finding whose update never finished is not taken as seen", async () => {
    await book.addFindings("task-1", [finding("a")]);
    const id = incidentIdFor("task-1");
    // an update of version 2 wrote its marks, then died before writing the incident
    await store.hashSet(INCIDENT_KEYS.findings(id), { b: "2" });
    // version 2 then went to something else (a revocation alert), which does not hold "b"
    await book.addRevocation(revocation({ status: "dead_lettered", detail: "gave up" }));
    expect((await book.get(id))?.version).toBe(2);
    const v3 = await book.addFindings("task-1", [finding("b")]);
    expect(v3?.incident).toMatchObject({ version: 3, findingCount: 2 });
    expect(await book.addFindings("task-1", [finding("b")])).toBeUndefined();
  });

  it("notes revocations; only those the SOC must act on make a version", async () => {
    await book.addFindings("task-1", [finding("f1")]);
    expect(await book.addRevocation(revocation())).toBeUndefined();
    expect((await book.forTask("task-1"))?.revocations.map((r) => r.status)).toEqual(["revoked"]);
    expect((await book.forTask("task-1"))?.version).toBe(1);
    const dead = await book.addRevocation(
      revocation({
        id: "rev-2",
        credentialId: "caep:session:42",
        credentialStore: "caep",
        status: "dead_lettered",
        detail: "HTTP 500 (gave up: 30 attempts)",
      }),
    );
    expect(dead?.incident).toMatchObject({ version: 2, severity: "critical" });
    expect(dead?.change).toEqual({
      cause: "revocation",
      summary: expect.stringMatching(/^credential caep:session:42 \(caep\) could not be revoked/),
    });
    expect(dead?.revocation?.id).toBe("rev-2");
    expect(dead?.findings).toEqual([]);
    expect(
      await book.addRevocation(
        revocation({
          id: "rev-2",
          credentialId: "caep:session:42",
          credentialStore: "caep",
          status: "dead_lettered",
          detail: "HTTP 500 (gave up: 30 attempts)",
        }),
      ),
    ).toBeUndefined();
    expect(outbox.queued.map((u) => u.incident.version)).toEqual([1, 2]);
  });

  it("a revocation that arrives before its finding waits in the incident (version 0) and goes out with it", async () => {
    expect(await book.addRevocation(revocation())).toBeUndefined();
    expect((await book.forTask("task-1"))?.version).toBe(0);
    const v1 = await book.addFindings("task-1", [finding("f1")]);
    expect(v1?.incident).toMatchObject({ version: 1, findingCount: 1 });
    expect(v1?.incident.revocations.map((r) => r.status)).toEqual(["revoked"]);
  });

  it("a credential that ended with its task, on a task with nothing to report, makes no incident; one that could not be revoked does", async () => {
    for (const trigger of ["task_completed", "task_idle"] as const) {
      expect(await book.addRevocation(revocation({ taskId: `quiet-${trigger}`, trigger }))).toBeUndefined();
      expect(await book.forTask(`quiet-${trigger}`)).toBeUndefined();
    }
    const failed = await book.addRevocation(
      revocation({ taskId: "stuck", trigger: "task_completed", status: "failed", detail: "503", attempts: 2 }),
    );
    expect(failed?.incident).toMatchObject({ version: 1, taskId: "stuck", severity: "high" });
    // on a task with an incident, a task-end revocation is noted in it like any other
    await book.addFindings("task-1", [finding("f1")]);
    await book.addRevocation(revocation({ trigger: "task_completed" }));
    expect((await book.forTask("task-1"))?.revocations.map((r) => r.status)).toEqual(["revoked"]);
  });

  it("a credential that could not be revoked opens an incident of its own when no finding came yet", async () => {
    const v1 = await book.addRevocation(revocation({ status: "failed", detail: "connection refused", attempts: 4 }));
    expect(v1?.incident).toMatchObject({ version: 1, findingCount: 0, severity: "high" });
    expect(v1?.incident.title).toBe("Credential of task task-1 could not be revoked");
  });

  it("two notifiers on one store, updating one incident at once, number its versions without gaps or repeats", async () => {
    const other = new IncidentBook(store, { outbox, now: () => now });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, n) => (n % 2 ? book : other).addFindings("task-1", [finding(`f${n}`), finding("shared")])),
    );
    const versions = results.map((r) => r?.incident.version).filter((v) => v !== undefined);
    expect(versions.sort((a, b) => (a as number) - (b as number))).toEqual(Array.from({ length: 20 }, (_, n) => n + 1));
    const final = await book.forTask("task-1");
    expect(final).toMatchObject({ version: 20, findingCount: 21 });
    expect(results.flatMap((r) => r?.findings.map((f) => f.id) ?? []).filter((id) => id === "shared")).toHaveLength(1);
  });

  it("waits for another notifier's lock, and gives up (to be retried) when it is held too long", async () => {
    const id = incidentIdFor("task-1");
    await store.set(INCIDENT_KEYS.lock(id), "someone-else", { ttlMs: 60_000 });
    const impatient = new IncidentBook(store, { outbox, now: () => now, lockWaitMs: 50 });
    await expect(impatient.addFindings("task-1", [finding("a")])).rejects.toThrow(/being updated by another notifier/);
    await store.delete(INCIDENT_KEYS.lock(id));
    expect((await impatient.addFindings("task-1", [finding("a")]))?.incident.version).toBe(1);
  });
});
