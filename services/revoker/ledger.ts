import type { Revocation } from "../../schemas/revocation.js";
import { type Store, taskKey } from "../runtime/store/store.js";

/**
 * The revocation ledger: every credential's revocation as it stands (who decided, what,
 * when, why, how long from detection to the store's answer, the outcome) and the outcomes
 * it went through (a failure, then the retry that worked). Written by the revoker before it
 * produces the record on `agent.revocations`; read by the console's API.
 *
 *   revocation:{id}           the record as it stands        (JSON)
 *   revocation:{id}:history   its outcomes, oldest first     (list of JSON, at most 50)
 *   revocations:by-time       every revocation by request time
 *   task:{id}:revocations     a task's revocations
 */
const TTL_MS = 90 * 24 * 3600 * 1000;
const HISTORY = 50;

/**
 * A credential's revocation claim (written by the revoker, revoker.ts): JSON
 * `{state: "pending", owner, atMs}` while a revoker is at it, `{state: "done", revocationId}`
 * once settled, `{state: "retrying", revocationId, …}` while failed and tried again later.
 * The credential id is the hash tag, like its binding's (`credential:{id}:binding`).
 */
export const claimKey = (credentialId: string) => `credential:{${credentialId}}:revocation`;
/** A credential's suspension while its task is silent: `{state: suspending | suspended | resumed, taskId, atMs}`. */
export const suspensionKey = (credentialId: string) => `credential:{${credentialId}}:suspension`;

/** Where a credential's revocation stands, as its claim says. */
export interface CredentialRevocation {
  /** `pending`: a revoker is at it; `retrying`: it failed and is tried again later; `done`: settled (revoked, recorded or dead-lettered). */
  state: "pending" | "retrying" | "done";
  /** When a revoker claimed it (`pending`). */
  claimedAtMs?: number;
  /** The ledger record as it stands (`retrying`, `done`). */
  revocation?: Revocation;
}

export interface LedgerQuery {
  offset: number;
  limit: number;
}

export class RevocationLedger {
  constructor(private readonly store: Store) {}

  /** Records an outcome; the latest one is the revocation's state. */
  async record(r: Revocation): Promise<void> {
    const key = `revocation:{${r.id}}`;
    await Promise.all([
      this.store.set(key, JSON.stringify(r), { ttlMs: TTL_MS }),
      this.store.listPush(`${key}:history`, [
        JSON.stringify({ status: r.status, detail: r.detail, attempts: r.attempts, atMs: r.completedAtMs }),
      ]),
      this.store.listTrim(`${key}:history`, -HISTORY, -1),
      this.store.expire(`${key}:history`, TTL_MS),
      this.store.sortedAdd("revocations:by-time", [{ score: r.requestedAtMs, member: r.id }]),
      this.store.sortedAdd(taskKey(r.taskId, "revocations"), [{ score: r.requestedAtMs, member: r.id }]),
    ]);
  }

  async get(id: string): Promise<Revocation | undefined> {
    const raw = await this.store.get(`revocation:{${id}}`);
    return raw ? (JSON.parse(raw) as Revocation) : undefined;
  }

  /** The outcomes a revocation went through, oldest first. */
  async history(id: string): Promise<{ status: Revocation["status"]; detail: string; attempts: number; atMs: number }[]> {
    return (await this.store.listRange(`revocation:{${id}}:history`, 0, -1)).map((h) => JSON.parse(h));
  }

  /** Newest first. */
  async list(query: LedgerQuery): Promise<Revocation[]> {
    return this.load(await this.store.sortedRange("revocations:by-time", { ...query, reverse: true }));
  }

  async count(): Promise<number> {
    return this.store.sortedCount("revocations:by-time");
  }

  /**
   * A credential's revocation, as its claim says: none when no revoker has claimed it (a
   * dry run claims nothing: see `forTask`).
   */
  async ofCredential(credentialId: string): Promise<CredentialRevocation | undefined> {
    const raw = await this.store.get(claimKey(credentialId));
    if (!raw) return undefined;
    const claim = JSON.parse(raw) as { state: CredentialRevocation["state"]; atMs?: number; revocationId?: string };
    if (claim.state === "pending") return { state: "pending", ...(claim.atMs !== undefined ? { claimedAtMs: claim.atMs } : {}) };
    const revocation = claim.revocationId ? await this.get(claim.revocationId) : undefined;
    return { state: claim.state, ...(revocation ? { revocation } : {}) };
  }

  async forTask(taskId: string): Promise<Revocation[]> {
    return this.load(await this.store.sortedRange(taskKey(taskId, "revocations"), { offset: 0, limit: 10_000 }));
  }

  private async load(ids: string[]): Promise<Revocation[]> {
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found.filter((r): r is Revocation => r !== undefined);
  }
}
