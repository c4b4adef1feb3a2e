import { type AgentAction, AgentAction as AgentActionSchema, type TaskScope } from "../../schemas/action.js";
import type { Hop, Step } from "../../schemas/step.js";
import { type Store, taskKey } from "../runtime/store/store.js";
import { CredentialBindings } from "./credential-bindings.js";
import { emptyPath, type Placement, type SpanInfo, stepOf, type TaskFacts, type TaskPath, type TaskPhase } from "./path.js";

/**
 * A task's state in the store. The pathfinder writes it (one burst of commands per batch
 * per task: with Redis auto-pipelining, one round trip); the detector, revoker and
 * console read it. Every key of a task carries the task id as a Redis Cluster hash tag,
 * and expires after the task's time-to-live.
 *
 *   task:{id}:facts        JSON TaskFacts             task:{id}:steps     hash action id → action JSON
 *   task:{id}:order        sorted set of action ids   task:{id}:spans     hash span id → SpanInfo JSON
 *   task:{id}:facets       set (agent:…, tool:…)      task:{id}:credentials set
 *   task:{id}:children     set of delegate task ids   task:{id}:revoked   JSON Revoked
 *   task:{id}:writes       hash n → writes so far (a second writer shows as a gap)
 *   task:{id}:registered-scope  JSON TaskScope from the scope registry API
 *
 * and `trace:{traceId}:spans` (span id → task id, to follow a span's parent or link into
 * another task), and the indexes `tasks:all`, `tasks:open`, `tasks:completed`, `tasks:revoked`,
 * `tasks:agent:<id>` (sorted by last activity; revoked by time of revocation).
 */
/** `revoked`: a response revoked its credentials; `recorded`: one decided to, but no credential store took it. */
export type TaskStatus = TaskPhase | "idle" | "revoked" | "recorded";
export const TASK_STATUSES = ["started", "active", "idle", "completed", "revoked", "recorded"] as const satisfies readonly TaskStatus[];

export interface TaskSummary {
  taskId: string;
  status: TaskStatus;
  agentId?: string;
  agentName?: string;
  spiffeId?: string;
  intent?: string;
  scope?: TaskScope;
  scopeError?: string;
  parentTaskId?: string;
  lineage?: Hop[];
  firstSeenMs: number;
  lastSeenMs: number;
  startMs: number;
  endMs: number;
  durationMs: number;
  completedAtMs?: number;
  revokedAtMs?: number;
  steps: number;
  agents: string[];
  tools: string[];
  dataClassifications: string[];
  environments: string[];
  destinations: string[];
  credentials: string[];
  children: string[];
}

export interface Revoked {
  atMs: number;
  findingId: string;
  /**
   * The revocation was decided but no credential store took it: every credential's revocation
   * was only recorded (no store configured). The task shows as `recorded`, not `revoked`: its
   * credentials may still work.
   */
  recordedOnly?: boolean;
}

export interface TaskQuery {
  status?: TaskStatus;
  agentId?: string;
  /** Last activity at or after / at or before (epoch ms). */
  fromMs?: number;
  toMs?: number;
  offset: number;
  limit: number;
  /** A further test a task must pass (e.g. the console's "has findings"), asked of each candidate. */
  accept?: (taskId: string) => Promise<boolean>;
}

const ALL = "tasks:all";
const OPEN = "tasks:open";
const COMPLETED = "tasks:completed";
/**
 * The tasks that completed and the baseline learner has not taken yet, scored by when the
 * pathfinder recorded the completion. A queue rather than a cursor over `tasks:completed`
 * (scored by last activity): partitions are placed side by side, so a task can complete
 * after one whose last span came later, and a cursor would already be past it.
 */
const COMPLETIONS = "tasks:completions";
const REVOKED = "tasks:revoked";
const byAgent = (agentId: string) => `tasks:agent:${agentId}`;
/** Span id → task id, per trace (the trace id is the hash tag). */
const traceKey = (traceId: string) => `trace:{${traceId}}:spans`;

const DEFAULT_TTL_MS = 7 * 24 * 3600 * 1000;
const DEFAULT_IDLE_MS = 5 * 60 * 1000;
const TASK_PARTS = ["facts", "steps", "order", "spans", "facets", "credentials", "writes"] as const;
const FACET_KINDS = { agent: "agents", tool: "tools", data: "dataClassifications", env: "environments", dest: "destinations" } as const;
const MAX_STEPS = 100_000;
/**
 * How many tasks a filtered list walks at most (for its page and its total): a live page
 * reads its list again after changes, and a walk costs about 35 µs a task on Redis
 * (bench:task-list); past this the total is a lower bound.
 */
