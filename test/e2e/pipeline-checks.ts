import { expect } from "vitest";
import type { Finding } from "../../schemas/finding.js";
import type { Revocation } from "../../schemas/revocation.js";
import type { Step } from "../../schemas/step.js";
import { billingScenario, otlpProtoExporter, runScenarioAgent } from "../../services/cli/scenario.js";
import type { TaskSummary } from "../../services/pathfinder/task-store.js";
import { eventually } from "../support/wait.js";
import type { WebhookReceiver } from "../support/webhook-receiver.js";

interface TaskView {
  task: TaskSummary;
  path: (Step & { findings: string[] })[];
  findings: Finding[];
  revocations: Revocation[];
}

async function getJson<T>(url: string): Promise<T | undefined> {
  const res = await fetch(url);
  return res.ok ? ((await res.json()) as T) : undefined;
}

/**
 * The end-to-end story both modes must tell: an agent instrumented with the OTel Node SDK
 * exports two tasks over OTLP/HTTP protobuf; the one that calls a tool outside its
 * profile is flagged at the right step, its credential revoked exactly once by a signed
 * webhook, the SOC alerted; the benign one raises nothing, and its credential ends with it
 * (revoked once when its root span ends: just-in-time access does not outlive its task).
 */
export async function runAgentAndCheckPipeline(
  urls: { gateway: string; api: string },
  hooks: { revoke: WebhookReceiver; alert: WebhookReceiver },
) {
  const scenario = billingScenario();
  await runScenarioAgent(scenario, otlpProtoExporter(urls.gateway));

  const bodyOf = (r: (typeof hooks.revoke.received)[number]) => r.body as { credential_id: string; task_id: string; finding_id: string };
  const revocation = await eventually(
    () => hooks.revoke.received.find((r) => bodyOf(r).task_id === scenario.drifting.taskId),
    30_000,
    "revocation webhook",
  );
  const drift = await eventually(
    async () => {
      const v = await getJson<TaskView>(`${urls.api}/api/v1/tasks/${scenario.drifting.taskId}`);
      return v && v.findings.length > 0 && v.revocations.length > 0 && v.path.length === 3 ? v : undefined;
    },
    30_000,
    "drifting task with finding and revocation in the API",
  );
  const alert = await eventually(
    () => hooks.alert.received.find((r) => (r.body as { finding?: Finding }).finding?.taskId === scenario.drifting.taskId),
    30_000,
    "alert webhook",
  );
  const benign = await eventually(
    async () => {
      const v = await getJson<TaskView>(`${urls.api}/api/v1/tasks/${scenario.benign.taskId}`);
      return v && v.path.length === 3 ? v : undefined;
    },
    30_000,
    "benign task path",
  );
  // give any late duplicate a chance to show up before counting
  await new Promise((r) => setTimeout(r, 1500));

  // the finding: right task, right step, right rule
  expect(drift.path.map((s) => s.tool?.name ?? s.operation)).toEqual(["invoke_agent", "invoices.read", "shell.exec"]);
  const shellStep = drift.path[2] as Step & { findings: string[] };
  expect(drift.findings).toHaveLength(1);
  const finding = drift.findings[0] as Finding;
  expect(finding).toMatchObject({
    taskId: scenario.drifting.taskId,
    agentId: "billing-agent",
    ruleId: "scope.tool",
    kind: "out_of_scope",
    stepIndex: 2,
    spanId: shellStep.spanId,
    traceId: shellStep.traceId,
    mode: "enforce",
  });
  expect(finding.evidence.observed).toEqual({ tool: "shell.exec" });
  expect(finding.detectedAtMs).toBeGreaterThanOrEqual(finding.spanEndMs);
  expect(shellStep.findings).toEqual([finding.id]);

  // the revocation: exactly once, signed, for the credential bound to the drifting task (the
  // finding's response; the task's end, just after, finds it revoked and sends nothing)
  expect(hooks.revoke.received.filter((r) => bodyOf(r).credential_id === scenario.drifting.credentialId)).toHaveLength(1);
  expect(revocation.signatureValid).toBe(true);
  expect(revocation.body).toMatchObject({
    type: "driftwatch.credential.revoke",
    credential_id: scenario.drifting.credentialId,
    task_id: scenario.drifting.taskId,
    finding_id: finding.id,
  });
  expect(drift.revocations).toHaveLength(1);
  expect(drift.revocations[0]).toMatchObject({
    credentialId: scenario.drifting.credentialId,
    status: "revoked",
    credentialStore: "webhook",
    trigger: "finding",
  });
  expect(drift.task.status).toBe("revoked");

  // the alert
  expect(alert.signatureValid).toBe(true);
  expect((alert.body as { finding: Finding }).finding.id).toBe(finding.id);
  expect(hooks.alert.received.filter((r) => (r.body as { finding: Finding }).finding.id === finding.id)).toHaveLength(1);

  // no finding for the benign task; its agent invocation ended: the task is complete, and
  // its credential was revoked once, for that reason
  expect(benign.findings).toEqual([]);
  expect(benign.task.status).toBe("completed");
  const ended = await eventually(
    async () => {
      const v = await getJson<TaskView>(`${urls.api}/api/v1/tasks/${scenario.benign.taskId}`);
      return v?.revocations.length === 1 ? v.revocations[0] : undefined;
    },
    30_000,
    "the benign task's credential revoked at its end",
  );
  expect(ended).toMatchObject({ credentialId: scenario.benign.credentialId, status: "revoked", trigger: "task_completed" });
  expect(ended.latencyMs?.fromTrigger).toBeGreaterThanOrEqual(0);
  const benignCalls = hooks.revoke.received.filter((r) => bodyOf(r).credential_id === scenario.benign.credentialId);
  expect(benignCalls).toHaveLength(1);
  expect(benignCalls[0]?.signatureValid).toBe(true);
  expect(hooks.revoke.received).toHaveLength(2);
  expect(hooks.alert.received.some((r) => (r.body as { finding: Finding }).finding.taskId === scenario.benign.taskId)).toBe(false);

  // the listings see both
  const tasks = await getJson<{ tasks: TaskSummary[] }>(`${urls.api}/api/v1/tasks`);
  expect(tasks?.tasks.map((t) => t.taskId)).toEqual(expect.arrayContaining([scenario.benign.taskId, scenario.drifting.taskId]));
  const findings = await getJson<{ findings: Finding[] }>(`${urls.api}/api/v1/findings`);
  expect(findings?.findings.map((f) => f.id)).toContain(finding.id);
  const revocations = await getJson<{ revocations: Revocation[] }>(`${urls.api}/api/v1/revocations`);
  expect(revocations?.revocations.map((r) => r.credentialId)).toContain(scenario.drifting.credentialId);
  return { scenario, finding };
}
