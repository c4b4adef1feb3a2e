import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Finding, SEVERITY_RANK, type Severity } from "../../schemas/finding.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { BaselineStore } from "../detector/baseline-store.js";
import { watchLearning } from "../detector/learner.js";
import { loadPolicy } from "../detector/policy.js";
import { currentFindings } from "../detector/rules.js";
import { decodeTraces, detectEncoding } from "../ingest/otlp.js";
import { taskStoreFor } from "../pathfinder/task-store.js";
import type { MemoryBus } from "../runtime/bus/memory-bus.js";
import { ManualClock } from "../runtime/clock.js";
import type { Config } from "../runtime/config.js";
import { recordsOf } from "../runtime/decode.js";
import { createLogger } from "../runtime/logging.js";
import { startEmbedded } from "./app.js";

/**
 * Replay (backtest): recorded OTLP export requests through the detection pipeline in this
 * process (ingest, pathfinder, detector on the in-process bus and store). The requests come
 * from files (recordedRequests) or from a Kafka topic range (replay-kafka.ts); either way
 * they are published to `otlp_spans` as the gateway or a Collector would have, with their
 * content type, so ingest reads them as it reads live traffic.
 */
export interface ReplayRequest {
  /** Where it was recorded: `file`, `file:line`, or `topic/partition@offset`. */
  source: string;
  bytes: Buffer;
  /** The content type it was sent with (OTLP JSON or protobuf); without it ingest tells them apart by the bytes. */
  contentType?: string;
}

export interface ReplayOptions {
  /** How long the pipeline may take to settle after each request (default 2 minutes). */
  timeoutMs?: number;
  /**
   * History to learn behaviour baselines from before the replay proper: replayed first,
   * every task in it learned (as the detector's learner would once they finished, leaving
   * out tasks with policy findings), its own findings discarded.
   */
  warmUp?: readonly string[] | readonly ReplayRequest[];
  /** Told how many tasks the warm-up taught the baselines. */
  onWarmedUp?: (tasksLearned: number) => void;
}

const requestsOf = (input: readonly string[] | readonly ReplayRequest[]): readonly ReplayRequest[] =>
  input.every((i) => typeof i === "string") ? recordedRequests(input as readonly string[]) : (input as readonly ReplayRequest[]);

/**
 * Recorded OTLP requests in files or folders (walked in name order): protobuf or JSON, one
 * request per file, or OTLP JSON lines (`.jsonl`, `.ndjson`) as the Collector's file exporter
 * writes them.
 */
export function recordedRequests(paths: readonly string[]): ReplayRequest[] {
  const out: ReplayRequest[] = [];
  const visit = (p: string) => {
    if (statSync(p).isDirectory()) {
      for (const name of readdirSync(p).sort()) visit(join(p, name));
      return;
    }
    const bytes = readFileSync(p);
    if (/\.(jsonl|ndjson)$/i.test(p)) {
      bytes
        .toString("utf8")
        .split("\n")
        .forEach((line, i) => {
          if (line.trim()) out.push({ source: `${p}:${i + 1}`, bytes: Buffer.from(line), contentType: "application/json" });
        });
    } else {
      out.push({ source: p, bytes, ...(/\.json$/i.test(p) ? { contentType: "application/json" } : {}) });
    }
  };
  for (const p of paths) visit(p);
  return out;
}

/**
 * When a recorded request was sent, as near as its content tells: the end of its latest span
 * (an exporter sends what has ended). Undefined for a request that does not decode (ingest
 * dead-letters it) or holds no span.
 */
export function recordedAtMs(r: ReplayRequest): number | undefined {
  try {
    let latest: bigint | undefined;
    for (const s of decodeTraces(r.bytes, detectEncoding(r.bytes, r.contentType)).spans) {
      if (latest === undefined || s.endTimeUnixNano > latest) latest = s.endTimeUnixNano;
    }
    return latest === undefined ? undefined : Number(latest / 1_000_000n);
  } catch {
    return undefined;
  }
}

/**
 * Runs recorded requests (or the files and folders named) through detection; returns the
 * findings in a stable order (by the flagged span's end, task, step and rule). Requests
 * already read (e.g. from Kafka) can be replayed again, under another policy, without
 * reading them again.
 *
 * Deterministic: the pipeline runs on the recording's clock (a ManualClock moved to each
 * request's time before it is published), so what ingest stamps as arrival, what the
 * detector stamps as detection, and when the sweeps run (baselines learned, idle and silent
 * tasks) depend on the recording alone: the same input gives byte-identical findings.
 */