const LIST_SCAN_LIMIT = 5_000;
/** How many tasks the counts per status walk at most (read every 10 s by a page, not per change). */
const COUNT_SCAN_LIMIT = 20_000;

/**
 * What a writer remembers of its last writes of a task, so that it need not repeat them
 * every batch (fresh marks: everything is written).
 */
export interface WriteMarks {
  ttlSetAtMs?: number;
  indexedLastSeenMs?: number;
  indexedPhase?: TaskPhase;
  indexedAgent?: string;
  /** Traces whose span index this writer gave a time-to-live. */
  traces?: Set<string>;
  /** Span ids this writer looked up in other tasks (parents and links). */
  lookedUp?: Set<string>;
  scopeCheckedAtMs?: number;
  /** The delegating task this writer listed the task under. */
  listedUnder?: string;
}

const SCOPE_CHECK_MS = 1_000;

const MAX_MARKED_TRACES = 64;

/** Task listings order by last activity to this granularity (ms). */
const INDEX_GRANULARITY_MS = 1_000;

export interface SaveResult {
  /** The actions to emit again (placement.reevaluate), in the same order. */
  reevaluated: AgentAction[];
  /** Another writer wrote this task since it was loaded: the cached path is stale. */
  conflict: boolean;
  /** The delegating task's facts, when the task has one (to refresh the lineage). */
  parent?: TaskFacts;
  /**
   * Other tasks this batch's spans point into (a parent span or a span link recorded in
   * another task), when the task has no delegating task yet.
   */
  referencedTasks?: string[];
  /** The scope registered for the task through the API, as it stands now, and when it was registered. */
  registeredScope?: TaskScope;
  registeredAtMs?: number;
  version: number;
}

/** A registered scope as stored: with its registration time (or, as first stored, the scope alone). */
function parseRegistered(raw: string): { scope: TaskScope; atMs?: number; agentId?: string } {
  const value = JSON.parse(raw) as { scope?: TaskScope; registeredAtMs?: number; agentId?: string } & TaskScope;
  return value.scope !== undefined && typeof value.registeredAtMs === "number"
    ? { scope: value.scope, atMs: value.registeredAtMs, ...(value.agentId ? { agentId: value.agentId } : {}) }
    : { scope: value as TaskScope };
}

/** The task store with the deployment's task settings. */
export function taskStoreFor(store: Store, tasks: { idleMs: number; ttlMs: number }, clock?: { now(): number }): TaskStore {
  return new TaskStore(store, { idleMs: tasks.idleMs, ttlMs: tasks.ttlMs, ...(clock ? { now: () => clock.now() } : {}) });
}

export class TaskStore {
  /** Which task each credential belongs to (bound by the registry, or by the first span that used it). */
  readonly bindings: CredentialBindings;

  constructor(
    private readonly store: Store,
    private readonly options: {
      ttlMs?: number;
      idleMs?: number;
      /** How often a writer looks for a scope registered for a task it keeps in memory (default 1 s). */
      registryCheckMs?: number;
      /** The time (default: the wall clock; a replay's clock in a replay). */
      now?: () => number;
    } = {},
  ) {
    this.bindings = new CredentialBindings(store, options.ttlMs ?? DEFAULT_TTL_MS);
  }

  private get ttlMs() {
    return this.options.ttlMs ?? DEFAULT_TTL_MS;
  }

  get idleMs(): number {
    return this.options.idleMs ?? DEFAULT_IDLE_MS;
  }

