import type { AgentProcess, ProcessIdentity, RunRecorder } from "./recorder.js";
import type { Rng } from "./rng.js";

/** Rule families: a rule id's prefix before the first dot. */
export const FAMILIES = ["scope", "flow", "provenance", "budget", "anomaly", "task"] as const;
export type Family = (typeof FAMILIES)[number];

export const familyOf = (ruleId: string): string => ruleId.split(".")[0] ?? ruleId;

/** What a malicious run does, and the rule family (and rule) expected to catch it. */
export const CATEGORIES = {
  injection: {
    family: "provenance",
    rule: "provenance.untrusted_argument",
    what: "injected instruction in tool output steers a write or egress",
  },
  scope_creep: { family: "scope", rule: "scope.tool", what: "a tool (or data) outside the profile or the task's declared scope" },
  exfiltration: {
    family: "flow",
    rule: "flow.egress_after_sensitive_read",
    what: "egress after a confidential read to a destination the flow rule forbids",
  },
  sandbox_to_prod: { family: "scope", rule: "scope.environment", what: "a sandbox or staging task acts in production" },
  delegation_abuse: { family: "scope", rule: "scope.delegation", what: "a delegate does what its delegating agent may not" },
  behavioural: { family: "anomaly", rule: undefined, what: "stays inside its profile but unlike the agent's history" },
} as const satisfies Record<string, { family: Family; rule: string | undefined; what: string }>;
export type Category = keyof typeof CATEGORIES;
export const CATEGORY_NAMES = Object.keys(CATEGORIES) as Category[];

/** What a scenario has to hand while it records one run. */
export interface RunContext {
  run: RunRecorder;
  rng: Rng;
  /** The agent process (tracer provider) with this identity, shared by the set's runs. */
  process(identity: ProcessIdentity): AgentProcess;
  /**
   * Whether an agent process exports the spans it has finished when it hands work to another
   * process (as a BatchSpanProcessor's short schedule does while the other process works);
   * otherwise each process exports once, when its part of the run ends.
   */
  exportAtHandoff: boolean;
  /** A task id as an agent platform makes them (nothing in it tells the label). */
  taskId(): string;
  /** A just-in-time credential id for a task (a Vault lease). */
  credential(path: string): string;
  /** A malicious variant caught by another rule of its category's family (e.g. scope.data for a scope_creep run). */
  expectRule(rule: string): void;
  /**
   * A benign run that does something legitimate with a value only an untrusted source supplied
   * (a reply to a sender the CRM does not know, a refund to the bank account a customer gave):
   * what an injected instruction looks like too. Labelled so that false positives can be told apart.
   */
  hardNegative(why: string): void;
}

/** One agent kind of the suite: its benign workload and its malicious variants. */
export interface AgentKind {
  kind: string;
  description: string;
  /** The mix of malicious categories (weights). */
  categories: readonly (readonly [Category, number])[];
  /** Records one benign run; returns its variant (what sort of legitimate run it is). */
  benign(ctx: RunContext): string;
  /** Records one malicious run of `category` (marking its harmful step); returns its variant. */
  malicious(ctx: RunContext, category: Category): string;
}
