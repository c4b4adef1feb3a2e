import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AgentProcess, type HarmfulStep, type ProcessIdentity, RunRecorder, SeededIds } from "./lib/recorder.js";
import { allocate, Rng } from "./lib/rng.js";
import { type AgentKind, CATEGORIES, type Category, type Family, type RunContext } from "./lib/scenario.js";
import { KINDS } from "./scenarios/index.js";

/**
 * The labelled scenario suite's generator: runs each agent kind's scenarios through the real
 * OpenTelemetry SDK on a simulated clock and writes every run's spans as OTLP protobuf export
 * requests (one file per agent process per run, in `<set>/otlp/`, named so that name order is
 * time order), with `<set>/labels.json` saying what each run is.
 */
export interface RunLabel {
  id: string;
  kind: string;
  label: "benign" | "malicious";
  category: Category | "benign";
  /** What sort of run it is within its kind and category (a template, a rare legitimate step, an attack variant). */
  variant: string;
  expectedFamily?: Family;
  expectedRule?: string;
  /** Every task id the run's spans carry (a delegating task and its delegates' tasks). */
  taskIds: string[];
  /** A benign run with a legitimate step that looks like an injected one (see RunContext.hardNegative). */
  hardNegative?: string;
  /** The step where the harm is done (malicious runs): span id and start, captured when the span was created. */
  harmful?: HarmfulStep;
  startTimeMs: number;
  endTimeMs: number;
  /** The run's recordings, relative to the set's folder. */
  files: string[];
  spans: number;
}

export interface Labels {
  set: string;
  seed: string;
  startMs: number;
  kinds: string[];
  exportAtHandoff: boolean;
  runs: RunLabel[];
}

export interface SetOptions {
  /** The set's name (`train`, `eval`): part of the seed, so two sets of one seed differ. */
  set: string;
  seed: string | number;
  benignPerKind: number;
  maliciousPerKind: number;
  /** The folder to write (emptied first). */
  outDir: string;
  /** When the set's first run starts (epoch ms, simulated). */
  startMs: number;
  kinds?: readonly AgentKind[];
  /** See RunContext.exportAtHandoff (default true). */
  exportAtHandoff?: boolean;
}

const uuid = (rng: Rng) => {
  const h = rng.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${rng.pick(["8", "9", "a", "b"])}${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** The folder of a set's OTLP files, inside the set's folder (beside labels.json). */
export const RECORDINGS = "otlp";

/** Mean time between two runs of one agent kind (simulated). */
const MEAN_GAP_MS = 7 * 60_000;

interface Recorded {
  label: RunLabel;
  requests: { service: string; bytes: Uint8Array }[];
}

export async function generateSet(options: SetOptions): Promise<Labels> {
  const kinds = options.kinds ?? KINDS;
  const seed = String(options.seed);
  const root = new Rng(`driftwatch-eval/${options.set}/${seed}`);
  const ids = new SeededIds(root.fork("ids"));
  const processes = new Map<string, AgentProcess>();
  const processFor = (identity: ProcessIdentity) => {
    const key = `${identity.serviceName}|${identity.spiffeId}|${identity.environment}`;
    let p = processes.get(key);
    if (!p) {
      p = new AgentProcess(identity, ids);
      processes.set(key, p);
    }
    return p;
  };

  const recorded: Recorded[] = [];
  for (const kind of kinds) {
    const kindRng = root.fork(kind.kind);
    const slots: (Category | "benign")[] = kindRng.shuffle([
      ...Array.from({ length: options.benignPerKind }, () => "benign" as const),
      ...allocate(options.maliciousPerKind, kind.categories),
    ]);
    let clock = options.startMs + kindRng.int(0, MEAN_GAP_MS);
    for (const [i, slot] of slots.entries()) {
      const id = `${options.set}-${kind.kind}-${String(i + 1).padStart(4, "0")}`;
      const rng = kindRng.fork(`run-${i}`);
      ids.rng = rng.fork("ids");
      clock += Math.round(MEAN_GAP_MS * -Math.log(1 - kindRng.next() * 0.999));
      const run = new RunRecorder(rng, clock);
      let expectedRule: string | undefined;
      let hardNegative: string | undefined;
      const ctx: RunContext = {
        run,
        rng,
        process: processFor,
        exportAtHandoff: options.exportAtHandoff ?? true,
        taskId: () => uuid(rng),
        credential: (path) => `${path}/${uuid(rng)}`,
        expectRule: (rule) => {
          expectedRule = rule;
        },
        hardNegative: (why) => {
          if (!hardNegative?.split("; ").includes(why)) hardNegative = hardNegative ? `${hardNegative}; ${why}` : why;
        },
      };
      const variant = slot === "benign" ? kind.benign(ctx) : kind.malicious(ctx, slot);
      // whatever a scenario left unexported goes out now
      for (const p of processes.values()) run.flush(p);
      if (slot === "benign" && run.harmful) throw new Error(`${id}: a benign run marked a harmful step (${run.harmful.what})`);
      if (slot !== "benign" && !run.harmful) throw new Error(`${id}: a ${slot} run never did its harmful step (${variant})`);
      const expected = slot === "benign" ? undefined : CATEGORIES[slot];
      if (expectedRule && expected && !expectedRule.startsWith(`${expected.family}.`)) {
        throw new Error(`${id}: ${expectedRule} is not of the ${expected.family} family`);
      }
      if (slot !== "benign" && hardNegative) hardNegative = undefined;
      recorded.push({
        label: {
          id,
          kind: kind.kind,
          label: slot === "benign" ? "benign" : "malicious",
          category: slot,
          variant,
          ...(expected ? { expectedFamily: expected.family } : {}),
          ...(expectedRule || expected?.rule ? { expectedRule: expectedRule ?? expected?.rule } : {}),
          ...(hardNegative ? { hardNegative } : {}),
          taskIds: [...run.taskIds],
          ...(run.harmful ? { harmful: run.harmful } : {}),
          startTimeMs: clock,
          endTimeMs: run.clock,
          files: [],
          spans: run.requests.reduce((s, r) => s + r.spans, 0),
        },
        requests: run.requests,
      });
      clock = Math.max(clock, run.clock);
    }
  }
  for (const p of processes.values()) await p.shutdown();

  // files in time order across the kinds: the order replay reads (and publishes) them
  recorded.sort((a, b) => a.label.startTimeMs - b.label.startTimeMs || a.label.id.localeCompare(b.label.id));
  rmSync(options.outDir, { recursive: true, force: true });
  mkdirSync(join(options.outDir, RECORDINGS), { recursive: true });
  let seq = 0;
  for (const r of recorded) {
    for (const req of r.requests) {
      const name = join(RECORDINGS, `${String(seq++).padStart(6, "0")}-${r.label.id}-${req.service}.pb`);
      writeFileSync(join(options.outDir, name), req.bytes);
      r.label.files.push(name);
    }
  }
  const labels: Labels = {
    set: options.set,
    seed,
    startMs: options.startMs,
    kinds: kinds.map((k) => k.kind),
    exportAtHandoff: options.exportAtHandoff ?? true,
    runs: recorded.map((r) => r.label).sort((a, b) => a.id.localeCompare(b.id)),
  };
  writeFileSync(join(options.outDir, "labels.json"), `${JSON.stringify(labels, null, 1)}\n`);
  return labels;
}
