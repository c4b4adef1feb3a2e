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

import pino from "pino";
import { Step } from "../schemas/step.js";
import { agentKey, type Baseline } from "../services/detector/baseline.js";
import { BaselineStore } from "../services/detector/baseline-store.js";
import { watchLearning } from "../services/detector/learner.js";
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
const store = new MemoryStore();
const taskStore = new TaskStore(store);
const steps = await recordActions(taskStore, actions);
// every task learned into its agent's baseline, as the learner would once they finished
const baselineStore = new BaselineStore(store);
const learner = watchLearning({
  tasks: taskStore,
  baselines: baselineStore,
  policy: () => policy,
  intervalMs: 3_600_000,
  settleMs: 0,
  idleMs: 0,
  logger: pino({ level: "silent" }),
});
learner.stop();
const learned = await learner.learnAll();
const agents = [...new Set(steps.flatMap((s) => agentKey(s) ?? []))];
const baselines = await baselineStore.forAgents(agents);
const withBaseline = (s: Step) => {
  const b = baselines.get(agentKey(s) ?? "");
  return b ? { baseline: b as Baseline } : {};
};
const texts = steps.map((s) => JSON.stringify(s));
const parsed = texts.map((t) => Step.parse(JSON.parse(t)));
const now = Date.now();
let findings = 0;
let anomalies = 0;

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
  baselines: () => {
    anomalies = 0;
    for (const s of parsed) anomalies += evaluateStep(s, { policy, now, ...withBaseline(s) }).filter((f) => f.kind === "anomaly").length;
  },
});

// latency of each decision, one at a time (after the warm-up above)
function latencyOf(context: (s: Step) => object) {
  const latencies = new Float64Array(parsed.length);
  for (const [i, s] of parsed.entries()) {
    const t0 = performance.now();
    evaluateStep(s, { policy, now, ...context(s) });
    latencies[i] = performance.now() - t0;
  }
  latencies.sort();
  return (p: number) => (latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] as number) * 1000;
}
const pct = latencyOf(() => ({}));
const pctBaselines = latencyOf(withBaseline);

const line = (label: string, what: string, v: number) =>
  console.log(`${label.padEnd(10)}${what.padEnd(52)}${fmt(v).padStart(10)} steps/s  ${(v / r.baseline).toFixed(3)} × baseline`);
console.log(
  `steps ${fmt(steps.length)} of ${fmt(tasks)} tasks (${fmt(texts.reduce((n, t) => n + t.length, 0) / texts.length)} bytes each)`,
);
line("baseline", "JSON.parse of the step messages", r.baseline);
line("decide", "evaluateStep on parsed steps (the decisions)", r.decide);
line("stage", "JSON.parse + zod Step + evaluateStep", r.stage);
line("baselines", "evaluateStep with the agent's learned baseline", r.baselines);
const latency = (label: string, p: (q: number) => number) =>
  console.log(`latency   ${label.padEnd(24)} p50 ${p(50).toFixed(1)} µs, p99 ${p(99).toFixed(1)} µs, max ${p(100).toFixed(1)} µs`);
latency("one decision:", pct);
latency("with baselines:", pctBaselines);
console.log(
  `baselines ${fmt(learned)} tasks learned for ${fmt(agents.length)} agents; anomaly findings on the same steps: ${fmt(anomalies)}`,
);
console.log(`check     findings in the last run: ${fmt(findings)} (the workload plants one out-of-scope tool in every tenth task)`);
