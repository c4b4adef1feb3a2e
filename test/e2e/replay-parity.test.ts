import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Finding } from "../../schemas/finding.js";
import { TOPICS, type TopicName, topicName } from "../../schemas/topics.js";
import { type App, PIPELINE, startDistributed } from "../../services/cli/app.js";
import { type ReplayRequest, replay } from "../../services/cli/replay.js";
import { KafkaRangeError, readTopicRange } from "../../services/cli/replay-kafka.js";
import { currentFindings } from "../../services/detector/rules.js";
import { decodeTraces } from "../../services/ingest/otlp.js";
import type { Bus, Subscription } from "../../services/runtime/bus/bus.js";
import { type Config, loadConfig } from "../../services/runtime/config.js";
import { recordsOf } from "../../services/runtime/decode.js";
import { driftPolicy, driftTasks, recordWorkload } from "../support/drift-workload.js";
import { distributedConfig, isolation, kafkaBus, testLogger } from "../support/ports.js";
import { eventually } from "../support/wait.js";

/**
 * The done-when for replay: a recording replayed gives the findings the live
 * pipeline gave for the same traffic. An agent workload with several kinds of drift is
 * recorded with the OTel SDK (protobuf and JSON requests, one file each); the recorded
 * requests go through the distributed pipeline (real Kafka and Redis) as the gateway would
 * publish them, one export after the other; then `replay` runs over the files, and over the
 * live run's `otlp_spans` topic range, and must find exactly what the live pipeline found.
 */

/** A finding as compared: everything but when it was detected. */
function comparable(f: Finding) {
  const { detectedAtMs: _detectedAt, ...rest } = Finding.parse(f);
  return rest;
}

function byId(findings: Finding[]) {
  return findings.map(comparable).sort((a, b) => a.id.localeCompare(b.id));
}

/** One finding per id, as a consumer holds them (see currentFindings). */
const lastPerId = (findings: Finding[]): Finding[] => currentFindings(findings);

interface Recorded {
  file: string;
  bytes: Buffer;
  contentType: "application/x-protobuf" | "application/json";
  spanIds: string[];
}

