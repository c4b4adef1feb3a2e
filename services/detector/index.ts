import { TOPICS, topicName } from "../../schemas/topics.js";
import { taskStoreFor } from "../pathfinder/task-store.js";
import { RevocationLedger } from "../revoker/ledger.js";
import { AgentQuarantine } from "../revoker/quarantine.js";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import type { StageLogic } from "../runtime/stage.js";
import { BaselineStore } from "./baseline-store.js";
import { type DetectorStage, detectorStage } from "./detector.js";
import { watchIdleTasks } from "./idle.js";
import { watchLearning } from "./learner.js";
import { PolicyHolder } from "./policy.js";
import { watchSilence } from "./silence.js";

/** The detector's stage logic and the sweeps beside it (silence, idle tasks, learning baselines), which `stop` ends. */
export function detection(ctx: ServiceContext): { stage: DetectorStage; stop(): void } {
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
  const stage = detectorStage(ctx.config.topicPrefix, {
    policy: () => policy.current,
    tasks,
    baselines,
    quarantine: new AgentQuarantine(ctx.store),
    ledger: new RevocationLedger(ctx.store),
    metrics: ctx.metrics,
    now: () => ctx.clock.now(),
  });
  return {
    stage,
    stop() {
      silence.stop();
      idle.stop();
      learner.stop();
      policy.close();
    },
  };
}

/**
 * Starts, as the service `name`, the stage `logicOf` makes around the detector, with the
 * detector's sweeps beside it: stopped with the stage, or at once if it fails to start.
 */
export async function startJudging<In>(
  name: string,
  ctx: ServiceContext,
  logicOf: (detector: DetectorStage) => StageLogic<In>,
): Promise<RunningService> {
  const detector = detection(ctx);
  const running = await startStage(name, ctx, logicOf(detector.stage)).catch((err: unknown) => {
    detector.stop();
    throw err;
  });
  return {
    name,
    close: async () => {
      detector.stop();
      await running.close();
    },
  };
}

/** `agent.steps` → `agent.findings`, `agent.lifecycle`, on its own (the analyser runs it in process behind the pathfinder). */
export function startDetector(ctx: ServiceContext): Promise<RunningService> {
  return startJudging("detector", ctx, (detector) => detector);
}
