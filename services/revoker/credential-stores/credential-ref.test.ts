import { describe, expect, it } from "vitest";
import { type CredentialRef, CredentialRefError, parseCredentialRef, storeOf } from "./credential-ref.js";

describe("parseCredentialRef", () => {
  it.each<[string, CredentialRef]>([
    [
      "vault:lease:database/creds/readonly/27e1b9a1-27b8",
      { store: "vault", kind: "lease", leaseId: "database/creds/readonly/27e1b9a1-27b8" },
    ],
    ["vault:prefix:database/creds/task-42/", { store: "vault", kind: "prefix", prefix: "database/creds/task-42/" }],
    ["vault:prefix:aws/creds/deploy", { store: "vault", kind: "prefix", prefix: "aws/creds/deploy" }],
    ["vault:accessor:hmac.9793c9b3e04a46f3", { store: "vault", kind: "accessor", accessor: "hmac.9793c9b3e04a46f3" }],
    ["VAULT:Lease:abc", { store: "vault", kind: "lease", leaseId: "abc" }],
    // a lease id may itself contain colons
    ["vault:lease:pki/issue/web:serial:01", { store: "vault", kind: "lease", leaseId: "pki/issue/web:serial:01" }],
    [
      "caep:session:dMTlD|1600802906337.16",
      { store: "caep", event: "session-revoked", subject: { format: "opaque", id: "dMTlD|1600802906337.16" } },
    ],
    ["caep:email:agent@example.com", { store: "caep", event: "session-revoked", subject: { format: "email", email: "agent@example.com" } }],
    [
      "caep:acct:billing-agent@idp.example",
      { store: "caep", event: "session-revoked", subject: { format: "account", uri: "acct:billing-agent@idp.example" } },
    ],
    ["caep:did:example:123456", { store: "caep", event: "session-revoked", subject: { format: "did", url: "did:example:123456" } }],
    [
      "caep:uri:spiffe://acme.org/agents/billing",
      { store: "caep", event: "session-revoked", subject: { format: "uri", uri: "spiffe://acme.org/agents/billing" } },
    ],
    [
      "caep:phone_number:+12065550100",
      { store: "caep", event: "session-revoked", subject: { format: "phone_number", phone_number: "+12065550100" } },
    ],
    ["caep:opaque:72e6991b", { store: "caep", event: "session-revoked", subject: { format: "opaque", id: "72e6991b" } }],
    [
      "caep:iss_sub:https://idp.example.com/123/|99beb27c",
      { store: "caep", event: "session-revoked", subject: { format: "iss_sub", iss: "https://idp.example.com/123/", sub: "99beb27c" } },
    ],
    [
      "caep:jwt_id:https://idp.example.com/|f61t6e20|x",
      { store: "caep", event: "session-revoked", subject: { format: "jwt_id", iss: "https://idp.example.com/", jti: "f61t6e20|x" } },
    ],
    [
      "caep:credential:api-key:opaque:key-7",
      { store: "caep", event: "credential-change", credentialType: "api-key", subject: { format: "opaque", id: "key-7" } },
    ],
    [
      "caep:credential:x509:uri:spiffe://acme.org/agents/billing",
      {
        store: "caep",
        event: "credential-change",
        credentialType: "x509",
        subject: { format: "uri", uri: "spiffe://acme.org/agents/billing" },
      },
    ],
    ["lease-a", { store: "default", id: "lease-a" }],
    ["vault-lease-drift-123", { store: "default", id: "vault-lease-drift-123" }],
    ["arn:aws:iam::123:role/x", { store: "default", id: "arn:aws:iam::123:role/x" }],
    [":vault:lease:x", { store: "default", id: ":vault:lease:x" }],
  ])("%s", (id, expected) => {
    expect(parseCredentialRef(id)).toEqual(expected);
    expect(storeOf(id)).toBe(expected.store);
  });

  it.each<[string, RegExp]>([
    ["vault:", /expected vault:lease:<lease id>, vault:prefix:<prefix> or vault:accessor:<accessor>/],
    ["vault:lease", /expected vault:lease:<lease id>/],
    ["vault:token:abc", /unknown Vault credential kind "token" \(expected lease, prefix or accessor\)/],
    ["vault:lease:", /the Vault lease is empty/],
    ["vault:prefix:", /the Vault prefix is empty/],
    ["vault:lease:abc def", /whitespace or control characters/],
    ["vault:lease:abc\n", /whitespace or control characters/],
    ["vault:accessor:a/b", /accessor has no '\/'/],
    ["vault:prefix:/sys", /relative path without empty, '.' or '..' segments/],
    ["vault:prefix:database/../../sys/raw", /'\.\.' segments/],
    ["vault:prefix:database//creds", /empty/],
    ["vault:prefix:./x", /'\.'/],
    ["caep:session:", /the session id is empty/],
    ["caep:session", /the session id is empty/],
    ["caep:someone", /the subject needs a format/],
    ["caep:", /the subject needs a format/],
    ["caep:email:", /the email subject is empty/],
    ["caep:email:not-an-address", /not an e-mail address/],
    ["caep:phone_number:2065550100", /E\.164/],
    ["caep:acct:nobody", /acct:<user>@<host>/],
    ["caep:did:x", /did:<method>:<method-specific id>/],
    ["caep:uri:not a uri", /not an absolute URI/],
    ["caep:iss_sub:https://idp.example.com/", /iss_sub:<issuer URL>\|<subject>/],
    ["caep:iss_sub:not-a-url|sub", /iss_sub:<issuer URL>\|<subject>/],
    ["caep:jwt_id:https://idp.example.com/|", /jwt_id:<issuer URL>\|<jti>/],
    ["caep:saml:abc", /unknown subject format "saml"/],
    ["caep:credential:", /caep:credential:<credential type>:<subject>/],
    ["caep:credential:API KEY:opaque:x", /the type in lower case/],
    ["caep:credential:app", /the subject is missing/],
    ["caep:credential:app:nobody", /the subject needs a format/],
  ])("rejects %j", (id, message) => {
    let error: unknown;
    try {
      parseCredentialRef(id);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CredentialRefError);
    expect((error as CredentialRefError).credentialId).toBe(id);
    expect((error as Error).message).toMatch(/^malformed credential reference /);
    expect((error as Error).message).toMatch(message);
  });

  it("shortens a very long reference in the message", () => {
    const id = `vault:bogus:${"x".repeat(5000)}`;
    expect(() => parseCredentialRef(id)).toThrow(/x{150,}…"/);
    try {
      parseCredentialRef(id);
    } catch (err) {
      expect((err as Error).message.length).toBeLessThan(400);
    }
  });
});
