import { type Admin, Kafka, logLevel } from "kafkajs";
import { inject } from "vitest";
import { TOPICS, type TopicName, topicName } from "../../schemas/topics.js";
import { eventually } from "./wait.js";

/**
 * Whether a distributed pipeline has done everything it was given: each stage's consumer
 * group has committed every message of its input topic, looked at in pipeline order (a
 * stage commits only after its output is produced, so once a stage has caught up, the
 * input of the next one is complete). What a test asserts did not happen (a credential
 * left active, no finding) is then known not to happen for what was sent, rather than not
 * yet: a barrier, not a sleep.
 *
 * Sweeps (idle tasks, telemetry silence, retries and grace periods) act on time, not on a
 * message: the pipeline being settled says nothing of what they will do later.
 */
export interface WatchedStage {
  group: string;
  input: TopicName;
}

/** The stages run apart (the pathfinder and the detector each in its group). */
export const PIPELINE: readonly WatchedStage[] = [
  { group: "ingest", input: TOPICS.otlpSpans },
  { group: "pathfinder", input: TOPICS.actions },
  { group: "detector", input: TOPICS.steps },
  { group: "revoker", input: TOPICS.findings },
  { group: "revoker-lifecycle", input: TOPICS.lifecycle },
];

/** Ingest and the analyser (the pathfinder and the detector in one group). */
export const ANALYSER_PIPELINE: readonly WatchedStage[] = [
  { group: "ingest", input: TOPICS.otlpSpans },
  { group: "analyser", input: TOPICS.actions },
];

export class PipelineWatch {
  private readonly admin: Admin;
  private connected: Promise<void> | undefined;

  /** `then`: consumers after the pipeline's stages (a test's own watchers of its topics), waited for last. */
  constructor(
    private readonly prefixes: { topicPrefix: string; groupPrefix: string },
    private readonly then: readonly WatchedStage[] = [],
    private readonly stages: readonly WatchedStage[] = PIPELINE,
  ) {
    const kafka = new Kafka({
      clientId: "driftwatch-test-settled",
      brokers: inject("kafkaBrokers").split(","),
      logLevel: logLevel.NOTHING,
    });
    this.admin = kafka.admin();
  }

  /** Messages of the stage's input its group has not committed yet (0: caught up). */
  async behind(stage: WatchedStage): Promise<number> {
    this.connected ??= this.admin.connect();
    await this.connected;
    const topic = topicName(this.prefixes.topicPrefix, stage.input);
    const [ends, [committed]] = await Promise.all([
      this.admin.fetchTopicOffsets(topic),
      this.admin.fetchOffsets({ groupId: `${this.prefixes.groupPrefix}${stage.group}`, topics: [topic] }),
    ]);
    const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    let behind = 0;
    for (const p of ends) {
      const high = Number(p.high);
      const low = Number(p.low);
      const done = at.get(p.partition) ?? -1;
      behind += Math.max(0, high - Math.max(done, low));
    }
    return behind;
  }

  /** Waits until every stage has caught up with its input, in pipeline order, then the consumers after it. */
  async settled(timeoutMs = 30_000): Promise<void> {
    for (const stage of [...this.stages, ...this.then]) {
      let last = -1;
      await eventually(
        async () => {
          last = await this.behind(stage);
          return last === 0 ? true : undefined;
        },
        timeoutMs,
        `the ${stage.group} stage to catch up with ${stage.input}`,
      ).catch((err: Error) => {
        throw new Error(`${err.message} (${last} messages behind)`);
      });
    }
  }

  async close(): Promise<void> {
    if (this.connected) await this.connected.catch(() => undefined);
    await this.admin.disconnect();
  }
}
