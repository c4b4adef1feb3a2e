import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { DeadLetter } from "../../schemas/deadletter.js";
import { collectTopic } from "../../test/support/collect.js";
import { eventually } from "../../test/support/wait.js";
import type { BusMessage, Subscription } from "./bus/bus.js";
import { MemoryBus } from "./bus/memory-bus.js";
import { createLogger } from "./logging.js";
import { BadInput, type Emit, runStage, type StageLogic, Unavailable } from "./stage.js";
import { Metrics } from "./telemetry.js";

const PREFIX = "t.";
const INPUT = `${PREFIX}in`;
const OUTPUT = `${PREFIX}out`;
const DEADLETTER = `${PREFIX}agent.deadletter`;

interface Item {
  n: number;
  poison?: boolean;
}

const open: { bus: MemoryBus; subs: Subscription[] }[] = [];
afterEach(async () => {
  for (const { bus, subs } of open.splice(0)) {
    for (const s of subs) await s.close();
    await bus.close();
  }
});

function setup() {
  const bus = new MemoryBus({ partitions: 1, retryDelayMs: 10 });
  const entry = { bus, subs: [] as Subscription[] };
  open.push(entry);
  const collect = (topic: string) => collectTopic(bus, topic, entry.subs);
  const metrics = new Metrics(false);
  const start = async (logic: StageLogic<Item>, healthy: () => Promise<boolean> = async () => true) => {
    entry.subs.push(
      await runStage(logic, { bus, logger: createLogger("silent"), metrics, topicPrefix: PREFIX, groupPrefix: "test.", healthy }),
    );
  };
  return { bus, collect, metrics, start };
}

/** A stage that parses `{"n": ...}` and emits `n * 10`; BadInput for anything else. */
function logic(handle: (items: { message: BusMessage; value: Item }[], reject: (m: BusMessage, r: string) => void) => Promise<Emit[]>) {
  return {
    name: "tester",
    input: INPUT,
    parse(message: BusMessage): Item {
      const text = message.value.toString("utf8");
      if (text === "boom") throw new Error("parser blew up");
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        // the letter may keep the start of what did not parse (a real stage cuts it before anything secret)
        throw new BadInput("not JSON", { prefix: message.value });
      }
      if (typeof (doc as Item).n !== "number") throw new BadInput("no n");
      return doc as Item;
    },
    handle,
  } satisfies StageLogic<Item>;
}

const times10 = (items: { value: Item }[]): Emit[] =>
  items.map(({ value }) => ({ topic: OUTPUT, message: { key: "k", value: JSON.stringify({ n: value.n * 10 }) } }));

const numbers = (messages: BusMessage[]) => messages.map((m) => (JSON.parse(m.value.toString()) as Item).n);
const letters = (messages: BusMessage[]) => messages.map((m) => DeadLetter.parse(JSON.parse(m.value.toString())));

async function counterValue(metrics: Metrics, name: "deadLetters" | "messagesIn"): Promise<number> {
  const m = await metrics[name].get();
  return m.values.reduce((sum, v) => sum + v.value, 0);
}

