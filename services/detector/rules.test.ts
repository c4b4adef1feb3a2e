import { describe, expect, it } from "vitest";
import { Finding } from "../../schemas/finding.js";
import { AgentProfile, RuleSetting } from "../../schemas/policy.js";
import { Step } from "../../schemas/step.js";
import { loadPolicy, type Policy } from "./policy.js";
import { evaluateStep, findingId, RULES } from "./rules.js";

const T0 = 1_760_000_000_000;
const TRACE = "0af7651916cd43dd8448eb211c80319c";
const NOW = T0 + 5_000;

let spanCounter = 0;
function nextSpanId(): string {
  spanCounter++;
  return spanCounter.toString(16).padStart(16, "0");
}

/** A step as the pathfinder emits it: a billing-agent tool call in prod, within its profile. */
function step(over: Partial<Step> = {}): Step {
  const spanId = over.spanId ?? nextSpanId();
  const traceId = over.traceId ?? TRACE;
  return Step.parse({
    id: `${traceId}:${spanId}`,
    traceId,
    spanId,
    taskId: "task-1",
    taskIdSource: "attribute",
    name: "execute_tool invoices.read",
    operation: "execute_tool",
    agent: { id: "billing-agent" },
    environment: "prod",
    tool: { name: "invoices.read" },
    startTimeMs: T0,
    endTimeMs: T0 + 20,
    status: "ok",
    links: [],
    attributes: {},
    receivedAtMs: T0 + 30,
    index: 0,
    ...over,
  });
}

const shipped: Policy = loadPolicy("policies");

function policyWith(profiles: unknown[], rules: unknown[] = []): Policy {
  return {
    version: "test-version",
    profiles: profiles.map((p) => AgentProfile.parse(p)),
    rules: new Map(rules.map((r) => RuleSetting.parse(r)).map((r) => [r.id, r])),
    redaction: { attributes: [], argumentKeys: [] },
    files: [],
  };
}

const ctx = (over: Partial<Parameters<typeof evaluateStep>[1]> = {}) => ({ policy: shipped, now: NOW, ...over });

describe("evaluateStep: benign steps", () => {
  it("gives no finding for a step within the profile", () => {
    expect(evaluateStep(step(), ctx())).toEqual([]);
  });

  it("gives no finding for an allowed egress, data at the ceiling and an allowed environment", () => {
    const s = step({
      tool: { name: "email.send" },
      destination: { address: "smtp.acme.example" },
      dataClassification: "confidential",
      environment: "staging",
    });
    expect(evaluateStep(s, ctx())).toEqual([]);
  });

  it("gives no finding for a step without a tool (e.g. a chat span)", () => {
    const s = step({ name: "chat gpt-4o", operation: "chat" });
    delete s.tool;
    expect(evaluateStep(s, ctx())).toEqual([]);
  });
});

