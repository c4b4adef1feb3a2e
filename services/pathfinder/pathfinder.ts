import { AgentAction } from "../../schemas/action.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { decodeMessage } from "../runtime/decode.js";
import type { Emit, StageLogic } from "../runtime/stage.js";
import type { TaskStore } from "./task-store.js";

/**
 * pathfinder: `agent.actions` → `agent.steps`. Places each action in its task's path
 * (ordered by start time; a span seen twice stays one step) and emits it as a step with
 * its index, keyed by task id.
 */
export const parseAction = (message: BusMessage): AgentAction | AgentAction[] => decodeMessage(AgentAction, message, "an agent action");

export function pathfinderStage(topicPrefix: string, tasks: TaskStore): StageLogic<AgentAction> {
  const output = topicName(topicPrefix, TOPICS.steps);
  return {
    name: "pathfinder",
    input: topicName(topicPrefix, TOPICS.actions),
    parse: parseAction,
    async handle(items): Promise<Emit[]> {
      const byTask = new Map<string, AgentAction[]>();
      for (const { value } of items) {
        const list = byTask.get(value.taskId) ?? [];
        list.push(value);
        byTask.set(value.taskId, list);
      }
      const perTask = await Promise.all([...byTask].map(([taskId, actions]) => tasks.recordAll(taskId, actions)));
      return perTask.flat().map((step) => ({ topic: output, message: { key: step.taskId, value: JSON.stringify(step) } }));
    },
  };
}
