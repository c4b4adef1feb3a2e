import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import type { Finding } from "../schemas/finding.js";
import { Severity } from "../schemas/finding.js";
import { replay } from "../services/cli/replay.js";
import { loadConfig } from "../services/runtime/config.js";
import { generateSet, type Labels, RECORDINGS } from "./generate.js";
import { readRecordings, spanStarts } from "./lib/recordings.js";
import { markdown, misses, type Score, score, type Targets } from "./lib/score.js";
import { KINDS } from "./scenarios/index.js";
import { generateSuitesSet, SUITE_NAMES, TRAIN_OFFSET_MS } from "./suites/generate.js";

/**
 * `npm run eval`: scores detection on two labelled sets, each replayed through the embedded
 * pipeline (ingest, pathfinder, detector) after a warm-up on its own training history:
 *
 * - `scenarios` (eval/scenarios, policies/): the project's own four agent kinds, every attack
 *   category (scope, flow, provenance, delegation, behaviour);
 * - `suites` (eval/suites, eval/suites/policies/): an independent set of injected-instruction
 *   runs over five tool suites, written without the rules in view, with profiles an operator
 *   wrote from the suites' tool docs alone.
 *
 * Prints each set's tables (Markdown), writes a JSON report, and exits 1 when a set misses its
 * targets.
 */
const USAGE = `usage: npm run eval -- [options]
  --set <both|scenarios|suites>  which set(s) to score (default both)
  --seed <n>                  evaluation seed of both sets (default 1)
  --train-seed <n>            training seed (default: the evaluation seed; the sets differ all the same)
  --min-severity <s>          count only findings of this severity and above (default info: every finding not in shadow mode)
  --out <dir>                 where recordings and the report go (default .cache/eval)
  --json <file>               the JSON report (default <out>/report.json)
scenarios set:
  --benign <n>                benign runs per agent kind (default 150)
  --malicious <n>             malicious runs per agent kind (default 50)
  --train <n>                 benign training runs per agent kind (default 300; 0: no warm-up)
  --kinds <a,b>               agent kinds (default: ${KINDS.map((k) => k.kind).join(",")})
  --policy <dir>              policy folder (default policies)
  --no-handoff-export         agent processes export only when their part of a run ends (see eval/README.md)
suites set:
  --suites-benign <n>         benign runs per suite (default 150)
  --suites-malicious <n>      malicious runs per suite (default 60)
  --suites-train <n>          benign training runs per suite (default 150; 0: no warm-up)
  --suites <a,b>              suites (default: ${SUITE_NAMES.join(",")})
  --suites-policy <dir>       policy folder (default eval/suites/policies)
  --generate-only             write the recordings and labels, do not replay`;

/** One set: how to generate it, which policy judges it, what it must reach. */
interface SetPlan {
  name: "scenarios" | "suites";
  description: string;
  policyDir: string;
  targets: Targets;
  generate(out: string): Promise<{ labels: Labels; training?: Labels }>;
}

