import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentAction, TaskScope } from "../../schemas/action.js";
import { toolCall } from "../../test/support/actions.js";
import { consoleApi } from "../../test/support/console-api.js";
import { loadPolicy } from "../detector/policy.js";
import { wider } from "../detector/scope.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import { MemoryStore } from "../runtime/store/memory-store.js";

const TRACE = "5bf92f3577b34da6a3ce929d0e0e4737";
const T0 = Date.now() - 60_000;
const policy = loadPolicy("policies");
const billing = policy.profiles.find((p) => p.id === "billing-agent");
if (!billing) throw new Error("policies/ has no billing-agent profile");
const [inProfile, alsoInProfile] = billing.tools.map((t) => t.name) as [string, string];

let n = 0;
const act = (taskId: string, over: Partial<AgentAction> = {}): AgentAction => {
  n++;
  return toolCall({ taskId, traceId: TRACE, agent: { id: "billing-agent" }, tool: { name: inProfile }, startTimeMs: T0 + n, ...over });
};

describe("scope attenuation (wider)", () => {
  it("names what goes beyond the limit; fields left out inherit it", () => {
    const limit = {
      tools: ["a", "b"],
      dataCeiling: "internal" as const,
      environments: ["prod"],
      egress: ["*.stripe.com", "smtp.acme.example"],
    };
    expect(wider({}, limit)).toEqual([]);
    expect(
      wider({ tools: ["a"], dataCeiling: "public", environments: ["prod"], egress: ["api.stripe.com", "*.eu.stripe.com"] }, limit),
    ).toEqual([]);
    expect(
      wider({ tools: ["a", "c"], dataCeiling: "restricted", environments: ["dev"], egress: ["*.example", "evil.example"] }, limit),
    ).toEqual([
      'tools: "c" is not allowed',
      "dataCeiling: restricted is above internal",
      'environments: "dev" is not allowed',
      'egress: "*.example" is not allowed',
      'egress: "evil.example" is not allowed',
    ]);
    // a wildcard is covered only by an equal or broader wildcard
    expect(wider({ egress: ["*.stripe.com"] }, { egress: ["api.stripe.com"] })).toEqual(['egress: "*.stripe.com" is not allowed']);
  });
});

