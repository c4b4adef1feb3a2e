import type { Store } from "../runtime/store/store.js";
import { type Baseline, spreadOf, spreadOfHistogram, type TaskBehaviour, tallyOf } from "./baseline.js";

/**
 * Where the baselines live: one hash of counts per agent, and its recent task samples.
 *
 *   baseline:{agent}          hash  tasks → n, tool⇥name, next⇥from⇥to, dest⇥host, dom⇥domain, cls⇥class → tasks;
 *                                   rep⇥tool⇥n → tasks that called the tool n times,
 *                                   kdom⇥first tool⇥domain → tasks of that kind that wrote there,
 *                                   tdest⇥tool⇥host → tasks in which the tool reached the host,
 *                                   stk⇥tool⇥n → tasks whose longest run of consecutive calls of the tool was n
 *   baseline:{agent}:lengths  list  path lengths of its latest tasks (at most `samples`)
 *   baseline:{agent}:rates    list  most steps in a minute, same tasks
 *   baseline:meta             hash  generation (bumped after each learning), the learner's cursors
 *   baseline:pending          zset  finished tasks waiting to settle, by when the learner found them
 *
 * The braces are a Redis Cluster hash tag: an agent's keys share a slot. Detectors keep
 * the baselines they read in memory until the generation changes (the learner bumps it
 * after it learned something), so reading costs one GET per batch.
 */
const FIELD = "\t";
/** Calls of one tool in one task are counted up to this (a histogram bucket each). */
const MAX_REPEAT = 100;
const META = "baseline:meta";
const PENDING = "baseline:pending";
const countsKey = (agent: string) => `baseline:{${agent}}`;
const lengthsKey = (agent: string) => `baseline:{${agent}}:lengths`;
const ratesKey = (agent: string) => `baseline:{${agent}}:rates`;

export interface BaselineStoreOptions {
  /** Path length and pace samples kept per agent (the most recent tasks). */
  samples?: number;
  /** Distinct values kept per feature and agent; past it, new values are not added. */
  maxValues?: number;
  /** Baselines kept in memory. */
  cached?: number;
}

export class BaselineStore {
  private readonly cache = new Map<string, Baseline>();
  private generation: string | null | undefined;
  private readonly samples: number;
  private readonly maxValues: number;
  private readonly cached: number;

  constructor(
    private readonly store: Store,
    options: BaselineStoreOptions = {},
  ) {
    this.samples = options.samples ?? 500;
    this.maxValues = options.maxValues ?? 10_000;
    this.cached = options.cached ?? 10_000;
  }

  /** The baselines of these agents as learned so far (read again after new learning). */
  async forAgents(agents: string[]): Promise<Map<string, Baseline>> {
    const [generation] = await this.store.hashGet(META, ["generation"]);
    if (generation !== this.generation) {
      this.cache.clear();
      this.generation = generation ?? null;
    }
    const missing = [...new Set(agents)].filter((a) => !this.cache.has(a));
    const loaded = await Promise.all(missing.map((a) => this.load(a)));
    for (const b of loaded) {
      if (this.cache.size >= this.cached) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(b.agent, b);
    }
    return new Map(agents.flatMap((a) => (this.cache.has(a) ? [[a, this.cache.get(a) as Baseline]] : [])));
  }

  /** One agent's baseline, read from the store. */
  async load(agent: string): Promise<Baseline> {
    const [hash, lengths, rates] = await Promise.all([
      this.store.hashGetAll(countsKey(agent)),
      this.store.listRange(lengthsKey(agent), 0, -1),
      this.store.listRange(ratesKey(agent), 0, -1),
    ]);
    const tools = new Map<string, number>();
    const next = new Map<string, Map<string, number>>();
    const destinations = new Map<string, number>();
    const byTool = new Map<string, Map<string, number>>();
    const domains = new Map<string, number>();
    const classes = new Map<string, number>();
    const byKind = new Map<string, Map<string, number>>();
    const banks = new Map<string, number>();
    const banksByKind = new Map<string, Map<string, number>>();
    const streaks = new Map<string, { max: number; tasks: number }>();
    const repeats = new Map<string, Map<number, number>>();
    for (const [field, value] of Object.entries(hash)) {
      const n = Number(value);
      const [kind, a, b] = field.split(FIELD) as [string, string | undefined, string | undefined];
      if (a === undefined || !(n > 0)) continue;
      if (kind === "tool") tools.set(a, n);
      else if (kind === "dest") destinations.set(a, n);
      else if (kind === "tdest" && b !== undefined) {
        const m = byTool.get(a) ?? new Map<string, number>();
        m.set(b, n);
        byTool.set(a, m);
      } else if (kind === "dom") (a.startsWith("iban:") ? banks : domains).set(a, n);
      else if (kind === "cls") classes.set(a, n);
      else if (kind === "stk" && b !== undefined) {
        const st = streaks.get(a) ?? { max: 0, tasks: 0 };
        st.max = Math.max(st.max, Number(b));
        st.tasks += n;
        streaks.set(a, st);
      } else if (kind === "kdom" && b !== undefined) {
        const into = b.startsWith("iban:") ? banksByKind : byKind;
        const m = into.get(a) ?? new Map<string, number>();
        m.set(b, n);
        into.set(a, m);
      } else if (kind === "rep" && b !== undefined) {
        const h = repeats.get(a) ?? new Map<number, number>();
        h.set(Number(b), n);
        repeats.set(a, h);
      } else if (kind === "next" && b !== undefined) {
        const m = next.get(a) ?? new Map<string, number>();
        m.set(b, n);
        next.set(a, m);
      }
    }
    return {
      agent,
      tasks: Number(hash.tasks ?? 0),
      tools: tallyOf(tools),
      transitions: new Map([...next].map(([from, m]) => [from, tallyOf(m)])),
      destinations: tallyOf(destinations),
      destinationsByTool: new Map([...byTool].map(([t, m]) => [t, tallyOf(m)])),
      domains: tallyOf(domains),
      domainsByKind: new Map([...byKind].map(([k, m]) => [k, tallyOf(m)])),
      banks: tallyOf(banks),
      banksByKind: new Map([...banksByKind].map(([k, m]) => [k, tallyOf(m)])),
      classes: tallyOf(classes),
      repeats: new Map([...repeats].map(([tool, h]) => [tool, spreadOfHistogram(h)])),
      streaks,
      lengths: spreadOf(lengths.map(Number)),
      rates: spreadOf(rates.map(Number)),
    };
  }

