import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentAction, TaskScope } from "../../schemas/action.js";
import { Step } from "../../schemas/step.js";
import { toolCall } from "../../test/support/actions.js";
import { consoleApi } from "../../test/support/console-api.js";
import { loadPolicy } from "../detector/policy.js";
import { evaluateStep } from "../detector/rules.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore, type TaskSummary } from "../pathfinder/task-store.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { FindingLog } from "./read-model.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
/** Task status depends on the time the API reads it: activity is placed relative to now. */
const NOW = Date.now();
const SCOPE: TaskScope = { tools: ["web.search"] };

const AGENTS = {
  orchestrator: { id: "orchestrator", spiffeId: "spiffe://acme.example/agents/orchestrator" },
  research: { id: "research", spiffeId: "spiffe://acme.example/agents/research" },
  writer: { id: "writer" },
};

function act(taskId: string, agent: AgentAction["agent"], receivedAtMs: number, over: Partial<AgentAction> = {}): AgentAction {
  const start = receivedAtMs - 1_000;
  return toolCall({
    taskId,
    traceId: TRACE,
    agent,
    tool: { name: "web.search" },
    startTimeMs: start,
    endTimeMs: start + 10,
    receivedAtMs,
    ...over,
  });
}

const rootOf = (taskId: string, agent: AgentAction["agent"], receivedAtMs: number, over: Partial<AgentAction> = {}) => {
  const root = act(taskId, agent, receivedAtMs, {
    operation: "invoke_agent",
    name: `invoke_agent ${agent.id}`,
    startTimeMs: receivedAtMs - 5_000,
    ...over,
  });
  delete root.tool;
  return root;
};

let app: FastifyInstance;
let tasks: TaskStore;
let findings: FindingLog;

/**
 * The tasks, by last activity (newest first):
 *   fresh   research      started  (1 step)             delegated by busy     NOW - 10 s
 *   busy    research      active   (2 steps)            delegated by done     NOW - 20 s
 *   killed  writer        revoked  (2 steps)                                  NOW - 40 s
 *   done    orchestrator  completed (tool + root span)  declares SCOPE        NOW - 60 s
 *   closed  writer        completed, then revoked                             NOW - 90 s
 *   stale   orchestrator  idle     (2 steps, 1 h ago)                         NOW - 1 h
 */
beforeAll(async () => {
  const store = new MemoryStore();
  tasks = new TaskStore(store);
  findings = new FindingLog(store);
  await recordActions(tasks, [act("stale", AGENTS.orchestrator, NOW - 3_600_500), act("stale", AGENTS.orchestrator, NOW - 3_600_000)]);
  await recordActions(tasks, [act("closed", AGENTS.writer, NOW - 90_500), rootOf("closed", AGENTS.writer, NOW - 90_000)]);
  await tasks.markRevoked("closed", { atMs: NOW - 85_000, findingId: "f-closed" });
  await recordActions(tasks, [
    act("done", AGENTS.orchestrator, NOW - 61_000, { declaredScope: SCOPE }),
    rootOf("done", AGENTS.orchestrator, NOW - 60_000),
  ]);
  await recordActions(tasks, [act("killed", AGENTS.writer, NOW - 41_000), act("killed", AGENTS.writer, NOW - 40_000)]);
  await tasks.markRevoked("killed", { atMs: NOW - 39_000, findingId: "f-killed" });
  await recordActions(tasks, [
    act("busy", AGENTS.research, NOW - 21_000, { parentTaskId: "done" }),
    act("busy", AGENTS.research, NOW - 20_000, { parentTaskId: "done" }),
  ]);
  const [freshStep] = await recordActions(tasks, [
    act("fresh", AGENTS.research, NOW - 10_000, { parentTaskId: "busy", tool: { name: "shell.exec" } }),
  ]);
  // a finding on fresh's step, as the detector would raise it (the shipped policy has no research profile)
  for (const f of evaluateStep(Step.parse(freshStep), { policy: loadPolicy("policies"), now: NOW })) await findings.record(f);

  app = consoleApi(store, { tasks, findings });
});

afterAll(async () => {
  await app?.close();
});

async function list(
  query: string,
): Promise<{ tasks: TaskSummary[]; total: number; totalIsLowerBound?: true; offset: number; limit: number }> {
  const res = await app.inject({ method: "GET", url: `/api/v1/tasks${query}` });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}
const idsOf = async (query: string) => (await list(query)).tasks.map((t) => t.taskId);

