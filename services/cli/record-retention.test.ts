import { describe, expect, it } from "vitest";
import type { Revocation } from "../../schemas/revocation.js";
import { aFinding } from "../../test/support/findings.js";
import { FindingLog, LifecycleLog } from "../console/read-model.js";
import { IncidentBook, incidentIdFor } from "../notifier/incident.js";
import { RevocationLedger } from "../revoker/ledger.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { Metrics } from "../runtime/telemetry.js";
import { RecordRetention } from "./record-retention.js";

function setup(limits = { findings: 20, incidents: 10, revocations: 10, lifecycleEvents: 10 }) {
  const inner = new MemoryStore();
  const metrics = new Metrics(false);
  const store = new RecordRetention(inner, limits, metrics);
  const keys = () => [...(inner as unknown as { entries: Map<string, unknown> }).entries.keys()];
  const evicted = async (kind: string) => (await metrics.storeEvictedRecords.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
  return { store, keys, evicted };
}

describe("RecordRetention: the embedded store's bound on findings, incidents and revocations", () => {
  it("keeps at most about the cap of findings: the oldest go, the newest stay readable", async () => {
    const { store, keys, evicted } = setup();
    const log = new FindingLog(store);
    for (let i = 0; i < 100; i++) await log.record(aFinding({ id: `f-${i}`, taskId: `t-${i}`, detectedAtMs: 1_000 + i }));
    await store.settled();
    const count = await log.count();
    expect(count).toBeGreaterThanOrEqual(20);
    expect(count).toBeLessThanOrEqual(21);
    expect(keys().filter((k) => k.startsWith("finding:")).length).toBe(count);
    expect((await log.list({ offset: 0, limit: 1 }))[0]?.id).toBe("f-99");
    expect(await log.forTask("t-0")).toEqual([]); // its task's list names a finding that is gone: skipped
    expect(await evicted("findings")).toBe(100 - count);
  });

  it("lets an incident go with every version of it", async () => {
    const { store, keys } = setup();
    let now = 1_000;
    const book = new IncidentBook(store, { now: () => now++ });
    for (let i = 0; i < 30; i++) {
      await book.addFindings(`t-${i}`, [aFinding({ id: `f-${i}-a`, taskId: `t-${i}` })]);
      await book.addFindings(`t-${i}`, [aFinding({ id: `f-${i}-b`, taskId: `t-${i}` })]); // version 2
    }
    await store.settled();
    const gone = incidentIdFor("t-0");
    expect(keys().filter((k) => k.includes(gone))).toEqual([]);
    expect(await book.forTask("t-0")).toBeUndefined();
    expect((await book.forTask("t-29"))?.version).toBe(2);
    expect(keys().filter((k) => k.startsWith("incident:{") && k.endsWith("}")).length).toBeLessThanOrEqual(10 * 1.05 + 1);
  });

  it("lets the oldest lifecycle events' id pointers go; the newest still resolve", async () => {
    const { store, keys, evicted } = setup();
    const log = new LifecycleLog(store);
    for (let i = 0; i < 40; i++)
      await log.record({
        id: `e-${i}`,
        taskId: `t-${i}`,
        trigger: "task_completed",
        atMs: 1_000 + i,
        detectedAtMs: 1_000 + i,
        detail: "completed",
      });
    await store.settled();
    const pointers = keys().filter((k) => k.startsWith("lifecycle-event:"));
    expect(pointers.length).toBeGreaterThanOrEqual(10);
    expect(pointers.length).toBeLessThanOrEqual(11);
    expect(await log.get("e-0")).toBeUndefined();
    expect((await log.get("e-39"))?.taskId).toBe("t-39");
    expect(await evicted("lifecycleEvents")).toBe(40 - pointers.length);
  });

  it("lets a revocation go with its history", async () => {
    const { store, keys } = setup();
    const ledger = new RevocationLedger(store);
    const revocation = (i: number) =>
      ({
        id: `r-${i}`,
        taskId: `t-${i}`,
        credentialId: `c-${i}`,
        status: "revoked",
        requestedAtMs: 1_000 + i,
        completedAtMs: 1_001 + i,
      }) as unknown as Revocation;
    for (let i = 0; i < 40; i++) await ledger.record(revocation(i));
    await store.settled();
    expect(keys().filter((k) => k.startsWith("revocation:{r-0}"))).toEqual([]);
    expect(await ledger.get("r-0")).toBeUndefined();
    expect((await ledger.get("r-39"))?.id).toBe("r-39");
    expect(keys().filter((k) => k.startsWith("revocation:{") && k.endsWith("}")).length).toBeLessThanOrEqual(11);
  });
});
