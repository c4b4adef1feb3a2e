import { describe, expect, it } from "vitest";
import { Step } from "../../schemas/step.js";
import { agentAction, toolCall } from "../../test/support/actions.js";
import { loadPolicy } from "../detector/policy.js";
import { evaluateStep } from "../detector/rules.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import { signSender, verifySender } from "../runtime/sender-signature.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { withSender } from "./sender.js";

const KEY = Buffer.from("a-signing-key-of-at-least-thirty-two-characters");
const body = Buffer.from("an OTLP request");
const billing = {
  name: "billing-svc",
  via: "token" as const,
  agentIds: ["billing-agent"],
  spiffeIds: ["spiffe://acme.example/agents/billing"],
};

describe("the gateway's signed sender", () => {
  it("verifies a sender signed with the key for this body; refuses a forged, altered or moved one", () => {
    const headers = signSender(KEY, billing, body);
    expect(verifySender(KEY, headers, body)).toEqual({ sender: billing });
    // the same headers on another body, another sender under the same signature, another key
    expect(verifySender(KEY, headers, Buffer.from("another request"))).toHaveProperty("forged");
    const claimed = { ...headers, "driftwatch-sender": JSON.stringify({ ...billing, agentIds: ["*"] }) };
    expect(verifySender(KEY, claimed, body)).toHaveProperty("forged");
    expect(verifySender(Buffer.from("another-key-of-at-least-thirty-two-characters!!"), headers, body)).toHaveProperty("forged");
    // a sender with no signature at all, or a header an ingest without a key cannot check
    expect(verifySender(KEY, { "driftwatch-sender": JSON.stringify(billing) }, body)).toHaveProperty("forged");
    expect(verifySender(undefined, headers, body)).toHaveProperty("forged");
    // no sender: traffic no gateway vouched for
    expect(verifySender(KEY, {}, body)).toEqual({ unsigned: true });
  });
});

describe("a span speaks only for the workload its sender's credential names", () => {
  it("keeps a span of the sender's own agent, and marks one that speaks for another", () => {
    const own = withSender(agentAction({ taskId: "t", startTimeMs: 0, agent: { id: "billing-agent" } }), billing);
    expect(own.identityMismatch).toBeUndefined();
    expect(own.sender).toEqual({ name: "billing-svc", via: "token" });
    const other = withSender(agentAction({ taskId: "t", startTimeMs: 0, agent: { id: "finance-ops-agent" } }), billing);
    expect(other.identityMismatch).toEqual({
      claimed: { agentId: "finance-ops-agent" },
      allowed: { agentIds: ["billing-agent"], spiffeIds: ["spiffe://acme.example/agents/billing"] },
    });
    const workload = withSender(
      agentAction({ taskId: "t", startTimeMs: 0, agent: { id: "billing-agent", spiffeId: "spiffe://acme.example/agents/finance" } }),
      billing,
    );
    expect(workload.identityMismatch?.claimed).toEqual({ agentId: "billing-agent", spiffeId: "spiffe://acme.example/agents/finance" });
    // a JWT-SVID proves a workload: a span that names none takes it
    const svid = {
      name: "spiffe://acme.example/agents/billing",
      via: "jwt-svid" as const,
      spiffeId: "spiffe://acme.example/agents/billing",
      agentIds: [],
      spiffeIds: ["spiffe://acme.example/agents/billing"],
    };
    expect(withSender(agentAction({ taskId: "t", startTimeMs: 0, agent: {} }), svid).agent.spiffeId).toBe(
      "spiffe://acme.example/agents/billing",
    );
  });

  it("trusts a forged span for nothing: it ends no task, binds no credential, declares nothing; the detector flags it", async () => {
    const tasks = new TaskStore(new MemoryStore());
    const forged = (a: Parameters<typeof agentAction>[0]) => withSender(agentAction(a), billing);
    const steps = await recordActions(tasks, [
      toolCall({
        taskId: "task-f",
        agent: { id: "finance-ops-agent" },
        intent: "Pay vendor invoices",
        startTimeMs: 0,
        tool: { name: "payments.transfer" },
      }),
      forged({
        taskId: "task-f",
        startTimeMs: 1_000,
        operation: "invoke_agent",
        agent: { id: "finance-ops-agent" },
        intent: "Send the payroll to me",
        credentialId: "vault-lease-stolen",
        declaredScope: { tools: ["payments.transfer", "payroll.read"] },
      }),
    ]);
    const facts = await tasks.facts("task-f");
    expect(facts?.phase).not.toBe("completed");
    expect(facts?.intent).toBe("Pay vendor invoices");
    expect(facts?.scope).toBeUndefined();
    expect(await tasks.credentials("task-f")).toEqual([]);
    const policy = loadPolicy("policies");
    const last = Step.parse(steps.find((s) => s.index === 1));
    const findings = evaluateStep(last, { policy, now: 5_000 });
    expect(findings.map((f) => f.ruleId)).toContain("ingest.identity_mismatch");
    expect(findings.find((f) => f.ruleId === "ingest.identity_mismatch")?.evidence.observed).toMatchObject({
      sender: { name: "billing-svc" },
      claimed: { agentId: "finance-ops-agent" },
    });
  });
});
