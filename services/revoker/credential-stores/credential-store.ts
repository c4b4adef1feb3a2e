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
}
