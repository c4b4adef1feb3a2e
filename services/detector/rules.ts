import { createHash } from "node:crypto";
import { DATA_CLASSIFICATIONS, type DataClassification, type TaskScope } from "../../schemas/action.js";
import type { Finding, FindingKind, RuleMode, Severity } from "../../schemas/finding.js";
import type { AgentProfile } from "../../schemas/policy.js";
import type { Step } from "../../schemas/step.js";
import { destinationAllowed, destinationsOf, effectOf, grantOf } from "./arguments.js";
import { anomalyHits, type Baseline, baselineSettings, hostOf } from "./baseline.js";
import { type Policy, profileFor, spiffeMatches } from "./policy.js";
import { intentHits, provenanceHits } from "./provenance.js";

/**
 * The detector's rules: plain functions over a step and what is known of its task.
 * Each rule has an id, a kind, a default severity and mode (policy files may change
 * both), and the framework tags a SOC maps it to.
 */
export interface RuleDefinition {
  id: string;
  kind: FindingKind;
  severity: Severity;
  mode: RuleMode;
  confidence: number;
  tags: Finding["tags"];
  /** Findings of a once-per-task rule share one id for the whole task. */
  oncePerTask?: boolean;
  /**
   * Findings of a once-per-change rule share one id per change of the task (a scope change,
   * a new environment, a credential reused), whichever step shows it first.
   */
  oncePerChange?: boolean;
}

const lifecycleTags = {
  owaspAgentic: ["ASI03 Identity and Privilege Abuse", "ASI01 Agent Goal Hijack"],
  maestro: ["L6 Security and Compliance", "L4 Deployment and Infrastructure"],
  nistAiRmf: ["MANAGE 2.4", "GOVERN 1.4"],
};

const provenanceTags = {
  owaspAgentic: ["ASI01 Agent Goal Hijack", "ASI06 Memory and Context Poisoning"],
  maestro: ["L1 Foundation Models", "L3 Agent Frameworks"],
  nistAiRmf: ["MEASURE 2.7", "MANAGE 2.4"],
};

const scopeTags = {
  owaspAgentic: ["ASI02 Tool Misuse and Exploitation", "ASI03 Identity and Privilege Abuse"],
  maestro: ["L3 Agent Frameworks", "L6 Security and Compliance"],
  nistAiRmf: ["MANAGE 2.4", "MEASURE 2.7"],
};

/** A budget rule: once per task, an alert by default (a runaway task, not yet an attack). */
function budgetRule<Id extends string>(id: Id, confidence: number) {
  return {
    id,
    kind: "out_of_scope",
    severity: "medium",
    mode: "alert",
    confidence,
    oncePerTask: true,
    tags: {
      owaspAgentic: ["ASI08 Cascading Failures", "ASI10 Rogue Agents"],
      maestro: ["L3 Agent Frameworks", "L4 Deployment and Infrastructure"],
      nistAiRmf: ["MANAGE 2.4", "MEASURE 2.6"],
    },
  } as const satisfies RuleDefinition;
}

/** A baseline rule: an alert by default (unlike the agent's history, not against its policy). */
function anomalyRule<Id extends string>(id: Id, severity: Severity, confidence: number, oncePerTask = false, mode: RuleMode = "alert") {
  return {
    id,
    kind: "anomaly",
    severity,
    mode,
    confidence,
    ...(oncePerTask ? { oncePerTask } : {}),
    tags: {
      owaspAgentic: ["ASI10 Rogue Agents", "ASI01 Agent Goal Hijack"],
      maestro: ["L5 Evaluation and Observability", "L3 Agent Frameworks"],
      nistAiRmf: ["MEASURE 2.4", "MEASURE 3.1"],
    },
  } as const satisfies RuleDefinition;
}

