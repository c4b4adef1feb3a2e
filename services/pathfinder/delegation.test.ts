import { describe, expect, it } from "vitest";
import { AgentAction, type TaskScope } from "../../schemas/action.js";
import { AgentProfile } from "../../schemas/policy.js";
import { type Hop, Step } from "../../schemas/step.js";
import type { Policy } from "../detector/policy.js";
import { evaluateStep } from "../detector/rules.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { recordActions } from "./pathfinder.js";
import { TaskStore } from "./task-store.js";

const T0 = 1_760_000_000_000;
const NOW = T0 + 60_000;
const TRACE_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
const TRACE_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
const TRACE_C = "ccccccccccccccccccccccccccccccc3";

const ORCH = { id: "orchestrator", name: "Orchestrator", spiffeId: "spiffe://acme.example/agents/orchestrator" };
const RESEARCH = { id: "research", name: "Research", spiffeId: "spiffe://acme.example/agents/research" };
const WRITER = { id: "writer", name: "Writer", spiffeId: "spiffe://acme.example/agents/writer" };

/** A's declared scope: narrower than the orchestrator's profile (no report.write). */
const SCOPE_A: TaskScope = { tools: ["web.search", "docs.read"] };
/** B's scope, declared late. */
const SCOPE_B: TaskScope = { tools: ["docs.read"] };

const policy: Policy = {
  version: "delegation-test",
  profiles: [
    {
      id: "orchestrator",
      match: { agentIds: [ORCH.id] },
      tools: [
        { name: "web.search", effect: "read" },
        { name: "docs.read", effect: "read" },
        { name: "report.write", effect: "write" },
      ],
      dataCeiling: "internal",
      environments: ["prod"],
    },
    {
      id: "research",
      match: { agentIds: [RESEARCH.id] },
      tools: [
        { name: "web.search", effect: "read" },
        { name: "docs.read", effect: "read" },
        { name: "report.write", effect: "write" },
      ],
      dataCeiling: "confidential",
      environments: ["prod"],
    },
    {
      id: "writer",
      match: { agentIds: [WRITER.id] },
      tools: [
        { name: "web.search", effect: "read" },
        { name: "docs.read", effect: "read" },
        { name: "report.write", effect: "write" },
        { name: "shell.exec", effect: "exec" },
      ],
      dataCeiling: "confidential",
      environments: ["prod"],
    },
  ].map((p) => AgentProfile.parse(p)),
  rules: new Map(),
  redaction: { attributes: [], argumentKeys: [] },
  files: [],
};

let counter = 0;
/** A tool call (or other span) of a task, as ingest emits it. */
function act(taskId: string, traceId: string, agent: AgentAction["agent"], over: Partial<AgentAction> = {}): AgentAction {
  counter++;
  const spanId = over.spanId ?? counter.toString(16).padStart(16, "0");
  const start = over.startTimeMs ?? T0 + counter * 10;
  return AgentAction.parse({
    id: `${traceId}:${spanId}`,
    traceId,
    spanId,
    taskId,
    taskIdSource: "attribute",
    name: `execute_tool ${over.tool?.name ?? "docs.read"}`,
    operation: "execute_tool",
    agent,
    environment: "prod",
    tool: { name: "docs.read" },
    startTimeMs: start,
    endTimeMs: start + 5,
    status: "ok",
    links: [],
    attributes: {},
    receivedAtMs: start + 50,
    ...over,
  });
}

const a = (over: Partial<AgentAction> = {}) => act("task-a", TRACE_A, ORCH, over);
const b = (over: Partial<AgentAction> = {}) => act("task-b", TRACE_B, RESEARCH, { parentTaskId: "task-a", ...over });
const c = (over: Partial<AgentAction> = {}) => act("task-c", TRACE_C, WRITER, { parentTaskId: "task-b", ...over });

const hopA: Hop = { taskId: "task-a", agentId: ORCH.id, spiffeId: ORCH.spiffeId, declaredScope: SCOPE_A };
const hopB: Hop = { taskId: "task-b", agentId: RESEARCH.id, spiffeId: RESEARCH.spiffeId };

const detect = (step: Step) =>
  evaluateStep(Step.parse(step), {
    policy,
    ...(step.context?.declaredScope ? { scope: step.context.declaredScope } : {}),
    now: NOW,
  });

