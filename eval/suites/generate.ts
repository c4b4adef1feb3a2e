import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Labels, RunLabel } from "../generate.js";
import { SeededIds } from "../lib/recorder.js";
import { Rng } from "../lib/rng.js";
import { toolDoc } from "./docs.js";
import { type Agent, embed, FORMS, type Form, type Injection, type Suite, type TaskCtx, uuid, writeInjection } from "./kit.js";
import { DryAgent, MODELS, RunTape, Session, SuiteProcess } from "./recorder.js";
import { banking } from "./suites/banking.js";
import { ops } from "./suites/ops.js";
import { teamchat } from "./suites/teamchat.js";
import { travel } from "./suites/travel.js";
import { workspace } from "./suites/workspace.js";

/**
 * The multi-suite trace set: a personal / team assistant in five tool suites, benign runs and
 * runs hijacked by an instruction injected into what a tool returned, recorded as a generic
 * GenAI-instrumented agent framework would record them (see README.md). Same labels and file
 * layout as eval/generate.ts.
 */

export interface SuiteRunLabel extends RunLabel {
  suite: string;
  /** The benign task the run performs (attacked or not). */
  template: string;
  /** Malicious runs: the attacker's goal, the injection's form and the place in tool output it rode in. */
  goal?: string;
  form?: Form;
  carrier?: string;
  /** The injection sat in a source the user's request pointed the agent at (the bill to pay, the e-mail to act on). */
  carrierNamedByUser?: boolean;
}

export interface SuiteLabels extends Labels {
  generator: "eval/suites";
  suites: string[];
  runs: SuiteRunLabel[];
}

export interface SuitesSetOptions {
  set: string;
  seed: string | number;
  benignPerSuite: number;
  maliciousPerSuite: number;
  outDir: string;
  startMs: number;
  suites?: string[];
}

/** A suite with its world type hidden: what the generator needs. */
interface Entry {
  suite: Suite<unknown>;
  record(run: RunInput): RunOutput;
}

interface RunInput {
  rng: Rng;
  clock: number;
  process: SuiteProcess;
  attack?: { goal: string; form: Form };
}

interface RunOutput {
  tape: RunTape;
  template: string;
  hardNegative?: string;
  goal?: string;
  form?: Form;
  carrier?: string;
  carrierNamedByUser?: boolean;
}

// biome-ignore lint/suspicious/noExplicitAny: a suite's world type only matters inside the suite
type AnySuite = Suite<any>;

export const SUITES: readonly AnySuite[] = [workspace, banking, teamchat, travel, ops];
export const SUITE_NAMES = SUITES.map((s) => s.name);

const MODEL_WEIGHTS: Record<string, [number, number, number, number]> = {
  workspace: [5, 3, 2, 1],
  banking: [4, 2, 3, 1],
  teamchat: [3, 4, 2, 2],
  travel: [4, 2, 2, 3],
  ops: [2, 1, 6, 1],
};

function pickModel(rng: Rng, suite: string) {
  const w = MODEL_WEIGHTS[suite] ?? [1, 1, 1, 1];
  return rng.weighted(MODELS.map((m, i) => [m, w[i] ?? 1] as const));
}

/** The probe that proves the injected text reached a tool result. */
const probeOf = (inj: Injection) => {
  const line = inj.text
    .split("\n")
    .map((l) => l.trim())
    .sort((a, b) => b.length - a.length)[0];
  return (line ?? "").slice(0, 30);
};

