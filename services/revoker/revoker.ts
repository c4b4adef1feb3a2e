import { createHash, randomBytes } from "node:crypto";
import type { Approval } from "../../schemas/approval.js";
import type { DeadLetter } from "../../schemas/deadletter.js";
import type { Severity } from "../../schemas/finding.js";
import { Finding } from "../../schemas/finding.js";
import type { Revocation, RevocationTrigger } from "../../schemas/revocation.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { Policy } from "../detector/policy.js";
import type { TaskStore } from "../pathfinder/task-store.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { decodeMessage } from "../runtime/decode.js";
import { type Emit, type StageLogic, Unavailable } from "../runtime/stage.js";
import type { Store } from "../runtime/store/store.js";
import type { Metrics } from "../runtime/telemetry.js";
import type { Approvals } from "./approvals.js";
import type { RevocationRequest } from "./credential-stores/credential-store.js";
import type { StoreOutcome } from "./credential-stores/outcome.js";
import type { CredentialStores } from "./credential-stores/stores.js";
import { claimKey, type RevocationLedger, suspensionKey } from "./ledger.js";
import type { AgentQuarantine } from "./quarantine.js";
import { decideResponse } from "./response-policy.js";

/**
 * revoker: `agent.findings` → responses → credential stores → `agent.revocations`.
 *
 * Each finding gets the response its policy decides (response-policy.ts): revoke the
 * task's credentials, quarantine its agent, notify only, or ask a human. Each credential is
 * revoked once, whatever the number of findings, tasks, redeliveries and revoker instances:
 *
 * - a claim per credential in the store (`credential:{id}:revocation`): `pending` while a
 *   revoker is at it (with a time-to-live, so a crashed revoker's claim lapses and another
 *   takes over; a live one's makes the other wait), then `done`, or `retrying`;
 * - a failed revocation is tried again by the sweep, later and later (backoff with jitter),
 *   until it works or its attempts run out: then it is dead-lettered (`agent.deadletter`),
 *   and its ledger record says `dead_lettered`, which the notifier alerts on;
 * - every outcome goes to the ledger (ledger.ts) and to `agent.revocations`.
 */
export const parseFinding = (message: BusMessage): Finding | Finding[] => decodeMessage(Finding, message, "a finding");

/** One per credential and store: the same however often, and by whichever task, it is revoked. */
export function revocationId(storeName: string, credentialId: string): string {
  return createHash("sha256").update(`${storeName}|${credentialId}`).digest("hex").slice(0, 32);
}

/** What a credential store is asked, for a credential of a task, for a cause. */
function requestFor(
  storeName: string,
  credentialId: string,
  taskId: string,
  cause: Pick<Cause, "findingId" | "reason">,
): RevocationRequest {
  return { revocationId: revocationId(storeName, credentialId), credentialId, taskId, findingId: cause.findingId, reason: cause.reason };
}

export interface RevokerDeps {
  tasks: TaskStore;
  store: Store;
  stores: CredentialStores;
  ledger: RevocationLedger;
  approvals: Approvals;
  quarantine: AgentQuarantine;
  policy: () => Policy;
  minSeverity: Severity;
  metrics?: Metrics;
  now?: () => number;
  /** Store requests per credential before it is dead-lettered (each retry round may make several). */
  maxAttempts?: number;
  /** First delay between retry rounds (doubled each round, with jitter), and its ceiling. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long a claim holds while its revoker is at it (longer than one delivery's time budget). */
  claimTtlMs?: number;
  /** A quarantined agent's tasks active this recently have their credentials revoked too. */
  recentTaskMs?: number;
  random?: () => number;
}

/** What caused a revocation, and where it came off the bus (for a dead letter). */
export interface Cause {
  findingId: string;
  agentId?: string;
  reason: string;
  trigger: RevocationTrigger;
  decidedBy: string;
  dryRun: boolean;
  /** When the trigger happened (a finding's detection, a task's final span arriving): latency is measured from it. */
  triggeredAtMs?: number;
  detectedAtMs?: number;
  spanEndMs?: number;
  source?: DeadLetter["source"];
}

/** Where a credential's suspension stands (`credential:{id}:suspension`). */
interface Suspension {
  state: "suspending" | "suspended" | "resumed";
  taskId: string;
  atMs: number;
}

/** What a claim holds. */
type Claim =
  | { state: "pending"; owner: string; atMs: number }
  | { state: "done"; revocationId: string }
  | { state: "retrying"; revocationId: string; round: number; request: RevocationRequest; cause: Cause; revocation: Revocation };

