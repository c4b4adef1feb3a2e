import type { Finding } from "../../../schemas/finding.js";
import { Unavailable } from "../../runtime/stage.js";
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
      if (result.ok) continue;
      const message = `alert webhook refused finding ${finding.id}: ${result.detail}`;
      // unreachable, 5xx or 429: the endpoint is down, so the batch waits for it; other refusals are about this finding
      throw result.status === undefined || result.status >= 500 || result.status === 429 ? new Unavailable(message) : new Error(message);
    }
  }
}
