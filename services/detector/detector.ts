import { type Finding, type FindingKind, SEVERITY_RANK } from "../../schemas/finding.js";
import type { CredentialBinding } from "../../schemas/lifecycle.js";
import { Step } from "../../schemas/step.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { TaskStore } from "../pathfinder/task-store.js";
import type { RevocationLedger } from "../revoker/ledger.js";
import type { AgentQuarantine } from "../revoker/quarantine.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { decodeMessage } from "../runtime/decode.js";
import { BadInput, type Emit, type StageLogic } from "../runtime/stage.js";
import type { Metrics } from "../runtime/telemetry.js";
import { agentKey } from "./baseline.js";
import type { BaselineStore } from "./baseline-store.js";
import { ALERT_MARK, VIOLATION_MARK } from "./learner.js";
import { lifecycleOf, lifecycleSettings } from "./lifecycle.js";
import { type Policy, profileFor } from "./policy.js";
import { evaluateStep } from "./rules.js";
import { SILENCE_MARK } from "./silence.js";

/** detector: `agent.steps` → `agent.findings` and `agent.lifecycle`, keyed by task id. */
export const parseStep = (message: BusMessage): Step | Step[] => {
  const steps = decodeMessage(Step, message, "a step");
  // the pathfinder gives every step its look back; the analyser leaves it out of the steps it
  // writes for others (it judged them itself): judged without it, flow and budget rules go blind
  for (const s of Array.isArray(steps) ? steps : [steps])
    if (!s.before)
      throw new BadInput(
        "a step without what the path holds before it (`before`): the analyser writes such steps for other consumers; a detector reading agent.steps needs the pathfinder run apart (driftwatch run pathfinder)",
      );
  return steps;
};

/** Findings that keep a task out of its agent's baseline (see learner.ts): policy, not mere novelty. */
const VIOLATIONS: ReadonlySet<FindingKind> = new Set([
  "out_of_scope",
  "flow",
  "provenance",
  "intent",
  "identity",
  "post_revocation",
  "credential_reuse",
]);

/** Owners of credentials seen lately (a binding never moves to another task). */
const REMEMBERED = 10_000;
function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (map.size >= REMEMBERED) map.delete(map.keys().next().value as K);
  map.set(key, value);
}
const isViolation = (f: Finding) => f.mode !== "shadow" && VIOLATIONS.has(f.kind);
/** An anomaly the SOC is alerted on: the task is held back from the baseline for a while (see learner.ts). */
const isAlert = (f: Finding) => f.mode !== "shadow" && f.kind === "anomaly" && SEVERITY_RANK[f.severity] >= SEVERITY_RANK.medium;

export type DetectorStage = StageLogic<Step> & {
  /** Judges a batch's steps, in order: the findings and task events to produce. */
  judge(steps: Step[]): Promise<Emit[]>;
};

