import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CaepReceiver, CREDENTIAL_CHANGE, SESSION_REVOKED } from "../../../test/support/caep-receiver.js";
import { eventually } from "../../../test/support/wait.js";
import { Delivery, type DeliveryOptions } from "../../runtime/delivery.js";
import { fixedSecret } from "../../runtime/secret-source.js";
import { loadSigningKey } from "../../runtime/signing-key.js";
import { CAEP_EVENT, CaepCredentialStore, type CaepOptions, SET_MEDIA_TYPE } from "./caep.js";
import type { RevocationRequest } from "./credential-store.js";

const ISSUER = "https://driftwatch.example.com/";
const AUDIENCE = "https://idp.example.com/caep";
const NOW = 1_760_000_000_123;
const IAT = Math.floor(NOW / 1000);

function pemPair(kind: "ec" | "rsa", size?: number): { pem: string; publicKey: KeyObject } {
  const { privateKey } =
    kind === "ec"
      ? generateKeyPairSync("ec", { namedCurve: size === 384 ? "P-384" : "P-256" })
      : generateKeyPairSync("rsa", { modulusLength: size ?? 2048 });
  return { pem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(), publicKey: createPublicKey(privateKey) };
}

function request(credentialId: string, over: Partial<RevocationRequest> = {}): RevocationRequest {
  return {
    revocationId: "0f3c9a1e5b7d4c2a8e6f1b3d5c7a9e2f",
    credentialId,
    taskId: "task-1",
    findingId: "f-1",
    reason: 'scope.tool: billing-agent called tool "shell.exec", which is outside its profile.',
    ...over,
  };
}

const ec = pemPair("ec");

