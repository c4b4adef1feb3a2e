import type { Finding, FindingKind } from "../../schemas/finding.js";
import { Step } from "../../schemas/step.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { TaskStore } from "../pathfinder/task-store.js";
import type { AgentQuarantine } from "../revoker/quarantine.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { decodeMessage } from "../runtime/decode.js";
import type { Emit, StageLogic } from "../runtime/stage.js";
import type { Metrics } from "../runtime/telemetry.js";
import { agentKey } from "./baseline.js";
import type { BaselineStore } from "./baseline-store.js";
import { VIOLATION_MARK } from "./learner.js";
import type { Policy } from "./policy.js";
import { evaluateStep } from "./rules.js";

/** detector: `agent.steps` → `agent.findings`, keyed by task id. */
export const parseStep = (message: BusMessage): Step | Step[] => decodeMessage(Step, message, "a step");

/** Findings that keep a task out of its agent's baseline (see learner.ts): policy, not mere novelty. */
const VIOLATIONS: ReadonlySet<FindingKind> = new Set(["out_of_scope", "flow", "provenance", "post_revocation"]);
const isViolation = (f: Finding) => f.mode !== "shadow" && VIOLATIONS.has(f.kind);

export function detectorStage(
  topicPrefix: string,
  deps: {
    policy: () => Policy;
    tasks: TaskStore;
    baselines?: BaselineStore;
    quarantine?: AgentQuarantine;
    metrics?: Metrics;
    now?: () => number;
  },
): StageLogic<Step> {
  const output = topicName(topicPrefix, TOPICS.findings);
  const now = deps.now ?? Date.now;
  return {
    name: "detector",
    input: topicName(topicPrefix, TOPICS.steps),
    parse: parseStep,
    async handle(items): Promise<Emit[]> {
      const emits: Emit[] = [];
      const policy = deps.policy();
      // one read per task of the batch and one per agent whose baseline is not in memory, all at once
      const taskIds = [...new Set(items.map((i) => i.value.taskId))];
      const agents = [...new Set(items.flatMap((i) => agentKey(i.value) ?? []))];
      const ids = [...new Set(items.flatMap((i) => i.value.agent.id ?? []))];
      const [marks, baselines, quarantined] = await Promise.all([
        Promise.all(taskIds.map((t) => deps.tasks.revoked(t))),
        deps.baselines ? deps.baselines.forAgents(agents) : undefined,
        deps.quarantine && ids.length > 0 ? deps.quarantine.of(ids) : undefined,
      ]);
      const revokedOf = new Map(taskIds.map((t, i) => [t, marks[i]]));
      const violated = new Set<string>();
      for (const { value: step } of items) {
        const revoked = revokedOf.get(step.taskId);
        const agent = agentKey(step);
        const baseline = agent ? baselines?.get(agent) : undefined;
        const quarantine = step.agent.id ? quarantined?.get(step.agent.id) : undefined;
        // the task's declared scope comes with the step (the pathfinder knows it)
        const declared = step.context;
        const findings = evaluateStep(step, {
          policy,
          ...(declared?.declaredScope ? { scope: declared.declaredScope } : {}),
          ...(declared?.declaredScopeError ? { scopeError: declared.declaredScopeError } : {}),
          ...(revoked ? { revokedAtMs: revoked.atMs } : {}),
          ...(baseline ? { baseline } : {}),
          ...(quarantine ? { quarantine } : {}),
          now: now(),
        });
        for (const f of findings) {
          if (isViolation(f)) violated.add(f.taskId);
          deps.metrics?.findings.inc({ rule: f.ruleId, severity: f.severity });
          deps.metrics?.detectionLatency.observe(Math.max(0, f.detectedAtMs - f.spanEndMs) / 1000);
          emits.push({ topic: output, message: { key: f.taskId, value: JSON.stringify(f) } });
        }
      }
      // marked before the findings are produced: a task is never learned as normal in between
      await Promise.all([...violated].map((t) => deps.tasks.markOnce(t, VIOLATION_MARK)));
      return emits;
    },
  };
}