describe("scope registry API", () => {
  const store = new MemoryStore();
  const tasks = new TaskStore(store);
  const app = consoleApi(store, { tasks, policy: () => policy });
  beforeAll(async () => {
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await store.close();
  });
  const put = (taskId: string, body: unknown, query = "") =>
    app.inject({ method: "PUT", url: `/api/v1/tasks/${taskId}/scope${query}`, payload: body as object });

  it("registers a scope before the task runs (201), narrows it later (200), and refuses to widen it (422)", async () => {
    const first = await put("t-reg", { tools: [inProfile, alsoInProfile] }, "?agent=billing-agent");
    expect(first.statusCode).toBe(201);
    expect(first.json()).toEqual({ taskId: "t-reg", scope: { tools: [inProfile, alsoInProfile] }, profile: "billing-agent" });
    expect((await put("t-reg", { tools: [inProfile] })).statusCode).toBe(200);
    const widen = await put("t-reg", { tools: [inProfile, alsoInProfile] });
    expect(widen.statusCode).toBe(422);
    expect(widen.json().details).toEqual([`beyond the scope registered before: tools: "${alsoInProfile}" is not allowed`]);
    expect((await app.inject({ method: "GET", url: "/api/v1/tasks/t-reg/scope" })).json()).toEqual({
      taskId: "t-reg",
      registered: { tools: [inProfile] },
    });
  });

  it("refuses a scope beyond the agent's profile, known from the task's spans", async () => {
    await recordActions(tasks, [act("t-prof")]);
    const res = await put("t-prof", { tools: ["shell.exec"], dataCeiling: "restricted" });
    expect(res.statusCode).toBe(422);
    expect(res.json().details).toEqual(expect.arrayContaining(['beyond profile "billing-agent": tools: "shell.exec" is not allowed']));
    expect(await tasks.registeredScope("t-prof")).toBeUndefined();
  });

  it("remembers the agent a first registration named: a later one is checked against its profile, and may not name another agent", async () => {
    expect((await put("t-agent", { tools: [inProfile] }, "?agent=billing-agent")).statusCode).toBe(201);
    // no ?agent= this time, and no span yet: still the billing agent's profile (and the scope before)
    const wider = await put("t-agent", { tools: [inProfile], dataCeiling: "restricted" });
    expect(wider.statusCode).toBe(422);
    expect(wider.json().details).toEqual(expect.arrayContaining([expect.stringMatching(/^beyond profile "billing-agent": /)]));
    const other = await put("t-agent", { tools: [inProfile] }, "?agent=some-other-agent");
    expect(other.statusCode).toBe(409);
    expect(other.json().error).toBe("task t-agent is agent billing-agent's, not some-other-agent's");
    // the task's spans say whose it is, whatever a registrant claims
    await recordActions(tasks, [act("t-spans")]);
    expect((await put("t-spans", { tools: [inProfile] }, "?agent=some-other-agent")).statusCode).toBe(409);
  });

  it("refuses a delegate's scope beyond its delegating task's", async () => {
    await recordActions(tasks, [act("t-parent", { declaredScope: { tools: [inProfile] } })]);
    await recordActions(tasks, [act("t-child", { parentTaskId: "t-parent" })]);
    const res = await put("t-child", { tools: [alsoInProfile] });
    expect(res.statusCode).toBe(422);
    expect(res.json().details).toEqual([`beyond delegating task t-parent: tools: "${alsoInProfile}" is not allowed`]);
    expect((await put("t-child", { tools: [inProfile] })).statusCode).toBe(201);
  });

  it("rejects a malformed scope with 400 and an unknown task's scope read with 404", async () => {
    expect((await put("t-bad", { tools: "all" })).statusCode).toBe(400);
    expect((await put("t-bad", { tools: [], extra: 1 })).statusCode).toBe(400);
    expect((await put("t-bad", { dataCeiling: "topsecret" })).statusCode).toBe(400);
    expect((await app.inject({ method: "GET", url: "/api/v1/tasks/nope/scope" })).statusCode).toBe(404);
  });

  it("the pathfinder puts a registered scope on the task's steps, over the scope its spans declare", async () => {
    expect((await put("t-path", { tools: [inProfile] }, "?agent=billing-agent")).statusCode).toBe(201);
    const steps = await recordActions(tasks, [act("t-path", { declaredScope: { tools: [inProfile, alsoInProfile] } })]);
    expect(steps[0]?.context?.declaredScope).toEqual({ tools: [inProfile] });
    const scope = (await app.inject({ method: "GET", url: "/api/v1/tasks/t-path/scope" })).json();
    expect(scope.inForce).toEqual({ scope: { tools: [inProfile] }, source: "registry" });
  });

  it("a scope registered while the task runs re-evaluates its steps with it", async () => {
    const store2 = new MemoryStore();
    // look for a registered scope with every batch (by default at most once a second)
    const tasks2 = new TaskStore(store2, { registryCheckMs: 0 });
    const { pathfinderStage } = await import("../pathfinder/pathfinder.js");
    const stage = pathfinderStage("", tasks2, { latenessMs: 30_000, cachedTasks: 100 });
    const message = { topic: "", partition: 0, offset: "0", key: null, value: Buffer.alloc(0), headers: {}, timestampMs: 0 };
    const run = async (actions: AgentAction[]) =>
      (
        await stage.handle(
          actions.map((value) => ({ message, value })),
          () => undefined,
        )
      ).map((e) => JSON.parse(String(e.message.value)));
    const first = await run([act("t-live"), act("t-live")]);
    expect(first.every((s) => s.context === undefined)).toBe(true);
    const narrowed: TaskScope = { tools: [inProfile] };
    await tasks2.registerScope("t-live", narrowed);
    const next = await run([act("t-live")]);
    // every step, old and new, with the registered scope; the old ones re-evaluated
    expect(next.map((s) => [s.index, s.reevaluated, s.context?.declaredScope])).toEqual([
      [0, true, narrowed],
      [1, true, narrowed],
      [2, undefined, narrowed],
    ]);
  });
});
