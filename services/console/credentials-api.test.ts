import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import type { TaskEvent } from "../../schemas/lifecycle.js";
import { toolCall } from "../../test/support/actions.js";
import { loadPolicy } from "../detector/policy.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import { Approvals } from "../revoker/approvals.js";
import type { CredentialStore, RevocationOutcome, RevocationRequest } from "../revoker/credential-stores/credential-store.js";
import { RecordOnlyCredentialStore } from "../revoker/credential-stores/record-only.js";
import { CredentialStores } from "../revoker/credential-stores/stores.js";
import { claimKey, RevocationLedger } from "../revoker/ledger.js";
import { LifecycleResponder } from "../revoker/lifecycle.js";
import { AgentQuarantine } from "../revoker/quarantine.js";
import { type Cause, Responder } from "../revoker/revoker.js";
import { createLogger } from "../runtime/logging.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { Metrics } from "../runtime/telemetry.js";
import { createApi } from "./api.js";
import type { CredentialView } from "./credentials.js";
import { FindingLog } from "./read-model.js";

const TRACE = "6bf92f3577b34da6a3ce929d0e0e4738";
const NOW = Date.now();
const policy = loadPolicy("policies");
const billing = policy.profiles.find((p) => p.id === "billing-agent");
if (!billing) throw new Error("policies/ has no billing-agent profile");
const [inProfile, alsoInProfile] = billing.tools.map((t) => t.name) as [string, string];

let n = 0;
const act = (taskId: string, over: Partial<AgentAction> = {}): AgentAction => {
  n++;
  return toolCall({
    taskId,
    traceId: TRACE,
    agent: { id: "billing-agent" },
    tool: { name: inProfile },
    startTimeMs: NOW - 30_000 + n,
    ...over,
  });
};

/**
 * A credential store that answers as the credential says: one with `fail` in its id is
 * refused (a 503, tried again later), every other one revoked (the store's 2xx).
 */
class ScriptedStore implements CredentialStore {
  readonly requests: RevocationRequest[] = [];
  constructor(readonly name: string) {}
  async revoke(request: RevocationRequest): Promise<RevocationOutcome> {
    this.requests.push(request);
    return request.credentialId.includes("fail")
      ? { status: "failed", detail: "HTTP 503 from the store", attempts: 1 }
      : { status: "revoked", detail: "HTTP 204", attempts: 1 };
  }
}

const store = new MemoryStore();
const tasks = new TaskStore(store);
const ledger = new RevocationLedger(store);
const stores = { default: new ScriptedStore("webhook"), vault: new ScriptedStore("vault"), caep: new ScriptedStore("caep") };
/** The revoker's clock: each revocation's store answer comes at `clock.now`. */
const clock = { now: NOW };
const responderWith = (maxAttempts?: number) =>
  new Responder({
    tasks,
    store,
    stores: new CredentialStores(stores),
    ledger,
    approvals: new Approvals(store),
    quarantine: new AgentQuarantine(store),
    policy: () => policy,
    minSeverity: "high",
    now: () => clock.now,
    random: () => 0.5,
    ...(maxAttempts !== undefined ? { maxAttempts } : {}),
  });
const responder = responderWith();
const lifecycle = new LifecycleResponder({ responder, tasks, store, policy: () => policy, now: () => clock.now });

const app = createApi({
  tasks,
  policy: () => policy,
  findings: new FindingLog(store),
  revocations: ledger,
  approvals: new Approvals(store),
  quarantine: new AgentQuarantine(store),
  metrics: new Metrics(false),
  logger: createLogger("silent"),
  ready: async () => true,
});

beforeAll(async () => {
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await store.close();
});

const putCredentials = (taskId: string, body: unknown, query = "") =>
  app.inject({ method: "PUT", url: `/api/v1/tasks/${taskId}/credentials${query}`, payload: body as object });
const putScope = (taskId: string, body: unknown, query = "") =>
  app.inject({ method: "PUT", url: `/api/v1/tasks/${taskId}/scope${query}`, payload: body as object });
async function credentialsOf(taskId: string): Promise<CredentialView[]> {
  const res = await app.inject({ method: "GET", url: `/api/v1/tasks/${taskId}/credentials` });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json().taskId).toBe(taskId);
  return res.json().credentials;
}
const byId = (list: CredentialView[], id: string) => {
  const found = list.find((c) => c.credentialId === id);
  if (!found) throw new Error(`no credential ${id} in ${JSON.stringify(list)}`);
  return found;
};