async function chain() {
  const tasks = new TaskStore(new MemoryStore());
  const stepsA = await recordActions(tasks, [a({ declaredScope: SCOPE_A }), a({ tool: { name: "web.search" } })]);
  const stepsB = await recordActions(tasks, [b(), b({ tool: { name: "web.search" } })]);
  const stepsC = await recordActions(tasks, [
    c({ tool: { name: "docs.read" } }),
    c({ tool: { name: "web.search" } }),
    c({ tool: { name: "report.write" } }),
    c({ tool: { name: "shell.exec" } }),
    c({ tool: { name: "docs.read" }, dataClassification: "confidential" }),
  ]);
  return { tasks, stepsA, stepsB, stepsC };
}

describe("delegation across tasks (parentTaskId): lineage", () => {
  it("a three-level chain: each task's steps carry the hops above it, root first, with agent, SPIFFE id and declared scope", async () => {
    const { stepsA, stepsB, stepsC } = await chain();
    expect(stepsA.every((s) => s.lineage === undefined)).toBe(true);
    expect(stepsB.map((s) => s.lineage)).toEqual([[hopA], [hopA]]);
    expect(stepsC).toHaveLength(5);
    for (const s of stepsC) {
      expect(s.lineage).toEqual([hopA, hopB]);
      // the first batch of C: all new, none re-evaluated, numbered in order
      expect(s.reevaluated).toBeUndefined();
      expect(Step.parse(s)).toEqual(s);
    }
    expect(stepsC.map((s) => s.index)).toEqual([0, 1, 2, 3, 4]);
  });

  it("the stored path and the summaries carry the lineage, and each task lists its delegates", async () => {
    const { tasks } = await chain();
    expect((await tasks.path("task-c")).map((s) => s.lineage)).toEqual(Array(5).fill([hopA, hopB]));
    const [sa, sb, sc] = await Promise.all([tasks.summary("task-a", NOW), tasks.summary("task-b", NOW), tasks.summary("task-c", NOW)]);
    expect(sa?.children).toEqual(["task-b"]);
    expect(sa?.lineage).toBeUndefined();
    expect(sa?.scope).toEqual(SCOPE_A);
    expect(sb).toMatchObject({ children: ["task-c"], parentTaskId: "task-a", lineage: [hopA], agentId: RESEARCH.id });
    expect(sc).toMatchObject({ children: [], parentTaskId: "task-b", lineage: [hopA, hopB], agentId: WRITER.id, steps: 5 });
    expect(await tasks.children("task-a")).toEqual(["task-b"]);
    expect(await tasks.children("task-b")).toEqual(["task-c"]);
    expect(await tasks.children("task-c")).toEqual([]);
  });

  it("when B's facts gain a declared scope, C is re-evaluated with it on C's next batch (not before)", async () => {
    const { tasks } = await chain();
    const pathBefore = await tasks.path("task-c");
    // B declares its scope late: B's own steps are re-evaluated at once (a new context)
    const newB = b({ tool: { name: "docs.read" }, declaredScope: SCOPE_B });
    const stepsB = await recordActions(tasks, [newB]);
    expect(stepsB.map((s) => [s.index, s.reevaluated === true, s.context?.declaredScope])).toEqual([
      [0, true, SCOPE_B],
      [1, true, SCOPE_B],
      [2, false, SCOPE_B],
    ]);
    expect((await tasks.facts("task-b"))?.scope).toEqual(SCOPE_B);

    // C has heard nothing yet: its lineage is refreshed only when C itself records a batch
    expect((await tasks.facts("task-c"))?.lineage).toEqual([hopA, hopB]);
    expect(await tasks.path("task-c")).toEqual(pathBefore);

    const newC = c({ tool: { name: "docs.read" } });
    const stepsC = await recordActions(tasks, [newC]);
    // every step of C is emitted again, the new one as new, with B's scope on B's hop
    expect(stepsC).toHaveLength(6);
    expect(stepsC.map((s) => s.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(stepsC.map((s) => s.reevaluated === true)).toEqual([true, true, true, true, true, false]);
    expect(stepsC[5]?.id).toBe(newC.id);
    const hopBScoped = { ...hopB, declaredScope: SCOPE_B };
    for (const s of stepsC) expect(s.lineage).toEqual([hopA, hopBScoped]);
    expect((await tasks.facts("task-c"))?.lineage).toEqual([hopA, hopBScoped]);
    expect((await tasks.summary("task-c", NOW))?.lineage).toEqual([hopA, hopBScoped]);

    // the next batch of C, with nothing new above it, emits only its own step
    const again = await recordActions(tasks, [c({ tool: { name: "docs.read" } })]);
    expect(again.map((s) => [s.index, s.reevaluated])).toEqual([[6, undefined]]);
  });

  it("a delegate recorded before its delegating task learns its lineage on its next batch", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const early = await recordActions(tasks, [b()]);
    expect(early[0]?.lineage).toBeUndefined();
    expect((await tasks.summary("task-b", NOW))?.lineage).toBeUndefined();
    await recordActions(tasks, [a({ declaredScope: SCOPE_A })]);
    // the parent task's children set was written by B's first batch, before A existed
    expect((await tasks.summary("task-a", NOW))?.children).toEqual(["task-b"]);
    const later = await recordActions(tasks, [b({ tool: { name: "web.search" } })]);
    expect(later.map((s) => [s.index, s.reevaluated, s.lineage])).toEqual([
      [0, true, [hopA]],
      [1, undefined, [hopA]],
    ]);
  });
});

describe("delegation across tasks: the detector holds a delegate to every hop (scope.delegation)", () => {
  const byTool = (steps: Step[], tool: string, extra: (s: Step) => boolean = () => true) =>
    steps.find((s) => s.tool?.name === tool && extra(s)) as Step;

  it("raises nothing for a step within every hop's limits", async () => {
    const { stepsC } = await chain();
    expect(detect(byTool(stepsC, "docs.read", (s) => !s.dataClassification))).toEqual([]);
    expect(detect(byTool(stepsC, "web.search"))).toEqual([]);
  });

  it("raises scope.delegation for a tool outside the root task's declared scope, naming the root hop", async () => {
    const { stepsC } = await chain();
    const step = byTool(stepsC, "report.write");
    const findings = detect(step);
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.delegation"]);
    const [f] = findings;
    expect(f).toMatchObject({
      taskId: "task-c",
      agentId: WRITER.id,
      stepIndex: step.index,
      kind: "out_of_scope",
      severity: "high",
      mode: "enforce",
    });
    expect(f?.evidence).toEqual({
      observed: { tool: "report.write" },
      expected: {
        delegatedBy: { taskId: "task-a", agentId: ORCH.id, profile: "orchestrator" },
        limit: { tools: ["web.search", "docs.read"] },
      },
    });
    expect(f?.explanation).toMatch(/writer acts for orchestrator \(in task task-a\)/);
    expect(f?.explanation).toMatch(/declared scope does not/);
  });

  it("raises scope.delegation for a tool outside the root agent's profile (though the delegate's own profile allows it)", async () => {
    const { stepsC } = await chain();
    const findings = detect(byTool(stepsC, "shell.exec"));
    // the writer's own profile allows shell.exec: no scope.tool, only the delegation
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.delegation"]);
    expect(findings[0]?.evidence.expected).toMatchObject({ delegatedBy: { taskId: "task-a", profile: "orchestrator" } });
    expect(findings[0]?.explanation).toMatch(/outside its profile "orchestrator"/);
  });

  it("raises scope.delegation for data above the root agent's ceiling", async () => {
    const { stepsC } = await chain();
    const findings = detect(byTool(stepsC, "docs.read", (s) => s.dataClassification === "confidential"));
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.delegation"]);
    expect(findings[0]?.evidence).toMatchObject({
      observed: { dataClassification: "confidential" },
      expected: { limit: { dataCeiling: "internal" } },
    });
  });

  it("once B declares a narrower scope, C's re-evaluated step outside it is flagged for B's hop", async () => {
    const { tasks, stepsC } = await chain();
    const search = byTool(stepsC, "web.search");
    expect(detect(search)).toEqual([]);
    await recordActions(tasks, [b({ declaredScope: SCOPE_B })]);
    const again = await recordActions(tasks, [c({ tool: { name: "docs.read" } })]);
    const reevaluated = again.find((s) => s.id === search.id) as Step;
    expect(reevaluated.reevaluated).toBe(true);
    const findings = detect(reevaluated);
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.delegation"]);
    expect(findings[0]?.evidence.expected).toMatchObject({ delegatedBy: { taskId: "task-b", agentId: RESEARCH.id, profile: "research" } });
    // the same finding id whenever the step is looked at again: the SOC sees it once
    expect(detect(reevaluated)[0]?.id).toBe(findings[0]?.id);
  });
});

describe("delegation within a task, through the stage", () => {
  it("research's steps recorded before the orchestrator's root span (even past the lateness window) are re-emitted with the lineage and checked against it", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const root = act("task-w", TRACE_A, ORCH, {
      spanId: "1000000000000001",
      operation: "invoke_agent",
      name: "invoke_agent orchestrator",
      startTimeMs: T0,
      endTimeMs: T0 + 120_000,
    });
    delete root.tool;
    const invoke = act("task-w", TRACE_A, RESEARCH, {
      spanId: "1000000000000002",
      parentSpanId: root.spanId,
      operation: "invoke_agent",
      name: "invoke_agent research",
      startTimeMs: T0 + 1_000,
    });
    delete invoke.tool;
    const exec = act("task-w", TRACE_A, RESEARCH, {
      spanId: "1000000000000003",
      parentSpanId: invoke.spanId,
      tool: { name: "shell.exec" },
      startTimeMs: T0 + 2_000,
    });
    const later = act("task-w", TRACE_A, ORCH, { spanId: "1000000000000004", parentSpanId: root.spanId, startTimeMs: T0 + 90_000 });

    const first = await recordActions(tasks, [exec, invoke, later], 30_000);
    expect(first.map((s) => s.lineage)).toEqual([undefined, undefined, undefined]);
    // research runs shell.exec: outside research's own profile too, but no delegation known yet
    expect(detect(first[1] as Step).map((f) => f.ruleId)).toEqual(["scope.tool"]);

    // the root span (exported last) started 90 s before the newest step: late, but it tells who delegated
    const second = await recordActions(tasks, [root], 30_000);
    expect(second[0]).toMatchObject({ id: root.id, index: 0, late: true });
    const again = second.find((s) => s.id === exec.id) as Step;
    expect(again).toMatchObject({
      index: 2,
      reevaluated: true,
      lineage: [{ taskId: "task-w", agentId: ORCH.id, spiffeId: ORCH.spiffeId }],
    });
    expect(
      detect(again)
        .map((f) => f.ruleId)
        .sort(),
    ).toEqual(["scope.delegation", "scope.tool"]);
    expect((await tasks.summary("task-w", NOW))?.status).toBe("completed");
  });
});