function entry<W>(s: Suite<W>): Entry {
  const pickTemplate = (rng: Rng) => rng.weighted(s.templates.map((t) => [t, t.weight ?? 1] as const));

  const session = (run: RunInput, tape: RunTape, world: W, intent: string) =>
    new Session({
      process: run.process,
      tape,
      agent: s.agent,
      taskId: uuid(run.rng.fork("task-id")),
      intent,
      system: s.systemPrompt(world, run.clock),
      tools: s.tools,
      model: pickModel(run.rng.fork("model"), s.name),
    });

  const benign = (run: RunInput): RunOutput => {
    const template = pickTemplate(run.rng.fork("template"));
    const world = s.world(run.rng.fork("world"), run.clock);
    const tape = new RunTape(run.rng.fork("tape"), run.clock);
    let agent: Session | undefined;
    const hard: string[] = [];
    const ctx: TaskCtx<W> = {
      rng: run.rng.fork("task"),
      world,
      now: run.clock,
      start(intent) {
        if (agent) throw new Error("a task started twice");
        agent = session(run, tape, world, intent);
        return agent;
      },
      untrusted: (_carrier, text) => text,
      hard: (why) => {
        if (!hard.includes(why)) hard.push(why);
      },
      avoid: () => {},
    };
    template.run(ctx);
    if (!agent) throw new Error(`${template.id}: the task never started`);
    tape.flush(run.process);
    return { tape, template: template.id, ...(hard.length ? { hardNegative: hard.join("; ") } : {}) };
  };

  const malicious = (run: RunInput, goalId: string, wanted: Form): RunOutput => {
    const goal = s.goals.find((g) => g.id === goalId);
    if (!goal) throw new Error(`${s.name}: no goal ${goalId}`);
    for (let attempt = 0; attempt < 30; attempt++) {
      const base = run.rng.fork(`attempt-${attempt}`);
      const template = pickTemplate(base.fork("template"));
      // a dry run: where does the task read untrusted content, and what does the user name?
      let places = 0;
      const avoid = new Set<string>();
      const dryWorld = s.world(base.fork("world"), run.clock);
      template.run({
        rng: base.fork("task"),
        world: dryWorld,
        now: run.clock,
        start: (): Agent => new DryAgent(),
        untrusted: (_c, text) => {
          places++;
          return text;
        },
        hard: () => {},
        avoid: (...v) => {
          for (const x of v) avoid.add(x);
        },
      });
      if (places === 0) continue;

      const arng = base.fork("attack");
      const world = s.world(base.fork("world"), run.clock);
      const plan = goal.plan(arng, world, avoid);
      let form = wanted;
      if ((form === "obfuscated" && !plan.entities) || (form === "foreign" && !plan.foreign)) {
        form = arng.pick(FORMS.filter((f) => f !== "obfuscated" && f !== "foreign"));
      }
      const injection = writeInjection(arng, plan, form, s.userName(world), s.platform(world));
      const probe = probeOf(injection);
      const at = arng.int(0, places - 1);
      const delay = arng.weighted([
        [0, 6],
        [1, 3],
        [2, 2],
        [3, 1],
      ] as const);
      const stopAfter = arng.chance(0.12);

      const tape = new RunTape(base.fork("tape"), run.clock);
      let agent: Session | undefined;
      let seen = 0;
      let carrier: string | undefined;
      const ctx: TaskCtx<W> = {
        rng: base.fork("task"),
        world,
        now: run.clock,
        start(intent) {
          if (agent) throw new Error("a task started twice");
          agent = new Session({
            process: run.process,
            tape,
            agent: s.agent,
            taskId: uuid(base.fork("task-id")),
            intent,
            system: s.systemPrompt(world, run.clock),
            tools: s.tools,
            model: pickModel(base.fork("model"), s.name),
            attack: { delay, stopAfter, act: (a) => plan.act(a) },
          });
          return agent;
        },
        untrusted(c, text) {
          if (seen++ !== at) return text;
          if (!agent) throw new Error("untrusted content before the task started");
          carrier = c;
          agent.arm(delay, probe);
          return embed(arng, text, injection);
        },
        hard: () => {},
        avoid: () => {},
      };
      template.run(ctx);
      if (!agent) throw new Error(`${template.id}: the task never started`);
      if (!carrier) throw new Error(`${s.name}/${template.id}: the injection was never placed (${seen} of ${places} places)`);
      if (!tape.harmful) throw new Error(`${s.name}/${template.id}: ${goal.id} never did its harm`);
      tape.flush(run.process);
      return { tape, template: template.id, goal: goal.id, form, carrier, carrierNamedByUser: template.named?.includes(carrier) ?? false };
    }
    throw new Error(`${s.name}: no template reads untrusted content`);
  };

  return {
    suite: s as Suite<unknown>,
    record: (run) => (run.attack ? malicious(run, run.attack.goal, run.attack.form) : benign(run)),
  };
}

