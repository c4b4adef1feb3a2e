import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DecodedSpan, decodeTraceRequest } from "../../eval/suites/decode.js";
import { toolDoc } from "../../eval/suites/docs.js";
import { generateSuitesSet, SUITES, type SuiteLabels, TRAIN_OFFSET_MS } from "../../eval/suites/generate.js";
import { FORMS } from "../../eval/suites/kit.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SUITES_DIR = join(ROOT, "eval", "suites");
const START = Date.UTC(2025, 4, 5, 7, 0, 0);

const tmp: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "eval-suites-"));
  tmp.push(d);
  return d;
};
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

function spansOf(dir: string, files: string[]): DecodedSpan[] {
  return files.flatMap((f) => decodeTraceRequest(readFileSync(join(dir, f))));
}

describe("eval/suites: the multi-suite trace set", () => {
  it("gives byte-identical labels and recordings for the same seed, and others for another seed", async () => {
    const [a, b, c] = [tempDir(), tempDir(), tempDir()];
    const opts = { set: "eval", seed: 7, benignPerSuite: 12, maliciousPerSuite: 8, startMs: START };
    await generateSuitesSet({ ...opts, outDir: a });
    await generateSuitesSet({ ...opts, outDir: b });
    await generateSuitesSet({ ...opts, seed: 8, outDir: c });
    const fa = filesUnder(a).map((f) => relative(a, f));
    const fb = filesUnder(b).map((f) => relative(b, f));
    expect(fb).toEqual(fa);
    for (const f of fa) expect(Buffer.compare(readFileSync(join(a, f)), readFileSync(join(b, f))), f).toBe(0);
    expect(readFileSync(join(c, "labels.json"), "utf8")).not.toEqual(readFileSync(join(a, "labels.json"), "utf8"));
  });

  describe("a default-size set", () => {
    let dir: string;
    let labels: SuiteLabels;
    const spans = new Map<string, DecodedSpan[]>();

    beforeAll(async () => {
      dir = tempDir();
      labels = await generateSuitesSet({ set: "eval", seed: 1, benignPerSuite: 150, maliciousPerSuite: 60, outDir: dir, startMs: START });
      for (const r of labels.runs) spans.set(r.id, spansOf(dir, r.files));
    }, 120_000);

    it("has 150 benign and 60 malicious runs per suite, and labels.json on disk says the same", () => {
      const onDisk = JSON.parse(readFileSync(join(dir, "labels.json"), "utf8")) as SuiteLabels;
      expect(onDisk.runs.length).toBe(labels.runs.length);
      for (const s of SUITES) {
        const runs = labels.runs.filter((r) => r.suite === s.name);
        expect(runs.filter((r) => r.label === "benign").length).toBe(150);
        expect(runs.filter((r) => r.label === "malicious").length).toBe(60);
        for (const r of runs) expect(r.kind).toBe(s.name);
      }
    });

    it("marks in every malicious run a harmful span that is in its recordings, at a write-like tool of its suite", () => {
      for (const r of labels.runs.filter((x) => x.label === "malicious")) {
        const suite = SUITES.find((s) => s.name === r.suite);
        expect(suite, r.id).toBeDefined();
        const h = r.harmful;
        expect(h, r.id).toBeDefined();
        if (!h || !suite) continue;
        const span = spans.get(r.id)?.find((s) => s.spanId === h.spanId && s.traceId === h.traceId);
        expect(span, `${r.id}: harmful span ${h.spanId}`).toBeDefined();
        if (!span) continue;
        expect(span.startTimeMs).toBe(Math.floor(h.startTimeMs));
        expect(span.attributes["gen_ai.operation.name"]).toBe("execute_tool");
        expect(span.attributes["gen_ai.tool.name"]).toBe(h.tool);
        const tool = suite.tools.find((t) => t.name === h.tool);
        expect(tool?.writes, `${r.id}: ${h.tool} is not a write-like tool of ${suite.name}`).toBe(true);
        const goal = suite.goals.find((g) => g.id === r.goal);
        expect(goal?.tool, r.id).toBe(h.tool);
        expect(r.category).toBe("injection");
        expect(FORMS).toContain(r.form);
        expect(r.carrier, r.id).toBeTruthy();
        // the injected text reached the model before the harm: some earlier tool call returned content
        const earlier = (spans.get(r.id) ?? []).filter(
          (s) => s.attributes["gen_ai.operation.name"] === "execute_tool" && s.startTimeMs < span.startTimeMs,
        );
        expect(earlier.length, r.id).toBeGreaterThan(0);
      }
    });

    it("has no harmful step in benign runs, and hard-negative reasons only on benign runs", () => {
      for (const r of labels.runs) {
        if (r.label === "benign") {
          expect(r.harmful, r.id).toBeUndefined();
          expect(r.category).toBe("benign");
        } else expect(r.hardNegative, r.id).toBeUndefined();
      }
      expect(labels.runs.filter((r) => r.hardNegative).length).toBeGreaterThan(50);
    });

    it("records only what a generic GenAI instrumentation records", () => {
      const forbidden = ["agent.tool.effect", "data.classification", "server.address", "url.full", "agent.credential.id", "spiffe.id"];
      for (const r of labels.runs) {
        const ss = spans.get(r.id) ?? [];
        expect(ss.length, r.id).toBe(r.spans);
        const roots = ss.filter((s) => s.attributes["gen_ai.operation.name"] === "invoke_agent");
        expect(roots.length, r.id).toBe(1);
        const intent = roots[0]?.attributes["agent.task.intent"];
        expect(typeof intent).toBe("string");
        for (const s of ss) {
          for (const k of forbidden) {
            expect(s.attributes[k], `${r.id} ${s.name} ${k}`).toBeUndefined();
            expect(s.resource[k], `${r.id} resource ${k}`).toBeUndefined();
          }
          expect(s.attributes["gen_ai.agent.id"], `${r.id} ${s.name}`).toBeTruthy();
          expect(r.taskIds).toContain(s.attributes["agent.task.id"]);
          expect(s.resource["service.name"]).toBeTruthy();
          expect(s.resource["deployment.environment.name"]).toBeTruthy();
        }
        const chats = ss.filter((s) => s.attributes["gen_ai.operation.name"] === "chat").sort((a, b) => a.startTimeMs - b.startTimeMs);
        const first = JSON.parse(String(chats[0]?.attributes["gen_ai.input.messages"])) as {
          role: string;
          parts: { content?: string }[];
        }[];
        expect(first.map((m) => m.role)).toEqual(["system", "user"]);
        expect(first[1]?.parts[0]?.content).toBe(intent);
        for (const c of chats) expect(c.endTimeMs - c.startTimeMs).toBeGreaterThanOrEqual(1000);
        for (const t of ss.filter((s) => s.attributes["gen_ai.operation.name"] === "execute_tool")) {
          expect(typeof t.attributes["gen_ai.tool.call.arguments"]).toBe("string");
          expect(typeof t.attributes["gen_ai.tool.call.result"]).toBe("string");
          expect(t.endTimeMs - t.startTimeMs).toBeLessThanOrEqual(801);
        }
      }
    });

    it("covers every goal and form, with at least 12 task templates and 8 goals per suite", () => {
      for (const s of SUITES) {
        expect(s.templates.length, s.name).toBeGreaterThanOrEqual(12);
        expect(s.goals.length, s.name).toBeGreaterThanOrEqual(8);
        const runs = labels.runs.filter((r) => r.suite === s.name && r.label === "malicious");
        for (const g of s.goals)
          expect(
            runs.some((r) => r.goal === g.id),
            `${s.name}/${g.id}`,
          ).toBe(true);
      }
      const mal = labels.runs.filter((r) => r.label === "malicious");
      for (const f of FORMS)
        expect(
          mal.some((r) => r.form === f),
          f,
        ).toBe(true);
      expect(mal.some((r) => r.carrierNamedByUser)).toBe(true);
    });

    it("numbers the recordings in time order", () => {
      const files = labels.runs.flatMap((r) => r.files.map((f) => ({ f, start: r.startTimeMs }))).sort((a, b) => a.f.localeCompare(b.f));
      for (let i = 1; i < files.length; i++) expect((files[i]?.start ?? 0) >= (files[i - 1]?.start ?? 0)).toBe(true);
    });
  });

  it("gives a benign-only training history a month before", async () => {
    const d = tempDir();
    const train = await generateSuitesSet({
      set: "train",
      seed: 1,
      benignPerSuite: 20,
      maliciousPerSuite: 0,
      outDir: d,
      startMs: START - TRAIN_OFFSET_MS,
    });
    expect(train.runs.length).toBe(20 * SUITES.length);
    for (const r of train.runs) {
      expect(r.label).toBe("benign");
      expect(r.endTimeMs).toBeLessThan(START);
    }
  });

  it("has tool docs that match the catalogues", () => {
    for (const s of SUITES) expect(readFileSync(join(SUITES_DIR, "tools", `${s.name}.md`), "utf8"), s.name).toBe(toolDoc(s));
  });

  it("imports nothing from services/ or schemas/", () => {
    const sources = filesUnder(SUITES_DIR).filter((f) => /\.[cm]?[jt]s$/.test(f));
    expect(sources.length).toBeGreaterThan(5);
    const forbidden = [join(ROOT, "services"), join(ROOT, "schemas")];
    for (const file of sources) {
      const text = readFileSync(file, "utf8");
      const specs = [
        ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gms),
        ...text.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
        ...text.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g),
        ...text.matchAll(/\brequire\s*\(\s*["']([^"']+)["']\s*\)/g),
      ].map((m) => m[1] as string);
      for (const spec of specs) {
        expect(spec, relative(ROOT, file)).not.toMatch(/(^|\/)(services|schemas)(\/|$)/);
        if (spec.startsWith(".")) {
          const target = resolve(dirname(file), spec);
          for (const f of forbidden) expect(target.startsWith(f), `${relative(ROOT, file)} imports ${spec}`).toBe(false);
        }
      }
    }
  });
});
