import { randomUUID } from "node:crypto";
import { AuditRecord } from "../../schemas/audit.js";
import type { Publisher } from "../runtime/bus/bus.js";
import type { Store } from "../runtime/store/store.js";

/**
 * The audit log: every write asked of the console API, appended, never changed. Each record
 * goes to the store (the newest `keep` are listed by `GET /api/v1/audit`) and to the
 * `agent.audit` topic (the full history, for a SIEM), published before the store is written:
 * an entry the API shows is always on the topic too.
 *
 *   audit:log   list of AuditRecord JSON, oldest first
 *   audit:meta  hash: appended → how many records were ever appended
 */
const KEY = "audit:log";
const META = "audit:meta";

export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly bus: Publisher | undefined,
    private readonly topic: string,
    private readonly keep = 100_000,
  ) {}

  async append(entry: Omit<AuditRecord, "id">): Promise<AuditRecord> {
    const record = AuditRecord.parse({ id: randomUUID(), ...entry });
    const value = JSON.stringify(record);
    await this.bus?.publish(this.topic, [{ key: record.actor.id, value }]);
    const [length] = await Promise.all([this.store.listPush(KEY, [value]), this.store.hashIncrement(META, "appended", 1)]);
    if (length > this.keep * 1.1) await this.store.listTrim(KEY, -this.keep, -1);
    return record;
  }

  /**
   * The newest records first, from `offset`, at most `limit`, and how many match: all records
   * ever appended (the store keeps the newest `keep`; the topic has them all), or those of one actor.
   */
  async list(options: { offset: number; limit: number; actor?: string }): Promise<{ records: AuditRecord[]; total: number }> {
    const parse = (raw: string) => AuditRecord.parse(JSON.parse(raw));
    if (!options.actor) {
      // one page from the end of the list: newest first
      const [page, [appended]] = await Promise.all([
        this.store.listRange(KEY, -(options.offset + options.limit), -(options.offset + 1)),
        this.store.hashGet(META, ["appended"]),
      ]);
      return { records: page.map(parse).reverse(), total: Number(appended ?? 0) };
    }
    // by actor: the stored records (at most `keep`) filtered in memory
    const all = (await this.store.listRange(KEY, 0, -1)).map(parse);
    const matching = all.filter((r) => r.actor.id === options.actor || r.actor.name === options.actor).reverse();
    return { records: matching.slice(options.offset, options.offset + options.limit), total: matching.length };
  }
}
