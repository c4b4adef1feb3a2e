import type { Logger } from "pino";
import type { Finding } from "../../schemas/finding.js";
import type { TaskEvent } from "../../schemas/lifecycle.js";
import type { TaskStore } from "../pathfinder/task-store.js";
import type { Publisher } from "../runtime/bus/bus.js";
import { type Clock, systemClock } from "../runtime/clock.js";
import type { Metrics } from "../runtime/telemetry.js";
import { lifecycleSettings, silenceEvent } from "./lifecycle.js";
import type { Policy } from "./policy.js";
import { profileFor } from "./policy.js";
import { silenceFinding } from "./rules.js";

/**
 * Telemetry silence is the absence of steps, so no step triggers it: the detector looks
 * at the open tasks now and then. A task gets one silence finding (marked in the store,
 * so several detector instances agree), on `agent.findings` like any other; and, when the
 * agent's profile revokes on silence (`lifecycle.onSilence`, the default), a lifecycle event
 * on `agent.lifecycle` for the revoker (fail-safe: an agent that stops reporting keeps no access).
 */
export interface SilenceWatch {
  /** One look at the open tasks; the findings it published. */
  sweep(): Promise<Finding[]>;
  stop(): void;
}

const MAX_TASKS_PER_SWEEP = 1_000;
/** The mark of a task flagged as silent (once per task). */
export const SILENCE_MARK = "telemetry_silence";
const MARK = SILENCE_MARK;

export function watchSilence(deps: {
  tasks: TaskStore;
  policy: () => Policy;
  bus: Publisher;
  findingsTopic: string;
  /** Where the lifecycle event goes when the agent's profile revokes on silence (`lifecycle.onSilence`). */
  lifecycleTopic?: string;
  intervalMs: number;
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
  /** Where the time and the sweep's timer come from (default: the wall clock). */
  clock?: Clock;
}): SilenceWatch {
  const clock = deps.clock ?? systemClock;
  const now = deps.now ?? (() => clock.now());
  const sweep = async (): Promise<Finding[]> => {
    const policy = deps.policy();
    const limits = policy.profiles.flatMap((p) => (p.telemetry ? [p.telemetry.silenceMs] : []));
    if (limits.length === 0) return [];
    const t = now();
    // the tasks that fell silent most recently first, and none silent for so long that an
    // earlier sweep must have looked at them: long-idle tasks never crowd out new ones
    const candidates = await deps.tasks.byLastSeen("open", {
      // (the listing is a second coarse: a second more, so no task slips between two sweeps)
      min: t - Math.max(...limits) - 2 * deps.intervalMs - 1_000,
      max: t - Math.min(...limits),
      limit: MAX_TASKS_PER_SWEEP,
      reverse: true,
    });
    const out: Finding[] = [];
    const events: TaskEvent[] = [];
    for (const { taskId } of candidates) {
      const [facts, revoked, lastStep, flagged] = await Promise.all([
        deps.tasks.facts(taskId),
        deps.tasks.revoked(taskId),
        deps.tasks.lastStep(taskId),
        deps.tasks.marked(taskId, MARK),
      ]);
      if (!facts || revoked || flagged || facts.phase === "completed" || !lastStep) continue;
      const finding = silenceFinding(
        {
          taskId,
          ...(facts.agentId ? { agentId: facts.agentId } : {}),
          ...(facts.spiffeId ? { spiffeId: facts.spiffeId } : {}),
          lastSeenMs: facts.lastSeenMs,
          lastStep,
        },
        policy,
        t,
      );
      if (!finding) continue;
      const profile = profileFor(policy, {
        ...(facts.agentId ? { id: facts.agentId } : {}),
        ...(facts.spiffeId ? { spiffeId: facts.spiffeId } : {}),
      });
      if (lifecycleSettings(profile).onSilence === "ignore") continue;
      out.push(finding);
      const event = deps.lifecycleTopic
        ? silenceEvent(finding, { ...(facts.spiffeId ? { spiffeId: facts.spiffeId } : {}), lastSeenMs: facts.lastSeenMs }, policy)
        : undefined;
      if (event) events.push(event);
    }
    if (out.length > 0) {
      // published first, marked after: a crash in between repeats the finding (same id,
      // deduplicated downstream) rather than losing it
      await deps.bus.publish(
        deps.findingsTopic,
        out.map((f) => ({ key: f.taskId, value: JSON.stringify(f) })),
      );
      if (deps.lifecycleTopic && events.length > 0)
        await deps.bus.publish(
          deps.lifecycleTopic,
          events.map((e) => ({ key: e.taskId, value: JSON.stringify(e) })),
        );
      await Promise.all(out.map((f) => deps.tasks.markOnce(f.taskId, MARK)));
      for (const f of out) deps.metrics?.findings.inc({ rule: f.ruleId, severity: f.severity });
    }
    return out;
  };
  const timer = clock.every(deps.intervalMs, sweep, { logger: deps.logger, what: "telemetry silence sweep" });
  return { sweep, stop: timer.stop };
}
