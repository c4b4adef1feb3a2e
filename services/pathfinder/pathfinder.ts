import { AgentAction } from "../../schemas/action.js";
import type { Hop, Step } from "../../schemas/step.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { decodeMessage } from "../runtime/decode.js";
import type { Emit, StageLogic } from "../runtime/stage.js";
import { placeActions, putRegisteredScope, stepOf, type TaskFacts, type TaskPath } from "./path.js";
import type { TaskStore, WriteMarks } from "./task-store.js";

/**
 * pathfinder: `agent.actions` → `agent.steps`. Places each action in its task's path and
 * emits it as a step (index, context, lineage), keyed by task id; emits earlier steps
 * again when the path before them changed. Paths of the open tasks this instance is working
 * on are kept in memory, so a batch costs one store round trip per task (its writes); a task
 * not in memory (or completed: its path is let go) is loaded first. Kafka gives each task to one instance at a time; when the
 * partitions move (`onRebalance`) the memory is dropped, and a write count per task
 * catches any other writer.
 */
export const parseAction = (message: BusMessage): AgentAction | AgentAction[] => decodeMessage(AgentAction, message, "an agent action");

export interface PathfinderOptions {
  /** How far back (ms, by span start) a span may land and still re-evaluate the steps after it. */
  latenessMs: number;
  /** How many tasks' paths are kept in memory (least recently used go first). */
  cachedTasks: number;
  onConflict?: (taskId: string) => void;
}

export const DEFAULT_PATHFINDER_OPTIONS: PathfinderOptions = { latenessMs: 30_000, cachedTasks: 50_000 };

interface Cached {
  path: TaskPath;
  version: number;
  marks: WriteMarks;
}

export type PathfinderStage = StageLogic<AgentAction> & {
  /**
   * Places a batch's actions in their tasks' paths and saves them; the steps to emit, in
   * index order per task (what `handle` writes to `agent.steps`, and what the analyser
   * hands the detector in process).
   */
  place(actions: AgentAction[]): Promise<PlacedStep[]>;
  /** The partitions this instance works on changed: what it remembers may be stale. */
  onRebalance(): void;
  readonly cachedTasks: number;
};

/** A step to emit, with its action's JSON when the store already made it (see `stepMessage`). */
export interface PlacedStep {
  step: Step;
  actionJson?: string;
}

/**
 * A placed step as the message `agent.steps` carries, keyed by task id: with what the path
 * holds before it (`before`, what a detector reading the topic judges it by), or, with
 * `lookBack: false`, without it (the analyser's steps, for other consumers: the detector
 * judged them in process).
 */
export const stepEmit = (topic: string, { step, actionJson }: PlacedStep, lookBack = true): Emit => ({
  topic,
  message: { key: step.taskId, value: stepJson(step, actionJson, lookBack) },
});