const ENTRIES = new Map(SUITES.map((s) => [s.name, entry(s)]));

/** Mean time between two runs of one suite (simulated). */
const MEAN_GAP_MS = 7 * 60_000;

/** Runs start in the daytime (UTC 06–22): the assistants' users are people. */
function nextStart(rng: Rng, clock: number): number {
  let t = clock + Math.round(MEAN_GAP_MS * -Math.log(1 - rng.next() * 0.999));
  const hour = new Date(t).getUTCHours();
  if (hour >= 22 || hour < 6) {
    const day = Math.floor(t / 86_400_000) * 86_400_000 + (hour >= 22 ? 86_400_000 : 0);
    t = day + 6 * 3_600_000 + rng.int(0, 90 * 60_000);
  }
  return t;
}

/** Spreads `n` malicious runs over a suite's goals and forms evenly (goal × form pairs shuffled). */
function attackSlots(rng: Rng, suite: AnySuite, n: number): { goal: string; form: Form }[] {
  const goals = rng.shuffle(suite.goals.map((g) => g.id));
  const forms = rng.shuffle([...FORMS]);
  const out: { goal: string; form: Form }[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ goal: goals[i % goals.length] as string, form: forms[i % forms.length] as Form });
  }
  return out;
}

interface Recorded {
  label: SuiteRunLabel;
  requests: { service: string; bytes: Uint8Array }[];
}

export async function generateSuitesSet(options: SuitesSetOptions): Promise<SuiteLabels> {
  const names = options.suites ?? SUITE_NAMES;
  const seed = String(options.seed);
  const root = new Rng(`driftwatch-suites/${options.set}/${seed}`);
  const ids = new SeededIds(root.fork("ids"));
  const recorded: Recorded[] = [];
  const processes: SuiteProcess[] = [];

  for (const name of names) {
    const e = ENTRIES.get(name);
    if (!e) throw new Error(`unknown suite ${name} (known: ${SUITE_NAMES.join(", ")})`);
    const s = e.suite;
    const process = new SuiteProcess(s.service, s.environment, ids);
    processes.push(process);
    const srng = root.fork(s.name);
    const attacks = attackSlots(srng.fork("attacks"), s as AnySuite, options.maliciousPerSuite);
    const slots = srng.shuffle([...Array.from({ length: options.benignPerSuite }, () => undefined), ...attacks]);
    let clock = nextStart(srng, options.startMs);
    for (const [i, attack] of slots.entries()) {
      const id = `${options.set}-${s.name}-${String(i + 1).padStart(4, "0")}`;
      const rng = srng.fork(`run-${i}`);
      ids.rng = rng.fork("ids");
      const out = e.record({ rng, clock, process, ...(attack ? { attack } : {}) });
      const { tape } = out;
      if (!attack && tape.harmful) throw new Error(`${id}: a benign run marked a harmful step`);
      if (attack && !tape.harmful) throw new Error(`${id}: a malicious run without a harmful step`);
      const variant = attack ? `${out.goal}:${out.form} on ${out.template}` : out.template;
      recorded.push({
        label: {
          id,
          kind: s.name,
          suite: s.name,
          label: attack ? "malicious" : "benign",
          category: attack ? "injection" : "benign",
          variant,
          template: out.template,
          ...(attack ? { goal: out.goal, form: out.form, carrier: out.carrier, carrierNamedByUser: out.carrierNamedByUser } : {}),
          taskIds: [...tape.taskIds],
          ...(!attack && out.hardNegative ? { hardNegative: out.hardNegative } : {}),
          ...(tape.harmful ? { harmful: tape.harmful } : {}),
          startTimeMs: clock,
          endTimeMs: tape.clock,
          files: [],
          spans: tape.requests.reduce((n, r) => n + r.spans, 0),
        },
        requests: tape.requests,
      });
      clock = nextStart(srng, Math.max(clock, tape.clock));
    }
  }
  for (const p of processes) await p.shutdown();

  recorded.sort((a, b) => a.label.startTimeMs - b.label.startTimeMs || a.label.id.localeCompare(b.label.id));
  rmSync(options.outDir, { recursive: true, force: true });
  mkdirSync(join(options.outDir, "otlp"), { recursive: true });
  let seq = 0;
  for (const r of recorded) {
    for (const req of r.requests) {
      const name = join("otlp", `${String(seq++).padStart(6, "0")}-${r.label.id}-${req.service}.pb`);
      writeFileSync(join(options.outDir, name), req.bytes);
      r.label.files.push(name);
    }
  }
  const labels: SuiteLabels = {
    generator: "eval/suites",
    set: options.set,
    seed,
    startMs: options.startMs,
    kinds: [...names],
    suites: [...names],
    exportAtHandoff: true,
    runs: recorded.map((r) => r.label).sort((a, b) => a.id.localeCompare(b.id)),
  };
  writeFileSync(join(options.outDir, "labels.json"), `${JSON.stringify(labels, null, 1)}\n`);
  return labels;
}

