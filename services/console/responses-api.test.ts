import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Approval } from "../../schemas/approval.js";
import { Revocation } from "../../schemas/revocation.js";
import { aFinding } from "../../test/support/findings.js";
import { IncidentBook } from "../notifier/incident.js";
import { TaskStore } from "../pathfinder/task-store.js";
import { Approvals } from "../revoker/approvals.js";
import { RevocationLedger } from "../revoker/ledger.js";
import { AgentQuarantine } from "../revoker/quarantine.js";
import { createLogger } from "../runtime/logging.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { Metrics } from "../runtime/telemetry.js";
import { createApi } from "./api.js";
import { Authenticator } from "./auth.js";
import { FindingLog } from "./read-model.js";

const NOW = Date.now();
const ALICE = "alice-responder-token-0123456789";
const BOB = "bob-responder-token-0123456789ab";
const VIEWER = "viewer-token-0123456789abcdefgh";
/** Requests as one token holder (alice, a responder, unless told otherwise). */
const as = (token: string) => ({ authorization: `Bearer ${token}` });

const finding = (id: string, taskId: string) =>
  aFinding({ id, taskId, agentId: "finance-ops-agent", stepIndex: 1, spanEndMs: NOW - 100, detectedAtMs: NOW - 50 });

describe("console API: approvals, quarantine, the revocation ledger", () => {
  const store = new MemoryStore();
  const approvals = new Approvals(store);
  const quarantine = new AgentQuarantine(store);
  const ledger = new RevocationLedger(store);
  const incidents = new IncidentBook(store);
  let app: FastifyInstance;
  let approvalId: string;

  beforeAll(async () => {
    const asked = await approvals.request(
      finding("f-1", "task-1"),
      {
        action: "ask_human",
        rule: "ask-finance",
        dryRun: false,
        approval: { timeoutMs: 600_000, onTimeout: "revoke", onApprove: "quarantine" },
      },
      NOW,
    );
    approvalId = asked.approval.id;
    await quarantine.put({ agentId: "rogue-agent", atMs: NOW, findingId: "f-9", taskId: "task-9", by: "policy:exfil" });
    const base = Revocation.parse({
      id: "rev-1",
      taskId: "task-9",
      credentialId: "vault:lease:aws/creds/x/1",
      credentialStore: "vault",
      findingId: "f-9",
      status: "failed",
      detail: "HTTP 503",
      attempts: 2,
      requestedAtMs: NOW,
      completedAtMs: NOW + 10,
    });
    await ledger.record(base);
    await ledger.record({ ...base, status: "revoked", detail: "HTTP 204", attempts: 3, completedAtMs: NOW + 1_000 });
    await incidents.addFindings("task-1", [finding("f-1", "task-1"), finding("f-2", "task-1")]);
    app = createApi({
      tasks: new TaskStore(store),
      findings: new FindingLog(store),
      revocations: ledger,
      approvals,
      quarantine,
      incidents,
      metrics: new Metrics(false),
      logger: createLogger("silent"),
      ready: async () => true,
      authenticator: new Authenticator({
        tokens: [
          { name: "alice", role: "responder", token: ALICE },
          { name: "bob", role: "responder", token: BOB },
          { name: "vic", role: "viewer", token: VIEWER },
        ],
      }),
    });
  });

  afterAll(async () => {
    await app.close();
  });

  it("lists pending approvals and shows one", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/approvals?status=pending", headers: as(VIEWER) });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { approvals: Approval[] };
    expect(body.approvals.map((a) => Approval.parse(a))).toEqual([
      expect.objectContaining({ id: approvalId, taskId: "task-1", status: "pending", proposed: "quarantine", rule: "ask-finance" }),
    ]);
    expect((await app.inject({ method: "GET", url: `/api/v1/approvals/${approvalId}`, headers: as(VIEWER) })).json()).toMatchObject({
      id: approvalId,
    });
    expect((await app.inject({ method: "GET", url: "/api/v1/approvals/nope", headers: as(VIEWER) })).statusCode).toBe(404);
    expect((await app.inject({ method: "GET", url: "/api/v1/approvals?status=maybe", headers: as(VIEWER) })).statusCode).toBe(400);
  });

  it("takes a decision once: 400 for a bad body, 404 for an unknown approval, 409 once decided", async () => {
    const post = (id: string, payload: unknown, token = ALICE) =>
      app.inject({
        method: "POST",
        url: `/api/v1/approvals/${id}/decision`,
        payload: payload as object,
        headers: { "content-type": "application/json", ...as(token) },
      });
    expect((await post(approvalId, { decision: "maybe" })).statusCode).toBe(400);
    expect((await post(approvalId, {})).statusCode).toBe(400);
    expect((await post(approvalId, { decision: "approve", extra: 1 })).statusCode).toBe(400);
    // who decides is the caller's identity: a body cannot name someone else
    expect((await post(approvalId, { decision: "approve", by: "mallory" })).statusCode).toBe(400);
    // a viewer may look, not decide
    expect((await post(approvalId, { decision: "approve" }, VIEWER)).statusCode).toBe(403);
    expect((await post("nope", { decision: "approve" })).statusCode).toBe(404);
    const ok = await post(approvalId, { decision: "approve", comment: "seen the exfil" });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ status: "approved", decidedBy: "alice (token:alice)", comment: "seen the exfil" });
    const again = await post(approvalId, { decision: "reject" }, BOB);
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ approval: { status: "approved", decidedBy: "alice (token:alice)" } });
  });

  it("lists quarantined agents and lifts a quarantine, naming who", async () => {
    expect((await app.inject({ method: "GET", url: "/api/v1/quarantine", headers: as(VIEWER) })).json()).toEqual({
      agents: [expect.objectContaining({ agentId: "rogue-agent", findingId: "f-9" })],
    });
    const lift = (id: string, payload: unknown, token = ALICE) =>
      app.inject({
        method: "POST",
        url: `/api/v1/agents/${id}/quarantine/lift`,
        payload: payload as object,
        headers: { "content-type": "application/json", ...as(token) },
      });
    expect((await lift("rogue-agent", { by: "alice" })).statusCode).toBe(400);
    expect((await lift("rogue-agent", {}, VIEWER)).statusCode).toBe(403);
    const res = await lift("rogue-agent", { comment: "credentials rotated" }, BOB);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ lifted: { agentId: "rogue-agent" }, by: "bob (token:bob)" });
    expect(await quarantine.get("rogue-agent")).toBeUndefined();
    expect((await lift("rogue-agent", {})).statusCode).toBe(404);
  });

  it("shows a revocation as it stands, with the outcomes it went through", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/revocations/rev-1", headers: as(VIEWER) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      revocation: { status: "revoked", attempts: 3 },
      history: [
        { status: "failed", detail: "HTTP 503", attempts: 2 },
        { status: "revoked", detail: "HTTP 204", attempts: 3 },
      ],
    });
    expect((await app.inject({ method: "GET", url: "/api/v1/revocations", headers: as(VIEWER) })).json()).toMatchObject({ total: 1 });
    expect((await app.inject({ method: "GET", url: "/api/v1/revocations/nope", headers: as(VIEWER) })).statusCode).toBe(404);
  });

  it("shows a task's incident: its findings rolled up", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/tasks/task-1/incident", headers: as(VIEWER) });
    expect(res.statusCode).toBe(200);
    const incident = res.json() as { id: string; taskId: string; severity: string; version: number };
    expect(incident).toMatchObject({ taskId: "task-1", severity: "high", version: 1 });
    expect((await app.inject({ method: "GET", url: `/api/v1/incidents/${incident.id}`, headers: as(VIEWER) })).json()).toMatchObject({
      taskId: "task-1",
    });
    expect((await app.inject({ method: "GET", url: "/api/v1/incidents", headers: as(VIEWER) })).json()).toMatchObject({
      incidents: [{ id: incident.id }],
    });
    expect((await app.inject({ method: "GET", url: "/api/v1/tasks/nope/incident", headers: as(VIEWER) })).statusCode).toBe(404);
  });
});