export const RULES = {
  "scope.tool": { id: "scope.tool", kind: "out_of_scope", severity: "high", mode: "enforce", confidence: 0.95, tags: scopeTags },
  "scope.data": { id: "scope.data", kind: "out_of_scope", severity: "high", mode: "enforce", confidence: 0.9, tags: scopeTags },
  "scope.environment": {
    id: "scope.environment",
    kind: "out_of_scope",
    severity: "high",
    mode: "enforce",
    confidence: 0.9,
    tags: { ...scopeTags, maestro: ["L4 Deployment and Infrastructure", "L6 Security and Compliance"] },
  },
  "scope.egress": {
    id: "scope.egress",
    kind: "out_of_scope",
    severity: "high",
    mode: "enforce",
    confidence: 0.9,
    tags: { ...scopeTags, owaspAgentic: ["ASI02 Tool Misuse and Exploitation", "ASI01 Agent Goal Hijack"] },
  },
  "scope.unknown_agent": {
    id: "scope.unknown_agent",
    kind: "out_of_scope",
    severity: "medium",
    mode: "alert",
    confidence: 0.8,
    oncePerTask: true,
    tags: { owaspAgentic: ["ASI10 Rogue Agents"], maestro: ["L7 Agent Ecosystem"], nistAiRmf: ["GOVERN 1.6", "MAP 4.1"] },
  },
  "scope.invalid_declaration": {
    id: "scope.invalid_declaration",
    kind: "out_of_scope",
    severity: "medium",
    mode: "alert",
    confidence: 0.7,
    oncePerTask: true,
    tags: scopeTags,
  },
  "scope.delegation": {
    id: "scope.delegation",
    kind: "out_of_scope",
    severity: "high",
    mode: "enforce",
    confidence: 0.9,
    tags: {
      owaspAgentic: ["ASI03 Identity and Privilege Abuse", "ASI07 Insecure Inter-Agent Communication"],
      maestro: ["L7 Agent Ecosystem", "L6 Security and Compliance"],
      nistAiRmf: ["MANAGE 2.4", "GOVERN 6.1"],
    },
  },
  "budget.steps": budgetRule("budget.steps", 0.9),
  "budget.duration": budgetRule("budget.duration", 0.9),
  "budget.rate": budgetRule("budget.rate", 0.8),
  "flow.egress_after_sensitive_read": {
    id: "flow.egress_after_sensitive_read",
    kind: "flow",
    severity: "high",
    mode: "enforce",
    confidence: 0.9,
    tags: {
      owaspAgentic: ["ASI02 Tool Misuse and Exploitation", "ASI01 Agent Goal Hijack"],
      maestro: ["L2 Data Operations", "L6 Security and Compliance"],
      nistAiRmf: ["MEASURE 2.10", "MANAGE 2.4"],
    },
  },
  "provenance.untrusted_argument": {
    id: "provenance.untrusted_argument",
    kind: "provenance",
    severity: "high",
    mode: "enforce",
    confidence: 0.8,
    tags: provenanceTags,
  },
  "provenance.unexplained_argument": {
    id: "provenance.unexplained_argument",
    kind: "provenance",
    severity: "high",
    mode: "alert",
    confidence: 0.7,
    tags: provenanceTags,
  },
  "intent.unrequested_action": {
    id: "intent.unrequested_action",
    kind: "intent",
    severity: "high",
    mode: "enforce",
    confidence: 0.75,
    tags: {
      owaspAgentic: ["ASI01 Agent Goal Hijack", "ASI02 Tool Misuse and Exploitation"],
      maestro: ["L3 Agent Frameworks", "L6 Security and Compliance"],
      nistAiRmf: ["MEASURE 2.7", "MANAGE 2.4"],
    },
  },
  "ingest.identity_mismatch": {
    id: "ingest.identity_mismatch",
    kind: "identity",
    severity: "high",
    mode: "alert",
    confidence: 0.95,
    tags: {
      owaspAgentic: ["ASI03 Identity and Privilege Abuse", "ASI07 Insecure Inter-Agent Communication"],
      maestro: ["L6 Security and Compliance", "L7 Agent Ecosystem"],
      nistAiRmf: ["MANAGE 2.4", "GOVERN 1.6"],
    },
  },
  "task.telemetry_silence": {
    id: "task.telemetry_silence",
    kind: "telemetry_gap",
    severity: "medium",
    mode: "alert",
    confidence: 0.7,
    oncePerTask: true,
    tags: {
      owaspAgentic: ["ASI10 Rogue Agents"],
      maestro: ["L5 Evaluation and Observability"],
      nistAiRmf: ["MEASURE 2.4", "MANAGE 4.1"],
    },
  },
  // severities and modes calibrated on both evaluation sets (docs/rules.md, "Severity calibration")
  "anomaly.novel_tool": anomalyRule("anomaly.novel_tool", "medium", 0.7),
  "anomaly.transition": anomalyRule("anomaly.transition", "medium", 0.7),
  "anomaly.novel_destination": anomalyRule("anomaly.novel_destination", "medium", 0.7),
  "anomaly.novel_entity": anomalyRule("anomaly.novel_entity", "low", 0.6),
  "anomaly.tool_repeat": anomalyRule("anomaly.tool_repeat", "medium", 0.6, true),
  // late by construction (a task grows past the norm after the harm) and noisy: context, not alerts
  "anomaly.rate": anomalyRule("anomaly.rate", "low", 0.4, true, "shadow"),
  "anomaly.path_length": anomalyRule("anomaly.path_length", "low", 0.4, true, "shadow"),
  "task.scope_changed": {
    id: "task.scope_changed",
    kind: "context_change",
    severity: "medium",
    mode: "alert",
    confidence: 0.9,
    oncePerChange: true,
    tags: lifecycleTags,
  },
  "task.environment_changed": {
    id: "task.environment_changed",
    kind: "context_change",
    severity: "medium",
    mode: "alert",
    confidence: 0.9,
    oncePerChange: true,
    tags: lifecycleTags,
  },
  "credential.reuse": {
    id: "credential.reuse",
    kind: "credential_reuse",
    severity: "high",
    mode: "alert",
    confidence: 0.95,
    oncePerChange: true,
    tags: {
      owaspAgentic: ["ASI03 Identity and Privilege Abuse", "ASI07 Insecure Inter-Agent Communication"],
      maestro: ["L6 Security and Compliance", "L7 Agent Ecosystem"],
      nistAiRmf: ["MANAGE 2.4", "MEASURE 2.7"],
    },
  },
  "agent.quarantined": {
    id: "agent.quarantined",
    kind: "post_revocation",
    severity: "critical",
    mode: "enforce",
    confidence: 0.99,
    tags: {
      owaspAgentic: ["ASI10 Rogue Agents", "ASI03 Identity and Privilege Abuse"],
      maestro: ["L6 Security and Compliance", "L7 Agent Ecosystem"],
      nistAiRmf: ["MANAGE 2.4", "MANAGE 4.1"],
    },
  },
  "credential.post_revocation": {
    id: "credential.post_revocation",
    kind: "post_revocation",
    severity: "high",
    mode: "alert",
    confidence: 0.95,
    tags: {
      owaspAgentic: ["ASI03 Identity and Privilege Abuse", "ASI10 Rogue Agents"],
      maestro: ["L6 Security and Compliance"],
      nistAiRmf: ["MANAGE 2.4"],
    },
  },
  "task.post_revocation": {
    id: "task.post_revocation",
    kind: "post_revocation",
    severity: "critical",
    mode: "enforce",
    confidence: 0.99,
    tags: {
      owaspAgentic: ["ASI03 Identity and Privilege Abuse", "ASI10 Rogue Agents"],
      maestro: ["L6 Security and Compliance"],
      nistAiRmf: ["MANAGE 2.4"],
    },
  },
} as const satisfies Record<string, RuleDefinition>;

