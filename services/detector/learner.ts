import type { Logger } from "pino";
import type { TaskStore } from "../pathfinder/task-store.js";
import { type Clock, systemClock } from "../runtime/clock.js";
import type { Metrics } from "../runtime/telemetry.js";
import { type Baseline, behaviourOf } from "./baseline.js";
import type { BaselineStore } from "./baseline-store.js";
import { type Policy, profileFor } from "./policy.js";

/**
 * The baseline learner: now and then, the tasks that finished since its last look (their
 * root span ended: the pathfinder's queue of completions; or no span came for the idle
 * timeout: a cursor over the open tasks by last activity) are added to their agents'
 * baselines, once each (marked in the store, so several detectors agree). A task with a
 * policy finding (out of scope, flow, provenance, after revocation) is left out: drift must
 * not teach the baseline that drift is normal. A task is learned `settleMs` after the
 * learner found it finished, so that the detector has judged all of its steps first.
 */
export interface Learner {
  /** One look at the finished tasks; how many it learned. */
  sweep(): Promise<number>;
  /** Learns every task finished or not, now (replay's warm-up); how many it learned. */
  learnAll(): Promise<number>;
  stop(): void;
}

/** Marks a task as having a policy finding (the detector sets it; the learner reads it). */
export const VIOLATION_MARK = "violation";
/**
 * Marks a task that raised an anomaly alert (severity medium or above, not shadow): it is held
 * back from the baseline for `holdMs` after it finished, so that the SOC can answer it first
 * (a task revoked or quarantined by then is never learned), and an attack repeated meanwhile is
 * still unlike the baseline. Past the hold, it is learned like any other task.
 */
export const ALERT_MARK = "anomaly_alert";
const LEARNED_MARK = "baseline_learned";
const HELD_MARK = "baseline_held";
const PAGE = 1_000;
const PARALLEL = 32;

