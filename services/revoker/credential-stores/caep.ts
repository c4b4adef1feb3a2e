import { SignJWT } from "jose";
import type { Delivery } from "../../runtime/delivery.js";
import type { SecretSource } from "../../runtime/secret-source.js";
import { loadSigningKey, type SigningKey } from "../../runtime/signing-key.js";
import { type CredentialRef, CredentialRefError, parseCredentialRef } from "./credential-ref.js";
import type { CredentialStore, RevocationRequest } from "./credential-store.js";
import { refused, type StoreOutcome } from "./outcome.js";

/**
 * OpenID Shared Signals / CAEP: a revocation is a Security Event Token (RFC 8417) pushed
 * to the receiver per RFC 8935 (POST, `content-type: application/secevent+jwt`, `202
 * Accepted` on success; a 400 with `{"err", "description"}` is a permanent refusal).
 *
 * The SET follows the SSF 1.0 SET profile: JOSE header `typ: secevent+jwt` (explicit
 * typing), signed ES256 (P-256 key) or RS256 (RSA key), `kid` when configured; claims
 * `iss`, `aud`, `iat`, `jti`, `txn`, the subject in `sub_id` (a Subject Identifier, RFC
 * 9493), one event in `events`, and no `sub` or `exp` (SSF forbids both).
 *
 * - `jti` is the revocation id: the same for every delivery of one revocation (each
 *   retry sends the very same SET; a later redelivery re-signs it with a new `iat` but the
 *   same `jti`), so the receiver recognises a repeat.
 * - `txn` is the finding that caused it: the SETs for a task's credentials share it.
 * - Event: `session-revoked` (CAEP 1.0 §3.1) for `caep:session:<id>` and
 *   `caep:<subject>`; `credential-change` (§3.3) with `change_type: revoke` and the
 *   reference's `credential_type` for `caep:credential:<type>:<subject>`. Both carry
 *   `event_timestamp`, `initiating_entity: policy` and `reason_admin` (`en`: the finding's
 *   rule and explanation).
 */
export const CAEP_EVENT = {
  "session-revoked": "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
  "credential-change": "https://schemas.openid.net/secevent/caep/event-type/credential-change",
} as const;

export const SET_MEDIA_TYPE = "application/secevent+jwt";

export interface CaepOptions {
  /** The receiver's push endpoint (RFC 8935). */
  receiverUrl: string;
  /** `iss`: the transmitter's issuer identifier, as the receiver's stream configuration has it. */
  issuer: string;
  /** `aud`: the receiver. */
  audience: string | string[];
  /** PEM private key (PKCS#8, SEC1 or PKCS#1): EC P-256 signs ES256, RSA (2048 bits or more) RS256 (see signing-key.ts). */
  signingKey: string;
  /** `kid` in the JOSE header, so the receiver picks the key from the transmitter's JWKS. */
  keyId?: string;
  /** The Authorization header value the receiver asked for (SSF `authorization_header`). */
  authorization?: SecretSource;
  /** Time-out of one attempt. */
  timeoutMs: number;
  now?: () => number;
}

type CaepRef = Extract<CredentialRef, { store: "caep" }>;

export class CaepCredentialStore implements CredentialStore {
  readonly name = "caep";
  private readonly signing: SigningKey;
  private readonly now: () => number;

  constructor(
    private readonly options: CaepOptions,
    private readonly delivery: Delivery,
  ) {
    this.signing = loadSigningKey(options.signingKey);
    this.now = options.now ?? Date.now;
  }

  /** The signed SET for a revocation of a `caep:` credential. */
  async securityEventToken(request: RevocationRequest, ref: CaepRef): Promise<string> {
    const iat = Math.floor(this.now() / 1000);
    const common = { event_timestamp: iat, initiating_entity: "policy", reason_admin: { en: request.reason } };
    const event = ref.event === "credential-change" ? { credential_type: ref.credentialType, change_type: "revoke", ...common } : common;
    return new SignJWT({
      iss: this.options.issuer,
      aud: this.options.audience,
      iat,
      jti: request.revocationId,
      txn: request.findingId,
      sub_id: ref.subject,
      events: { [CAEP_EVENT[ref.event]]: event },
    })
      .setProtectedHeader({ alg: this.signing.alg, typ: "secevent+jwt", ...(this.options.keyId ? { kid: this.options.keyId } : {}) })
      .sign(this.signing.key);
  }

  async revoke(request: RevocationRequest): Promise<StoreOutcome> {
    let ref: CredentialRef;
    try {
      ref = parseCredentialRef(request.credentialId);
    } catch (err) {
      return refused(err instanceof CredentialRefError ? err.message : String(err));
    }
    if (ref.store !== "caep")
      return refused(
        `not a CAEP credential reference (expected caep:session:, caep:credential: or caep:<subject>): ${request.credentialId}`,
      );
    let set: string;
    try {
      set = await this.securityEventToken(request, ref);
    } catch (err) {
      return { status: "failed", detail: `cannot sign the SET: ${(err as Error).message}`, attempts: 0 };
    }
    const auth = this.options.authorization;
    const outcome = await this.delivery.send({
      url: this.options.receiverUrl,
      method: "POST",
      body: set, // the same bytes on every attempt
      timeoutMs: this.options.timeoutMs,
      headers: () => ({
        "content-type": SET_MEDIA_TYPE,
        accept: "application/json",
        ...(auth ? { authorization: auth.read() } : {}),
      }),
    });
    const attempts = outcome.attempts; // requests sent; 0 when none was (circuit open)
    if (outcome.ok) return { status: "revoked", detail: `${outcome.detail}: SET ${ref.event} accepted`, attempts };
    const error = setError(outcome.body);
    return {
      status: "failed",
      detail: error ? `${outcome.detail}: ${error}` : outcome.detail,
      attempts,
      ...(outcome.permanent ? { permanent: true } : {}),
      ...(outcome.circuitOpen ? { circuitOpen: true } : {}),
    };
  }
}

/** RFC 8935 §2.3: an error body is `{"err": "<code>", "description": "<text>"}`. */
function setError(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body) as { err?: unknown; description?: unknown };
    if (typeof parsed.err !== "string") return undefined;
    const description = typeof parsed.description === "string" ? `: ${parsed.description.slice(0, 300)}` : "";
    return `${parsed.err}${description}`;
  } catch {
    return undefined;
  }
}
