import { DelegatingStore } from "../runtime/store/delegating-store.js";
import type { Store } from "../runtime/store/store.js";
import type { Metrics } from "../runtime/telemetry.js";

/**
 * A bound on the tasks a store keeps: the embedded mode's in-memory store must not grow
 * without limit (one hostile request of 76,000 one-span traces made 76,000 tasks, kept for
 * the task time-to-live). Redis has its own bounds (maxmemory); the Store port knows keys,
 * not tasks, so the bound lives here, beside the task store whose key layout it follows
 * (task-store.ts, credential-bindings.ts):
 *
 *   task:{id}:*              every key of a task (facts, steps, order, spans, ... and what
 *                            the detector, revoker and console keep per task)
 *   tasks:*                  the task indexes (sorted sets of task ids)
 *   trace:{traceId}:spans    span id → task id, per trace: the task's as long as it is the
 *                            only task in it
 *   credential:{id}:binding  the binding of a credential to its task
 *
 * A store wrapper: every write to a task's keys counts as activity; past `maxTasks` tasks,
 * or past `maxBytes` written for the tasks held (a few long tasks grow as much as many short
 * ones), the least recently active task is evicted, all its keys together, and it leaves the
 * indexes. The task being written is never evicted for its own write.
 * What the SOC keeps of a task (findings, incidents, revocations and their ledger) is not
 * evicted: it is the record of what happened, and each has its own time-to-live.
 */
export interface TaskRetentionOptions {
  maxTasks: number;
  /**
   * What the held tasks' state may take, counted as the bytes of the keys, fields, members
   * and values written (a value written again over the same hash field counts again: the
   * count errs on the high side). The store's memory is a few times this.
   */
  maxBytes?: number;
  metrics?: Pick<Metrics, "storeTasks" | "storeEvictedTasks">;
}

interface Held {
  /** The task's own keys written so far (task:{id}:*). */
  keys: Set<string>;
  /** Indexes (tasks:*) that list it. */
  indexes: Set<string>;
  /** Trace indexes it has spans in. */
  traces: Set<string>;
  /** Credential bindings that bind a credential to it. */
  bindings: Set<string>;
  /** Bytes written for it (see maxBytes); string keys by their current value. */
  bytes: number;
  strings: Map<string, number>;
}

const TASK_PREFIX = "task:{";
const INDEX_PREFIX = "tasks:";
const TRACE_PREFIX = "trace:{";
const TRACE_SUFFIX = "}:spans";
const CREDENTIAL_PREFIX = "credential:{";
const BINDING_SUFFIX = "}:binding";

/** The task a key belongs to (`task:{id}:part`; a part never holds a brace), or undefined. */
export function taskOfKey(key: string): string | undefined {
  if (!key.startsWith(TASK_PREFIX)) return undefined;
  const end = key.lastIndexOf("}:");
  return end > TASK_PREFIX.length - 1 ? key.slice(TASK_PREFIX.length, end) : undefined;
}

const lengths = (values: string[]) => values.reduce((n, v) => n + v.length, 0);
function fieldBytes(fields: Record<string, string>): number {
  let n = 0;
  for (const k in fields) n += k.length + (fields[k] as string).length;
  return n;
}

const isTraceIndex = (key: string) => key.startsWith(TRACE_PREFIX) && key.endsWith(TRACE_SUFFIX);
const isBinding = (key: string) => key.startsWith(CREDENTIAL_PREFIX) && key.endsWith(BINDING_SUFFIX);

export class TaskRetention extends DelegatingStore {
  /** Least recently active first (a Map keeps insertion order; activity moves a task to the end). */
  private readonly held = new Map<string, Held>();
  /** Which held tasks have spans in each trace index. */
  private readonly traceTasks = new Map<string, Set<string>>();
  private evicting: Promise<void> = Promise.resolve();
  private bytes = 0;
  private readonly maxBytes: number;

  constructor(
    inner: Store,
    private readonly options: TaskRetentionOptions,
  ) {
    super(inner);
    if (!(options.maxTasks >= 1)) throw new Error("maxTasks must be at least 1");
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  }

  /** Bytes counted for the tasks held now. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** Tasks held now. */
  get tasks(): number {
    return this.held.size;
  }

  /** The held tasks, least recently active first (for tests). */
  taskIds(): string[] {
    return [...this.held.keys()];
  }

  // ---- bookkeeping -----------------------------------------------------------------------

  /** A write to the task of `bytes`: it becomes the most recently active; the least recent may have to go. */
  private touch(taskId: string, bytes = 0): Held {
    let h = this.held.get(taskId);
    if (h) {
      this.held.delete(taskId);
    } else {
      h = { keys: new Set(), indexes: new Set(), traces: new Set(), bindings: new Set(), bytes: 0, strings: new Map() };
    }
    this.held.set(taskId, h);
    h.bytes += bytes;
    this.bytes += bytes;
    // the least recently active go first; never the task written now
    while (this.held.size > this.options.maxTasks || this.bytes > this.maxBytes) {
      const oldest = this.held.keys().next().value as string;
      if (oldest === taskId) break;
      this.evict(oldest);
    }
    this.options.metrics?.storeTasks.set(this.held.size);
    return h;
  }

  /** A write of `bytes` to `key`: the task's, when it is a task key. */
  private wrote(key: string, bytes: number): void {
    const t = taskOfKey(key);
    if (t !== undefined) this.touch(t, bytes + (this.held.get(t)?.keys.has(key) ? 0 : key.length)).keys.add(key);
  }

