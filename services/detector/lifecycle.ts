import { createHash } from "node:crypto";
import type { TaskScope } from "../../schemas/action.js";
import type { Finding } from "../../schemas/finding.js";
import type { CredentialBinding, LifecycleTrigger, TaskEvent } from "../../schemas/lifecycle.js";
import { type AgentProfile, LifecycleSettings } from "../../schemas/policy.js";
import type { Step } from "../../schemas/step.js";
import { type Policy, profileFor } from "./policy.js";
import { findingsOf, type Hit } from "./rules.js";

/**
 * The task lifecycle as steps show it: what ends a task's credentials besides drift
 * (schemas/lifecycle.ts). Plain functions over a step and what is known of its task; the
 * detector stage puts the events on `agent.lifecycle` (the revoker acts on them) and the
 * findings on `agent.findings` (the SOC hears of them), as the agent's profile says:
 * `revoke` gives both, `notify` the finding only, `ignore` neither.
 */
export interface LifecycleOutcome {
  events: TaskEvent[];
  findings: Finding[];
}

const DEFAULTS = LifecycleSettings.parse({});

/** The lifecycle settings of an agent's profile (every trigger revokes when the profile says nothing, or there is no profile). */
export function lifecycleSettings(profile: AgentProfile | undefined): LifecycleSettings {
  return profile?.lifecycle ?? DEFAULTS;
}

/** One id per trigger and change of a task: the same however often it is seen. */
export function eventId(trigger: LifecycleTrigger, taskId: string, change = ""): string {
  return createHash("sha256").update(`${trigger}|${taskId}|${change}`).digest("hex").slice(0, 32);
}

const hash = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);

/** A scope with its lists in order: two declarations of the same scope compare equal. */
function canonical(scope: TaskScope): TaskScope {
  const out: TaskScope = {};
  if (scope.tools) out.tools = [...scope.tools].sort();
  if (scope.dataCeiling) out.dataCeiling = scope.dataCeiling;
  if (scope.environments) out.environments = [...scope.environments].sort();
  if (scope.egress) out.egress = [...scope.egress].map((e) => e.toLowerCase()).sort();
  return out;
}

const sameScope = (a: TaskScope, b: TaskScope) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

