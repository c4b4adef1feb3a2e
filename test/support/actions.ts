import { AgentAction } from "../../schemas/action.js";

/**
 * Agent actions for tests, as ingest emits them: a tool call by default, every field
 * overridable. Span ids count up across the test file, so each call is a new span.
 */
let spanCounter = 0;

export function nextSpanId(): string {
  spanCounter++;
  return spanCounter.toString(16).padStart(16, "0");
}

export const TEST_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";

/** Any span of a task: the fields given, and what every action must have. */
export function agentAction(fields: Partial<AgentAction> & { taskId: string; startTimeMs: number }): AgentAction {
  const traceId = fields.traceId ?? TEST_TRACE;
  const spanId = fields.spanId ?? nextSpanId();
  return AgentAction.parse({
    id: `${traceId}:${spanId}`,
    traceId,
    spanId,
    taskIdSource: "attribute",
    name: `step ${spanId}`,
    agent: {},
    endTimeMs: fields.startTimeMs + 5,
    status: "ok",
    links: [],
    attributes: {},
    receivedAtMs: fields.startTimeMs + 10,
    ...fields,
  });
}

/** A tool call (`execute_tool`), by default of invoices.read. */
export function toolCall(fields: Partial<AgentAction> & { taskId: string; startTimeMs: number; tool?: AgentAction["tool"] }): AgentAction {
  const tool = fields.tool ?? { name: "invoices.read" };
  return agentAction({ name: `execute_tool ${tool.name}`, operation: "execute_tool", tool, ...fields });
}
