import { Writable } from "node:stream";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { DeadLetter } from "../../schemas/deadletter.js";
import type { Finding } from "../../schemas/finding.js";
import type { IncidentUpdate } from "../../schemas/incident.js";
import type { Revocation } from "../../schemas/revocation.js";
import { finding, revocation } from "../../test/support/alerts.js";
import type { LoopbackServer } from "../../test/support/loopback-server.js";
import { type HecEndpoint, hecEndpoint, SLACK_PATH, signedWebhook, slackWebhook } from "../../test/support/soc-receivers.js";
import { SyslogReceiver } from "../../test/support/syslog-receiver.js";
import { eventually } from "../../test/support/wait.js";
import { newSecret } from "../../test/support/webhook-receiver.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { Delivery } from "../runtime/delivery.js";
import { createLogger } from "../runtime/logging.js";
import { runStage } from "../runtime/stage.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { Metrics } from "../runtime/telemetry.js";
import { WebhookClient } from "../runtime/webhook-client.js";
import { INCIDENT_KEYS, incidentIdFor } from "./incident.js";
import { NotifierMetrics } from "./metrics.js";
import { createNotifier, type Notifier } from "./notifier.js";
import { JsonLinesOutput } from "./outputs/jsonl.js";
import { SlackOutput } from "./outputs/slack.js";
import { SplunkHecOutput } from "./outputs/splunk-hec.js";
import { SyslogOutput } from "./outputs/syslog.js";
import { WebhookOutput } from "./outputs/webhook.js";

const logger = createLogger("silent");
const TOKEN = "0c7a5f1e-hec-token";
const SINKS = ["stdout", "webhook", "slack", "splunk", "syslog"] as const;
type Sink = (typeof SINKS)[number];

let offset = 0;
function message(topic: string, key: string, value: unknown): BusMessage {
  return {
    topic,
    partition: 0,
    offset: String(offset++),
    key,
    value: Buffer.from(JSON.stringify(value)),
    headers: {},
    timestampMs: Date.now(),
  };
}
const item = (f: Finding) => ({ message: message("agent.findings", f.taskId, f), value: f });
const revoked = (r: Revocation) => ({ message: message("agent.revocations", r.taskId, r), value: r });
const reject = () => {
  throw new Error("the notifier should not reject");
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Writable that keeps each line. */
function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  return { stream, lines };
}