export interface ResponseOutput {
  revocations: Revocation[];
  deadLetters: DeadLetter[];
}

export const empty = (): ResponseOutput => ({ revocations: [], deadLetters: [] });
export const merge = (into: ResponseOutput, from: ResponseOutput) => {
  into.revocations.push(...from.revocations);
  into.deadLetters.push(...from.deadLetters);
  return into;
};

const RETRIES = "revocations:retry";
const CLAIM_TTL_MS = 120_000;
const DONE_TTL_MS = 90 * 24 * 3600 * 1000;
const SWEEP_LIMIT = 100;

export class Responder {
  private readonly now: () => number;
  private readonly owner = randomBytes(6).toString("hex");
  /** Work in flight per credential (see `exclusive`). */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: RevokerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The response to one finding. */
  async respond(finding: Finding, source?: DeadLetter["source"]): Promise<ResponseOutput> {
    const decision = decideResponse(finding, this.deps.policy().responses, { minSeverity: this.deps.minSeverity });
    const cause: Cause = {
      findingId: finding.id,
      ...(finding.agentId ? { agentId: finding.agentId } : {}),
      reason: `${finding.ruleId}: ${finding.explanation}`,
      trigger: "finding",
      decidedBy: `policy:${decision.rule}`,
      dryRun: decision.dryRun,
      triggeredAtMs: finding.detectedAtMs,
      detectedAtMs: finding.detectedAtMs,
      spanEndMs: finding.spanEndMs,
      ...(source ? { source } : {}),
    };
    switch (decision.action) {
      case "notify":
        return empty();
      case "revoke":
        return this.revokeTask(finding.taskId, cause);
      case "quarantine":
        return this.quarantineAgent(finding.taskId, finding.agentId, cause);
      case "ask_human":
        await this.deps.approvals.request(finding, decision, this.now());
        return empty();
    }
  }

  /** Marks the task revoked (later steps are findings) and revokes every credential bound to it. */
  async revokeTask(taskId: string, cause: Cause): Promise<ResponseOutput> {
    if (!cause.dryRun) await this.deps.tasks.markRevoked(taskId, { atMs: this.now(), findingId: cause.findingId });
    const output = await this.revokeCredentials(taskId, await this.deps.tasks.credentials(taskId), cause);
    // decided, but no store took any of it: the task must not look revoked
    const mine = output.revocations.filter((r) => r.taskId === taskId);
    if (!cause.dryRun && mine.length > 0 && mine.every((r) => r.status === "recorded")) await this.deps.tasks.noteRecordedOnly(taskId);
    return output;
  }

  /** Revokes these credentials of a task, each once (whatever else revokes it, whenever). */
  async revokeCredentials(taskId: string, credentialIds: string[], cause: Cause): Promise<ResponseOutput> {
    const outputs = await Promise.all(credentialIds.map((c) => this.exclusive(c, () => this.revokeCredential(taskId, c, cause))));
    return outputs.reduce(merge, empty());
  }