describe("evaluateStep: scope.tool", () => {
  it("flags a tool outside the profile at the step's index, with evidence and a valid finding", () => {
    const s = step({ tool: { name: "shell.exec" }, index: 4, name: "execute_tool shell.exec" });
    const findings = evaluateStep(s, ctx());
    expect(findings).toHaveLength(1);
    const f = findings[0] as Finding;
    expect(Finding.parse(f)).toEqual(f);
    expect(f).toMatchObject({
      taskId: "task-1",
      agentId: "billing-agent",
      stepIndex: 4,
      traceId: s.traceId,
      spanId: s.spanId,
      ruleId: "scope.tool",
      kind: "out_of_scope",
      severity: "high",
      mode: "enforce",
      spanEndMs: s.endTimeMs,
      detectedAtMs: NOW,
      policyVersion: shipped.version,
    });
    expect(f.explanation).toMatch(/"shell\.exec".*outside its profile "billing-agent"/);
    expect(f.evidence).toEqual({
      observed: { tool: "shell.exec" },
      expected: { tools: ["invoices.read", "customers.read", "payments.refund", "email.send"] },
    });
    expect(f.tags.owaspAgentic.length).toBeGreaterThan(0);
  });

  it("has a deterministic id: the same inputs give the same id; another span gives another id", () => {
    const s = step({ tool: { name: "shell.exec" } });
    const a = evaluateStep(s, ctx())[0];
    const b = evaluateStep(structuredClone(s), ctx({ now: NOW + 60_000 }))[0];
    expect(a?.id).toMatch(/^[0-9a-f]{32}$/);
    expect(b?.id).toBe(a?.id);
    expect(a?.id).toBe(findingId("scope.tool", "task-1", s.traceId, s.spanId));
    const other = evaluateStep(step({ tool: { name: "shell.exec" } }), ctx())[0];
    expect(other?.id).not.toBe(a?.id);
    const otherTask = evaluateStep({ ...s, taskId: "task-2" }, ctx())[0];
    expect(otherTask?.id).not.toBe(a?.id);
  });

  it("a declared scope narrows: a tool in the profile but not in the declared scope is flagged, and says so", () => {
    const s = step({ tool: { name: "payments.refund" } });
    expect(evaluateStep(s, ctx())).toEqual([]);
    const findings = evaluateStep(s, ctx({ scope: { tools: ["invoices.read", "email.send"] } }));
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.tool"]);
    expect(findings[0]?.explanation).toMatch(/profile allows but this task's declared scope does not/);
    expect(findings[0]?.evidence.expected).toEqual({ tools: ["invoices.read", "email.send"] });
  });

  it("a declared scope can never widen: a declared tool outside the profile is still flagged", () => {
    const s = step({ tool: { name: "shell.exec" } });
    const findings = evaluateStep(s, ctx({ scope: { tools: ["invoices.read", "shell.exec"] } }));
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.tool"]);
    expect(findings[0]?.explanation).toMatch(/outside its profile/);
    expect(findings[0]?.evidence.expected).toEqual({ tools: ["invoices.read"] });
  });

  it("a declared empty tool list allows no tool", () => {
    expect(evaluateStep(step(), ctx({ scope: { tools: [] } })).map((f) => f.ruleId)).toEqual(["scope.tool"]);
  });

  it("names the agent by SPIFFE id when it has no agent id", () => {
    const s = step({
      agent: { spiffeId: "spiffe://acme.example/agents/coder/x" },
      environment: "sandbox",
      tool: { name: "payments.refund" },
    });
    const [f] = evaluateStep(s, ctx());
    expect(f?.ruleId).toBe("scope.tool");
    expect(f?.explanation).toMatch(
      /^spiffe:\/\/acme\.example\/agents\/coder\/x called tool "payments\.refund", which is outside its profile "coding-agent"/,
    );
    expect(f).not.toHaveProperty("agentId");
  });
});

describe("evaluateStep: scope.data", () => {
  it("flags data above the profile's ceiling", () => {
    const [f, ...rest] = evaluateStep(step({ dataClassification: "restricted" }), ctx());
    expect(rest).toEqual([]);
    expect(f?.ruleId).toBe("scope.data");
    expect(f?.evidence).toEqual({ observed: { dataClassification: "restricted" }, expected: { dataCeiling: "confidential" } });
    expect(f?.explanation).toMatch(/restricted data; the task may go no higher than confidential/);
  });

  it("a declared dataCeiling narrows the profile's", () => {
    const s = step({ dataClassification: "confidential" });
    expect(evaluateStep(s, ctx())).toEqual([]);
    const findings = evaluateStep(s, ctx({ scope: { dataCeiling: "internal" } }));
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.data"]);
    expect(findings[0]?.evidence.expected).toEqual({ dataCeiling: "internal" });
    expect(evaluateStep(step({ dataClassification: "internal" }), ctx({ scope: { dataCeiling: "internal" } }))).toEqual([]);
  });

  it("a declared dataCeiling above the profile's does not widen it", () => {
    const findings = evaluateStep(step({ dataClassification: "restricted" }), ctx({ scope: { dataCeiling: "restricted" } }));
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.data"]);
    expect(findings[0]?.evidence.expected).toEqual({ dataCeiling: "confidential" });
  });

  it("uses the schema's default ceiling (internal) when a profile sets none", () => {
    const policy = policyWith([{ id: "p", match: { agentIds: ["a"] }, tools: [{ name: "t" }] }]);
    const s = step({ agent: { id: "a" }, tool: { name: "t" }, dataClassification: "confidential" });
    delete s.environment;
    expect(evaluateStep(s, ctx({ policy })).map((f) => f.ruleId)).toEqual(["scope.data"]);
    expect(evaluateStep({ ...s, dataClassification: "internal" }, ctx({ policy }))).toEqual([]);
  });
});

describe("evaluateStep: scope.environment", () => {
  it("flags an environment outside the profile", () => {
    const [f, ...rest] = evaluateStep(step({ environment: "dev" }), ctx());
    expect(rest).toEqual([]);
    expect(f?.ruleId).toBe("scope.environment");
    expect(f?.evidence).toEqual({ observed: { environment: "dev" }, expected: { environments: ["prod", "staging"] } });
    expect(f?.explanation).toMatch(/environment "dev"; the task is limited to prod, staging/);
  });

  it("a declared environment list narrows but never widens", () => {
    expect(evaluateStep(step({ environment: "prod" }), ctx({ scope: { environments: ["staging"] } })).map((f) => f.ruleId)).toEqual([
      "scope.environment",
    ]);
    expect(evaluateStep(step({ environment: "staging" }), ctx({ scope: { environments: ["staging"] } }))).toEqual([]);
    const widened = evaluateStep(step({ environment: "dev" }), ctx({ scope: { environments: ["dev", "staging"] } }));
    expect(widened.map((f) => f.ruleId)).toEqual(["scope.environment"]);
    expect(widened[0]?.evidence.expected).toEqual({ environments: ["staging"] });
  });

  it("a step with no environment is not judged on environment", () => {
    const s = step();
    delete s.environment;
    expect(evaluateStep(s, ctx())).toEqual([]);
  });

  it("a profile without environments leaves the environment open, but a declared list still narrows it", () => {
    const policy = policyWith([{ id: "p", match: { agentIds: ["a"] }, tools: [{ name: "t" }] }]);
    const s = step({ agent: { id: "a" }, tool: { name: "t" }, environment: "prod" });
    expect(evaluateStep(s, ctx({ policy }))).toEqual([]);
    const findings = evaluateStep(s, ctx({ policy, scope: { environments: ["sandbox"] } }));
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.environment"]);
    expect(findings[0]?.evidence.expected).toEqual({ environments: ["sandbox"] });
    expect(evaluateStep({ ...s, environment: "sandbox" }, ctx({ policy, scope: { environments: ["sandbox"] } }))).toEqual([]);
  });
});

describe("evaluateStep: scope.egress", () => {
  const egress = (destination: Step["destination"], over: Partial<Step> = {}) =>
    step({ tool: { name: "email.send" }, destination, ...over });

  it("flags egress to a host not on the allowlist", () => {
    const [f, ...rest] = evaluateStep(egress({ address: "mail.evil.example" }), ctx());
    expect(rest).toEqual([]);
    expect(f?.ruleId).toBe("scope.egress");
    expect(f?.evidence).toEqual({
      observed: { destination: "mail.evil.example", from: "span" },
      expected: { egress: ["smtp.acme.example", "*.stripe.com"] },
    });
    expect(f?.explanation).toMatch(/sent data to mail\.evil\.example/);
  });

  it("`*.stripe.com` allows its subdomains but not a host that merely ends in stripe.com", () => {
    expect(evaluateStep(egress({ address: "api.stripe.com" }), ctx())).toEqual([]);
    expect(evaluateStep(egress({ address: "a.b.stripe.com" }), ctx())).toEqual([]);
    expect(evaluateStep(egress({ address: "API.Stripe.COM" }), ctx())).toEqual([]);
    expect(evaluateStep(egress({ address: "evilstripe.com" }), ctx()).map((f) => f.ruleId)).toEqual(["scope.egress"]);
    expect(evaluateStep(egress({ address: "api.stripe.com.evil.example" }), ctx()).map((f) => f.ruleId)).toEqual(["scope.egress"]);
  });

  it("an exact allowlist entry does not allow its subdomains", () => {
    expect(evaluateStep(egress({ address: "x.smtp.acme.example" }), ctx()).map((f) => f.ruleId)).toEqual(["scope.egress"]);
  });

  it("reads the host from url.full when there is no server.address", () => {
    expect(evaluateStep(egress({ url: "https://api.stripe.com/v1/charges" }), ctx())).toEqual([]);
    const findings = evaluateStep(egress({ url: "https://evilstripe.com/collect?x=1" }), ctx());
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.egress"]);
    expect(findings[0]?.evidence.observed).toEqual({ destination: "evilstripe.com", from: "span" });
  });

  it("takes the effect from the profile's tool grant, whatever the span says (fail closed); the span's only where the grant has none", () => {
    // email.send is granted with effect egress: no effect on the span, still an egress check
    expect(evaluateStep(egress({ address: "exfil.example" }), ctx()).map((f) => f.ruleId)).toEqual(["scope.egress"]);
    // a span that calls it a read does not escape the egress check
    expect(evaluateStep(egress({ address: "exfil.example" }, { effect: "read" }), ctx()).map((f) => f.ruleId)).toEqual(["scope.egress"]);
    // invoices.read is a read grant: a span calling it egress changes nothing either
    expect(evaluateStep(step({ destination: { address: "exfil.example" }, effect: "egress" }), ctx())).toEqual([]);
  });

  it("a declared egress list narrows the profile's and never widens it", () => {
    const scope = { egress: ["smtp.acme.example", "exfil.example"] };
    expect(evaluateStep(egress({ address: "smtp.acme.example" }), ctx({ scope }))).toEqual([]);
    expect(evaluateStep(egress({ address: "api.stripe.com" }), ctx({ scope })).map((f) => f.ruleId)).toEqual(["scope.egress"]);
    const widened = evaluateStep(egress({ address: "exfil.example" }), ctx({ scope }));
    expect(widened.map((f) => f.ruleId)).toEqual(["scope.egress"]);
    expect(widened[0]?.evidence.expected).toEqual({ egress: ["smtp.acme.example"] });
  });

  it("a declared host under a profile wildcard narrows it to that host", () => {
    const scope = { egress: ["api.stripe.com"] };
    expect(evaluateStep(egress({ address: "api.stripe.com" }), ctx({ scope }))).toEqual([]);
    expect(evaluateStep(egress({ address: "files.stripe.com" }), ctx({ scope })).map((f) => f.ruleId)).toEqual(["scope.egress"]);
    expect(evaluateStep(egress({ address: "smtp.acme.example" }), ctx({ scope })).map((f) => f.ruleId)).toEqual(["scope.egress"]);
  });

  it("a declared wildcard is intersected with the profile: it never widens it", () => {
    const policy = policyWith([
      {
        id: "p",
        match: { agentIds: ["a"] },
        tools: [{ name: "http.post", effect: "egress" }],
        egress: ["api.stripe.com", "*.eu.acme.example"],
      },
    ]);
    const s = (address: string) =>
      step({ agent: { id: "a" }, tool: { name: "http.post" }, destination: { address }, environment: undefined });
    const wide = { egress: ["*.stripe.com", "*.acme.example"] };
    expect(evaluateStep(s("files.stripe.com"), ctx({ policy, scope: wide })).map((f) => f.ruleId)).toEqual(["scope.egress"]);
    expect(evaluateStep(s("us.acme.example"), ctx({ policy, scope: wide })).map((f) => f.ruleId)).toEqual(["scope.egress"]);
    // what both allow stays allowed
    expect(evaluateStep(s("api.stripe.com"), ctx({ policy, scope: wide }))).toEqual([]);
    expect(evaluateStep(s("x.eu.acme.example"), ctx({ policy, scope: wide }))).toEqual([]);
    const [f] = evaluateStep(s("files.stripe.com"), ctx({ policy, scope: wide }));
    expect(f?.evidence.expected).toEqual({ egress: ["api.stripe.com", "*.eu.acme.example"] });
    // a narrower wildcard under a profile wildcard is an attenuation
    const narrower = { egress: ["*.fr.eu.acme.example"] };
    expect(evaluateStep(s("x.fr.eu.acme.example"), ctx({ policy, scope: narrower }))).toEqual([]);
    expect(evaluateStep(s("x.de.eu.acme.example"), ctx({ policy, scope: narrower })).map((f) => f.ruleId)).toEqual(["scope.egress"]);
  });

  it("counts a sensitive tool whose effect nobody gives as the worst the profile allows", () => {
    const unsure = policyWith([
      {
        id: "billing",
        match: { agentIds: ["billing-agent"] },
        tools: [
          { name: "invoices.read", effect: "read" },
          { name: "payouts.run", sensitive: "money" },
        ],
        egress: ["smtp.acme.example"],
      },
    ]);
    const run = (over: Parameters<typeof step>[0]) =>
      evaluateStep(step({ tool: { name: "payouts.run" }, ...over }), ctx({ policy: unsure }));
    // the profile allows egress somewhere, so an unknown effect is an egress: judged by where it goes
    expect(run({ destination: { address: "payouts.evil.example" } }).map((f) => f.ruleId)).toContain("scope.egress");
    expect(run({ destination: { address: "smtp.acme.example" } }).map((f) => f.ruleId)).not.toContain("scope.egress");
  });

  it("refuses an egress whose destination nothing tells (fail closed), unless the allowlist allows anywhere", () => {
    const blind = evaluateStep(step({ tool: { name: "email.send" } }), ctx());
    expect(blind.map((f) => f.ruleId)).toEqual(["scope.egress"]);
    expect(blind[0]?.evidence.observed).toEqual({ destination: null });
    const anywhere = { ...shipped, profiles: shipped.profiles.map((p) => ({ ...p, egress: ["*"] })) };
    expect(evaluateStep(step({ tool: { name: "email.send" } }), ctx({ policy: anywhere }))).toEqual([]);
  });
});

describe("evaluateStep: unknown agents and bad declarations", () => {
  it("flags an agent no profile matches, once per task", () => {
    const a = step({ agent: { id: "rogue-agent" }, tool: { name: "anything" } });
    const b = step({ agent: { id: "rogue-agent" }, tool: { name: "else" }, index: 1 });
    const [fa, ...restA] = evaluateStep(a, ctx());
    const [fb] = evaluateStep(b, ctx());
    expect(restA).toEqual([]);
    expect(fa).toMatchObject({ ruleId: "scope.unknown_agent", severity: "medium", mode: "alert", agentId: "rogue-agent" });
    expect(fa?.explanation).toMatch(/No agent profile matches rogue-agent/);
    expect(fa?.evidence.expected).toEqual({ profiles: expect.arrayContaining(["billing-agent", "coding-agent", "support-agent"]) });
    expect(fb?.id).toBe(fa?.id);
    expect(fb?.stepIndex).toBe(1);
    expect(fa?.id).toBe(findingId("scope.unknown_agent", "task-1", "", "", true));
    const otherTask = evaluateStep({ ...a, taskId: "task-2" }, ctx())[0];
    expect(otherTask?.id).not.toBe(fa?.id);
  });

  it("an unknown agent is not also judged on scope (there is no profile to judge by)", () => {
    const s = step({ agent: { id: "rogue" }, tool: { name: "x" }, environment: "dev", dataClassification: "restricted" });
    expect(evaluateStep(s, ctx()).map((f) => f.ruleId)).toEqual(["scope.unknown_agent"]);
  });

  it("flags a scope declaration that could not be used, once per task, and still applies the profile", () => {
    const s1 = step({ tool: { name: "shell.exec" } });
    const s2 = step({ index: 2 });
    const findings = evaluateStep(s1, ctx({ scopeError: "agent.task.scope is not JSON" }));
    expect(findings.map((f) => f.ruleId).sort()).toEqual(["scope.invalid_declaration", "scope.tool"]);
    const bad = findings.find((f) => f.ruleId === "scope.invalid_declaration");
    expect(bad).toMatchObject({ severity: "medium", mode: "alert" });
    expect(bad?.explanation).toMatch(/agent\.task\.scope is not JSON/);
    expect(bad?.evidence.observed).toEqual({ error: "agent.task.scope is not JSON" });
    const again = evaluateStep(s2, ctx({ scopeError: "agent.task.scope is not JSON" }));
    expect(again.map((f) => f.ruleId)).toEqual(["scope.invalid_declaration"]);
    expect(again[0]?.id).toBe(bad?.id);
  });
});

describe("evaluateStep: task.post_revocation", () => {
  const revokedAtMs = T0 + 1_000;

  it("flags a step that starts after the revocation", () => {
    const s = step({ startTimeMs: revokedAtMs + 1, endTimeMs: revokedAtMs + 5, index: 7 });
    const findings = evaluateStep(s, ctx({ revokedAtMs }));
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      ruleId: "task.post_revocation",
      kind: "post_revocation",
      severity: "critical",
      mode: "enforce",
      stepIndex: 7,
    });
    expect(findings[0]?.evidence).toEqual({ observed: { stepStartMs: revokedAtMs + 1 }, expected: { noActivityAfterMs: revokedAtMs } });
    expect(findings[0]?.explanation).toMatch(/"invoices\.read"/);
    // each later step is its own finding
    const other = evaluateStep(step({ startTimeMs: revokedAtMs + 2 }), ctx({ revokedAtMs }));
    expect(other[0]?.id).not.toBe(findings[0]?.id);
  });

  it("flags a step that starts exactly at the revocation time", () => {
    expect(evaluateStep(step({ startTimeMs: revokedAtMs }), ctx({ revokedAtMs })).map((f) => f.ruleId)).toEqual(["task.post_revocation"]);
  });

  it("does not flag a step that started before the revocation, even if it ended after", () => {
    expect(evaluateStep(step({ startTimeMs: revokedAtMs - 1, endTimeMs: revokedAtMs + 500 }), ctx({ revokedAtMs }))).toEqual([]);
  });

  it("comes with the step's other findings", () => {
    const s = step({ startTimeMs: revokedAtMs + 10, tool: { name: "shell.exec" } });
    expect(
      evaluateStep(s, ctx({ revokedAtMs }))
        .map((f) => f.ruleId)
        .sort(),
    ).toEqual(["scope.tool", "task.post_revocation"]);
  });
});

