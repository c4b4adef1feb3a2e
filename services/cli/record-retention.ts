import { DelegatingStore } from "../runtime/store/delegating-store.js";
import type { Store } from "../runtime/store/store.js";
import type { Metrics } from "../runtime/telemetry.js";

/**
 * The embedded mode's bound on the records the SOC reads back: findings (the console's
 * read model), incidents (the notifier's) and revocations (the revoker's ledger). They
 * are not task state (TaskRetention bounds that) but come with tasks, one or more for
 * each task with a finding: a flood of such tasks makes as many. Each kind is capped;
 * past the cap the oldest leave (by the time their index keeps), all their keys together.
 * They were sent on when made (the bus, the SOC sinks): what leaves is the console's copy.
 *
 *   findings:by-time     finding id     → finding:<id>
 *   incidents:by-time    incident id    → incident:{id}, its versions incident:{id}:v:<n>,
 *                                          :findings, :delivered, :retry
 *   revocations:by-time  revocation id  → revocation:{id}, revocation:{id}:history
 *   lifecycle-events:by-time  event id  → lifecycle-event:<id> (the pointer that resolves an
 *                                          event's id; the event itself is a task key)
 *
 * The tasks' own lists of them (task:{id}:findings, :revocations) may then name a record
 * that is gone; every reader skips those (read-model.ts, ledger.ts, incident.ts).
 */
export interface RecordLimits {
  findings: number;
  incidents: number;
  revocations: number;
  lifecycleEvents: number;
}

type Kind = keyof RecordLimits;

const INDEXES: Record<string, Kind> = {
  "findings:by-time": "findings",
  "incidents:by-time": "incidents",
  "revocations:by-time": "revocations",
  "lifecycle-events:by-time": "lifecycleEvents",
};

/** Trimmed once an index is this much past its cap, to the cap: not on every record. */
const SLACK = 1.05;

export class RecordRetention extends DelegatingStore {
  private readonly trimming = new Set<string>();
  private done: Promise<void> = Promise.resolve();

  constructor(
    inner: Store,
    private readonly limits: RecordLimits,
    private readonly metrics?: Pick<Metrics, "storeEvictedRecords">,
  ) {
    super(inner);
  }

  /** Resolves once the trims so far are done. */
  async settled(): Promise<void> {
    await this.done;
  }

  override async sortedAdd(key: string, entries: { score: number; member: string }[]): Promise<void> {
    await this.inner.sortedAdd(key, entries);
    const kind = INDEXES[key];
    if (kind === undefined || this.trimming.has(key)) return;
    const count = await this.inner.sortedCount(key);
    if (count <= this.limits[kind] * SLACK) return;
    // one trim at a time per index; the write that started it does not wait for it
    this.trimming.add(key);
    const trim = this.trim(key, kind, count - this.limits[kind])
      .catch(() => undefined)
      .finally(() => this.trimming.delete(key));
    this.done = Promise.all([this.done, trim]).then(() => undefined);
  }

  private async trim(index: string, kind: Kind, excess: number): Promise<void> {
    const oldest = await this.inner.sortedRange(index, { offset: 0, limit: excess });
    const keys: string[] = [];
    for (const id of oldest) keys.push(...(await this.keysOf(kind, id)));
    await this.inner.delete(...keys);
    await this.inner.sortedRemove(index, oldest);
    this.metrics?.storeEvictedRecords.inc({ kind }, oldest.length);
  }

  private async keysOf(kind: Kind, id: string): Promise<string[]> {
    if (kind === "findings") return [`finding:${id}`];
    if (kind === "lifecycleEvents") return [`lifecycle-event:${id}`];
    if (kind === "revocations") return [`revocation:{${id}}`, `revocation:{${id}}:history`];
    const head = await this.inner.get(`incident:{${id}}`);
    let versions = 0;
    try {
      versions = head ? Number((JSON.parse(head) as { version?: unknown }).version) || 0 : 0;
    } catch {
      versions = 0;
    }
    const keys = [`incident:{${id}}`, `incident:{${id}}:findings`, `incident:{${id}}:delivered`, `incident:{${id}}:retry`];
    for (let v = 1; v <= versions; v++) keys.push(`incident:{${id}}:v:${v}`);
    return keys;
  }

  // ---- everything else as the store does it ----------------------------------------------

  override async close(): Promise<void> {
    await this.done;
    await this.inner.close();
  }
}
