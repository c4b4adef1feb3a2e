import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaskEvent } from "../../schemas/lifecycle.js";
import { ResponsePolicy } from "../../schemas/policy.js";
import type { Revocation } from "../../schemas/revocation.js";
import { Step } from "../../schemas/step.js";
import { agentAction, toolCall } from "../../test/support/actions.js";
import { consoleApi } from "../../test/support/console-api.js";
import { lifecycleOf } from "../detector/lifecycle.js";
import { loadPolicy, type Policy } from "../detector/policy.js";
import { evaluateStep } from "../detector/rules.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import { Approvals } from "../revoker/approvals.js";
import { RecordOnlyCredentialStore } from "../revoker/credential-stores/record-only.js";
import { CredentialStores } from "../revoker/credential-stores/stores.js";
import { RevocationLedger } from "../revoker/ledger.js";
import { LifecycleResponder } from "../revoker/lifecycle.js";
import { AgentQuarantine } from "../revoker/quarantine.js";
import { Responder } from "../revoker/revoker.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { FindingLog, LifecycleLog } from "./read-model.js";

const TRACE = "5bf92f3577b34da6a3ce929d0e0e4731";
const T0 = Date.now() - 60_000;
const AGENT = { id: "billing-agent" };

const lifecyclePolicy: Policy = {
  version: "findings-api-test",
  profiles: [],
  rules: new Map(),
  redaction: { attributes: [], argumentKeys: [] },
  responses: ResponsePolicy.parse({}),
  files: [],
};

let app: FastifyInstance;
let taskEnd: TaskEvent;
let endRevocations: Revocation[];
let driftFindingId: string;

/**
 * A task that completes (its root span ends) with a credential bound to it: the detector sees
 * its end, the revoker revokes the credential naming the end's event (no finding: completing
 * is no drift), and the console, fed both topics, must resolve that id. Beside it a drifting
 * task whose finding resolves as a finding.
 */
beforeAll(async () => {
  const store = new MemoryStore();
  const tasks = new TaskStore(store);
  const findings = new FindingLog(store);
  const lifecycle = new LifecycleLog(store);
  const ledger = new RevocationLedger(store);

  const root = agentAction({
    taskId: "t-done",
    traceId: TRACE,
    spanId: "00000000000000a1",
    agent: AGENT,
    name: "invoke_agent billing-agent",
    operation: "invoke_agent",
    startTimeMs: T0,
    endTimeMs: T0 + 5_000,
    receivedAtMs: T0 + 5_100,
  });
  const steps = await recordActions(tasks, [
    toolCall({
      taskId: "t-done",
      traceId: TRACE,
      spanId: "00000000000000a2",
      parentSpanId: "00000000000000a1",
      agent: AGENT,
      credentialId: "vault:lease:db/creds/billing/1",
      startTimeMs: T0 + 1_000,
      endTimeMs: T0 + 1_010,
      receivedAtMs: T0 + 1_100,
    }),
    root,
  ]);
  const events = steps.flatMap((s) => lifecycleOf(Step.parse(s), { policy: lifecyclePolicy, now: T0 + 5_200 }).events);
  const ended = events.find((e) => e.trigger === "task_completed");
  if (!ended) throw new Error(`no task_completed event among ${JSON.stringify(events.map((e) => e.trigger))}`);
  taskEnd = ended;

  const responder = new Responder({
    tasks,
    store,
    stores: new CredentialStores({ default: new RecordOnlyCredentialStore() }),
    ledger,
    approvals: new Approvals(store),
    quarantine: new AgentQuarantine(store),
    policy: () => lifecyclePolicy,
    minSeverity: "high",
  });
  endRevocations = (await new LifecycleResponder({ responder, tasks, store, policy: () => lifecyclePolicy }).handle(taskEnd)).revocations;
  await lifecycle.record(taskEnd);

  const [drift] = await recordActions(tasks, [
    toolCall({ taskId: "t-drift", traceId: TRACE, agent: AGENT, tool: { name: "shell.exec" }, startTimeMs: T0 + 2_000 }),
  ]);
  const flagged = evaluateStep(Step.parse(drift), { policy: loadPolicy("policies"), now: T0 + 3_000 });
  for (const f of flagged) await findings.record(f);
  driftFindingId = flagged[0]?.id ?? "";

  app = consoleApi(store, { tasks, findings, lifecycle, revocations: ledger });
});

afterAll(async () => {
  await app?.close();
});

describe("GET /api/v1/findings/:id", () => {
  it("resolves the id a revocation at a task's end names: the lifecycle event, with the revocations it triggered", async () => {
    expect(endRevocations.map((r) => [r.credentialId, r.trigger])).toEqual([["vault:lease:db/creds/billing/1", "task_completed"]]);
    const named = endRevocations[0]?.findingId as string;
    expect(named).toBe(taskEnd.id);
    const res = await app.inject({ method: "GET", url: `/api/v1/findings/${named}` });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.kind).toBe("lifecycle_event");
    expect(body.event).toMatchObject({ id: named, taskId: "t-done", trigger: "task_completed" });
    expect(body.revocations.map((r: Revocation) => r.credentialId)).toEqual(["vault:lease:db/creds/billing/1"]);
  });

  it("lists the task's lifecycle events on its page", async () => {
    const body = (await app.inject({ method: "GET", url: "/api/v1/tasks/t-done" })).json();
    expect(body.lifecycle.map((e: TaskEvent) => [e.id, e.trigger])).toEqual([[taskEnd.id, "task_completed"]]);
    expect(body.revocations.map((r: Revocation) => r.findingId)).toEqual([taskEnd.id]);
  });

  it("resolves a finding's id to the finding", async () => {
    expect(driftFindingId).not.toBe("");
    const res = await app.inject({ method: "GET", url: `/api/v1/findings/${driftFindingId}` });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      kind: "finding",
      finding: { id: driftFindingId, taskId: "t-drift", ruleId: "scope.tool" },
      revocations: [],
    });
  });

  it("answers 404 for an id that is neither", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/findings/nope" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: "no finding or lifecycle event nope" });
  });
});
