import type { Delivery, DeliveryOutcome } from "../../runtime/delivery.js";
import type { SecretSource } from "../../runtime/secret-source.js";
import { type CredentialRef, CredentialRefError, parseCredentialRef } from "./credential-ref.js";
import type { CredentialStore, RevocationRequest } from "./credential-store.js";
import { refused, type StoreOutcome } from "./outcome.js";

/**
 * HashiCorp Vault: revokes a lease, every lease under a prefix, or a token (with its
 * children and leases) by its accessor, through Vault's HTTP API:
 *
 * - `vault:lease:<id>`       → `PUT  /v1/sys/leases/revoke` `{"lease_id": "<id>"}`
 * - `vault:prefix:<prefix>`  → `PUT  /v1/sys/leases/revoke-prefix/<prefix>`
 * - `vault:accessor:<a>`     → `POST /v1/auth/token/revoke-accessor` `{"accessor": "<a>"}`
 *
 * Authenticated by `X-Vault-Token` (from the environment, or a file re-read when it
 * changes; on a 403 a changed file is read again and the call made once more), with
 * `X-Vault-Namespace` when a namespace is set. Vault answers 204 on success.
 *
 * Already gone counts as revoked: Vault answers 204 to a revoke of a lease id it does not
 * know (nothing to revoke), and 400 `{"errors":["invalid accessor"]}` to a revoke-accessor
 * of an accessor it does not know (the token was revoked before, or expired), which is
 * read here as revoked. Either way the call can be repeated safely, which is what makes a
 * redelivered revocation harmless.
 *
 * An accessor comes from an agent's span too: before the first accessor revocation with a
 * token, Driftwatch looks its own token up (`lookup-self`) and refuses to revoke its accessor.
 *
 * Prefix revocation can end many credentials at once and the credential id comes from an
 * agent's own spans, so it is refused unless the prefix lies strictly below one of the
 * configured roots (`DRIFTWATCH_VAULT_PREFIX_ROOTS`).
 */
export interface VaultOptions {
  /** Vault's address, e.g. https://vault.internal:8200. */
  addr: string;
  token: SecretSource;
  /** Vault Enterprise / HCP namespace, sent as X-Vault-Namespace. */
  namespace?: string;
  /** Time-out of one attempt. */
  timeoutMs: number;
  /** Lease prefixes below which `vault:prefix:` revocation is allowed; none allows none. */
  prefixRoots?: string[];
}

interface VaultCall {
  method: "PUT" | "POST";
  path: string;
  body?: string;
  what: string;
}

export class VaultCredentialStore implements CredentialStore {
  readonly name = "vault";
  private readonly base: URL;
  private readonly endpoint: string;
  private readonly roots: string[];
  /** Driftwatch's own token's accessor, for the token it was looked up with. */
  private own: { token: string; accessor: string } | undefined;

  constructor(
    private readonly options: VaultOptions,
    private readonly delivery: Delivery,
  ) {
    this.base = new URL(options.addr.endsWith("/") ? options.addr : `${options.addr}/`);
    this.endpoint = `vault ${this.base.origin}${this.base.pathname.replace(/\/$/, "")}`;
    this.roots = (options.prefixRoots ?? []).map((r) => r.replace(/\/+$/, "")).filter(Boolean);
  }

  async revoke(request: RevocationRequest): Promise<StoreOutcome> {
    let ref: CredentialRef;
    try {
      ref = parseCredentialRef(request.credentialId);
    } catch (err) {
      return refused(err instanceof CredentialRefError ? err.message : String(err));
    }
    if (ref.store !== "vault")
      return refused(`not a Vault credential reference (expected vault:lease:, vault:prefix: or vault:accessor:): ${request.credentialId}`);
    if (ref.kind === "prefix") {
      const problem = this.prefixProblem(ref.prefix);
      if (problem) return refused(problem);
    }
    if (ref.kind === "accessor") {
      // the accessor comes from an agent's span: never Driftwatch's own token's
      const own = await this.ownAccessor();
      if ("unknown" in own) return own.unknown;
      if (own.accessor !== undefined && own.accessor === ref.accessor)
        return refused("refusing to revoke the accessor of Driftwatch's own Vault token (an agent named it)");
    }
    const call = vaultCall(ref);
    let usedToken = "";
    const send = () =>
      this.delivery.send({
        url: new URL(call.path, this.base).toString(),
        endpoint: this.endpoint,
        method: call.method,
        timeoutMs: this.options.timeoutMs,
        ...(call.body !== undefined ? { body: call.body } : {}),
        headers: () => {
          usedToken = this.options.token.read();
          return {
            "x-vault-token": usedToken,
            "x-vault-request": "true",
            ...(call.body !== undefined ? { "content-type": "application/json" } : {}),
            ...(this.options.namespace ? { "x-vault-namespace": this.options.namespace } : {}),
          };
        },
      });

    let outcome = await send();
    let attempts = outcome.attempts;
    if (outcome.status === 403 && usedToken !== "" && this.tokenChanged(usedToken)) {
      // the token was rotated under us: one more call with the new one
      outcome = await send();
      attempts += outcome.attempts;
    }
    return this.interpret(ref, call, outcome, attempts);
  }

