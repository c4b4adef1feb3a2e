import { z } from "zod";
import { AgentAction } from "./action.js";

/** One step of a task's path: an action placed in its task's order. On `agent.steps`. */
export const Step = AgentAction.extend({
  index: z.number().int().nonnegative(),
});
export type Step = z.infer<typeof Step>;
