import { Writable } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Finding } from "../../schemas/finding.js";
import { eventually } from "../../test/support/wait.js";
import { newSecret, WebhookReceiver } from "../../test/support/webhook-receiver.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { createLogger } from "../runtime/logging.js";
import { runStage, Unavailable } from "../runtime/stage.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { Metrics } from "../runtime/telemetry.js";
import { WebhookClient } from "../runtime/webhook-client.js";
import { notifierStage } from "./notifier.js";
import type { AlertOutput } from "./outputs/output.js";
import { StdoutOutput } from "./outputs/stdout.js";
import { WebhookOutput } from "./outputs/webhook.js";

const T0 = 1_760_000_000_000;
const logger = createLogger("silent");

function finding(id: string, over: Partial<Finding> = {}): Finding {
  return Finding.parse({
    id,
    taskId: "task-1",
    agentId: "billing-agent",
    stepIndex: 1,
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    ruleId: "scope.tool",
    kind: "out_of_scope",
    severity: "high",
    mode: "enforce",
    confidence: 0.95,
    explanation: "called a tool outside its profile",
    evidence: { observed: { tool: "shell.exec" }, expected: { tools: ["invoices.read"] } },
    tags: { owaspAgentic: ["ASI02"], maestro: [], nistAiRmf: [] },
    spanEndMs: T0,
    detectedAtMs: T0 + 5,
    policyVersion: "abc",
    ...over,
  });
}

let offset = 0;
const item = (f: Finding) => {
  const message: BusMessage = {
    topic: "agent.findings",
    partition: 0,
    offset: String(offset++),
    key: f.taskId,
    value: Buffer.from(JSON.stringify(f)),
    headers: {},
    timestampMs: T0,
  };
  return { message, value: f };
};

/** An output that remembers what it was sent and can be told to fail. */
class RecordingOutput implements AlertOutput {
  readonly sent: Finding[][] = [];
  fail = false;
  constructor(readonly name: string) {}
  async send(findings: Finding[]): Promise<void> {
    if (this.fail) throw new Error(`${this.name} is down`);
    this.sent.push(findings);
  }
  ids(): string[] {
    return this.sent.flat().map((f) => f.id);
  }
}

/** A Writable that keeps what was written. */
function sink() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString("utf8"));
      done();
    },
  });
  return { stream, text: () => chunks.join("") };
}