describe("notifier", () => {
  const secret = newSecret();
  let webhook: LoopbackServer;
  let slack: LoopbackServer;
  let hec: HecEndpoint;
  let syslog: SyslogReceiver;
  const running: Notifier[] = [];

  beforeAll(async () => {
    webhook = await signedWebhook(secret).start();
    slack = await slackWebhook().start();
    hec = hecEndpoint(TOKEN);
    await hec.server.start();
    syslog = await new SyslogReceiver().start();
  });
  afterAll(async () => {
    await Promise.all([webhook.stop(), slack.stop(), hec.server.stop(), syslog.stop()]);
  });
  beforeEach(async () => {
    await Promise.all([webhook.start(), slack.start(), hec.server.start(), syslog.startTcp()]);
    for (const s of [webhook, slack, hec.server]) {
      s.reset();
      s.slowMs = 1000;
      s.retryAfter = "1";
    }
    hec.busy = 0;
    syslog.messages.length = 0;
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.close()));
  });

  /** A notifier with every sink, on real loopback servers, with short time-outs and retry rounds. */
  function build(over: { rounds?: number } = {}) {
    const store = new MemoryStore();
    const stdout = capture();
    const letters: DeadLetter[] = [];
    const metrics = new NotifierMetrics(new Registry());
    const delivery = new Delivery({
      timeoutMs: 200,
      retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 1500, budgetMs: 3000 },
      circuit: { failureThreshold: 3, coolDownMs: 100 },
    });
    const notifier = createNotifier({
      store,
      logger,
      metrics,
      outputs: [
        new JsonLinesOutput({ stream: stdout.stream }),
        new WebhookOutput({ url: `${webhook.url}/hook`, secret }, new WebhookClient({ timeoutMs: 200, delivery })),
        new SlackOutput({ url: `${slack.url}${SLACK_PATH}`, timeoutMs: 200 }, delivery),
        new SplunkHecOutput(
          { url: hec.server.url, token: TOKEN, sourcetype: "driftwatch:ocsf", source: "driftwatch", timeoutMs: 200 },
          delivery,
        ),
        new SyslogOutput({ transport: "tcp", host: "127.0.0.1", port: syslog.tcpPort, facility: 4, timeoutMs: 200 }),
      ],
      onDeadLetter: async (l) => {
        letters.push(...l);
      },
      rounds: over.rounds ?? 50,
      retryBaseMs: 20,
      retryMaxMs: 100,
      leaseMs: 5_000,
    });
    running.push(notifier);
    /** Sweeps until every queued alert is delivered or given up. */
    const settle = (timeoutMs = 10_000) =>
      eventually(
        async () => {
          await notifier.idle();
          await notifier.sweep();
          await notifier.idle();
          return (await store.sortedCount(INCIDENT_KEYS.outbox)) === 0 ? true : undefined;
        },
        timeoutMs,
        "every alert delivered or given up",
      );
    const count = async (sink: Sink, result: string) =>
      (await metrics.alerts.get()).values.find((v) => v.labels.sink === sink && v.labels.result === result)?.value ?? 0;
    return {
      notifier,
      store,
      stdout,
      letters,
      count,
      settle,
      findings: notifier.findingsStage(""),
      revocations: notifier.revocationsStage(""),
    };
  }

  /**
   * What each sink took, as `<incident>-v<version>`: answered requests only (a slow answer
   * past the client's time-out is a request the client never learnt about).
   */
  function taken(stdout: string[]): Record<Sink, string[]> {
    const ok = (s: LoopbackServer) => s.calls.filter((c) => c.outage !== "slow" && c.status < 300);
    const slackVersion = (body: string) => {
      const blocks = (JSON.parse(body) as { blocks: { elements?: { text: string }[] }[] }).blocks;
      const m = /incident ([0-9a-f]+) · version (\d+)/.exec(blocks[3]?.elements?.[0]?.text ?? "");
      return `${m?.[1]}-v${m?.[2]}`;
    };
    return {
      stdout: stdout.map((l) => {
        const u = JSON.parse(l) as IncidentUpdate;
        return `${u.incident.id}-v${u.incident.version}`;
      }),
      webhook: ok(webhook).map((c) => String(c.headers["webhook-id"])),
      slack: ok(slack).map((c) => slackVersion(c.body)),
      splunk: ok(hec.server).map((c) => (JSON.parse(c.body) as { event: { metadata: { uid: string } } }).event.metadata.uid),
      syslog: syslog.messages.map((m) => `${m.sd["driftwatch@32473"]?.incident}-v${m.sd["driftwatch@32473"]?.version}`),
    };
  }

  /** Every sink took every version exactly once (syslog over TCP has no answer: give its collector a moment to read). */
  async function expectEachOnce(stdout: string[], versions: string[]) {
    const want = [...versions].sort();
    await eventually(() => (taken(stdout).syslog.length >= want.length ? true : undefined), 2000, "the syslog collector").catch(
      () => undefined,
    );
    const got = taken(stdout);
    for (const sink of SINKS) expect([sink, [...got[sink]].sort()]).toEqual([sink, want]);
  }

  const task1 = incidentIdFor("task-1");
  const task2 = incidentIdFor("task-2");

  it("reads findings and revocations, and rejects what is neither", () => {
    const { findings, revocations } = build();
    expect(findings.input).toBe("agent.findings");
    expect(revocations.input).toBe("agent.revocations");
    expect(
      createNotifier({ store: new MemoryStore(), outputs: [], logger, onDeadLetter: async () => undefined }).findingsStage("dw.").input,
    ).toBe("dw.agent.findings");
    expect(() => findings.parse(message("agent.findings", "t", { id: 1 }))).toThrow(/not a finding/);
    expect(() => revocations.parse(message("agent.revocations", "t", { id: "x" }))).toThrow(/not a revocation/);
    expect(findings.parse(item(finding("a")).message)).toEqual(finding("a"));
  });

  it("makes one incident per task and sends every version to every sink once, in each sink's format; a redelivery sends nothing", async () => {
    const t = build();
    expect(
      await t.findings.handle(
        [
          item(finding("a")),
          item(finding("b", { severity: "critical" })),
          item(finding("c", { taskId: "task-2", severity: "medium" })),
          item(finding("s", { taskId: "task-3", mode: "shadow", severity: "critical" })),
        ],
        reject,
      ),
    ).toEqual([]);
    await t.findings.handle([item(finding("d", { severity: "low" })), item(finding("a"))], reject);
    await t.settle();
    await expectEachOnce(t.stdout.lines, [`${task1}-v1`, `${task1}-v2`, `${task2}-v1`]);
    // shadow findings are not alerted: no incident for task-3
    expect(await t.notifier.book.forTask("task-3")).toBeUndefined();
    // the formats
    expect(webhook.calls.every((c) => c.status === 204)).toBe(true); // signed
    const body = JSON.parse(webhook.calls.find((c) => c.headers["webhook-id"] === `${task1}-v1`)?.body ?? "");
    expect(body).toMatchObject({
      type: "driftwatch.incident",
      incident: { id: task1, version: 1, severity: "critical", findingCount: 2 },
      finding: { id: "b" },
    });
    expect(body.ocsf).toMatchObject({ class_uid: 2004, activity_id: 1, severity_id: 5, finding_info: { uid: task1 } });
    const event = JSON.parse(hec.server.calls.find((c) => c.body.includes(`${task1}-v2`))?.body ?? "");
    expect(event).toMatchObject({
      sourcetype: "driftwatch:ocsf",
      source: "driftwatch",
      event: { class_uid: 2004, activity_id: 2, type_uid: 200402 },
    });
    expect(hec.server.calls.every((c) => c.headers.authorization === `Splunk ${TOKEN}`)).toBe(true);
    expect(syslog.messages.every((m) => m.framed && m.facility === 4)).toBe(true);
    expect(syslog.messages.find((m) => m.sd["driftwatch@32473"]?.task === "task-2")?.severity).toBe(4); // medium: warning
    // redelivered findings change nothing and send nothing
    const before = {
      webhook: webhook.calls.length,
      slack: slack.calls.length,
      hec: hec.server.calls.length,
      syslog: syslog.messages.length,
    };
    await t.findings.handle(
      [item(finding("a")), item(finding("b", { severity: "critical" })), item(finding("d", { severity: "low" }))],
      reject,
    );
    await t.settle();
    await sleep(50);
    expect({
      webhook: webhook.calls.length,
      slack: slack.calls.length,
      hec: hec.server.calls.length,
      syslog: syslog.messages.length,
    }).toEqual(before);
    expect(t.stdout.lines).toHaveLength(3);
  });

  it("notes revocations; one that could not be revoked goes out as an update: credential X could not be revoked", async () => {
    const t = build();
    await t.findings.handle([item(finding("f1"))], reject);
    await t.revocations.handle([revoked(revocation())], reject);
    await t.settle();
    await expectEachOnce(t.stdout.lines, [`${task1}-v1`]);
    expect((await t.notifier.book.forTask("task-1"))?.revocations.map((r) => r.status)).toEqual(["revoked"]);
    const dead = revocation({
      id: "rev-2",
      credentialId: "caep:session:9",
      credentialStore: "caep",
      status: "dead_lettered",
      detail: "HTTP 500 (gave up: 30 attempts)",
      completedAtMs: Date.now(),
    });
    await t.revocations.handle([revoked(dead)], reject);
    await t.revocations.handle([revoked(dead)], reject); // redelivered: nothing more
    await t.settle();
    await expectEachOnce(t.stdout.lines, [`${task1}-v1`, `${task1}-v2`]);
    const v2 = JSON.parse(t.stdout.lines[1] ?? "") as IncidentUpdate & { ocsf: { severity_id: number; message: string } };
    expect(v2.change).toEqual({
      cause: "revocation",
      summary: "credential caep:session:9 (caep) could not be revoked: HTTP 500 (gave up: 30 attempts); revoke it by hand",
    });
    expect(v2.ocsf.severity_id).toBe(5);
    expect(v2.incident.revocations.map((r) => [r.credentialId, r.status])).toEqual([
      ["vault:lease:db/creds/billing/abc", "revoked"],
      ["caep:session:9", "dead_lettered"],
    ]);
    expect(JSON.parse(slack.calls[1]?.body ?? "").text).toMatch(/^\[CRITICAL] .*caep:session:9 \(caep\) could not be revoked/);
  });

  it("outage: connection refused at every outside sink, then recovery: nothing lost, nothing twice, the healthy sink not held up", async () => {
    const t = build();
    await Promise.all([webhook.stop(), slack.stop(), hec.server.stop(), syslog.stopTcp()]);
    const began = Date.now();
    await t.findings.handle([item(finding("a"))], reject);
    await t.findings.handle([item(finding("b", { taskId: "task-2" }))], reject);
    await t.findings.handle([item(finding("c"))], reject);
    expect(Date.now() - began).toBeLessThan(500); // the stage waits for no sink
    // rounds go by during the outage
    for (let n = 0; n < 5; n++) {
      await t.notifier.idle();
      await sleep(40);
      await t.notifier.sweep();
    }
    await t.notifier.idle();
    const during = taken(t.stdout.lines);
    expect(during.stdout.sort()).toEqual([`${task1}-v1`, `${task1}-v2`, `${task2}-v1`].sort());
    expect([during.webhook, during.slack, during.splunk, during.syslog]).toEqual([[], [], [], []]);
    expect(t.letters).toEqual([]);
    expect(await t.count("webhook", "failed")).toBeGreaterThan(0);
    await Promise.all([webhook.start(), slack.start(), hec.server.start(), syslog.startTcp()]);
    await t.settle();
    await expectEachOnce(t.stdout.lines, [`${task1}-v1`, `${task1}-v2`, `${task2}-v1`]);
    expect(t.letters).toEqual([]);
  });

  it("outage: 500s and a busy HEC are retried until answered, each version taken once", async () => {
    const t = build();
    webhook.script.push("500", "500", "500");
    slack.script.push("500", "500");
    hec.busy = 3;
    await t.findings.handle([item(finding("a"))], reject);
    await t.findings.handle([item(finding("b"))], reject);
    await t.settle();
    await expectEachOnce(t.stdout.lines, [`${task1}-v1`, `${task1}-v2`]);
    expect(webhook.calls.filter((c) => c.status === 500)).toHaveLength(3);
    expect(slack.calls.filter((c) => c.status === 500)).toHaveLength(2);
    expect(hec.server.calls.filter((c) => c.status === 503)).toHaveLength(3);
    expect(t.letters).toEqual([]);
  });

  it("outage: answers slower than the time-out are tried again; the receiver sees repeats only of requests it never answered in time", async () => {
    const t = build();
    for (const s of [webhook, slack, hec.server]) {
      s.slowMs = 350;
      s.script.push("slow");
    }
    await t.findings.handle([item(finding("a"))], reject);
    await t.findings.handle([item(finding("b"))], reject);
    await t.settle();
    await sleep(400); // the slow answers land
    await expectEachOnce(t.stdout.lines, [`${task1}-v1`, `${task1}-v2`]);
    const slowHook = webhook.calls.filter((c) => c.outage === "slow");
    expect(slowHook).toHaveLength(1);
    // the repeat carries the same webhook-id: the receiver can drop it
    expect(slowHook[0]?.headers["webhook-id"]).toBe(`${task1}-v1`);
    expect(t.letters).toEqual([]);
  });

  it("outage: 429 with Retry-After is honoured, then delivered once", async () => {
    const t = build();
    slack.script.push("429");
    await t.findings.handle([item(finding("a"))], reject);
    await t.settle();
    await expectEachOnce(t.stdout.lines, [`${task1}-v1`]);
    expect(slack.calls.map((c) => c.status)).toEqual([429, 200]);
    expect((slack.calls[1]?.atMs ?? 0) - (slack.calls[0]?.atMs ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it("a sink down past the last round: its versions are dead-lettered and counted; the other sinks have everything", async () => {
    const t = build({ rounds: 3 });
    await hec.server.stop();
    await t.findings.handle([item(finding("a"))], reject);
    await t.findings.handle([item(finding("b"))], reject);
    await t.settle();
    expect(t.letters.map((l) => l.reason)).toEqual([
      expect.stringMatching(
        new RegExp(`^incident ${task1} version 1 \\(task task-1\\) was not delivered to splunk: .*\\(gave up: 3 rounds\\)$`),
      ),
      expect.stringMatching(new RegExp(`^incident ${task1} version 2 .* to splunk: .*\\(gave up: 3 rounds\\)$`)),
    ]);
    expect(t.letters.every((l) => l.stage === "notifier")).toBe(true);
    expect(await t.count("splunk", "dead_lettered")).toBe(2);
    const got = taken(t.stdout.lines);
    for (const sink of ["stdout", "webhook", "slack", "syslog"] as const) expect(got[sink].sort()).toEqual([`${task1}-v1`, `${task1}-v2`]);
    // back up: given-up versions stay given up, the next one goes
    await hec.server.start();
    await t.findings.handle([item(finding("c"))], reject);
    await t.settle();
    expect(taken(t.stdout.lines).splunk).toEqual([`${task1}-v3`]);
  });

  it("a version a sink refuses (Slack 404 no_service) is dead-lettered at once", async () => {
    const store = new MemoryStore();
    const letters: DeadLetter[] = [];
    const notifier = createNotifier({
      store,
      logger,
      outputs: [
        new SlackOutput({ url: `${slack.url}/services/T0/B0/revoked`, timeoutMs: 200 }, new Delivery({ timeoutMs: 200, circuit: false })),
      ],
      onDeadLetter: async (l) => {
        letters.push(...l);
      },
    });
    running.push(notifier);
    await notifier.findingsStage("").handle([item(finding("a"))], reject);
    await notifier.idle();
    expect(letters.map((l) => l.reason)).toEqual([
      expect.stringMatching(/to slack: Slack refused .*HTTP 404 \(no_service\) \(gave up: the sink refused it\)$/),
    ]);
    expect(letters[0]?.reason).not.toContain("revoked"); // the URL (the secret) is not in it
    expect(await store.sortedCount(INCIDENT_KEYS.outbox)).toBe(0);
  });

  it("on the bus: an outage holds alerts back (never dead-lettered) and they go out once it recovers; what a sink refuses lands on agent.deadletter", async () => {
    const bus = new MemoryBus({ partitions: 1, retryDelayMs: 10 });
    const store = new MemoryStore();
    const stdout = capture();
    const dead: BusMessage[] = [];
    const deadSub = await bus.subscribe({ group: "dead", topics: ["agent.deadletter"], fromBeginning: true }, async (b) => {
      dead.push(...b);
    });
    const delivery = new Delivery({ timeoutMs: 200, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 100 }, circuit: false });
    const notifier = createNotifier({
      store,
      logger,
      outputs: [
        new JsonLinesOutput({ stream: stdout.stream }),
        new WebhookOutput({ url: `${webhook.url}/hook`, secret }, new WebhookClient({ timeoutMs: 200, delivery })),
      ],
      onDeadLetter: (letters) =>
        bus.publish(
          "agent.deadletter",
          letters.map((l) => ({ key: null, value: JSON.stringify(l) })),
        ),
      retryBaseMs: 20,
      retryMaxMs: 100,
      leaseMs: 5_000,
    });
    running.push(notifier);
    const runtime = { bus, logger, metrics: new Metrics(false), topicPrefix: "", groupPrefix: "test.", healthy: async () => true };
    const subs = [await runStage(notifier.findingsStage(""), runtime), await runStage(notifier.revocationsStage(""), runtime)];
    const sweeper = setInterval(() => void notifier.sweep(), 20);
    try {
      webhook.outage = "500";
      const a = finding("a");
      const b = finding("b", { taskId: "task-2" });
      await bus.publish("agent.findings", [
        { key: a.taskId, value: JSON.stringify(a) },
        { key: a.taskId, value: JSON.stringify(a) },
        { key: b.taskId, value: JSON.stringify(b) },
      ]);
      await bus.publish("agent.revocations", [
        { key: "task-2", value: JSON.stringify(revocation({ taskId: "task-2", status: "failed", detail: "HTTP 503", attempts: 4 })) },
      ]);
      // the outage lasts several rounds
      await eventually(() => (webhook.calls.length >= 8 ? true : undefined), 5000, "attempts during the outage");
      expect(dead).toEqual([]);
      webhook.outage = "none";
      await eventually(
        async () => ((await store.sortedCount(INCIDENT_KEYS.outbox)) === 0 && bus.idle() ? true : undefined),
        5000,
        "delivery after the outage",
      );
      const ok = webhook.calls.filter((c) => c.status === 204).map((c) => String(c.headers["webhook-id"]));
      expect(ok.sort()).toEqual([`${task1}-v1`, `${task2}-v1`, `${task2}-v2`].sort());
      expect(stdout.lines).toHaveLength(3);
      expect(dead).toEqual([]);
      // a refusal (the receiver answers 401 to a wrong signature): dead-lettered, on the topic
      const forged = new WebhookOutput(
        { url: `${webhook.url}/hook`, secret: newSecret() },
        new WebhookClient({ timeoutMs: 200, delivery }),
      );
      const other = createNotifier({
        store,
        logger,
        outputs: [forged],
        onDeadLetter: (letters) =>
          bus.publish(
            "agent.deadletter",
            letters.map((l) => ({ key: null, value: JSON.stringify(l) })),
          ),
      });
      running.push(other);
      await other.findingsStage("").handle([item(finding("c", { taskId: "task-4" }))], reject);
      await other.idle();
      await eventually(() => (dead.length === 1 ? true : undefined), 2000, "the dead letter");
      const letter = JSON.parse(dead[0]?.value.toString() ?? "") as DeadLetter;
      expect(letter.reason).toMatch(/version 1 \(task task-4\) was not delivered to webhook: .*HTTP 401 \(gave up: the sink refused it\)$/);
    } finally {
      clearInterval(sweeper);
      for (const s of subs) await s.close();
      await deadSub.close();
      await bus.close();
    }
  });
});
