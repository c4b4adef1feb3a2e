import { type Answer, type IncomingCall, json, LoopbackServer } from "./loopback-server.js";

/**
 * A real HTTP server on 127.0.0.1 standing in for HashiCorp Vault's API, for the three
 * revocation endpoints, answering as Vault does (checked against Vault's source):
 *
 * - `PUT /v1/sys/leases/revoke` `{"lease_id"}`: 204, also for a lease it does not know
 *   (nothing to revoke); 400 `lease_id must be specified` without one.
 * - `PUT /v1/sys/leases/revoke-prefix/<prefix>`: 204, revoking the lease named by the
 *   prefix or every lease below it (`<prefix>/…`).
 * - `POST /v1/auth/token/revoke-accessor` `{"accessor"}`: 204; 400 `invalid accessor` for
 *   one it does not know; 400 `missing accessor` without one.
 * - `GET /v1/auth/token/lookup-self`: 200 `{"data": {"accessor": …}}`, the calling token's
 *   accessor (`accessorOf`, else one made from the token); 403 while `lookupSelfDenied`.
 * - no or a wrong `X-Vault-Token` (or namespace, when one is required): 403
 *   `permission denied`. Errors are `{"errors": [...]}`.
 *
 * The outages of `LoopbackServer` apply (`vault.server.outage`, `.script`, `stop()`).
 */
export class FakeVault {
  readonly server: LoopbackServer;
  /** Tokens Vault accepts. */
  readonly tokens = new Set<string>();
  readonly leases = new Set<string>();
  readonly accessors = new Set<string>();
  /** What was revoked, in order: lease ids and `accessor:<accessor>`. */
  readonly revoked: string[] = [];
  /** When set, requests must carry this X-Vault-Namespace. */
  namespace: string | undefined;
  /** Each token's accessor, as lookup-self tells it. */
  readonly accessorOf = new Map<string, string>();
  /** A token whose policy does not grant lookup-self. */
  lookupSelfDenied = false;

  constructor(token: string) {
    this.tokens.add(token);
    this.server = new LoopbackServer((call) => this.answer(call));
  }

  get addr(): string {
    return this.server.url;
  }

  get calls() {
    return this.server.calls;
  }

  async start(): Promise<this> {
    await this.server.start();
    return this;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  private answer(call: IncomingCall): Answer {
    const denied = json(403, { errors: ["permission denied"] });
    const token = call.headers["x-vault-token"];
    if (typeof token !== "string" || !this.tokens.has(token)) return denied;
    if (this.namespace !== undefined && call.headers["x-vault-namespace"] !== this.namespace) return denied;
    const url = new URL(call.path, "http://vault");
    let body: Record<string, unknown> = {};
    try {
      body = call.body ? (JSON.parse(call.body) as Record<string, unknown>) : {};
    } catch {
      return json(400, { errors: ["failed to parse JSON input"] });
    }
    if (call.method === "PUT" && url.pathname === "/v1/sys/leases/revoke") {
      const leaseId = body.lease_id;
      if (typeof leaseId !== "string" || leaseId === "") return json(400, { errors: ["lease_id must be specified"] });
      if (this.leases.delete(leaseId)) this.revoked.push(leaseId);
      return { status: 204 };
    }
    const prefixPath = "/v1/sys/leases/revoke-prefix/";
    if (call.method === "PUT" && url.pathname.startsWith(prefixPath)) {
      const prefix = decodeURIComponent(url.pathname.slice(prefixPath.length));
      const below = prefix.endsWith("/") ? prefix : `${prefix}/`;
      for (const lease of [...this.leases])
        if (lease === prefix || lease.startsWith(below)) {
          this.leases.delete(lease);
          this.revoked.push(lease);
        }
      return { status: 204 };
    }
    if (call.method === "GET" && url.pathname === "/v1/auth/token/lookup-self") {
      if (this.lookupSelfDenied) return denied;
      return json(200, {
        data: { accessor: this.accessorOf.get(token) ?? `acc-self-${token.length}-${token.slice(-6)}`, policies: ["default"] },
      });
    }
    if (call.method === "POST" && url.pathname === "/v1/auth/token/revoke-accessor") {
      const accessor = body.accessor;
      if (typeof accessor !== "string" || accessor === "") return json(400, { errors: ["missing accessor"] });
      if (!this.accessors.delete(accessor)) return json(400, { errors: ["invalid accessor"] });
      this.revoked.push(`accessor:${accessor}`);
      return { status: 204 };
    }
    return json(404, { errors: [] });
  }
}
