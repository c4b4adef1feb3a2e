import { DATA_CLASSIFICATIONS, type TaskScope } from "../../schemas/action.js";
import type { AgentProfile } from "../../schemas/policy.js";
import { hostAllowed } from "./rules.js";

/**
 * Attenuation: a task's scope may only narrow its agent's profile, a delegate's its
 * parent's, and a scope registered again the one registered before. `wider` says where
 * `scope` goes beyond `limit` (empty: it stays within).
 */
export interface ScopeLimit {
  /** Absent: no limit on that field. */
  tools?: string[];
  dataCeiling?: TaskScope["dataCeiling"];
  environments?: string[];
  egress?: string[];
}

export function limitOfProfile(profile: AgentProfile): ScopeLimit {
  return {
    tools: profile.tools.map((t) => t.name),
    dataCeiling: profile.dataCeiling,
    ...(profile.environments.length > 0 ? { environments: profile.environments } : {}),
    egress: profile.egress,
  };
}

const rank = (c: NonNullable<TaskScope["dataCeiling"]>) => DATA_CLASSIFICATIONS.indexOf(c);

/** An egress entry (a host or `*.` wildcard) is covered when every host it allows is allowed. */
function egressCovered(entry: string, allow: string[]): boolean {
  const e = entry.toLowerCase();
  if (!e.startsWith("*.")) return hostAllowed(e, allow);
  // a wildcard is covered only by an equal or broader wildcard
  return allow.some((a) => {
    const p = a.toLowerCase();
    return p.startsWith("*.") && (e === p || e.endsWith(p.slice(1)));
  });
}

export function wider(scope: TaskScope, limit: ScopeLimit): string[] {
  const out: string[] = [];
  const { tools, dataCeiling, environments, egress } = limit;
  // a field the scope leaves out is "as the limit allows": only what it names is checked
  if (tools && scope.tools) for (const t of scope.tools) if (!tools.includes(t)) out.push(`tools: "${t}" is not allowed`);
  if (dataCeiling && scope.dataCeiling && rank(scope.dataCeiling) > rank(dataCeiling)) {
    out.push(`dataCeiling: ${scope.dataCeiling} is above ${dataCeiling}`);
  }
  if (environments && scope.environments) {
    for (const e of scope.environments) if (!environments.includes(e)) out.push(`environments: "${e}" is not allowed`);
  }
  if (egress && scope.egress) for (const d of scope.egress) if (!egressCovered(d, egress)) out.push(`egress: "${d}" is not allowed`);
  return out;
}

/** A limit from a scope (the fields it sets). */
export function limitOfScope(scope: TaskScope): ScopeLimit {
  return {
    ...(scope.tools ? { tools: scope.tools } : {}),
    ...(scope.dataCeiling ? { dataCeiling: scope.dataCeiling } : {}),
    ...(scope.environments ? { environments: scope.environments } : {}),
    ...(scope.egress ? { egress: scope.egress } : {}),
  };
}
