import { type AgentAction, AgentAction as AgentActionSchema, TaskScope } from "../../schemas/action.js";
import type { Step } from "../../schemas/step.js";
import { type Store, taskKey } from "../runtime/store/store.js";

/**
 * A task's state: its steps in path order, what it declared, the credentials bound to it
 * and whether it was revoked. The pathfinder writes it; the detector, revoker and console
 * read it. Recording the same action twice changes nothing (steps are keyed by span).
 */
export type TaskStatus = "active" | "revoked";

export interface TaskSummary {
  taskId: string;
  status: TaskStatus;
  agentId?: string;
  agentName?: string;
  spiffeId?: string;
  intent?: string;
  scope?: TaskScope;
  scopeError?: string;
  firstSeenMs: number;
  lastSeenMs: number;
  steps: number;
  credentials: string[];
  revokedAtMs?: number;
}

export interface Revoked {
  atMs: number;
  findingId: string;
}

const TASKS_BY_LAST_SEEN = "tasks:by-last-seen";
const DEFAULT_TTL_MS = 7 * 24 * 3600 * 1000;
/** Below clock resolution, above double precision at epoch-millisecond magnitudes. */
const DEPTH_TIE_BREAK_MS = 0.001;
const MAX_DEPTH = 64;

export class TaskStore {
  constructor(
    private readonly store: Store,
    private readonly ttlMs = DEFAULT_TTL_MS,
  ) {}

  /**
   * Records one task's actions in its path and returns them as steps, in path order.
   * Order is by start time, and by causality where start times tie (clocks are often
   * millisecond-grained): a span's depth below its task's root breaks the tie, so an
   * agent invocation comes before the tool calls it makes.
   */
  async recordAll(taskId: string, batch: AgentAction[]): Promise<Step[]> {
    // a span seen twice in one batch is one step (the first copy wins, as in the store)
    const seen = new Set<string>();
    const actions = batch.filter((a) => {
      if (seen.has(a.id)) return false;
      seen.add(a.id);
      return true;
    });
    const depthKey = taskKey(taskId, "depth");
    const known = await this.store.hashGetAll(depthKey);
    const bySpan = new Map(actions.map((a) => [a.spanId, a]));
    const depth = new Map<string, number>();
    const depthOf = (a: AgentAction, guard = 0): number => {
      const cached = depth.get(a.spanId) ?? (known[a.spanId] !== undefined ? Number(known[a.spanId]) : undefined);
      if (cached !== undefined) return cached;
      let d = 0;
      if (a.parentSpanId && guard < MAX_DEPTH) {
        const parent = bySpan.get(a.parentSpanId);
        const parentDepth = parent
          ? depthOf(parent, guard + 1)
          : known[a.parentSpanId] !== undefined
            ? Number(known[a.parentSpanId])
            : undefined;
        d = parentDepth === undefined ? 1 : Math.min(parentDepth + 1, MAX_DEPTH);
      }
      depth.set(a.spanId, d);
      return d;
    };
    const ordered = actions
      .map((a) => ({ action: a, score: a.startTimeMs + depthOf(a) * DEPTH_TIE_BREAK_MS }))
      .sort((x, y) => x.score - y.score || (x.action.id < y.action.id ? -1 : 1));
    await this.store.hashSetIfAbsent(
      depthKey,
      Object.fromEntries(ordered.map(({ action }) => [action.spanId, String(depth.get(action.spanId) ?? 0)])),
    );
    await this.store.expire(depthKey, this.ttlMs);
    const steps: Step[] = [];
    for (const { action, score } of ordered) steps.push(await this.record(action, score));
    return steps;
  }

