import type { Logger } from "pino";
import type { TaskEvent } from "../../schemas/lifecycle.js";
import type { TaskStore } from "../pathfinder/task-store.js";
import type { Publisher } from "../runtime/bus/bus.js";
import { type Clock, systemClock } from "../runtime/clock.js";
import type { Store } from "../runtime/store/store.js";
import { idleEvent } from "./lifecycle.js";
import type { Policy } from "./policy.js";

/**
 * A task that stops without completing (no root span ends it) has ended all the same once
 * it has been idle for `DRIFTWATCH_TASK_IDLE_MS`: its credentials must not outlive it. Like
 * silence, idleness is the absence of steps, so the detector looks now and then.
 *
 * Unlike silence, no idle task may be missed, however long the detector was down: the sweep
 * walks the open tasks by last activity from a cursor kept in the store (shared by detector
 * instances), so a task that went idle during an outage is found at the next sweep. A task
 * gets one event (marked); one that wakes up again moves past the cursor and is looked at
 * again when it next goes idle (its event id is the same: the revoker acts on it once).
 */
export interface IdleWatch {
  /** One walk from the cursor to now minus the idle timeout; the events it published. */
  sweep(): Promise<TaskEvent[]>;
  stop(): void;
}

const CURSOR = "lifecycle:idle:cursor";
const PAGE = 500;
const MAX_PER_SWEEP = 5_000;
const MARK = "lifecycle:idle";

export function watchIdleTasks(deps: {
  tasks: TaskStore;
  store: Store;
  policy: () => Policy;
  bus: Publisher;
  lifecycleTopic: string;
  idleMs: number;
  intervalMs: number;
  logger: Logger;
  now?: () => number;
  /** Where the time and the sweep's timer come from (default: the wall clock). */
  clock?: Clock;
}): IdleWatch {
  const clock = deps.clock ?? systemClock;
  const now = deps.now ?? (() => clock.now());
  const sweep = async (): Promise<TaskEvent[]> => {
    const t = now();
    const max = t - deps.idleMs;
    const cursor = Number((await deps.store.get(CURSOR)) ?? Number.NEGATIVE_INFINITY);
    const out: TaskEvent[] = [];
    let seen = 0;
    let last = cursor;
    const publish = async (found: TaskEvent[]) => {
      if (found.length === 0) return;
      // published first, marked after: a crash in between repeats the event (same id), never loses it
      await deps.bus.publish(
        deps.lifecycleTopic,
        found.map((e) => ({ key: e.taskId, value: JSON.stringify(e) })),
      );
      await Promise.all(found.map((e) => deps.tasks.markOnce(e.taskId, `${MARK}:${e.atMs - deps.idleMs}`)));
    };
    let stop = false;
    for (let offset = 0; seen < MAX_PER_SWEEP; offset += PAGE) {
      const page = await deps.tasks.byLastSeen("open", { min: cursor, max, offset, limit: PAGE });
      seen += page.length;
      const states = await Promise.all(
        page.map(async ({ taskId }) => {
          const [facts, revoked] = await Promise.all([deps.tasks.facts(taskId), deps.tasks.revoked(taskId)]);
          const marked = facts ? await deps.tasks.marked(taskId, `${MARK}:${facts.lastSeenMs}`) : false;
          return { facts, revoked, marked };
        }),
      );
      const found: TaskEvent[] = [];
      for (const [i, { taskId, lastSeenMs: score }] of page.entries()) {
        const { facts, revoked, marked } = states[i] as (typeof states)[number];
        // the listing is a second coarse: a task active since is not idle yet, and the cursor stays before it
        if (facts && facts.phase !== "completed" && facts.lastSeenMs > max) {
          stop = true;
          break;
        }
        last = score;
        // a task revoked for drift has no credential left to end; a completed one was reported when it completed
        if (!facts || revoked || marked || facts.phase === "completed") continue;
        const event = idleEvent(
          {
            taskId,
            ...(facts.agentId ? { agentId: facts.agentId } : {}),
            ...(facts.spiffeId ? { spiffeId: facts.spiffeId } : {}),
            lastSeenMs: facts.lastSeenMs,
          },
          deps.policy(),
          deps.idleMs,
          t,
        );
        if (event) found.push(event);
      }
      await publish(found);
      out.push(...found);
      if (stop || page.length < PAGE) break;
    }
    // the next walk starts at the newest task looked at (inclusive: ties are looked at again, and skipped as marked)
    if (last > cursor) await deps.store.set(CURSOR, String(last));
    return out;
  };
  const timer = clock.every(deps.intervalMs, sweep, { logger: deps.logger, what: "idle task sweep" });
  return { sweep, stop: timer.stop };
}
