import { z } from "zod";
import { DataClassification, ToolEffect } from "./action.js";
import { FindingKind, RuleMode, Severity } from "./finding.js";

/**
 * What an argument of a tool is, for the provenance, intent and egress rules
 * (docs/policy.md):
 * - `recipient`: who or where the call sends to: an e-mail address, a user, a phone number, a channel;
 * - `url`: a URL or host the call sends to or fetches;
 * - `account`: a bank account, IBAN, card or wallet the call pays or changes;
 * - `id`: the identifier of a record the call acts on (a file, an event, a transaction), of any length;
 * - `name`: a named thing the call acts on or books (a hotel, a restaurant, a person, a repository);
 * - `secret`: a password, key or token the call sets;
 * - `text`: free text the call writes or sends (a body, a post, a description): the addresses,
 *   links and accounts inside it are checked;
 * - `none`: not looked at.
 */
export const ArgumentKind = z.enum(["recipient", "url", "account", "id", "name", "secret", "text", "none"]);
export type ArgumentKind = z.infer<typeof ArgumentKind>;

/**
 * What harm an unrequested call of a tool does: it moves money, sets credentials, changes the
 * owner's account (profile, contact details, settings), deletes or cancels, grants someone
 * access (share, invite, add a member), or operates infrastructure (deploy, restart, scale,
 * merge). The intent rule flags such a call that the user's request never asked for.
 */
export const Sensitivity = z.enum(["money", "credentials", "account", "deletion", "access", "operations"]);
export type Sensitivity = z.infer<typeof Sensitivity>;

/** A tool an agent profile allows, with its effect and the trust of its output. */
export const ToolGrant = z
  .object({
    name: z.string().min(1),
    effect: ToolEffect.optional(),
    /** Whether the tool's output can carry instructions from outside (web pages, e-mail). */
    output: z.enum(["trusted", "untrusted"]).default("trusted"),
    /**
     * Its arguments by name (or dotted path, `event.location`): what each one is. Arguments not
     * listed are judged by their values (an address, a URL, an IBAN) and names (`to`, `url`, `iban`, `…_id`, `body`).
     */
    arguments: z.record(z.string().min(1), ArgumentKind).optional(),
    /** What an unrequested call would do (the intent rule). */
    sensitive: Sensitivity.optional(),
    /** Words in a request that ask for this tool, besides its name and its sensitivity's usual words. */
    intents: z.array(z.string().min(1)).optional(),
    /** How sensitive the data it returns or touches is, when its spans do not say (`data.classification`). */
    data: DataClassification.optional(),
  })
  .strict();
export type ToolGrant = z.infer<typeof ToolGrant>;

/**
 * Behaviour baselines: when a step is unlike the agent's own history. The detector learns
 * each agent's tools, tool-to-tool transitions, destinations, argument domains, pace and
 * path length from its finished tasks (those without policy findings) and, once it has
 * learned `warmUpTasks` of them, flags what departs from them.
 */
export const BaselineSettings = z
  .object({
    enabled: z.boolean().default(true),
    /** Finished tasks learned before any anomaly is raised. */
    warmUpTasks: z.number().int().positive().default(30),
    /** A tool-to-tool transition more surprising than this (bits: -log2 of its likelihood) is an anomaly. */
    maxSurprisalBits: z.number().positive().default(8),
    /** Transitions out of a tool are judged only once the agent has made this many. */
    minTransitions: z.number().int().positive().default(30),
    /** A pace (steps in a minute) or path length this many robust standard deviations above the median is an anomaly. */
    maxRobustZ: z.number().positive().default(6),
    /**
     * A never-seen tool, destination or argument domain is an anomaly only while new values
     * are rare in the agent's history: the Good-Turing estimate of the chance that the next
     * observation is new (the share of observations whose value was seen just once) is below this.
     */
    maxNovelty: z.number().min(0).max(1).default(0.05),
  })
  .strict();
