import type { Finding } from "../../schemas/finding.js";
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

  async list(options: { offset: number; limit: number }): Promise<Finding[]> {
    return this.load(await this.store.sortedRange("findings:by-time", { ...options, reverse: true }));
  }

  async count(): Promise<number> {
    return this.store.sortedCount("findings:by-time");
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