  /**
   * Adds one task's behaviour to its agent's baseline: counts incremented, samples pushed
   * (the oldest dropped past `samples`). Not transactional: a crash midway learns part of
   * one task, which moves a baseline by less than one task does.
   */
  async learn(b: TaskBehaviour, current?: Baseline): Promise<void> {
    const key = countsKey(b.agent);
    const counts = new Map<string, number>();
    const add = (field: string, known: Map<string, number> | undefined, value: string) => {
      // past the cap, only values already known are counted
      if (current && known && !known.has(value) && known.size >= this.maxValues) return;
      counts.set(field, (counts.get(field) ?? 0) + 1);
    };
    for (const t of b.tools) add(`tool${FIELD}${t}`, current?.tools.counts, t);
    for (const [from, to] of b.transitions) add(`next${FIELD}${from}${FIELD}${to}`, current?.transitions.get(from)?.counts, to);
    for (const d of b.destinations) add(`dest${FIELD}${d}`, current?.destinations.counts, d);
    for (const td of b.toolDestinations) {
      const [tool, host] = td.split("→") as [string, string];
      add(`tdest${FIELD}${tool}${FIELD}${host}`, current?.destinationsByTool.get(tool)?.counts, host);
    }
    for (const d of b.domains) add(`dom${FIELD}${d}`, current?.domains.counts, d);
    for (const c of b.classes) add(`cls${FIELD}${c}`, undefined, c);
    for (const kd of b.kindDomains) {
      const [kind, domain] = kd.split("→") as [string, string];
      add(`kdom${FIELD}${kind}${FIELD}${domain}`, current?.domainsByKind.get(kind)?.counts, domain);
    }
    for (const [tool, n] of Object.entries(b.streaks)) add(`stk${FIELD}${tool}${FIELD}${Math.min(n, MAX_REPEAT)}`, undefined, tool);
    for (const [tool, n] of Object.entries(b.calls)) add(`rep${FIELD}${tool}${FIELD}${Math.min(n, MAX_REPEAT)}`, undefined, tool);
    await Promise.all([
      this.store.hashIncrement(key, "tasks", 1),
      ...[...counts].map(([field, n]) => this.store.hashIncrement(key, field, n)),
      this.store.listPush(lengthsKey(b.agent), [String(b.length)]),
      this.store.listPush(ratesKey(b.agent), [String(b.peakRate)]),
      this.store.listTrim(lengthsKey(b.agent), -this.samples, -1),
      this.store.listTrim(ratesKey(b.agent), -this.samples, -1),
    ]);
  }

  /** Tells every detector that baselines changed (they read them again). */
  async bumpGeneration(): Promise<void> {
    await this.store.hashIncrement(META, "generation", 1);
  }

  /** The learner's position in an index of finished tasks: a score, and how many tasks with it it has seen. */
  async cursor(name: string): Promise<{ score: number; seen: number } | undefined> {
    const [raw] = await this.store.hashGet(META, [`cursor${FIELD}${name}`]);
    if (raw === null || raw === undefined) return undefined;
    const [score, seen] = raw.split(" ").map(Number) as [number, number | undefined];
    return { score, seen: seen ?? 0 };
  }

  async setCursor(name: string, cursor: { score: number; seen: number }): Promise<void> {
    await this.store.hashSet(META, { [`cursor${FIELD}${name}`]: `${cursor.score} ${cursor.seen}` });
  }

  /** Finished tasks found at `atMs`, to be learned once they have settled. */
  async addPending(taskIds: string[], atMs: number): Promise<void> {
    if (taskIds.length > 0)
      await this.store.sortedAdd(
        PENDING,
        taskIds.map((member) => ({ member, score: atMs })),
      );
  }

  /** Pending tasks found at or before `foundAtOrBeforeMs`, oldest first. */
  async duePending(foundAtOrBeforeMs: number, limit: number): Promise<string[]> {
    const page = await this.store.sortedRangeByScore(PENDING, { min: Number.NEGATIVE_INFINITY, max: foundAtOrBeforeMs, offset: 0, limit });
    return page.map((e) => e.member);
  }

  async removePending(taskIds: string[]): Promise<void> {
    if (taskIds.length > 0) await this.store.sortedRemove(PENDING, taskIds);
  }
}
