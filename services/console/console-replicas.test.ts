import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aFinding } from "../../test/support/findings.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { systemClock } from "../runtime/clock.js";
import { loadConfig } from "../runtime/config.js";
import { createLogger } from "../runtime/logging.js";
import type { RunningService } from "../runtime/service.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { Metrics } from "../runtime/telemetry.js";
import { startConsole } from "./index.js";
import { FindingLog } from "./read-model.js";

/**
 * A console replica's pages hear of a finding another replica recorded (that replica's
 * stage had the finding's partition): the poll watches the newest finding.
 */
describe("the console service's live updates", () => {
  const store = new MemoryStore();
  const bus = new MemoryBus({ partitions: 1 });
  let console_: RunningService & { url: string };

  beforeAll(async () => {
    const config = loadConfig({ DRIFTWATCH_LOG_LEVEL: "silent", DRIFTWATCH_API_PORT: "0", DRIFTWATCH_POLICY_DIR: "policies" });
    console_ = await startConsole({ config, bus, store, logger: createLogger("silent"), metrics: new Metrics(false), clock: systemClock });
  });

  afterAll(async () => {
    await console_?.close();
    await bus.close();
  });

  it("tell the page of a finding recorded by another replica, within a poll", async () => {
    const controller = new AbortController();
    const res = await fetch(`${console_.url}/api/v1/events`, { signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    // one read at a time: a read given up on would take the chunk the next one waits for
    let pending: ReturnType<typeof reader.read> | undefined;
    const read = async (until: (t: string) => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (!until(text)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out; read: ${text}`);
        pending ??= reader.read();
        const got = await Promise.race([pending, new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.min(left, 200)))]);
        if (got === undefined) continue;
        pending = undefined;
        if (got.done) throw new Error(`stream ended; read: ${text}`);
        text += decoder.decode(got.value, { stream: true });
      }
    };
    await read((t) => t.includes(": connected"), 5_000);
    // a first poll learns how things stand; the finding comes after it
    await new Promise((r) => setTimeout(r, 2_500));
    await new FindingLog(store).record(aFinding({ id: "f-elsewhere", taskId: "t-elsewhere" }));
    await read((t) => t.includes("event: finding"), 6_000);
    controller.abort();
  });
});