export function detectorStage(
  topicPrefix: string,
  deps: {
    policy: () => Policy;
    tasks: TaskStore;
    baselines?: BaselineStore;
    quarantine?: AgentQuarantine;
    /** Where credentials' revocations stand: a step using one revoked before it is a finding. */
    ledger?: RevocationLedger;
    metrics?: Metrics;
    now?: () => number;
  },
): DetectorStage {
  const output = topicName(topicPrefix, TOPICS.findings);
  const lifecycle = topicName(topicPrefix, TOPICS.lifecycle);
  const now = deps.now ?? Date.now;
  const bindings = new Map<string, CredentialBinding>();
  const revokedCredentials = new Map<string, { atMs: number; trigger: string; taskId: string }>();
  const judge = async (steps: Step[]): Promise<Emit[]> => {
    const emits: Emit[] = [];
    const policy = deps.policy();
    // one read per task of the batch and one per agent whose baseline is not in memory, all at once
    const taskIds = [...new Set(steps.map((s) => s.taskId))];
    const agents = [...new Set(steps.flatMap((s) => agentKey(s) ?? []))];
    const ids = [...new Set(steps.flatMap((s) => s.agent.id ?? []))];
    const credentials = [...new Set(steps.flatMap((s) => s.credentialId ?? []))].filter((c) => !bindings.has(c));
    // whether a task fell silent matters only where its credentials were suspended for it (and come back)
    const suspending = [
      ...new Set(
        steps.flatMap((s) => (!s.reevaluated && lifecycleSettings(profileFor(policy, s.agent)).onSilence === "suspend" ? [s.taskId] : [])),
      ),
    ];
    // credentials of the batch revoked already (kept once found: a revocation is never undone)
    const unrevoked = deps.ledger ? [...new Set(steps.flatMap((s) => s.credentialId ?? []))].filter((c) => !revokedCredentials.has(c)) : [];
    const [marks, baselines, quarantined, bound, silent, states] = await Promise.all([
      Promise.all(taskIds.map((t) => deps.tasks.revoked(t))),
      deps.baselines ? deps.baselines.forAgents(agents) : undefined,
      deps.quarantine && ids.length > 0 ? deps.quarantine.of(ids) : undefined,
      credentials.length > 0 ? deps.tasks.bindings.of(credentials) : undefined,
      Promise.all(suspending.map((t) => deps.tasks.marked(t, SILENCE_MARK))),
      Promise.all(unrevoked.map((c) => deps.ledger?.ofCredential(c))),
    ]);
    for (const [c, b] of bound ?? []) remember(bindings, c, b);
    for (const [i, state] of states.entries()) {
      const r = state?.revocation;
      if (r && (r.status === "revoked" || r.status === "recorded"))
        remember(revokedCredentials, unrevoked[i] as string, { atMs: r.completedAtMs, trigger: r.trigger, taskId: r.taskId });
    }
    const silenced = new Set(suspending.filter((_, i) => silent[i]));
    const revokedOf = new Map(taskIds.map((t, i) => [t, marks[i]]));
    const violated = new Set<string>();
    const alerted = new Set<string>();
    const reported = new Set<string>();
    for (const step of steps) {
      const revoked = revokedOf.get(step.taskId);
      const agent = agentKey(step);
      const baseline = agent ? baselines?.get(agent) : undefined;
      const quarantine = step.agent.id ? quarantined?.get(step.agent.id) : undefined;
      // the task's declared scope comes with the step (the pathfinder knows it)
      const declared = step.context;
      const findings = evaluateStep(step, {
        policy,
        ...(declared?.declaredScope ? { scope: declared.declaredScope } : {}),
        ...(declared?.declaredScopeError ? { scopeError: declared.declaredScopeError } : {}),
        ...(revoked ? { revokedAtMs: revoked.atMs } : {}),
        ...(baseline ? { baseline } : {}),
        ...(quarantine ? { quarantine } : {}),
        ...(step.credentialId && revokedCredentials.has(step.credentialId)
          ? { credentialRevoked: revokedCredentials.get(step.credentialId) as { atMs: number; trigger: string; taskId: string } }
          : {}),
        now: now(),
      });
      for (const f of findings) {
        if (isViolation(f)) violated.add(f.taskId);
        else if (isAlert(f)) alerted.add(f.taskId);
        deps.metrics?.findings.inc({ rule: f.ruleId, severity: f.severity });
        deps.metrics?.detectionLatency.observe(Math.max(0, f.detectedAtMs - f.spanEndMs) / 1000);
        emits.push({ topic: output, message: { key: f.taskId, value: JSON.stringify(f) } });
      }
      // what the step shows of its task's lifecycle: ended, its context changed, another task's credential
      const binding = step.credentialId ? bindings.get(step.credentialId) : undefined;
      const life = lifecycleOf(step, {
        policy,
        ...(binding ? { binding } : {}),
        silenced: silenced.has(step.taskId),
        now: now(),
      });
      for (const f of life.findings) {
        if (isViolation(f)) violated.add(f.taskId);
        deps.metrics?.findings.inc({ rule: f.ruleId, severity: f.severity });
        emits.push({ topic: output, message: { key: f.taskId, value: JSON.stringify(f) } });
      }
      for (const e of life.events) {
        // a completed task's later steps report its end again (same id, idempotent downstream): once a batch
        if (reported.has(e.id)) continue;
        reported.add(e.id);
        emits.push({ topic: lifecycle, message: { key: e.taskId, value: JSON.stringify(e) } });
      }
    }
    // marked before the findings are produced: a task is never learned as normal in between
    await Promise.all([
      ...[...violated].map((t) => deps.tasks.markOnce(t, VIOLATION_MARK)),
      ...[...alerted].filter((t) => !violated.has(t)).map((t) => deps.tasks.markOnce(t, ALERT_MARK)),
    ]);
    return emits;
  };
  return {
    name: "detector",
    input: topicName(topicPrefix, TOPICS.steps),
    parse: parseStep,
    handle(items): Promise<Emit[]> {
      return judge(items.map((i) => i.value));
    },
    judge,
  };
}
