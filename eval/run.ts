import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { replay } from "../services/cli/replay.js";
import { loadConfig } from "../services/runtime/config.js";
import { generateSet, type Labels, RECORDINGS } from "./generate.js";
import { readRecordings, spanStarts } from "./lib/recordings.js";
import { markdown, misses, score } from "./lib/score.js";
import { KINDS } from "./scenarios/index.js";

/**
 * `npm run eval`: generates the labelled scenario suite (a training set of benign runs and an
 * evaluation set of benign and malicious runs, each from its own seed), replays the evaluation
 * recordings through the embedded pipeline (ingest, pathfinder, detector) after warming it up
 * on the training recordings, and scores the findings against the labels. Prints a Markdown
 * table, writes a JSON report, and exits 1 when the targets are missed.
 */
const USAGE = `usage: npm run eval -- [options]
  --seed <n>            evaluation set seed (default 1)
  --train-seed <n>      training set seed (default: the evaluation seed; the sets differ all the same)
  --benign <n>          benign evaluation runs per agent kind (default 150)
  --malicious <n>       malicious evaluation runs per agent kind (default 50)
  --train <n>           benign training runs per agent kind (default 300; 0: no warm-up)
  --kinds <a,b>         agent kinds (default: ${KINDS.map((k) => k.kind).join(",")})
  --out <dir>           where the recordings and the report go (default .cache/eval)
  --policy <dir>        policy folder (default policies)
  --json <file>         the JSON report (default <out>/report.json)
  --no-handoff-export   agent processes export only when their part of a run ends (see eval/README.md)
  --generate-only       write the recordings and labels, do not replay`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: "string", default: "1" },
      "train-seed": { type: "string" },
      benign: { type: "string", default: "150" },
      malicious: { type: "string", default: "50" },
      train: { type: "string", default: "300" },
      kinds: { type: "string" },
      out: { type: "string", default: ".cache/eval" },
      policy: { type: "string", default: "policies" },
      json: { type: "string" },
      "no-handoff-export": { type: "boolean", default: false },
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
  const out = values.out;
  const command = `npm run eval${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;

  const t0 = performance.now();
  // the training set's history comes before the evaluation set's
  const trainDir = join(out, "train");
  const evalDir = join(out, "eval");
  const training: Labels | undefined =
    train > 0
      ? await generateSet({
          set: "train",
          seed: values["train-seed"] ?? values.seed,
          benignPerKind: train,
          maliciousPerKind: 0,
          outDir: trainDir,
          startMs: Date.UTC(2026, 1, 2, 7),
          kinds,
          exportAtHandoff,
        })
      : undefined;
  const labels = await generateSet({
    set: "eval",
    seed: values.seed,
    benignPerKind: benign,
    maliciousPerKind: malicious,
    outDir: evalDir,
    startMs: Date.UTC(2026, 2, 2, 7),
    kinds,
    exportAtHandoff,
  });
  const generatedMs = performance.now() - t0;
  const files = labels.runs.flatMap((r) => r.files);
  const spans = labels.runs.reduce((s, r) => s + r.spans, 0);
  process.stderr.write(
    `generated ${labels.runs.length} evaluation runs (${spans} spans, ${files.length} OTLP files) in ${evalDir}` +
      `${training ? ` and ${training.runs.length} training runs in ${trainDir}` : ""} in ${(generatedMs / 1000).toFixed(1)} s\n`,
  );
  if (values["generate-only"]) return 0;

  // the embedded pipeline's defaults, any DRIFTWATCH_* settings of this shell, the policy folder asked for
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith("DRIFTWATCH_")) env[k] = v;
  const config = loadConfig({
    ...env,
    DRIFTWATCH_LOG_LEVEL: process.env.DRIFTWATCH_LOG_LEVEL ?? "error",
    DRIFTWATCH_POLICY_DIR: values.policy,
  });
  // `warmUp`: recordings replayed and learned from first (baselines), their findings discarded
  // (a replay without the option ignores both: `learned` then stays undefined and the report says so)
  let learned: number | undefined;
  const options: Parameters<typeof replay>[2] & { warmUp?: string[]; onWarmedUp?: (tasks: number) => void } = {
    timeoutMs: 300_000,
    ...(training
      ? {
          warmUp: [join(trainDir, RECORDINGS)],
          onWarmedUp: (tasks: number) => {
            learned = tasks;
          },
        }
      : {}),
  };
  const t1 = performance.now();
  const findings = await replay(config, [join(evalDir, RECORDINGS)], options);
  const replayedMs = performance.now() - t1;
  process.stderr.write(`replayed in ${(replayedMs / 1000).toFixed(1)} s: ${findings.length} finding(s)\n`);

  const starts = spanStarts(readRecordings(evalDir, files));
  const result = score(labels.runs, findings, (traceId, spanId) => starts.get(`${traceId}:${spanId}`));
  const date = new Date().toISOString().slice(0, 10);
  const header = [
    `Command: \`${command}\` (${date})`,
    `Evaluation set: seed eval/${labels.seed}, ${result.benign} benign + ${result.malicious} malicious runs over ${kinds.length} agent kinds (${kinds.map((k) => k.kind).join(", ")}), ${spans} spans; ` +
      `warm-up: ${training ? `${training.runs.length} benign training runs (seed train/${training.seed}), ${learned === undefined ? "not taken by this replay (no baselines learned)" : `${learned} tasks learned`}` : "none"}; policy folder ${values.policy}.`,
  ].join("\n\n");
  const table = markdown(result);
  process.stdout.write(`${header}\n\n${table}\n\n${misses(result)}\n`);
  if (result.unattributedFindings > 0 || result.findingsOnUnknownSpans > 0) {
    process.stdout.write(
      `(${result.unattributedFindings} finding(s) on tasks of no run; ${result.findingsOnUnknownSpans} on spans missing from the recordings)\n`,
    );
  }

  const jsonPath = values.json ?? join(out, "report.json");
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(
    jsonPath,
    `${JSON.stringify(
      {
        command,
        date: new Date().toISOString(),
        seeds: { eval: labels.seed, train: training?.seed ?? null },
        sizes: { benignPerKind: benign, maliciousPerKind: malicious, trainPerKind: train, kinds: kinds.map((k) => k.kind) },
        exportAtHandoff,
        policyDir: values.policy,
        warmUp: training ? { runs: training.runs.length, tasksLearned: learned ?? null } : null,
        timings: { generateMs: Math.round(generatedMs), replayMs: Math.round(replayedMs) },
        findings: findings.length,
        markdown: table,
        ...result,
      },
      null,
      1,
    )}\n`,
  );
  process.stderr.write(`report: ${jsonPath}\n`);
  return result.targets.met ? 0 : 1;
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
