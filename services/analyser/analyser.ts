import type { AgentAction } from "../../schemas/action.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { DetectorStage } from "../detector/detector.js";
import { type PathfinderStage, parseAction, stepEmit } from "../pathfinder/pathfinder.js";
import type { Emit, StageLogic } from "../runtime/stage.js";

/**
 * analyser: `agent.actions` → `agent.steps`, `agent.findings`, `agent.lifecycle`. The
 * pathfinder and the detector as one processor of a partition's tasks: a batch's actions
 * are placed in their paths (kept in memory, saved to the store), and the steps they make
 * are judged in the same process, as they stand, without a trip through the broker and
 * without parsing and validating again what this process made. The steps still go out on
 * `agent.steps` for whoever else reads them (unless `writeSteps` is false:
 * `DRIFTWATCH_STEPS_OUTPUT=false`), without what the path held before each (`before`, the
 * bulk of a step, which only the detector reads: a detector reading the topic refuses such
 * steps); they are written before the findings they led to, in the batch's one produce.
 */
export function analyserStage(
  topicPrefix: string,
  pathfinder: PathfinderStage,
  detector: DetectorStage,
  options: { writeSteps?: boolean } = {},
): StageLogic<AgentAction> {
  const steps = topicName(topicPrefix, TOPICS.steps);
  const writeSteps = options.writeSteps ?? true;
  return {
    name: "analyser",
    input: topicName(topicPrefix, TOPICS.actions),
    parse: parseAction,
    async handle(items): Promise<Emit[]> {
      const placed = await pathfinder.place(items.map((i) => i.value));
      const out = writeSteps ? placed.map((p) => stepEmit(steps, p, false)) : [];
      for (const e of await detector.judge(placed.map((p) => p.step))) out.push(e);
      return out;
    },
    onRebalance() {
      pathfinder.onRebalance();
    },
  };
}