const cause = (over: Partial<Cause> = {}): Cause => ({
  findingId: "f-test",
  reason: "test",
  trigger: "finding",
  decidedBy: "policy:test",
  dryRun: false,
  ...over,
});

describe("PUT /api/v1/tasks/:id/credentials", () => {
  it("binds each credential to the task as a reference (201), updates it when registered again (200), and refuses it to another task (409)", async () => {
    const expiry = new Date(NOW + 3_600_000).toISOString();
    const res = await putCredentials(
      "t-reg",
      {
        credentials: [
          { id: "database/creds/billing/abc", store: "vault", kind: "lease" },
          { id: "s-42", store: "caep", kind: "Session" },
          { id: "email:alice@acme.example", store: "caep", kind: "credential:api-key" },
          { id: "key-7", store: "webhook", kind: "api-key", expiresAt: expiry },
          { id: "vault:accessor:hmac-9", expiresAt: NOW + 60_000 },
        ],
      },
      "?agent=billing-agent",
    );
    expect(res.statusCode, res.body).toBe(201);
    const bound = res.json().credentials;
    expect(bound.map((b: { credentialId: string; store: string; kind?: string }) => [b.credentialId, b.store, b.kind])).toEqual([
      ["vault:lease:database/creds/billing/abc", "vault", "lease"],
      ["caep:session:s-42", "caep", "session"],
      ["caep:credential:api-key:email:alice@acme.example", "caep", "credential:api-key"],
      ["key-7", "webhook", "api-key"],
      ["vault:accessor:hmac-9", "vault", "accessor"],
    ]);
    expect(await tasks.bindings.get("key-7")).toMatchObject({
      taskId: "t-reg",
      agentId: "billing-agent",
      source: "registry",
      expiresAtMs: Date.parse(expiry),
    });
    expect((await tasks.bindings.get("vault:accessor:hmac-9"))?.expiresAtMs).toBe(NOW + 60_000);
    expect((await tasks.bindings.ofTask("t-reg")).map((c) => c.credentialId)).toHaveLength(5);

    // again: the same binding, its expiry updated, its binding time kept
    const boundAt = (await tasks.bindings.get("key-7"))?.boundAtMs;
    const again = await putCredentials("t-reg", { credentials: [{ id: "key-7", store: "webhook", expiresAt: NOW + 7_200_000 }] });
    expect(again.statusCode, again.body).toBe(200);
    expect(await tasks.bindings.get("key-7")).toMatchObject({ taskId: "t-reg", expiresAtMs: NOW + 7_200_000, boundAtMs: boundAt });

    // another task: 409 naming the owner, and nothing of its request is registered
    const other = await putCredentials("t-other", {
      credentials: [{ id: "fresh-1" }, { id: "database/creds/billing/abc", store: "vault", kind: "lease" }],
    });
    expect(other.statusCode).toBe(409);
    expect(other.json()).toEqual({
      error: "credential vault:lease:database/creds/billing/abc is bound to task t-reg",
      conflicts: [{ credentialId: "vault:lease:database/creds/billing/abc", taskId: "t-reg" }],
    });
    expect(await tasks.bindings.get("fresh-1")).toBeUndefined();
    expect(await tasks.bindings.ofTask("t-other")).toEqual([]);
  });

  it("refuses what cannot be a credential reference with 422, naming each credential, and registers none", async () => {
    const cases: [unknown, RegExp][] = [
      [{ id: "vault:lease:" }, /^credential "vault:lease:": malformed credential reference .*the Vault lease is empty/],
      [{ id: "vault:token:x" }, /unknown Vault credential kind "token"/],
      [{ id: "abc", store: "vault" }, /^credential "abc": a Vault credential's kind is lease, prefix or accessor/],
      [{ id: "abc", store: "vault", kind: "token" }, /a Vault credential's kind is lease, prefix or accessor/],
      [{ id: "../../sys", store: "vault", kind: "prefix" }, /a Vault lease prefix is a relative path/],
      [{ id: "abc", store: "caep", kind: "device" }, /a CAEP credential's kind is session or credential:<credential type>/],
      [{ id: "bob", store: "caep" }, /the subject needs a format/],
      [{ id: "caep:fax:123" }, /unknown subject format "fax"/],
      [{ id: "vault:lease:a", store: "caep" }, /a vault: reference is revoked by vault, not caep/],
      [{ id: "caep:session:s", store: "webhook" }, /a caep: reference is revoked by caep, not the webhook store/],
      [{ id: "vault:lease:a", kind: "prefix" }, /the kind "prefix" does not match the reference, which names lease/],
    ];
    for (const [credential, message] of cases) {
      const res = await putCredentials("t-bad", { credentials: [{ id: "fine-1" }, credential] });
      expect(res.statusCode, JSON.stringify(credential)).toBe(422);
      expect(res.json().error).toBe("credentials that cannot be registered");
      expect(res.json().details, JSON.stringify(credential)).toEqual([expect.stringMatching(message)]);
    }
    const twice = await putCredentials("t-bad", {
      credentials: [{ id: "lease-1", store: "vault", kind: "lease" }, { id: "vault:lease:lease-1" }],
    });
    expect(twice.statusCode).toBe(422);
    expect(twice.json().details).toEqual(['credential "vault:lease:lease-1" is listed twice']);
    expect(await tasks.bindings.get("fine-1")).toBeUndefined();
    expect((await app.inject({ method: "GET", url: "/api/v1/tasks/t-bad/credentials" })).statusCode).toBe(404);
  });

  it("validates the body: 400 for a bad shape, an empty list or over 100 credentials, an id over 1,024 characters, a bad expiry; 413 past the body limit", async () => {
    const bad: unknown[] = [
      {},
      { credentials: [] },
      { credentials: "vault:lease:x" },
      { credentials: [{ id: "" }] },
      { credentials: [{ id: "x", extra: 1 }] },
      { credentials: [{ id: "x", store: "aws" }] },
      { credentials: [{ id: "x", kind: "has space" }] },
      { credentials: [{ id: "x", expiresAt: "tomorrow" }] },
      { credentials: [{ id: "x", expiresAt: -1 }] },
      { credentials: [{ id: "x".repeat(1025) }] },
      { credentials: Array.from({ length: 101 }, (_, i) => ({ id: `k-${i}` })) },
      { credentials: [{ id: "x" }], scope: {} },
    ];
    for (const body of bad) {
      const res = await putCredentials("t-shape", body);
      expect(res.statusCode, JSON.stringify(body).slice(0, 100)).toBe(400);
      expect(res.json().error).toBe("bad request");
    }
    const tooMany = await putCredentials("t-shape", { credentials: Array.from({ length: 101 }, (_, i) => ({ id: `k-${i}` })) });
    expect(tooMany.json().details.join("\n")).toMatch(/^credentials: /m);
    // the most a registration may carry fits (more than the API's usual 64 KiB)...
    const most = Array.from({ length: 100 }, (_, i) => ({ id: `${String(i).padStart(3, "0")}${"k".repeat(1021)}` }));
    const ok = await putCredentials("t-shape", { credentials: most });
    expect(ok.statusCode, ok.body.slice(0, 200)).toBe(201);
    expect(await credentialsOf("t-shape")).toHaveLength(100);
    // ...a body past 256 KiB does not
    const huge = await app.inject({
      method: "PUT",
      url: "/api/v1/tasks/t-shape/credentials",
      headers: { "content-type": "application/json" },
      payload: JSON.stringify({ credentials: [{ id: "x", kind: "y".repeat(300_000) }] }),
    });
    expect(huge.statusCode).toBe(413);
    expect(await tasks.bindings.get("x")).toBeUndefined();
  });

  it("refuses a credential for a task that has ended (409): bound now, it would outlive its task", async () => {
    const root = act("t-ended", { operation: "invoke_agent", name: "invoke_agent billing-agent" });
    delete root.tool;
    await recordActions(tasks, [act("t-ended"), root]);
    const late = await putCredentials("t-ended", { credentials: [{ id: "late-key" }] });
    expect(late.statusCode, late.body).toBe(409);
    expect(late.json().error).toMatch(/task t-ended has ended \(completed\)/);
    const withScope = await putScope("t-ended", { tools: [inProfile], credentials: [{ id: "late-key" }] });
    expect(withScope.statusCode).toBe(409);
    expect(await tasks.bindings.get("late-key")).toBeUndefined();
    // a running task still takes one
    await recordActions(tasks, [act("t-running")]);
    expect((await putCredentials("t-running", { credentials: [{ id: "running-key" }] })).statusCode).toBe(201);
  });
});

describe("PUT /api/v1/tasks/:id/scope with credentials", () => {
  it("registers the scope and the task's credentials together", async () => {
    const res = await putScope(
      "t-scope",
      { tools: [inProfile], credentials: [{ id: "billing/creds/1", store: "vault", kind: "lease", expiresAt: NOW + 600_000 }] },
      "?agent=billing-agent",
    );
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({
      taskId: "t-scope",
      scope: { tools: [inProfile] },
      profile: "billing-agent",
      credentials: [
        {
          credentialId: "vault:lease:billing/creds/1",
          taskId: "t-scope",
          agentId: "billing-agent",
          source: "registry",
          store: "vault",
          kind: "lease",
          expiresAtMs: NOW + 600_000,
        },
      ],
    });
    // the scope alone, as registered (no credentials in it)
    expect(await tasks.registeredScope("t-scope")).toEqual({ tools: [inProfile] });
    // a scope without credentials answers as before
    const narrower = await putScope("t-scope", { tools: [inProfile] }, "?agent=billing-agent");
    expect(narrower.statusCode).toBe(200);
    expect(narrower.json()).toEqual({ taskId: "t-scope", scope: { tools: [inProfile] }, profile: "billing-agent" });
  });

  it("registers nothing when a credential is malformed (422), bound to another task (409), or the scope is wider (422)", async () => {
    const malformed = await putScope("t-scope-2", { tools: [inProfile], credentials: [{ id: "caep:session:" }] }, "?agent=billing-agent");
    expect(malformed.statusCode).toBe(422);
    expect(malformed.json().details).toEqual([expect.stringMatching(/^credential "caep:session:": .*the session id is empty/)]);

    const taken = await putScope("t-scope-2", {
      tools: [inProfile],
      credentials: [{ id: "vault:lease:billing/creds/1" }, { id: "new-2" }],
    });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().conflicts).toEqual([{ credentialId: "vault:lease:billing/creds/1", taskId: "t-scope" }]);

    const wider = await putScope("t-scope-2", { tools: ["shell.exec"], credentials: [{ id: "new-2" }] }, "?agent=billing-agent");
    expect(wider.statusCode).toBe(422);
    expect(wider.json().error).toBe("a task's scope may only narrow");

    expect(await tasks.registeredScope("t-scope-2")).toBeUndefined();
    expect(await tasks.bindings.get("new-2")).toBeUndefined();
    expect((await putScope("t-scope-2", { tools: [inProfile, alsoInProfile], credentials: [{ id: "new-2" }] })).statusCode).toBe(201);
    expect((await tasks.bindings.get("new-2"))?.taskId).toBe("t-scope-2");
  });
});

describe("GET /api/v1/tasks/:id/credentials", () => {
  it("shows a credential active until its expiry, then expired", async () => {
    await recordActions(tasks, [act("t-exp")]);
    expect(await credentialsOf("t-exp")).toEqual([]);
    expect(
      (
        await putCredentials("t-exp", {
          credentials: [
            { id: "gone-1", kind: "api-key", expiresAt: NOW - 1_000 },
            { id: "live-1", kind: "api-key", expiresAt: new Date(NOW + 3_600_000).toISOString() },
            { id: "forever-1" },
          ],
        })
      ).statusCode,
    ).toBe(201);
    const list = await credentialsOf("t-exp");
    expect(list.map((c) => [c.credentialId, c.status])).toEqual([
      ["forever-1", "active"],
      ["gone-1", "expired"],
      ["live-1", "active"],
    ]);
    expect(byId(list, "gone-1")).toEqual({
      credentialId: "gone-1",
      store: "webhook",
      kind: "api-key",
      source: "registry",
      agentId: "billing-agent",
      boundAtMs: expect.any(Number),
      boundAtIso: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      expiresAtMs: NOW - 1_000,
      expiresAtIso: new Date(NOW - 1_000).toISOString(),
      status: "expired",
    });
  });

  it("shows a credential suspended while its task was silent, and active again once resumed", async () => {
    await recordActions(tasks, [act("t-susp", { credentialId: "quiet-key" })]);
    const suspension = {
      id: "rev-quiet-suspension",
      taskId: "t-susp",
      credentialId: "quiet-key",
      credentialStore: "webhook",
      findingId: "f-silence",
      trigger: "telemetry_silence" as const,
      decidedBy: "lifecycle:billing-agent",
      status: "suspended" as const,
      detail: "HTTP 200",
      attempts: 1,
      requestedAtMs: NOW,
      completedAtMs: NOW + 5,
    };
    await ledger.record(suspension);
    const suspended = byId(await credentialsOf("t-susp"), "quiet-key");
    expect(suspended.status).toBe("suspended");
    expect(suspended.suspension).toMatchObject({ status: "suspended", trigger: "telemetry_silence" });
    expect(suspended.revocation).toBeUndefined();
    await ledger.record({ ...suspension, status: "resumed", trigger: "telemetry_resumed", completedAtMs: NOW + 50 });
    const resumed = byId(await credentialsOf("t-susp"), "quiet-key");
    expect([resumed.status, resumed.suspension?.status]).toEqual(["active", "resumed"]);
  });

  it("shows a credential revoked when its task completed: the trigger, who decided, and the time from the trigger to the store's 2xx", async () => {
    await recordActions(tasks, [act("t-done")]);
    await putCredentials("t-done", {
      credentials: [
        { id: "done/creds/1", store: "vault", kind: "lease" },
        { id: "done-expired", expiresAt: NOW - 5_000 },
      ],
    });
    const completedAt = NOW - 2_000;
    const event: TaskEvent = {
      id: "ev-done",
      taskId: "t-done",
      agentId: "billing-agent",
      profileId: "billing-agent",
      trigger: "task_completed",
      atMs: completedAt,
      detail: "the task's root span ended",
      detectedAtMs: completedAt + 40,
    };
    clock.now = completedAt + 180;
    await lifecycle.handle(event);
    expect(stores.vault.requests.map((r) => r.credentialId)).toEqual(["vault:lease:done/creds/1"]);

    const list = await credentialsOf("t-done");
    expect(byId(list, "vault:lease:done/creds/1")).toMatchObject({
      store: "vault",
      kind: "lease",
      source: "registry",
      status: "revoked",
      revocation: {
        taskId: "t-done",
        status: "revoked",
        credentialStore: "vault",
        trigger: "task_completed",
        decidedBy: "lifecycle:billing-agent",
        detail: "HTTP 204",
        findingId: "ev-done",
        attempts: 1,
        triggeredAtMs: completedAt,
        completedAtMs: completedAt + 180,
        latencyMs: { fromTrigger: 180, fromDetection: 140 },
      },
    });
    // an expired credential has nothing left to end: it stays expired, not revoked
    expect(byId(list, "done-expired")).toMatchObject({ status: "expired" });
    expect(byId(list, "done-expired").revocation).toBeUndefined();
  });

  it("shows a credential another task used as reused, with the task it is bound to, and its revocation for the reuse", async () => {
    await recordActions(tasks, [act("t-owner")]);
    await putCredentials("t-owner", { credentials: [{ id: "shared-key", kind: "api-key" }] });
    await recordActions(tasks, [act("t-borrower", { credentialId: "shared-key" }), act("t-borrower", { credentialId: "own-key" })]);

    const borrowed = await credentialsOf("t-borrower");
    expect(borrowed.map((c) => c.credentialId)).toEqual(["own-key", "shared-key"]);
    expect(byId(borrowed, "own-key")).toMatchObject({ source: "span", status: "active", store: "webhook" });
    expect(byId(borrowed, "own-key").reused).toBeUndefined();
    expect(byId(borrowed, "shared-key")).toMatchObject({ reused: true, boundTo: "t-owner", source: "registry", status: "active" });
    // the owner's own view: its credential, not reused
    expect(byId(await credentialsOf("t-owner"), "shared-key").reused).toBeUndefined();

    clock.now = NOW;
    await lifecycle.handle({
      id: "ev-reuse",
      taskId: "t-borrower",
      trigger: "credential_reuse",
      credentialId: "shared-key",
      ownerTaskId: "t-owner",
      atMs: NOW - 100,
      detail: "shared-key, bound to t-owner, used on t-borrower",
      detectedAtMs: NOW - 90,
    });
    for (const taskId of ["t-borrower", "t-owner"]) {
      expect(byId(await credentialsOf(taskId), "shared-key")).toMatchObject({
        status: "revoked",
        revocation: { taskId: "t-owner", trigger: "credential_reuse", latencyMs: { fromTrigger: 100 } },
      });
    }
  });

  it("shows revoking while a revoker is at it or retries, revocation_failed once given up, and a dry run's verdict on an active credential", async () => {
    await recordActions(tasks, [act("t-states")]);
    await putCredentials("t-states", {
      credentials: [{ id: "claimed-1" }, { id: "fail-retry" }, { id: "fail-dead" }, { id: "dry-1" }, { id: "plain-1" }],
    });
    // another revoker has claimed it and not answered yet
    await store.set(claimKey("claimed-1"), JSON.stringify({ state: "pending", owner: "abc", atMs: NOW - 10 }), { ttlMs: 60_000 });
    clock.now = NOW;
    await responder.revokeCredentials("t-states", ["fail-retry"], cause({ triggeredAtMs: NOW - 50 }));
    await responderWith(1).revokeCredentials("t-states", ["fail-dead"], cause());
    await responder.revokeCredentials("t-states", ["dry-1"], cause({ dryRun: true, decidedBy: "policy:shadow" }));

    const list = await credentialsOf("t-states");
    expect(byId(list, "claimed-1")).toMatchObject({ status: "revoking", claimedAtMs: NOW - 10 });
    expect(byId(list, "claimed-1").revocation).toBeUndefined();
    expect(byId(list, "fail-retry")).toMatchObject({
      status: "revoking",
      revocation: { status: "failed", detail: "HTTP 503 from the store", attempts: 1, retryAtMs: expect.any(Number) },
    });
    expect(byId(list, "fail-dead")).toMatchObject({
      status: "revocation_failed",
      revocation: { status: "dead_lettered", detail: expect.stringMatching(/^HTTP 503 from the store \(gave up/) },
    });
    expect(byId(list, "dry-1")).toMatchObject({ status: "active", dryRun: { status: "dry_run", decidedBy: "policy:shadow" } });
    expect(byId(list, "dry-1").revocation).toBeUndefined();
    expect(byId(list, "plain-1").status).toBe("active");
    // a dry run sent nothing to the store
    expect(stores.default.requests.map((r) => r.credentialId)).not.toContain("dry-1");
  });

  it("flags a malformed reference a span reported: the revoker cannot revoke it", async () => {
    await recordActions(tasks, [act("t-span-bad", { credentialId: "vault:lease:" })]);
    const [c] = await credentialsOf("t-span-bad");
    expect(c).toMatchObject({ credentialId: "vault:lease:", store: "vault", source: "span", status: "active" });
    expect(c?.referenceError).toMatch(/the Vault lease is empty/);
  });

  it("shows a revocation that no credential store took as recorded, on the credential and on the task, never as revoked", async () => {
    const recordOnly = new Responder({
      tasks,
      store,
      stores: new CredentialStores({ default: new RecordOnlyCredentialStore() }),
      ledger,
      approvals: new Approvals(store),
      quarantine: new AgentQuarantine(store),
      policy: () => policy,
      minSeverity: "high",
      now: () => clock.now,
      random: () => 0.5,
    });
    await recordActions(tasks, [act("t-recorded", { credentialId: "plain-key-1" })]);
    await recordOnly.revokeTask("t-recorded", {
      findingId: "f-rec",
      trigger: "finding",
      decidedBy: "policy:test",
      dryRun: false,
      triggeredAtMs: clock.now,
    } as Cause);
    expect((await credentialsOf("t-recorded")).map((c) => [c.credentialId, c.status])).toEqual([["plain-key-1", "recorded"]]);
    const task = await app.inject({ method: "GET", url: "/api/v1/tasks/t-recorded" });
    expect(task.json()).toMatchObject({ task: { status: "recorded" } });
    const listed = await app.inject({ method: "GET", url: "/api/v1/tasks?status=recorded" });
    expect((listed.json() as { tasks: { taskId: string }[] }).tasks.map((t) => t.taskId)).toContain("t-recorded");
  });

  it("answers 404 for a task with neither steps nor credentials; registered credentials make a task known before it runs", async () => {
    expect((await app.inject({ method: "GET", url: "/api/v1/tasks/nope/credentials" })).statusCode).toBe(404);
    await putCredentials("t-early", { credentials: [{ id: "early-key" }] });
    expect((await credentialsOf("t-early")).map((c) => [c.credentialId, c.status])).toEqual([["early-key", "active"]]);
  });
});

describe("GET /api/v1/tasks/:id", () => {
  it("carries each credential with its status next to the summary's credential ids", async () => {
    await recordActions(tasks, [act("t-detail", { credentialId: "span-key" })]);
    await putCredentials("t-detail", { credentials: [{ id: "reg-key", expiresAt: NOW - 1 }] });
    const res = await app.inject({ method: "GET", url: "/api/v1/tasks/t-detail" });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.task.credentials).toEqual(["reg-key", "span-key"]);
    expect(body.credentials.map((c: CredentialView) => [c.credentialId, c.source, c.status])).toEqual([
      ["reg-key", "registry", "expired"],
      ["span-key", "span", "active"],
    ]);
  });
});
