import { describe, expect, it } from "vitest";
import { z } from "zod";
import { eventually } from "../../test/support/wait.js";
import type { BusMessage } from "./bus/bus.js";
import { MemoryBus } from "./bus/memory-bus.js";
import { decodeMessage } from "./decode.js";
import { createLogger } from "./logging.js";
import { BadInput, type Emit, packRecords, runStage } from "./stage.js";
import { Metrics } from "./telemetry.js";

const emit = (topic: string, key: string | null, value: string, headers?: Record<string, string>): Emit => ({
  topic,
  message: { key, value, ...(headers ? { headers } : {}) },
});

describe("packRecords", () => {
  it("packs one topic's records per key into a JSON array, in order, leaving others alone", () => {
    const out = packRecords([
      emit("a", "t1", '{"n":1}'),
      emit("a", "t2", '{"n":2}'),
      emit("a", "t1", '{"n":3}'),
      emit("b", "t1", '{"n":4}'),
      emit("a", "t1", '{"n":5}', { "driftwatch-reason": "x" }),
      emit("a", null, '{"n":6}'),
    ]);
    const byTopicKey = out.map((e) => [e.topic, e.message.key, String(e.message.value)]);
    expect(byTopicKey).toContainEqual(["a", "t1", '[{"n":1},{"n":3}]']);
    expect(byTopicKey).toContainEqual(["a", "t2", '{"n":2}']);
    expect(byTopicKey).toContainEqual(["b", "t1", '{"n":4}']);
    expect(byTopicKey).toContainEqual(["a", "t1", '{"n":5}']);
    expect(byTopicKey).toContainEqual(["a", null, '{"n":6}']);
    expect(out).toHaveLength(5);
  });

  it("starts a new pack before one grows past 512 KiB", () => {
    const big = `{"pad":"${"x".repeat(200 * 1024)}"}`;
    const out = packRecords([emit("a", "k", big), emit("a", "k", big), emit("a", "k", big)]);
    expect(out).toHaveLength(2);
    expect(JSON.parse(String(out[0]?.message.value))).toHaveLength(2);
    expect(JSON.parse(String(out[1]?.message.value))).toEqual({ pad: "x".repeat(200 * 1024) });
  });
});

describe("decodeMessage", () => {
  const Rec = z.object({ n: z.number() });
  const msg = (value: string): BusMessage => ({
    topic: "t",
    partition: 0,
    offset: "0",
    key: "k",
    value: Buffer.from(value),
    headers: {},
    timestampMs: 0,
  });

  it("reads one record or a pack of them", () => {
    expect(decodeMessage(Rec, msg('{"n":1}'), "a record")).toEqual({ n: 1 });
    expect(decodeMessage(Rec, msg('[{"n":1},{"n":2}]'), "a record")).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it("rejects a pack with any bad record, naming its position, and an empty pack", () => {
    expect(() => decodeMessage(Rec, msg('[{"n":1},{"n":"x"}]'), "a record")).toThrow(/\[1\]\.n/);
    expect(() => decodeMessage(Rec, msg("[]"), "a record")).toThrow(BadInput);
  });
});

describe("runStage with packing", () => {
  it("a downstream stage sees every packed record, in order per key", async () => {
    const bus = new MemoryBus({ partitions: 2 });
    const rt = {
      bus,
      logger: createLogger("silent"),
      metrics: new Metrics(false),
      topicPrefix: "",
      groupPrefix: "g.",
      packRecords: true,
      healthy: async () => true,
    };
    const Rec = z.object({ key: z.string(), n: z.number() });
    // stage 1 fans each input out into three records of its key
    const s1 = await runStage(
      {
        name: "fan",
        input: "in",
        parse: (m) => JSON.parse(m.value.toString()) as { key: string },
        handle: async (items) =>
          items.flatMap(({ value }) => [0, 1, 2].map((n) => emit("mid", value.key, JSON.stringify({ key: value.key, n })))),
      },
      rt,
    );
    const packedValues: string[] = [];
    const seen: { key: string; n: number }[] = [];
    const s2 = await runStage(
      {
        name: "sink",
        input: "mid",
        parse: (m) => {
          packedValues.push(m.value.toString());
          return decodeMessage(Rec, m, "a record");
        },
        handle: async (items) => {
          seen.push(...items.map((i) => i.value));
          return [];
        },
      },
      rt,
    );
    await bus.publish("in", [
      { key: "a", value: '{"key":"a"}' },
      { key: "b", value: '{"key":"b"}' },
    ]);
    await eventually(() => (seen.length === 6 ? true : undefined), 5_000, "six records");
    expect(packedValues.some((v) => v.startsWith("["))).toBe(true);
    for (const k of ["a", "b"]) expect(seen.filter((r) => r.key === k).map((r) => r.n)).toEqual([0, 1, 2]);
    await s1.close();
    await s2.close();
    await bus.close();
  });
});
