/**
 * Credential references: the credential id a span carries (`agent.credential.id`) says
 * which credential store revokes it and how.
 *
 * | reference                                      | store    | revocation                                             |
 * | ---------------------------------------------- | -------- | ------------------------------------------------------ |
 * | `vault:lease:<lease id>`                       | Vault    | `PUT /v1/sys/leases/revoke` `{"lease_id": …}`          |
 * | `vault:prefix:<prefix>`                        | Vault    | `PUT /v1/sys/leases/revoke-prefix/<prefix>`            |
 * | `vault:accessor:<accessor>`                    | Vault    | `POST /v1/auth/token/revoke-accessor` `{"accessor": …}` |
 * | `caep:session:<session id>`                    | CAEP     | `session-revoked`, `sub_id` `{format: opaque, id}`     |
 * | `caep:<subject>`                               | CAEP     | `session-revoked` for every session of `<subject>`     |
 * | `caep:credential:<credential type>:<subject>`  | CAEP     | `credential-change`, `change_type: revoke`             |
 * | anything else                                  | default  | the generic signed webhook, id unchanged               |
 *
 * `<subject>` is a Subject Identifier (RFC 9493, and the SSF formats) written as text:
 * `email:<address>`, `phone_number:<+E.164>`, `acct:<user@host>` (format `account`),
 * `did:<method>:<id>`, `uri:<uri>`, `opaque:<id>`, `iss_sub:<issuer>|<subject>`,
 * `jwt_id:<issuer>|<jti>`. `<credential type>` is a CAEP credential type (`password`,
 * `pin`, `x509`, `fido2-platform`, `fido2-roaming`, `fido-u2f`, `verifiable-credential`,
 * `phone-voice`, `phone-sms`, `app`) or one agreed with the receiver (`api-key`).
 *
 * The scheme (`vault:`, `caep:`), the kind and the subject format are matched without
 * regard to case; the values are kept as written. A reference that names `vault:` or `caep:` but is malformed
 * is an error, never silently sent to the default store.
 */

export type SubjectIdentifier =
  | { format: "email"; email: string }
  | { format: "phone_number"; phone_number: string }
  | { format: "account"; uri: string }
  | { format: "did"; url: string }
  | { format: "uri"; uri: string }
  | { format: "opaque"; id: string }
  | { format: "iss_sub"; iss: string; sub: string }
  | { format: "jwt_id"; iss: string; jti: string };

export type CredentialRef =
  | { store: "vault"; kind: "lease"; leaseId: string }
  | { store: "vault"; kind: "prefix"; prefix: string }
  | { store: "vault"; kind: "accessor"; accessor: string }
  | { store: "caep"; event: "session-revoked"; subject: SubjectIdentifier }
  | { store: "caep"; event: "credential-change"; credentialType: string; subject: SubjectIdentifier }
  | { store: "default"; id: string };

export type CredentialStoreKind = CredentialRef["store"];

export class CredentialRefError extends Error {
  constructor(
    readonly credentialId: string,
    reason: string,
  ) {
    super(
      `malformed credential reference ${JSON.stringify(credentialId.length > 200 ? `${credentialId.slice(0, 200)}…` : credentialId)}: ${reason}`,
    );
    this.name = "CredentialRefError";
  }
}

const CREDENTIAL_TYPE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
// printable, no whitespace: ids travel in JSON bodies and URL paths
const TOKEN = /^[\x21-\x7e]+$/;

/** Parses a credential id; throws `CredentialRefError` for a `vault:` or `caep:` reference that is malformed. */
export function parseCredentialRef(credentialId: string): CredentialRef {
  const colon = credentialId.indexOf(":");
  const scheme = colon > 0 ? credentialId.slice(0, colon).toLowerCase() : "";
  if (scheme === "vault") return parseVault(credentialId, credentialId.slice(colon + 1));
  if (scheme === "caep") return parseCaep(credentialId, credentialId.slice(colon + 1));
  return { store: "default", id: credentialId };
}

/** The store a credential id goes to; throws `CredentialRefError` like `parseCredentialRef`. */
export function storeOf(credentialId: string): CredentialStoreKind {
  return parseCredentialRef(credentialId).store;
}

