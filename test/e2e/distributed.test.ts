import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeadLetter } from "../../schemas/deadletter.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { type App, PIPELINE, startDistributed } from "../../services/cli/app.js";
import type { BusMessage } from "../../services/runtime/bus/bus.js";
import type { Config } from "../../services/runtime/config.js";
import { exposedNames, expressions, metricNames } from "../support/observability-config.js";
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

  it("every service process answers /healthz, /readyz and /metrics on its ops port: consumer lag per stage and partition, detection and revocation latency", async () => {
    const metricsOf = new Map<string, string>();
    for (const app of apps) {
      const name = app.services.map((s) => s.name).join(",");
      const ops = app.opsUrl as string;
      expect(ops, name).toMatch(/^http:\/\//);
      expect((await fetch(`${ops}/healthz`)).status, name).toBe(200);
      const ready = await fetch(`${ops}/readyz`);
      expect(ready.status, name).toBe(200);
      expect(await ready.json(), name).toEqual({ status: "ready", checks: { started: true, bus: true, store: true } });
      const metrics = await fetch(`${ops}/metrics`);
      expect(metrics.headers.get("content-type"), name).toMatch(/^text\/plain/);
      metricsOf.set(name, await metrics.text());
    }
    expect([...metricsOf.keys()].sort()).toEqual([...PIPELINE].sort());
    for (const [name, text] of metricsOf) expect(text, name).toMatch(/^driftwatch_up 1$/m);
    // every stage's lag, per partition of its input (3 here), read from the committed offsets: all caught up after the run
    const lagOf = (text: string, stage: string) =>
      [...text.matchAll(new RegExp(`^driftwatch_consumer_lag\\{stage="${stage}",topic="([^"]+)",partition="(\\d+)"\\} (\\d+)$`, "gm"))].map(
        (m) => ({
          topic: m[1],
          partition: Number(m[2]),
          lag: Number(m[3]),
        }),
      );
    const analyserLag = lagOf(metricsOf.get("analyser") as string, "analyser");
    expect(analyserLag.map((l) => l.partition).sort()).toEqual([0, 1, 2]);
    expect(new Set(analyserLag.map((l) => l.topic))).toEqual(new Set([topicName(config.topicPrefix, TOPICS.actions)]));
    expect(lagOf(metricsOf.get("ingest") as string, "ingest")).toHaveLength(3);
    await eventually(
      async () => {
        const text = await (await fetch(`${apps.find((a) => a.services[0]?.name === "analyser")?.opsUrl}/metrics`)).text();
        return lagOf(text, "analyser").every((l) => l.lag === 0) || undefined;
      },
      30_000,
      "the analyser caught up",
    );
    // the drifting task's finding and its revocation were timed
    const count = (text: string, metric: string) =>
      Number(new RegExp(`^${metric}_count(?:\\{[^}]*\\})? (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    expect(count(metricsOf.get("analyser") as string, "driftwatch_detection_latency_seconds")).toBeGreaterThan(0);
    expect(count(metricsOf.get("revoker") as string, "driftwatch_revocation_latency_seconds")).toBeGreaterThan(0);

    // every metric the shipped alert rules and dashboard name is served by some service
    const served = new Set([...metricsOf.values()].flatMap((text) => [...exposedNames(text)]));
    const named = expressions().flatMap(({ where, expr }) => metricNames(expr).map((name) => ({ where, name })));
    expect(named.filter(({ name }) => !served.has(name))).toEqual([]);
  });
});
