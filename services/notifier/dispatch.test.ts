import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeadLetter } from "../../schemas/deadletter.js";
import type { Severity } from "../../schemas/finding.js";
import type { IncidentUpdate } from "../../schemas/incident.js";
import { finding, T0 } from "../../test/support/alerts.js";
import { createLogger } from "../runtime/logging.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { AlertDispatcher, type DispatcherOptions } from "./dispatch.js";
import { INCIDENT_KEYS, IncidentBook, incidentIdFor } from "./incident.js";
import { NotifierMetrics } from "./metrics.js";
import type { AlertOutput, SendResult } from "./outputs/output.js";

const logger = createLogger("silent");
type Step = "ok" | "fail" | "refuse" | "throw" | "circuit";

/** A sink that records what it was sent and answers as scripted (per call, or per version). */
class FakeOutput implements AlertOutput {
  /** Every call: incident version and what it answered. */
  readonly calls: { incident: string; version: number; result: Step }[] = [];
  readonly script: Step[] = [];
  byVersion: (version: number) => Step | undefined = () => undefined;
  /** When set, each send waits for it. */
  gate: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly minSeverity: Severity = "info",
  ) {}

  async send(update: IncidentUpdate): Promise<SendResult> {
    if (this.gate) await this.gate;
    const result = this.byVersion(update.incident.version) ?? this.script.shift() ?? "ok";
    this.calls.push({ incident: update.incident.id, version: update.incident.version, result });
    if (result === "throw") throw new Error("socket hang up");
    if (result === "fail") return { ok: false, detail: "HTTP 503" };
    if (result === "refuse") return { ok: false, detail: "HTTP 400", permanent: true };
    if (result === "circuit") return { ok: false, detail: "circuit open for sink", notSent: true };
    return { ok: true, detail: "HTTP 200" };
  }

  /** Versions it took. */
  delivered(): number[] {
    return this.calls.filter((c) => c.result === "ok").map((c) => c.version);
  }
}

