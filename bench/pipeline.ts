/**
 * Embedded pipeline benchmark: OTLP protobuf requests through ingest → pathfinder →
 * detector on the in-process bus and store, against a baseline measured in the same run:
 * protobufjs decoding the same bytes (the floor any OTLP consumer pays).
 *
 *   npm run bench            (or: node --import tsx bench/pipeline.ts [tasks] [stepsPerTask])
 *
 * Prints spans/s for both, their ratio, findings found, and heap growth per task.
 */
import protobuf from "protobufjs";
import { OTLP_TRACE_PROTO } from "../schemas/otlp/trace-proto.js";
import { TOPICS } from "../schemas/topics.js";
import { startEmbedded } from "../services/cli/app.js";
import type { MemoryBus } from "../services/runtime/bus/memory-bus.js";
import { loadConfig } from "../services/runtime/config.js";
import { recordsOf } from "../services/runtime/decode.js";
import { createLogger } from "../services/runtime/logging.js";
import { agentSpans, fmt, protobufRequests } from "./lib/workload.js";

const tasks = Number(process.argv[2] ?? 2000);
const stepsPerTask = Number(process.argv[3] ?? 10);
const spansPerRequest = 500;

function buildRequests(): Uint8Array[] {
  return protobufRequests(agentSpans(tasks, stepsPerTask), spansPerRequest);
}

function baselineDecode(requests: Uint8Array[]): { spansPerSec: number; spans: number } {
  const Request = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: true }).root.lookupType("otlp.ExportTraceServiceRequest");
  let spans = 0;
  const t0 = performance.now();
  for (const r of requests) {
    const m = Request.decode(r) as unknown as { resource_spans: { scope_spans: { spans: unknown[] }[] }[] };
    for (const rs of m.resource_spans) for (const ss of rs.scope_spans) spans += ss.spans.length;
  }
  const ms = performance.now() - t0;
  return { spansPerSec: (spans / ms) * 1000, spans };
}

async function pipeline(requests: Uint8Array[], totalSpans: number) {
  const config = loadConfig({ DRIFTWATCH_LOG_LEVEL: "silent", DRIFTWATCH_POLICY_DIR: "policies", DRIFTWATCH_ALERT_STDOUT: "false" });
  const app = await startEmbedded(config, { services: ["ingest", "analyser"], logger: createLogger("silent") });
  const bus = app.bus as MemoryBus;
  let steps = 0;
  let findings = 0;
  await bus.subscribe({ group: "bench-steps", topics: [TOPICS.steps], fromBeginning: true }, async (b) => {
    for (const m of b) steps += recordsOf(m).length;
  });
  await bus.subscribe({ group: "bench-findings", topics: [TOPICS.findings], fromBeginning: true }, async (b) => {
    for (const m of b) findings += recordsOf(m).length;
  });
  const settle = () => {
    for (let i = 0; i < 3; i++) global.gc?.();
    return process.memoryUsage().heapUsed;
  };
  const t0 = performance.now();
  for (const r of requests) await bus.publish(TOPICS.otlpSpans, [{ key: null, value: Buffer.from(r) }]);
  while (steps < totalSpans || !bus.idle()) await new Promise((r) => setImmediate(r));
  const ms = performance.now() - t0;
  // what the embedded store holds for these tasks: heap with the app open, minus after it is closed
  const heapOpen = settle();
  await app.close();
  const heapClosed = settle();
  return { spansPerSec: (steps / ms) * 1000, steps, findings, heapPerTaskBytes: (heapOpen - heapClosed) / (totalSpans / stepsPerTask) };
}

const requests = buildRequests();
// warm both paths up (JIT) before measuring; keep the best of three baseline runs
baselineDecode(requests);
const base = [baselineDecode(requests), baselineDecode(requests), baselineDecode(requests)].sort(
  (a, b) => b.spansPerSec - a.spansPerSec,
)[0] as ReturnType<typeof baselineDecode>;
await pipeline(requests.slice(0, 4), 4 * spansPerRequest);
const run = await pipeline(requests, base.spans);
console.log(`tasks ${tasks}, steps/task ${stepsPerTask}, spans ${base.spans}, requests ${requests.length}`);
console.log(`baseline  protobuf decode only               ${fmt(base.spansPerSec)} spans/s`);
console.log(`pipeline  ingest → analyser (embedded)          ${fmt(run.spansPerSec)} spans/s`);
console.log(`ratio     pipeline / baseline                ${(run.spansPerSec / base.spansPerSec).toFixed(4)}`);
console.log(`findings  ${run.findings} (expected ${Math.ceil(tasks / 10)})`);
console.log(`memory    ${fmt(run.heapPerTaskBytes)} bytes of heap per task held in the in-memory store`);