describe("notifierStage", () => {
  const secret = newSecret();
  let status = 200;
  let receiver: WebhookReceiver;
  let store: MemoryStore;

  beforeAll(async () => {
    receiver = await new WebhookReceiver(secret, () => status).start();
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(() => {
    receiver.received.length = 0;
    status = 200;
    store = new MemoryStore();
  });

  const webhook = () => new WebhookOutput({ url: receiver.url, secret }, new WebhookClient({ timeoutMs: 5000, retries: 0 }));
  const reject = () => {
    throw new Error("the notifier should not reject");
  };

  it("reads findings from agent.findings, produces nothing and rejects what is not a finding", () => {
    const logic = notifierStage("dw.", { outputs: [], store, logger });
    expect(logic.input).toBe("dw.agent.findings");
    expect(() => logic.parse({ ...item(finding("a")).message, value: Buffer.from('{"id":1}') })).toThrow(/not a finding/);
    expect(logic.parse(item(finding("a")).message)).toEqual(finding("a"));
  });

  it("sends every enforce and alert finding to every output, signed, with webhook-id the finding id", async () => {
    const rec = new RecordingOutput("rec");
    const logic = notifierStage("", { outputs: [rec, webhook()], store, logger });
    const emits = await logic.handle([item(finding("a")), item(finding("b", { mode: "alert" }))], reject);
    expect(emits).toEqual([]);
    expect(rec.ids()).toEqual(["a", "b"]);
    expect(receiver.received.map((r) => r.id)).toEqual(["a", "b"]);
    for (const r of receiver.received) {
      expect(r.signatureValid).toBe(true);
      expect(r.body).toEqual({ type: "driftwatch.finding", finding: r.id === "a" ? finding("a") : finding("b", { mode: "alert" }) });
    }
  });

  it("does not send shadow-mode findings anywhere", async () => {
    const rec = new RecordingOutput("rec");
    const logic = notifierStage("", { outputs: [rec, webhook()], store, logger });
    await logic.handle([item(finding("s", { mode: "shadow", severity: "critical" })), item(finding("e"))], reject);
    expect(rec.ids()).toEqual(["e"]);
    expect(receiver.received.map((r) => r.id)).toEqual(["e"]);
    // a batch of only shadow findings calls no output at all
    await logic.handle([item(finding("s2", { mode: "shadow" }))], reject);
    expect(rec.sent).toHaveLength(1);
    expect(receiver.received).toHaveLength(1);
  });

  it("sends each finding once per output, even when it is delivered again or twice in one batch", async () => {
    const rec = new RecordingOutput("rec");
    const logic = notifierStage("", { outputs: [rec, webhook()], store, logger });
    await logic.handle([item(finding("a"))], reject);
    await logic.handle([item(finding("a")), item(finding("b"))], reject);
    await logic.handle([item(finding("a")), item(finding("b"))], reject);
    expect(rec.ids()).toEqual(["a", "b"]);
    expect(receiver.received.map((r) => r.id)).toEqual(["a", "b"]);
    expect(rec.sent).toHaveLength(2);
  });

  it("remembers what was sent in the store, so another instance sharing it does not resend", async () => {
    const rec1 = new RecordingOutput("rec");
    const rec2 = new RecordingOutput("rec");
    await notifierStage("", { outputs: [rec1], store, logger }).handle([item(finding("a"))], reject);
    await notifierStage("", { outputs: [rec2], store, logger }).handle([item(finding("a")), item(finding("b"))], reject);
    expect(rec1.ids()).toEqual(["a"]);
    expect(rec2.ids()).toEqual(["b"]);
  });

  it("keeps outputs apart: a finding sent to one output is still sent to another", async () => {
    const one = new RecordingOutput("one");
    const two = new RecordingOutput("two");
    await notifierStage("", { outputs: [one], store, logger }).handle([item(finding("a"))], reject);
    await notifierStage("", { outputs: [one, two], store, logger }).handle([item(finding("a"))], reject);
    expect(one.ids()).toEqual(["a"]);
    expect(two.ids()).toEqual(["a"]);
  });

  it("a failing webhook output fails the batch (to be retried); the outputs that already took it do not resend", async () => {
    const rec = new RecordingOutput("rec");
    const logic = notifierStage("", { outputs: [rec, webhook()], store, logger });
    status = 503;
    const failure = logic.handle([item(finding("a")), item(finding("b"))], reject);
    await expect(failure).rejects.toThrow(/alert webhook refused finding a: HTTP 503/);
    // "unavailable", so the stage redelivers the batch rather than dead-lettering it
    await expect(failure).rejects.toBeInstanceOf(Unavailable);
    expect(rec.ids()).toEqual(["a", "b"]);
    expect(receiver.received.map((r) => r.id)).toEqual(["a"]);

    status = 200;
    await logic.handle([item(finding("a")), item(finding("b"))], reject);
    expect(rec.ids()).toEqual(["a", "b"]);
    expect(receiver.received.map((r) => r.id)).toEqual(["a", "a", "b"]);
    expect(receiver.received.every((r) => r.signatureValid)).toBe(true);
  });

  it("an output that fails before the others stops the batch; after it recovers each output has each finding once", async () => {
    const first = new RecordingOutput("first");
    const second = new RecordingOutput("second");
    const logic = notifierStage("", { outputs: [first, second], store, logger });
    first.fail = true;
    await expect(logic.handle([item(finding("a"))], reject)).rejects.toThrow(/first is down/);
    expect(second.ids()).toEqual([]);
    first.fail = false;
    await logic.handle([item(finding("a"))], reject);
    await logic.handle([item(finding("a"))], reject);
    expect(first.ids()).toEqual(["a"]);
    expect(second.ids()).toEqual(["a"]);
  });

  it("a finding twice in one batch is sent once per output", async () => {
    const rec = new RecordingOutput("rec");
    const logic = notifierStage("", { outputs: [rec, webhook()], store, logger });
    await logic.handle([item(finding("a")), item(finding("b")), item(finding("a"))], reject);
    expect(rec.ids()).toEqual(["a", "b"]);
    expect(receiver.received.map((r) => r.id)).toEqual(["a", "b"]);
  });

  async function onTheBus(outputs: AlertOutput[]) {
    const bus = new MemoryBus({ partitions: 1, retryDelayMs: 10 });
    const dead: BusMessage[] = [];
    const deadSub = await bus.subscribe({ group: "dead", topics: ["agent.deadletter"], fromBeginning: true }, async (b) => {
      dead.push(...b);
    });
    const sub = await runStage(notifierStage("", { outputs, store, logger }), {
      bus,
      logger,
      metrics: new Metrics(false),
      topicPrefix: "",
      groupPrefix: "test.",
      healthy: async () => true,
    });
    return {
      bus,
      dead,
      close: async () => {
        await sub.close();
        await deadSub.close();
        await bus.close();
      },
    };
  }

  it("on the bus: a webhook outage holds the findings back (never dead-lettered) and they go out once it recovers, each once per output", async () => {
    const { stream, text } = sink();
    status = 503;
    const { bus, dead, close } = await onTheBus([new StdoutOutput(stream), webhook()]);
    const a = finding("a");
    const b = finding("b");
    await bus.publish("agent.findings", [
      { key: a.taskId, value: JSON.stringify(a) },
      { key: a.taskId, value: JSON.stringify(a) },
      { key: b.taskId, value: JSON.stringify(b) },
    ]);
    // the outage lasts longer than any quick retry
    await eventually(() => (receiver.received.length >= 8 ? true : undefined), 5000, "attempts during the outage");
    expect(dead).toHaveLength(0);
    status = 200;
    await eventually(() => (receiver.received.some((r) => r.id === "b") && bus.idle() ? true : undefined), 5000, "delivery");
    await close();
    expect(dead).toHaveLength(0);
    const delivered = receiver.received.filter((r) => r.signatureValid).slice(-2);
    expect(delivered.map((r) => r.id)).toEqual(["a", "b"]);
    const lines = text()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { type: "driftwatch.finding", finding: a },
      { type: "driftwatch.finding", finding: b },
    ]);
  });

  it("on the bus: a finding the webhook refuses (4xx) is dead-lettered after its retries; the others go out", async () => {
    // answers for the request it just recorded: 400 for finding "bad", 200 for the rest
    const receiver4xx: WebhookReceiver = await new WebhookReceiver(secret, () =>
      receiver4xx.received.at(-1)?.id === "bad" ? 400 : 200,
    ).start();
    const hook = new WebhookOutput({ url: receiver4xx.url, secret }, new WebhookClient({ timeoutMs: 5000, retries: 0 }));
    const { bus, dead, close } = await onTheBus([hook]);
    const ok = finding("ok");
    const bad = finding("bad");
    await bus.publish("agent.findings", [
      { key: ok.taskId, value: JSON.stringify(bad) },
      { key: ok.taskId, value: JSON.stringify(ok) },
    ]);
    await eventually(() => (dead.length === 1 && bus.idle() ? true : undefined), 5000, "the dead letter");
    await close();
    await receiver4xx.stop();
    expect(JSON.parse(dead[0]?.value.toString() ?? "").reason).toMatch(
      /^processing failed 3 times: alert webhook refused finding bad: HTTP 400/,
    );
    expect(receiver4xx.received.filter((r) => r.id === "ok")).toHaveLength(1);
  });
});
