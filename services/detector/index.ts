import { taskStoreFor } from "../pathfinder/task-store.js";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { detectorStage } from "./detector.js";
import { PolicyHolder } from "./policy.js";

export async function startDetector(ctx: ServiceContext): Promise<RunningService> {
  const policy = new PolicyHolder(ctx.config.policyDir, ctx.logger);
  policy.watch();
  const stage = await startStage(
    "detector",
    ctx,
    detectorStage(ctx.config.topicPrefix, {
      policy: () => policy.current,
      tasks: taskStoreFor(ctx.store, ctx.config.tasks),
      metrics: ctx.metrics,
    }),
  );
  return {
    name: "detector",
    close: async () => {
      policy.close();
      await stage.close();
    },
  };
}