  private async record(action: AgentAction, score: number): Promise<Step> {
    const t = action.taskId;
    const meta = taskKey(t, "meta");
    const first: Record<string, string> = { taskId: t, firstSeenMs: String(action.receivedAtMs) };
    if (action.agent.id) first.agentId = action.agent.id;
    if (action.agent.name) first.agentName = action.agent.name;
    if (action.agent.spiffeId) first.spiffeId = action.agent.spiffeId;
    if (action.intent) first.intent = action.intent;
    if (action.declaredScope) first.scope = JSON.stringify(action.declaredScope);
    if (action.declaredScopeError) first.scopeError = action.declaredScopeError;
    await Promise.all([
      this.store.hashSetIfAbsent(taskKey(t, "steps"), { [action.id]: JSON.stringify(action) }),
      this.store.sortedAdd(taskKey(t, "order"), [{ score, member: action.id }]),
      this.store.hashSetIfAbsent(meta, first),
      this.store.hashSet(meta, { lastSeenMs: String(action.receivedAtMs) }),
      action.credentialId ? this.store.setAdd(taskKey(t, "credentials"), [action.credentialId]) : Promise.resolve(0),
      this.store.sortedAdd(TASKS_BY_LAST_SEEN, [{ score: action.receivedAtMs, member: t }]),
    ]);
    await Promise.all(["steps", "order", "meta", "credentials"].map((part) => this.store.expire(taskKey(t, part), this.ttlMs)));
    const index = (await this.store.sortedRank(taskKey(t, "order"), action.id)) ?? 0;
    return { ...action, index };
  }

  async summary(taskId: string): Promise<TaskSummary | undefined> {
    const [meta, steps, credentials, revoked] = await Promise.all([
      this.store.hashGetAll(taskKey(taskId, "meta")),
      this.store.sortedCount(taskKey(taskId, "order")),
      this.store.setMembers(taskKey(taskId, "credentials")),
      this.revoked(taskId),
    ]);
    if (!meta.taskId) return undefined;
    const scope = meta.scope ? TaskScope.safeParse(JSON.parse(meta.scope)) : undefined;
    return {
      taskId,
      status: revoked ? "revoked" : "active",
      ...(meta.agentId ? { agentId: meta.agentId } : {}),
      ...(meta.agentName ? { agentName: meta.agentName } : {}),
      ...(meta.spiffeId ? { spiffeId: meta.spiffeId } : {}),
      ...(meta.intent ? { intent: meta.intent } : {}),
      ...(scope?.success ? { scope: scope.data } : {}),
      ...(meta.scopeError ? { scopeError: meta.scopeError } : {}),
      firstSeenMs: Number(meta.firstSeenMs),
      lastSeenMs: Number(meta.lastSeenMs ?? meta.firstSeenMs),
      steps,
      credentials: credentials.sort(),
      ...(revoked ? { revokedAtMs: revoked.atMs } : {}),
    };
  }

  /** The task's declared scope, if it declared one. */
  async declaredScope(taskId: string): Promise<{ scope?: TaskScope; error?: string }> {
    const meta = await this.store.hashGetAll(taskKey(taskId, "meta"));
    if (meta.scopeError) return { error: meta.scopeError };
    if (!meta.scope) return {};
    const parsed = TaskScope.safeParse(JSON.parse(meta.scope));
    return parsed.success ? { scope: parsed.data } : { error: "stored scope is invalid" };
  }

  /** The task's steps in path order. */
  async path(taskId: string): Promise<Step[]> {
    const [order, steps] = await Promise.all([
      this.store.sortedRange(taskKey(taskId, "order"), { offset: 0, limit: 100_000 }),
      this.store.hashGetAll(taskKey(taskId, "steps")),
    ]);
    const path: Step[] = [];
    order.forEach((id, index) => {
      const raw = steps[id];
      if (raw) path.push({ ...AgentActionSchema.parse(JSON.parse(raw)), index });
    });
    return path;
  }

  async credentials(taskId: string): Promise<string[]> {
    return (await this.store.setMembers(taskKey(taskId, "credentials"))).sort();
  }

  /** Marks the task revoked; the first mark wins. Returns the mark in force. */
  async markRevoked(taskId: string, mark: Revoked): Promise<Revoked> {
    const key = taskKey(taskId, "revoked");
    if (await this.store.setIfAbsent(key, JSON.stringify(mark), { ttlMs: this.ttlMs })) return mark;
    return (await this.revoked(taskId)) ?? mark;
  }

  async revoked(taskId: string): Promise<Revoked | undefined> {
    const raw = await this.store.get(taskKey(taskId, "revoked"));
    return raw ? (JSON.parse(raw) as Revoked) : undefined;
  }

  /** Task ids, most recently active first. */
  async list(options: { offset: number; limit: number }): Promise<string[]> {
    return this.store.sortedRange(TASKS_BY_LAST_SEEN, { ...options, reverse: true });
  }

  async count(): Promise<number> {
    return this.store.sortedCount(TASKS_BY_LAST_SEEN);
  }
}
