/**
 * Detector decisions in process, on one core: steps per second and the latency of each
 * decision, against a baseline measured in the same run (JSON.parse of the same step
 * messages: what any consumer of `agent.steps` pays).
 *
 *   npm run bench:detector        (node --import tsx bench/detector.ts [tasks] [steps per task])
 *
 * The steps are the workload's spans through ingest and the pathfinder (in memory), so
 * they carry context, lineage and the path before them as on the bus.
 */
import { Step } from "../schemas/step.js";
import { loadPolicy } from "../services/detector/policy.js";
import { evaluateStep } from "../services/detector/rules.js";
import { ingestStage } from "../services/ingest/ingest.js";
import { recordActions } from "../services/pathfinder/pathfinder.js";
import { TaskStore } from "../services/pathfinder/task-store.js";
import { MemoryStore } from "../services/runtime/store/memory-store.js";
import { otlpMessages } from "./lib/kafka.js";
import { agentSpans, fmt, protobufRequests, rates } from "./lib/workload.js";

const tasks = Number(process.argv[2] ?? 5_000);
const stepsPerTask = Number(process.argv[3] ?? 10);
const policy = loadPolicy("policies");

// the workload through ingest and the pathfinder: steps as the detector receives them
const ingest = ingestStage("");
const messages = otlpMessages(protobufRequests(agentSpans(tasks, stepsPerTask), stepsPerTask), "");
const emits = await ingest.handle(
  messages.map((m) => ({ message: m, value: ingest.parse(m) })),
  () => undefined,
);
const actions = emits.map((e) => JSON.parse(String(e.message.value)));
const steps = await recordActions(new TaskStore(new MemoryStore()), actions);
const texts = steps.map((s) => JSON.stringify(s));
const parsed = texts.map((t) => Step.parse(JSON.parse(t)));
const now = Date.now();
let findings = 0;

const r = await rates(steps.length, 10, {
  baseline: () => {
    for (const t of texts) JSON.parse(t);
  },
  decide: () => {
    findings = 0;
    for (const s of parsed) findings += evaluateStep(s, { policy, now }).length;
  },
  stage: () => {
    for (const t of texts) evaluateStep(Step.parse(JSON.parse(t)), { policy, now });
  },
});

// latency of each decision, one at a time (after the warm-up above)
const latencies = new Float64Array(parsed.length);
for (const [i, s] of parsed.entries()) {
  const t0 = performance.now();
  evaluateStep(s, { policy, now });
  latencies[i] = performance.now() - t0;
}
latencies.sort();
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] as number;

const line = (label: string, what: string, v: number) =>
  console.log(`${label.padEnd(10)}${what.padEnd(52)}${fmt(v).padStart(10)} steps/s  ${(v / r.baseline).toFixed(3)} × baseline`);
console.log(
  `steps ${fmt(steps.length)} of ${fmt(tasks)} tasks (${fmt(texts.reduce((n, t) => n + t.length, 0) / texts.length)} bytes each)`,
);
line("baseline", "JSON.parse of the step messages", r.baseline);
line("decide", "evaluateStep on parsed steps (the decisions)", r.decide);
line("stage", "JSON.parse + zod Step + evaluateStep", r.stage);
console.log(
  `latency   one decision: p50 ${(pct(50) * 1000).toFixed(1)} µs, p99 ${(pct(99) * 1000).toFixed(1)} µs, max ${(pct(100) * 1000).toFixed(1)} µs`,
);
console.log(`check     findings in the last run: ${fmt(findings)} (the workload plants one out-of-scope tool in every tenth task)`);
