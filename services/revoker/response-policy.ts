import { type Finding, SEVERITY_RANK, type Severity } from "../../schemas/finding.js";
import type { ResponseAction, ResponsePolicy, ResponseRule } from "../../schemas/policy.js";

/**
 * What the revoker does about a finding. The policy's response rules are tried in order
 * and the first that matches decides; with none matching, the default: an enforce-mode
 * finding at or above `DRIFTWATCH_REVOKE_MIN_SEVERITY` revokes the task's credentials,
 * anything else is only notified. A shadow-mode finding never gets a response.
 */
export interface ResponseDecision {
  action: ResponseAction;
  /** The response rule that decided ("default" when none matched). */
  rule: string;
  dryRun: boolean;
  /** For ask_human: how long a human has, and what happens when no one answers. */
  approval?: { timeoutMs: number; onTimeout: Exclude<ResponseAction, "ask_human">; onApprove: "revoke" | "quarantine" };
}

export const DEFAULT_RULE = "default";

const matches = (patterns: string[] | undefined, value: string | undefined) =>
  patterns === undefined ||
  (value !== undefined && patterns.some((p) => (p.endsWith("*") ? value.startsWith(p.slice(0, -1)) : value === p)));

export function ruleApplies(rule: ResponseRule, finding: Finding): boolean {
  const w = rule.when;
  if (finding.mode === "shadow" || !w.modes.includes(finding.mode)) return false;
  if (w.minSeverity && SEVERITY_RANK[finding.severity] < SEVERITY_RANK[w.minSeverity]) return false;
  if (w.kinds && !w.kinds.includes(finding.kind)) return false;
  return matches(w.rules, finding.ruleId) && matches(w.agents, finding.agentId);
}

export function decideResponse(
  finding: Finding,
  policy: ResponsePolicy | undefined,
  defaults: { minSeverity: Severity },
): ResponseDecision {
  const dryRun = policy?.dryRun ?? false;
  const rule = policy?.rules.find((r) => ruleApplies(r, finding));
  if (rule) {
    return {
      action: rule.action,
      rule: rule.id,
      dryRun: dryRun || rule.dryRun,
      ...(rule.action === "ask_human"
        ? { approval: rule.approval ?? { timeoutMs: 900_000, onTimeout: "revoke", onApprove: "revoke" } }
        : {}),
    };
  }
  const revoke = finding.mode === "enforce" && SEVERITY_RANK[finding.severity] >= SEVERITY_RANK[defaults.minSeverity];
  return { action: revoke ? "revoke" : "notify", rule: DEFAULT_RULE, dryRun };
}

/** The default response alone (no response rules): revoke or notify. */
export function responseFor(finding: Finding, minSeverity: Severity): "revoke" | "notify" {
  return decideResponse(finding, undefined, { minSeverity }).action === "revoke" ? "revoke" : "notify";
}
