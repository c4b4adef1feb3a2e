import { Gauge } from "prom-client";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { type PathfinderStage, pathfinderStage } from "./pathfinder.js";
import { taskStoreFor } from "./task-store.js";

/** The pathfinder's stage logic on the service's store, its paths in memory counted by a gauge. */
export function pathfinding(ctx: ServiceContext): PathfinderStage {
  const { latenessMs, cachedTasks } = ctx.config.tasks;
  const log = ctx.logger.child({ stage: "pathfinder" });
  const stage = pathfinderStage(ctx.config.topicPrefix, taskStoreFor(ctx.store, ctx.config.tasks, ctx.clock), {
    latenessMs,
    cachedTasks,
    onConflict: (taskId) => log.warn({ taskId }, "another writer updated this task; its path is reloaded on its next batch"),
  });
  new Gauge({
    name: "driftwatch_pathfinder_cached_tasks",
    help: "Task paths the pathfinder keeps in memory",
    registers: [ctx.metrics.registry],
    collect() {
      this.set(stage.cachedTasks);
    },
  });
  return stage;
}

/** `agent.actions` → `agent.steps`, on its own (the analyser runs it with the detector in one process). */
export function startPathfinder(ctx: ServiceContext): Promise<RunningService> {
  return startStage("pathfinder", ctx, pathfinding(ctx));
}
