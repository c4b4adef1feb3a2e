import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { ingestStage } from "./ingest.js";

export async function startIngest(ctx: ServiceContext): Promise<RunningService> {
  return startStage("ingest", ctx, ingestStage(ctx.config.topicPrefix));
}