function globMatches(pattern: string, value: string): boolean {
  if (!pattern.includes("*")) return pattern === value;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\?]/g, "\\$&").replace(/\*/g, ".*")}$`);
  return re.test(value);
}

/** The trust zone an environment belongs to: the first zone listing it, else a zone of its own. */
export function zoneOf(environment: string, zones: Record<string, string[]>): string {
  for (const [zone, patterns] of Object.entries(zones)) if (patterns.some((p) => globMatches(p, environment))) return zone;
  return environment;
}

interface Change {
  trigger: LifecycleTrigger;
  /** Identifies the change within the task (its event and finding ids). */
  change: string;
  atMs: number;
  hit?: Hit;
  credentialId?: string;
  ownerTaskId?: string;
  from?: unknown;
  to?: unknown;
  detail: string;
}

/**
 * What one step shows of its task's lifecycle: the task completed, its scope or objective
 * changed, it moved to another environment or trust zone, it used another task's
 * credential (`binding`: the binding of the step's credential, as the store holds it), or
 * it reported again after falling silent (`silenced`: the task had a silence finding).
 */
export function lifecycleOf(
  step: Step,
  ctx: { policy: Policy; binding?: CredentialBinding; silenced?: boolean; now: number },
): LifecycleOutcome {
  // a span its sender may not send (ingest.identity_mismatch) changes nothing of its task's lifecycle
  if (step.identityMismatch) return { events: [], findings: [] };
  const profile = profileFor(ctx.policy, step.agent);
  const settings = lifecycleSettings(profile);
  // a reused credential is protected as its owner's profile says (the agent whose task it was issued for)
  const owner = ctx.binding?.agentId ? (profileFor(ctx.policy, { id: ctx.binding.agentId }) ?? profile) : profile;
  const context = step.context;
  const agent = step.agent.id ?? step.agent.spiffeId ?? "The agent";
  const changes: Change[] = [];
  const actionOf: Record<LifecycleTrigger, LifecycleSettings["onSilence"]> = {
    task_completed: settings.onTaskEnd,
    task_idle: settings.onTaskEnd,
    scope_changed: settings.onScopeChange,
    environment_changed: settings.onEnvironmentChange,
    telemetry_silence: settings.onSilence,
    // credentials suspended for a silence are given back when the task reports again
    telemetry_resumed: settings.onSilence === "suspend" ? "revoke" : "ignore",
    credential_reuse: lifecycleSettings(owner).onReuse,
  };

  // a fresh step of a task that fell silent (not one looked at again): its telemetry is back
  if (ctx.silenced && !step.reevaluated) {
    changes.push({
      trigger: "telemetry_resumed",
      change: "",
      atMs: step.receivedAtMs,
      detail: `task ${step.taskId} reported again after its telemetry went silent ("${step.name}")`,
    });
  }

  if (context?.completedAtMs !== undefined) {
    changes.push({
      trigger: "task_completed",
      change: "",
      atMs: context.completedAtMs,
      detail: `task ${step.taskId} completed (its root span ended)`,
    });
  }

  // the scope registry put another scope in force mid-task
  if (context?.scopeRevision && context.declaredScope) {
    changes.push(
      scopeChange(step, `registry:${context.scopeRevision}`, context.scopeChangedAtMs ?? step.receivedAtMs, {
        from: context.previousScope,
        to: context.declaredScope,
        what: "scope",
        by: "the scope registry",
      }),
    );
  }
  // a span declared another scope, or another objective, than the task's
  if (step.declaredScope && context?.declaredScope && !sameScope(step.declaredScope, context.declaredScope)) {
    changes.push(
      scopeChange(step, `scope:${hash(canonical(step.declaredScope))}`, step.receivedAtMs, {
        from: context.declaredScope,
        to: step.declaredScope,
        what: "scope",
        by: `${agent}'s span "${step.name}"`,
      }),
    );
  }
  if (step.intent && context?.intent && step.intent !== context.intent) {
    changes.push(
      scopeChange(step, `objective:${hash(step.intent)}`, step.receivedAtMs, {
        from: context.intent,
        to: step.intent,
        what: "objective",
        by: `${agent}'s span "${step.name}"`,
      }),
    );
  }

  if (step.environment && context?.environment && step.environment !== context.environment) {
    const from = zoneOf(context.environment, settings.trustZones);
    const to = zoneOf(step.environment, settings.trustZones);
    if (from !== to) {
      const detail = `task ${step.taskId} began in ${context.environment} (zone ${from}) and ${agent} acted in ${step.environment} (zone ${to})`;
      changes.push({
        trigger: "environment_changed",
        change: `zone:${to}`,
        atMs: step.receivedAtMs,
        from: { environment: context.environment, zone: from },
        to: { environment: step.environment, zone: to },
        detail,
        hit: {
          rule: "task.environment_changed",
          change: `zone:${to}`,
          explanation: `${agent} moved from ${context.environment} to ${step.environment} mid-task ("${step.tool?.name ?? step.name}"): another trust zone than the task was granted access for.`,
          observed: { environment: step.environment, zone: to },
          expected: { environment: context.environment, zone: from },
        },
      });
    }
  }

  const binding = ctx.binding;
  if (step.credentialId && binding && binding.credentialId === step.credentialId && binding.taskId !== step.taskId) {
    const detail = `credential ${step.credentialId}, bound to task ${binding.taskId}, was used on task ${step.taskId}`;
    changes.push({
      trigger: "credential_reuse",
      change: `credential:${step.credentialId}`,
      atMs: step.receivedAtMs,
      credentialId: step.credentialId,
      ownerTaskId: binding.taskId,
      detail,
      hit: {
        rule: "credential.reuse",
        change: `credential:${step.credentialId}`,
        explanation: `${agent} used credential ${step.credentialId} ("${step.tool?.name ?? step.name}"), which was issued for task ${binding.taskId}${binding.agentId ? ` of ${binding.agentId}` : ""}, not this one: a credential used beyond its task's boundary.`,
        observed: { credentialId: step.credentialId, taskId: step.taskId },
        expected: { boundTo: binding.taskId, source: binding.source },
      },
    });
  }

  const out: LifecycleOutcome = { events: [], findings: [] };
  for (const c of changes) {
    const action = actionOf[c.trigger];
    if (action === "ignore") continue;
    const [finding] = c.hit ? findingsOf([c.hit], step, ctx.policy, ctx.now) : [];
    if (finding) out.findings.push(finding);
    if (action !== "revoke" && action !== "suspend") continue;
    const graceMs = c.trigger === "task_completed" ? settings.graceMs : 0;
    const decider = c.trigger === "credential_reuse" ? owner : profile;
    out.events.push({
      id: eventId(c.trigger, step.taskId, c.change),
      taskId: step.taskId,
      ...(step.agent.id ? { agentId: step.agent.id } : {}),
      ...(step.agent.spiffeId ? { spiffeId: step.agent.spiffeId } : {}),
      ...(decider ? { profileId: decider.id } : {}),
      trigger: c.trigger,
      atMs: c.atMs,
      ...(graceMs > 0 ? { dueAtMs: c.atMs + graceMs } : {}),
      traceId: step.traceId,
      spanId: step.spanId,
      spanEndMs: step.endTimeMs,
      ...(c.credentialId ? { credentialId: c.credentialId } : {}),
      ...(c.ownerTaskId ? { ownerTaskId: c.ownerTaskId } : {}),
      ...(finding ? { findingId: finding.id } : {}),
      ...(c.from !== undefined ? { from: c.from } : {}),
      ...(c.to !== undefined ? { to: c.to } : {}),
      detail: c.detail,
      detectedAtMs: ctx.now,
    });
  }
  return out;
}