describe("AlertDispatcher", () => {
  let store: MemoryStore;
  let now: number;
  let letters: DeadLetter[];
  let metrics: NotifierMetrics;
  const made: AlertDispatcher[] = [];

  beforeEach(() => {
    store = new MemoryStore();
    now = T0;
    letters = [];
    metrics = new NotifierMetrics(new Registry());
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((d) => d.close()));
  });

  /** A dispatcher and the incident book that queues into it, on the shared store and clock. */
  function notifier(outputs: AlertOutput[], over: Partial<DispatcherOptions> = {}) {
    const dispatcher = new AlertDispatcher({
      store,
      outputs,
      logger,
      metrics,
      onDeadLetter: async (l) => {
        letters.push(...l);
      },
      rounds: 5,
      retryBaseMs: 100,
      retryMaxMs: 1000,
      leaseMs: 10_000,
      now: () => now,
      random: () => 1, // the longest backoff: round n waits base·2^(n-1)
      ...over,
    });
    made.push(dispatcher);
    const book = new IncidentBook(store, { outbox: dispatcher, now: () => now });
    const add = async (taskId: string, ...ids: [string, Severity?][]) => {
      const u = await book.addFindings(
        taskId,
        ids.map(([id, severity]) => finding(id, { taskId, ...(severity ? { severity } : {}) })),
      );
      if (u) dispatcher.kick(u.incident.id);
      return u;
    };
    return { dispatcher, book, add };
  }

  const count = async (result: string, sink: string) =>
    (await metrics.alerts.get()).values.find((v) => v.labels.result === result && v.labels.sink === sink)?.value ?? 0;
  const outbox = () => store.sortedRange(INCIDENT_KEYS.outbox, { offset: 0, limit: 1000 });

  it("delivers every version to every sink once, in order, and empties the outbox", async () => {
    const a = new FakeOutput("a");
    const b = new FakeOutput("b");
    const { dispatcher, add } = notifier([a, b]);
    await add("task-1", ["f1"]);
    await add("task-1", ["f2"]);
    await add("task-1", ["f3"]);
    await dispatcher.idle();
    expect(a.delivered()).toEqual([1, 2, 3]);
    expect(b.delivered()).toEqual([1, 2, 3]);
    expect(await outbox()).toEqual([]);
    expect(await store.hashGetAll(INCIDENT_KEYS.delivered(incidentIdFor("task-1")))).toEqual({ a: "3", b: "3" });
    expect(await count("delivered", "a")).toBe(3);
  });

  it("sends a sink only the versions at or above its minimum severity", async () => {
    const all = new FakeOutput("all");
    const high = new FakeOutput("high", "high");
    const { dispatcher, add } = notifier([all, high]);
    await add("task-1", ["f1", "medium"]);
    await add("task-1", ["f2", "high"]);
    await add("task-1", ["f3", "low"]); // the incident stays high
    await add("task-2", ["g1", "low"]);
    await dispatcher.idle();
    expect(all.calls.map((c) => c.version)).toEqual([1, 2, 3, 1]);
    expect(high.calls.map((c) => [c.incident, c.version])).toEqual([
      [incidentIdFor("task-1"), 2],
      [incidentIdFor("task-1"), 3],
    ]);
    expect(await outbox()).toEqual([]);
  });

  it("a slow sink holds up neither the caller nor the other sinks", async () => {
    const slow = new FakeOutput("slow");
    const fast = new FakeOutput("fast");
    let release: () => void = () => undefined;
    slow.gate = new Promise((r) => {
      release = r;
    });
    const { dispatcher, add } = notifier([slow, fast]);
    await add("task-1", ["f1"]); // returns with the version queued, not sent
    await add("task-2", ["g1"]);
    await new Promise((r) => setTimeout(r, 20));
    expect(fast.delivered()).toEqual([1, 1]);
    expect(slow.calls).toEqual([]);
    release();
    await dispatcher.idle();
    expect(slow.delivered()).toEqual([1, 1]);
  });

  it("retries a failed version in rounds, later and later; the next version waits behind it; nothing goes twice", async () => {
    const sink = new FakeOutput("sink");
    sink.script.push("fail", "fail");
    const { dispatcher, add } = notifier([sink]);
    const id = incidentIdFor("task-1");
    await add("task-1", ["f1"]);
    await dispatcher.idle();
    expect(sink.calls.map((c) => [c.version, c.result])).toEqual([[1, "fail"]]);
    expect(JSON.parse((await store.hashGet(INCIDENT_KEYS.retry(id), ["sink"]))[0] ?? "")).toEqual({ round: 1, atMs: T0 + 100 });
    // a new version while backing off waits with it
    await add("task-1", ["f2"]);
    await dispatcher.idle();
    expect(sink.calls).toHaveLength(1);
    expect(await store.sortedRangeByScore(INCIDENT_KEYS.outbox, { min: 0, max: Number.POSITIVE_INFINITY, offset: 0, limit: 10 })).toEqual([
      { member: `sink ${id} 1`, score: T0 + 100 },
      { member: `sink ${id} 2`, score: T0 + 100 },
    ]);
    // not due yet
    now = T0 + 99;
    expect(await dispatcher.retryDue()).toBe(0);
    now = T0 + 100;
    expect(await dispatcher.retryDue()).toBe(1);
    await dispatcher.idle();
    // round 2 failed: twice the wait
    expect(JSON.parse((await store.hashGet(INCIDENT_KEYS.retry(id), ["sink"]))[0] ?? "")).toEqual({ round: 2, atMs: T0 + 300 });
    now = T0 + 300;
    await dispatcher.retryDue();
    await dispatcher.idle();
    expect(sink.calls.map((c) => [c.version, c.result])).toEqual([
      [1, "fail"],
      [1, "fail"],
      [1, "ok"],
      [2, "ok"],
    ]);
    expect(await outbox()).toEqual([]);
    expect(JSON.parse((await store.hashGet(INCIDENT_KEYS.retry(id), ["sink"]))[0] ?? "")).toEqual({ round: 0, atMs: 0 });
    expect(await count("failed", "sink")).toBe(2);
    expect(await count("delivered", "sink")).toBe(2);
  });

  it("dead-letters a version after its last round, counts it, and goes on with the next", async () => {
    const sink = new FakeOutput("sink");
    sink.byVersion = (v) => (v === 1 ? "fail" : undefined);
    const { dispatcher, add } = notifier([sink], { rounds: 3 });
    const first = await add("task-1", ["f1"]);
    await add("task-1", ["f2"]);
    for (let round = 0; round < 5; round++) {
      await dispatcher.idle();
      now += 10_000;
      await dispatcher.retryDue();
    }
    await dispatcher.idle();
    expect(sink.calls.map((c) => [c.version, c.result])).toEqual([
      [1, "fail"],
      [1, "fail"],
      [1, "fail"],
      [2, "ok"],
    ]);
    expect(letters).toHaveLength(1);
    const letter = letters[0] as DeadLetter;
    expect(letter).toMatchObject({ stage: "notifier", source: { topic: "", partition: -1, offset: "-1" } });
    expect(letter.reason).toBe(
      `incident ${first?.incident.id} version 1 (task task-1) was not delivered to sink: HTTP 503 (gave up: 3 rounds)`,
    );
    expect(letter.record).toEqual({
      sink: "sink",
      incidentId: first?.incident.id,
      version: 1,
      update: first,
    });
    expect(await count("dead_lettered", "sink")).toBe(1);
    expect(await outbox()).toEqual([]);
  });

  it("does not count a round the open circuit refused (nothing went out)", async () => {
    const sink = new FakeOutput("sink");
    sink.script.push("circuit", "circuit", "circuit", "fail", "circuit", "fail");
    const { dispatcher, add } = notifier([sink], { rounds: 2 });
    await add("task-1", ["f1"]);
    for (let n = 0; n < 8; n++) {
      await dispatcher.idle();
      now += 10_000;
      await dispatcher.retryDue();
    }
    await dispatcher.idle();
    // two real failures make the two rounds; the circuit's refusals in between did not count
    expect(sink.calls.map((c) => c.result)).toEqual(["circuit", "circuit", "circuit", "fail", "circuit", "fail"]);
    expect(letters.map((l) => l.reason)).toEqual([expect.stringMatching(/gave up: 2 rounds\)$/)]);
  });

  it("dead-letters a version the sink refuses at once; a throw is a failure to retry", async () => {
    const sink = new FakeOutput("sink");
    sink.script.push("refuse", "throw");
    const { dispatcher, add } = notifier([sink]);
    await add("task-1", ["f1"]);
    await add("task-1", ["f2"]);
    await dispatcher.idle();
    expect(letters.map((l) => l.reason)).toEqual([expect.stringMatching(/version 1 .*: HTTP 400 \(gave up: the sink refused it\)$/)]);
    expect(sink.calls.map((c) => [c.version, c.result])).toEqual([
      [1, "refuse"],
      [2, "throw"],
    ]);
    now += 100;
    await dispatcher.retryDue();
    await dispatcher.idle();
    expect(sink.delivered()).toEqual([2]);
  });

  it("a notifier's sweep takes up a version another left queued (it stopped before sending)", async () => {
    const sink = new FakeOutput("sink");
    const gone = notifier([new FakeOutput("sink")]);
    // queued and written, never kicked: as if the process died right after the batch
    await gone.book.addFindings("task-1", [finding("f1")]);
    const { dispatcher } = notifier([sink]);
    expect(await dispatcher.retryDue()).toBe(0); // its lease has not run out
    now += 10_000;
    expect(await dispatcher.retryDue()).toBe(1);
    await dispatcher.idle();
    expect(sink.delivered()).toEqual([1]);
    expect(await outbox()).toEqual([]);
  });

  it("two notifiers on one store, kicking and sweeping at once, send each version once", async () => {
    const sent: number[] = [];
    const record = (name: string) => {
      const o = new FakeOutput(name);
      const send = o.send.bind(o);
      o.send = async (u) => {
        const r = await send(u);
        if (r.ok) sent.push(u.incident.version);
        return r;
      };
      return o;
    };
    const one = notifier([record("sink")]);
    const two = notifier([record("sink")]);
    for (let n = 1; n <= 10; n++) {
      const u = await (n % 2 ? one : two).add("task-1", [`f${n}`]);
      if (u) {
        one.dispatcher.kick(u.incident.id);
        two.dispatcher.kick(u.incident.id);
      }
    }
    now += 10_000;
    await Promise.all([one.dispatcher.retryDue(), two.dispatcher.retryDue()]);
    await Promise.all([one.dispatcher.idle(), two.dispatcher.idle()]);
    expect(sent.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("does not send again a version whose outbox entry outlived its delivery; drops entries for sinks it does not have and for expired incidents", async () => {
    const sink = new FakeOutput("sink");
    const { dispatcher, add } = notifier([sink]);
    const u = await add("task-1", ["f1"]);
    await dispatcher.idle();
    const id = u?.incident.id as string;
    await store.sortedAdd(INCIDENT_KEYS.outbox, [
      { score: T0, member: `sink ${id} 1` },
      { score: T0, member: `retired ${id} 1` },
      { score: T0, member: `sink ${incidentIdFor("expired-task")} 1` },
    ]);
    now += 1;
    expect(await dispatcher.retryDue()).toBe(0);
    await dispatcher.idle();
    expect(sink.calls).toHaveLength(1);
    expect(await outbox()).toEqual([]);
  });

  it("wants distinct sink names", () => {
    expect(() => notifier([new FakeOutput("x"), new FakeOutput("x")])).toThrow(/distinct names/);
  });
});