  /** Everything the pathfinder keeps of a task (one round trip), and the write count it was read at. */
  async load(taskId: string): Promise<{ path: TaskPath; version: number }> {
    const [facts, order, spans, facets, credentials, writes, registered] = await Promise.all([
      this.store.get(taskKey(taskId, "facts")),
      this.store.sortedRangeByScore(taskKey(taskId, "order"), {
        min: Number.NEGATIVE_INFINITY,
        max: Number.POSITIVE_INFINITY,
        offset: 0,
        limit: MAX_STEPS,
      }),
      this.store.hashGetAll(taskKey(taskId, "spans")),
      this.store.setMembers(taskKey(taskId, "facets")),
      this.store.setMembers(taskKey(taskId, "credentials")),
      this.store.hashGet(taskKey(taskId, "writes"), ["n"]),
      this.store.get(taskKey(taskId, "registered-scope")),
    ]);
    const path = emptyPath(taskId);
    if (registered) {
      const r = parseRegistered(registered);
      path.registeredScope = r.scope;
      if (r.atMs !== undefined) path.registeredAtMs = r.atMs;
    }
    if (facts) path.facts = JSON.parse(facts) as TaskFacts;
    // the sorted set's order is the path's order (score, then id)
    path.order = order.map(({ member, score }) => ({ id: member, score }));
    for (const e of path.order) path.ids.add(e.id);
    for (const [spanId, info] of Object.entries(spans)) path.spans.set(spanId, JSON.parse(info) as SpanInfo);
    for (const f of facets) path.facets.add(f);
    for (const c of credentials) path.credentials.add(c);
    return { path, version: Number(writes[0] ?? 0) };
  }

