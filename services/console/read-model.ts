import type { Finding } from "../../schemas/finding.js";
import type { TaskEvent } from "../../schemas/lifecycle.js";
import { type Store, taskKey } from "../runtime/store/store.js";

/**
 * What the console shows: findings as they come off the bus, kept once
 * per id (a repeated message changes nothing), listed newest first, overall and per task.
 */
const TTL_MS = 30 * 24 * 3600 * 1000;

export class FindingLog {
  constructor(private readonly store: Store) {}

  async record(finding: Finding): Promise<boolean> {
    const fresh = await this.store.setIfAbsent(`finding:${finding.id}`, JSON.stringify(finding), { ttlMs: TTL_MS });
    if (fresh) {
      await Promise.all([
        this.store.sortedAdd("findings:by-time", [{ score: finding.detectedAtMs, member: finding.id }]),
        this.store.sortedAdd(taskKey(finding.taskId, "findings"), [{ score: finding.stepIndex, member: finding.id }]),
      ]);
    }
    return fresh;
  }

  async get(id: string): Promise<Finding | undefined> {
    const raw = await this.store.get(`finding:${id}`);
    return raw === null ? undefined : (JSON.parse(raw) as Finding);
  }

  async list(options: { offset: number; limit: number }): Promise<Finding[]> {
    return this.load(await this.store.sortedRange("findings:by-time", { ...options, reverse: true }));
  }

  async count(): Promise<number> {
    return this.store.sortedCount("findings:by-time");
  }

  /** How many findings a task has. */
  async countForTask(taskId: string): Promise<number> {
    return this.store.sortedCount(taskKey(taskId, "findings"));
  }

  /** A task's findings in step order. */
  async forTask(taskId: string): Promise<Finding[]> {
    return this.load(await this.store.sortedRange(taskKey(taskId, "findings"), { offset: 0, limit: 10_000 }));
  }

  private async load(ids: string[]): Promise<Finding[]> {
    const raw = await Promise.all(ids.map((id) => this.store.get(`finding:${id}`)));
    return raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as Finding);
  }
}

/**
 * The tasks' lifecycle events (`agent.lifecycle`) as the console shows them, kept once per id.
 * A revocation the lifecycle triggered names its event's finding when the event has one, and
 * otherwise the event itself (a task that completed or went idle is no finding): this is where
 * such an id resolves (`GET /api/v1/findings/:id`), and a task's page lists its events.
 *
 *   task:{id}:lifecycle          hash event id → event JSON (a task's key: it leaves with the task)
 *   lifecycle-event:<event id>   → task id (what resolves an id alone)
 *   lifecycle-events:by-time     every event id by its time (what the embedded mode's record
 *                                bound trims the oldest pointers by: services/cli/record-retention.ts)
 */
export class LifecycleLog {
  constructor(private readonly store: Store) {}

  async record(event: TaskEvent): Promise<boolean> {
    const fresh = await this.store.setIfAbsent(`lifecycle-event:${event.id}`, event.taskId, { ttlMs: TTL_MS });
    if (fresh) {
      const key = taskKey(event.taskId, "lifecycle");
      await this.store.hashSet(key, { [event.id]: JSON.stringify(event) });
      await Promise.all([
        this.store.expire(key, TTL_MS),
        this.store.sortedAdd("lifecycle-events:by-time", [{ score: event.atMs, member: event.id }]),
      ]);
    }
    return fresh;
  }

  async get(id: string): Promise<TaskEvent | undefined> {
    const taskId = await this.store.get(`lifecycle-event:${id}`);
    if (taskId === null) return undefined;
    const [raw] = await this.store.hashGet(taskKey(taskId, "lifecycle"), [id]);
    return raw ? (JSON.parse(raw) as TaskEvent) : undefined;
  }

  /** A task's events, in the order they happened. */
  async forTask(taskId: string): Promise<TaskEvent[]> {
    const all = await this.store.hashGetAll(taskKey(taskId, "lifecycle"));
    return Object.values(all)
      .map((r) => JSON.parse(r) as TaskEvent)
      .sort((a, b) => a.atMs - b.atMs || a.id.localeCompare(b.id));
  }
}