interface SetResult {
  plan: SetPlan;
  labels: Labels;
  training?: Labels;
  learned?: number;
  findings: Finding[];
  result: Score;
  timings: { generateMs: number; replayMs: number };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      set: { type: "string", default: "both" },
      seed: { type: "string", default: "1" },
      "train-seed": { type: "string" },
      "min-severity": { type: "string", default: "info" },
      benign: { type: "string", default: "150" },
      malicious: { type: "string", default: "50" },
      train: { type: "string", default: "300" },
      kinds: { type: "string" },
      out: { type: "string", default: ".cache/eval" },
      policy: { type: "string", default: "policies" },
      json: { type: "string" },
      "no-handoff-export": { type: "boolean", default: false },
      "suites-benign": { type: "string", default: "150" },
      "suites-malicious": { type: "string", default: "60" },
      "suites-train": { type: "string", default: "150" },
      suites: { type: "string" },
      "suites-policy": { type: "string", default: "eval/suites/policies" },
      "generate-only": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const count = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got ${JSON.stringify(v)}`);
    return n;
  };
  const which = values.set;
  if (!["both", "scenarios", "suites"].includes(which))
    throw new Error(`--set must be both, scenarios or suites, got ${JSON.stringify(which)}`);
  const minSeverity = Severity.safeParse(values["min-severity"]);
  if (!minSeverity.success) throw new Error(`--min-severity must be one of ${Severity.options.join(", ")}`);
  const seed = values.seed;
  const trainSeed = values["train-seed"] ?? seed;
  const out = values.out;
  const command = `npm run eval${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;

  const plans: SetPlan[] = [];
  if (which !== "suites") {
    const benign = count("benign", values.benign);
    const malicious = count("malicious", values.malicious);
    const train = count("train", values.train);
    const kinds = values.kinds
      ? values.kinds.split(",").map((k) => {
          const kind = KINDS.find((x) => x.kind === k.trim());
          if (!kind) throw new Error(`unknown agent kind ${JSON.stringify(k)}; known: ${KINDS.map((x) => x.kind).join(", ")}`);
          return kind;
        })
      : KINDS;
    const exportAtHandoff = !values["no-handoff-export"];
    plans.push({
      name: "scenarios",
      description: `the project's scenario suite (eval/scenarios: ${kinds.map((k) => k.kind).join(", ")})`,
      policyDir: values.policy,
      targets: { minRecall: 0.95, maxFalsePositiveRate: 0.01 },
      generate: async (dir) => {
        const common = { kinds, exportAtHandoff };
        // the training set's history comes a month before the evaluation set's
        const training =
          train > 0
            ? await generateSet({
                ...common,
                set: "train",
                seed: trainSeed,
                benignPerKind: train,
                maliciousPerKind: 0,
                outDir: join(dir, "train"),
                startMs: Date.UTC(2026, 1, 2, 7),
              })
            : undefined;
        const labels = await generateSet({
          ...common,
          set: "eval",
          seed,
          benignPerKind: benign,
          maliciousPerKind: malicious,
          outDir: join(dir, "eval"),
          startMs: Date.UTC(2026, 2, 2, 7),
        });
        return { labels, ...(training ? { training } : {}) };
      },
    });
  }
  if (which !== "scenarios") {
    const benign = count("suites-benign", values["suites-benign"]);
    const malicious = count("suites-malicious", values["suites-malicious"]);
    const train = count("suites-train", values["suites-train"]);
    const suites = values.suites ? values.suites.split(",").map((s) => s.trim()) : [...SUITE_NAMES];
    for (const s of suites)
      if (!SUITE_NAMES.includes(s)) throw new Error(`unknown suite ${JSON.stringify(s)}; known: ${SUITE_NAMES.join(", ")}`);
    const startMs = Date.UTC(2026, 2, 2, 7);
    plans.push({
      name: "suites",
      description: `the independent multi-suite set (eval/suites: ${suites.join(", ")})`,
      policyDir: values["suites-policy"],
      targets: { minRecall: 0.95, maxFalsePositiveRate: 0.02 },
      generate: async (dir) => {
        const training =
          train > 0
            ? await generateSuitesSet({
                set: "train",
                seed: trainSeed,
                benignPerSuite: train,
                maliciousPerSuite: 0,
                outDir: join(dir, "train"),
                startMs: startMs - TRAIN_OFFSET_MS,
                suites,
              })
            : undefined;
        const labels = await generateSuitesSet({
          set: "eval",
          seed,
          benignPerSuite: benign,
          maliciousPerSuite: malicious,
          outDir: join(dir, "eval"),
          startMs,
          suites,
        });
        return { labels, ...(training ? { training } : {}) };
      },
    });
  }

  // the embedded pipeline's defaults and any DRIFTWATCH_* settings of this shell
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith("DRIFTWATCH_")) env[k] = v;

