import type { Severity } from "../../../schemas/finding.js";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import type { Delivery } from "../../runtime/delivery.js";
import { type AlertOutput, nothingSent, refusal, type SendResult } from "./output.js";

/**
 * Each incident version as a Slack message, POSTed to an incoming webhook (Block Kit, with
 * a plain-text fallback). Slack answers 200 `ok`; 429 with `Retry-After` when rate limited
 * (the delivery waits and retries); 4xx such as `invalid_payload`, `no_service` or
 * `channel_is_archived` are refusals. The webhook URL is the credential: it never appears
 * in a log, a metric or a dead letter (the delivery's circuit is named `slack`).
 */
export interface SlackTarget {
  url: string;
  timeoutMs?: number;
}

const SEVERITY_MARK: Record<Severity, string> = {
  info: ":information_source:",
  low: ":large_blue_circle:",
  medium: ":large_yellow_circle:",
  high: ":large_orange_circle:",
  critical: ":red_circle:",
};

/** Slack's mrkdwn control characters. */
function mrkdwn(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The message for one incident version. */
export function slackMessage(update: IncidentUpdate): { text: string; blocks: unknown[] } {
  const i = update.incident;
  const head = `[${i.severity.toUpperCase()}] ${i.title}`;
  const rules = i.rules.map((r) => `${r.ruleId} ×${r.count}`).join(", ") || "none";
  const revocations = i.revocations.map((r) => `${r.credentialId}: ${r.status}`).join(", ") || "none";
  const field = (label: string, value: string) => ({ type: "mrkdwn", text: clip(`*${label}*\n${mrkdwn(value)}`, 2000) });
  const tags = [...i.tags.owaspAgentic, ...i.tags.maestro, ...i.tags.nistAiRmf];
  return {
    text: clip(`${head}: ${update.change.summary}`, 3000),
    blocks: [
      { type: "header", text: { type: "plain_text", text: clip(head, 150), emoji: true } },
      {
        type: "section",
        text: { type: "mrkdwn", text: clip(`${SEVERITY_MARK[i.severity]} ${mrkdwn(update.change.summary)}`, 3000) },
      },
      {
        type: "section",
        fields: [
          field("Severity", i.severity),
          field("Task", i.taskId),
          field("Agents", i.agents.join(", ") || "unknown"),
          field("Findings", String(i.findingCount)),
          field("Rules", rules),
          field("Credentials", revocations),
        ],
      },
      {
        type: "context",
        elements: [
          {
            type: "mrkdwn",
            text: clip(
              mrkdwn(
                `Driftwatch incident ${i.id} · version ${i.version}${tags.length > 0 ? ` · ${tags.join(", ")}` : ""}${
                  i.firstSeenMs !== undefined ? ` · first seen ${new Date(i.firstSeenMs).toISOString()}` : ""
                }`,
              ),
              3000,
            ),
          },
        ],
      },
    ],
  };
}

export class SlackOutput implements AlertOutput {
  readonly name = "slack";

  constructor(
    private readonly target: SlackTarget,
    private readonly delivery: Delivery,
    readonly minSeverity: Severity = "info",
  ) {}

  async send(update: IncidentUpdate): Promise<SendResult> {
    const outcome = await this.delivery.send({
      url: this.target.url,
      endpoint: "slack",
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(slackMessage(update)),
      ...(this.target.timeoutMs !== undefined ? { timeoutMs: this.target.timeoutMs } : {}),
    });
    if (outcome.ok) return { ok: true, detail: outcome.detail };
    return {
      ok: false,
      detail: refusal(`Slack refused incident ${update.incident.id} version ${update.incident.version}`, outcome),
      ...(outcome.permanent ? { permanent: true } : {}),
      ...(nothingSent(outcome) ? { notSent: true } : {}),
    };
  }
}
