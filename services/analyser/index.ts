import { detection } from "../detector/index.js";
import { pathfinding } from "../pathfinder/index.js";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { analyserStage } from "./analyser.js";

/** The pathfinder and the detector in one process, one consumer group (`analyser`) on `agent.actions`. */
export async function startAnalyser(ctx: ServiceContext): Promise<RunningService> {
  const detector = detection(ctx);
  const running = await startStage(
    "analyser",
    ctx,
    analyserStage(ctx.config.topicPrefix, pathfinding(ctx), detector.stage, {
      writeSteps: ctx.config.stepsOutput,
    }),
  ).catch((err: unknown) => {
    detector.stop(); // its sweeps must not outlive a stage that never started
    throw err;
  });
  return {
    name: "analyser",
    close: async () => {
      detector.stop();
      await running.close();
    },
  };
}