describe("CaepCredentialStore against a CAEP receiver on loopback", () => {
  const receiver = new CaepReceiver(ec.publicKey, { issuer: ISSUER, audience: AUDIENCE });
  let now = NOW;
  const delivery = (over: Partial<DeliveryOptions> = {}) =>
    new Delivery({ timeoutMs: 150, retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50 }, circuit: false, ...over });
  const store = (options: Partial<CaepOptions> = {}, d = delivery()) =>
    new CaepCredentialStore(
      {
        receiverUrl: receiver.url,
        issuer: ISSUER,
        audience: AUDIENCE,
        signingKey: ec.pem,
        keyId: "dw-2026-01",
        timeoutMs: 150,
        now: () => now,
        ...options,
      },
      d,
    );

  beforeAll(async () => {
    await receiver.start();
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(async () => {
    await receiver.start();
    receiver.server.reset();
    receiver.server.slowMs = 400;
    receiver.received.length = 0;
    receiver.override = undefined;
    now = NOW;
  });

  describe("the SET", () => {
    it("caep:session:<id> → a signed session-revoked SET, pushed per RFC 8935 and accepted with 202", async () => {
      const out = await store().revoke(request("caep:session:dMTlD|1600802906337.16"));
      expect(out).toEqual({ status: "revoked", detail: "HTTP 202: SET session-revoked accepted", attempts: 1 });
      expect(receiver.accepted()).toHaveLength(1);
      const [set] = receiver.received;
      expect(set?.problems).toEqual([]);
      expect(set?.header).toEqual({ alg: "ES256", typ: "secevent+jwt", kid: "dw-2026-01" });
      expect(set?.payload).toEqual({
        iss: ISSUER,
        aud: AUDIENCE,
        iat: IAT,
        jti: "0f3c9a1e5b7d4c2a8e6f1b3d5c7a9e2f",
        txn: "f-1",
        sub_id: { format: "opaque", id: "dMTlD|1600802906337.16" },
        events: {
          [SESSION_REVOKED]: {
            event_timestamp: IAT,
            initiating_entity: "policy",
            reason_admin: { en: request("x").reason },
          },
        },
      });
      const call = receiver.server.calls[0];
      expect(call).toMatchObject({ method: "POST", path: "/events", status: 202 });
      expect(call?.headers["content-type"]).toBe(SET_MEDIA_TYPE);
      expect(call?.headers.accept).toBe("application/json");
      expect(call?.headers.authorization).toBeUndefined();
    });

    it("caep:<subject> → session-revoked for that subject, in its Subject Identifier format", async () => {
      await store().revoke(request("caep:email:billing-agent@example.com"));
      await store().revoke(request("caep:iss_sub:https://idp.example.com/123/|agent-7", { revocationId: "r2" }));
      expect(receiver.accepted().map((r) => [Object.keys(r.payload.events as object), r.payload.sub_id])).toEqual([
        [[SESSION_REVOKED], { format: "email", email: "billing-agent@example.com" }],
        [[SESSION_REVOKED], { format: "iss_sub", iss: "https://idp.example.com/123/", sub: "agent-7" }],
      ]);
    });

    it("caep:credential:<type>:<subject> → credential-change with change_type revoke", async () => {
      const out = await store().revoke(request("caep:credential:api-key:opaque:key-7"));
      expect(out).toMatchObject({ status: "revoked", detail: "HTTP 202: SET credential-change accepted" });
      const [set] = receiver.accepted();
      expect(set?.payload.sub_id).toEqual({ format: "opaque", id: "key-7" });
      expect(set?.payload.events).toEqual({
        [CREDENTIAL_CHANGE]: {
          credential_type: "api-key",
          change_type: "revoke",
          event_timestamp: IAT,
          initiating_entity: "policy",
          reason_admin: { en: request("x").reason },
        },
      });
      expect(CAEP_EVENT["credential-change"]).toBe(CREDENTIAL_CHANGE);
    });

    it("signs RS256 with an RSA key, and takes several audiences", async () => {
      const rsa = pemPair("rsa");
      const rsaReceiver = await new CaepReceiver(rsa.publicKey, { issuer: ISSUER, audience: AUDIENCE }).start();
      try {
        const s = new CaepCredentialStore(
          {
            receiverUrl: rsaReceiver.url,
            issuer: ISSUER,
            audience: [AUDIENCE, "https://idp.example.com/mobile"],
            signingKey: rsa.pem,
            timeoutMs: 500,
          },
          delivery(),
        );
        expect((await s.revoke(request("caep:session:s1"))).status).toBe("revoked");
        expect(rsaReceiver.accepted()).toHaveLength(1);
        const token = rsaReceiver.server.calls[0]?.body ?? "";
        expect(decodeProtectedHeader(token)).toEqual({ alg: "RS256", typ: "secevent+jwt" });
      } finally {
        await rsaReceiver.stop();
      }
    });

    it("the same revocation delivered again (a later redelivery) has the same jti; the receiver sees a repeat", async () => {
      const s = store();
      await s.revoke(request("caep:session:s1"));
      now += 60_000;
      await s.revoke(request("caep:session:s1", { findingId: "f-2" }));
      const [first, second] = receiver.accepted();
      expect(second?.payload.jti).toBe(first?.payload.jti);
      expect(second?.payload.iat).toBe((first?.payload.iat ?? 0) + 60);
      expect(second?.payload.txn).toBe("f-2");
      expect([first?.repeat, second?.repeat]).toEqual([false, true]);
      // a different revocation has a different jti
      await s.revoke(request("caep:session:s2", { revocationId: "another" }));
      expect(receiver.accepted()[2]?.payload.jti).toBe("another");
    });

    it("sends the Authorization header the receiver asked for; without it the receiver refuses (permanent)", async () => {
      const guarded = await new CaepReceiver(ec.publicKey, {
        issuer: ISSUER,
        audience: AUDIENCE,
        authorization: "Bearer rcv-secret-1",
      }).start();
      try {
        const url = guarded.url;
        const ok = await store({ receiverUrl: url, authorization: fixedSecret("Bearer rcv-secret-1") }).revoke(request("caep:session:s1"));
        expect(ok.status).toBe("revoked");
        expect(guarded.server.calls[0]?.headers.authorization).toBe("Bearer rcv-secret-1");
        const refused = await store({ receiverUrl: url }).revoke(request("caep:session:s1"));
        expect(refused).toEqual({
          status: "failed",
          detail: "HTTP 400: authentication_failed: authorization missing or wrong",
          attempts: 1,
          permanent: true,
        });
      } finally {
        await guarded.stop();
      }
    });
  });

  describe("refusals", () => {
    it("a SET signed with a key the receiver does not know: 400 invalid_key, permanent, not retried", async () => {
      const other = pemPair("ec");
      const out = await store({ signingKey: other.pem }).revoke(request("caep:session:s1"));
      expect(out).toMatchObject({ status: "failed", attempts: 1, permanent: true });
      expect(out.detail).toMatch(/^HTTP 400: invalid_key: signature or claims: signature verification failed/);
      expect(receiver.server.calls).toHaveLength(1);
      expect(out.detail).not.toContain("PRIVATE KEY");
    });

    it("a SET for another audience or from another issuer is refused", async () => {
      expect((await store({ audience: "https://someone-else.example" }).revoke(request("caep:session:s1"))).detail).toMatch(
        /invalid_key: .*aud/,
      );
      expect((await store({ issuer: "https://impostor.example/" }).revoke(request("caep:session:s1"))).detail).toMatch(
        /invalid_key: .*iss/,
      );
      expect(receiver.accepted()).toHaveLength(0);
    });

    it("a 400 error body is reported as err: description", async () => {
      receiver.override = {
        status: 400,
        headers: { "content-type": "application/json" },
        body: '{"err":"invalid_request","description":"unknown subject"}',
      };
      const out = await store().revoke(request("caep:session:s1"));
      expect(out).toEqual({ status: "failed", detail: "HTTP 400: invalid_request: unknown subject", attempts: 1, permanent: true });
    });

    it.each([
      ["caep:nobody", /the subject needs a format/],
      ["caep:credential:app", /the subject is missing/],
      ["vault:lease:abc", /not a CAEP credential reference/],
      ["lease-a", /not a CAEP credential reference/],
    ])("%s is refused without calling the receiver", async (id, detail) => {
      const out = await store().revoke(request(id));
      expect(out).toMatchObject({ status: "failed", attempts: 0, permanent: true });
      expect(out.detail).toMatch(detail);
      expect(receiver.server.calls).toHaveLength(0);
    });
  });

  describe("outages", () => {
    it("connection refused: retried, failed (not permanent); once the receiver is back the revocation goes through", async () => {
      await receiver.stop();
      const out = await store().revoke(request("caep:session:s1"));
      expect(out).toMatchObject({ status: "failed", attempts: 3 });
      expect(out.detail).toMatch(/ECONNREFUSED/);
      expect(out.permanent).toBeUndefined();
      await receiver.start();
      expect(await store().revoke(request("caep:session:s1"))).toMatchObject({ status: "revoked", attempts: 1 });
    });

    it("500s: every retry sends the very same SET (same bytes, same jti)", async () => {
      receiver.server.script.push("500", "500");
      const out = await store().revoke(request("caep:session:s1"));
      expect(out).toEqual({ status: "revoked", detail: "HTTP 202: SET session-revoked accepted", attempts: 3 });
      const bodies = receiver.server.calls.map((c) => c.body);
      expect(receiver.server.calls.map((c) => c.status)).toEqual([500, 500, 202]);
      expect(new Set(bodies).size).toBe(1);
    });

    it("500s that last: failed after every attempt", async () => {
      receiver.server.outage = "500";
      expect(await store().revoke(request("caep:session:s1"))).toEqual({ status: "failed", detail: "HTTP 500", attempts: 3 });
    });

    it("a slow answer is abandoned and the SET sent again; the late copy arrives as a repeat of the same jti", async () => {
      receiver.server.script.push("slow");
      const out = await store().revoke(request("caep:session:s1"));
      expect(out).toMatchObject({ status: "revoked", attempts: 2 });
      await eventually(() => (receiver.received.length === 2 ? true : undefined), 3000, "the slow copy");
      const [retry, late] = receiver.received;
      expect(late?.payload.jti).toBe(retry?.payload.jti);
      expect(late?.repeat).toBe(true);
    });

    it("slow every time: failed with the time-out", async () => {
      receiver.server.outage = "slow";
      expect(await store().revoke(request("caep:session:s1"))).toEqual({ status: "failed", detail: "timed out after 150 ms", attempts: 3 });
    });

    it("429 with Retry-After: waits as told, then the same SET is accepted", async () => {
      receiver.server.script.push("429");
      receiver.server.retryAfter = "2";
      const waits: number[] = [];
      const d = delivery({ retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 10_000 }, sleep: async (ms) => void waits.push(ms) });
      expect(await store({}, d).revoke(request("caep:session:s1"))).toMatchObject({ status: "revoked", attempts: 2 });
      expect(waits).toEqual([2000]);
      expect(new Set(receiver.server.calls.map((c) => c.body)).size).toBe(1);
    });
  });
});

