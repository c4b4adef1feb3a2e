import { Webhook } from "standardwebhooks";

/**
 * The one client behind every outgoing webhook (credential-store revocations, SOC alerts):
 * JSON bodies signed per the Standard Webhooks specification (webhook-id, webhook-timestamp,
 * webhook-signature: HMAC-SHA256), a time-out, and bounded retries on 5xx and network errors.
 * The message id is stable per event, so receivers can drop repeats.
 */
export interface SignedWebhookTarget {
  url: string;
  secret: string;
}

export interface WebhookResult {
  ok: boolean;
  status?: number;
  attempts: number;
  detail: string;
}

export class WebhookClient {
  constructor(
    private readonly options: { timeoutMs: number; retries?: number; backoffMs?: number; userAgent?: string } = { timeoutMs: 5000 },
  ) {}

  async post(target: SignedWebhookTarget, messageId: string, payload: unknown): Promise<WebhookResult> {
    const signer = new Webhook(target.secret);
    const body = JSON.stringify(payload);
    const retries = this.options.retries ?? 2;
    let last: WebhookResult = { ok: false, attempts: 0, detail: "not attempted" };
    for (let attempt = 1; attempt <= retries + 1; attempt++) {
      const timestamp = new Date();
      const signature = signer.sign(messageId, timestamp, body);
      try {
        const res = await fetch(target.url, {
          method: "POST",
          body,
          headers: {
            "content-type": "application/json",
            "user-agent": this.options.userAgent ?? "driftwatch",
            "webhook-id": messageId,
            "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
            "webhook-signature": signature,
          },
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return { ok: true, status: res.status, attempts: attempt, detail: `HTTP ${res.status}` };
        last = { ok: false, status: res.status, attempts: attempt, detail: `HTTP ${res.status}` };
        if (res.status < 500 && res.status !== 429) return last; // the receiver refused: retrying will not help
      } catch (err) {
        last = { ok: false, attempts: attempt, detail: (err as Error).message };
      }
      if (attempt <= retries) await new Promise((r) => setTimeout(r, (this.options.backoffMs ?? 200) * 2 ** (attempt - 1)));
    }
    return last;
  }
}
