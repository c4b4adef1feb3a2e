import type { RevocationOutcome } from "./credential-store.js";

/** A revocation outcome that also says whether trying again could help (for the revoker's retry and dead-letter policy). */
export interface StoreOutcome extends RevocationOutcome {
  /** Retrying will not help: the store refused the request, or the reference is malformed or not allowed. */
  permanent?: boolean;
  /** The store's circuit was open: nothing (more) was sent. */
  circuitOpen?: boolean;
}

/** Nothing was sent (attempts 0): the reference cannot be revoked by this store. */
export function refused(detail: string): StoreOutcome {
  return { status: "failed", detail, attempts: 0, permanent: true };
}
