import { CredentialRefError, type CredentialStoreKind, parseCredentialRef } from "./credential-ref.js";
import type { CredentialStore } from "./credential-store.js";

/**
 * The credential stores the revoker can reach, and which one revokes a credential: its
 * reference says (credential-ref.ts), anything without a `vault:` or `caep:` scheme goes to
 * the default store (the generic webhook, or record-only when none is configured).
 */
export type StoreChoice = { store: CredentialStore } | { refused: string };

export class CredentialStores {
  constructor(
    private readonly stores: { default: CredentialStore } & Partial<Record<Exclude<CredentialStoreKind, "default">, CredentialStore>>,
  ) {}

  storeFor(credentialId: string): StoreChoice {
    let kind: CredentialStoreKind;
    try {
      kind = parseCredentialRef(credentialId).store;
    } catch (err) {
      if (err instanceof CredentialRefError) return { refused: err.message };
      throw err;
    }
    const store = this.stores[kind];
    if (store) return { store };
    const how = kind === "vault" ? "DRIFTWATCH_VAULT_ADDR" : "DRIFTWATCH_CAEP_RECEIVER_URL";
    return { refused: `credential ${credentialId} belongs to ${kind}, which is not configured (set ${how})` };
  }

  get names(): string[] {
    return Object.values(this.stores).map((s) => s.name);
  }
}