describe("GET /api/v1/tasks", () => {
  it("lists every task, most recently active first, with a total", async () => {
    const body = await list("");
    expect(body.tasks.map((t) => [t.taskId, t.status])).toEqual([
      ["fresh", "started"],
      ["busy", "active"],
      ["killed", "revoked"],
      ["done", "completed"],
      ["closed", "revoked"],
      ["stale", "idle"],
    ]);
    expect(body).toMatchObject({ total: 6, offset: 0, limit: 50 });
  });

  it("pages", async () => {
    const body = await list("?offset=1&limit=2");
    expect(body.tasks.map((t) => t.taskId)).toEqual(["busy", "killed"]);
    expect(body).toMatchObject({ total: 6, offset: 1, limit: 2 });
  });

  it("filters by status: each status gives exactly its tasks", async () => {
    expect(await idsOf("?status=active")).toEqual(["busy"]);
    expect(await idsOf("?status=started")).toEqual(["fresh"]);
    expect(await idsOf("?status=idle")).toEqual(["stale"]);
    expect(await idsOf("?status=revoked")).toEqual(["killed", "closed"]);
    const completed = await list("?status=completed");
    expect(completed.tasks.map((t) => t.taskId)).toEqual(["done"]);
  });

  it("every task listed under a status has that status", async () => {
    for (const status of ["started", "active", "idle", "completed", "revoked"]) {
      const body = await list(`?status=${status}`);
      for (const t of body.tasks) expect({ taskId: t.taskId, status: t.status }).toEqual({ taskId: t.taskId, status });
    }
  });

  it("filters by agent, alone and with a status", async () => {
    expect(await idsOf("?agent=research")).toEqual(["fresh", "busy"]);
    expect(await idsOf("?agent=orchestrator")).toEqual(["done", "stale"]);
    expect(await idsOf("?agent=research&status=active")).toEqual(["busy"]);
    expect(await idsOf("?agent=orchestrator&status=idle")).toEqual(["stale"]);
    expect(await idsOf("?agent=nobody")).toEqual([]);
  });

  it("filters by last activity, in epoch ms or ISO 8601, bounds included", async () => {
    expect(await idsOf(`?from=${NOW - 25_000}&to=${NOW - 5_000}`)).toEqual(["fresh", "busy"]);
    expect(await idsOf(`?from=${NOW - 20_000}&to=${NOW - 10_000}`)).toEqual(["fresh", "busy"]);
    expect(await idsOf(`?from=${NOW - 19_999}&to=${NOW - 10_001}`)).toEqual([]);
    const iso = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
    expect(await idsOf(`?from=${iso(NOW - 25_000)}&to=${iso(NOW - 5_000)}`)).toEqual(["fresh", "busy"]);
    // an ISO time with an offset
    const withOffset = new Date(NOW - 65_000 + 2 * 3_600_000).toISOString().replace("Z", "+02:00");
    expect(await idsOf(`?from=${encodeURIComponent(withOffset)}`)).toEqual(["fresh", "busy", "killed", "done"]);
    expect(await idsOf(`?to=${NOW - 3_000_000}`)).toEqual(["stale"]);
    // with a status and an agent
    expect(await idsOf(`?status=completed&from=${NOW - 70_000}`)).toEqual(["done"]);
    expect(await idsOf(`?agent=research&from=${NOW - 15_000}`)).toEqual(["fresh"]);
  });

  it("gives the number of tasks the filter matches as total, not the page's", async () => {
    const totalOf = async (query: string) => {
      const body = await list(query);
      expect(body.totalIsLowerBound, query).toBeUndefined();
      return body.total;
    };
    expect(await totalOf("?status=revoked")).toBe(2);
    expect(await totalOf("?status=revoked&limit=1")).toBe(2);
    expect(await totalOf("?status=revoked&offset=1&limit=1")).toBe(2);
    expect(await totalOf("?status=revoked&offset=5")).toBe(2);
    expect(await totalOf("?status=active")).toBe(1);
    expect(await totalOf("?status=recorded")).toBe(0);
    expect(await totalOf("?agent=research&limit=1")).toBe(2);
    expect(await totalOf("?agent=orchestrator&status=idle")).toBe(1);
    expect(await totalOf("?agent=nobody")).toBe(0);
    expect(await totalOf(`?from=${NOW - 25_000}&limit=1`)).toBe(2);
    expect(await totalOf(`?from=${NOW - 70_000}&status=completed`)).toBe(1);
    // the page is the filter's, from its offset
    const page = await list("?status=revoked&offset=1&limit=1");
    expect(page.tasks.map((t) => t.taskId)).toEqual(["closed"]);
  });

  it("filters by flagged (has a finding or not), and counts each task's findings", async () => {
    const flagged = await list("?flagged=true");
    expect(flagged.tasks.map((t) => t.taskId)).toEqual(["fresh"]);
    expect(flagged.total).toBe(1);
    expect((flagged.tasks[0] as TaskSummary & { findings: number }).findings).toBeGreaterThan(0);
    const clean = await list("?flagged=false&limit=2");
    expect(clean.tasks.map((t) => t.taskId)).toEqual(["busy", "killed"]);
    expect(clean.total).toBe(5);
    expect(clean.tasks.map((t) => (t as TaskSummary & { findings: number }).findings)).toEqual([0, 0]);
    expect(await idsOf("?flagged=true&agent=orchestrator")).toEqual([]);
    expect(await idsOf("?flagged=true&status=started")).toEqual(["fresh"]);
  });

  it("counts the tasks per status and flagged, for an agent or a window too (GET /api/v1/task-counts)", async () => {
    const counts = async (query: string) => {
      const res = await app.inject({ method: "GET", url: `/api/v1/task-counts${query}` });
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as { total: number; byStatus: Record<string, number>; flagged: number; countedAtMs: number; countedAtIso: string };
    };
    const all = await counts("");
    expect(all).toMatchObject({
      total: 6,
      byStatus: { started: 1, active: 1, idle: 1, completed: 1, revoked: 2, recorded: 0 },
      flagged: 1,
    });
    expect(all.countedAtIso).toBe(new Date(all.countedAtMs).toISOString());
    // each count is what the list's filter gives as its total
    for (const [status, n] of Object.entries(all.byStatus)) expect((await list(`?status=${status}`)).total, status).toBe(n);
    expect((await list("?flagged=true")).total).toBe(all.flagged);
    expect(await counts("?agent=orchestrator")).toMatchObject({ total: 2, byStatus: { completed: 1, idle: 1, started: 0 }, flagged: 0 });
    expect(await counts(`?from=${NOW - 25_000}`)).toMatchObject({ total: 2, byStatus: { started: 1, active: 1 }, flagged: 1 });
    expect((await app.inject({ method: "GET", url: "/api/v1/task-counts?from=yesterday" })).statusCode).toBe(400);
  });

  it("answers 400 for a bad status, time or page", async () => {
    for (const query of [
      "?status=finished",
      "?status=",
      "?from=yesterday",
      "?to=2025-13-01T00:00:00Z",
      "?from=-5",
      "?limit=0",
      "?limit=501",
      "?offset=-1",
      "?flagged=yes",
    ]) {
      const res = await app.inject({ method: "GET", url: `/api/v1/tasks${query}` });
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error, query).toBe("bad request");
    }
    const res = await app.inject({ method: "GET", url: "/api/v1/tasks?status=finished" });
    expect(res.json().details.join("\n")).toMatch(/^status: /m);
  });
});

