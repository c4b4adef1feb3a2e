import type { Finding } from "../../schemas/finding.js";
import { Revocation } from "../../schemas/revocation.js";
import { aFinding } from "./findings.js";

/** Test records for the notifier: a finding and a revocation, valid by their schemas, with what a test changes. */
export const T0 = 1_760_000_000_000;

export function finding(id: string, over: Partial<Finding> = {}): Finding {
  return aFinding({
    id,
    explanation: 'billing-agent called tool "shell.exec", which is outside its profile',
    tags: { owaspAgentic: ["ASI02"], maestro: ["L3"], nistAiRmf: ["MANAGE-2.4"] },
    spanEndMs: T0,
    detectedAtMs: T0 + 5,
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
