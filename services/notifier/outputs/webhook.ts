import type { Finding } from "../../../schemas/finding.js";
import type { SignedWebhookTarget, WebhookClient } from "../../runtime/webhook-client.js";
import type { AlertOutput } from "./output.js";

/** Each finding POSTed to a SOC webhook, signed (Standard Webhooks); webhook-id is the finding id. */
export class WebhookOutput implements AlertOutput {
  readonly name = "webhook";

  constructor(
    private readonly target: SignedWebhookTarget,
    private readonly client: WebhookClient,
  ) {}

  async send(findings: Finding[]): Promise<void> {
    for (const finding of findings) {
      const result = await this.client.post(this.target, finding.id, { type: "driftwatch.finding", finding });
      if (!result.ok) throw new Error(`alert webhook refused finding ${finding.id}: ${result.detail}`);
    }
  }
}
