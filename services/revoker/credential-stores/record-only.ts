import type { CredentialStore, RevocationOutcome } from "./credential-store.js";

/**
 * Used when no credential store is configured: the revocation is decided and recorded
 * (status "recorded") but nothing outside is called. The detail says how to wire one.
 */
export class RecordOnlyCredentialStore implements CredentialStore {
  readonly name = "record-only";

  async revoke(): Promise<RevocationOutcome> {
    return {
      status: "recorded",
      detail: "no credential store configured (set DRIFTWATCH_REVOKE_WEBHOOK_URL); revocation recorded only",
      attempts: 1,
    };
  }
}
