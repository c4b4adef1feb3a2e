import { Webhook } from "standardwebhooks";
import { type CircuitPolicy, Delivery, type DeliveryEvent } from "./delivery.js";

/**
 * The one client behind every outgoing signed webhook (credential-store revocations, SOC
 * alerts): JSON bodies signed per the Standard Webhooks specification (webhook-id,
 * webhook-timestamp, webhook-signature: HMAC-SHA256, signed afresh for each attempt),
 * sent through `Delivery` (time-out, retries with backoff and jitter, Retry-After, an
 * optional circuit breaker). The message id is stable per event, so receivers can drop
 * repeats.
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
  /** The receiver refused the message (4xx other than 408/429): sending it again will not help. */
  permanent?: boolean;
  /** The endpoint's circuit was open: the message (or its next retry) was not sent. */
  circuitOpen?: boolean;
}

export interface WebhookClientOptions {
  /** Time-out of one attempt. */
  timeoutMs: number;
  /** Retries after the first attempt (default 2). */
  retries?: number;
  /** Bound of the first backoff (full jitter, doubling per retry; default 200 ms). */
  backoffMs?: number;
  /** Longest single wait, Retry-After included (default 30 s). */
  maxDelayMs?: number;
  /** No retry starts after this long since the first attempt (default 30 s). */
  budgetMs?: number;
  /** A circuit breaker per webhook URL; off unless given. */
  circuit?: CircuitPolicy;
  userAgent?: string;
  onEvent?: (event: DeliveryEvent) => void;
  /** Share a delivery (its policy and circuits) instead; the retry options above are then ignored. */
  delivery?: Delivery;
}

export class WebhookClient {
  private readonly delivery: Delivery;

  constructor(private readonly options: WebhookClientOptions = { timeoutMs: 5000 }) {
    this.delivery =
      options.delivery ??
      new Delivery({
        timeoutMs: options.timeoutMs,
        retry: {
          maxAttempts: (options.retries ?? 2) + 1,
          baseDelayMs: options.backoffMs ?? 200,
          maxDelayMs: options.maxDelayMs ?? 30_000,
          budgetMs: options.budgetMs,
        },
        circuit: options.circuit ?? false,
        userAgent: options.userAgent ?? "driftwatch",
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      });
  }

  /** POSTs `payload` signed with the target's secret, `webhook-id` = `messageId` on every attempt. Never throws. */
  async post(target: SignedWebhookTarget, messageId: string, payload: unknown): Promise<WebhookResult> {
    let signer: Webhook;
    let body: string;
    try {
      signer = new Webhook(target.secret);
      body = JSON.stringify(payload);
    } catch (err) {
      // never echo the secret: the library's message is about its format
      return { ok: false, attempts: 0, detail: `cannot sign the webhook: ${(err as Error).message}`, permanent: true };
    }
    const outcome = await this.delivery.send({
      url: target.url,
      method: "POST",
      body,
      timeoutMs: this.options.timeoutMs,
      headers: () => {
        const timestamp = new Date();
        return {
          "content-type": "application/json",
          "webhook-id": messageId,
          "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
          "webhook-signature": signer.sign(messageId, timestamp, body),
        };
      },
    });
    return {
      ok: outcome.ok,
      attempts: outcome.attempts,
      detail: outcome.detail,
      ...(outcome.status !== undefined ? { status: outcome.status } : {}),
      ...(outcome.permanent ? { permanent: true } : {}),
      ...(outcome.circuitOpen ? { circuitOpen: true } : {}),
    };
  }
}