describe("delegation across tasks by span references (no parentTaskId)", () => {
  it("a task whose span links to a span already recorded in another task is that task's delegate", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const handoff = a({ declaredScope: SCOPE_A, tool: { name: "queue.send" } });
    await recordActions(tasks, [handoff]);
    // the consumer of the hand-off: its own task and trace, a span link back to the sender
    const [first] = await recordActions(tasks, [
      act("task-q", TRACE_B, RESEARCH, { links: [{ traceId: handoff.traceId, spanId: handoff.spanId }] }),
    ]);
    // the link is found with the batch's writes; the steps are then emitted with the lineage
    const steps = await tasks.path("task-q");
    expect(steps.map((s) => s.lineage)).toEqual([[hopA]]);
    expect(first?.lineage).toEqual([hopA]);
    expect((await tasks.facts("task-q"))?.parentTaskId).toBe("task-a");
    expect(await tasks.children("task-a")).toEqual(["task-q"]);
    // held to A's scope: web.search is in it, report.write is not
    const later = await recordActions(tasks, [act("task-q", TRACE_B, RESEARCH, { tool: { name: "report.write" } })]);
    expect(later.map((s) => s.lineage)).toEqual([[hopA]]);
    expect(detect(later[0] as Step).map((f) => f.ruleId)).toEqual(["scope.delegation"]);
  });

  it("a span whose parent span was recorded in another task (same trace) makes its task a delegate", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const invoke = a({ operation: "invoke_agent", name: "invoke_agent research", tool: undefined });
    await recordActions(tasks, [invoke]);
    await recordActions(tasks, [act("task-r", TRACE_A, RESEARCH, { parentSpanId: invoke.spanId })]);
    expect((await tasks.facts("task-r"))?.parentTaskId).toBe("task-a");
    expect((await tasks.path("task-r"))[0]?.lineage?.map((h) => h.taskId)).toEqual(["task-a"]);
  });

  it("a reference to a span of the task itself, or to one never recorded, makes no delegation", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const root = a({ operation: "invoke_agent", tool: undefined });
    await recordActions(tasks, [root, a({ parentSpanId: root.spanId, links: [{ traceId: TRACE_C, spanId: "00000000000000ff" }] })]);
    expect((await tasks.facts("task-a"))?.parentTaskId).toBeUndefined();
    expect((await tasks.path("task-a")).every((s) => s.lineage === undefined)).toBe(true);
  });
});