function scopeChange(
  step: Step,
  change: string,
  atMs: number,
  what: { from: unknown; to: unknown; what: "scope" | "objective"; by: string },
): Change {
  return {
    trigger: "scope_changed",
    change,
    atMs,
    from: what.from,
    to: what.to,
    detail: `the ${what.what} of task ${step.taskId} changed mid-task (by ${what.by})`,
    hit: {
      rule: "task.scope_changed",
      change,
      explanation: `The ${what.what} of task ${step.taskId} changed while it ran (by ${what.by}): access granted for the ${what.what} before no longer fits it.`,
      observed: { [what.what]: what.to },
      expected: { [what.what]: what.from },
    },
  };
}

/**
 * The event for a task that has gone idle: no span for `idleMs` and not completed. Its time
 * is the idle deadline (its last span's arrival plus the timeout).
 */
export function idleEvent(
  task: { taskId: string; agentId?: string; spiffeId?: string; lastSeenMs: number },
  policy: Policy,
  idleMs: number,
  now: number,
): TaskEvent | undefined {
  const profile = profileFor(policy, {
    ...(task.agentId ? { id: task.agentId } : {}),
    ...(task.spiffeId ? { spiffeId: task.spiffeId } : {}),
  });
  const settings = lifecycleSettings(profile);
  if (settings.onTaskEnd !== "revoke") return undefined;
  const atMs = task.lastSeenMs + idleMs;
  return {
    id: eventId("task_idle", task.taskId),
    taskId: task.taskId,
    ...(task.agentId ? { agentId: task.agentId } : {}),
    ...(task.spiffeId ? { spiffeId: task.spiffeId } : {}),
    ...(profile ? { profileId: profile.id } : {}),
    trigger: "task_idle",
    atMs,
    ...(settings.graceMs > 0 ? { dueAtMs: atMs + settings.graceMs } : {}),
    detail: `task ${task.taskId} has sent no span for ${Math.round(idleMs / 1000)} s: it ended without completing`,
    detectedAtMs: now,
  };
}

/** The event for a task whose telemetry went silent (its silence finding's), when the profile revokes or suspends on silence. */
export function silenceEvent(finding: Finding, task: { spiffeId?: string; lastSeenMs: number }, policy: Policy): TaskEvent | undefined {
  const profile = profileFor(policy, {
    ...(finding.agentId ? { id: finding.agentId } : {}),
    ...(task.spiffeId ? { spiffeId: task.spiffeId } : {}),
  });
  const action = lifecycleSettings(profile).onSilence;
  if (action !== "revoke" && action !== "suspend") return undefined;
  return {
    id: eventId("telemetry_silence", finding.taskId),
    taskId: finding.taskId,
    ...(finding.agentId ? { agentId: finding.agentId } : {}),
    ...(task.spiffeId ? { spiffeId: task.spiffeId } : {}),
    ...(profile ? { profileId: profile.id } : {}),
    trigger: "telemetry_silence",
    ...(action === "suspend" ? { suspend: true } : {}),
    atMs: finding.detectedAtMs,
    traceId: finding.traceId,
    spanId: finding.spanId,
    spanEndMs: finding.spanEndMs,
    findingId: finding.id,
    detail: finding.explanation,
    detectedAtMs: finding.detectedAtMs,
  };
}
