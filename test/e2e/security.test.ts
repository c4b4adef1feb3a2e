import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../schemas/audit.js";
import { DeadLetter } from "../../schemas/deadletter.js";
import type { Finding } from "../../schemas/finding.js";
import type { Revocation } from "../../schemas/revocation.js";
import { TOPICS } from "../../schemas/topics.js";
import { type App, startEmbedded } from "../../services/cli/app.js";
import type { BusMessage } from "../../services/runtime/bus/bus.js";
import { loadConfig } from "../../services/runtime/config.js";
import { AgentTask } from "../support/agent-tasks.js";
import { hexId, oneSpanTraces, protobufRequest } from "../support/otlp-build.js";
import { testLogger } from "../support/ports.js";
import { eventually } from "../support/wait.js";

/**
 * Each bypass of the security review (issue 14), tried as a hostile client would against
 * the product `npm start` runs (the embedded mode, over HTTP), with agent and API
 * credentials configured and no credential store (revocations are only recorded). The
 * transport (Kafka TLS/SASL, Redis TLS/ACL) has its own suite against the real servers
 * (transport-security.test.ts); the pieces have their unit tests beside them.
 */
const API = {
  admin: "ops-admin-token-0123456789abcdef",
  responder: "soc-alice-token-0123456789abcdef",
  viewer: "auditor-token-0123456789abcdefgh",
};
const AGENT = { billing: "billing-agent-token-0123456789abcdef", support: "support-agent-token-0123456789abcdef" };
const PASSWORD = "hunter2-correct-horse-battery";
const BEARER_SECRET = "eyJhbGciOi.secret-bearer-value.sig";

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("security: the reported bypasses, refused (embedded product over HTTP)", () => {
  let app: App;
  const spansOnBus: BusMessage[] = [];
  const deadLetters: DeadLetter[] = [];
  const actions: string[] = [];

  const api = async <T>(path: string, token = API.viewer, init: RequestInit = {}) => {
    const res = await fetch(`${app.apiUrl}${path}`, { ...init, headers: { ...bearer(token), ...(init.headers ?? {}) } });
    return { status: res.status, body: (await res.json()) as T };
  };
  const sendSpans = (body: Uint8Array, token?: string) =>
    fetch(`${app.gatewayUrl}/v1/traces`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf", ...(token ? bearer(token) : {}) },
      body,
    });
  const findingsOf = async (taskId: string) =>
    (await api<{ findings: Finding[] }>(`/api/v1/tasks/${encodeURIComponent(taskId)}`)).body.findings ?? [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "dw-security-"));
    writeFileSync(
      join(dir, "api-tokens.yaml"),
      [
        `- { name: ops-admin, role: admin, token: ${API.admin} }`,
        `- { name: soc-alice, role: responder, token: ${API.responder} }`,
        `- { name: auditor, role: viewer, token: ${API.viewer} }`,
      ].join("\n"),
    );
    writeFileSync(
      join(dir, "agent-tokens.yaml"),
      [
        `- { name: billing-deploy, token: ${AGENT.billing}, agentIds: [billing-agent] }`,
        `- { name: support-deploy, token: ${AGENT.support}, agentIds: [support-agent] }`,
      ].join("\n"),
    );
    const config = loadConfig({
      DRIFTWATCH_LOG_LEVEL: "silent",
      DRIFTWATCH_OTLP_PORT: "0",
      DRIFTWATCH_API_PORT: "0",
      DRIFTWATCH_POLICY_DIR: "policies",
      DRIFTWATCH_ALERT_STDOUT: "false",
      DRIFTWATCH_API_TOKENS_FILE: join(dir, "api-tokens.yaml"),
      DRIFTWATCH_OTLP_TOKENS_FILE: join(dir, "agent-tokens.yaml"),
    });
    app = await startEmbedded(config, { logger: testLogger });
    await app.bus.subscribe({ group: "security-spans", topics: [TOPICS.otlpSpans], fromBeginning: true }, async (batch) => {
      spansOnBus.push(...batch);
    });
    await app.bus.subscribe({ group: "security-dead", topics: [TOPICS.deadletter], fromBeginning: true }, async (batch) => {
      for (const m of batch) deadLetters.push(DeadLetter.parse(JSON.parse(m.value.toString())));
    });
    await app.bus.subscribe({ group: "security-actions", topics: [TOPICS.actions], fromBeginning: true }, async (batch) => {
      for (const m of batch) actions.push(m.value.toString());
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  it("console: a disguised /api path needs a token like the real one, and a viewer may not lift a quarantine", async () => {
    for (const path of ["/%61pi/v1/tasks", "/api/v1/%74asks", "//api/v1/tasks", "/API/v1/tasks", "/api/v1/tasks."]) {
      const res = await fetch(`${app.apiUrl}${path}`);
      expect(res.status, path).not.toBe(200);
    }
    expect((await fetch(`${app.apiUrl}/%61pi/v1/tasks`)).status).toBe(401);
    const lift = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${app.apiUrl}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: "{}" });
    expect((await lift("/%61pi/v1/agents/a1/quarantine/lift")).status).toBe(401);
    expect((await lift("/api/v1/agents/a1/quarantine/lift")).status).toBe(401);
    expect((await lift("/%61pi/v1/agents/a1/quarantine/lift", bearer(API.viewer))).status).toBe(403);
    expect((await api("/api/v1/tasks")).status).toBe(200);
  });

  it("console: the actor of a write is the token's holder, never a name in the body, and every attempt is in the audit log", async () => {
    const res = await fetch(`${app.apiUrl}/api/v1/agents/billing-agent/quarantine/lift`, {
      method: "POST",
      headers: { "content-type": "application/json", ...bearer(API.responder) },
      body: JSON.stringify({ by: "mallory", reason: "not quarantined anyway" }),
    });
    expect(res.status).toBeLessThan(500);
    const audit = await eventually(async () => {
      const { body } = await api<{ records: AuditRecord[] }>("/api/v1/audit", API.responder);
      const mine = body.records?.filter((r) => r.actor.name === "soc-alice");
      return mine && mine.length > 0 ? body.records : undefined;
    });
    expect(JSON.stringify(audit)).not.toContain("mallory");
    // the denied attempts of the test before are recorded too
    expect(audit.some((r) => r.outcome === "denied")).toBe(true);
    // a viewer may not read it
    expect((await api("/api/v1/audit", API.viewer)).status).toBe(403);
  });

  it("ingest: no spans without an agent credential", async () => {
    const body = protobufRequest({ spans: oneSpanTraces(1, { "gen_ai.agent.id": "billing-agent", "agent.task.id": "anon-1" }) });
    expect((await sendSpans(body)).status).toBe(401);
    expect((await sendSpans(body, "not-a-token-of-anyone-0123456789")).status).toBe(401);
    expect((await sendSpans(body, API.admin)).status).toBe(401);
  });

  it("ingest: spans one agent forges for another's task end nothing, revoke nothing, and are flagged", async () => {
    // the real billing task, with a credential, still running
    const victim = new AgentTask({ id: "billing-agent" }, `victim-${hexId(4)}`);
    victim.call({ tool: "invoices.read", credentialId: "vault-lease-victim" });
    expect((await sendSpans(victim.export() as Uint8Array, AGENT.billing)).status).toBe(200);
    await eventually(async () => {
      const { body } = await api<{ task?: { steps: number } }>(`/api/v1/tasks/${victim.taskId}`);
      return body.task && body.task.steps >= 1 ? true : undefined;
    });

    // the support agent's credential, speaking for billing-agent: a root span "completing" the
    // victim's task (which would revoke its credential), and a span of another task claiming it
    const forged = protobufRequest({
      spans: [
        {
          traceId: victim.traceId,
          name: "invoke_agent billing-agent",
          attributes: { "gen_ai.agent.id": "billing-agent", "agent.task.id": victim.taskId, "gen_ai.operation.name": "invoke_agent" },
        },
        {
          name: "execute_tool invoices.read",
          attributes: {
            "gen_ai.agent.id": "billing-agent",
            "agent.task.id": "decoy-task",
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "invoices.read",
            "agent.credential.id": "vault-lease-victim",
          },
        },
      ],
    });
    expect((await sendSpans(forged, AGENT.support)).status).toBe(200);

    const flagged = await eventually(async () => {
      const f = (await findingsOf(victim.taskId)).filter((x) => x.ruleId === "ingest.identity_mismatch");
      return f.length > 0 ? f : undefined;
    }, 20_000);
    expect(flagged[0]?.severity).toBe("high");
    await eventually(async () =>
      (await findingsOf("decoy-task")).some((x) => x.ruleId === "ingest.identity_mismatch") ? true : undefined,
    );

    // the victim's task did not end, its credential was neither claimed nor revoked
    const { body } = await api<{ task: { status: string }; revocations: Revocation[] }>(`/api/v1/tasks/${victim.taskId}`);
    expect(body.task.status).not.toMatch(/completed|revoked|recorded/);
    expect(body.revocations).toEqual([]);
    const revs = await api<{ revocations: Revocation[] }>("/api/v1/revocations");
    expect(revs.body.revocations.filter((r) => r.credentialId === "vault-lease-victim")).toEqual([]);

    // only when the real agent ends its task does its credential end with it: recorded, not shown revoked (no store here)
    victim.complete();
    expect((await sendSpans(victim.export() as Uint8Array, AGENT.billing)).status).toBe(200);
    const ended = await eventually(async () => {
      const v = await api<{ task: { status: string }; revocations: Revocation[] }>(`/api/v1/tasks/${victim.taskId}`);
      return v.body.revocations.length > 0 ? v.body : undefined;
    }, 20_000);
    expect(ended.task.status).toBe("completed");
    expect(ended.revocations.map((r) => [r.credentialId, r.status, r.trigger])).toEqual([
      ["vault-lease-victim", "recorded", "task_completed"],
    ]);
    const creds = await api<{ credentials: { credentialId: string; status: string }[] }>(`/api/v1/tasks/${victim.taskId}/credentials`);
    expect(creds.body.credentials.find((c) => c.credentialId === "vault-lease-victim")?.status).toBe("recorded");
    await victim.close();
  });

  it("ingest: a message put on otlp_spans with a forged sender is dead-lettered, not believed", async () => {
    const body = protobufRequest({ spans: oneSpanTraces(1, { "gen_ai.agent.id": "billing-agent", "agent.task.id": "kafka-forged" }) });
    await app.bus.publish(TOPICS.otlpSpans, [
      {
        key: null,
        value: body,
        headers: {
          "content-type": "application/x-protobuf",
          "driftwatch-sender": JSON.stringify({ name: "billing-deploy", via: "token", agentIds: ["billing-agent"], spiffeIds: [] }),
          "driftwatch-signature": `v1=${Buffer.alloc(32, 7).toString("base64url")}`,
        },
      },
    ]);
    const letter = await eventually(() => deadLetters.find((d) => d.reason.startsWith("forged sender")));
    expect(letter.stage).toBe("ingest");
    expect(actions.some((a) => a.includes("kafka-forged"))).toBe(false);
  });

  it("fail closed: the profile's effect wins over the span's, and an egress that names no destination is a finding", async () => {
    const task = new AgentTask({ id: "billing-agent" }, `closed-${hexId(4)}`);
    // email.send is an egress in the profile: the span calling it a read changes nothing; it says nowhere where it goes
    task.call({ tool: "email.send", effect: "read", arguments: { subject: "reminder" }, credentialId: `smtp-${task.taskId}` });
    expect((await sendSpans(task.export() as Uint8Array, AGENT.billing)).status).toBe(200);
    const findings = await eventually(async () => {
      const f = await findingsOf(task.taskId);
      return f.some((x) => x.ruleId === "scope.egress") ? f : undefined;
    }, 20_000);
    expect(findings.find((x) => x.ruleId === "scope.egress")?.explanation).toMatch(/destination|where/i);
    // enforced: the task's access is ended; with no credential store it is shown as recorded, not revoked
    const view = await eventually(async () => {
      const v = (await api<{ task: { status: string }; revocations: Revocation[] }>(`/api/v1/tasks/${task.taskId}`)).body;
      return v.revocations.length > 0 ? v : undefined;
    });
    expect(view.task.status).toBe("recorded");
    await task.close();
  });

  it("data at rest: secrets are redacted before the gateway publishes, and a dead letter keeps only the bad span, redacted", async () => {
    const before = spansOnBus.length;
    const task = `redact-${hexId(4)}`;
    const body = protobufRequest({
      spans: [
        {
          name: "execute_tool invoices.read",
          attributes: {
            "gen_ai.agent.id": "billing-agent",
            "agent.task.id": task,
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "invoices.read",
            "http.request.header.authorization": `Bearer ${BEARER_SECRET}`,
            "gen_ai.tool.call.arguments": JSON.stringify({ customer: "c-1", password: PASSWORD }),
          },
        },
        // a span ingest cannot take (its task id is too long for the contract), carrying the same secrets
        {
          name: "execute_tool invoices.read",
          attributes: {
            "gen_ai.agent.id": "billing-agent",
            "agent.task.id": "t".repeat(300),
            "gen_ai.tool.name": "invoices.read",
            "http.request.header.authorization": `Bearer ${BEARER_SECRET}`,
            "gen_ai.tool.call.arguments": JSON.stringify({ password: PASSWORD }),
          },
        },
      ],
    });
    expect((await sendSpans(body, AGENT.billing)).status).toBe(200);
    await eventually(() => (actions.some((a) => a.includes(task)) ? true : undefined));
    const published = spansOnBus.slice(before);
    expect(published.length).toBeGreaterThan(0);
    for (const m of published) {
      expect(m.value.includes(PASSWORD)).toBe(false);
      expect(m.value.includes(BEARER_SECRET)).toBe(false);
    }
    for (const a of actions) expect(a.includes(PASSWORD) || a.includes(BEARER_SECRET)).toBe(false);
    const letter = await eventually(() => deadLetters.find((d) => d.spans?.some((s) => s.reason.includes("task"))), 5000);
    const text = JSON.stringify(letter);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(BEARER_SECRET);
    expect(letter.spans).toHaveLength(1);
    expect(letter.message?.bytes).toBe(published.at(-1)?.value.length);
  });

  it("bounds: a request of 76,000 one-span traces is refused whole, and the store does not grow", async () => {
    const tasksBefore = (await api<{ total: number }>("/api/v1/tasks")).body.total;
    const flood = protobufRequest({ spans: Array.from({ length: 76_000 }, () => ({ name: "x" })) });
    // the reported request: valid, within the body limit (4 MiB), 76,000 traces
    expect(flood.length).toBeGreaterThan(3_000_000);
    expect(flood.length).toBeLessThan(4 * 2 ** 20);
    expect((await sendSpans(flood, AGENT.billing)).status).toBe(413);
    // fewer spans than the per-request cap, more traces than it allows
    const traces = protobufRequest({ spans: Array.from({ length: 12_000 }, () => ({ name: "x" })) });
    expect((await sendSpans(traces, AGENT.billing)).status).toBe(413);
    await new Promise((r) => setTimeout(r, 500));
    expect((await api<{ total: number }>("/api/v1/tasks")).body.total).toBe(tasksBefore);
    const metrics = await app.metrics.registry.metrics();
    expect(metrics).toMatch(/driftwatch_otlp_rejected_requests_total\{reason="too_many_spans"\} 1/);
    expect(metrics).toMatch(/driftwatch_otlp_rejected_requests_total\{reason="too_many_traces"\} 1/);
  });
});
