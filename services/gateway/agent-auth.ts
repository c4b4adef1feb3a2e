import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createLocalJWKSet, type JSONWebKeySet, type JWTPayload, jwtVerify } from "jose";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { Sender } from "../../schemas/ingest-identity.js";

/**
 * Who may send spans to the gateway, and for whom (docs/trust-model.md). An agent presents a
 * bearer token: a static token from the agent tokens file (each naming the agent ids and
 * SPIFFE ids it may speak for), or a SPIFFE JWT-SVID verified against the trust bundle (its
 * subject is the workload it proves). The gateway passes the sender on, signed, to ingest,
 * which refuses spans that speak for anyone else.
 */
export const AgentToken = z
  .object({
    name: z.string().min(1).max(200),
    token: z.string().min(24, "at least 24 characters"),
    agentIds: z.array(z.string().min(1)).default([]),
    spiffeIds: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .refine((t) => t.agentIds.length + t.spiffeIds.length > 0, "a token must name the agent ids or SPIFFE ids it may speak for");
export type AgentToken = z.infer<typeof AgentToken>;
export const AgentTokensFile = z
  .array(AgentToken)
  .min(1)
  .refine((l) => new Set(l.map((t) => t.token)).size === l.length, "tokens must be unique");

export interface AgentAuthSettings {
  /** `required`: every request authenticates (401 otherwise); `optional`: unauthenticated spans go on unattributed; `none`: no checks. */
  mode: "none" | "optional" | "required";
  tokens: AgentToken[];
  svid?: {
    /** The SPIFFE trust bundle: a JWKS of the keys that sign JWT-SVIDs. */
    bundle: JSONWebKeySet;
    audience: string;
    /** Subjects must be in this trust domain (`spiffe://<domain>/…`). */
    trustDomain?: string;
  };
}

export type AgentAuthentication = { sender?: Sender } | { status: 401; error: string };

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Reads the agent tokens file (YAML or JSON); errors name the file and entry, never a token. */
export function readAgentTokens(path: string): AgentToken[] {
  let data: unknown;
  try {
    data = parseYaml(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split("\n")[0]}`);
  }
  const parsed = AgentTokensFile.safeParse(data);
  if (!parsed.success)
    throw new Error(`${path}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** Reads a SPIFFE trust bundle (a JWKS document). */
export function readTrustBundle(path: string): JSONWebKeySet {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (
    typeof data !== "object" ||
    data === null ||
    !Array.isArray((data as { keys?: unknown }).keys) ||
    (data as { keys: unknown[] }).keys.length === 0
  )
    throw new Error(`${path} is not a JWKS trust bundle (a JSON object with a non-empty "keys" list)`);
  return data as JSONWebKeySet;
}

/**
 * The JWT-signing keys of a SPIFFE bundle: a bundle marks them `use: "jwt-svid"` (and its
 * X.509 authorities `x509-svid`); JOSE libraries know signing keys as `use: "sig"`.
 */
function jwtKeysOf(bundle: JSONWebKeySet): JSONWebKeySet {
  return {
    keys: bundle.keys.filter((k) => k.use === undefined || k.use === "jwt-svid" || k.use === "sig").map((k) => ({ ...k, use: "sig" })),
  };
}

export class AgentAuthenticator {
  private readonly tokens: { digest: Buffer; token: AgentToken }[];
  private readonly keys: ReturnType<typeof createLocalJWKSet> | undefined;

  constructor(private readonly settings: AgentAuthSettings) {
    this.tokens = settings.tokens.map((token) => ({ digest: digest(token.token), token }));
    this.keys = settings.svid ? createLocalJWKSet(jwtKeysOf(settings.svid.bundle)) : undefined;
  }

  get mode(): AgentAuthSettings["mode"] {
    return this.settings.mode;
  }

  async authenticate(authorization: string | undefined): Promise<AgentAuthentication> {
    if (this.settings.mode === "none") return {};
    const presented = authorization?.startsWith("Bearer ") ? authorization.slice(7).trim() : "";
    if (presented === "") {
      return this.settings.mode === "required"
        ? { status: 401, error: "this gateway needs the agent's credential: Authorization: Bearer <agent token or JWT-SVID>" }
        : {};
    }
    if (this.keys && presented.split(".").length === 3) return this.verifySvid(presented);
    const d = digest(presented);
    let match: AgentToken | undefined;
    for (const t of this.tokens) if (timingSafeEqual(d, t.digest)) match = t.token;
    if (!match) return { status: 401, error: "invalid agent credential" };
    return { sender: { name: match.name, via: "token", agentIds: match.agentIds, spiffeIds: match.spiffeIds } };
  }

  private async verifySvid(jwt: string): Promise<AgentAuthentication> {
    const svid = this.settings.svid as NonNullable<AgentAuthSettings["svid"]>;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, this.keys as ReturnType<typeof createLocalJWKSet>, {
        audience: svid.audience,
        // JWT-SVIDs are signed with RS, ES or PS algorithms (SPIFFE JWT-SVID standard): never HS or none
        algorithms: ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"],
        requiredClaims: ["sub", "exp"],
        clockTolerance: 30,
      }));
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      return {
        status: 401,
        error: `invalid JWT-SVID: ${code === "ERR_JWT_EXPIRED" ? "it has expired" : code.startsWith("ERR_JWT_CLAIM") ? (err as Error).message : "it could not be verified against the trust bundle"}`,
      };
    }
    const sub = String(payload.sub);
    if (!sub.startsWith("spiffe://")) return { status: 401, error: "invalid JWT-SVID: its subject is not a SPIFFE id" };
    if (svid.trustDomain && !sub.startsWith(`spiffe://${svid.trustDomain}/`))
      return { status: 401, error: `invalid JWT-SVID: ${sub} is not in the trust domain ${svid.trustDomain}` };
    return { sender: { name: sub, via: "jwt-svid", spiffeId: sub, agentIds: [], spiffeIds: [sub] } };
  }
}
