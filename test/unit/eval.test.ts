import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateSet, type Labels, RECORDINGS, type RunLabel } from "../../eval/generate.js";
import { readRecordings } from "../../eval/lib/recordings.js";
import { allocate } from "../../eval/lib/rng.js";
import { CATEGORIES } from "../../eval/lib/scenario.js";
import { type ScoredFinding, score } from "../../eval/lib/score.js";
import { KINDS } from "../../eval/scenarios/index.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A small set: every agent kind, a few runs of each category. */
async function smallSet(seed: number, set = "eval"): Promise<{ dir: string; labels: Labels }> {
  const dir = mkdtempSync(join(tmpdir(), "dw-eval-"));
  dirs.push(dir);
  const labels = await generateSet({ set, seed, benignPerKind: 8, maliciousPerKind: 10, outDir: dir, startMs: Date.UTC(2026, 2, 2, 7) });
  return { dir, labels };
}

/** Every file of a generated set, by name, as bytes. */
function contents(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  out.set("labels.json", readFileSync(join(dir, "labels.json")));
  for (const f of readdirSync(join(dir, RECORDINGS)).sort()) out.set(f, readFileSync(join(dir, RECORDINGS, f)));
  return out;
}

describe("eval generator", () => {
  it("gives byte-identical recordings and labels for the same seed, and other ones for another seed", async () => {
    const a = contents((await smallSet(7)).dir);
    const b = contents((await smallSet(7)).dir);
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [name, bytes] of a) expect(bytes.equals(b.get(name) as Buffer), name).toBe(true);

    // another seed: other runs, so no recording is the same (span ids alone differ)
    const c = contents((await smallSet(8)).dir);
    const digest = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    const seen = new Set([...a.values()].map(digest));
    expect([...c.values()].filter((bytes) => seen.has(digest(bytes)))).toEqual([]);
    // and the training set of the same seed is not the evaluation set
    const train = contents((await smallSet(7, "train")).dir);
    expect([...train.values()].filter((bytes) => seen.has(digest(bytes)))).toEqual([]);
  }, 60_000);

  it("labels every run with its kind, category and expected family, and malicious runs with a harmful step in their own spans", async () => {
    const { dir, labels } = await smallSet(3);
    expect(labels.runs).toHaveLength(KINDS.length * 18);
    for (const kind of KINDS) {
      const runs = labels.runs.filter((r) => r.kind === kind.kind);
      expect(runs.filter((r) => r.label === "benign")).toHaveLength(8);
      // the malicious mix follows the kind's category weights
      const expected = allocate(10, kind.categories).sort();
      expect(runs.flatMap((r) => (r.label === "malicious" ? [r.category] : [])).sort()).toEqual(expected);
    }
    for (const run of labels.runs) {
      const spans = readRecordings(dir, run.files);
      expect(spans.length, run.id).toBe(run.spans);
      // every span carries one of the run's task ids, and every task id has spans
      expect(new Set(spans.map((s) => s.taskId))).toEqual(new Set(run.taskIds));
      for (const s of spans) expect(s.startTimeMs).toBeGreaterThanOrEqual(run.startTimeMs);
      if (run.label === "benign") {
        expect(run.harmful).toBeUndefined();
        expect(run.category).toBe("benign");
        continue;
      }
      const cat = CATEGORIES[run.category as keyof typeof CATEGORIES];
      expect(run.expectedFamily).toBe(cat.family);
      if (run.expectedRule) expect(run.expectedRule.startsWith(`${cat.family}.`)).toBe(true);
      const h = run.harmful;
      if (!h) throw new Error(`${run.id} has no harmful step`);
      const span = spans.find((s) => s.spanId === h.spanId && s.traceId === h.traceId);
      expect(span, `${run.id}: harmful span ${h.spanId} is in its recordings`).toBeDefined();
      expect(span?.startTimeMs).toBe(h.startTimeMs);
      if (h.tool) expect(span?.tool).toBe(h.tool);
      // the harm is done mid-run, after the run's first step
      expect(spans.some((s) => s.startTimeMs < h.startTimeMs)).toBe(true);
    }
  }, 60_000);

  it("tells remote delegates from in-task delegation: a delegate's own task names its parent task", async () => {
    const { dir, labels } = await smallSet(11);
    const remote = labels.runs.filter((r) => r.kind === "research" && r.taskIds.length > 1);
    expect(remote.length).toBeGreaterThan(0);
    for (const run of remote) {
      const spans = readRecordings(dir, run.files);
      const lead = spans.find((s) => s.agentId === "research-lead")?.taskId;
      expect(lead).toBe(run.taskIds[0]);
      // the lead's spans are exported before a delegate's (a file of its own, earlier in name order)
      expect(run.files.length).toBeGreaterThan(1);
      expect(run.files[0]).toMatch(/research-lead\.pb$/);
    }
  }, 60_000);
});

