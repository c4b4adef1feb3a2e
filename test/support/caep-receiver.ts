import type { KeyObject } from "node:crypto";
import { decodeProtectedHeader, type JWTPayload, jwtVerify } from "jose";
import { type Answer, type IncomingCall, json, LoopbackServer } from "./loopback-server.js";

/**
 * A real HTTP server on 127.0.0.1 standing in for an OpenID Shared Signals receiver's
 * push endpoint (RFC 8935). For each request it checks the method, the content type,
 * the Authorization header (when one is required), the SET's signature with the
 * transmitter's public key, and its claims against RFC 8417 and the SSF 1.0 / CAEP 1.0
 * profiles. It answers 202 to a good SET (to a repeated `jti` too: the receiver drops
 * the repeat, and the transmitter must not retry it) and 400 `{"err", "description"}`
 * otherwise. The outages of `LoopbackServer` apply (`receiver.server.outage`, ...).
 */
export const SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
export const CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change";

export type SetPayload = JWTPayload & Record<string, unknown>;

export interface ReceivedSet {
  token: string;
  header: Record<string, unknown>;
  payload: SetPayload;
  contentType: string | undefined;
  /** Why it was refused; empty for a good SET. */
  problems: string[];
  /** A good SET with this jti came before. */
  repeat: boolean;
}

export interface Expected {
  issuer: string;
  audience: string;
  /** The Authorization header value the receiver requires. */
  authorization?: string;
}

export class CaepReceiver {
  readonly server: LoopbackServer;
  readonly received: ReceivedSet[] = [];
  /** Answer this instead of checking (e.g. a 400 with an error body). */
  override: Answer | undefined;

  constructor(
    private readonly publicKey: KeyObject,
    private readonly expected: Expected,
  ) {
    this.server = new LoopbackServer((call) => this.answer(call));
  }

  get url(): string {
    return `${this.server.url}/events`;
  }

  async start(): Promise<this> {
    await this.server.start();
    return this;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  /** The SETs that passed every check. */
  accepted(): ReceivedSet[] {
    return this.received.filter((r) => r.problems.length === 0);
  }

  private async answer(call: IncomingCall): Promise<Answer> {
    if (this.override) return this.override;
    const problems: string[] = [];
    if (call.method !== "POST") problems.push(`method ${call.method}, expected POST`);
    if (call.headers["content-type"] !== "application/secevent+jwt")
      problems.push(`content-type ${call.headers["content-type"]}, expected application/secevent+jwt`);
    const authorizationBad = this.expected.authorization !== undefined && call.headers.authorization !== this.expected.authorization;
    if (authorizationBad) problems.push("authorization missing or wrong");
    const verdict = await checkSet(call.body, this.publicKey, this.expected);
    problems.push(...verdict.problems);
    const jti = verdict.payload.jti;
    const record: ReceivedSet = {
      token: call.body,
      header: protectedHeader(call.body),
      payload: verdict.payload,
      contentType: call.headers["content-type"],
      problems,
      repeat: problems.length === 0 && typeof jti === "string" && this.accepted().some((r) => r.payload.jti === jti),
    };
    this.received.push(record);
    if (problems.length === 0) return { status: 202 };
    const err = authorizationBad ? "authentication_failed" : verdict.signatureBad ? "invalid_key" : "invalid_request";
    return json(400, { err, description: problems.join("; ") });
  }
}

export interface Verdict {
  payload: SetPayload;
  problems: string[];
  signatureBad: boolean;
}

/** Verifies the SET's signature, `typ`, `iss` and `aud`, then its SSF/CAEP claims; lists every problem found. */
export async function checkSet(token: string, publicKey: KeyObject, expected: { issuer: string; audience: string }): Promise<Verdict> {
  let payload: SetPayload;
  try {
    const verified = await jwtVerify(token, publicKey, {
      issuer: expected.issuer,
      audience: expected.audience,
      typ: "secevent+jwt",
      algorithms: ["ES256", "RS256"],
    });
    payload = verified.payload as SetPayload;
  } catch (err) {
    return { payload: unverifiedPayload(token), problems: [`signature or claims: ${(err as Error).message}`], signatureBad: true };
  }
  const problems: string[] = [];
  if ("sub" in payload) problems.push("sub present (SSF forbids it)");
  if ("exp" in payload) problems.push("exp present (SSF forbids it)");
  if (typeof payload.jti !== "string" || payload.jti === "") problems.push("jti missing");
  if (typeof payload.iat !== "number") problems.push("iat missing");
  if (typeof payload.txn !== "string") problems.push("txn missing");
  const subId = payload.sub_id as Record<string, unknown> | undefined;
  if (!subId || typeof subId.format !== "string") problems.push("sub_id missing or without format");
  const events = payload.events as Record<string, Record<string, unknown>> | undefined;
  const types = events && typeof events === "object" ? Object.keys(events) : [];
  if (types.length !== 1) problems.push(`events holds ${types.length} events, expected 1`);
  const type = types[0];
  const event = type ? events?.[type] : undefined;
  if (type !== SESSION_REVOKED && type !== CREDENTIAL_CHANGE) problems.push(`event type ${type} is not a CAEP revocation`);
  if (typeof event?.event_timestamp !== "number") problems.push("event_timestamp missing");
  if (event?.initiating_entity !== undefined && !["admin", "user", "policy", "system"].includes(String(event.initiating_entity)))
    problems.push("initiating_entity is not admin, user, policy or system");
  if (event?.reason_admin !== undefined && (typeof event.reason_admin !== "object" || event.reason_admin === null))
    problems.push("reason_admin is not a language-tagged object");
  if (type === CREDENTIAL_CHANGE) {
    if (typeof event?.credential_type !== "string") problems.push("credential_type missing");
    if (!["create", "revoke", "update", "delete"].includes(String(event?.change_type))) problems.push("change_type invalid");
  }
  return { payload, problems, signatureBad: false };
}

function protectedHeader(token: string): Record<string, unknown> {
  try {
    return decodeProtectedHeader(token) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function unverifiedPayload(token: string): SetPayload {
  try {
    return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as SetPayload;
  } catch {
    return {};
  }
}