function parseVault(id: string, rest: string): CredentialRef {
  const colon = rest.indexOf(":");
  if (colon < 0) throw new CredentialRefError(id, "expected vault:lease:<lease id>, vault:prefix:<prefix> or vault:accessor:<accessor>");
  const kind = rest.slice(0, colon).toLowerCase();
  const value = rest.slice(colon + 1);
  if (kind !== "lease" && kind !== "prefix" && kind !== "accessor")
    throw new CredentialRefError(id, `unknown Vault credential kind "${rest.slice(0, colon)}" (expected lease, prefix or accessor)`);
  if (value === "") throw new CredentialRefError(id, `the Vault ${kind} is empty`);
  if (!TOKEN.test(value)) throw new CredentialRefError(id, `the Vault ${kind} has whitespace or control characters`);
  if (kind === "lease") return { store: "vault", kind, leaseId: value };
  if (kind === "accessor") {
    if (value.includes("/")) throw new CredentialRefError(id, "a Vault token accessor has no '/'");
    return { store: "vault", kind, accessor: value };
  }
  const segments = value.replace(/\/$/, "").split("/");
  if (value.startsWith("/") || segments.some((s) => s === "" || s === "." || s === ".."))
    throw new CredentialRefError(id, "a Vault lease prefix is a relative path without empty, '.' or '..' segments");
  return { store: "vault", kind, prefix: value };
}

function parseCaep(id: string, rest: string): CredentialRef {
  const colon = rest.indexOf(":");
  const head = (colon < 0 ? rest : rest.slice(0, colon)).toLowerCase();
  if (head === "session") {
    const sessionId = rest.slice(colon + 1);
    if (colon < 0 || sessionId === "") throw new CredentialRefError(id, "the session id is empty (caep:session:<session id>)");
    return { store: "caep", event: "session-revoked", subject: { format: "opaque", id: sessionId } };
  }
  if (head === "credential") {
    const after = colon < 0 ? "" : rest.slice(colon + 1);
    const typeEnd = after.indexOf(":");
    const credentialType = typeEnd < 0 ? after : after.slice(0, typeEnd);
    if (!CREDENTIAL_TYPE.test(credentialType))
      throw new CredentialRefError(
        id,
        "expected caep:credential:<credential type>:<subject>, the type in lower case (e.g. app, x509, api-key)",
      );
    if (typeEnd < 0) throw new CredentialRefError(id, "the subject is missing (caep:credential:<credential type>:<subject>)");
    return { store: "caep", event: "credential-change", credentialType, subject: parseSubject(id, after.slice(typeEnd + 1)) };
  }
  return { store: "caep", event: "session-revoked", subject: parseSubject(id, rest) };
}

function parseSubject(id: string, text: string): SubjectIdentifier {
  const colon = text.indexOf(":");
  if (colon < 0)
    throw new CredentialRefError(id, "the subject needs a format: email:, phone_number:, acct:, did:, uri:, opaque:, iss_sub: or jwt_id:");
  const format = text.slice(0, colon).toLowerCase();
  const value = text.slice(colon + 1);
  if (value === "") throw new CredentialRefError(id, `the ${format} subject is empty`);
  switch (format) {
    case "email":
      if (!/^[^\s@]+@[^\s@]+$/.test(value)) throw new CredentialRefError(id, "not an e-mail address");
      return { format: "email", email: value };
    case "phone_number":
      if (!/^\+[1-9][0-9]{1,14}$/.test(value)) throw new CredentialRefError(id, "a phone number is in E.164 form, e.g. +12065550100");
      return { format: "phone_number", phone_number: value };
    case "acct":
      if (!/^[^\s@]+@[^\s@]+$/.test(value)) throw new CredentialRefError(id, "an account is acct:<user>@<host>");
      return { format: "account", uri: `acct:${value}` };
    case "did":
      if (!/^[a-z0-9]+:\S+$/.test(value)) throw new CredentialRefError(id, "a DID is did:<method>:<method-specific id>");
      return { format: "did", url: `did:${value}` };
    case "uri":
      if (!URL.canParse(value)) throw new CredentialRefError(id, "not an absolute URI");
      return { format: "uri", uri: value };
    case "opaque":
      return { format: "opaque", id: value };
    case "iss_sub":
    case "jwt_id": {
      const bar = value.indexOf("|");
      const iss = bar < 0 ? "" : value.slice(0, bar);
      const second = bar < 0 ? "" : value.slice(bar + 1);
      if (!iss || !second || !URL.canParse(iss))
        throw new CredentialRefError(id, `expected ${format}:<issuer URL>|<${format === "iss_sub" ? "subject" : "jti"}>`);
      return format === "iss_sub" ? { format: "iss_sub", iss, sub: second } : { format: "jwt_id", iss, jti: second };
    }
    default:
      throw new CredentialRefError(
        id,
        `unknown subject format "${text.slice(0, colon)}" (expected email, phone_number, acct, did, uri, opaque, iss_sub or jwt_id)`,
      );
  }
}