export type BaselineSettings = z.infer<typeof BaselineSettings>;

/**
 * What ends a task's credentials besides drift, per agent profile (schemas/lifecycle.ts):
 * each trigger revokes (the default: just-in-time access does not outlive its task or
 * its context), only notifies (a finding for the SOC where there is something to tell),
 * or is ignored.
 */
export const LifecycleAction = z.enum(["revoke", "notify", "ignore"]);
export type LifecycleAction = z.infer<typeof LifecycleAction>;

export const LifecycleSettings = z
  .object({
    /** The task completed (its root span ended) or went idle (no span for `DRIFTWATCH_TASK_IDLE_MS`). */
    onTaskEnd: LifecycleAction.default("revoke"),
    /** How long after the task ended its credentials still live (late work, a final upload). */
    graceMs: z.number().int().nonnegative().default(0),
    /** The task's scope or objective changed mid-task: credentials bound before the change are revoked. */
    onScopeChange: LifecycleAction.default("revoke"),
    /** A step ran in another environment or trust zone than the task began in. */
    onEnvironmentChange: LifecycleAction.default("revoke"),
    /**
     * Trust zones: environment names (`*` wildcard) grouped under a zone name; moving between
     * environments of one zone is no change. An environment in no zone is a zone of its own.
     */
    trustZones: z.record(z.string().min(1), z.array(z.string().min(1)).min(1)).default({}),
    /**
     * The agent's telemetry went silent mid-task (needs `telemetry.silenceMs`): fail safe.
     * `suspend` takes the credentials away until the agent reports again (then they are
     * resumed), where the store can suspend (the generic webhook); elsewhere, and when a
     * store does not take the suspension, they are revoked.
     */
    onSilence: z.enum(["revoke", "suspend", "notify", "ignore"]).default("revoke"),
    /**
     * A credential bound to this agent's task was used on another task's step (the owner's
     * profile decides; the finding goes to the task that used it).
     */
    onReuse: LifecycleAction.default("revoke"),
  })
  .strict();
export type LifecycleSettings = z.infer<typeof LifecycleSettings>;

