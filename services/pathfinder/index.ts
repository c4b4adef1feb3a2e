import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { pathfinderStage } from "./pathfinder.js";
import { TaskStore } from "./task-store.js";

export async function startPathfinder(ctx: ServiceContext): Promise<RunningService> {
  return startStage("pathfinder", ctx, pathfinderStage(ctx.config.topicPrefix, new TaskStore(ctx.store)));
}