describe("GET /api/v1/tasks/:id", () => {
  const hopDone = { taskId: "done", agentId: "orchestrator", spiffeId: AGENTS.orchestrator.spiffeId, declaredScope: SCOPE };
  const hopBusy = { taskId: "busy", agentId: "research", spiffeId: AGENTS.research.spiffeId };

  it("shows a delegate's lineage (root first) and the tree below it", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/tasks/fresh" });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.task).toMatchObject({ taskId: "fresh", status: "started", parentTaskId: "busy", steps: 1 });
    expect(body.delegation).toEqual({
      lineage: [hopDone, hopBusy],
      tree: { taskId: "fresh", agentId: "research", status: "started", steps: 1, children: [] },
    });
    expect(body.path).toHaveLength(1);
    expect(body.path[0].lineage).toEqual([hopDone, hopBusy]);
    // the step's findings by id
    expect(body.findings.length).toBeGreaterThan(0);
    expect(body.path[0].findings).toEqual(body.findings.map((f: { id: string }) => f.id));
  });

  it("shows the whole delegation tree below the root task, and no lineage above it", async () => {
    const body = (await app.inject({ method: "GET", url: "/api/v1/tasks/done" })).json();
    expect(body.delegation).toEqual({
      lineage: [],
      tree: {
        taskId: "done",
        agentId: "orchestrator",
        status: "completed",
        steps: 2,
        children: [
          {
            taskId: "busy",
            agentId: "research",
            status: "active",
            steps: 2,
            children: [{ taskId: "fresh", agentId: "research", status: "started", steps: 1, children: [] }],
          },
        ],
      },
    });
    expect(body.task).toMatchObject({ taskId: "done", status: "completed", scope: SCOPE, children: ["busy"] });
    expect(body.path.map((s: { index: number }) => s.index)).toEqual([0, 1]);
    expect(body.findings).toEqual([]);
  });

  it("shows the middle task's single hop and its one child", async () => {
    const body = (await app.inject({ method: "GET", url: "/api/v1/tasks/busy" })).json();
    expect(body.delegation.lineage).toEqual([hopDone]);
    expect(body.delegation.tree.children.map((c: { taskId: string }) => c.taskId)).toEqual(["fresh"]);
  });

  it("answers 404 for an unknown task", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/tasks/nope" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: "no task nope" });
  });
});
