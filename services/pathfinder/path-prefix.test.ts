import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DataClassification } from "../../schemas/action.js";
import { DATA_CLASSIFICATIONS } from "../../schemas/action.js";
import { toolCall } from "../../test/support/actions.js";
import { emptyPath, MAX_SOURCE_OUTPUTS, type OrderEntry, placeActions, soFar, type TaskPath } from "./path.js";

/**
 * soFar folds the path's prefix once and extends it as steps are appended (a task of
 * thousands of steps stays linear). Checked against the plain definition, a walk over every
 * earlier step, on paths built batch by batch with steps out of order, several agents and
 * tools, and re-evaluations of earlier positions.
 */
function walked(path: TaskPath, index: number, startMs: number, agentId?: string, tool?: string) {
  let max: DataClassification | undefined;
  let own = 0;
  let sameTool = 0;
  let streak = 0;
  let recent = 0;
  let ownRecent = 0;
  let firstTool: string | undefined;
  let lastTool: string | undefined;
  for (let i = 0; i < Math.min(index, path.order.length); i++) {
    const id = (path.order[i] as OrderEntry).id;
    const info = path.spans.get(id.slice(id.indexOf(":") + 1));
    if (!info) continue;
    if (info.data && (max === undefined || DATA_CLASSIFICATIONS.indexOf(info.data) > DATA_CLASSIFICATIONS.indexOf(max))) max = info.data;
    const isRecent = info.start !== undefined && info.start >= startMs - 60_000;
    if (isRecent) recent++;
    if (info.agentId === agentId) {
      own++;
      if (isRecent) ownRecent++;
      if (info.tool) {
        lastTool = info.tool;
        firstTool ??= info.tool;
        if (info.tool === tool) sameTool++;
        streak = info.tool === tool ? streak + 1 : 0;
      }
    }
  }
  return { max, own, sameTool, streak, recent, ownRecent, firstTool, lastTool };
}

const step = fc.record({
  agent: fc.constantFrom("a1", "a2", undefined),
  tool: fc.constantFrom("invoices.read", "email.send", "files.write"),
  data: fc.constantFrom(...DATA_CLASSIFICATIONS, undefined),
  // mostly forward in time, sometimes far back (a late span), sometimes a minute apart
  dt: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 2_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: -90_000, max: 90_000 }) },
  ),
});

describe("soFar over a folded prefix", () => {
  it("gives what a walk over every earlier step gives, for every step, as the path grows batch by batch", () => {
    fc.assert(
      fc.property(fc.array(fc.array(step, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 25 }), (batches) => {
        const path = emptyPath("t-prefix");
        let t = 1_700_000_000_000;
        for (const batch of batches) {
          const actions = batch.map((s) => {
            t += s.dt;
            return toolCall({
              taskId: "t-prefix",
              startTimeMs: t,
              tool: { name: s.tool },
              agent: s.agent ? { id: s.agent } : {},
              ...(s.data ? { dataClassification: s.data } : {}),
            });
          });
          const placed = placeActions(path, actions, { latenessMs: 120_000 });
          for (const { step: st } of placed.recorded) {
            const expected = walked(path, st.index, st.startTimeMs, st.agent.id, st.tool?.name);
            const b = st.before as NonNullable<typeof st.before>;
            expect(b.maxDataClassification).toBe(expected.max);
            expect(b.agentSteps).toBe(expected.own);
            expect(b.toolCalls).toBe(expected.sameTool);
            expect(b.streak).toBe(expected.streak);
            expect(b.stepsLastMinute).toBe(expected.recent);
            expect(b.agentStepsLastMinute).toBe(expected.ownRecent);
            expect(b.firstTool).toBe(expected.firstTool);
            expect(b.lastTool).toBe(expected.lastTool);
          }
          // an earlier position asked again (a re-evaluation) reads the path before it, not the fold's end
          if (path.order.length > 2) {
            const i = Math.floor(path.order.length / 2);
            const again = soFar(path, i, t, "a1", "invoices.read");
            const expected = walked(path, i, t, "a1", "invoices.read");
            expect([again.agentSteps, again.toolCalls, again.streak, again.maxDataClassification]).toEqual([
              expected.own,
              expected.sameTool,
              expected.streak,
              expected.max,
            ]);
          }
        }
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});

describe("the re-evaluation budget", () => {
  it("judges the steps after a re-ordering span again while the task's budget lasts, then takes such spans as late", () => {
    const path = emptyPath("t-budget");
    const t0 = 1_700_000_000_000;
    let now = 0;
    const options = { latenessMs: 3_600_000, reevaluationsPerMinute: 250, now: () => now };
    placeActions(
      path,
      Array.from({ length: 100 }, (_, i) => toolCall({ taskId: "t-budget", startTimeMs: t0 + 1_000 + i })),
      options,
    );
    // each span starts before every recorded step: the 100 (and more) after it are judged again
    const early = (k: number) => placeActions(path, [toolCall({ taskId: "t-budget", startTimeMs: t0 + k })], options);
    expect(early(1).reevaluate.length).toBeGreaterThanOrEqual(100);
    expect(early(2).reevaluate.length).toBeGreaterThanOrEqual(100);
    // 250 a minute: the third does not fit
    const third = early(3);
    expect(third.reevaluate).toEqual([]);
    expect(third.recorded[0]?.step.late).toBe(true);
    // a minute later the budget is back
    now += 60_000;
    const later = early(4);
    expect(later.reevaluate.length).toBeGreaterThanOrEqual(100);
    expect(later.recorded[0]?.step.late).toBeUndefined();
    // a span after every recorded step re-orders nothing and needs no budget
    const appended = placeActions(path, [toolCall({ taskId: "t-budget", startTimeMs: t0 + 5_000 })], options);
    expect(appended.reevaluate).toEqual([]);
    expect(appended.recorded[0]?.step.late).toBeUndefined();
  });
});

describe("indexed outputs held in memory", () => {
  it("keeps the most recent 2 × MAX_SOURCE_OUTPUTS tool outputs indexed in a long path, and lineage still traces through the recent ones", () => {
    const path = emptyPath("t-outputs");
    const t0 = 1_700_000_000_000;
    for (let b = 0; b < 10; b++) {
      placeActions(
        path,
        Array.from({ length: 100 }, (_, i) =>
          toolCall({
            taskId: "t-outputs",
            startTimeMs: t0 + b * 100 + i,
            tool: {
              name: "invoices.read",
              result: { invoice: `INV-${b * 100 + i}`, iban: `DE89370400440532${String(b * 100 + i).padStart(6, "0")}` },
            },
          }),
        ),
        { latenessMs: 60_000 },
      );
    }
    const indexed = [...path.spans.values()].filter((s) => s.src !== undefined).length;
    expect(indexed).toBeGreaterThanOrEqual(2 * MAX_SOURCE_OUTPUTS);
    expect(indexed).toBeLessThan(2 * MAX_SOURCE_OUTPUTS + 256);
    // a value from a recent output is still found
    const [placed] = placeActions(
      path,
      [toolCall({ taskId: "t-outputs", startTimeMs: t0 + 2_000, tool: { name: "payments.send", arguments: { invoice: "INV-990" } } })],
      { latenessMs: 60_000 },
    ).recorded;
    const origins = placed?.step.before?.arguments?.flatMap((a) => a.origins ?? []) ?? [];
    expect(origins.some((o) => o.source === "output")).toBe(true);
  });
});