  /**
   * One piece of work at a time per credential in this revoker. Claims keep revokers apart;
   * this keeps one revoker's concurrent work on a credential (two events of a batch naming
   * it) in order, so that its own claim is never taken for one left by a failed attempt.
   */
  private exclusive<T>(credentialId: string, work: () => Promise<T>): Promise<T> {
    const prior = this.busy.get(credentialId) ?? Promise.resolve();
    const run = prior.then(work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.busy.set(credentialId, tail);
    void tail.then(() => {
      if (this.busy.get(credentialId) === tail) this.busy.delete(credentialId);
    });
    return run;
  }

  /**
   * Suspends a credential while its task is silent: where the store can (and takes it), it
   * is taken away until `resumeCredential`; anywhere else it is revoked (fail-safe). Once per
   * credential; never one being revoked or revoked already.
   */
  suspendCredential(taskId: string, credentialId: string, cause: Cause): Promise<ResponseOutput> {
    return this.exclusive(credentialId, () => this.suspendNow(taskId, credentialId, cause));
  }

  private async suspendNow(taskId: string, credentialId: string, cause: Cause): Promise<ResponseOutput> {
    if (cause.dryRun || (await this.deps.store.get(claimKey(credentialId))) !== null)
      return this.revokeCredential(taskId, credentialId, cause);
    const choice = this.deps.stores.storeFor(credentialId);
    const store = "store" in choice ? choice.store : undefined;
    if (!store?.suspend) {
      const why = store ? `${store.name} cannot suspend a credential` : "no store to suspend it";
      return this.revokeCredential(taskId, credentialId, { ...cause, reason: `${cause.reason} (${why}: revoked instead)` });
    }
    const key = suspensionKey(credentialId);
    const mark: Suspension = { state: "suspending", taskId, atMs: this.now() };
    if (!(await this.deps.store.setIfAbsent(key, JSON.stringify(mark), { ttlMs: this.deps.claimTtlMs ?? CLAIM_TTL_MS }))) {
      const current = JSON.parse((await this.deps.store.get(key)) ?? "null") as Suspension | null;
      if (current?.state === "suspending")
        throw new Unavailable(`the suspension of ${credentialId} is in progress elsewhere (since ${new Date(current.atMs).toISOString()})`);
      return empty(); // suspended, or resumed, already: once per task
    }
    const request = requestFor(store.name, credentialId, taskId, cause);
    const id = `${request.revocationId}-suspension`;
    const requestedAtMs = this.now();
    const outcome = await store.suspend(request);
    if (outcome.status === "failed") {
      // a suspension the store did not take is a revocation: the silent task keeps no access
      await this.deps.store.delete(key);
      return this.revokeCredential(taskId, credentialId, {
        ...cause,
        reason: `${cause.reason} (the store did not take the suspension: ${outcome.detail}; revoked instead)`,
      });
    }
    await this.deps.store.set(key, JSON.stringify({ state: "suspended", taskId, atMs: requestedAtMs } satisfies Suspension), {
      ttlMs: DONE_TTL_MS,
    });
    const r = this.record(request, cause, store.name, {
      id,
      status: "suspended",
      detail: outcome.detail,
      attempts: outcome.attempts,
      requestedAtMs,
    });
    await this.deps.ledger.record(r);
    this.deps.metrics?.revocations.inc({ store: store.name, status: r.status });
    return { revocations: [r], deadLetters: [] };
  }

  /**
   * Gives back a credential suspended before `atMs` (its task reported again then), unless
   * it was revoked meanwhile. One that the store would not resume stays suspended, and is
   * tried again with the task's next step.
   */
  resumeCredential(taskId: string, credentialId: string, cause: Cause, atMs: number): Promise<ResponseOutput> {
    return this.exclusive(credentialId, () => this.resumeNow(taskId, credentialId, cause, atMs));
  }

  private async resumeNow(taskId: string, credentialId: string, cause: Cause, atMs: number): Promise<ResponseOutput> {
    const key = suspensionKey(credentialId);
    const current = JSON.parse((await this.deps.store.get(key)) ?? "null") as Suspension | null;
    if (current?.state !== "suspended" || current.atMs > atMs || cause.dryRun) return empty();
    if ((await this.deps.store.get(claimKey(credentialId))) !== null) return empty(); // revoked meanwhile: stays so
    const choice = this.deps.stores.storeFor(credentialId);
    const store = "store" in choice ? choice.store : undefined;
    if (!store?.resume) return empty();
    const lock = `${key}:resume`;
    if (!(await this.deps.store.setIfAbsent(lock, this.owner, { ttlMs: this.deps.claimTtlMs ?? CLAIM_TTL_MS }))) return empty();
    try {
      const request = requestFor(store.name, credentialId, taskId, cause);
      const requestedAtMs = this.now();
      const outcome = await store.resume(request);
      const resumed = outcome.status !== "failed";
      if (resumed)
        await this.deps.store.set(key, JSON.stringify({ state: "resumed", taskId, atMs: requestedAtMs } satisfies Suspension), {
          ttlMs: DONE_TTL_MS,
        });
      const r = this.record(request, cause, store.name, {
        id: `${request.revocationId}-suspension`,
        status: resumed ? "resumed" : "suspended",
        detail: resumed
          ? outcome.detail
          : `resume failed (${outcome.detail}); the credential stays suspended and is tried again with the task's next step`,
        attempts: outcome.attempts,
        requestedAtMs,
      });
      await this.deps.ledger.record(r);
      this.deps.metrics?.revocations.inc({ store: store.name, status: r.status });
      return { revocations: [r], deadLetters: [] };
    } finally {
      await this.deps.store.delete(lock);
    }
  }

  /**
   * Quarantines the agent: the mark (so whatever it does next is a finding), its task's
   * credentials, and those of its other tasks active recently.
   */
  async quarantineAgent(taskId: string, agentId: string | undefined, cause: Cause): Promise<ResponseOutput> {
    const out = await this.revokeTask(taskId, cause);
    if (!agentId || cause.dryRun) return out;
    const now = this.now();
    const { fresh } = await this.deps.quarantine.put({ agentId, atMs: now, findingId: cause.findingId, taskId, by: cause.decidedBy });
    if (!fresh) return out;
    const { taskIds } = await this.deps.tasks.list(
      { agentId, fromMs: now - (this.deps.recentTaskMs ?? 3_600_000), offset: 0, limit: 1_000 },
      now,
    );
    for (const other of taskIds.filter((t) => t !== taskId)) {
      merge(
        out,
        await this.revokeTask(other, { ...cause, trigger: "quarantine", reason: `agent ${agentId} quarantined (${cause.reason})` }),
      );
    }
    return out;
  }

  private async revokeCredential(taskId: string, credentialId: string, cause: Cause): Promise<ResponseOutput> {
    const choice = this.deps.stores.storeFor(credentialId);
    const storeName = "store" in choice ? choice.store.name : "none";
    const request = requestFor(storeName, credentialId, taskId, cause);
    const id = request.revocationId;
    if (cause.dryRun) {
      const now = this.now();
      const r = this.record(request, cause, storeName, {
        id: `${id}-dry-run`,
        status: "dry_run",
        detail: `dry run: would have revoked ${credentialId} at ${storeName} (${cause.decidedBy})`,
        attempts: 0,
        requestedAtMs: now,
      });
      await this.deps.ledger.record(r);
      return { revocations: [r], deadLetters: [] };
    }
    const key = claimKey(credentialId);
    const pending: Claim = { state: "pending", owner: this.owner, atMs: this.now() };
    if (!(await this.deps.store.setIfAbsent(key, JSON.stringify(pending), { ttlMs: this.deps.claimTtlMs ?? CLAIM_TTL_MS }))) {
      const raw = await this.deps.store.get(key);
      if (raw === null) return this.revokeCredential(taskId, credentialId, cause); // the claim lapsed just now
      const claim = JSON.parse(raw) as Claim;
      if (claim.state === "pending" && claim.owner === this.owner) {
        // this instance's own claim, left by an attempt that failed midway (a store error): take it up again
        await this.deps.store.delete(key);
        return this.revokeCredential(taskId, credentialId, cause);
      }
      if (claim.state === "pending") {
        // another revoker is at it (or crashed, and its claim will lapse): the batch waits for it
        throw new Unavailable(
          `the revocation of ${credentialId} is in progress elsewhere (claimed at ${new Date(claim.atMs).toISOString()})`,
        );
      }
      // done, or being retried by the sweep: re-emitted as it stands, never sent again
      const current = await this.deps.ledger.get(claim.revocationId);
      return { revocations: current ? [current] : [], deadLetters: [] };
    }
    if (!("store" in choice))
      return this.settle(
        request,
        cause,
        storeName,
        { status: "failed", detail: choice.refused, attempts: 0, permanent: true },
        0,
        this.now(),
      );
    const requestedAtMs = this.now();
    const outcome = await choice.store.revoke(request);
    return this.settle(request, cause, storeName, outcome, 0, requestedAtMs);
  }

  /** Records an outcome: done, or scheduled for another round, or dead-lettered. */
  private async settle(
    request: RevocationRequest,
    cause: Cause,
    storeName: string,
    outcome: StoreOutcome,
    round: number,
    requestedAtMs: number,
    priorAttempts = 0,
  ): Promise<ResponseOutput> {
    const key = claimKey(request.credentialId);
    const attempts = priorAttempts + outcome.attempts;
    const maxAttempts = this.deps.maxAttempts ?? 30;
    const base = { id: request.revocationId, detail: outcome.detail, attempts, requestedAtMs };
    if (outcome.status !== "failed") {
      const r = this.record(request, cause, storeName, { ...base, status: outcome.status });
      await this.deps.ledger.record(r);
      await this.deps.store.set(key, JSON.stringify({ state: "done", revocationId: r.id } satisfies Claim), { ttlMs: DONE_TTL_MS });
      await this.deps.store.sortedRemove(RETRIES, [request.credentialId]);
      this.deps.metrics?.revocations.inc({ store: storeName, status: r.status });
      const latency = r.latencyMs?.fromTrigger ?? r.latencyMs?.fromDetection;
      if (r.status === "revoked" && latency !== undefined) {
        this.deps.metrics?.revocationLatency.observe({ store: storeName, trigger: cause.trigger }, latency / 1000);
      }
      return { revocations: [r], deadLetters: [] };
    }
    const maxRounds = maxAttempts; // a round with the circuit open sends nothing, but still counts
    if (outcome.permanent || attempts >= maxAttempts || round + 1 >= maxRounds) {
      const why = outcome.permanent ? "the store refused it" : `${attempts} attempts in ${round + 1} rounds`;
      const r = this.record(request, cause, storeName, { ...base, status: "dead_lettered", detail: `${outcome.detail} (gave up: ${why})` });
      await this.deps.ledger.record(r);
      await this.deps.store.set(key, JSON.stringify({ state: "done", revocationId: r.id } satisfies Claim), { ttlMs: DONE_TTL_MS });
      await this.deps.store.sortedRemove(RETRIES, [request.credentialId]);
      this.deps.metrics?.revocations.inc({ store: storeName, status: r.status });
      const letter: DeadLetter = {
        stage: "revoker",
        reason: `revocation of ${request.credentialId} (task ${request.taskId}) at ${storeName} failed: ${r.detail}`,
        source: cause.source ?? { topic: "", partition: -1, offset: "-1" },
        record: { request, revocation: r },
        atMs: this.now(),
      };
      return { revocations: [r], deadLetters: [letter] };
    }
    const delay = this.backoff(round);
    const r = this.record(request, cause, storeName, { ...base, status: "failed", retryAtMs: this.now() + delay });
    await this.deps.ledger.record(r);
    const claim: Claim = { state: "retrying", revocationId: r.id, round: round + 1, request, cause, revocation: r };
    // scheduled before the claim says so: a crash in between leaves a schedule that finds
    // the claim as it was, never a `retrying` claim nothing will retry
    await this.deps.store.sortedAdd(RETRIES, [{ score: r.retryAtMs as number, member: request.credentialId }]);
    await this.deps.store.set(key, JSON.stringify(claim), { ttlMs: DONE_TTL_MS });
    this.deps.metrics?.revocations.inc({ store: storeName, status: r.status });
    return { revocations: [r], deadLetters: [] };
  }

  /** Full jitter on an exponential backoff: a random delay up to base·2^round, capped. */
  private backoff(round: number): number {
    const cap = Math.min(this.deps.retryMaxMs ?? 60_000, (this.deps.retryBaseMs ?? 1_000) * 2 ** round);
    return Math.max(1, Math.round(cap * (this.deps.random ?? Math.random)()));
  }

  private record(
    request: RevocationRequest,
    cause: Cause,
    storeName: string,
    r: Pick<Revocation, "id" | "status" | "detail" | "attempts" | "requestedAtMs"> & { retryAtMs?: number },
  ): Revocation {
    const completedAtMs = this.now();
    const latency: Revocation["latencyMs"] = {};
    if (cause.triggeredAtMs !== undefined) latency.fromTrigger = completedAtMs - cause.triggeredAtMs;
    if (cause.detectedAtMs !== undefined) latency.fromDetection = completedAtMs - cause.detectedAtMs;
    if (cause.spanEndMs !== undefined) latency.fromSpanEnd = completedAtMs - cause.spanEndMs;
    return {
      id: r.id,
      taskId: request.taskId,
      ...(cause.agentId ? { agentId: cause.agentId } : {}),
      credentialId: request.credentialId,
      credentialStore: storeName,
      findingId: cause.findingId,
      trigger: cause.trigger,
      decidedBy: cause.decidedBy,
      ...(cause.triggeredAtMs !== undefined ? { triggeredAtMs: cause.triggeredAtMs } : {}),
      status: r.status,
      detail: r.detail,
      attempts: r.attempts,
      ...(r.retryAtMs !== undefined ? { retryAtMs: r.retryAtMs } : {}),
      requestedAtMs: r.requestedAtMs,
      completedAtMs,
      ...(r.status !== "dry_run" ? { latencyMs: latency } : {}),
    };
  }

  /** Failed revocations whose time has come: one more round each (one revoker per credential). */
  async retryDue(): Promise<ResponseOutput> {
    const now = this.now();
    const due = await this.deps.store.sortedRangeByScore(RETRIES, {
      min: Number.NEGATIVE_INFINITY,
      max: now,
      offset: 0,
      limit: SWEEP_LIMIT,
    });
    const out = empty();
    for (const { member: credentialId } of due) {
      const key = claimKey(credentialId);
      const lock = `${key}:retry`;
      if (!(await this.deps.store.setIfAbsent(lock, this.owner, { ttlMs: this.deps.claimTtlMs ?? CLAIM_TTL_MS }))) continue;
      try {
        const raw = await this.deps.store.get(key);
        const claim = raw ? (JSON.parse(raw) as Claim) : undefined;
        if (claim?.state !== "retrying") {
          // done meanwhile (or never retrying): nothing to schedule
          if (claim?.state === "done") await this.deps.store.sortedRemove(RETRIES, [credentialId]);
          continue;
        }
        // another instance may have just run this round and scheduled the next: not due yet
        if ((claim.revocation.retryAtMs ?? 0) > now) continue;
        // kept on the schedule, a claim-lifetime ahead, while this round runs: if this revoker
        // dies mid-round another one takes it up then; settle() moves or removes it
        await this.deps.store.sortedAdd(RETRIES, [{ score: now + (this.deps.claimTtlMs ?? CLAIM_TTL_MS), member: credentialId }]);
        const choice = this.deps.stores.storeFor(credentialId);
        const outcome: StoreOutcome =
          "store" in choice
            ? await choice.store.revoke(claim.request)
            : { status: "failed", detail: choice.refused, attempts: 0, permanent: true };
        merge(
          out,
          await this.settle(
            claim.request,
            claim.cause,
            claim.revocation.credentialStore,
            outcome,
            claim.round,
            claim.revocation.requestedAtMs,
            claim.revocation.attempts,
          ),
        );
      } finally {
        await this.deps.store.delete(lock);
      }
    }
    return out;
  }

  /** Approvals decided or expired: carried out once each. */
  async approvalsDue(): Promise<ResponseOutput> {
    const now = this.now();
    const out = empty();
    for (const approval of await this.deps.approvals.due(now, SWEEP_LIMIT)) {
      const closed = await this.deps.approvals.close(approval, now);
      if (closed) merge(out, await this.carryOut(closed));
    }
    return out;
  }

  private carryOut(a: Approval): Promise<ResponseOutput> {
    const action = a.status === "approved" ? a.proposed : a.status === "expired" ? a.onTimeout : "notify";
    if (action === "notify") return Promise.resolve(empty());
    const cause: Cause = {
      findingId: a.findingIds[0] as string,
      ...(a.agentId ? { agentId: a.agentId } : {}),
      reason:
        a.status === "approved"
          ? `approved by ${a.decidedBy}${a.comment ? `: ${a.comment}` : ""} (response rule ${a.rule})`
          : `no answer within the approval time (response rule ${a.rule}): ${action} by default`,
      trigger: a.status === "approved" ? "approval" : "approval_timeout",
      decidedBy: a.status === "approved" ? `human:${a.decidedBy}` : `policy:${a.rule}`,
      dryRun: a.dryRun,
      triggeredAtMs: a.decidedAtMs ?? a.requestedAtMs,
      detectedAtMs: a.requestedAtMs,
    };
    return action === "quarantine" ? this.quarantineAgent(a.taskId, a.agentId, cause) : this.revokeTask(a.taskId, cause);
  }
}

export function revokerStage(topicPrefix: string, responder: Responder): StageLogic<Finding> {
  const revocations = topicName(topicPrefix, TOPICS.revocations);
  const deadletter = topicName(topicPrefix, TOPICS.deadletter);
  return {
    name: "revoker",
    input: topicName(topicPrefix, TOPICS.findings),
    parse: parseFinding,
    async handle(items): Promise<Emit[]> {
      const out = empty();
      for (const { value: finding, message } of items) {
        merge(out, await responder.respond(finding, { topic: message.topic, partition: message.partition, offset: message.offset }));
      }
      return emitsOf(out, revocations, deadletter);
    },
  };
}

export function emitsOf(out: ResponseOutput, revocationsTopic: string, deadletterTopic: string): Emit[] {
  return [
    ...out.revocations.map((r) => ({ topic: revocationsTopic, message: { key: r.taskId, value: JSON.stringify(r) } })),
    ...out.deadLetters.map((d) => ({ topic: deadletterTopic, message: { key: null, value: JSON.stringify(d) } })),
  ];
}
