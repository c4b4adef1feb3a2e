import { afterEach, describe, expect, it } from "vitest";
import type { Bus, BusMessage, Subscription } from "../../services/runtime/bus/bus.js";
import { MemoryBus } from "../../services/runtime/bus/memory-bus.js";
import { isolation, kafkaBus } from "../support/ports.js";
import { eventually } from "../support/wait.js";

/** One contract, two adapters: the in-process bus must behave as Kafka does for the stages. */
const adapters: [string, () => Bus][] = [
  ["memory", () => new MemoryBus({ partitions: 3, retryDelayMs: 20 })],
  ["kafka", () => kafkaBus(3)],
];

describe.each(adapters)("Bus contract: %s", (_name, make) => {
  const open: { bus: Bus; subs: Subscription[] }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) {
      for (const s of o.subs) await s.close();
      await o.bus.close();
    }
  });
  const newBus = () => {
    const entry = { bus: make(), subs: [] as Subscription[] };
    open.push(entry);
    return entry;
  };

  it("delivers every keyed message once per group, in order per key", async () => {
    const iso = isolation("order");
    const { bus, subs } = newBus();
    const topic = `${iso.topicPrefix}in`;
    await bus.ensureTopics([topic]);
    const seen: BusMessage[] = [];
    subs.push(
      await bus.subscribe({ group: `${iso.groupPrefix}a`, topics: [topic], fromBeginning: true }, async (b) => void seen.push(...b)),
    );
    const keys = ["task-a", "task-b", "task-c", "task-d"];
    for (let i = 0; i < 200; i++) {
      const key = keys[i % keys.length] as string;
      await bus.publish(topic, [{ key, value: JSON.stringify({ key, seq: i }), headers: { "x-seq": String(i) } }]);
    }
    await eventually(() => (seen.length >= 200 ? true : undefined), 30_000, "200 messages");
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toHaveLength(200);
    for (const key of keys) {
      const seqs = seen.filter((m) => m.key === key).map((m) => JSON.parse(m.value.toString()).seq as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seen.filter((m) => m.key === key).map((m) => m.partition)).size).toBe(1);
    }
    expect(seen.find((m) => m.key === "task-a")?.headers["x-seq"]).toBe("0");
  });

  it("reports a group's lag per partition from its committed offsets: all of it before a commit, none once consumed", async () => {
    const iso = isolation("lag");
    const { bus, subs } = newBus();
    const topic = `${iso.topicPrefix}in`;
    const group = `${iso.groupPrefix}a`;
    await bus.ensureTopics([topic]);
    await bus.publish(
      topic,
      Array.from({ length: 12 }, (_, i) => ({ key: `task-${i}`, value: String(i) })),
    );
    const total = async () => (await bus.lag(group, [topic])).reduce((sum, p) => sum + p.lag, 0);
    const before = await bus.lag(group, [topic]);
    expect(before.map((p) => p.partition).sort()).toEqual([0, 1, 2]);
    expect(before.every((p) => p.topic === topic)).toBe(true);
    expect(await total()).toBe(12);

    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let handled = 0;
    subs.push(
      await bus.subscribe({ group, topics: [topic], fromBeginning: true }, async (batch) => {
        await gate;
        handled += batch.length;
      }),
    );
    // a consumer that holds its batches commits nothing: its lag stays
    await new Promise((r) => setTimeout(r, 300));
    expect(await total()).toBe(12);
    release();
    await eventually(async () => (handled === 12 && (await total()) === 0 ? true : undefined), 30_000, "lag 0");
    expect((await bus.lag(group, [topic])).every((p) => p.lag === 0)).toBe(true);
  });

  it("redelivers a batch whose handler failed, and commits nothing before it succeeds", async () => {
    const iso = isolation("retry");
    const { bus, subs } = newBus();
    const topic = `${iso.topicPrefix}in`;
    await bus.ensureTopics([topic]);
    let failures = 0;
    const delivered: string[] = [];
    subs.push(
      await bus.subscribe({ group: `${iso.groupPrefix}a`, topics: [topic], fromBeginning: true }, async (batch) => {
        if (failures < 2) {
          failures++;
          throw new Error("downstream unavailable");
        }
        delivered.push(...batch.map((m) => m.value.toString()));
      }),
    );
    await bus.publish(topic, [
      { key: "k", value: "m1" },
      { key: "k", value: "m2" },
    ]);
    await eventually(() => (delivered.includes("m2") ? true : undefined), 60_000, "redelivery");
    expect(failures).toBe(2);
    expect(delivered.filter((v) => v === "m1").length).toBeGreaterThanOrEqual(1);
  });

  it("a restarted consumer in the same group resumes after the committed offset", async () => {
    const iso = isolation("resume");
    const first = newBus();
    const topic = `${iso.topicPrefix}in`;
    await first.bus.ensureTopics([topic]);
    const before: string[] = [];
    const sub = await first.bus.subscribe({ group: `${iso.groupPrefix}a`, topics: [topic], fromBeginning: true }, async (b) => {
      before.push(...b.map((m) => m.value.toString()));
    });
    await first.bus.publish(
      topic,
      ["a", "b", "c"].map((v) => ({ key: "k", value: v })),
    );
    await eventually(() => (before.length === 3 ? true : undefined), 30_000, "first three");
    await sub.close();
    await first.bus.publish(
      topic,
      ["d", "e"].map((v) => ({ key: "k", value: v })),
    );
    const after: string[] = [];
    // Kafka: a new client, as a restarted process would be. Memory: the same bus, as the log lives there.
    const second = _name === "kafka" ? newBus() : first;
    second.subs.push(
      await second.bus.subscribe({ group: `${iso.groupPrefix}a`, topics: [topic], fromBeginning: true }, async (b) => {
        after.push(...b.map((m) => m.value.toString()));
      }),
    );
    await eventually(() => (after.length >= 2 ? true : undefined), 60_000, "the two new messages");
    await new Promise((r) => setTimeout(r, 300));
    expect(after).toEqual(["d", "e"]);
  });

  it("two consumers in one group share the partitions; each message is handled once", async () => {
    const iso = isolation("share");
    const a = newBus();
    const b = _name === "kafka" ? newBus() : a;
    const topic = `${iso.topicPrefix}in`;
    await a.bus.ensureTopics([topic]);
    const byA: string[] = [];
    const byB: string[] = [];
    a.subs.push(
      await a.bus.subscribe(
        { group: `${iso.groupPrefix}g`, topics: [topic], fromBeginning: true },
        async (m) => void byA.push(...m.map((x) => x.value.toString())),
      ),
    );
    b.subs.push(
      await b.bus.subscribe(
        { group: `${iso.groupPrefix}g`, topics: [topic], fromBeginning: true },
        async (m) => void byB.push(...m.map((x) => x.value.toString())),
      ),
    );
    // let the group settle on two members before producing
    await new Promise((r) => setTimeout(r, _name === "kafka" ? 3000 : 10));
    const values = Array.from({ length: 60 }, (_, i) => `v${i}`);
    await a.bus.publish(
      topic,
      values.map((v, i) => ({ key: `key-${i}`, value: v })),
    );
    await eventually(() => (byA.length + byB.length >= 60 ? true : undefined), 60_000, "60 messages across two consumers");
    await new Promise((r) => setTimeout(r, 300));
    expect([...byA, ...byB].sort()).toEqual([...values].sort());
    expect(byA.length).toBeGreaterThan(0);
    expect(byB.length).toBeGreaterThan(0);
  });
});
