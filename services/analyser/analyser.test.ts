import { describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import { TOPICS } from "../../schemas/topics.js";
import { driftPolicy, driftTasks, recordWorkload } from "../../test/support/drift-workload.js";
import { detectorStage } from "../detector/detector.js";
import { loadPolicy } from "../detector/policy.js";
import { ingestStage } from "../ingest/ingest.js";
import { parseAction, pathfinderStage } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { BadInput, type Emit } from "../runtime/stage.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { analyserStage } from "./analyser.js";

const NOW = 1_770_000_000_000;
const message = (topic: string, value: string | Buffer, offset: number): BusMessage => ({
  topic,
  partition: 0,
  offset: String(offset),
  key: null,
  value: Buffer.isBuffer(value) ? value : Buffer.from(value),
  headers: {},
  timestampMs: 0,
});
const noReject = () => {
  throw new Error("nothing here is bad input");
};
const text = (e: Emit) => String(e.message.value);
const on = (emits: Emit[], topic: string) => emits.filter((e) => e.topic === topic).map(text);

/** The drift workload's actions, in the batches its exporter sent (several tasks, delegation, late roots). */
async function actionBatches(): Promise<AgentAction[][]> {
  const ingest = ingestStage("", () => NOW);
  const batches: AgentAction[][] = [];
  for (const [i, bytes] of (await recordWorkload(driftTasks("analyser"), "protobuf")).entries()) {
    const m = message(TOPICS.otlpSpans, Buffer.from(bytes), i);
    const emits = await ingest.handle([{ message: m, value: ingest.parse(m) }], noReject);
    batches.push(emits.flatMap((e) => [parseAction(message(TOPICS.actions, text(e), 0))].flat()));
  }
  return batches;
}

describe("analyser: the pathfinder and the detector in one processor", () => {
  it("writes the same findings and task events as the pathfinder and the detector apart, and the same steps without their look back", async () => {
    const policy = loadPolicy(driftPolicy());
    const batches = await actionBatches();
    expect(batches.flat().length).toBeGreaterThan(20);

    // apart: the pathfinder's steps go through JSON, and the detector parses and validates them
    const apartStore = new TaskStore(new MemoryStore());
    const pathfinder = pathfinderStage("", apartStore);
    const detector = detectorStage("", { policy: () => policy, tasks: apartStore, now: () => NOW });
    const apart: Emit[] = [];
    for (const actions of batches) {
      const steps = await pathfinder.handle(
        actions.map((value) => ({ message: message(TOPICS.actions, "", 0), value })),
        noReject,
      );
      apart.push(...steps);
      const parsed = steps.flatMap((e, i) => {
        const m = message(TOPICS.steps, text(e), i);
        return [detector.parse(m)].flat().map((value) => ({ message: m, value }));
      });
      apart.push(...(await detector.handle(parsed, noReject)));
    }

    // together: one stage, the steps handed over in process
    const togetherStore = new TaskStore(new MemoryStore());
    const analyser = analyserStage(
      "",
      pathfinderStage("", togetherStore),
      detectorStage("", { policy: () => policy, tasks: togetherStore, now: () => NOW }),
    );
    expect(analyser.input).toBe(TOPICS.actions);
    const together: Emit[] = [];
    for (const actions of batches) {
      together.push(
        ...(await analyser.handle(
          actions.map((value) => ({ message: message(TOPICS.actions, "", 0), value })),
          noReject,
        )),
      );
    }

    for (const topic of [TOPICS.findings, TOPICS.lifecycle]) expect(on(together, topic), topic).toEqual(on(apart, topic));
    // the steps: the same, but for what the path held before each (only a detector reads it, and this one had it in memory)
    const withoutLookBack = (json: string) => {
      const { before, ...rest } = JSON.parse(json) as { before?: unknown };
      return { rest, before };
    };
    const apartSteps = on(apart, TOPICS.steps).map(withoutLookBack);
    const togetherSteps = on(together, TOPICS.steps).map(withoutLookBack);
    expect(togetherSteps.map((s) => s.rest)).toEqual(apartSteps.map((s) => s.rest));
    expect(togetherSteps.every((s) => s.before === undefined)).toBe(true);
    expect(apartSteps.every((s) => s.before !== undefined)).toBe(true);
    // a detector reading the analyser's steps would judge them blind: it refuses them (dead letter)
    const slim = message(TOPICS.steps, text(together.find((e) => e.topic === TOPICS.steps) as Emit), 0);
    expect(() => detector.parse(slim)).toThrow(BadInput);
    expect(() => detector.parse(slim)).toThrow(/needs the pathfinder run apart/);
    // the workload's drifts are there (not two empty lists agreeing)
    const rules = new Set(on(together, TOPICS.findings).map((f) => (JSON.parse(f) as { ruleId: string }).ruleId));
    for (const rule of ["scope.tool", "flow.egress_after_sensitive_read", "provenance.untrusted_argument", "scope.delegation"])
      expect(rules, rule).toContain(rule);
    expect(on(together, TOPICS.lifecycle).length).toBeGreaterThan(0);
  });

  it("with DRIFTWATCH_STEPS_OUTPUT=false, writes no step and the same findings and task events", async () => {
    const policy = loadPolicy(driftPolicy());
    const batches = await actionBatches();
    const run = async (writeSteps: boolean) => {
      const store = new TaskStore(new MemoryStore());
      const analyser = analyserStage(
        "",
        pathfinderStage("", store),
        detectorStage("", { policy: () => policy, tasks: store, now: () => NOW }),
        { writeSteps },
      );
      const out: Emit[] = [];
      for (const actions of batches)
        out.push(
          ...(await analyser.handle(
            actions.map((value) => ({ message: message(TOPICS.actions, "", 0), value })),
            noReject,
          )),
        );
      return out;
    };
    const [all, off] = [await run(true), await run(false)];
    expect(on(off, TOPICS.steps)).toEqual([]);
    expect(on(all, TOPICS.steps).length).toBeGreaterThan(0);
    for (const topic of [TOPICS.findings, TOPICS.lifecycle]) expect(on(off, topic), topic).toEqual(on(all, topic));
    expect(on(off, TOPICS.findings).length).toBeGreaterThan(0);
  });

  it("forgets the paths it holds when its partitions move", async () => {
    const store = new TaskStore(new MemoryStore());
    const pathfinder = pathfinderStage("", store);
    const analyser = analyserStage("", pathfinder, detectorStage("", { policy: () => loadPolicy(driftPolicy()), tasks: store }));
    // a task's tool calls without its root span: the task is open (a completed task's path is let go)
    const [first] = await actionBatches();
    const open = (first as AgentAction[]).filter((a) => a.operation !== "invoke_agent");
    expect(open.length).toBeGreaterThan(0);
    await analyser.handle(
      open.map((value) => ({ message: message(TOPICS.actions, "", 0), value })),
      noReject,
    );
    expect(pathfinder.cachedTasks).toBeGreaterThan(0);
    analyser.onRebalance?.();
    expect(pathfinder.cachedTasks).toBe(0);
  });
});