export async function replay(
  config: Config,
  input: readonly string[] | readonly ReplayRequest[],
  options: ReplayOptions = {},
): Promise<Finding[]> {
  const requests = requestsOf(input);
  const history = options.warmUp ? requestsOf(options.warmUp) : [];
  const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel);
  const clock = new ManualClock();
  const app = await startEmbedded(
    // every task kept, as the live pipeline's Redis keeps them (the embedded bound would drop some)
    { ...config, revoker: { ...config.revoker }, embedded: { maxTasks: Number.POSITIVE_INFINITY, maxBytes: Number.POSITIVE_INFINITY } },
    { services: ["ingest", "analyser"], logger, clock },
  );
  const bus = app.bus as MemoryBus;
  const findings: Finding[] = [];
  const sub = await bus.subscribe(
    { group: "replay", topics: [topicName(config.topicPrefix, TOPICS.findings)], fromBeginning: true },
    async (batch) => {
      for (const m of batch) for (const r of recordsOf(m)) findings.push(Finding.parse(r));
    },
  );
  try {
    // One request after the other, each once the pipeline has settled, as live exports
    // arrive (seconds apart) rather than all at once: taken all at once, the partitions would
    // interleave them in another order, e.g. a delegate's spans before its delegating task's
    // (so without its lineage), and the findings would differ from the live pipeline's.
    const play = async (list: readonly ReplayRequest[]) => {
      for (const r of list) {
        const deadline = Date.now() + (options.timeoutMs ?? 120_000);
        // the sweeps due by the time this request was sent run first (as they would have live)
        const at = recordedAtMs(r);
        if (at !== undefined && (await clock.advanceTo(at)) > 0) await settled(bus, deadline, r.source);
        await bus.publish(topicName(config.topicPrefix, TOPICS.otlpSpans), [
          { key: null, value: r.bytes, ...(r.contentType ? { headers: { "content-type": r.contentType } } : {}) },
        ]);
        await settled(bus, deadline, r.source);
      }
    };
    if (options.warmUp) {
      await play(history);
      const policy = loadPolicy(config.policyDir);
      const learner = watchLearning({
        tasks: taskStoreFor(app.store, config.tasks),
        baselines: new BaselineStore(app.store),
        policy: () => policy,
        intervalMs: 3_600_000,
        settleMs: 0,
        idleMs: 0,
        logger,
        clock,
      });
      learner.stop();
      // what the detector's own learner took in while the history played (on its clock), and the rest now
      const during = await learnedSoFar(app);
      const learned = during + (await learner.learnAll());
      options.onWarmedUp?.(learned);
      findings.length = 0;
    }
    await play(requests);
  } finally {
    await sub.close();
    await app.close();
  }
  return inStableOrder(currentFindings(findings));
}

/** Findings in an order that depends on them alone: the flagged span's end, then task, step, rule and id. */
export function inStableOrder(findings: Finding[]): Finding[] {
  const text = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return [...findings].sort(
    (a, b) =>
      a.spanEndMs - b.spanEndMs || text(a.taskId, b.taskId) || a.stepIndex - b.stepIndex || text(a.ruleId, b.ruleId) || text(a.id, b.id),
  );
}

/** Tasks the app's baseline learner has learned so far (its metric). */
async function learnedSoFar(app: {
  metrics: { baselineTasks: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> } };
}) {
  const { values } = await app.metrics.baselineTasks.get();
  return values.filter((v) => v.labels.outcome === "learned").reduce((n, v) => n + v.value, 0);
}

/** Waits until the in-process pipeline is idle twice in a row: nothing queued, nothing being handled. */
async function settled(bus: MemoryBus, deadline: number, source: string): Promise<void> {
  let calm = 0;
  for (let turns = 0; calm < 2; turns++) {
    if (Date.now() > deadline) throw new Error(`replay did not finish in time (the pipeline was still busy with ${source})`);
    // the in-process bus hands batches over on the next turn of the event loop; a handler
    // waiting on a timer (a redelivery) is waited for less eagerly
    await new Promise((r) => (turns < 1_000 ? setImmediate(r) : setTimeout(r, 5)));
    calm = bus.idle() ? calm + 1 : 0;
  }
}

/** How the findings of one policy differ from another's over the same recording. */
export interface FindingsDiff {
  /** Findings only the new policy gives. */
  added: Finding[];
  /** Findings only the current policy gives. */
  removed: Finding[];
  /** Findings both give, with another severity or mode. */
  changed: { before: Finding; after: Finding }[];
  unchanged: number;
}

/**
 * Shadow mode for a policy change: compares the findings of the policy in force with those
 * of a candidate over the same recording. Findings are the same when their ids are (rule,
 * task and span: not the policy).
 */
export function diffFindings(before: Finding[], after: Finding[]): FindingsDiff {
  const old = new Map(before.map((f) => [f.id, f]));
  const now = new Map(after.map((f) => [f.id, f]));
  const diff: FindingsDiff = { added: [], removed: [], changed: [], unchanged: 0 };
  for (const f of after) {
    const was = old.get(f.id);
    if (!was) diff.added.push(f);
    else if (was.severity !== f.severity || was.mode !== f.mode) diff.changed.push({ before: was, after: f });
    else diff.unchanged++;
  }
  for (const f of before) if (!now.has(f.id)) diff.removed.push(f);
  return diff;
}

export function exceeds(findings: Finding[], failOn: Severity): boolean {
  return findings.some((f) => f.mode !== "shadow" && SEVERITY_RANK[f.severity] >= SEVERITY_RANK[failOn]);
}
