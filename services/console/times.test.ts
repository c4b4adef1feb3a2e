import { describe, expect, it } from "vitest";
import { toolCall } from "../../test/support/actions.js";
import { consoleApi } from "../../test/support/console-api.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { withReadableTimes } from "./times.js";

const AT = Date.UTC(2026, 11, 3, 14, 50, 1, 123);

describe("withReadableTimes", () => {
  it("puts an ISO 8601 UTC string beside every epoch-ms field, at any depth, and keeps the number", () => {
    expect(
      withReadableTimes({
        startTimeMs: AT,
        receivedAtMs: AT + 1,
        nested: [{ createdAtMs: AT + 2, name: "x" }],
        atMs: AT,
      }),
    ).toEqual({
      startTimeMs: AT,
      startTimeIso: "2026-12-03T14:50:01.123Z",
      receivedAtMs: AT + 1,
      receivedAtIso: "2026-12-03T14:50:01.124Z",
      nested: [{ createdAtMs: AT + 2, createdAtIso: "2026-12-03T14:50:01.125Z", name: "x" }],
      atMs: AT,
      atIso: "2026-12-03T14:50:01.123Z",
    });
  });

  it("rounds millisecond values to the microsecond and gives durations no ISO string", () => {
    expect(
      withReadableTimes({
        durationMs: 8.174072265625,
        latencyMs: { fromTrigger: 12.3456789, fromDetection: 0.0004 },
        startTimeMs: AT + 0.2500001,
        graceMs: 30_000,
        count: 8.174072265625,
      }),
    ).toEqual({
      durationMs: 8.174,
      latencyMs: { fromTrigger: 12.346, fromDetection: 0 },
      startTimeMs: AT + 0.25,
      startTimeIso: "2026-12-03T14:50:01.123Z",
      graceMs: 30_000,
      // not a millisecond value: left alone
      count: 8.174072265625,
    });
  });

  it("leaves small numbers (offsets, durations by another name) without an ISO string, and a field of that name as it was", () => {
    expect(withReadableTimes({ lastStepMs: 1_500, startTimeMs: AT, startTimeIso: "mine" })).toEqual({
      lastStepMs: 1_500,
      startTimeMs: AT,
      startTimeIso: "mine",
    });
  });

  it("does not change the value it was given", () => {
    const record = { detectedAtMs: AT, durationMs: 1.23456 };
    withReadableTimes(record);
    expect(record).toEqual({ detectedAtMs: AT, durationMs: 1.23456 });
  });
});

describe("the API's times", () => {
  it("answers a task with ISO times beside its epoch-ms fields and its duration rounded", async () => {
    const store = new MemoryStore();
    const tasks = new TaskStore(store);
    const start = Date.now() - 10_000 + 0.123456789;
    await recordActions(tasks, [
      toolCall({ taskId: "t-times", traceId: "6bf92f3577b34da6a3ce929d0e0e4736", startTimeMs: start, endTimeMs: start + 8.174072265625 }),
    ]);
    const app = consoleApi(store, { tasks });
    try {
      const body = (await app.inject({ method: "GET", url: "/api/v1/tasks/t-times" })).json();
      expect(body.task.durationMs).toBe(8.174);
      expect(body.task.startMs).toBe(Math.round(start * 1000) / 1000);
      expect(body.task.startIso).toBe(new Date(start).toISOString());
      expect(body.task.lastSeenIso).toBe(new Date(body.task.lastSeenMs).toISOString());
      expect(body.path[0].startTimeIso).toBe(new Date(start).toISOString());
      expect(body.path[0].receivedAtIso).toMatch(/Z$/);
      const list = (await app.inject({ method: "GET", url: "/api/v1/tasks" })).json();
      expect(list.tasks[0].startIso).toBe(new Date(start).toISOString());
    } finally {
      await app.close();
    }
  });
});