  private interpret(ref: CredentialRef, call: VaultCall, outcome: DeliveryOutcome, attempts: number): StoreOutcome {
    const n = attempts; // requests sent; 0 when none was (circuit open, token unreadable)
    if (outcome.ok) return { status: "revoked", detail: `${outcome.detail}: ${call.what} revoked`, attempts: n };
    const errors = vaultErrors(outcome.body);
    if (ref.store === "vault" && ref.kind === "accessor" && outcome.status === 400 && errors.some((e) => /invalid accessor/i.test(e)))
      return {
        status: "revoked",
        detail: `${outcome.detail}: Vault does not know the accessor (its token was revoked before, or expired)`,
        attempts: n,
      };
    const detail = errors.length > 0 ? `${outcome.detail}: ${errors.join("; ").slice(0, 300)}` : outcome.detail;
    return {
      status: "failed",
      detail,
      attempts: n,
      ...(outcome.permanent ? { permanent: true } : {}),
      ...(outcome.circuitOpen ? { circuitOpen: true } : {}),
    };
  }

  /**
   * The accessor of the token Driftwatch uses (`GET /v1/auth/token/lookup-self`, which
   * Vault's default policy grants), looked up once per token. A token not allowed to look
   * itself up (403) leaves the guard off: `{}`; no answer (Vault unreachable, 5xx) fails the
   * revocation for now: it is tried again later.
   */
  private async ownAccessor(): Promise<{ accessor?: string } | { unknown: StoreOutcome }> {
    let token: string;
    try {
      token = this.options.token.read();
    } catch {
      return {}; // the revocation itself reports the unreadable token
    }
    if (this.own?.token === token) return { accessor: this.own.accessor };
    const outcome = await this.delivery.send({
      url: new URL("v1/auth/token/lookup-self", this.base).toString(),
      endpoint: this.endpoint,
      method: "GET",
      timeoutMs: this.options.timeoutMs,
      headers: () => ({
        "x-vault-token": token,
        "x-vault-request": "true",
        ...(this.options.namespace ? { "x-vault-namespace": this.options.namespace } : {}),
      }),
    });
    if (outcome.status === 403) return {};
    let accessor: unknown;
    try {
      accessor = (JSON.parse(outcome.body ?? "") as { data?: { accessor?: unknown } }).data?.accessor;
    } catch {
      accessor = undefined;
    }
    if (outcome.ok && typeof accessor === "string" && accessor !== "") {
      this.own = { token, accessor };
      return { accessor };
    }
    return {
      unknown: {
        status: "failed",
        detail: `could not look up Driftwatch's own token before revoking an accessor: ${outcome.ok ? "no accessor in Vault's answer" : outcome.detail}`,
        attempts: outcome.attempts,
        ...(outcome.circuitOpen ? { circuitOpen: true } : {}),
      },
    };
  }

  private tokenChanged(used: string): boolean {
    try {
      return this.options.token.read(true) !== used;
    } catch {
      return false;
    }
  }

  private prefixProblem(prefix: string): string | undefined {
    const p = prefix.replace(/\/+$/, "");
    if (this.roots.length === 0)
      return `prefix revocation is off: set DRIFTWATCH_VAULT_PREFIX_ROOTS to the lease prefixes below which it is allowed (refused vault:prefix:${prefix})`;
    if (!this.roots.some((root) => p.startsWith(`${root}/`)))
      return `the prefix ${prefix} is not strictly below an allowed root (${this.roots.join(", ")})`;
    return undefined;
  }
}

function vaultCall(ref: Extract<CredentialRef, { store: "vault" }>): VaultCall {
  switch (ref.kind) {
    case "lease":
      return { method: "PUT", path: "v1/sys/leases/revoke", body: JSON.stringify({ lease_id: ref.leaseId }), what: "lease" };
    case "prefix":
      return {
        method: "PUT",
        path: `v1/sys/leases/revoke-prefix/${ref.prefix.split("/").map(encodeURIComponent).join("/")}`,
        what: "leases under the prefix",
      };
    case "accessor":
      return {
        method: "POST",
        path: "v1/auth/token/revoke-accessor",
        body: JSON.stringify({ accessor: ref.accessor }),
        what: "token",
      };
  }
}

/** Vault's error bodies are `{"errors": ["…"]}`. */
function vaultErrors(body: string | undefined): string[] {
  if (!body) return [];
  try {
    const parsed = JSON.parse(body) as { errors?: unknown };
    return Array.isArray(parsed.errors) ? parsed.errors.filter((e): e is string => typeof e === "string") : [];
  } catch {
    return [];
  }
}
