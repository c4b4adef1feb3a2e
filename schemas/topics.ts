/** The bus topics between stages (DESIGN.md, Pipeline). A prefix may isolate deployments. */
export const TOPICS = {
  otlpSpans: "otlp_spans",
  actions: "agent.actions",
  steps: "agent.steps",
  findings: "agent.findings",
  lifecycle: "agent.lifecycle",
  revocations: "agent.revocations",
  deadletter: "agent.deadletter",
  /** Every write asked of the console API, with who asked and how it ended (schemas/audit.ts). */
  audit: "agent.audit",
} as const;

export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

export function topicName(prefix: string, topic: TopicName): string {
  return `${prefix}${topic}`;
}
