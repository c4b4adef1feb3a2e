import type { SignedWebhookTarget, WebhookClient } from "../../runtime/webhook-client.js";
import type { CredentialStore, RevocationRequest } from "./credential-store.js";
import type { StoreOutcome } from "./outcome.js";

/**
 * A generic credential store reached by a signed webhook (Standard Webhooks). The body
 * names the credential, the task and the finding; `webhook-id` is the revocation id, the
 * same on every retry, so the receiver can revoke once.
 */
export class WebhookCredentialStore implements CredentialStore {
  readonly name = "webhook";

  constructor(
    private readonly target: SignedWebhookTarget,
    private readonly client: WebhookClient,
  ) {}

  async revoke(request: RevocationRequest): Promise<StoreOutcome> {
    const result = await this.client.post(this.target, request.revocationId, {
      type: "driftwatch.credential.revoke",
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