describe("loadSigningKey", () => {
  it("EC P-256 signs ES256, RSA ≥ 2048 RS256; PKCS#8, SEC1 and PKCS#1 PEM are all read", () => {
    expect(loadSigningKey(ec.pem).alg).toBe("ES256");
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(loadSigningKey(privateKey.export({ format: "pem", type: "sec1" }).toString()).alg).toBe("ES256");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    expect(loadSigningKey(rsa.export({ format: "pem", type: "pkcs1" }).toString()).alg).toBe("RS256");
  });

  it("reads a PEM whose newlines were written as \\n (an environment variable)", () => {
    expect(loadSigningKey(ec.pem.trim().replaceAll("\n", "\\n")).alg).toBe("ES256");
  });

  it.each([
    ["P-384", () => pemPair("ec", 384).pem, /must be on P-256/],
    ["RSA 1024", () => pemPair("rsa", 1024).pem, /at least 2048 bits/],
    [
      "Ed25519",
      () => generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
      /cannot sign ES256 or RS256/,
    ],
    ["not a key", () => "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", /not a PEM private key/],
  ])("refuses %s without quoting it", (_what, make, message) => {
    const pem = make();
    let error: Error | undefined;
    try {
      loadSigningKey(pem);
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain("PRIVATE KEY");
  });
});
