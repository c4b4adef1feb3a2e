import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeadLetter } from "../../schemas/deadletter.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { type App, PIPELINE, startDistributed } from "../../services/cli/app.js";
import type { BusMessage } from "../../services/runtime/bus/bus.js";
import type { Config } from "../../services/runtime/config.js";
import { distributedConfig, isolation, kafkaBus, testLogger } from "../support/ports.js";
import { eventually } from "../support/wait.js";
import { newSecret, WebhookReceiver } from "../support/webhook-receiver.js";
import { runAgentAndCheckPipeline } from "./pipeline-checks.js";

/**
 * The distributed mode: each service with its own Kafka client and Redis connection, as
 * separate `driftwatch run <service>` processes would be, through the real broker and server.
 */
describe("end to end, distributed mode (real Kafka and Redis)", () => {
  const apps: App[] = [];
  const revoke = new WebhookReceiver(newSecret());
  const alert = new WebhookReceiver(newSecret());
  const iso = isolation("e2e");
  let config: Config;

  beforeAll(async () => {
    await Promise.all([revoke.start(), alert.start()]);
    config = distributedConfig(iso, {
      DRIFTWATCH_POLICY_DIR: "policies",
      DRIFTWATCH_REVOKE_WEBHOOK_URL: revoke.url,
      DRIFTWATCH_REVOKE_WEBHOOK_SECRET: revoke.secret,
      DRIFTWATCH_ALERT_WEBHOOK_URL: alert.url,
      DRIFTWATCH_ALERT_WEBHOOK_SECRET: alert.secret,
    });
    for (const name of PIPELINE) apps.push(await startDistributed(config, [name], { logger: testLogger }));
  });

  afterAll(async () => {
    for (const app of apps.reverse()) await app.close();
    await Promise.all([revoke.stop(), alert.stop()]);
  });

  const urlOf = (name: string) =>
    apps.find((a) => a.services.some((s) => s.name === name))?.services.find((s) => s.name === name)?.url as string;

  it("a malformed message on otlp_spans is dead-lettered with its origin, and ingest keeps consuming", async () => {
    const bus = kafkaBus();
    const letters: BusMessage[] = [];
    const sub = await bus.subscribe(
      { group: `${iso.groupPrefix}deadletter-watch`, topics: [topicName(config.topicPrefix, TOPICS.deadletter)], fromBeginning: true },
      async (batch) => void letters.push(...batch),
    );
    try {
      const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);
      await bus.publish(topicName(config.topicPrefix, TOPICS.otlpSpans), [{ key: null, value: garbage }]);
      const letter = await eventually(() => letters[0], 60_000, "a dead letter");
      const body = JSON.parse(letter.value.toString()) as DeadLetter;
      expect(body.stage).toBe("ingest");
      expect(body.reason).toMatch(/malformed OTLP protobuf/);
      expect(body.source.topic).toBe(topicName(config.topicPrefix, TOPICS.otlpSpans));
      // the letter holds a prefix of undecodable bytes (here all 8), their length and hash; never a copy past the prefix
      expect(Buffer.from(body.prefix ?? "", "base64")).toEqual(garbage);
      expect(body.message).toEqual({ bytes: garbage.length, sha256: createHash("sha256").update(garbage).digest("hex") });
    } finally {
      await sub.close();
      await bus.close();
    }
  });

  it("flags the out-of-scope step, revokes its credential once, alerts; the benign task raises nothing and its credential ends with it", async () => {
    await runAgentAndCheckPipeline({ gateway: urlOf("gateway"), api: urlOf("console") }, { revoke, alert });
  });
});