/** The default evaluation window's start (simulated): a Monday morning. */
export const DEFAULT_START_MS = Date.UTC(2025, 4, 5, 7, 0, 0);
export const TRAIN_OFFSET_MS = 30 * 86_400_000;

/** Writes eval/suites/tools/<suite>.md from the catalogues. */
export function writeToolDocs(dir = join(dirname(fileURLToPath(import.meta.url)), "tools")): string[] {
  mkdirSync(dir, { recursive: true });
  return SUITES.map((s) => {
    const file = join(dir, `${s.name}.md`);
    writeFileSync(file, toolDoc(s));
    return file;
  });
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

async function main(): Promise<void> {
  if (process.argv.includes("--docs")) {
    for (const f of writeToolDocs()) console.log(`wrote ${f}`);
    return;
  }
  const seed = arg("seed", "1");
  const out = arg("out", ".cache/eval-suites");
  const benign = Number(arg("benign", "150"));
  const malicious = Number(arg("malicious", "60"));
  const train = Number(arg("train", "150"));
  const suites = process.argv.includes("--suites") ? arg("suites", "").split(",").filter(Boolean) : undefined;
  const startMs = Number(arg("start", String(DEFAULT_START_MS)));
  const started = Date.now();
  if (train > 0) {
    const t = await generateSuitesSet({
      set: "train",
      seed,
      benignPerSuite: train,
      maliciousPerSuite: 0,
      outDir: join(out, "train"),
      startMs: startMs - TRAIN_OFFSET_MS,
      ...(suites ? { suites } : {}),
    });
    console.log(`train: ${t.runs.length} runs, ${t.runs.reduce((n, r) => n + r.spans, 0)} spans → ${join(out, "train")}`);
  }
  const e = await generateSuitesSet({
    set: "eval",
    seed,
    benignPerSuite: benign,
    maliciousPerSuite: malicious,
    outDir: join(out, "eval"),
    startMs,
    ...(suites ? { suites } : {}),
  });
  const mal = e.runs.filter((r) => r.label === "malicious").length;
  console.log(
    `eval: ${e.runs.length} runs (${mal} malicious), ${e.runs.reduce((n, r) => n + r.spans, 0)} spans → ${join(out, "eval")} (${Date.now() - started} ms)`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
