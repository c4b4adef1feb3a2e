import type { SignedWebhookTarget, WebhookClient } from "../../runtime/webhook-client.js";
import type { CredentialStore, RevocationRequest } from "./credential-store.js";
import type { StoreOutcome } from "./outcome.js";

/**
 * A generic credential store reached by a signed webhook (Standard Webhooks). The body
 * names the credential, the task and the finding; `webhook-id` is the revocation id, the
 * same on every retry, so the receiver can revoke once. It can also suspend a credential
 * and resume it (`type` `driftwatch.credential.suspend` / `.resume`, `webhook-id` the
 * revocation id with `-suspend` / `-resume`).
 */
export class WebhookCredentialStore implements CredentialStore {
  readonly name = "webhook";

  constructor(
    private readonly target: SignedWebhookTarget,
    private readonly client: WebhookClient,
  ) {}

  revoke(request: RevocationRequest): Promise<StoreOutcome> {
    return this.send("revoke", request.revocationId, request);
  }

  /** `driftwatch.credential.suspend`: take the credential away until a `resume` (the task's telemetry went silent). */
  suspend(request: RevocationRequest): Promise<StoreOutcome> {
    return this.send("suspend", `${request.revocationId}-suspend`, request);
  }

  /** `driftwatch.credential.resume`: give back a credential suspended before. */
  resume(request: RevocationRequest): Promise<StoreOutcome> {
    return this.send("resume", `${request.revocationId}-resume`, request);
  }

  private async send(action: "revoke" | "suspend" | "resume", messageId: string, request: RevocationRequest): Promise<StoreOutcome> {
    const result = await this.client.post(this.target, messageId, {
      type: `driftwatch.credential.${action}`,
      revocation_id: request.revocationId,
      credential_id: request.credentialId,
      task_id: request.taskId,
      finding_id: request.findingId,
      reason: request.reason,
    });
    return {
      status: result.ok ? "revoked" : "failed",
      detail: result.detail,
      attempts: result.attempts,
      ...(result.permanent ? { permanent: true } : {}),
      ...(result.circuitOpen ? { circuitOpen: true } : {}),
    };
  }
}