describe("runStage", () => {
  it("sets bad input aside on the dead-letter topic with its reason and source, and goes on", async () => {
    const { bus, collect, metrics, start } = setup();
    const out = await collect(OUTPUT);
    const dead = await collect(DEADLETTER);
    await bus.publish(INPUT, [
      { key: "k", value: JSON.stringify({ n: 1 }) },
      { key: "k", value: "{not json" },
      { key: "k", value: JSON.stringify({ m: 2 }) },
      { key: "k", value: "boom" },
      { key: "k", value: JSON.stringify({ n: 3 }) },
    ]);
    await start(logic(async (items) => times10(items)));
    await eventually(() => (out.length === 2 && dead.length === 3 ? true : undefined), 5000, "outputs and dead letters");
    expect(numbers(out)).toEqual([10, 30]);
    const l = letters(dead);
    expect(l.map((d) => [d.stage, d.reason, d.source])).toEqual([
      ["tester", "not JSON", { topic: INPUT, partition: 0, offset: "1" }],
      ["tester", "no n", { topic: INPUT, partition: 0, offset: "2" }],
      ["tester", "unparseable: parser blew up", { topic: INPUT, partition: 0, offset: "3" }],
    ]);
    const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
    // the offending part only: the prefix the stage gave, and the message's size and hash
    expect(l[0]).toMatchObject({ prefix: Buffer.from("{not json").toString("base64"), message: { bytes: 9, sha256: sha256("{not json") } });
    expect(l[1]?.message).toEqual({ bytes: 7, sha256: sha256('{"m":2}') });
    expect(l[1]?.prefix).toBeUndefined();
    expect(l[2]?.prefix).toBeUndefined();
    expect(dead[0]?.headers["driftwatch-reason"]).toBe("not JSON");
    expect(dead[0]?.key).toBe("k");
    expect(await counterValue(metrics, "deadLetters")).toBe(3);

    // the stage is still consuming
    await bus.publish(INPUT, [{ key: "k", value: JSON.stringify({ n: 4 }) }]);
    await eventually(() => (out.length === 3 ? true : undefined), 5000, "a later message");
    expect(numbers(out)).toEqual([10, 30, 40]);
    expect(dead).toHaveLength(3);
  });

  it("a dead letter keeps at most 256 bytes of what it is about, never the whole message", async () => {
    const { bus, collect, start } = setup();
    const dead = await collect(DEADLETTER);
    const big = `x${"y".repeat(100_000)}`;
    await bus.publish(INPUT, [{ key: "k", value: big }]);
    await start(logic(async (items) => times10(items)));
    await eventually(() => (dead.length === 1 ? true : undefined), 5000, "dead letter");
    const [letter] = letters(dead);
    expect(Buffer.from(letter?.prefix ?? "", "base64").toString()).toBe(big.slice(0, 256));
    expect(letter?.message?.bytes).toBe(big.length);
    expect(dead[0]?.value.length).toBeLessThan(1024);
  });

  it("a batch of only bad input still commits: the dead letters are produced once and the stage moves on", async () => {
    const { bus, collect, start } = setup();
    const dead = await collect(DEADLETTER);
    const out = await collect(OUTPUT);
    let calls = 0;
    await bus.publish(INPUT, [{ key: "k", value: "nope" }]);
    await start(
      logic(async (items) => {
        calls++;
        return times10(items);
      }),
    );
    await eventually(() => (dead.length === 1 ? true : undefined), 5000, "dead letter");
    await bus.publish(INPUT, [{ key: "k", value: JSON.stringify({ n: 5 }) }]);
    await eventually(() => (out.length === 1 ? true : undefined), 5000, "output");
    expect(dead).toHaveLength(1);
    expect(calls).toBe(2);
  });

  it("an item that keeps failing while the dependencies are healthy is tried 3 times alone, then dead-lettered; the rest of its batch goes through", async () => {
    const { bus, collect, start } = setup();
    const out = await collect(OUTPUT);
    const dead = await collect(DEADLETTER);
    let poisonAttempts = 0;
    const batchSizes: number[] = [];
    await bus.publish(INPUT, [
      { key: "k", value: JSON.stringify({ n: 1 }) },
      { key: "k", value: JSON.stringify({ n: 2, poison: true }) },
      { key: "k", value: JSON.stringify({ n: 3 }) },
    ]);
    await start(
      logic(async (items) => {
        batchSizes.push(items.length);
        if (items.some((i) => i.value.poison)) {
          poisonAttempts++;
          throw new Error("cannot handle item 2");
        }
        return times10(items);
      }),
    );
    await eventually(() => (dead.length === 1 && out.length === 2 ? true : undefined), 5000, "outputs and the dead letter");
    await new Promise((r) => setTimeout(r, 50));
    expect(numbers(out)).toEqual([10, 30]);
    const [letter] = letters(dead);
    expect(letter?.reason).toBe("processing failed 3 times: cannot handle item 2");
    expect(letter?.source).toEqual({ topic: INPUT, partition: 0, offset: "1" });
    const poison = JSON.stringify({ n: 2, poison: true });
    expect(letter?.message).toEqual({ bytes: poison.length, sha256: createHash("sha256").update(poison).digest("hex") });
    expect(letter?.prefix).toBeUndefined();
    // once as part of the batch, then three times alone
    expect(poisonAttempts).toBe(4);
    expect(batchSizes).toEqual([3, 1, 1, 1, 1, 1]);
    // not redelivered: nothing more happens
    expect(dead).toHaveLength(1);
    expect(out).toHaveLength(2);
  });

  it("an item that fails once and then succeeds is not dead-lettered", async () => {
    const { bus, collect, start } = setup();
    const out = await collect(OUTPUT);
    const dead = await collect(DEADLETTER);
    let failures = 0;
    await bus.publish(INPUT, [
      { key: "k", value: JSON.stringify({ n: 1 }) },
      { key: "k", value: JSON.stringify({ n: 2, poison: true }) },
    ]);
    await start(
      logic(async (items) => {
        if (items.some((i) => i.value.poison) && failures < 2) {
          failures++;
          throw new Error("flaky");
        }
        return times10(items);
      }),
    );
    await eventually(() => (out.length === 2 ? true : undefined), 5000, "outputs");
    await new Promise((r) => setTimeout(r, 50));
    expect(numbers(out)).toEqual([10, 20]);
    expect(dead).toHaveLength(0);
  });

  it("a part of a message rejected by handle is dead-lettered once, even when the batch had to be retried item by item", async () => {
    const { bus, collect, start } = setup();
    const out = await collect(OUTPUT);
    const dead = await collect(DEADLETTER);
    await bus.publish(INPUT, [
      { key: "k", value: JSON.stringify({ n: 1 }) },
      { key: "k", value: JSON.stringify({ n: 2, poison: true }) },
    ]);
    await start(
      logic(async (items, reject) => {
        for (const i of items) if (i.value.n === 1) reject(i.message, "one span of message 1 is bad");
        if (items.some((i) => i.value.poison)) throw new Error("cannot handle item 2");
        return times10(items);
      }),
    );
    await eventually(() => (dead.length >= 2 && out.length === 1 ? true : undefined), 5000, "dead letters");
    await new Promise((r) => setTimeout(r, 50));
    expect(
      letters(dead)
        .map((d) => d.reason)
        .sort(),
    ).toEqual(["one span of message 1 is bad", "processing failed 3 times: cannot handle item 2"]);
    expect(numbers(out)).toEqual([10]);
  });

  it("when the dependencies are down, the whole batch is redelivered (never dead-lettered) and succeeds once they are back", async () => {
    const { bus, collect, metrics, start } = setup();
    const out = await collect(OUTPUT);
    const dead = await collect(DEADLETTER);
    let down = true;
    let failedBatches = 0;
    await bus.publish(INPUT, [
      { key: "k", value: JSON.stringify({ n: 1 }) },
      { key: "k", value: JSON.stringify({ n: 2 }) },
      { key: "k", value: "bad input" },
    ]);
    await start(
      logic(async (items) => {
        if (down) {
          failedBatches++;
          throw new Error("redis is down");
        }
        return times10(items);
      }),
      async () => !down,
    );
    await eventually(() => (failedBatches >= 3 ? true : undefined), 5000, "redeliveries");
    expect(out).toHaveLength(0);
    expect(dead).toHaveLength(0);
    down = false;
    await eventually(() => (out.length === 2 ? true : undefined), 5000, "outputs after recovery");
    await eventually(() => (dead.length === 1 ? true : undefined), 5000, "the bad input's dead letter");
    await new Promise((r) => setTimeout(r, 50));
    expect(numbers(out)).toEqual([10, 20]);
    // the bad input of the redelivered batch is dead-lettered once, not once per delivery
    expect(letters(dead).map((d) => d.reason)).toEqual(["not JSON"]);
    expect(await counterValue(metrics, "messagesIn")).toBe(3 * (failedBatches + 1));
  });

  it("an Unavailable error redelivers the batch even while the stage's own dependencies are healthy", async () => {
    const { bus, collect, start } = setup();
    const out = await collect(OUTPUT);
    const dead = await collect(DEADLETTER);
    let outages = 0;
    await bus.publish(INPUT, [
      { key: "k", value: JSON.stringify({ n: 1 }) },
      { key: "k", value: JSON.stringify({ n: 2 }) },
    ]);
    await start(
      logic(async (items) => {
        if (outages < 6) {
          outages++;
          throw new Unavailable("the SOC endpoint answers 503");
        }
        return times10(items);
      }),
    );
    await eventually(() => (out.length === 2 ? true : undefined), 5000, "outputs after the outage");
    await new Promise((r) => setTimeout(r, 50));
    expect(outages).toBe(6);
    expect(dead).toHaveLength(0);
    expect(numbers(out)).toEqual([10, 20]);
  });

  it("dependencies going down during the item-by-item retry redeliver the batch instead of dead-lettering", async () => {
    const { bus, collect, start } = setup();
    const out = await collect(OUTPUT);
    const dead = await collect(DEADLETTER);
    let healthyChecks = 0;
    let broken = true;
    await bus.publish(INPUT, [
      { key: "k", value: JSON.stringify({ n: 1 }) },
      { key: "k", value: JSON.stringify({ n: 2, poison: true }) },
    ]);
    await start(
      logic(async (items) => {
        if (broken && items.some((i) => i.value.poison)) throw new Error("store timed out");
        return times10(items);
      }),
      async () => {
        healthyChecks++;
        // healthy for the batch failure, then down while the item is retried, then recovered
        if (healthyChecks === 1) return true;
        if (healthyChecks === 2) {
          broken = false;
          return false;
        }
        return true;
      },
    );
    await eventually(() => (out.length >= 2 ? true : undefined), 5000, "outputs after redelivery");
    await new Promise((r) => setTimeout(r, 50));
    expect(dead).toHaveLength(0);
    expect(numbers(out)).toEqual([10, 20]);
  });
});
