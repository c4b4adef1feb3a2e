import { Finding } from "../../schemas/finding.js";

/**
 * A finding as the detector emits it, for tests of what consumes findings (revoker,
 * notifier, console): an out-of-scope tool of billing-agent in task-1 by default, every
 * field overridable.
 */
export function aFinding(over: Partial<Finding> = {}): Finding {
  return Finding.parse({
    id: "f-1",
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
    explanation: 'billing-agent called tool "shell.exec", which is outside its profile "billing-agent".',
    evidence: { observed: { tool: "shell.exec" }, expected: { tools: ["invoices.read"] } },
    tags: { owaspAgentic: [], maestro: [], nistAiRmf: [] },
    spanEndMs: 1_760_000_000_000,
    detectedAtMs: 1_760_000_000_005,
    policyVersion: "abc",
    ...over,
  });
}
