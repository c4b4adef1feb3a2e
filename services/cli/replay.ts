import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Finding, SEVERITY_RANK, type Severity } from "../../schemas/finding.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { MemoryBus } from "../runtime/bus/memory-bus.js";
import type { Config } from "../runtime/config.js";
import { recordsOf } from "../runtime/decode.js";
import { createLogger } from "../runtime/logging.js";
import { startEmbedded } from "./app.js";

/**
 * Replay (backtest): recorded OTLP requests, protobuf or JSON (one request per file, or
 * OTLP JSON lines as the Collector's file exporter writes them), through the detection
 * pipeline in this process. Returns the findings in detection order.
 */
export function recordedRequests(paths: string[]): { source: string; bytes: Buffer; contentType?: string }[] {
  const out: { source: string; bytes: Buffer; contentType?: string }[] = [];
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

export async function replay(config: Config, paths: string[], options: { timeoutMs?: number } = {}): Promise<Finding[]> {
  const requests = recordedRequests(paths);
  const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel);
  const app = await startEmbedded(
    { ...config, revoker: { ...config.revoker } },
    { services: ["ingest", "pathfinder", "detector"], logger },
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
    for (const r of requests) {
      await bus.publish(topicName(config.topicPrefix, TOPICS.otlpSpans), [
        { key: null, value: r.bytes, ...(r.contentType ? { headers: { "content-type": r.contentType } } : {}) },
      ]);
    }
    const deadline = Date.now() + (options.timeoutMs ?? 120_000);
    // idle twice in a row: nothing queued, nothing being handled
    let calm = 0;
    while (calm < 2) {
      if (Date.now() > deadline) throw new Error("replay did not finish in time");
      await new Promise((r) => setTimeout(r, 20));
      calm = bus.idle() ? calm + 1 : 0;
    }
  } finally {
    await sub.close();
    await app.close();
  }
  return findings;
}

export function exceeds(findings: Finding[], failOn: Severity): boolean {
  return findings.some((f) => f.mode !== "shadow" && SEVERITY_RANK[f.severity] >= SEVERITY_RANK[failOn]);
}