/** The widest scope an agent may ever have. Matched by agent id or SPIFFE id pattern (`*` wildcard). */
export const AgentProfile = z
  .object({
    id: z.string().min(1),
    description: z.string().optional(),
    match: z
      .object({
        agentIds: z.array(z.string().min(1)).default([]),
        spiffeIds: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .refine((m) => m.agentIds.length + m.spiffeIds.length > 0, "a profile must match at least one agent id or SPIFFE id"),
    tools: z.array(ToolGrant).default([]),
    dataCeiling: DataClassification.default("internal"),
    environments: z.array(z.string().min(1)).default([]),
    /** Hosts (and `*.` wildcards, or `*` for anywhere) the agent may send to; e-mail recipients by their domain. */
    egress: z.array(z.string().min(1)).default([]),
    /**
     * The account owner's own identities (e-mail addresses, accounts, phone numbers, handles;
     * `*` wildcard, e.g. `*@acme.example`): an argument naming one is the owner's, wherever the
     * task saw it.
     */
    identities: z.array(z.string().min(1)).default([]),
    /** Limits on a task as a whole: its steps, its duration, its pace. */
    budgets: z
      .object({
        maxSteps: z.number().int().positive().optional(),
        maxDurationMs: z.number().int().positive().optional(),
        maxStepsPerMinute: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
    /** How far a step may depart from the agent's learned behaviour (defaults apply when absent). */
    baseline: BaselineSettings.optional(),
    /** When the agent's task credentials end besides drift (defaults apply when absent: every trigger revokes). */
    lifecycle: LifecycleSettings.optional(),
    /** What the agent's telemetry must look like: a span at least every `silenceMs` while a task runs. */
    telemetry: z.object({ silenceMs: z.number().int().positive() }).strict().optional(),
    /**
     * Flow rules: once a task has touched data at or above `after`, its egress may go only
     * to `egress` (hosts or `*.` wildcards; empty: nowhere), e.g. no e-mail to outside
     * addresses after a confidential read.
     */
    flows: z
      .array(
        z
          .object({
            after: DataClassification,
            egress: z.array(z.string().min(1)).default([]),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();
export type AgentProfile = z.infer<typeof AgentProfile>;

/** Per-rule settings: a rule's id, severity and mode. */
export const RuleSetting = z
  .object({
    id: z.string().min(1),
    severity: Severity.optional(),
    mode: RuleMode.optional(),
    enabled: z.boolean().default(true),
  })
  .strict();
export type RuleSetting = z.infer<typeof RuleSetting>;

/**
 * What ingest removes before anything is stored or sent on: attribute values by key
 * pattern (`*` wildcard, e.g. `gen_ai.input.*`), and keys inside tool arguments and
 * results (case-insensitive, at any depth). Values become "[redacted]".
 */
export const Redaction = z
  .object({
    attributes: z.array(z.string().min(1)).default([]),
    argumentKeys: z.array(z.string().min(1)).default([]),
  })
  .strict();
export type Redaction = z.infer<typeof Redaction>;

/**
 * What the revoker does about a finding: revoke the task's credentials, quarantine the
 * agent (revoke every open task's credentials and flag whatever it does next), notify
 * only, or ask a human (approve or reject through the API; past `approval.timeoutMs` the
 * `approval.onTimeout` action is taken). A dry run records what it would have done.
 */
export const ResponseAction = z.enum(["revoke", "quarantine", "notify", "ask_human"]);
export type ResponseAction = z.infer<typeof ResponseAction>;

export const ResponseRule = z
  .object({
    /** A name for the ledger and the API: which response rule decided. */
    id: z.string().min(1),
    /** Which findings it applies to; every condition given must hold. No conditions: every finding. */
    when: z
      .object({
        minSeverity: Severity.optional(),
        kinds: z.array(FindingKind).min(1).optional(),
        /** Rule modes (default: enforce only; a shadow finding never gets a response). */
        modes: z
          .array(RuleMode.exclude(["shadow"]))
          .min(1)
          .default(["enforce"]),
        /** Rule ids; a trailing `*` matches a prefix (`scope.*`). */
        rules: z.array(z.string().min(1)).min(1).optional(),
        /** Agent ids; a trailing `*` matches a prefix. */
        agents: z.array(z.string().min(1)).min(1).optional(),
      })
      .strict()
      .prefault({}),
    action: ResponseAction,
    approval: z
      .object({
        timeoutMs: z.number().int().positive().default(900_000),
        onTimeout: ResponseAction.exclude(["ask_human"]).default("revoke"),
        /** What an approval does. */
        onApprove: ResponseAction.exclude(["ask_human", "notify"]).default("revoke"),
      })
      .strict()
      .optional(),
    dryRun: z.boolean().default(false),
  })
  .strict()
  .refine((r) => r.action === "ask_human" || r.approval === undefined, {
    message: "approval applies only to action ask_human",
    path: ["approval"],
  });
export type ResponseRule = z.infer<typeof ResponseRule>;

/** The response policy: rules tried in order (files in name order), the first that matches decides. */
export const ResponsePolicy = z
  .object({
    /** Everything is a dry run: responses recorded, nothing revoked or quarantined. */
    dryRun: z.boolean().default(false),
    rules: z.array(ResponseRule).default([]),
  })
  .strict();
export type ResponsePolicy = z.infer<typeof ResponsePolicy>;

/** One policy file (YAML). A policy folder is the union of its files. */
export const PolicyFile = z
  .object({
    apiVersion: z.literal("driftwatch/v1"),
    profiles: z.array(AgentProfile).default([]),
    rules: z.array(RuleSetting).default([]),
    redaction: Redaction.optional(),
    responses: ResponsePolicy.optional(),
  })
  .strict();
export type PolicyFile = z.infer<typeof PolicyFile>;
