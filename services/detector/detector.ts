import { Step } from "../../schemas/step.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { TaskStore } from "../pathfinder/task-store.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { decodeMessage } from "../runtime/decode.js";
import type { Emit, StageLogic } from "../runtime/stage.js";
import type { Metrics } from "../runtime/telemetry.js";
import type { Policy } from "./policy.js";
import { evaluateStep } from "./rules.js";

/** detector: `agent.steps` → `agent.findings`, keyed by task id. */
export const parseStep = (message: BusMessage): Step | Step[] => decodeMessage(Step, message, "a step");

export function detectorStage(
  topicPrefix: string,
  deps: { policy: () => Policy; tasks: TaskStore; metrics?: Metrics; now?: () => number },
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
      // one read per task of the batch, all at once
      const taskIds = [...new Set(items.map((i) => i.value.taskId))];
      const marks = await Promise.all(taskIds.map((t) => deps.tasks.revoked(t)));
      const revokedOf = new Map(taskIds.map((t, i) => [t, marks[i]]));
      for (const { value: step } of items) {
        const revoked = revokedOf.get(step.taskId);
        // the task's declared scope comes with the step (the pathfinder knows it)
        const declared = step.context;
        const findings = evaluateStep(step, {
          policy,
          ...(declared?.declaredScope ? { scope: declared.declaredScope } : {}),
          ...(declared?.declaredScopeError ? { scopeError: declared.declaredScopeError } : {}),
          ...(revoked ? { revokedAtMs: revoked.atMs } : {}),
          now: now(),
        });
        for (const f of findings) {
          deps.metrics?.findings.inc({ rule: f.ruleId, severity: f.severity });
          deps.metrics?.detectionLatency.observe(Math.max(0, f.detectedAtMs - f.spanEndMs) / 1000);
          emits.push({ topic: output, message: { key: f.taskId, value: JSON.stringify(f) } });
        }
      }
      return emits;
    },
  };
}
