import type { Logger } from "pino";
import type { Bus } from "./bus/bus.js";
import type { Clock } from "./clock.js";
import type { Config } from "./config.js";
import { runStage, type StageLogic, type StageRuntime } from "./stage.js";
import type { Store } from "./store/store.js";
import type { Metrics } from "./telemetry.js";

/** What every service is given: its ports and the process's config, logger and metrics. */
export interface ServiceContext {
  config: Config;
  bus: Bus;
  store: Store;
  logger: Logger;
  metrics: Metrics;
  /** The time and the periodic sweeps: the wall clock live, the recording's clock in a replay. */
  clock: Clock;
}

export interface RunningService {
  name: string;
  /** Where an HTTP service listens. */
  url?: string;
  close(): Promise<void>;
}

export type ServiceStarter = (ctx: ServiceContext) => Promise<RunningService>;

export function stageRuntime(ctx: ServiceContext): StageRuntime {
  return {
    bus: ctx.bus,
    logger: ctx.logger,
    metrics: ctx.metrics,
    topicPrefix: ctx.config.topicPrefix,
    groupPrefix: ctx.config.groupPrefix,
    packRecords: ctx.config.packRecords,
    healthy: async () => (await ctx.store.ping()) && (await ctx.bus.ready()),
  };
}

/** Starts a bus stage as a service. */
export async function startStage<In>(name: string, ctx: ServiceContext, logic: StageLogic<In>): Promise<RunningService> {
  const sub = await runStage(logic, stageRuntime(ctx));
  ctx.logger.info({ service: name, input: logic.input }, "stage started");
  return { name, close: () => sub.close() };
}
