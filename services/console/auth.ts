import { createHash, timingSafeEqual } from "node:crypto";
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";
import { Role, type StaticToken } from "../../schemas/api-identity.js";

/**
 * Who is calling the console API, and what they may do. Three roles, each including the one
 * below it: `viewer` reads; `responder` also answers findings (decides approvals, lifts
 * quarantines); `admin` also registers task scopes and credentials. Callers authenticate
 * with a bearer token: a static token (small setups: `DRIFTWATCH_API_TOKEN`, the read token,
 * or a tokens file naming each holder), or an OIDC access token (a JWT) verified against the
 * issuer's JWKS, its roles read from a claim. The actor of every write is the authenticated
 * identity, never something the request body says.
 */
export { Role, StaticToken, TokensFile } from "../../schemas/api-identity.js";
export const ROLE_RANK: Record<Role, number> = { viewer: 0, responder: 1, admin: 2 };

export interface Actor {
  /** A stable id: the token holder's name, or the JWT's `iss`+`sub`. */
  id: string;
  /** For people reading the audit log: the token's name, or the JWT's `name`/`email`/`preferred_username`. */
  name: string;
  role: Role;
  /** How the caller proved it: a static token, an OIDC token, or nothing (no authentication configured: loopback use). */
  via: "token" | "oidc" | "none";
}

export interface OidcSettings {
  issuer: string;
  audience: string;
  /** Where the issuer's keys are; else found through `<issuer>/.well-known/openid-configuration`. */
  jwksUrl?: string;
  /** The claim that holds the caller's roles or groups (dotted path: `realm_access.roles`). */
  rolesClaim: string;
  /**
   * Which claim values give which role (`admin` → `["dw-admins"]`); by default `admin`,
   * `responder`, `viewer`, with or without a `driftwatch:` or `driftwatch-` prefix.
   */
  roleMap?: Partial<Record<Role, string[]>>;
}

export interface AuthSettings {
  tokens: StaticToken[];
  oidc?: OidcSettings;
}

export type Authentication = { actor: Actor } | { status: 401 | 403; error: string };

/** No authentication configured: every caller is the local operator (loopback use). */
export const ANONYMOUS: Actor = { id: "anonymous", name: "anonymous (no API authentication configured)", role: "admin", via: "none" };

const digest = (s: string) => createHash("sha256").update(s).digest();

/** A JWT has three base64url parts; a static token is anything else. */
const looksLikeJwt = (s: string) => /^[\w-]+\.[\w-]+\.[\w-]*$/.test(s);

function claimAt(payload: JWTPayload, path: string): unknown {
  let v: unknown = payload;
  for (const part of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function roleOf(values: unknown, map: OidcSettings["roleMap"]): Role | undefined {
  const list = Array.isArray(values) ? values.map(String) : typeof values === "string" ? values.split(/[\s,]+/) : [];
  let best: Role | undefined;
  for (const role of Role.options) {
    const names = map?.[role] ?? [role, `driftwatch:${role}`, `driftwatch-${role}`];
    if (list.some((v) => names.includes(v)) && (best === undefined || ROLE_RANK[role] > ROLE_RANK[best])) best = role;
  }
  return best;
}

export class Authenticator {
  private readonly tokens: { digest: Buffer; token: StaticToken }[];
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(private readonly settings: AuthSettings) {
    this.tokens = settings.tokens.map((token) => ({ digest: digest(token.token), token }));
  }

  /** Whether any authentication is configured (else every caller is ANONYMOUS). */
  get enabled(): boolean {
    return this.tokens.length > 0 || this.settings.oidc !== undefined;
  }

  async authenticate(authorization: string | undefined): Promise<Authentication> {
    if (!this.enabled) return { actor: ANONYMOUS };
    const presented = authorization?.startsWith("Bearer ") ? authorization.slice(7).trim() : "";
    if (presented === "") return { status: 401, error: "a bearer token is required (Authorization: Bearer <token>)" };
    if (this.settings.oidc && looksLikeJwt(presented)) return this.verifyJwt(presented, this.settings.oidc);
    // every static token is compared, in constant time, whichever matches
    const d = digest(presented);
    let match: StaticToken | undefined;
    for (const t of this.tokens) if (timingSafeEqual(d, t.digest)) match = t.token;
    if (!match) return { status: 401, error: "invalid token" };
    return { actor: { id: `token:${match.name}`, name: match.name, role: match.role, via: "token" } };
  }

  private async keys(oidc: OidcSettings) {
    if (!this.jwks) {
      let url = oidc.jwksUrl;
      if (!url) {
        const res = await fetch(`${oidc.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`, {
          signal: AbortSignal.timeout(5_000),
        });
        if (!res.ok) throw new Error(`OIDC discovery at ${oidc.issuer} answered ${res.status}`);
        const doc = (await res.json()) as { jwks_uri?: unknown };
        if (typeof doc.jwks_uri !== "string") throw new Error(`OIDC discovery at ${oidc.issuer} names no jwks_uri`);
        url = doc.jwks_uri;
      }
      this.jwks = createRemoteJWKSet(new URL(url), { timeoutDuration: 5_000, cooldownDuration: 30_000 });
    }
    return this.jwks;
  }

  private async verifyJwt(jwt: string, oidc: OidcSettings): Promise<Authentication> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, await this.keys(oidc), {
        issuer: oidc.issuer,
        audience: oidc.audience,
        // asymmetric signatures only: a shared-secret (HS*) or unsigned token is never accepted
        algorithms: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"],
        clockTolerance: 30,
        requiredClaims: ["sub", "exp"],
      }));
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      const why =
        code === "ERR_JWT_EXPIRED"
          ? "the token has expired"
          : code.startsWith("ERR_JWT_CLAIM")
            ? (err as Error).message
            : "the token could not be verified";
      return { status: 401, error: `invalid token: ${why}` };
    }
    const role = roleOf(claimAt(payload, oidc.rolesClaim), oidc.roleMap);
    const who = String(payload.name ?? payload.preferred_username ?? payload.email ?? payload.sub);
    if (!role) return { status: 403, error: `the token carries no Driftwatch role in its "${oidc.rolesClaim}" claim` };
    return { actor: { id: `oidc:${payload.iss}#${payload.sub}`, name: who, role, via: "oidc" } };
  }
}

/** Whether an actor's role reaches the one a route needs. */
export const allows = (actor: Actor, needed: Role): boolean => ROLE_RANK[actor.role] >= ROLE_RANK[needed];
