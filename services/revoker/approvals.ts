import { createHash } from "node:crypto";
import type { Approval, ApprovalDecision } from "../../schemas/approval.js";
import type { Finding } from "../../schemas/finding.js";
import type { Store } from "../runtime/store/store.js";
import type { ResponseDecision } from "./response-policy.js";

/**
 * Responses held for a human. One open approval per task: later findings of the task join
 * it. A decision is taken once (the first answer wins); the revoker's sweep carries out
 * the decided and the expired ones, each once.
 *
 *   approval:{id}             the approval (JSON)
 *   task:{id}:approval        the task's open approval id
 *   approvals:open            open approvals by when they are due (expiry; 0 once decided)
 *   approvals:by-time         every approval by request time
 */
const TTL_MS = 30 * 24 * 3600 * 1000;
const approvalKey = (id: string) => `approval:{${id}}`;
const openKey = (taskId: string) => `task:{${taskId}}:approval`;
const OPEN = "approvals:open";
const ALL = "approvals:by-time";

export type DecideResult =
  | { ok: true; approval: Approval }
  | { ok: false; reason: "not_found" | "already_decided" | "expired"; approval?: Approval };

export class Approvals {
  constructor(private readonly store: Store) {}

  /** Asks for (or joins the task's open) approval of a finding's response. */
  async request(finding: Finding, decision: ResponseDecision, now: number): Promise<{ approval: Approval; fresh: boolean }> {
    const id = createHash("sha256").update(`approval|${finding.taskId}|${finding.id}`).digest("hex").slice(0, 32);
    const approval = decision.approval ?? { timeoutMs: 900_000, onTimeout: "revoke" as const, onApprove: "revoke" as const };
    const open = await this.store.get(openKey(finding.taskId));
    if (open === null && (await this.store.setIfAbsent(openKey(finding.taskId), id, { ttlMs: TTL_MS }))) {
      const created: Approval = {
        id,
        taskId: finding.taskId,
        ...(finding.agentId ? { agentId: finding.agentId } : {}),
        findingIds: [finding.id],
        rule: decision.rule,
        proposed: approval.onApprove,
        onTimeout: approval.onTimeout,
        status: "pending",
        requestedAtMs: now,
        expiresAtMs: now + approval.timeoutMs,
        dryRun: decision.dryRun,
      };
      await this.save(created);
      await Promise.all([
        this.store.sortedAdd(OPEN, [{ score: created.expiresAtMs, member: id }]),
        this.store.sortedAdd(ALL, [{ score: now, member: id }]),
      ]);
      return { approval: created, fresh: true };
    }
    const existing = await this.get(open ?? ((await this.store.get(openKey(finding.taskId))) as string));
    if (!existing) throw new Error(`approval for task ${finding.taskId} is indexed but missing`);
    if (!existing.findingIds.includes(finding.id) && existing.status === "pending") {
      existing.findingIds.push(finding.id);
      await this.save(existing);
    }
    return { approval: existing, fresh: false };
  }

  async get(id: string): Promise<Approval | undefined> {
    const raw = await this.store.get(approvalKey(id));
    return raw ? (JSON.parse(raw) as Approval) : undefined;
  }

  /** A human's answer; the first one wins, and none once the approval expired. */
  async decide(id: string, answer: ApprovalDecision, now: number): Promise<DecideResult> {
    const approval = await this.get(id);
    if (!approval) return { ok: false, reason: "not_found" };
    if (approval.status !== "pending") return { ok: false, reason: "already_decided", approval };
    if (now >= approval.expiresAtMs) return { ok: false, reason: "expired", approval };
    if (!(await this.store.setIfAbsent(`${approvalKey(id)}:decided`, answer.decision, { ttlMs: TTL_MS }))) {
      return { ok: false, reason: "already_decided", approval: (await this.get(id)) ?? approval };
    }
    const decided: Approval = {
      ...approval,
      status: answer.decision === "approve" ? "approved" : "rejected",
      decidedBy: answer.by,
      decidedAtMs: now,
      ...(answer.comment ? { comment: answer.comment } : {}),
    };
    await this.save(decided);
    // due now: the revoker's next sweep carries it out
    await this.store.sortedAdd(OPEN, [{ score: 0, member: id }]);
    return { ok: true, approval: decided };
  }

  /** Open approvals that are decided or past their expiry, to be carried out. */
  async due(now: number, limit: number): Promise<Approval[]> {
    const page = await this.store.sortedRangeByScore(OPEN, { min: Number.NEGATIVE_INFINITY, max: now, offset: 0, limit });
    const found = await Promise.all(page.map((e) => this.get(e.member)));
    return found.filter((a): a is Approval => a !== undefined);
  }

  /**
   * Closes an approval once carried out (an expired one is marked so); true for the one
   * caller that closes it, so it is carried out once however many revokers sweep.
   */
  async close(approval: Approval, now: number): Promise<Approval | undefined> {
    if (!(await this.store.setIfAbsent(`${approvalKey(approval.id)}:closed`, String(now), { ttlMs: TTL_MS }))) return undefined;
    const closed: Approval = approval.status === "pending" ? { ...approval, status: "expired", decidedAtMs: now } : approval;
    await Promise.all([this.save(closed), this.store.sortedRemove(OPEN, [approval.id]), this.store.delete(openKey(approval.taskId))]);
    return closed;
  }

  /** Newest first, optionally only those with a status. */
  async list(query: { offset: number; limit: number; status?: Approval["status"] }): Promise<Approval[]> {
    const out: Approval[] = [];
    let skipped = 0;
    for (let offset = 0; out.length < query.limit; offset += 200) {
      const ids = await this.store.sortedRange(ALL, { offset, limit: 200, reverse: true });
      const page = (await Promise.all(ids.map((id) => this.get(id)))).filter((a): a is Approval => a !== undefined);
      for (const a of page) {
        if (query.status && a.status !== query.status) continue;
        if (skipped < query.offset) skipped++;
        else if (out.length < query.limit) out.push(a);
      }
      if (ids.length < 200) break;
    }
    return out;
  }

  private async save(approval: Approval): Promise<void> {
    await this.store.set(approvalKey(approval.id), JSON.stringify(approval), { ttlMs: TTL_MS });
  }
}