export type RuleId = keyof typeof RULES;

export interface StepContext {
  policy: Policy;
  /** The task's declared scope, which narrows the profile. */
  scope?: TaskScope;
  scopeError?: string;
  revokedAtMs?: number;
  /** The step's credential was revoked then (for whatever trigger: drift, its task's end, a reuse). */
  credentialRevoked?: { atMs: number; trigger: string; taskId: string };
  /** The step's agent was quarantined then (by a response), until someone lifts it. */
  quarantine?: { atMs: number; findingId: string };
  /** The learned behaviour of the step's agent, if any. */
  baseline?: Baseline;
  now: number;
}

export interface Hit {
  rule: RuleId;
  explanation: string;
  observed: unknown;
  expected: unknown;
  /** For a once-per-change rule: what identifies the change within the task. */
  change?: string;
  /** The severity of this hit when it differs from the rule's default (a policy setting still wins). */
  severity?: Severity;
}

export function findingId(ruleId: string, taskId: string, traceId: string, spanId: string, oncePerTask = false, change?: string): string {
  const basis =
    change !== undefined
      ? `${ruleId}|${taskId}|change|${change}`
      : oncePerTask
        ? `${ruleId}|${taskId}`
        : `${ruleId}|${taskId}|${traceId}|${spanId}`;
  return createHash("sha256").update(basis).digest("hex").slice(0, 32);
}

