import { OTLPTraceExporter as OTLPJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { Kafka, Partitioners } from "kafkajs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { KafkaSpanExporter } from "../../sdk/kafka-span-exporter.js";
import { type App, startDistributed } from "../../services/cli/app.js";
import { billingScenario, otlpProtoExporter, runScenarioAgent } from "../../services/cli/scenario.js";
import type { BusMessage } from "../../services/runtime/bus/bus.js";
import type { Config } from "../../services/runtime/config.js";
import { recordsOf } from "../../services/runtime/decode.js";
import { distributedConfig, isolation, kafkaBus, testLogger } from "../support/ports.js";
import { eventually } from "../support/wait.js";

/**
 * Three ways a Node agent can feed Driftwatch, one result: the stock OTLP protobuf
 * exporter and the stock OTLP JSON exporter (both over OTLP/HTTP to the gateway), and
 * Driftwatch's Kafka span exporter (straight to otlp_spans). The same work must become
 * the same agent actions, whatever the route.
 */
describe("the same work through three exporters gives the same agent actions", () => {
  const iso = isolation("exporters");
  let config: Config;
  const apps: App[] = [];
  const actions: BusMessage[] = [];
  const bus = kafkaBus();

  beforeAll(async () => {
    config = distributedConfig(iso, { DRIFTWATCH_POLICY_DIR: "policies" });
    apps.push(await startDistributed(config, ["ingest", "gateway"], { logger: testLogger }));
    await bus.subscribe(
      { group: `${iso.groupPrefix}watch`, topics: [topicName(config.topicPrefix, TOPICS.actions)], fromBeginning: true },
      async (b) => {
        actions.push(...b);
      },
    );
  });

  afterAll(async () => {
    await bus.close();
    for (const a of apps) await a.close();
  });

  /** What must not differ between routes: everything but ids, clocks and the run's own label. */
  function canonical(list: AgentAction[], run: string) {
    return list
      .map((a) => {
        const { id, traceId, spanId, parentSpanId, links, startTimeMs, endTimeMs, receivedAtMs, ...rest } = a;
        void id;
        void traceId;
        void spanId;
        void links;
        void startTimeMs;
        void endTimeMs;
        void receivedAtMs;
        return JSON.parse(JSON.stringify({ ...rest, hasParent: parentSpanId !== undefined }).replaceAll(run, "RUN")) as Record<
          string,
          unknown
        >;
      })
      .sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));
  }

  it("OTLP protobuf, OTLP JSON and the Kafka span exporter agree", async () => {
    const gateway = apps[0]?.services.find((s) => s.name === "gateway")?.url as string;
    const runs = { viaproto: "viaproto", viajson: "viajson", viakafka: "viakafka" };
    await runScenarioAgent(billingScenario(runs.viaproto), otlpProtoExporter(gateway));
    await runScenarioAgent(billingScenario(runs.viajson), new OTLPJsonExporter({ url: `${gateway}/v1/traces` }));
    const kafkaExporter = new KafkaSpanExporter({
      brokers: inject("kafkaBrokers").split(","),
      topic: topicName(config.topicPrefix, TOPICS.otlpSpans),
    });
    await runScenarioAgent(billingScenario(runs.viakafka), kafkaExporter);

    const parsed = () => actions.flatMap((m) => recordsOf(m) as AgentAction[]);
    const of = (run: string) => parsed().filter((a) => a.taskId.includes(run));
    await eventually(() => (Object.values(runs).every((r) => of(r).length === 6) ? true : undefined), 60_000, "6 actions per route");

    const proto = canonical(of(runs.viaproto), runs.viaproto);
    expect(proto).toHaveLength(6);
    expect(canonical(of(runs.viajson), runs.viajson)).toEqual(proto);
    expect(canonical(of(runs.viakafka), runs.viakafka)).toEqual(proto);
    // and the content is what the agent did
    const tools = of(runs.viakafka)
      .map((a) => a.tool?.name)
      .filter(Boolean)
      .sort();
    expect(tools).toEqual(["email.send", "invoices.read", "invoices.read", "shell.exec"]);
  });

  it("the Kafka span exporter writes what the Collector's kafka exporter writes: OTLP protobuf, one trace per message, keyed by trace id", async () => {
    const topic = `${iso.topicPrefix}raw`;
    await bus.ensureTopics([topic]);
    const raw: BusMessage[] = [];
    await bus.subscribe({ group: `${iso.groupPrefix}raw`, topics: [topic], fromBeginning: true }, async (b) => {
      raw.push(...b);
    });
    const kafka = new Kafka({ brokers: inject("kafkaBrokers").split(","), clientId: "exporter-test" });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      // a producer the application manages itself is used as it is, not disconnected
      await runScenarioAgent(billingScenario("rawcheck"), new KafkaSpanExporter({ producer, topic }));
      await eventually(() => (raw.length >= 2 ? true : undefined), 30_000, "two trace messages");
      for (const m of raw) {
        expect(m.key).toMatch(/^[0-9a-f]{32}$/);
        expect(m.headers["content-type"]).toBe("application/x-protobuf");
      }
      expect(new Set(raw.map((m) => m.key)).size).toBe(raw.length);
      await producer.send({ topic, messages: [{ value: "still connected" }] });
    } finally {
      await producer.disconnect();
    }
  });
});
