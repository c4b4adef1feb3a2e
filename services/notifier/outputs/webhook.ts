import type { Severity } from "../../../schemas/finding.js";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import type { SignedWebhookTarget, WebhookClient } from "../../runtime/webhook-client.js";
import { toDetectionFinding } from "../ocsf.js";
import { type AlertOutput, nothingSent, type SendResult } from "./output.js";

/** The `webhook-id` of an incident version: the same on every retry, so receivers can drop repeats. */
export function webhookIdOf(update: IncidentUpdate): string {
  return `${update.incident.id}-v${update.incident.version}`;
}

/**
 * Each incident version POSTed to a SOC webhook, signed (Standard Webhooks): the version as
 * the notifier keeps it (`type: "driftwatch.incident"`, `incident`, `change`, `findings`,
 * `finding`, `revocation`) with its OCSF Detection Finding as `ocsf`.
 */
export class WebhookOutput implements AlertOutput {
  readonly name = "webhook";

  constructor(
    private readonly target: SignedWebhookTarget,
    private readonly client: WebhookClient,
    readonly minSeverity: Severity = "info",
  ) {}

  async send(update: IncidentUpdate): Promise<SendResult> {
    const result = await this.client.post(this.target, webhookIdOf(update), { ...update, ocsf: toDetectionFinding(update) });
    if (result.ok) return { ok: true, detail: result.detail };
    return {
      ok: false,
      detail: `alert webhook refused incident ${update.incident.id} version ${update.incident.version}: ${result.detail}`,
      ...(result.permanent ? { permanent: true } : {}),
      ...(nothingSent(result) ? { notSent: true } : {}),
    };
  }
}