describe("evaluateStep: rule settings from policy", () => {
  const base = [
    {
      id: "billing",
      match: { agentIds: ["billing-agent"] },
      tools: [{ name: "invoices.read", effect: "read" }],
      environments: ["prod"],
      dataCeiling: "confidential",
    },
  ];

  it("override a rule's severity and mode", () => {
    const policy = policyWith(base, [{ id: "scope.tool", severity: "low", mode: "shadow" }]);
    const [f] = evaluateStep(step({ tool: { name: "shell.exec" } }), ctx({ policy }));
    expect(f).toMatchObject({ ruleId: "scope.tool", severity: "low", mode: "shadow", policyVersion: "test-version" });
  });

  it("override only what they name", () => {
    const policy = policyWith(base, [{ id: "scope.data", mode: "alert" }]);
    const [f] = evaluateStep(step({ dataClassification: "restricted" }), ctx({ policy }));
    expect(f).toMatchObject({ ruleId: "scope.data", severity: RULES["scope.data"].severity, mode: "alert" });
  });

  it("`enabled: false` suppresses a rule and only that rule", () => {
    const policy = policyWith(base, [{ id: "scope.tool", enabled: false }]);
    const s = step({ tool: { name: "shell.exec" }, environment: "dev" });
    expect(evaluateStep(s, ctx({ policy })).map((f) => f.ruleId)).toEqual(["scope.environment"]);
  });

  it("can disable post-revocation and unknown-agent findings", () => {
    const policy = policyWith(base, [
      { id: "task.post_revocation", enabled: false },
      { id: "scope.unknown_agent", enabled: false },
    ]);
    expect(evaluateStep(step({ startTimeMs: T0 + 10 }), ctx({ policy, revokedAtMs: T0 }))).toEqual([]);
    expect(evaluateStep(step({ agent: { id: "stranger" } }), ctx({ policy }))).toEqual([]);
  });

  it("the shipped rules.yaml keeps the defaults it names", () => {
    const [f] = evaluateStep(step({ agent: { id: "stranger" } }), ctx());
    expect(f).toMatchObject({ severity: "medium", mode: "alert" });
  });
});

