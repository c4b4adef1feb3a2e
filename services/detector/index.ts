import { TOPICS, topicName } from "../../schemas/topics.js";
import { taskStoreFor } from "../pathfinder/task-store.js";
import { RevocationLedger } from "../revoker/ledger.js";
import { AgentQuarantine } from "../revoker/quarantine.js";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { BaselineStore } from "./baseline-store.js";
import { detectorStage } from "./detector.js";
import { watchIdleTasks } from "./idle.js";
import { watchLearning } from "./learner.js";
import { PolicyHolder } from "./policy.js";
import { watchSilence } from "./silence.js";

export async function startDetector(ctx: ServiceContext): Promise<RunningService> {
  const policy = new PolicyHolder(ctx.config.policyDir, ctx.logger);
  policy.watch();
  const tasks = taskStoreFor(ctx.store, ctx.config.tasks, ctx.clock);
  const lifecycleTopic = topicName(ctx.config.topicPrefix, TOPICS.lifecycle);
  const silence = watchSilence({
    tasks,
    policy: () => policy.current,
    bus: ctx.bus,
    findingsTopic: topicName(ctx.config.topicPrefix, TOPICS.findings),
    lifecycleTopic,
    intervalMs: ctx.config.tasks.silenceSweepMs,
    logger: ctx.logger.child({ stage: "detector" }),
    metrics: ctx.metrics,
    clock: ctx.clock,
  });
  // tasks that stopped without completing: their credentials end with the idle timeout
  const idle = watchIdleTasks({
    tasks,
    store: ctx.store,
    policy: () => policy.current,
    bus: ctx.bus,
    lifecycleTopic,
    idleMs: ctx.config.tasks.idleMs,
    intervalMs: ctx.config.tasks.silenceSweepMs,
    logger: ctx.logger.child({ stage: "detector" }),
    clock: ctx.clock,
  });
  const baselines = new BaselineStore(ctx.store);
  const learner = watchLearning({
    tasks,
    baselines,
    policy: () => policy.current,
    intervalMs: ctx.config.baselines.sweepMs,
    settleMs: ctx.config.baselines.settleMs,
    holdMs: ctx.config.baselines.holdMs,
    idleMs: ctx.config.tasks.idleMs,
    logger: ctx.logger.child({ stage: "detector" }),
    metrics: ctx.metrics,
    clock: ctx.clock,
  });
  const stage = await startStage(
    "detector",
    ctx,
    detectorStage(ctx.config.topicPrefix, {
      policy: () => policy.current,
      tasks,
      baselines,
      quarantine: new AgentQuarantine(ctx.store),
      ledger: new RevocationLedger(ctx.store),
      metrics: ctx.metrics,
      now: () => ctx.clock.now(),
    }),
  );
  return {
    name: "detector",
    close: async () => {
      silence.stop();
      idle.stop();
      learner.stop();
      policy.close();
      await stage.close();
    },
  };
}