const rank = (c: DataClassification) => DATA_CLASSIFICATIONS.indexOf(c);

/** The effective limit: the profile, narrowed by the task's declared scope (never widened). */
function narrowed<T>(profile: T[], declared: T[] | undefined): T[] {
  return declared ? declared.filter((x) => profile.includes(x)) : profile;
}

export function hostAllowed(host: string, allow: string[]): boolean {
  return destinationAllowed({ host }, allow);
}

/**
 * The egress allowlist the profile and the declared scope both allow. Entries are hosts or
 * `*.` wildcards, so the intersection of two entries is whichever one the other covers
 * (a declared `api.stripe.com` under the profile's `*.stripe.com` narrows it to that host).
 */
function narrowedEgress(profile: string[], declared: string[] | undefined): string[] {
  if (!declared) return profile;
  const out = new Set<string>();
  for (const d of declared) {
    for (const p of profile) {
      if (hostAllowed(d.toLowerCase(), [p])) out.add(d);
      else if (hostAllowed(p.toLowerCase(), [d])) out.add(p);
    }
  }
  return [...out];
}

function scopeHits(step: Step, profile: AgentProfile, ctx: { scope?: TaskScope }): Hit[] {
  const hits: Hit[] = [];
  const agent = step.agent.id ?? step.agent.spiffeId ?? "agent";
  const profileTools = profile.tools.map((t) => t.name);
  if (step.tool) {
    const allowed = narrowed(profileTools, ctx.scope?.tools);
    if (!allowed.includes(step.tool.name)) {
      const inProfile = profileTools.includes(step.tool.name);
      hits.push({
        rule: "scope.tool",
        explanation: inProfile
          ? `${agent} called tool "${step.tool.name}", which its profile allows but this task's declared scope does not.`
          : `${agent} called tool "${step.tool.name}", which is outside its profile "${profile.id}".`,
        observed: { tool: step.tool.name },
        expected: { tools: allowed },
      });
    }
  }
  const grant = grantOf(profile, step.tool?.name);
  const data = step.dataClassification ?? grant?.data;
  if (data) {
    const profileCeiling = profile.dataCeiling;
    const ceiling = ctx.scope?.dataCeiling && rank(ctx.scope.dataCeiling) < rank(profileCeiling) ? ctx.scope.dataCeiling : profileCeiling;
    if (rank(data) > rank(ceiling)) {
      hits.push({
        rule: "scope.data",
        explanation: `${agent} touched ${data} data${step.dataClassification ? "" : ` (its profile's grant for ${step.tool?.name})`}; the task may go no higher than ${ceiling}.`,
        observed: { dataClassification: data },
        expected: { dataCeiling: ceiling },
      });
    }
  }
  // a profile without environments leaves them open; a declared list still narrows that
  const environments = profile.environments.length > 0 ? narrowed(profile.environments, ctx.scope?.environments) : ctx.scope?.environments;
  if (step.environment && environments && !environments.includes(step.environment)) {
    hits.push({
      rule: "scope.environment",
      explanation: `${agent} acted in environment "${step.environment}"; the task is limited to ${environments.join(", ") || "no environment"}.`,
      observed: { environment: step.environment },
      expected: { environments },
    });
  }
  if (effectOf(step, profile) === "egress") {
    const allowed = narrowedEgress(profile.egress, ctx.scope?.egress);
    const destinations = destinationsOf(step, grant, hostOf(step));
    const refused = destinations.find((d) => !destinationAllowed(d, allowed));
    // an egress whose destination nothing tells cannot be checked: refused, unless anywhere is allowed
    if (destinations.length === 0 && !allowed.includes("*")) {
      hits.push({
        rule: "scope.egress",
        explanation: `${agent} sent data out (${step.tool?.name ?? step.name}) without saying where: no server.address or url.full on the span, no recipient or URL argument the profile declares. An egress whose destination cannot be checked against the allowlist is refused.`,
        observed: { destination: null },
        expected: { egress: allowed, destinationFrom: ["server.address", "url.full", "an argument declared recipient or url"] },
      });
    } else if (refused) {
      const to = refused.email ?? refused.host;
      hits.push({
        rule: "scope.egress",
        explanation: `${agent} sent data to ${to}${refused.from === "span" ? "" : ` (its ${refused.from})`}, which is not on the task's egress allowlist.`,
        observed: { destination: refused.host, ...(refused.email ? { recipient: refused.email } : {}), from: refused.from },
        expected: { egress: allowed },
      });
    }
  }
  return hits;
}

/** Budgets: the task's steps, duration and pace, as the path stands at this step. */
function budgetHits(step: Step, profile: AgentProfile): Hit[] {
  const budgets = profile.budgets;
  if (!budgets || !step.before) return [];
  const hits: Hit[] = [];
  const agent = step.agent.id ?? step.agent.spiffeId ?? "agent";
  const steps = step.index + 1;
  if (budgets.maxSteps !== undefined && steps > budgets.maxSteps) {
    hits.push({
      rule: "budget.steps",
      explanation: `${agent}'s task has taken ${steps} steps; its profile "${profile.id}" allows ${budgets.maxSteps}.`,
      observed: { steps },
      expected: { maxSteps: budgets.maxSteps },
    });
  }
  const durationMs = step.before.elapsedMs + Math.max(0, step.endTimeMs - step.startTimeMs);
  if (budgets.maxDurationMs !== undefined && durationMs > budgets.maxDurationMs) {
    hits.push({
      rule: "budget.duration",
      explanation: `${agent}'s task has run for ${Math.round(durationMs)} ms; its profile "${profile.id}" allows ${budgets.maxDurationMs} ms.`,
      observed: { durationMs },
      expected: { maxDurationMs: budgets.maxDurationMs },
    });
  }
  const perMinute = step.before.stepsLastMinute + 1;
  if (budgets.maxStepsPerMinute !== undefined && perMinute > budgets.maxStepsPerMinute) {
    hits.push({
      rule: "budget.rate",
      explanation: `${agent} took ${perMinute} steps within a minute; its profile "${profile.id}" allows ${budgets.maxStepsPerMinute}.`,
      observed: { stepsInLastMinute: perMinute },
      expected: { maxStepsPerMinute: budgets.maxStepsPerMinute },
    });
  }
  return hits;
}

/**
 * The most sensitive data the task touched before the step: what its spans said, and what the
 * profile's grants say of the tools it read with (`data` on a tool grant).
 */
function touchedBefore(step: Step, profile: AgentProfile): DataClassification | undefined {
  let touched = step.before?.maxDataClassification;
  for (const r of step.before?.reads ?? []) {
    const data = grantOf(profile, r.tool)?.data;
    if (data && (touched === undefined || rank(data) > rank(touched))) touched = data;
  }
  return touched;
}

/** Flow rules: egress after the task touched sensitive data goes only where the rule allows (hosts, and declared recipients). */
function flowHits(step: Step, profile: AgentProfile): Hit[] {
  if (profile.flows.length === 0) return [];
  const touched = touchedBefore(step, profile);
  if (!touched) return [];
  const grant = grantOf(profile, step.tool?.name);
  if (effectOf(step, profile) !== "egress") return [];
  const destinations = destinationsOf(step, grant, hostOf(step));
  for (const flow of profile.flows) {
    if (rank(touched) < rank(flow.after)) continue;
    if (destinations.length === 0 && !flow.egress.includes("*")) {
      return [
        {
          rule: "flow.egress_after_sensitive_read",
          explanation: `${step.agent.id ?? "The agent"} sent data out (${step.tool?.name ?? step.name}) after the task read ${touched} data, without saying where; after ${flow.after} data its egress may go only to ${flow.egress.join(", ") || "nowhere"}, and a destination that cannot be checked is refused.`,
          observed: { destination: null, dataTouchedBefore: touched },
          expected: { after: flow.after, egress: flow.egress },
        },
      ];
    }
    const refused = destinations.find((d) => !destinationAllowed(d, flow.egress));
    if (!refused) continue;
    const to = refused.email ?? refused.host;
    return [
      {
        rule: "flow.egress_after_sensitive_read",
        explanation: `${step.agent.id ?? "The agent"} sent data to ${to} after the task read ${touched} data; after ${flow.after} data its egress may go only to ${flow.egress.join(", ") || "nowhere"}.`,
        observed: { destination: refused.host, ...(refused.email ? { recipient: refused.email } : {}), dataTouchedBefore: touched },
        expected: { after: flow.after, egress: flow.egress },
      },
    ];
  }
  return [];
}

/**
 * A delegate may do no more than any agent above it (attenuation): the step is checked
 * against each hop of its lineage, that hop's profile narrowed by that hop's declared
 * scope. The first hop whose limits the step breaks is the finding.
 */
function delegationHit(step: Step, ctx: StepContext): Hit | undefined {
  for (const hop of step.lineage ?? []) {
    if (!hop.agentId && !hop.spiffeId) continue;
    const profile = profileFor(ctx.policy, {
      ...(hop.agentId ? { id: hop.agentId } : {}),
      ...(hop.spiffeId ? { spiffeId: hop.spiffeId } : {}),
    });
    // an agent above without a profile bounds nothing here (scope.unknown_agent flags it on its own steps)
    if (!profile) continue;
    const broken = scopeHits(step, profile, hop.declaredScope ? { scope: hop.declaredScope } : {})[0];
    if (!broken) continue;
    const by = hop.agentId ?? hop.spiffeId;
    const where = hop.taskId === step.taskId ? "in this task" : `in task ${hop.taskId}`;
    return {
      rule: "scope.delegation",
      explanation: `${step.agent.id ?? "A delegate"} acts for ${by} (${where}) and may do no more than it: ${broken.explanation}`,
      observed: broken.observed,
      expected: { delegatedBy: { taskId: hop.taskId, agentId: hop.agentId, profile: profile.id }, limit: broken.expected },
    };
  }
  return undefined;
}

/**
 * A span may speak only for the workload its sender's credential names (docs/trust-model.md).
 * Ingest checks the credential's own list (`identityMismatch`); here the policy: a sender whose
 * credential proves a SPIFFE id may not speak for an agent whose profile matches other SPIFFE ids.
 */
function identityHit(step: Step, policy: Policy): Hit | undefined {
  const agent = step.agent.id ?? step.agent.spiffeId ?? "an agent";
  if (step.identityMismatch) {
    const { claimed, allowed } = step.identityMismatch;
    return {
      rule: "ingest.identity_mismatch",
      explanation: `A span sent by ${step.sender?.name ?? "an authenticated sender"} speaks for ${[claimed.agentId, claimed.spiffeId].filter(Boolean).join(" / ")}, which its credential does not name (it may speak for ${[...allowed.agentIds, ...allowed.spiffeIds].join(", ") || "no agent"}): the span is recorded but trusted for nothing.`,
      observed: { sender: step.sender, claimed },
      expected: { allowed },
    };
  }
  const proven = step.sender?.spiffeId;
  if (!proven || !step.agent.id) return undefined;
  const byAgent = policy.profiles.find((p) => p.match.agentIds.includes(step.agent.id as string));
  if (!byAgent || byAgent.match.spiffeIds.length === 0 || byAgent.match.spiffeIds.some((p) => spiffeMatches(p, proven))) return undefined;
  return {
    rule: "ingest.identity_mismatch",
    explanation: `A span sent with the credential of ${proven} speaks for ${agent}, whose profile "${byAgent.id}" covers other workloads (${byAgent.match.spiffeIds.join(", ")}): it is judged by the profile its credential proves, not the one it claims.`,
    observed: { sender: step.sender, claimed: { agentId: step.agent.id } },
    expected: { profile: byAgent.id, spiffeIds: byAgent.match.spiffeIds },
  };
}

/** Evaluates every rule on one step. Pure: the same step and context give the same findings. */
export function evaluateStep(step: Step, ctx: StepContext): Finding[] {
  const hits: Hit[] = [];
  const identity = identityHit(step, ctx.policy);
  if (identity) hits.push(identity);
  // a span whose claim its sender cannot back is judged by what the sender proved (fail closed)
  const profile = identity
    ? profileFor(ctx.policy, step.sender?.spiffeId ? { spiffeId: step.sender.spiffeId } : {})
    : profileFor(ctx.policy, step.agent);
  if (ctx.revokedAtMs !== undefined && step.startTimeMs >= ctx.revokedAtMs) {
    hits.push({
      rule: "task.post_revocation",
      explanation: `The task's credentials were revoked at ${new Date(ctx.revokedAtMs).toISOString()}, yet it still acted ("${step.tool?.name ?? step.name}").`,
      observed: { stepStartMs: step.startTimeMs },
      expected: { noActivityAfterMs: ctx.revokedAtMs },
    });
  }
  // a credential revoked before the step began, still used (a task already revoked says so once, above)
  const used = ctx.credentialRevoked;
  if (used && step.credentialId && step.startTimeMs >= used.atMs && ctx.revokedAtMs === undefined) {
    hits.push({
      rule: "credential.post_revocation",
      explanation: `${step.agent.id ?? "The agent"} used credential ${step.credentialId} ("${step.tool?.name ?? step.name}"), revoked at ${new Date(used.atMs).toISOString()} (${used.trigger}, task ${used.taskId}): something still holds it, or the store did not end it.`,
      observed: { credentialId: step.credentialId, stepStartMs: step.startTimeMs },
      expected: { revokedAtMs: used.atMs, trigger: used.trigger },
    });
  }
  if (ctx.quarantine && step.startTimeMs >= ctx.quarantine.atMs) {
    hits.push({
      rule: "agent.quarantined",
      explanation: `${step.agent.id ?? "The agent"} was quarantined at ${new Date(ctx.quarantine.atMs).toISOString()} (finding ${ctx.quarantine.findingId}), yet it acted again ("${step.tool?.name ?? step.name}").`,
      observed: { stepStartMs: step.startTimeMs },
      expected: { noActivityAfterMs: ctx.quarantine.atMs },
    });
  }
  if (!profile) {
    // an identified agent without a profile, or a tool call that names no agent at all
    if (step.agent.id || step.agent.spiffeId || step.tool) {
      const who = step.agent.id ?? step.agent.spiffeId;
      hits.push({
        rule: "scope.unknown_agent",
        explanation: who
          ? `No agent profile matches ${who}; its actions are unbounded by policy.`
          : `A tool call ("${step.tool?.name}") names no agent (no gen_ai.agent.id, no spiffe.id), so no profile bounds it.`,
        observed: { agent: step.agent },
        expected: { profiles: ctx.policy.profiles.map((p) => p.id) },
      });
    }
  } else {
    hits.push(
      ...scopeHits(step, profile, ctx),
      ...budgetHits(step, profile),
      ...flowHits(step, profile),
      ...provenanceHits(step, profile),
      ...intentHits(step, profile),
    );
  }
  if (ctx.baseline) {
    const flagged = (rule: RuleId) => hits.some((h) => h.rule === rule);
    hits.push(
      ...anomalyHits(step, ctx.baseline, baselineSettings(profile), {
        effect: effectOf(step, profile),
        // a value a policy rule flags on this step is not also reported as new
        skip: { tool: flagged("scope.tool"), destination: flagged("scope.egress") || flagged("flow.egress_after_sensitive_read") },
      }),
    );
  }
  const delegation = delegationHit(step, ctx);
  if (delegation) hits.push(delegation);
  if (ctx.scopeError) {
    hits.push({
      rule: "scope.invalid_declaration",
      explanation: `The task declared a scope that cannot be used (${ctx.scopeError}); the profile's limits apply instead.`,
      observed: { error: ctx.scopeError },
      expected: { scope: "a JSON object with tools, dataCeiling, environments, egress" },
    });
  }
  return findingsOf(hits, step, ctx.policy, ctx.now);
}

/** Where a finding points: the step it flags (or, for a task-level finding, the task's last step). */
interface FlaggedStep {
  taskId: string;
  agentId?: string;
  index: number;
  traceId: string;
  spanId: string;
  endTimeMs: number;
}

export function findingsOf(hits: Hit[], step: Step, policy: Policy, now: number): Finding[] {
  const at: FlaggedStep = {
    taskId: step.taskId,
    ...(step.agent.id ? { agentId: step.agent.id } : {}),
    index: step.index,
    traceId: step.traceId,
    spanId: step.spanId,
    endTimeMs: step.endTimeMs,
  };
  return hits.flatMap((hit) => {
    const f = toFinding(hit, at, policy, now);
    return f ? [f] : [];
  });
}

/** A rule hit as a finding, with the severity and mode the policy sets; none when the rule is disabled. */
function toFinding(hit: Hit, at: FlaggedStep, policy: Policy, now: number): Finding | undefined {
  const def: RuleDefinition = RULES[hit.rule];
  const setting = policy.rules.get(def.id);
  if (setting?.enabled === false) return undefined;
  return {
    id: findingId(def.id, at.taskId, at.traceId, at.spanId, def.oncePerTask, def.oncePerChange ? (hit.change ?? "") : undefined),
    taskId: at.taskId,
    ...(at.agentId ? { agentId: at.agentId } : {}),
    stepIndex: at.index,
    traceId: at.traceId,
    spanId: at.spanId,
    ruleId: def.id,
    kind: def.kind,
    severity: setting?.severity ?? hit.severity ?? def.severity,
    mode: setting?.mode ?? def.mode,
    confidence: def.confidence,
    explanation: hit.explanation,
    evidence: { observed: hit.observed, expected: hit.expected },
    tags: def.tags,
    spanEndMs: at.endTimeMs,
    detectedAtMs: now,
    policyVersion: policy.version,
  };
}

/**
 * Telemetry silence: a task not yet complete whose agent has sent no span for longer than
 * its profile's `telemetry.silenceMs` (an agent cut off from its collector, or one that
 * stopped reporting what it does). The finding points at the task's last step.
 */
export function silenceFinding(
  task: { taskId: string; agentId?: string; spiffeId?: string; lastSeenMs: number; lastStep: Omit<FlaggedStep, "taskId" | "agentId"> },
  policy: Policy,
  now: number,
): Finding | undefined {
  const profile = profileFor(policy, {
    ...(task.agentId ? { id: task.agentId } : {}),
    ...(task.spiffeId ? { spiffeId: task.spiffeId } : {}),
  });
  const limit = profile?.telemetry?.silenceMs;
  if (!profile || limit === undefined) return undefined;
  const silentMs = now - task.lastSeenMs;
  if (silentMs <= limit) return undefined;
  return toFinding(
    {
      rule: "task.telemetry_silence",
      explanation: `${task.agentId ?? "The agent"} has sent no span for task ${task.taskId} in ${Math.round(silentMs / 1000)} s, mid-task; its profile "${profile.id}" expects one at least every ${Math.round(limit / 1000)} s.`,
      observed: { silentMs, lastSeenMs: task.lastSeenMs },
      expected: { silenceMs: limit },
    },
    { taskId: task.taskId, ...(task.agentId ? { agentId: task.agentId } : {}), ...task.lastStep },
    policy,
    now,
  );
}

/**
 * The findings as a consumer should hold them, one per id, in the order they first appeared:
 * a step's finding as it stood last (a step looked at again, after a late span landed before
 * it, gives its finding again with its new index), a task-level finding (once per task:
 * budgets, baselines' pace and length, an unknown agent) or once-per-change (a scope or
 * environment change, a credential reused) as first raised (later steps raise
 * it again, same id: the first step that crossed the line is the one that matters).
 */
export function currentFindings(findings: readonly Finding[]): Finding[] {
  const byId = new Map<string, Finding>();
  for (const f of findings) {
    const def = (RULES as Record<string, RuleDefinition | undefined>)[f.ruleId];
    const once = def?.oncePerTask === true || def?.oncePerChange === true;
    if (!once || !byId.has(f.id)) byId.set(f.id, f);
  }
  return [...byId.values()];
}
