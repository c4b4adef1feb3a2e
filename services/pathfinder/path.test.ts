import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AgentAction, TaskScope } from "../../schemas/action.js";
import type { Step } from "../../schemas/step.js";
import { agentAction } from "../../test/support/actions.js";
import { emptyPath, facetsOf, isTaskRoot, lineageOf, type Placement, placeActions, stepOf, type TaskPath } from "./path.js";

const T0 = 1_760_000_000_000;
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_2 = "5bf92f3577b34da6a3ce929d0e0e4737";
const TRACE_3 = "6bf92f3577b34da6a3ce929d0e0e4738";
const TASK = "task-1";
const WIDE = { latenessMs: 1e12 };

const span = (n: number) => n.toString(16).padStart(16, "0");

/** An action of task `task-1` as ingest emits it. */
const action = (spanId: string, over: Partial<AgentAction> = {}): AgentAction =>
  agentAction({
    spanId,
    taskId: TASK,
    operation: "execute_tool",
    agent: { id: "billing-agent", name: "Billing", spiffeId: "spiffe://acme.example/agents/billing" },
    startTimeMs: T0,
    endTimeMs: T0 + 10,
    receivedAtMs: T0 + 100,
    ...over,
  });

/** The path's step ids, in order. */
const ids = (path: TaskPath) => path.order.map((e) => e.id);
const positionOf = (path: TaskPath, id: string) => ids(path).indexOf(id);

/** Every step a placement says to emit (new and re-evaluated) sits at its current position. */
function expectIndexesCurrent(path: TaskPath, placement: Placement) {
  for (const { step } of placement.recorded) expect(step.index).toBe(positionOf(path, step.id));
  for (const r of placement.reevaluate) expect(r.index).toBe(positionOf(path, r.id));
}

