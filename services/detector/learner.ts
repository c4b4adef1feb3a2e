import type { Logger } from "pino";
import type { TaskStore } from "../pathfinder/task-store.js";
import { every } from "../runtime/periodic.js";
import type { Metrics } from "../runtime/telemetry.js";
import { type Baseline, behaviourOf } from "./baseline.js";
import type { BaselineStore } from "./baseline-store.js";
import { type Policy, profileFor } from "./policy.js";

/**
 * The baseline learner: now and then, the tasks that finished since its last look (their
 * root span ended, or no span came for the idle timeout) are added to their agents'
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
const LEARNED_MARK = "baseline_learned";
const PAGE = 1_000;
const PARALLEL = 32;

export function watchLearning(deps: {
  tasks: TaskStore;
  baselines: BaselineStore;
  policy: () => Policy;
  intervalMs: number;
  settleMs: number;
  idleMs: number;
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
}): Learner {
  const now = deps.now ?? Date.now;

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

  async function learnTask(taskId: string, policy: Policy, known: Known): Promise<boolean> {
    if (await deps.tasks.marked(taskId, VIOLATION_MARK)) {
      deps.metrics?.baselineTasks.inc({ outcome: "excluded" });
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
  async function collect(index: "completed" | "open", max: number, foundAtMs: number): Promise<boolean> {
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
  async function learnDue(dueMs: number, policy: Policy, known: Known): Promise<{ learned: number; more: boolean }> {
    const due = await deps.baselines.duePending(dueMs, PAGE);
    let learned = 0;
    for (let i = 0; i < due.length; i += PARALLEL) {
      const results = await Promise.all(due.slice(i, i + PARALLEL).map((t) => learnTask(t, policy, known)));
      learned += results.filter(Boolean).length;
    }
    await deps.baselines.removePending(due);
    return { learned, more: due.length === PAGE };
  }

  async function run(at: number, options: { settleMs: number; idleMs: number; all: boolean }): Promise<number> {
    const policy = deps.policy();
    const known: Known = new Map();
    for (const [index, max] of [
      ["completed", at],
      ["open", at - options.idleMs],
    ] as const) {
      let more = true;
      while (more) more = (await collect(index, max, at)) && options.all;
    }
    let learned = 0;
    for (;;) {
      const r = await learnDue(at - options.settleMs, policy, known);
      learned += r.learned;
      if (!r.more || !options.all) break;
    }
    if (learned > 0) await deps.baselines.bumpGeneration();
    return learned;
  }

  const sweep = () => run(now(), { settleMs: deps.settleMs, idleMs: deps.idleMs, all: false });
  // replay's warm-up: every task there is, open or not, without waiting
  const learnAll = () => run(Number.MAX_SAFE_INTEGER, { settleMs: 0, idleMs: 0, all: true });

  const timer = every(deps.intervalMs, sweep, { logger: deps.logger, what: "baseline learning" });
  return { sweep, learnAll, stop: timer.stop };
}