export function pathfinderStage(
  topicPrefix: string,
  tasks: TaskStore,
  options: PathfinderOptions = DEFAULT_PATHFINDER_OPTIONS,
): PathfinderStage {
  const output = topicName(topicPrefix, TOPICS.steps);
  const cache = new Map<string, Cached>();
  // a completed task is not kept: a span that comes after its end is rare, and reloads it
  // from the store; the paths kept are the open tasks' (every path kept is more for the
  // garbage collector to walk: keeping every completed one cost about a seventh of the
  // analyser's throughput in bench:e2e)
  const remember = (taskId: string, entry: Cached) => {
    cache.delete(taskId);
    if (entry.path.facts?.phase === "completed") return;
    cache.set(taskId, entry);
    if (cache.size > options.cachedTasks) cache.delete(cache.keys().next().value as string);
  };

  const recordTask = async (taskId: string, actions: AgentAction[]): Promise<PlacedStep[]> => {
    const entry = cache.get(taskId) ?? { ...(await tasks.load(taskId)), marks: {} };
    // placing mutates the path: until the store has it, the cache must not
    cache.delete(taskId);
    const placement = placeActions(entry.path, actions, { latenessMs: options.latenessMs });
    if (placement.recorded.length === 0) {
      remember(taskId, entry);
      return placement.repeated.map((step) => ({ step }));
    }
    const saved = await tasks.save(entry.path, placement, entry.version, entry.marks);
    if (saved.conflict) options.onConflict?.(taskId);
    else remember(taskId, { path: entry.path, version: saved.version, marks: entry.marks });

    const out: PlacedStep[] = placement.recorded.map((r) => ({ step: r.step, ...(r.actionJson ? { actionJson: r.actionJson } : {}) }));
    for (const step of placement.repeated) out.push({ step });
    const index = new Map(placement.reevaluate.map((r) => [r.id, r.index]));
    for (const a of saved.reevaluated) out.push({ step: stepOf(entry.path, a, index.get(a.id) as number, { reevaluated: true }) });

    const facts = entry.path.facts as TaskFacts;
    // a span whose parent or link is in another task: that task delegated this one
    let parent = saved.parent;
    if (!facts.parentTaskId && saved.referencedTasks?.[0]) {
      facts.parentTaskId = saved.referencedTasks[0];
      parent = await tasks.facts(facts.parentTaskId);
      if (!parent) await tasks.saveFacts(entry.path);
    }
    // a delegate is held to its delegating task's scope: when what is known of that task
    // changed, the lineage changes and every step is looked at again; so too when a scope
    // was registered for the task (or changed) since the task was loaded
    const lineage = parent ? lineageBelow(parent) : undefined;
    const lineageChanged = lineage !== undefined && JSON.stringify(lineage) !== JSON.stringify(facts.lineage ?? []);
    const registered = saved.registeredScope;
    const scopeChanged = registered !== undefined && JSON.stringify(registered) !== JSON.stringify(entry.path.registeredScope);
    if (lineageChanged || scopeChanged) {
      if (lineage) facts.lineage = lineage;
      if (registered && scopeChanged) {
        entry.path.registeredScope = registered;
        if (saved.registeredAtMs !== undefined) entry.path.registeredAtMs = saved.registeredAtMs;
        putRegisteredScope(facts, registered, saved.registeredAtMs ?? Date.now());
      }
      await tasks.saveFacts(entry.path);
      const fresh = new Set(out.map((e) => e.step.id));
      const all = await tasks.actions(
        taskId,
        entry.path.order.map((e) => e.id),
      );
      out.length = 0;
      for (const [i, a] of all.entries()) out.push({ step: stepOf(entry.path, a, i, fresh.has(a.id) ? {} : { reevaluated: true }) });
    }
    return out.sort((x, y) => x.step.index - y.step.index);
  };

  const place = async (actions: AgentAction[]): Promise<PlacedStep[]> => {
    const byTask = new Map<string, AgentAction[]>();
    for (const action of actions) {
      const list = byTask.get(action.taskId);
      if (list) list.push(action);
      else byTask.set(action.taskId, [action]);
    }
    const perTask = await Promise.all([...byTask].map(([taskId, list]) => recordTask(taskId, list)));
    return perTask.flat();
  };

  return {
    name: "pathfinder",
    input: topicName(topicPrefix, TOPICS.actions),
    parse: parseAction,
    place,
    async handle(items): Promise<Emit[]> {
      return (await place(items.map((i) => i.value))).map((p) => stepEmit(output, p));
    },
    onRebalance() {
      cache.clear();
    },
    get cachedTasks() {
      return cache.size;
    },
  };
}

/**
 * A step's JSON: its action's JSON (made once, for the store) with the step's fields
 * appended, rather than the whole step serialised again.
 */
function stepJson(step: Step, actionJson: string | undefined, lookBack: boolean): string {
  if (!actionJson) return JSON.stringify(lookBack ? step : { ...step, before: undefined });
  let tail = `,"index":${step.index}`;
  if (step.late) tail += ',"late":true';
  if (step.reevaluated) tail += ',"reevaluated":true';
  if (step.context) tail += `,"context":${JSON.stringify(step.context)}`;
  if (step.lineage) tail += `,"lineage":${JSON.stringify(step.lineage)}`;
  if (step.before && lookBack) tail += `,"before":${JSON.stringify(step.before)}`;
  return `${actionJson.slice(0, -1)}${tail}}`;
}

/** The lineage of a task delegated by the task with `parent`'s facts: the parent's lineage, then the parent. */
function lineageBelow(parent: TaskFacts): Hop[] {
  const hop: Hop = { taskId: parent.taskId };
  if (parent.agentId) hop.agentId = parent.agentId;
  if (parent.spiffeId) hop.spiffeId = parent.spiffeId;
  if (parent.scope) hop.declaredScope = parent.scope;
  return [...(parent.lineage ?? []), hop];
}

/** Records actions (of any tasks) as the pathfinder would, without keeping paths in memory; returns the steps it would emit. */
export async function recordActions(
  tasks: TaskStore,
  actions: AgentAction[],
  latenessMs = DEFAULT_PATHFINDER_OPTIONS.latenessMs,
): Promise<Step[]> {
  const stage = pathfinderStage("", tasks, { latenessMs, cachedTasks: 1 });
  const message: BusMessage = { topic: "", partition: 0, offset: "0", key: null, value: Buffer.alloc(0), headers: {}, timestampMs: 0 };
  const emits = await stage.handle(
    actions.map((value) => ({ message, value })),
    () => undefined,
  );
  return emits.map((e) => JSON.parse(String(e.message.value)) as Step);
}