  const results: SetResult[] = [];
  for (const plan of plans) {
    const dir = join(out, plan.name);
    const t0 = performance.now();
    const { labels, training } = await plan.generate(dir);
    const generateMs = performance.now() - t0;
    const spans = labels.runs.reduce((s, r) => s + r.spans, 0);
    process.stderr.write(
      `[${plan.name}] generated ${labels.runs.length} evaluation runs (${spans} spans) in ${join(dir, "eval")}` +
        `${training ? ` and ${training.runs.length} training runs in ${join(dir, "train")}` : ""} in ${(generateMs / 1000).toFixed(1)} s\n`,
    );
    if (values["generate-only"]) continue;
    const config = loadConfig({
      ...env,
      DRIFTWATCH_LOG_LEVEL: process.env.DRIFTWATCH_LOG_LEVEL ?? "error",
      DRIFTWATCH_POLICY_DIR: plan.policyDir,
    });
    let learned: number | undefined;
    const t1 = performance.now();
    // `warmUp`: the training recordings replayed and learned from first (baselines), their findings discarded
    const findings = await replay(config, [join(dir, "eval", RECORDINGS)], {
      timeoutMs: 300_000,
      ...(training
        ? {
            warmUp: [join(dir, "train", RECORDINGS)],
            onWarmedUp: (tasks: number) => {
              learned = tasks;
            },
          }
        : {}),
    });
    const replayMs = performance.now() - t1;
    process.stderr.write(`[${plan.name}] replayed in ${(replayMs / 1000).toFixed(1)} s: ${findings.length} finding(s)\n`);
    const starts = spanStarts(
      readRecordings(
        join(dir, "eval"),
        labels.runs.flatMap((r) => r.files),
      ),
    );
    const result = score(labels.runs, findings, (traceId, spanId) => starts.get(`${traceId}:${spanId}`), {
      targets: plan.targets,
      minSeverity: minSeverity.data,
    });
    results.push({
      plan,
      labels,
      ...(training ? { training } : {}),
      ...(learned !== undefined ? { learned } : {}),
      findings,
      result,
      timings: { generateMs, replayMs },
    });
  }
  if (values["generate-only"]) return 0;

  const date = new Date().toISOString().slice(0, 10);
  process.stdout.write(`Command: \`${command}\` (${date})\n`);
  for (const r of results) {
    const spans = r.labels.runs.reduce((s, x) => s + x.spans, 0);
    const header = [
      `## Set \`${r.plan.name}\`: ${r.plan.description}`,
      `Seed eval/${r.labels.seed}: ${r.result.benign} benign + ${r.result.malicious} malicious runs, ${spans} spans; ` +
        `warm-up: ${r.training ? `${r.training.runs.length} benign training runs (seed train/${r.training.seed}), ${r.learned === undefined ? "no baselines learned" : `${r.learned} tasks learned`}` : "none"}; ` +
        `policy folder ${r.plan.policyDir}.`,
    ].join("\n\n");
    process.stdout.write(`\n${header}\n\n${markdown(r.result)}\n\n${misses(r.result)}\n`);
    if (r.result.unattributedFindings > 0 || r.result.findingsOnUnknownSpans > 0) {
      process.stdout.write(
        `(${r.result.unattributedFindings} finding(s) on tasks of no run; ${r.result.findingsOnUnknownSpans} on spans missing from the recordings)\n`,
      );
    }
  }

  const jsonPath = values.json ?? join(out, "report.json");
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(
    jsonPath,
    `${JSON.stringify(
      {
        command,
        date: new Date().toISOString(),
        minSeverity: minSeverity.data,
        sets: Object.fromEntries(
          results.map((r) => [
            r.plan.name,
            {
              seeds: { eval: r.labels.seed, train: r.training?.seed ?? null },
              policyDir: r.plan.policyDir,
              warmUp: r.training ? { runs: r.training.runs.length, tasksLearned: r.learned ?? null } : null,
              timings: { generateMs: Math.round(r.timings.generateMs), replayMs: Math.round(r.timings.replayMs) },
              findings: r.findings.length,
              markdown: markdown(r.result),
              ...r.result,
            },
          ]),
        ),
      },
      null,
      1,
    )}\n`,
  );
  process.stderr.write(`report: ${jsonPath}\n`);
  return results.every((r) => r.result.targets.met) ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`eval: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
