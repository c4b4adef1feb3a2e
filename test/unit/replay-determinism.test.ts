import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateSet, RECORDINGS } from "../../eval/generate.js";
import { KINDS } from "../../eval/scenarios/index.js";
import { replay } from "../../services/cli/replay.js";
import { loadConfig } from "../../services/runtime/config.js";

/**
 * Replay runs on the recording's clock: arrival and detection times, and every sweep (the
 * baseline learner above all), follow the recorded times, never the wall clock. So the same
 * recording gives byte-identical findings however long the replay takes, and a replay learns
 * from its own traffic exactly as the live pipeline would have at those times.
 */
describe("replay on the recording's clock", () => {
  const config = loadConfig({ DRIFTWATCH_LOG_LEVEL: "silent", DRIFTWATCH_POLICY_DIR: "policies" });
  const kinds = KINDS.filter((k) => k.kind === "support" || k.kind === "finance");

  it("gives byte-identical findings for the same input, learning as it goes on recorded time", async () => {
    const out = mkdtempSync(join(tmpdir(), "dw-determinism-"));
    const labels = await generateSet({
      set: "eval",
      seed: 11,
      benignPerKind: 60,
      maliciousPerKind: 15,
      outDir: out,
      startMs: Date.UTC(2026, 2, 2, 7),
      kinds,
    });
    const recordings = [join(out, RECORDINGS)];
    const first = await replay(config, recordings);
    const second = await replay(config, recordings);
    expect(first.length).toBeGreaterThan(0);
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));

    // detection was stamped on the recording's clock: at or after the span it flags, within the recording
    for (const f of first) {
      expect(f.detectedAtMs).toBeGreaterThanOrEqual(f.spanEndMs);
      expect(f.detectedAtMs).toBeLessThanOrEqual(Math.max(...labels.runs.map((r) => r.endTimeMs)));
    }
    // no warm-up was given: anomaly findings exist only because the learner's sweeps ran on
    // the recording's clock and learned the first tasks (a replay takes seconds of wall time,
    // far less than the learner's interval and settle time)
    expect(first.some((f) => f.ruleId.startsWith("anomaly."))).toBe(true);
  });
});
