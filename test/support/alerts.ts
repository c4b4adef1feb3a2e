import { Finding } from "../../schemas/finding.js";
import { Revocation } from "../../schemas/revocation.js";

/** Test records for the notifier: a finding and a revocation, valid by their schemas, with what a test changes. */
export const T0 = 1_760_000_000_000;

export function finding(id: string, over: Partial<Finding> = {}): Finding {
  return Finding.parse({
    id,
    taskId: "task-1",
    agentId: "billing-agent",
    stepIndex: 2,
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    ruleId: "scope.tool",
    kind: "out_of_scope",
    severity: "high",
    mode: "enforce",
    confidence: 0.95,
    explanation: 'billing-agent called tool "shell.exec", which is outside its profile',
    evidence: { observed: { tool: "shell.exec" }, expected: { tools: ["invoices.read"] } },
    tags: { owaspAgentic: ["ASI02"], maestro: ["L3"], nistAiRmf: ["MANAGE-2.4"] },
    spanEndMs: T0,
    detectedAtMs: T0 + 5,
    policyVersion: "abc",
    ...over,
  });
}

export function revocation(over: Partial<Revocation> = {}): Revocation {
  return Revocation.parse({
    id: "rev-1",
    taskId: "task-1",
    agentId: "billing-agent",
    credentialId: "vault:lease:db/creds/billing/abc",
    credentialStore: "vault",
    findingId: "f1",
    trigger: "finding",
    decidedBy: "policy:default",
    status: "revoked",
    detail: "HTTP 204",
    attempts: 1,
    requestedAtMs: T0 + 10,
    completedAtMs: T0 + 20,
    ...over,
  });
}