export function watchLearning(deps: {
  tasks: TaskStore;
  baselines: BaselineStore;
  policy: () => Policy;
  intervalMs: number;
  settleMs: number;
  /** How long a task that raised an anomaly alert waits before it is learned (default 24 h; 0: no hold). */
  holdMs?: number;
  idleMs: number;
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
  /** Where the time and the sweep's timer come from (default: the wall clock). */
  clock?: Clock;
}): Learner {
  const clock = deps.clock ?? systemClock;
  const now = deps.now ?? (() => clock.now());

  /** The baselines as a sweep began (read once per agent and sweep: for the cap on distinct values). */
  type Known = Map<string, Promise<Baseline>>;
  const knownOf = (known: Known, agent: string) => {
    let b = known.get(agent);
    if (!b) {
      b = deps.baselines.load(agent);
      known.set(agent, b);
    }
    return b;
  };

  const holdMs = deps.holdMs ?? 24 * 3_600_000;

  /** Learns a settled task (true), or leaves it out; `held` collects the alerted tasks to look at again later. */
  async function learnTask(taskId: string, policy: Policy, known: Known, held: string[], hold: boolean): Promise<boolean> {
    const [violation, revoked, alerted] = await Promise.all([
      deps.tasks.marked(taskId, VIOLATION_MARK),
      deps.tasks.revoked(taskId),
      hold ? deps.tasks.marked(taskId, ALERT_MARK) : false,
    ]);
    if (violation || revoked) {
      deps.metrics?.baselineTasks.inc({ outcome: "excluded" });
      return false;
    }
    if (alerted && (await deps.tasks.markOnce(taskId, HELD_MARK))) {
      deps.metrics?.baselineTasks.inc({ outcome: "held" });
      held.push(taskId);
      return false;
    }
    if (!(await deps.tasks.markOnce(taskId, LEARNED_MARK))) return false;
    const steps = await deps.tasks.path(taskId);
    const behaviours = behaviourOf(steps, (step) => {
      if (step.effect) return step.effect;
      const profile = profileFor(policy, step.agent);
      return profile?.tools.find((t) => t.name === step.tool?.name)?.effect;
    });
    for (const b of behaviours) await deps.baselines.learn(b, await knownOf(known, b.agent));
    deps.metrics?.baselineTasks.inc({ outcome: "learned" });
    return behaviours.length > 0;
  }

  /**
   * Moves the tasks that finished past an index's cursor (up to `max`) to the pending set,
   * with the time they were found: the settle time runs from then, on this clock, so a
   * task whose spans carry old times (a backlog) still waits for the detector to judge it.
   */
  async function collect(index: "open", max: number, foundAtMs: number): Promise<boolean> {
    // the cursor: the last score looked at, and how many tasks with that score were
    const { score, seen } = (await deps.baselines.cursor(index)) ?? { score: Number.NEGATIVE_INFINITY, seen: 0 };
    const found = await deps.tasks.byLastSeen(index, { min: score, max, offset: seen, limit: PAGE });
    await deps.baselines.addPending(
      found.map((t) => t.taskId),
      foundAtMs,
    );
    const last = found.at(-1);
    if (!last) return false;
    const atLast = found.filter((t) => t.lastSeenMs === last.lastSeenMs).length;
    await deps.baselines.setCursor(index, { score: last.lastSeenMs, seen: last.lastSeenMs === score ? seen + atLast : atLast });
    return found.length === PAGE;
  }

  /** Learns one page of the pending tasks found at or before `dueMs`; how many it learned, and whether more are due. */
  async function learnDue(
    at: number,
    dueMs: number,
    policy: Policy,
    known: Known,
    hold: boolean,
  ): Promise<{ learned: number; more: boolean }> {
    const due = await deps.baselines.duePending(dueMs, PAGE);
    let learned = 0;
    const held: string[] = [];
    for (let i = 0; i < due.length; i += PARALLEL) {
      const results = await Promise.all(due.slice(i, i + PARALLEL).map((t) => learnTask(t, policy, known, held, hold)));
      learned += results.filter(Boolean).length;
    }
    await deps.baselines.removePending(due);
    // an alerted task comes back when its hold is over (due `settleMs` after the time it is given)
    if (held.length > 0) await deps.baselines.addPending(held, at + holdMs - deps.settleMs);
    return { learned, more: due.length === PAGE };
  }

  /**
   * Moves the tasks that completed (up to `max`, a page) from the pathfinder's queue of
   * completions to the pending set. A queue, not a cursor: a task that completes after one
   * whose last span came later (its partition was behind) is still found.
   */
  async function collectCompleted(max: number, foundAtMs: number): Promise<boolean> {
    const found = await deps.tasks.completions(max, PAGE);
    await deps.baselines.addPending(found, foundAtMs);
    await deps.tasks.takeCompletions(found);
    return found.length === PAGE;
  }

  async function run(at: number, options: { settleMs: number; idleMs: number; all: boolean; hold: boolean }): Promise<number> {
    const policy = deps.policy();
    const known: Known = new Map();
    let more = true;
    while (more) more = (await collectCompleted(at, at)) && options.all;
    // open tasks long silent (idle): by last activity, which is what makes them idle
    more = true;
    while (more) more = (await collect("open", at - options.idleMs, at)) && options.all;
    let learned = 0;
    for (;;) {
      const r = await learnDue(at, at - options.settleMs, policy, known, options.hold);
      learned += r.learned;
      if (!r.more || !options.all) break;
    }
    if (learned > 0) await deps.baselines.bumpGeneration();
    return learned;
  }

  const sweep = () => run(now(), { settleMs: deps.settleMs, idleMs: deps.idleMs, all: false, hold: holdMs > 0 });
  // replay's warm-up: every task there is, open or not, without waiting (nor holding back: history is history)
  const learnAll = () => run(Number.MAX_SAFE_INTEGER, { settleMs: 0, idleMs: 0, all: true, hold: false });

  const timer = clock.every(deps.intervalMs, sweep, { logger: deps.logger, what: "baseline learning" });
  return { sweep, learnAll, stop: timer.stop };
}