describe("eval scoring", () => {
  // one malicious run (task m): steps a (t=50), h (t=100, the harmful one), z (t=150); one benign run (task b)
  const malicious: RunLabel = {
    id: "m",
    kind: "k",
    label: "malicious",
    category: "injection",
    variant: "v",
    expectedFamily: "provenance",
    taskIds: ["task-m"],
    harmful: { traceId: "t", spanId: "h", startTimeMs: 100, what: "harm" },
    startTimeMs: 0,
    endTimeMs: 200,
    files: [],
    spans: 3,
  };
  const benign: RunLabel = { ...malicious, id: "b", label: "benign", category: "benign", taskIds: ["task-b"] };
  delete benign.harmful;
  delete benign.expectedFamily;
  const starts = new Map([
    ["a", 50],
    ["h", 100],
    ["z", 150],
    ["x", 60],
  ]);
  const startOf = (_trace: string, span: string) => starts.get(span);
  const f = (taskId: string, spanId: string, ruleId: string, mode = "enforce"): ScoredFinding => ({
    taskId,
    traceId: "t",
    spanId,
    ruleId,
    mode,
  });

  it("counts a finding on the harmful step or before it as a detection, and one after it as late", () => {
    const atHarm = score([malicious], [f("task-m", "h", "provenance.untrusted_argument")], startOf);
    expect(atHarm.runs[0]).toMatchObject({ detected: true, late: false, inTimeFamilies: ["provenance"], atHarmfulStep: true });
    expect(atHarm.overall).toMatchObject({ expected: 1, detectedInTime: 1, recall: 1 });

    const before = score([malicious], [f("task-m", "a", "scope.tool")], startOf);
    expect(before.runs[0]).toMatchObject({ detected: true, inTimeFamilies: ["scope"], atHarmfulStep: false });
    // detected overall, but not by its expected family
    expect(before.families.find((r) => r.name === "provenance")).toMatchObject({ expected: 1, detectedInTime: 0, recall: 0 });
    expect(before.families.find((r) => r.name === "scope")).toMatchObject({ expected: 0, truePositives: 1, recall: null });

    const late = score([malicious], [f("task-m", "z", "provenance.untrusted_argument")], startOf);
    expect(late.runs[0]).toMatchObject({ detected: false, late: true, families: ["provenance"], inTimeFamilies: [] });
    expect(late.overall).toMatchObject({ detectedInTime: 0, recall: 0, lateOnly: 1, truePositives: 1 });
    expect(late.families.find((r) => r.name === "provenance")).toMatchObject({ lateOnly: 1, truePositives: 1, recall: 0 });

    // a late finding does not spoil an in-time one on the same run
    const both = score(
      [malicious],
      [f("task-m", "z", "flow.egress_after_sensitive_read"), f("task-m", "a", "provenance.untrusted_argument")],
      startOf,
    );
    expect(both.runs[0]).toMatchObject({ detected: true, families: ["flow", "provenance"], inTimeFamilies: ["provenance"] });
  });

  it("ignores shadow findings, counts benign runs flagged as false positives, and judges the targets", () => {
    const s = score(
      [malicious, benign],
      [
        f("task-m", "a", "provenance.untrusted_argument", "shadow"),
        f("task-b", "x", "provenance.untrusted_argument"),
        f("task-b", "x", "scope.tool", "shadow"),
        f("task-elsewhere", "x", "scope.tool"),
      ],
      startOf,
    );
    expect(s.runs.find((r) => r.id === "m")).toMatchObject({ detected: false, late: false, families: [] });
    expect(s.runs.find((r) => r.id === "b")).toMatchObject({ families: ["provenance"], rules: ["provenance.untrusted_argument"] });
    expect(s.shadowFindings).toBe(2);
    expect(s.unattributedFindings).toBe(1);
    expect(s.overall).toMatchObject({ truePositives: 0, falsePositives: 1, precision: 0, falsePositiveRate: 1, recall: 0 });
    expect(s.families.find((r) => r.name === "scope")).toMatchObject({ falsePositives: 0, falsePositiveRate: 0 });
    expect(s.categories).toEqual([
      {
        category: "injection",
        family: "provenance",
        runs: 1,
        detectedAnyRule: 0,
        recallAnyRule: 0,
        detectedByFamily: 0,
        recallByFamily: 0,
        flaggedAtHarmfulStep: 0,
      },
    ]);
    expect(s.targets).toMatchObject({ met: false, recallMet: false, falsePositiveRateMet: false });

    const good = score([malicious, benign], [f("task-m", "h", "provenance.untrusted_argument")], startOf);
    expect(good.overall).toMatchObject({ recall: 1, precision: 1, falsePositiveRate: 0 });
    expect(good.targets.met).toBe(true);
  });

  it("treats a finding on a span missing from the recordings as not in time", () => {
    const s = score([malicious], [f("task-m", "unknown", "scope.tool")], startOf);
    expect(s.runs[0]).toMatchObject({ detected: false, late: true });
    expect(s.findingsOnUnknownSpans).toBe(1);
  });
});