describe("evaluateStep: unattributed tool calls", () => {
  it("flags a tool call that names no agent at all, once per task", () => {
    const findings = evaluateStep(step({ agent: {} }), ctx());
    expect(findings.map((f) => f.ruleId)).toEqual(["scope.unknown_agent"]);
    expect(findings[0]?.explanation).toMatch(/names no agent/);
    const again = evaluateStep(step({ agent: {} }), ctx());
    expect(again[0]?.id).toBe(findings[0]?.id);
  });

  it("does not flag an agent-less span that is not a tool call", () => {
    expect(evaluateStep(step({ agent: {}, tool: undefined, name: "chat", operation: "chat" }), ctx())).toEqual([]);
  });
});

describe("evaluateStep: budgets and flow rules (the path before the step)", () => {
  const profile = {
    id: "ops",
    match: { agentIds: ["ops-agent"] },
    tools: [
      { name: "crm.read", effect: "read" },
      { name: "email.send", effect: "egress" },
      { name: "http.post", effect: "egress" },
    ],
    dataCeiling: "restricted",
    egress: ["smtp.acme.example", "*.partner.example"],
    budgets: { maxSteps: 5, maxDurationMs: 60_000, maxStepsPerMinute: 3 },
    flows: [
      { after: "confidential", egress: ["smtp.acme.example"] },
      { after: "restricted", egress: [] },
    ],
  };
  const policy = policyWith([profile]);
  const opsStep = (over: Partial<Step> = {}) =>
    step({ agent: { id: "ops-agent" }, tool: { name: "crm.read" }, before: { stepsLastMinute: 0, elapsedMs: 0 }, ...over });
  const rules = (s: Step) => evaluateStep(s, { policy, now: NOW }).map((f) => f.ruleId);

  it("flags the step that takes the task past its step, duration and pace budgets, once per task", () => {
    expect(rules(opsStep({ index: 4, before: { stepsLastMinute: 2, elapsedMs: 59_000 } }))).toEqual([]);
    expect(rules(opsStep({ index: 5, before: { stepsLastMinute: 0, elapsedMs: 0 } }))).toEqual(["budget.steps"]);
    expect(rules(opsStep({ index: 1, before: { stepsLastMinute: 0, elapsedMs: 59_990 } }))).toEqual(["budget.duration"]);
    expect(rules(opsStep({ index: 3, before: { stepsLastMinute: 3, elapsedMs: 1_000 } }))).toEqual(["budget.rate"]);
    // one finding per task and rule, however many steps break it
    const a = evaluateStep(opsStep({ index: 6 }), { policy, now: NOW })[0];
    const b = evaluateStep(opsStep({ index: 7 }), { policy, now: NOW })[0];
    expect(a?.id).toBe(b?.id);
    expect(Finding.parse(a).evidence).toEqual({ observed: { steps: 7 }, expected: { maxSteps: 5 } });
  });

  it("after a confidential read, egress may go only where the flow rule allows, though the profile allows more", () => {
    const egress = (host: string, touched?: "internal" | "confidential" | "restricted") =>
      rules(
        opsStep({
          tool: { name: "http.post" },
          destination: { address: host },
          before: { stepsLastMinute: 0, elapsedMs: 0, ...(touched ? { maxDataClassification: touched } : {}) },
        }),
      );
    expect(egress("api.partner.example")).toEqual([]);
    expect(egress("api.partner.example", "internal")).toEqual([]);
    expect(egress("api.partner.example", "confidential")).toEqual(["flow.egress_after_sensitive_read"]);
    expect(egress("smtp.acme.example", "confidential")).toEqual([]);
    // after restricted data, nowhere
    expect(egress("smtp.acme.example", "restricted")).toEqual(["flow.egress_after_sensitive_read"]);
    const f = evaluateStep(
      opsStep({
        tool: { name: "http.post" },
        destination: { address: "api.partner.example" },
        before: { stepsLastMinute: 0, elapsedMs: 0, maxDataClassification: "confidential" },
      }),
      { policy, now: NOW },
    )[0];
    expect(f).toMatchObject({ kind: "flow", severity: "high", mode: "enforce" });
    expect(f?.explanation).toMatch(/after the task read confidential data/);
  });

  it("a read after egress is not a flow: only what came before the egress counts", () => {
    expect(rules(opsStep({ tool: { name: "http.post" }, destination: { address: "api.partner.example" } }))).toEqual([]);
  });
});

describe("evaluateStep: agent.quarantined", () => {
  const quarantine = { atMs: T0 + 1_000, findingId: "f-exfil" };

  it("flags whatever a quarantined agent does after its quarantine, in any task, and nothing before it", () => {
    const after = evaluateStep(step({ taskId: "another-task", startTimeMs: quarantine.atMs + 5 }), ctx({ quarantine }));
    expect(after.map((f) => f.ruleId)).toEqual(["agent.quarantined"]);
    expect(after[0]).toMatchObject({ kind: "post_revocation", severity: "critical", mode: "enforce", taskId: "another-task" });
    expect(after[0]?.explanation).toMatch(/quarantined at .*finding f-exfil.*acted again/);
    expect(evaluateStep(step({ startTimeMs: quarantine.atMs - 1 }), ctx({ quarantine }))).toEqual([]);
  });
});