  /**
   * Writes what a placement changed, reads the steps to emit again and the delegating
   * task's facts: all issued at once, so one round trip.
   */
  async save(path: TaskPath, placement: Placement, version: number, marks: WriteMarks = {}): Promise<SaveResult> {
    const t = path.taskId;
    const facts = path.facts as TaskFacts;
    const ttl = this.ttlMs;
    const writes: Promise<unknown>[] = [];
    if (placement.recorded.length > 0) {
      writes.push(
        this.store.hashSet(
          taskKey(t, "steps"),
          Object.fromEntries(
            placement.recorded.map((r) => {
              r.actionJson = JSON.stringify(r.action);
              return [r.action.id, r.actionJson];
            }),
          ),
        ),
        this.store.sortedAdd(
          taskKey(t, "order"),
          placement.recorded.map(({ step, score }) => ({ score, member: step.id })),
        ),
        this.store.hashSet(
          taskKey(t, "spans"),
          Object.fromEntries(placement.recorded.map(({ step, span }) => [step.spanId, JSON.stringify(span)])),
        ),
      );
    }
    if (placement.factsChanged) writes.push(this.store.set(taskKey(t, "facts"), JSON.stringify(facts), { ttlMs: ttl }));
    if (placement.newFacets.length > 0) writes.push(this.store.setAdd(taskKey(t, "facets"), placement.newFacets));
    const now = (this.options.now ?? Date.now)();
    if (placement.newCredentials.length > 0) {
      writes.push(this.store.setAdd(taskKey(t, "credentials"), placement.newCredentials));
      // bound to this task unless bound before (to it, or to another task: a reuse the detector reports)
      writes.push(...this.bindings.bindFromSpans(t, facts.agentId, placement.newCredentials, now));
    }
    // time-to-live and the listing indexes are refreshed now and then, not on every batch:
    // they are most of a batch's commands otherwise
    const refreshTtl = marks.ttlSetAtMs === undefined || now - marks.ttlSetAtMs > ttl / 10;
    if (refreshTtl) {
      for (const part of TASK_PARTS) if (part !== "facts") writes.push(this.store.expire(taskKey(t, part), ttl));
      marks.ttlSetAtMs = now;
    }
    const reindex =
      marks.indexedLastSeenMs === undefined ||
      facts.lastSeenMs - marks.indexedLastSeenMs >= INDEX_GRANULARITY_MS ||
      marks.indexedPhase !== facts.phase ||
      marks.indexedAgent !== facts.agentId;
    if (reindex) {
      const member = [{ score: facts.lastSeenMs, member: t }];
      writes.push(this.store.sortedAdd(ALL, member));
      if (facts.agentId) writes.push(this.store.sortedAdd(byAgent(facts.agentId), member));
      if (facts.phase === "completed") {
        writes.push(this.store.sortedAdd(COMPLETED, member));
        if (marks.indexedPhase !== "completed") {
          writes.push(this.store.sortedRemove(OPEN, [t]));
          writes.push(this.store.sortedAdd(COMPLETIONS, [{ score: now, member: t }]));
        }
      } else {
        writes.push(this.store.sortedAdd(OPEN, member));
      }
      marks.indexedLastSeenMs = facts.lastSeenMs;
      marks.indexedPhase = facts.phase;
      marks.indexedAgent = facts.agentId;
    }
    // listed among its parent's delegates once per writer (and again with each TTL refresh)
    if (facts.parentTaskId && (refreshTtl || marks.listedUnder !== facts.parentTaskId)) {
      writes.push(this.store.setAdd(taskKey(facts.parentTaskId, "children"), [t]));
      marks.listedUnder = facts.parentTaskId;
    }

    const written = this.store.hashIncrement(taskKey(t, "writes"), "n", 1);
    const reevaluated = this.store.hashGet(
      taskKey(t, "steps"),
      placement.reevaluate.map((r) => r.id),
    );
    const parent = facts.parentTaskId ? this.store.get(taskKey(facts.parentTaskId, "facts")) : Promise.resolve(null);

    // which task each span belongs to, per trace: a span of another task may name one of
    // these as its parent or link to it (an agent handing work to another task)
    const byTrace = new Map<string, Record<string, string>>();
    for (const { action } of placement.recorded) {
      const fields = byTrace.get(action.traceId) ?? {};
      fields[action.spanId] = t;
      byTrace.set(action.traceId, fields);
    }
    for (const [traceId, fields] of byTrace) {
      writes.push(this.store.hashSet(traceKey(traceId), fields));
      // a trace's index gets its time-to-live when the task first writes to it, and with the task's own refreshes
      if (refreshTtl || !marks.traces?.has(traceId)) {
        writes.push(this.store.expire(traceKey(traceId), ttl));
        marks.traces ??= new Set();
        if (marks.traces.size < MAX_MARKED_TRACES) marks.traces.add(traceId);
      }
    }
    // and whether this task's spans point into another task: parents not in this task, links
    const lookups: Promise<(string | null)[]>[] = [];
    if (!facts.parentTaskId) {
      const refs = new Map<string, Set<string>>();
      const ref = (traceId: string, spanId: string) => {
        // each reference is looked up once by this writer (a task's spans share their parents)
        if (path.spans.has(spanId) || marks.lookedUp?.has(spanId)) return;
        marks.lookedUp ??= new Set();
        if (marks.lookedUp.size < MAX_MARKED_TRACES * 4) marks.lookedUp.add(spanId);
        const set = refs.get(traceId) ?? new Set<string>();
        set.add(spanId);
        refs.set(traceId, set);
      };
      for (const { action } of placement.recorded) {
        if (action.parentSpanId) ref(action.traceId, action.parentSpanId);
        for (const l of action.links) ref(l.traceId, l.spanId);
      }
      for (const [traceId, spanIds] of refs) lookups.push(this.store.hashGet(traceKey(traceId), [...spanIds]));
    }
    // a scope registered through the API is looked for at most once a second per task
    const checkScope =
      marks.scopeCheckedAtMs === undefined || now - marks.scopeCheckedAtMs >= (this.options.registryCheckMs ?? SCOPE_CHECK_MS);
    if (checkScope) marks.scopeCheckedAtMs = now;
    const registered = checkScope ? this.store.get(taskKey(t, "registered-scope")) : Promise.resolve(null);
    const [, n, raw, parentFacts, found, registeredScope] = await Promise.all([
      Promise.all(writes),
      written,
      reevaluated,
      parent,
      Promise.all(lookups),
      registered,
    ]);
    const registration = registeredScope ? parseRegistered(registeredScope) : undefined;
    const referenced = [...new Set(found.flat().filter((x): x is string => x !== null && x !== t))];
    return {
      reevaluated: raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as AgentAction),
      conflict: n !== version + 1,
      ...(parentFacts ? { parent: JSON.parse(parentFacts) as TaskFacts } : {}),
      ...(referenced.length > 0 ? { referencedTasks: referenced.sort() } : {}),
      ...(registration ? { registeredScope: registration.scope } : {}),
      ...(registration?.atMs !== undefined ? { registeredAtMs: registration.atMs } : {}),
      version: n,
    };
  }

  /** Rewrites the task's facts (after its lineage changed), and lists it among its parent's delegates. */
  async saveFacts(path: TaskPath): Promise<void> {
    const facts = path.facts;
    if (!facts) return;
    await Promise.all([
      this.store.set(taskKey(path.taskId, "facts"), JSON.stringify(facts), { ttlMs: this.ttlMs }),
      facts.parentTaskId ? this.store.setAdd(taskKey(facts.parentTaskId, "children"), [path.taskId]) : undefined,
    ]);
  }

  /**
   * Registers a task's scope (the scope registry): the pathfinder reads it with the task's
   * next batch, and it wins over a scope the task's spans declare.
   */
  async registerScope(taskId: string, scope: TaskScope, atMs = Date.now(), agentId?: string): Promise<void> {
    const value = { scope, registeredAtMs: atMs, ...(agentId ? { agentId } : {}) };
    await this.store.set(taskKey(taskId, "registered-scope"), JSON.stringify(value), { ttlMs: this.ttlMs });
  }

  async registeredScope(taskId: string): Promise<TaskScope | undefined> {
    return (await this.registration(taskId))?.scope;
  }

  /** The scope registered for the task, when, and for which agent (as the registrant said). */
  async registration(taskId: string): Promise<{ scope: TaskScope; atMs?: number; agentId?: string } | undefined> {
    const raw = await this.store.get(taskKey(taskId, "registered-scope"));
    return raw ? parseRegistered(raw) : undefined;
  }

  /** Recorded actions by id, in the order asked (missing ones left out). */
  async actions(taskId: string, ids: string[]): Promise<AgentAction[]> {
    const raw = await this.store.hashGet(taskKey(taskId, "steps"), ids);
    return raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as AgentAction);
  }

  async facts(taskId: string): Promise<TaskFacts | undefined> {
    const raw = await this.store.get(taskKey(taskId, "facts"));
    return raw ? (JSON.parse(raw) as TaskFacts) : undefined;
  }

  /** What the console shows of a task; its status as of `nowMs`. */
  async summary(taskId: string, nowMs = Date.now()): Promise<TaskSummary | undefined> {
    const [facts, steps, facets, credentials, children, revoked] = await Promise.all([
      this.facts(taskId),
      this.store.sortedCount(taskKey(taskId, "order")),
      this.store.setMembers(taskKey(taskId, "facets")),
      this.store.setMembers(taskKey(taskId, "credentials")),
      this.store.setMembers(taskKey(taskId, "children")),
      this.revoked(taskId),
    ]);
    if (!facts) return undefined;
    const lists = { agents: [], tools: [], dataClassifications: [], environments: [], destinations: [] } as Record<
      (typeof FACET_KINDS)[keyof typeof FACET_KINDS],
      string[]
    >;
    for (const f of facets) {
      const colon = f.indexOf(":");
      const kind = FACET_KINDS[f.slice(0, colon) as keyof typeof FACET_KINDS];
      if (kind) lists[kind].push(f.slice(colon + 1));
    }
    for (const l of Object.values(lists)) l.sort();
    const status = statusOf(facts, revoked, nowMs, this.idleMs);
    const summary: TaskSummary = {
      taskId,
      status,
      firstSeenMs: facts.firstSeenMs,
      lastSeenMs: facts.lastSeenMs,
      startMs: facts.startMs,
      endMs: facts.endMs,
      durationMs: Math.max(0, facts.endMs - facts.startMs),
      steps,
      ...lists,
      credentials: credentials.sort(),
      children: children.sort(),
    };
    for (const k of [
      "agentId",
      "agentName",
      "spiffeId",
      "intent",
      "scope",
      "scopeError",
      "parentTaskId",
      "lineage",
      "completedAtMs",
    ] as const) {
      if (facts[k] !== undefined) (summary as unknown as Record<string, unknown>)[k] = facts[k];
    }
    if (revoked) summary.revokedAtMs = revoked.atMs;
    return summary;
  }

  /** The task's steps in path order, as the pathfinder would emit them now. */
  async path(taskId: string): Promise<Step[]> {
    const { path } = await this.load(taskId);
    const actions = await this.actions(
      taskId,
      path.order.map((e) => e.id),
    );
    return actions.map((a, index) => stepOf(path, AgentActionSchema.parse(a), index));
  }

  /**
   * Tasks of an index with min ≤ score ≤ max, oldest first: `completed` scored by their last
   * span when they completed, `open` by their last span (an open one long silent is idle);
   * newest first when `reverse`.
   */
  async byLastSeen(
    index: "completed" | "open",
    range: { min: number; max: number; offset?: number; limit: number; reverse?: boolean },
  ): Promise<{ taskId: string; lastSeenMs: number }[]> {
    const page = await this.store.sortedRangeByScore(index === "completed" ? COMPLETED : OPEN, { offset: 0, ...range });
    return page.map((e) => ({ taskId: e.member, lastSeenMs: e.score }));
  }

  /** Up to `limit` completed tasks the learner has not taken, recorded at or before `maxMs`, oldest first. */
  async completions(maxMs: number, limit: number): Promise<string[]> {
    const page = await this.store.sortedRangeByScore(COMPLETIONS, { min: Number.NEGATIVE_INFINITY, max: maxMs, offset: 0, limit });
    return page.map((e) => e.member);
  }

  /** The learner took these completions. */
  async takeCompletions(taskIds: string[]): Promise<void> {
    if (taskIds.length > 0) await this.store.sortedRemove(COMPLETIONS, taskIds);
  }

  /** The task's last step in path order: its position, ids and end. */
  async lastStep(taskId: string): Promise<{ index: number; traceId: string; spanId: string; endTimeMs: number } | undefined> {
    const [last, count] = await Promise.all([
      this.store.sortedRange(taskKey(taskId, "order"), { offset: 0, limit: 1, reverse: true }),
      this.store.sortedCount(taskKey(taskId, "order")),
    ]);
    const id = last[0];
    if (!id) return undefined;
    const [action] = await this.actions(taskId, [id]);
    if (!action) return undefined;
    return { index: count - 1, traceId: action.traceId, spanId: action.spanId, endTimeMs: action.endTimeMs };
  }

  /** Marks a one-off event of a task (e.g. "flagged as silent"); true for the first caller only. */
  async markOnce(taskId: string, what: string): Promise<boolean> {
    return this.store.setIfAbsent(taskKey(taskId, `once:${what}`), "1", { ttlMs: this.ttlMs });
  }

  async marked(taskId: string, what: string): Promise<boolean> {
    return (await this.store.get(taskKey(taskId, `once:${what}`))) !== null;
  }

  async credentials(taskId: string): Promise<string[]> {
    return (await this.store.setMembers(taskKey(taskId, "credentials"))).sort();
  }

  async children(taskId: string): Promise<string[]> {
    return (await this.store.setMembers(taskKey(taskId, "children"))).sort();
  }

  /** Marks the task revoked; the first mark wins. Returns the mark in force. */
  async markRevoked(taskId: string, mark: Revoked): Promise<Revoked> {
    const key = taskKey(taskId, "revoked");
    if (await this.store.setIfAbsent(key, JSON.stringify(mark), { ttlMs: this.ttlMs })) {
      await this.store.sortedAdd(REVOKED, [{ score: mark.atMs, member: taskId }]);
      return mark;
    }
    return (await this.revoked(taskId)) ?? mark;
  }

  /** Notes that the task's revocation was only recorded: no credential store took any of it. */
  async noteRecordedOnly(taskId: string): Promise<void> {
    const mark = await this.revoked(taskId);
    if (mark && !mark.recordedOnly)
      await this.store.set(taskKey(taskId, "revoked"), JSON.stringify({ ...mark, recordedOnly: true }), { ttlMs: this.ttlMs });
  }

  async revoked(taskId: string): Promise<Revoked | undefined> {
    const raw = await this.store.get(taskKey(taskId, "revoked"));
    return raw ? (JSON.parse(raw) as Revoked) : undefined;
  }

  /** The task's status as of `nowMs` (what `summary` says), read from its facts and revocation mark only. */
  async status(taskId: string, nowMs = Date.now()): Promise<TaskStatus | undefined> {
    const [facts, revoked] = await Promise.all([this.facts(taskId), this.revoked(taskId)]);
    if (!facts) return undefined;
    return statusOf(facts, revoked, nowMs, this.idleMs);
  }

  /**
   * Task ids, most recently active first, filtered by status, agent and last activity, with
   * the number of tasks the filter matches (`total`). Reads the narrowest index, then checks
   * each candidate's status. A filtered list walks at most `LIST_SCAN_LIMIT` candidates: past
   * that, `total` counts those walked and `totalIsLowerBound` says so.
   */
  async list(query: TaskQuery, nowMs = Date.now()): Promise<{ taskIds: string[]; total: number; totalIsLowerBound?: true }> {
    const { status, agentId } = query;
    const min = query.fromMs ?? Number.NEGATIVE_INFINITY;
    const max = query.toMs ?? Number.POSITIVE_INFINITY;
    const index = agentId
      ? byAgent(agentId)
      : status === "completed"
        ? COMPLETED
        : status === "revoked" || status === "recorded"
          ? REVOKED
          : status
            ? OPEN
            : ALL;
    const unbounded = min === Number.NEGATIVE_INFINITY && max === Number.POSITIVE_INFINITY;
    // the whole index, unfiltered: one page and the index's size
    if (!agentId && status === undefined && !query.accept && unbounded) {
      const [page, total] = await Promise.all([
        this.store.sortedRangeByScore(index, { min, max, offset: query.offset, limit: query.limit, reverse: true }),
        this.store.sortedCount(index),
      ]);
      return { taskIds: page.map((e) => e.member), total };
    }
    // filtered (or a window of the index): walk it newest first, keep the page and count every match.
    // A completed task may since have been revoked (its status is then "revoked"): the status is checked.
    const out: string[] = [];
    let total = 0;
    let walked = 0;
    const chunk = 500;
    for (let offset = 0; walked < LIST_SCAN_LIMIT; offset += chunk) {
      const page = await this.store.sortedRangeByScore(index, { min, max, offset, limit: chunk, reverse: true });
      walked += page.length;
      // every candidate's status, filter or not: a task whose data expired (Redis) while the
      // index still names it is not counted (nor shown)
      const [statuses, accepted] = await Promise.all([
        Promise.all(page.map((e) => this.status(e.member, nowMs))),
        Promise.all(page.map((e) => query.accept?.(e.member) ?? true)),
      ]);
      for (const [i, e] of page.entries()) {
        if (statuses[i] === undefined || (status && statuses[i] !== status) || !accepted[i]) continue;
        if (total >= query.offset && out.length < query.limit) out.push(e.member);
        total++;
      }
      if (page.length < chunk) return { taskIds: out, total };
    }
    // the walk's limit reached: a lower bound only if the index goes on
    const more = await this.store.sortedRangeByScore(index, { min, max, offset: walked, limit: 1, reverse: true });
    return more.length > 0 ? { taskIds: out, total, totalIsLowerBound: true } : { taskIds: out, total };
  }

  /**
   * The tasks of an agent (or all) within a window of last activity, counted per status and
   * flagged (`flagged`: whether a task has a finding), most recent first, at most
   * `COUNT_SCAN_LIMIT` of them: what the console shows beside its filters.
   */
  async counts(
    query: Pick<TaskQuery, "agentId" | "fromMs" | "toMs">,
    flagged: (taskId: string) => Promise<boolean>,
    nowMs = Date.now(),
  ): Promise<TaskCounts> {
    const min = query.fromMs ?? Number.NEGATIVE_INFINITY;
    const max = query.toMs ?? Number.POSITIVE_INFINITY;
    const index = query.agentId ? byAgent(query.agentId) : ALL;
    const byStatus = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const out: TaskCounts = { total: 0, byStatus, flagged: 0 };
    const chunk = 500;
    for (let offset = 0; offset < COUNT_SCAN_LIMIT; offset += chunk) {
      const page = await this.store.sortedRangeByScore(index, { min, max, offset, limit: chunk, reverse: true });
      const [statuses, flags] = await Promise.all([
        Promise.all(page.map((e) => this.status(e.member, nowMs))),
        Promise.all(page.map((e) => flagged(e.member))),
      ]);
      for (const [i, status] of statuses.entries()) {
        // a task whose facts are gone (retention) is not counted
        if (status === undefined) continue;
        out.total++;
        byStatus[status]++;
        if (flags[i]) out.flagged++;
      }
      if (page.length < chunk) return out;
    }
    const more = await this.store.sortedRangeByScore(index, { min, max, offset: COUNT_SCAN_LIMIT, limit: 1, reverse: true });
    return more.length > 0 ? { ...out, isLowerBound: true } : out;
  }
}

/** How many tasks a query's window holds per status, and how many of them `flagged` says yes to. */
export interface TaskCounts {
  total: number;
  byStatus: Record<TaskStatus, number>;
  flagged: number;
  /** The walk stopped at `COUNT_SCAN_LIMIT` tasks: the counts are of those. */
  isLowerBound?: true;
}

/** A task's status: revoked (or only recorded) wins, then completed, then idle past the timeout, else its phase. */
function statusOf(facts: TaskFacts, revoked: Revoked | undefined, nowMs: number, idleMs: number): TaskStatus {
  if (revoked) return revoked.recordedOnly ? "recorded" : "revoked";
  if (facts.phase === "completed") return "completed";
  return nowMs - facts.lastSeenMs > idleMs ? "idle" : facts.phase;
}
