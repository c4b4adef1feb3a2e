/** A credential store that can revoke a just-in-time credential (Vault, a generic webhook, ...). */
export interface RevocationRequest {
  revocationId: string;
  credentialId: string;
  taskId: string;
  findingId: string;
  reason: string;
}

export interface RevocationOutcome {
  status: "revoked" | "failed" | "recorded";
  detail: string;
  attempts: number;
}

export interface CredentialStore {
  readonly name: string;
  revoke(request: RevocationRequest): Promise<RevocationOutcome>;
  /**
   * A store that can take a credential away for a while and give it back (the generic
   * webhook): for a task whose telemetry went silent, when its profile says `suspend`. A
   * store without these has its credentials revoked instead (fail-safe). `status` is
   * `revoked` when the store took the suspension (or the resumption).
   */
  suspend?(request: RevocationRequest): Promise<RevocationOutcome>;
  resume?(request: RevocationRequest): Promise<RevocationOutcome>;
}
