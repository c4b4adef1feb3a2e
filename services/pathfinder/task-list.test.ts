import { describe, expect, it } from "vitest";
import { agentAction } from "../../test/support/actions.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { taskKey } from "../runtime/store/store.js";
import { recordActions } from "./pathfinder.js";
import { TaskStore } from "./task-store.js";

/**
 * What the task lists and counts say when the indexes name a task whose data is gone: in
 * Redis a task's keys expire, and the indexes keep its id.
 */
describe("TaskStore lists and counts", () => {
  it("count and show only the tasks whose data is still there", async () => {
    const store = new MemoryStore();
    const tasks = new TaskStore(store);
    const now = Date.now();
    for (const [i, taskId] of ["kept", "expired", "also-kept"].entries()) {
      await recordActions(tasks, [
        agentAction({
          taskId,
          traceId: String(i + 1).padStart(32, "0"),
          spanId: "1".padStart(16, "0"),
          agent: { id: "billing-agent" },
          startTimeMs: now - 1_000 * i - 10,
        }),
      ]);
    }
    await store.delete(taskKey("expired", "facts"));

    const listed = await tasks.list({ offset: 0, limit: 10, agentId: "billing-agent" }, now);
    expect(listed).toEqual({ taskIds: ["kept", "also-kept"], total: 2 });
    const flaggedOrNot = await tasks.list({ offset: 0, limit: 1, accept: async () => true }, now);
    expect(flaggedOrNot).toEqual({ taskIds: ["kept"], total: 2 });
    const counts = await tasks.counts({}, async (id) => id === "kept", now);
    expect(counts).toMatchObject({ total: 2, flagged: 1 });
    expect(counts.isLowerBound).toBeUndefined();
  });
});