describe("placeActions: order is by start time whatever the arrival order and batching", () => {
  it("property: shuffled spans in random batches end in the order of one sorted batch, and every emitted index is current", () => {
    const spec = fc.array(
      fc.record({
        start: fc.integer({ min: 0, max: 500 }),
        arrival: fc.double({ min: 0, max: 1, noNaN: true }),
        breakAfter: fc.boolean(),
      }),
      { minLength: 1, maxLength: 30 },
    );
    fc.assert(
      fc.property(spec, (specs) => {
        const actions = specs.map((s, i) => action(span(i + 1), { startTimeMs: T0 + s.start, endTimeMs: T0 + s.start + 5 }));
        // the expected order: by start, ties by id (no parents, so no depth tie-break)
        const expected = [...actions]
          .sort((a, b) => a.startTimeMs - b.startTimeMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          .map((a) => a.id);

        const single = emptyPath(TASK);
        const once = placeActions(single, [...actions], WIDE);
        expect(ids(single)).toEqual(expected);
        expect(once.recorded.map((r) => r.step.id)).toEqual(expected);
        expect(once.recorded.map((r) => r.step.index)).toEqual(expected.map((_, i) => i));
        expect(once.reevaluate).toEqual([]);

        // arrival order: shuffled; batches: cut where breakAfter says
        const arrival = actions.map((a, i) => ({ a, key: specs[i]?.arrival ?? 0, cut: specs[i]?.breakAfter ?? false }));
        arrival.sort((x, y) => x.key - y.key);
        const batches: AgentAction[][] = [[]];
        for (const { a, cut } of arrival) {
          (batches.at(-1) as AgentAction[]).push(a);
          if (cut) batches.push([]);
        }

        const path = emptyPath(TASK);
        // what a downstream consumer believes each step's index is, from the steps emitted so far
        const view = new Map<string, number>();
        const recordedIds: string[] = [];
        for (const batch of batches) {
          const placement = placeActions(path, batch, WIDE);
          expect(placement.duplicates).toBe(0);
          expectIndexesCurrent(path, placement);
          for (const { step } of placement.recorded) {
            expect(step.late).toBeUndefined();
            expect(step.reevaluated).toBeUndefined();
            view.set(step.id, step.index);
            recordedIds.push(step.id);
          }
          for (const r of placement.reevaluate) {
            // only steps recorded by an earlier batch are re-evaluated
            expect(batch.some((a) => a.id === r.id)).toBe(false);
            view.set(r.id, r.index);
          }
          // the emitted indexes, latest per step, are the path as it stands
          expect([...view].sort((x, y) => x[1] - y[1]).map(([id]) => id)).toEqual(ids(path));
        }
        expect(ids(path)).toEqual(expected);
        // scores are relative to each path's first span: compared as absolute times (to the nanosecond)
        const absolute = (p: TaskPath) => p.order.map((e) => Math.round((e.score + (p.facts?.baseMs ?? 0)) * 1e6));
        expect(absolute(path)).toEqual(absolute(single));
        // each step recorded exactly once
        expect([...recordedIds].sort()).toEqual([...expected].sort());
      }),
      { numRuns: 300 },
    );
  });

  it("property: with a narrow lateness window the final order is the same; late steps are flagged and each step recorded once", () => {
    const spec = fc.array(fc.record({ start: fc.integer({ min: 0, max: 10_000 }), arrival: fc.nat(), breakAfter: fc.boolean() }), {
      minLength: 1,
      maxLength: 30,
    });
    fc.assert(
      fc.property(spec, fc.integer({ min: 0, max: 3_000 }), (specs, latenessMs) => {
        const actions = specs.map((s, i) => action(span(i + 1), { startTimeMs: T0 + s.start, endTimeMs: T0 + s.start + 5 }));
        const expected = [...actions]
          .sort((a, b) => a.startTimeMs - b.startTimeMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          .map((a) => a.id);
        const order = actions.map((a, i) => ({ a, key: specs[i]?.arrival ?? 0, cut: specs[i]?.breakAfter ?? false }));
        order.sort((x, y) => x.key - y.key);
        const path = emptyPath(TASK);
        const recorded: Step[] = [];
        let batch: AgentAction[] = [];
        let maxStart = Number.NEGATIVE_INFINITY;
        const flush = () => {
          if (batch.length === 0) return;
          const watermark = maxStart - latenessMs;
          const placement = placeActions(path, batch, { latenessMs });
          expectIndexesCurrent(path, placement);
          for (const { step } of placement.recorded) {
            // late exactly when it started before the newest earlier step's start minus the window
            expect(step.late === true).toBe(step.startTimeMs < watermark);
            recorded.push(step);
          }
          for (const a of batch) maxStart = Math.max(maxStart, a.startTimeMs);
          batch = [];
        };
        for (const { a, cut } of order) {
          batch.push(a);
          if (cut) flush();
        }
        flush();
        expect(ids(path)).toEqual(expected);
        expect(recorded.map((s) => s.id).sort()).toEqual([...expected].sort());
      }),
      { numRuns: 300 },
    );
  });

  it("orders the spans of one task across three traces by start time", () => {
    const path = emptyPath(TASK);
    const a1 = action(span(1), { traceId: TRACE, startTimeMs: T0 + 10, endTimeMs: T0 + 15 });
    const b1 = action(span(2), { traceId: TRACE_2, startTimeMs: T0 + 20, endTimeMs: T0 + 25 });
    const c1 = action(span(3), { traceId: TRACE_3, startTimeMs: T0 + 30, endTimeMs: T0 + 35 });
    const a2 = action(span(4), { traceId: TRACE, startTimeMs: T0 + 40, endTimeMs: T0 + 45 });
    const b2 = action(span(5), { traceId: TRACE_2, startTimeMs: T0 + 50, endTimeMs: T0 + 55 });
    const c2 = action(span(6), { traceId: TRACE_3, startTimeMs: T0 + 60, endTimeMs: T0 + 65 });
    // each trace arrives as its own batch, the last trace first
    const third = placeActions(path, [c2, c1], WIDE);
    expect(third.recorded.map((r) => [r.step.id, r.step.index])).toEqual([
      [c1.id, 0],
      [c2.id, 1],
    ]);
    const second = placeActions(path, [b2, b1], WIDE);
    expect(second.recorded.map((r) => [r.step.id, r.step.index])).toEqual([
      [b1.id, 0],
      [b2.id, 2],
    ]);
    expect(second.reevaluate).toEqual([
      { id: c1.id, index: 1 },
      { id: c2.id, index: 3 },
    ]);
    const first = placeActions(path, [a2, a1], WIDE);
    expect(first.recorded.map((r) => [r.step.id, r.step.index])).toEqual([
      [a1.id, 0],
      [a2.id, 3],
    ]);
    expect(first.reevaluate).toEqual([
      { id: b1.id, index: 1 },
      { id: c1.id, index: 2 },
      { id: b2.id, index: 4 },
      { id: c2.id, index: 5 },
    ]);
    expect(ids(path)).toEqual([a1.id, b1.id, c1.id, a2.id, b2.id, c2.id]);
    // the ids differ by trace even where a span id could repeat: each trace's steps are the task's
    expect(new Set(path.order.map((e) => e.id.split(":")[0]))).toEqual(new Set([TRACE, TRACE_2, TRACE_3]));
    expect(path.facts).toMatchObject({ taskId: TASK, startMs: T0 + 10, endMs: T0 + 65, maxStartMs: T0 + 60 });
  });
});

describe("placeActions: duplicates", () => {
  it("counts a span repeated in one batch and across batches, and records it once", () => {
    const path = emptyPath(TASK);
    const a = action(span(1), { startTimeMs: T0 });
    const b = action(span(2), { startTimeMs: T0 + 5 });
    const c = action(span(3), { startTimeMs: T0 + 7 });
    const first = placeActions(path, [a, b, structuredClone(a), { ...a, name: "again" }], WIDE);
    expect(first.duplicates).toBe(2);
    expect(first.recorded.map((r) => r.step.id)).toEqual([a.id, b.id]);
    expect(first.recorded[0]?.step.name).toBe(a.name);

    const second = placeActions(path, [structuredClone(a), c, structuredClone(b), structuredClone(c)], WIDE);
    expect(second.duplicates).toBe(3);
    expect(second.recorded.map((r) => [r.step.id, r.step.index])).toEqual([[c.id, 2]]);
    expect(second.reevaluate).toEqual([]);
    // spans recorded before are emitted again as they are (the first emission may have been lost)
    expect(second.repeated.map((st) => [st.id, st.index, st.reevaluated])).toEqual([
      [a.id, 0, undefined],
      [b.id, 1, undefined],
    ]);

    // only duplicates: nothing recorded, nothing re-evaluated, facts untouched
    const factsBefore = JSON.stringify(path.facts);
    const third = placeActions(path, [{ ...a, receivedAtMs: T0 + 9_999 }, b], WIDE);
    expect({ ...third, repeated: third.repeated.map((st) => [st.id, st.index]) }).toEqual({
      recorded: [],
      reevaluate: [],
      repeated: [
        [a.id, 0],
        [b.id, 1],
      ],
      duplicates: 2,
      factsChanged: false,
      newFacets: [],
      newCredentials: [],
    });
    expect(JSON.stringify(path.facts)).toBe(factsBefore);

    expect(ids(path)).toEqual([a.id, b.id, c.id]);
    expect(path.ids.size).toBe(3);
    expect(path.spans.size).toBe(3);
  });
});

describe("placeActions: the lateness window", () => {
  const recordFour = (latenessMs: number) => {
    const path = emptyPath(TASK);
    const steps = [10, 20, 30, 40].map((t) => action(span(t), { startTimeMs: T0 + t * 1_000 }));
    placeActions(path, steps, { latenessMs });
    return { path, steps };
  };

  it("places a span that lands before recorded steps within the window and re-evaluates exactly the steps after it", () => {
    const { path, steps } = recordFour(30_000);
    const [s10, s20, s30, s40] = steps as [AgentAction, AgentAction, AgentAction, AgentAction];
    const s15 = action(span(15), { startTimeMs: T0 + 15_000 });
    const placement = placeActions(path, [s15], { latenessMs: 30_000 });
    expect(placement.recorded.map((r) => r.step)).toHaveLength(1);
    expect(placement.recorded[0]?.step).toMatchObject({ id: s15.id, index: 1 });
    expect(placement.recorded[0]?.step.late).toBeUndefined();
    expect(placement.recorded[0]?.step.reevaluated).toBeUndefined();
    expect(placement.reevaluate).toEqual([
      { id: s20.id, index: 2 },
      { id: s30.id, index: 3 },
      { id: s40.id, index: 4 },
    ]);
    expect(ids(path)).toEqual([s10.id, s15.id, s20.id, s30.id, s40.id]);
    // stepOf of a re-evaluated step says so and carries its new index
    expect(stepOf(path, s30, 3, { reevaluated: true })).toMatchObject({ id: s30.id, index: 3, reevaluated: true });
  });

  it("re-evaluates from the earliest new in-window step of a batch, leaving out the batch's own steps", () => {
    const { path, steps } = recordFour(30_000);
    const [s10, s20, s30, s40] = steps as [AgentAction, AgentAction, AgentAction, AgentAction];
    const s25 = action(span(25), { startTimeMs: T0 + 25_000 });
    const s12 = action(span(12), { startTimeMs: T0 + 12_000 });
    const s50 = action(span(50), { startTimeMs: T0 + 50_000 });
    const placement = placeActions(path, [s50, s25, s12], { latenessMs: 30_000 });
    expect(placement.recorded.map((r) => [r.step.id, r.step.index])).toEqual([
      [s12.id, 1],
      [s25.id, 3],
      [s50.id, 6],
    ]);
    expect(placement.reevaluate).toEqual([
      { id: s20.id, index: 2 },
      { id: s30.id, index: 4 },
      { id: s40.id, index: 5 },
    ]);
    expect(ids(path)).toEqual([s10.id, s12.id, s20.id, s25.id, s30.id, s40.id, s50.id]);
  });

  it("re-evaluates nothing for a span that lands after every recorded step", () => {
    const { path } = recordFour(30_000);
    const s41 = action(span(41), { startTimeMs: T0 + 41_000 });
    const placement = placeActions(path, [s41], { latenessMs: 30_000 });
    expect(placement.recorded.map((r) => r.step.index)).toEqual([4]);
    expect(placement.reevaluate).toEqual([]);
  });

  it("a span exactly at the window's edge is still in the window", () => {
    const { path, steps } = recordFour(30_000);
    const edge = action(span(99), { startTimeMs: T0 + 40_000 - 30_000 });
    const placement = placeActions(path, [edge], { latenessMs: 30_000 });
    expect(placement.recorded[0]?.step.late).toBeUndefined();
    // ties on start are broken by id: span(99) sorts after span(10)'s id
    expect(placement.recorded[0]?.step.index).toBe(1);
    expect(placement.reevaluate.map((r) => r.id)).toEqual(steps.slice(1).map((s) => s.id));
  });

  it("records a span older than the window at its place, flags it late and re-evaluates nothing", () => {
    const { path, steps } = recordFour(5_000);
    const [s10, s20, s30, s40] = steps as [AgentAction, AgentAction, AgentAction, AgentAction];
    // newest start 40 s, window 5 s: anything before 35 s is late
    const s15 = action(span(15), { startTimeMs: T0 + 15_000 });
    const placement = placeActions(path, [s15], { latenessMs: 5_000 });
    expect(placement.recorded).toHaveLength(1);
    expect(placement.recorded[0]?.step).toMatchObject({ id: s15.id, index: 1, late: true });
    expect(placement.recorded[0]?.span.late).toBe(true);
    expect(placement.reevaluate).toEqual([]);
    expect(ids(path)).toEqual([s10.id, s15.id, s20.id, s30.id, s40.id]);
    // the flag stays with the span: the step is late whenever it is emitted again
    expect(stepOf(path, s15, 1).late).toBe(true);
    expect(stepOf(path, s20, 2).late).toBeUndefined();
  });

  it("a late span that is the parent of no recorded span re-evaluates nothing, even with a recorded parent itself", () => {
    const { path, steps } = recordFour(5_000);
    const [s10] = steps as [AgentAction];
    const child = action(span(11), {
      startTimeMs: T0 + 11_000,
      parentSpanId: s10.spanId,
      operation: "invoke_agent",
      agent: { id: "helper" },
    });
    const placement = placeActions(path, [child], { latenessMs: 5_000 });
    expect(placement.recorded[0]?.step).toMatchObject({ index: 1, late: true });
    expect(placement.reevaluate).toEqual([]);
  });

  it("in a batch mixing a late span and an in-window one, only the steps after the in-window one are re-evaluated", () => {
    const { path, steps } = recordFour(5_000);
    const [s10, s20, s30, s40] = steps as [AgentAction, AgentAction, AgentAction, AgentAction];
    const old = action(span(5), { startTimeMs: T0 + 5_000 });
    const recent = action(span(36), { startTimeMs: T0 + 36_000 });
    const placement = placeActions(path, [recent, old], { latenessMs: 5_000 });
    expect(placement.recorded.map((r) => [r.step.id, r.step.index, r.step.late])).toEqual([
      [old.id, 0, true],
      [recent.id, 4, undefined],
    ]);
    expect(placement.reevaluate).toEqual([{ id: s40.id, index: 5 }]);
    expect(ids(path)).toEqual([old.id, s10.id, s20.id, s30.id, recent.id, s40.id]);
  });

  it("bounds the steps re-evaluated for one batch by maxReevaluated", () => {
    const path = emptyPath(TASK);
    placeActions(
      path,
      Array.from({ length: 10 }, (_, i) => action(span(100 + i), { startTimeMs: T0 + 100 + i })),
      WIDE,
    );
    const placement = placeActions(path, [action(span(1), { startTimeMs: T0 })], { ...WIDE, maxReevaluated: 3 });
    expect(placement.reevaluate).toEqual([
      { id: `${TRACE}:${span(100)}`, index: 1 },
      { id: `${TRACE}:${span(101)}`, index: 2 },
      { id: `${TRACE}:${span(102)}`, index: 3 },
    ]);
  });
});

describe("placeActions: the task's life", () => {
  const root = (over: Partial<AgentAction> = {}) =>
    action("ffffffffffffff00", { operation: "invoke_agent", name: "invoke_agent billing", startTimeMs: T0, endTimeMs: T0 + 90, ...over });

  it("is started after one step, active after two, completed when its root agent span arrives", () => {
    const path = emptyPath(TASK);
    const rootSpan = "ffffffffffffff00";
    const p1 = placeActions(path, [action(span(1), { parentSpanId: rootSpan, startTimeMs: T0 + 1, receivedAtMs: T0 + 20 })], WIDE);
    expect(p1.previousPhase).toBeUndefined();
    expect(p1.factsChanged).toBe(true);
    expect(path.facts?.phase).toBe("started");
    expect(path.facts?.completedAtMs).toBeUndefined();

    const p2 = placeActions(path, [action(span(2), { parentSpanId: rootSpan, startTimeMs: T0 + 2, receivedAtMs: T0 + 30 })], WIDE);
    expect(p2.previousPhase).toBe("started");
    expect(path.facts?.phase).toBe("active");

    // an agent invocation under the root (another agent's turn) does not end the task
    const nested = action(span(3), { operation: "invoke_agent", parentSpanId: rootSpan, startTimeMs: T0 + 3, receivedAtMs: T0 + 40 });
    expect(isTaskRoot(nested)).toBe(false);
    placeActions(path, [nested], WIDE);
    expect(path.facts?.phase).toBe("active");

    const p4 = placeActions(path, [root({ receivedAtMs: T0 + 95 })], WIDE);
    expect(p4.previousPhase).toBe("active");
    expect(p4.factsChanged).toBe(true);
    expect(path.facts).toMatchObject({ phase: "completed", completedAtMs: T0 + 95, lastSeenMs: T0 + 95, startMs: T0, endMs: T0 + 90 });

    // a straggler after completion keeps the task completed, and the completion time
    placeActions(path, [action(span(4), { parentSpanId: rootSpan, startTimeMs: T0 + 4, receivedAtMs: T0 + 200 })], WIDE);
    expect(path.facts).toMatchObject({ phase: "completed", completedAtMs: T0 + 95, lastSeenMs: T0 + 200 });
  });

  it("a delegate's first agent span (it names a parent task) is its root, though it has a parent span", () => {
    const first = action(span(9), { operation: "invoke_agent", parentSpanId: span(8), parentTaskId: "task-0" });
    expect(isTaskRoot(first)).toBe(true);
    expect(isTaskRoot(action(span(9), { operation: "execute_tool" }))).toBe(false);
    const path = emptyPath(TASK);
    placeActions(path, [action(span(1), { startTimeMs: T0 + 1 }), first], WIDE);
    expect(path.facts).toMatchObject({ phase: "completed", parentTaskId: "task-0" });
  });

  it("a task whose only span is its root is completed at once", () => {
    const path = emptyPath(TASK);
    const p = placeActions(path, [root({ receivedAtMs: T0 + 91 })], WIDE);
    expect(p.previousPhase).toBeUndefined();
    expect(path.facts).toMatchObject({ phase: "completed", completedAtMs: T0 + 91, firstSeenMs: T0 + 91 });
  });
});

describe("placeActions: facets and credentials", () => {
  it("facetsOf names agent, tool, data, environment and destination (address, else the URL's host)", () => {
    expect(
      facetsOf(
        action(span(1), {
          tool: { name: "email.send" },
          dataClassification: "confidential",
          environment: "prod",
          destination: { address: "smtp.acme.example", url: "https://ignored.example/x" },
        }),
      ),
    ).toEqual(["agent:billing-agent", "tool:email.send", "data:confidential", "env:prod", "dest:smtp.acme.example"]);
    expect(facetsOf(action(span(2), { destination: { url: "https://api.stripe.com:8443/v1/refunds?x=1" } }))).toEqual([
      "agent:billing-agent",
      "dest:api.stripe.com",
    ]);
    // no URL host, no destination facet
    expect(facetsOf(action(span(3), { destination: { url: "not a url" }, agent: {} }))).toEqual([]);
  });

  it("collects each facet and credential once, saying which are new", () => {
    const path = emptyPath(TASK);
    const first = placeActions(
      path,
      [
        action(span(1), { tool: { name: "invoices.read" }, dataClassification: "internal", environment: "prod", credentialId: "lease-1" }),
        action(span(2), {
          startTimeMs: T0 + 1,
          tool: { name: "email.send" },
          destination: { url: "https://smtp.acme.example/send" },
          credentialId: "lease-1",
        }),
      ],
      WIDE,
    );
    expect(first.newFacets).toEqual([
      "agent:billing-agent",
      "tool:invoices.read",
      "data:internal",
      "env:prod",
      "tool:email.send",
      "dest:smtp.acme.example",
    ]);
    expect(first.newCredentials).toEqual(["lease-1"]);

    const second = placeActions(
      path,
      [
        action(span(3), { startTimeMs: T0 + 2, tool: { name: "invoices.read" }, environment: "prod", credentialId: "lease-1" }),
        action(span(4), { startTimeMs: T0 + 3, agent: { id: "helper" }, tool: { name: "crm.lookup" }, credentialId: "lease-2" }),
      ],
      WIDE,
    );
    expect(second.newFacets).toEqual(["agent:helper", "tool:crm.lookup"]);
    expect(second.newCredentials).toEqual(["lease-2"]);

    const third = placeActions(
      path,
      [action(span(5), { startTimeMs: T0 + 4, tool: { name: "email.send" }, credentialId: "lease-2" })],
      WIDE,
    );
    expect(third.newFacets).toEqual([]);
    expect(third.newCredentials).toEqual([]);

    expect([...path.facets].sort()).toEqual([
      "agent:billing-agent",
      "agent:helper",
      "data:internal",
      "dest:smtp.acme.example",
      "env:prod",
      "tool:crm.lookup",
      "tool:email.send",
      "tool:invoices.read",
    ]);
    expect([...path.credentials].sort()).toEqual(["lease-1", "lease-2"]);
  });
});

describe("placeActions: the task's declared scope and intent", () => {
  const S1: TaskScope = { tools: ["invoices.read"], dataCeiling: "internal" };
  const S2: TaskScope = { tools: ["shell.exec"] };

  it("the first declared scope wins; when it arrives on a later batch every earlier step is re-evaluated", () => {
    const path = emptyPath(TASK);
    const a = action(span(1), { startTimeMs: T0 });
    const b = action(span(2), { startTimeMs: T0 + 10 });
    const p1 = placeActions(path, [a, b], WIDE);
    expect(p1.recorded.every((r) => r.step.context === undefined)).toBe(true);

    const c = action(span(3), { startTimeMs: T0 + 20, declaredScope: S1 });
    const p2 = placeActions(path, [c], WIDE);
    expect(p2.factsChanged).toBe(true);
    expect(p2.recorded[0]?.step).toMatchObject({ id: c.id, index: 2, context: { declaredScope: S1 } });
    // the context changed: every step recorded before is looked at again, though none moved
    expect(p2.reevaluate).toEqual([
      { id: a.id, index: 0 },
      { id: b.id, index: 1 },
    ]);
    expect(stepOf(path, a, 0, { reevaluated: true }).context).toEqual({ declaredScope: S1 });

    // a second declaration, even on an earlier span, changes nothing
    const d = action(span(4), { startTimeMs: T0 + 30, declaredScope: S2 });
    const e = action(span(5), { startTimeMs: T0 - 10, declaredScope: S2 });
    const p3 = placeActions(path, [d], WIDE);
    expect(path.facts?.scope).toEqual(S1);
    expect(p3.recorded[0]?.step.context).toEqual({ declaredScope: S1 });
    expect(p3.reevaluate).toEqual([]);
    const p4 = placeActions(path, [e], WIDE);
    expect(path.facts?.scope).toEqual(S1);
    expect(p4.recorded[0]?.step).toMatchObject({ index: 0, context: { declaredScope: S1 } });
    // it re-orders (it landed first) but is not a new context
    expect(p4.reevaluate.map((r) => r.id)).toEqual([a.id, b.id, c.id, d.id]);
  });

  it("within one batch, the declaration of the earliest-starting span wins", () => {
    const path = emptyPath(TASK);
    placeActions(
      path,
      [action(span(2), { startTimeMs: T0 + 10, declaredScope: S2 }), action(span(1), { startTimeMs: T0, declaredScope: S1 })],
      WIDE,
    );
    expect(path.facts?.scope).toEqual(S1);
  });

  it("a declaration that could not be used counts as the first declaration", () => {
    const path = emptyPath(TASK);
    placeActions(path, [action(span(1), { declaredScopeError: "agent.task.scope: not JSON" })], WIDE);
    const p = placeActions(path, [action(span(2), { startTimeMs: T0 + 1, declaredScope: S1 })], WIDE);
    expect(path.facts?.scope).toBeUndefined();
    expect(path.facts?.scopeError).toBe("agent.task.scope: not JSON");
    expect(p.recorded[0]?.step.context).toEqual({ declaredScopeError: "agent.task.scope: not JSON" });
    expect(p.reevaluate).toEqual([]);
  });

  it("an intent arriving later is a new context too", () => {
    const path = emptyPath(TASK);
    const a = action(span(1));
    placeActions(path, [a], WIDE);
    const p = placeActions(path, [action(span(2), { startTimeMs: T0 + 1, intent: "refund order 42" })], WIDE);
    expect(p.reevaluate).toEqual([{ id: a.id, index: 0 }]);
    expect(stepOf(path, a, 0).context).toEqual({ intent: "refund order 42" });
  });
});

describe("placeActions and lineageOf: delegation within a task", () => {
  const ORCH = { id: "orchestrator", name: "Orchestrator", spiffeId: "spiffe://acme.example/agents/orchestrator" };
  const RESEARCH = { id: "research", name: "Research", spiffeId: "spiffe://acme.example/agents/research" };
  const R = "a000000000000001";
  const Q = "a000000000000002";
  const T = "a000000000000003";
  const U = "a000000000000004";
  const orchestratorHop = { taskId: TASK, agentId: ORCH.id, spiffeId: ORCH.spiffeId };

  /** The orchestrator's root span, the research agent's invocation under it, a tool call by research, one by the orchestrator. */
  function spans(times: { r?: number; q?: number; t?: number; u?: number } = {}) {
    const r = action(R, { operation: "invoke_agent", name: "invoke_agent orchestrator", agent: ORCH, startTimeMs: T0 + (times.r ?? 0) });
    const q = action(Q, {
      operation: "invoke_agent",
      name: "invoke_agent research",
      parentSpanId: R,
      agent: RESEARCH,
      startTimeMs: T0 + (times.q ?? 10),
    });
    const t = action(T, { tool: { name: "web.search" }, parentSpanId: Q, agent: RESEARCH, startTimeMs: T0 + (times.t ?? 20) });
    const u = action(U, { tool: { name: "docs.read" }, parentSpanId: R, agent: ORCH, startTimeMs: T0 + (times.u ?? 30) });
    return { r, q, t, u };
  }

  it("a step of an agent invoked by another agent carries that agent as its lineage", () => {
    const { r, q, t, u } = spans();
    const path = emptyPath(TASK);
    const placement = placeActions(path, [t, u, q, r], WIDE);
    const byId = new Map(placement.recorded.map((x) => [x.step.id, x.step]));
    expect(byId.get(t.id)?.lineage).toEqual([orchestratorHop]);
    // research's own invocation is made by the orchestrator
    expect(byId.get(q.id)?.lineage).toEqual([orchestratorHop]);
    // the orchestrator's steps have no one above them
    expect(byId.get(r.id)?.lineage).toBeUndefined();
    expect(byId.get(u.id)?.lineage).toBeUndefined();
    expect(lineageOf(path, T, RESEARCH.id)).toEqual([orchestratorHop]);
    expect(lineageOf(path, U, ORCH.id)).toBeUndefined();
  });

  it("a hop carries the task's declared scope, and a task's own lineage comes first", () => {
    const { r, q, t } = spans();
    const path = emptyPath(TASK);
    const scope: TaskScope = { tools: ["web.search"] };
    placeActions(path, [{ ...r, declaredScope: scope }, q, t], WIDE);
    (path.facts as NonNullable<TaskPath["facts"]>).lineage = [{ taskId: "task-0", agentId: "planner" }];
    expect(lineageOf(path, T, RESEARCH.id)).toEqual([
      { taskId: "task-0", agentId: "planner" },
      { ...orchestratorHop, declaredScope: scope },
    ]);
  });

  it("an agent called back by its delegate is a hop each time the agent changes", () => {
    // orchestrator → research → orchestrator (a tool call by the orchestrator under research)
    const { r, q } = spans();
    const back = action("a000000000000005", { tool: { name: "docs.read" }, parentSpanId: Q, agent: ORCH, startTimeMs: T0 + 40 });
    const path = emptyPath(TASK);
    const p = placeActions(path, [r, q, back], WIDE);
    expect(p.recorded.find((x) => x.step.id === back.id)?.step.lineage).toEqual([
      orchestratorHop,
      { taskId: TASK, agentId: RESEARCH.id, spiffeId: RESEARCH.spiffeId },
    ]);
  });

  it("when the orchestrator's root span arrives after research's steps (parents export last), they are re-evaluated with the lineage", () => {
    const { r, q, t } = spans();
    const path = emptyPath(TASK);
    const actions = new Map([q, t, r].map((a) => [a.id, a]));
    const first = placeActions(path, [t, q], { latenessMs: 30_000 });
    // the agent above research is not known yet
    expect(first.recorded.map((x) => x.step.lineage)).toEqual([undefined, undefined]);

    const second = placeActions(path, [r], { latenessMs: 30_000 });
    expect(second.recorded[0]?.step).toMatchObject({ id: r.id, index: 0 });
    expect(second.recorded[0]?.step.lineage).toBeUndefined();
    expect(second.reevaluate).toEqual([
      { id: q.id, index: 1 },
      { id: t.id, index: 2 },
    ]);
    const again = second.reevaluate.map((x) => stepOf(path, actions.get(x.id) as AgentAction, x.index, { reevaluated: true }));
    expect(again.map((s) => [s.id, s.index, s.reevaluated, s.lineage])).toEqual([
      [q.id, 1, true, [orchestratorHop]],
      [t.id, 2, true, [orchestratorHop]],
    ]);
  });

  it("when a long-running orchestrator's root span arrives after the lateness window, research's steps are still re-evaluated with the lineage", () => {
    // the orchestrator ran for a minute; its root span (exported when it ends) starts long before the newest step
    const { r, q, t, u } = spans({ r: 0, q: 1_000, t: 2_000, u: 60_000 });
    const path = emptyPath(TASK);
    placeActions(path, [t, q, u], { latenessMs: 30_000 });
    const placement = placeActions(path, [r], { latenessMs: 30_000 });
    expect(placement.recorded[0]?.step).toMatchObject({ id: r.id, index: 0, late: true });
    // the lineage of research's steps became known: the detector must look at them again
    const reevaluated = placement.reevaluate.map((x) => x.id);
    expect(reevaluated).toEqual(expect.arrayContaining([q.id, t.id]));
    for (const x of placement.reevaluate) expect(x.index).toBe(positionOf(path, x.id));
    expect(stepOf(path, t, positionOf(path, t.id), { reevaluated: true }).lineage).toEqual([orchestratorHop]);
  });

  it("a parent span that arrives after its child still comes first when they start together", () => {
    const { r } = spans();
    const q = action(Q, { operation: "invoke_agent", parentSpanId: R, agent: RESEARCH, startTimeMs: T0 + 10 });
    // the child's id sorts before the parent's; same start
    const child = action("0000000000000001", { parentSpanId: Q, agent: RESEARCH, startTimeMs: T0 + 10 });
    const path = emptyPath(TASK);
    placeActions(path, [r, q, child], WIDE);
    expect(ids(path)).toEqual([r.id, q.id, child.id]);
  });
});

/** Causal ties when parents arrive last, and at the span clock's resolution. */
describe("placeActions: causal tie-break edge cases", () => {
  // A child recorded before its parent gets depth 1 (parent unknown); the parent, arriving later,
  // would get depth 1 too (its own parent is known at depth 0): it goes above its child instead.
  it("a parent span that arrives in a later batch than its child still comes first when they start together", () => {
    const parent = action("a000000000000002", { operation: "invoke_agent", parentSpanId: "a000000000000001", startTimeMs: T0 + 10 });
    const root = action("a000000000000001", { operation: "invoke_agent", startTimeMs: T0 });
    // the child's id sorts before the parent's; same start
    const child = action("0000000000000001", { parentSpanId: parent.spanId, startTimeMs: T0 + 10 });
    const path = emptyPath(TASK);
    placeActions(path, [root, child], WIDE);
    placeActions(path, [parent], WIDE);
    expect(ids(path)).toEqual([root.id, parent.id, child.id]);
  });

  // ingest gives starts in µs (nsToMs keeps 3 decimals): the depth tie-break must stay below that.
  it("a deep span that started a few microseconds before a shallow one comes first (ingest gives starts in µs)", () => {
    const path = emptyPath(TASK);
    const a = action("b000000000000001", { startTimeMs: T0 });
    const b = action("b000000000000002", { parentSpanId: a.spanId, startTimeMs: T0 });
    const c = action("b000000000000003", { parentSpanId: b.spanId, startTimeMs: T0 });
    const d = action("b000000000000004", { parentSpanId: c.spanId, startTimeMs: T0 }); // depth 3, starts at T0
    const other = action("0000000000000009", { startTimeMs: T0 + 0.002 }); // depth 0, starts 2 µs later
    placeActions(path, [a, b, c, d, other], WIDE);
    expect(ids(path)).toEqual([a.id, b.id, c.id, d.id, other.id]);
  });
});

describe("stepOf: what the path holds before a step", () => {
  it("looks back in path order, not arrival order: a read that arrives late but started first counts for the egress after it", () => {
    const path = emptyPath(TASK);
    const egress = action(span(0x51), { startTimeMs: T0 + 20_000, dataClassification: "internal" });
    const first = placeActions(path, [egress], WIDE);
    expect(first.recorded[0]?.step.before).toEqual({ stepsLastMinute: 0, elapsedMs: 0, agentSteps: 0, agentStepsLastMinute: 0 });
    const read = action(span(0x52), { startTimeMs: T0, dataClassification: "confidential" });
    const second = placeActions(path, [read], WIDE);
    expect(second.reevaluate).toEqual([{ id: egress.id, index: 1 }]);
    const again = stepOf(path, egress, 1, { reevaluated: true });
    expect(again.before).toEqual({
      maxDataClassification: "confidential",
      stepsLastMinute: 1,
      elapsedMs: 20_000,
      agentSteps: 1,
      agentStepsLastMinute: 1,
    });
    // the read itself has nothing before it
    expect(second.recorded[0]?.step.before).toEqual({ stepsLastMinute: 0, elapsedMs: 0, agentSteps: 0, agentStepsLastMinute: 0 });
  });

  it("counts only the earlier steps that started within the minute before, in all and of the step's own agent", () => {
    const path = emptyPath(TASK);
    // a lead (even steps) and a worker (odd steps) in one task
    const steps = [0, 10_000, 50_000, 65_000, 70_000].map((t, i) =>
      action(span(0x60 + i), { startTimeMs: T0 + t, agent: { id: i % 2 === 0 ? "lead" : "worker" } }),
    );
    placeActions(path, steps, WIDE);
    const last = steps[4] as AgentAction;
    expect(stepOf(path, last, 4).before).toEqual({ stepsLastMinute: 3, elapsedMs: 70_000, agentSteps: 2, agentStepsLastMinute: 1 });
    const worker = steps[3] as AgentAction;
    expect(stepOf(path, worker, 3).before).toMatchObject({ stepsLastMinute: 2, agentSteps: 1, agentStepsLastMinute: 1 });
  });
});
