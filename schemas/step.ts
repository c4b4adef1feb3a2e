import { z } from "zod";
import { AgentAction, DataClassification, TaskScope } from "./action.js";
import { ArgumentTerm } from "./lineage.js";

/**
 * One hop of a delegation chain: an agent acting for a task. A step's lineage lists the
 * hops above it (root first): the agents that delegated to it, within its task (an
 * `invoke_agent` of another agent) and across tasks (`agent.task.parent_id`, or a parent
 * span or span link in another task). The detector holds a delegate to every hop's scope.
 */
export const Hop = z.object({
  taskId: z.string().min(1),
  agentId: z.string().optional(),
  spiffeId: z.string().optional(),
  declaredScope: TaskScope.optional(),
});
export type Hop = z.infer<typeof Hop>;

/** What the pathfinder knows of the step's task when it emits the step. */
export const StepContext = z.object({
  /** The task's declared scope (from its spans or the scope registry), if any. */
  declaredScope: TaskScope.optional(),
  declaredScopeError: z.string().optional(),
  intent: z.string().optional(),
  /** The environment the task began in (its first step's `deployment.environment.name`). */
  environment: z.string().optional(),
  /** The task completed: its root span arrived then (epoch ms). */
  completedAtMs: z.number().optional(),
  /**
   * The scope in force changed while the task ran (the registry registered another): how many
   * times, the last time, and the scope in force before it.
   */
  scopeRevision: z.number().int().positive().optional(),
  scopeChangedAtMs: z.number().optional(),
  previousScope: TaskScope.optional(),
});
export type StepContext = z.infer<typeof StepContext>;

/** What the path holds before a step (in path order): what flow rules and budgets look at. */
export const PathSoFar = z.object({
  /** The most sensitive data an earlier step touched. */
  maxDataClassification: DataClassification.optional(),
  /** Earlier steps that started within the minute before this one. */
  stepsLastMinute: z.number().int().nonnegative(),
  /** From the start of the task's first step to this step's start. */
  elapsedMs: z.number().nonnegative(),
  /**
   * The tool calls before this step (the most recent last), whatever they returned: which
   * tools' output the task has read, so the detector can tell whether untrusted content was in
   * view. `named`: the user's request or messages name what the call read (one of its
   * arguments, e.g. the file the user asked about, or something its output holds, e.g. the
   * sender of the message the user means).
   */
  reads: z
    .array(
      z.object({
        index: z.number().int().nonnegative(),
        tool: z.string(),
        named: z.string().optional(),
        /** The call's output was recorded (`gen_ai.tool.call.result`): lineage could look into it. */
        recorded: z.boolean().optional(),
        /** The user directed the agent to act on this output ("do what the e-mail asks"). */
        directed: z.boolean().optional(),
        /** Its text carries the marks of an instruction aimed at the agent. */
        marked: z.boolean().optional(),
        /** For a directed output: the kinds of sensitive action its text asks for (policy.ts `Sensitivity`). */
        asks: z.array(z.string()).optional(),
      }),
    )
    .optional(),
  /** Earlier steps of this step's agent, in all and within the minute before it (baselines judge an agent by its own steps). */
  agentSteps: z.number().int().nonnegative().optional(),
  agentStepsLastMinute: z.number().int().nonnegative().optional(),
  /** The first tool this step's agent called in the task (what kind of task it is doing). */
  firstTool: z.string().optional(),
  /** Earlier calls of this step's tool by its agent in the task. */
  toolCalls: z.number().int().nonnegative().optional(),
  /** Calls of this step's tool by its agent right before it, one after the other (its other tool calls break the run). */
  streak: z.number().int().nonnegative().optional(),
  /** The tool this step's agent called last in the task (the transition baselines look at). */
  lastTool: z.string().optional(),
  /** Hosts earlier steps of the task reached (a domain the task went to is not new to it). */
  reached: z.array(z.string()).optional(),
  /**
   * What the user wrote in the conversation before this step besides the task's objective
   * (`gen_ai.input.messages`, role `user`: a request, a follow-up), normalised, at most 4 KiB.
   */
  userText: z.string().optional(),
  /** Where each value in this step's arguments came from (schemas/lineage.ts). */
  arguments: z.array(ArgumentTerm).optional(),
});
export type PathSoFar = z.infer<typeof PathSoFar>;

/**
 * One step of a task's path: an action placed in its task's order. On `agent.steps`,
 * keyed by task id. A step is emitted when its span arrives, and again (`reevaluated`)
 * when a span that belongs before it arrives within the lateness window, or when its
 * lineage becomes known: its index or context changed and the detector looks again.
 */
export const Step = AgentAction.extend({
  index: z.number().int().nonnegative(),
  /** The span started before the task's newest step by more than the lateness window. */
  late: z.boolean().optional(),
  /** Emitted again because the path before it changed. */
  reevaluated: z.boolean().optional(),
  context: StepContext.optional(),
  /**
   * What the path holds before the step: on the steps the pathfinder writes for a detector
   * run apart (which refuses a step without it); left out of the analyser's steps, whose
   * detector judged them in process.
   */
  before: PathSoFar.optional(),
  /** The delegation hops above this step, root first; absent when no one delegated to it. */
  lineage: z.array(Hop).optional(),
});
export type Step = z.infer<typeof Step>;
