import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/wait.js";
import type { Subscription } from "./bus/bus.js";
import { MemoryBus } from "./bus/memory-bus.js";
import { createLogger } from "./logging.js";
import { createOpsApp, startOpsServer } from "./ops.js";
import { runStage } from "./stage.js";
import { Metrics } from "./telemetry.js";

const logger = createLogger("silent");
const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

/** `driftwatch_consumer_lag` series of a scrape, as `partition → lag` for one stage. */
function lagIn(text: string, stage: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^driftwatch_consumer_lag\{stage="([^"]+)",topic="[^"]+",partition="(\d+)"\} (\d+)$/gm))
    if (m[1] === stage) out.set(Number(m[2]), Number(m[3]));
  return out;
}

describe("the ops endpoints", () => {
  it("report a stage's consumer lag per partition from the committed offsets, growing while the stage is stuck", async () => {
    const bus = new MemoryBus({ partitions: 2 });
    const metrics = new Metrics(false);
    const ops = createOpsApp({ logger, metrics, checks: {} }, () => true);
    closing.push(
      () => bus.close(),
      () => ops.close(),
    );
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const subs: Subscription[] = [];
    subs.push(
      await runStage(
        {
          name: "slow",
          input: "in",
          parse: (m) => m.value.toString(),
          handle: async () => {
            await gate;
            return [];
          },
        },
        { bus, logger, metrics, topicPrefix: "", groupPrefix: "g.", packRecords: false, healthy: async () => true },
      ),
    );
    closing.push(async () => {
      release();
      for (const s of subs) await s.close();
    });
    const scrape = async () => (await ops.inject({ method: "GET", url: "/metrics" })).body;

    // keys chosen to land on both partitions: 3 messages on one, 2 on the other
    const keys = ["a", "b", "c", "d", "e"];
    await bus.publish(
      "in",
      keys.map((k) => ({ key: k, value: k })),
    );
    const first = lagIn(await scrape(), "slow");
    expect([...first.keys()].sort()).toEqual([0, 1]);
    expect([...first.values()].reduce((a, b) => a + b, 0)).toBe(5);

    await bus.publish("in", [{ key: "a", value: "again" }]);
    expect([...lagIn(await scrape(), "slow").values()].reduce((a, b) => a + b, 0)).toBe(6);

    release();
    await eventually(
      async () => ([...lagIn(await scrape(), "slow").values()].every((l) => l === 0) ? true : undefined),
      5_000,
      "caught up",
    );

    // a closed stage is no longer reported
    for (const s of subs.splice(0)) await s.close();
    expect(lagIn(await scrape(), "slow").size).toBe(0);
  });

  it("count a stage whose lag cannot be read, and leave its series out rather than report a stale value", async () => {
    const metrics = new Metrics(false);
    const stop = metrics.watchLag("broken", async () => {
      throw new Error("broker away");
    });
    metrics.watchLag("fine", async () => [{ topic: "t", partition: 0, lag: 7 }]);
    const ops = createOpsApp({ logger, metrics, checks: {} }, () => true);
    closing.push(() => ops.close());
    const text = (await ops.inject({ method: "GET", url: "/metrics" })).body;
    expect(lagIn(text, "fine")).toEqual(new Map([[0, 7]]));
    expect(lagIn(text, "broken").size).toBe(0);
    expect(text).toMatch(/^driftwatch_consumer_lag_read_failures_total\{stage="broken"\} 1$/m);
    stop();
    const again = (await ops.inject({ method: "GET", url: "/metrics" })).body;
    expect(again).toMatch(/^driftwatch_consumer_lag_read_failures_total\{stage="broken"\} 1$/m);
  });

  it("are ready only once the services started and every check passes, and say which failed", async () => {
    let storeUp = true;
    const server = await startOpsServer(
      { logger, metrics: new Metrics(false), checks: { bus: async () => true, store: async () => storeUp } },
      "127.0.0.1",
      0,
    );
    closing.push(() => server.close());
    const get = (path: string) => fetch(`${server.url}${path}`);

    expect((await get("/healthz")).status).toBe(200);
    const early = await get("/readyz");
    expect(early.status).toBe(503);
    expect(await early.json()).toEqual({ status: "not ready", checks: { started: false, bus: true, store: true } });

    server.started();
    const ready = await get("/readyz");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { started: true, bus: true, store: true } });

    storeUp = false;
    const down = await get("/readyz");
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: "not ready", checks: { started: true, bus: true, store: false } });

    // nothing else is served, and no body is taken
    expect((await fetch(`${server.url}/readyz`, { method: "POST", body: "x".repeat(10_000) })).status).toBeGreaterThanOrEqual(400);
    expect((await get("/api/v1/tasks")).status).toBe(404);
  });

  it("count a check that hangs as failed, within its timeout", async () => {
    const ops = createOpsApp(
      { logger, metrics: new Metrics(false), checks: { bus: () => new Promise<boolean>(() => undefined) } },
      () => true,
    );
    closing.push(() => ops.close());
    const t0 = Date.now();
    const res = await ops.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: "not ready", checks: { started: true, bus: false } });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