  /** A string value written to a task key: counted by its current value, not each write. */
  private wroteString(key: string, value: string): void {
    const t = taskOfKey(key);
    if (t === undefined) return;
    const before = this.held.get(t)?.strings.get(key) ?? 0;
    const h = this.touch(t, value.length - before + (this.held.get(t)?.keys.has(key) ? 0 : key.length));
    h.keys.add(key);
    h.strings.set(key, value.length);
  }

  private evict(taskId: string): void {
    const h = this.held.get(taskId) as Held;
    this.held.delete(taskId);
    this.bytes -= h.bytes;
    // issued at once, without waiting in between: on the in-memory store each takes effect as it is called
    const deletions: string[] = [...h.keys, ...h.bindings];
    for (const trace of h.traces) {
      const tasks = this.traceTasks.get(trace);
      tasks?.delete(taskId);
      if (!tasks || tasks.size === 0) {
        this.traceTasks.delete(trace);
        deletions.push(trace);
      }
    }
    const done: Promise<unknown>[] = [];
    if (deletions.length > 0) done.push(this.inner.delete(...deletions));
    for (const index of h.indexes) done.push(this.inner.sortedRemove(index, [taskId]));
    // an eviction that fails (not on the in-memory store) leaves keys to their time-to-live; writes go on
    this.evicting = Promise.all([this.evicting, ...done]).then(
      () => undefined,
      () => undefined,
    );
    this.options.metrics?.storeEvictedTasks.inc();
  }

  /** Resolves once the evictions so far have been carried out (errors included). */
  async settled(): Promise<void> {
    await this.evicting;
  }

  private async after<T>(result: Promise<T>): Promise<T> {
    const value = await result;
    await this.evicting;
    return value;
  }

  // ---- writes ----------------------------------------------------------------------------

  override set(key: string, value: string, options?: { ttlMs?: number }): Promise<void> {
    this.wroteString(key, value);
    if (isBinding(key)) this.bound(key, value);
    return this.after(this.inner.set(key, value, options));
  }

  override async setIfAbsent(key: string, value: string, options?: { ttlMs?: number }): Promise<boolean> {
    const set = await this.inner.setIfAbsent(key, value, options);
    if (set) this.wroteString(key, value);
    if (set && isBinding(key)) this.bound(key, value);
    await this.evicting;
    return set;
  }

  /** A credential binding names its task in its JSON: it goes when that task goes. */
  private bound(key: string, value: string): void {
    let taskId: unknown;
    try {
      taskId = (JSON.parse(value) as { taskId?: unknown }).taskId;
    } catch {
      return;
    }
    if (typeof taskId === "string") this.touch(taskId, key.length + value.length).bindings.add(key);
  }

  override delete(...keys: string[]): Promise<void> {
    for (const key of keys) {
      const t = taskOfKey(key);
      if (t !== undefined) this.held.get(t)?.keys.delete(key);
    }
    return this.inner.delete(...keys);
  }

  override expire(key: string, ttlMs: number): Promise<void> {
    // a time-to-live is no activity, and gives a task no key it did not have
    return this.inner.expire(key, ttlMs);
  }

  override hashSet(key: string, fields: Record<string, string>): Promise<void> {
    this.wrote(key, fieldBytes(fields));
    if (isTraceIndex(key)) {
      // span id → task id: each task named here has spans in this trace (and the bytes of its fields)
      const byTask = new Map<string, number>();
      for (const span in fields) {
        const taskId = fields[span] as string;
        byTask.set(taskId, (byTask.get(taskId) ?? 0) + span.length + taskId.length);
      }
      for (const [taskId, bytes] of byTask) {
        this.touch(taskId, bytes + (this.held.get(taskId)?.traces.has(key) ? 0 : key.length)).traces.add(key);
        let tasks = this.traceTasks.get(key);
        if (!tasks) {
          tasks = new Set();
          this.traceTasks.set(key, tasks);
        }
        tasks.add(taskId);
      }
    }
    return this.after(this.inner.hashSet(key, fields));
  }

  override hashSetIfAbsent(key: string, fields: Record<string, string>): Promise<void> {
    this.wrote(key, fieldBytes(fields));
    return this.after(this.inner.hashSetIfAbsent(key, fields));
  }

  override hashIncrement(key: string, field: string, by: number): Promise<number> {
    this.wrote(key, 0);
    return this.after(this.inner.hashIncrement(key, field, by));
  }

  override listPush(key: string, values: string[]): Promise<number> {
    this.wrote(key, lengths(values));
    return this.after(this.inner.listPush(key, values));
  }

  override listTrim(key: string, start: number, stop: number): Promise<void> {
    return this.inner.listTrim(key, start, stop);
  }

  override setAdd(key: string, members: string[]): Promise<number> {
    this.wrote(key, lengths(members));
    return this.after(this.inner.setAdd(key, members));
  }

  override sortedAdd(key: string, entries: { score: number; member: string }[]): Promise<void> {
    this.wrote(key, lengths(entries.map((e) => e.member)) + 8 * entries.length);
    if (key.startsWith(INDEX_PREFIX)) for (const { member } of entries) this.touch(member).indexes.add(key);
    return this.after(this.inner.sortedAdd(key, entries));
  }

  override sortedRemove(key: string, members: string[]): Promise<void> {
    if (key.startsWith(INDEX_PREFIX)) for (const m of members) this.held.get(m)?.indexes.delete(key);
    return this.inner.sortedRemove(key, members);
  }

  // ---- reads -----------------------------------------------------------------------------

  override async close(): Promise<void> {
    await this.evicting;
    this.held.clear();
    this.bytes = 0;
    this.traceTasks.clear();
    this.options.metrics?.storeTasks.set(0);
    await this.inner.close();
  }
}