describe("replay gives the live pipeline's findings (real Kafka and Redis)", () => {
  const iso = isolation("replay");
  const runId = randomBytes(4).toString("hex");
  const tasks = driftTasks(runId);
  const apps: App[] = [];
  const subs: Subscription[] = [];
  let bus: Bus;
  let config: Config;
  let replayConfig: Config;
  let policyDir: string;
  let recordingDir: string;
  const recorded: Recorded[] = [];
  const live: Finding[] = [];
  const seenSteps = new Set<string>();
  /** Between the protobuf half of the recording and the JSON half, as published. */
  let halfwayMs = 0;
  let protobufCount = 0;
  const spansTopic = () => topicName(config.topicPrefix, TOPICS.otlpSpans);
  const taskName = (taskId: string) =>
    [...tasks, ...tasks.flatMap((t) => (t.delegate ? [t.delegate] : []))].find((t) => t.taskId === taskId)?.name ?? taskId;

  beforeAll(async () => {
    policyDir = driftPolicy();
    // record: half the tasks exported as OTLP protobuf, the other half as OTLP JSON, a file per request
    recordingDir = mkdtempSync(join(tmpdir(), "dw-recording-"));
    const half = Math.ceil(tasks.length / 2);
    const parts = [
      { encoding: "protobuf" as const, ext: "pb", contentType: "application/x-protobuf" as const, tasks: tasks.slice(0, half) },
      { encoding: "json" as const, ext: "json", contentType: "application/json" as const, tasks: tasks.slice(half) },
    ];
    for (const part of parts) {
      for (const bytes of await recordWorkload(part.tasks, part.encoding)) {
        const file = join(recordingDir, `${String(recorded.length).padStart(3, "0")}-request.${part.ext}`);
        writeFileSync(file, bytes);
        const spanIds = decodeTraces(bytes, part.encoding).spans.map((s) => s.spanId);
        recorded.push({ file, bytes: Buffer.from(bytes), contentType: part.contentType, spanIds });
      }
      if (part.encoding === "protobuf") protobufCount = recorded.length;
    }

    // the live pipeline: every service on its own, as separate `driftwatch run <service>` processes
    config = distributedConfig(iso, { DRIFTWATCH_POLICY_DIR: policyDir });
    replayConfig = loadConfig({ DRIFTWATCH_LOG_LEVEL: "silent", DRIFTWATCH_POLICY_DIR: policyDir });
    for (const name of PIPELINE) apps.push(await startDistributed(config, [name], { logger: testLogger }));
    bus = kafkaBus();
    const watch = async (topic: TopicName, onRecord: (r: unknown) => void) =>
      subs.push(
        await bus.subscribe(
          { group: `${iso.groupPrefix}watch-${topic}`, topics: [topicName(config.topicPrefix, topic)], fromBeginning: true },
          async (batch) => {
            for (const m of batch) for (const r of recordsOf(m)) onRecord(r);
          },
        ),
      );
    await watch(TOPICS.steps, (r) => seenSteps.add((r as { spanId: string }).spanId));
    await watch(TOPICS.findings, (r) => live.push(Finding.parse(r)));

    // publish the recording as the gateway would (the request body, its content type), one
    // export after the other: each goes on once the pipeline has placed its spans
    for (const [i, r] of recorded.entries()) {
      if (i === protobufCount) {
        await new Promise((res) => setTimeout(res, 5));
        halfwayMs = Date.now();
        await new Promise((res) => setTimeout(res, 5));
      }
      await bus.publish(spansTopic(), [{ key: null, value: r.bytes, headers: { "content-type": r.contentType } }]);
      await eventually(() => (r.spanIds.every((s) => seenSteps.has(s)) ? true : undefined), 60_000, `the steps of ${r.file}`);
    }
    // then until no finding has come for a while
    let count = -1;
    let quietSince = Date.now();
    while (Date.now() - quietSince < 3_000) {
      await new Promise((res) => setTimeout(res, 250));
      if (live.length !== count) {
        count = live.length;
        quietSince = Date.now();
      }
    }
  });

  afterAll(async () => {
    // each kafkajs consumer takes a few seconds to leave its group: all at once
    await Promise.all(subs.map((s) => s.close()));
    await bus?.close();
    await Promise.all(apps.map((app) => app.close()));
  });

  it("the live pipeline finds each kind of drift in the workload, where it is", () => {
    const found = lastPerId(live)
      .map((f) => [taskName(f.taskId), f.ruleId, f.stepIndex, f.severity, f.mode])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(found).toEqual([
      // a task-level finding points at the first step past the line: the 7th of 8, where 6 are allowed
      ["budget", "budget.steps", 6, "low", "shadow"],
      ["flow", "flow.egress_after_sensitive_read", 2, "critical", "enforce"],
      ["inject", "provenance.untrusted_argument", 3, "high", "enforce"],
      ["research", "scope.delegation", 2, "high", "enforce"],
      ["restricted", "scope.data", 1, "high", "enforce"],
      ["shell", "scope.tool", 2, "high", "enforce"],
      ["unknown", "scope.unknown_agent", expect.any(Number), "medium", "alert"],
    ]);
  });

  it("replay over the recorded files gives the same findings", async () => {
    const replayed = await replay(replayConfig, [recordingDir]);
    expect(replayed.length).toBe(new Set(replayed.map((f) => f.id)).size);
    expect(byId(replayed)).toEqual(byId(lastPerId(live)));
  });

  it("replay over the live run's otlp_spans topic range gives the same findings", async () => {
    const read = await readTopicRange(
      { brokers: inject("kafkaBrokers").split(","), topic: spansTopic() },
      { groupPrefix: iso.groupPrefix },
    );
    // every recorded request, with its content type, in the order it was published
    expect(read.requests.map((r) => [r.bytes, r.contentType])).toEqual(recorded.map((r) => [r.bytes, r.contentType]));
    expect(read.partitions.length).toBe(3);
    expect(read.partitions.filter((p) => p.messages > 0).length).toBeGreaterThan(1);
    expect(byId(await replay(replayConfig, read.requests))).toEqual(byId(lastPerId(live)));
  });

  it("reads only what is between the bounds: times resolved per partition, offsets per partition", async () => {
    const brokers = inject("kafkaBrokers").split(",");
    const topic = spansTopic();
    const bodies = (rs: ReplayRequest[]) => rs.map((r) => r.bytes);
    const before = await readTopicRange({ brokers, topic, to: { kind: "time", ms: halfwayMs } }, { groupPrefix: iso.groupPrefix });
    expect(bodies(before.requests)).toEqual(recorded.slice(0, protobufCount).map((r) => r.bytes));
    const after = await readTopicRange({ brokers, topic, from: { kind: "time", ms: halfwayMs } }, { groupPrefix: iso.groupPrefix });
    expect(bodies(after.requests)).toEqual(recorded.slice(protobufCount).map((r) => r.bytes));
    expect(after.requests.every((r) => r.contentType === "application/json")).toBe(true);

    // skip the first message of partition 0, stop before the last of partition 1, partition 2 whole
    const whole = await readTopicRange({ brokers, topic }, { groupPrefix: iso.groupPrefix });
    const [p0, p1] = whole.partitions;
    if (!p0 || !p1) throw new Error("the topic has fewer than 2 partitions");
    const cut = await readTopicRange(
      {
        brokers,
        topic,
        from: { kind: "offsets", offsets: new Map([[0, p0.from + 1]]) },
        to: { kind: "offsets", offsets: new Map([[1, p1.to - 1]]) },
      },
      { groupPrefix: iso.groupPrefix },
    );
    const skipped = new Set([`${topic}/0@${p0.from}`, `${topic}/1@${p1.to - 1}`]);
    expect(cut.requests.map((r) => r.source)).toEqual(whole.requests.map((r) => r.source).filter((s) => !skipped.has(s)));
    expect(cut.partitions.map((p) => p.messages)).toEqual(whole.partitions.map((p, i) => p.messages - (i < 2 ? 1 : 0)));
  });

  it("leaves the live pipeline's consumer groups alone and deletes its own", async () => {
    const kafka = new Kafka({ clientId: "driftwatch-test-admin", brokers: inject("kafkaBrokers").split(","), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const ingestGroup = `${config.groupPrefix}ingest`;
      const committed = async () => (await admin.fetchOffsets({ groupId: ingestGroup, topics: [spansTopic()] }))[0]?.partitions;
      const beforeRead = await committed();
      await readTopicRange({ brokers: inject("kafkaBrokers").split(","), topic: spansTopic() }, { groupPrefix: iso.groupPrefix });
      expect(await committed()).toEqual(beforeRead);
      const { groups } = await admin.listGroups();
      expect(groups.map((g) => g.groupId).filter((g) => g.startsWith(`${iso.groupPrefix}replay.`))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });

  it("says clearly when the topic does not exist", async () => {
    const read = readTopicRange({ brokers: inject("kafkaBrokers").split(","), topic: `${config.topicPrefix}otlp_spanz` });
    await expect(read).rejects.toThrow(KafkaRangeError);
    await expect(read).rejects.toThrow(`topic "${config.topicPrefix}otlp_spanz" does not exist`);
  });

  it("`driftwatch replay --topic` prints the same findings, and --compare-policy reads the range once for both policies", () => {
    const cli = (args: string[]) =>
      spawnSync("node", ["--import", "tsx", "services/cli/main.ts", "replay", ...args], {
        encoding: "utf8",
        env: {
          ...process.env,
          DRIFTWATCH_LOG_LEVEL: "silent",
          DRIFTWATCH_KAFKA_BROKERS: inject("kafkaBrokers"),
          DRIFTWATCH_GROUP_PREFIX: iso.groupPrefix,
          DRIFTWATCH_POLICY_DIR: policyDir,
        },
        timeout: 90_000,
      });
    const out = join(mkdtempSync(join(tmpdir(), "dw-replay-out-")), "findings.jsonl");
    const plain = cli(["--topic", spansTopic(), "--out", out, "--fail-on", "critical"]);
    expect(plain.stderr).toContain(`read ${recorded.length} message(s) from ${spansTopic()}`);
    expect(plain.status).toBe(1); // the flow finding is critical
    const lines = readFileSync(out, "utf8").trim().split("\n");
    expect(byId(lines.map((l) => JSON.parse(l) as Finding))).toEqual(byId(lastPerId(live)));

    // a candidate policy that grants the billing agent shell.exec: the scope.tool finding goes
    const candidate = mkdtempSync(join(tmpdir(), "dw-candidate-"));
    for (const name of readdirSync(policyDir)) {
      const text = readFileSync(join(policyDir, name), "utf8");
      writeFileSync(
        join(candidate, name),
        text.replace("- { name: email.send, effect: egress }", "- { name: email.send, effect: egress }\n      - { name: shell.exec }"),
      );
    }
    const diff = cli(["--topic", spansTopic(), "--from", new Date(halfwayMs - 600_000).toISOString(), "--compare-policy", candidate]);
    expect(diff.status).toBe(0);
    expect(diff.stderr).toContain(`read ${recorded.length} message(s)`);
    expect(diff.stderr.match(/read \d+ message/g)).toHaveLength(1);
    expect(diff.stderr).toContain("0 added, 1 removed, 0 changed, 6 unchanged");
    const changes = diff.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { change: string; finding: Finding });
    expect(changes.map((c) => [c.change, taskName(c.finding.taskId), c.finding.ruleId])).toEqual([["removed", "shell", "scope.tool"]]);
  });
});
