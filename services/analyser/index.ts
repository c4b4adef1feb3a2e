import { startJudging } from "../detector/index.js";
import { pathfinding } from "../pathfinder/index.js";
import type { RunningService, ServiceContext } from "../runtime/service.js";
import { analyserStage } from "./analyser.js";

/** The pathfinder and the detector in one process, one consumer group (`analyser`) on `agent.actions`. */
export function startAnalyser(ctx: ServiceContext): Promise<RunningService> {
  return startJudging("analyser", ctx, (detector) =>
    analyserStage(ctx.config.topicPrefix, pathfinding(ctx), detector, { writeSteps: ctx.config.stepsOutput }),
  );
}
