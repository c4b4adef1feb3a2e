import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FakeVault } from "../../../test/support/fake-vault.js";
import { eventually } from "../../../test/support/wait.js";
import { Delivery, type DeliveryOptions } from "../../runtime/delivery.js";
import { FileSecret, fixedSecret, type SecretSource } from "../../runtime/secret-source.js";
import type { RevocationRequest } from "./credential-store.js";
import { VaultCredentialStore, type VaultOptions } from "./vault.js";

const TOKEN = "hvs.CAESIJ-test-token";
const dir = mkdtempSync(join(tmpdir(), "dw-vault-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function request(credentialId: string, over: Partial<RevocationRequest> = {}): RevocationRequest {
  return { revocationId: "rev-1", credentialId, taskId: "task-1", findingId: "f-1", reason: "scope.tool: out of scope", ...over };
}

describe("VaultCredentialStore against a fake Vault on loopback", () => {
  const vault = new FakeVault(TOKEN);
  const fastDelivery = (over: Partial<DeliveryOptions> = {}) =>
    new Delivery({
      timeoutMs: 150,
      retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50, budgetMs: 10_000 },
      circuit: { failureThreshold: 10, coolDownMs: 60_000 },
      ...over,
    });
  const store = (options: Partial<VaultOptions> = {}, delivery = fastDelivery()) =>
    new VaultCredentialStore(
      { addr: vault.addr, token: fixedSecret(TOKEN), timeoutMs: 150, prefixRoots: ["database/creds"], ...options },
      delivery,
    );

  beforeAll(async () => {
    await vault.start();
  });
  afterAll(async () => {
    await vault.stop();
  });
  beforeEach(async () => {
    await vault.start();
    vault.server.reset();
    vault.server.slowMs = 400;
    vault.server.retryAfter = "1";
    vault.tokens.clear();
    vault.tokens.add(TOKEN);
    vault.namespace = undefined;
    vault.revoked.length = 0;
    vault.leases.clear();
    vault.accessors.clear();
    for (const l of ["database/creds/task-42/a1", "database/creds/task-42/a2", "database/creds/task-7/b1", "aws/creds/deploy/c1"])
      vault.leases.add(l);
    vault.accessors.add("acc-1");
  });

  describe("happy path", () => {
    it("revokes a lease: PUT /v1/sys/leases/revoke with the lease id, authenticated by X-Vault-Token", async () => {
      const out = await store().revoke(request("vault:lease:database/creds/task-42/a1"));
      expect(out).toEqual({ status: "revoked", detail: "HTTP 204: lease revoked", attempts: 1 });
      expect(vault.revoked).toEqual(["database/creds/task-42/a1"]);
      const [call] = vault.calls;
      expect(call).toMatchObject({ method: "PUT", path: "/v1/sys/leases/revoke", status: 204 });
      expect(JSON.parse(call?.body ?? "")).toEqual({ lease_id: "database/creds/task-42/a1" });
      expect(call?.headers["x-vault-token"]).toBe(TOKEN);
      expect(call?.headers["x-vault-request"]).toBe("true");
      expect(call?.headers["content-type"]).toBe("application/json");
      expect(call?.headers["x-vault-namespace"]).toBeUndefined();
    });

    it("revokes every lease below a prefix: PUT /v1/sys/leases/revoke-prefix/<prefix>", async () => {
      const out = await store().revoke(request("vault:prefix:database/creds/task-42"));
      expect(out).toEqual({ status: "revoked", detail: "HTTP 204: leases under the prefix revoked", attempts: 1 });
      expect(vault.revoked.sort()).toEqual(["database/creds/task-42/a1", "database/creds/task-42/a2"]);
      expect([...vault.leases].sort()).toEqual(["aws/creds/deploy/c1", "database/creds/task-7/b1"]);
      expect(vault.calls[0]).toMatchObject({ method: "PUT", path: "/v1/sys/leases/revoke-prefix/database/creds/task-42", body: "" });
    });

    it("encodes each prefix segment, so a prefix cannot add a query or change the path", async () => {
      vault.leases.add("database/creds/a?b#c/x");
      await store().revoke(request("vault:prefix:database/creds/a?b#c"));
      expect(vault.calls[0]?.path).toBe("/v1/sys/leases/revoke-prefix/database/creds/a%3Fb%23c");
      expect(vault.revoked).toEqual(["database/creds/a?b#c/x"]);
    });

    it("revokes a token by accessor: POST /v1/auth/token/revoke-accessor", async () => {
      const out = await store().revoke(request("vault:accessor:acc-1"));
      expect(out).toEqual({ status: "revoked", detail: "HTTP 204: token revoked", attempts: 1 });
      // first, once per token: whose accessor is Driftwatch's own
      expect(vault.calls.map((c) => [c.method, c.path])).toEqual([
        ["GET", "/v1/auth/token/lookup-self"],
        ["POST", "/v1/auth/token/revoke-accessor"],
      ]);
      expect(JSON.parse(vault.calls[1]?.body ?? "")).toEqual({ accessor: "acc-1" });
      expect(vault.revoked).toEqual(["accessor:acc-1"]);
    });

    it("refuses to revoke the accessor of its own token, whoever names it, looking itself up once", async () => {
      vault.accessorOf.set(TOKEN, "acc-driftwatch");
      const s = store();
      const out = await s.revoke(request("vault:accessor:acc-driftwatch"));
      expect(out).toMatchObject({ status: "failed", permanent: true, attempts: 0 });
      expect(out.detail).toMatch(/refusing to revoke the accessor of Driftwatch's own Vault token/);
      expect((await s.revoke(request("vault:accessor:acc-1"))).status).toBe("revoked");
      expect(vault.calls.map((c) => c.path)).toEqual(["/v1/auth/token/lookup-self", "/v1/auth/token/revoke-accessor"]);
      expect(vault.revoked).toEqual(["accessor:acc-1"]);
    });

    it("without lookup-self (403) revokes accessors all the same; with Vault unreachable it fails for now, to be tried again", async () => {
      vault.lookupSelfDenied = true;
      expect((await store().revoke(request("vault:accessor:acc-1"))).status).toBe("revoked");
      vault.lookupSelfDenied = false;
      vault.server.outage = "500";
      const down = await store().revoke(request("vault:accessor:acc-2"));
      expect(down).toMatchObject({ status: "failed" });
      expect(down.detail).toMatch(/could not look up Driftwatch's own token before revoking an accessor: HTTP 500/);
      expect(down.permanent).toBeUndefined();
    });

    it("sends X-Vault-Namespace when a namespace is set", async () => {
      vault.namespace = "admin/team-a";
      expect((await store({ namespace: "admin/team-a" }).revoke(request("vault:lease:aws/creds/deploy/c1"))).status).toBe("revoked");
      expect(vault.calls[0]?.headers["x-vault-namespace"]).toBe("admin/team-a");
      // without it, this Vault refuses
      const out = await store().revoke(request("vault:lease:database/creds/task-7/b1"));
      expect(out).toMatchObject({ status: "failed", detail: "HTTP 403: permission denied", permanent: true });
    });

    it("takes an address with a trailing slash or a path prefix", async () => {
      expect((await store({ addr: `${vault.addr}/` }).revoke(request("vault:lease:aws/creds/deploy/c1"))).status).toBe("revoked");
      expect(vault.calls[0]?.path).toBe("/v1/sys/leases/revoke");
    });
  });

  describe("already gone counts as revoked, so a repeat is harmless", () => {
    it("a lease Vault does not know: 204", async () => {
      const s = store();
      const first = await s.revoke(request("vault:lease:database/creds/task-42/a1"));
      const again = await s.revoke(request("vault:lease:database/creds/task-42/a1"));
      const never = await s.revoke(request("vault:lease:database/creds/never/zz"));
      for (const out of [first, again, never]) expect(out).toMatchObject({ status: "revoked", attempts: 1 });
      expect(vault.revoked).toEqual(["database/creds/task-42/a1"]);
    });

    it("an accessor Vault does not know: 400 invalid accessor, read as revoked", async () => {
      const s = store();
      expect((await s.revoke(request("vault:accessor:acc-1"))).status).toBe("revoked");
      const again = await s.revoke(request("vault:accessor:acc-1"));
      expect(again).toEqual({
        status: "revoked",
        detail: "HTTP 400: Vault does not know the accessor (its token was revoked before, or expired)",
        attempts: 1,
      });
      // lookup-self once, then the two revocations
      expect(vault.calls.map((c) => c.status)).toEqual([200, 204, 400]);
      expect(vault.revoked).toEqual(["accessor:acc-1"]);
    });

    it("a prefix with nothing left below it: 204", async () => {
      const s = store();
      await s.revoke(request("vault:prefix:database/creds/task-42"));
      expect((await s.revoke(request("vault:prefix:database/creds/task-42"))).status).toBe("revoked");
    });
  });

  describe("refusals", () => {
    it("a wrong token: 403, permanent, the token never in the detail", async () => {
      const out = await store({ token: fixedSecret("hvs.wrong") }).revoke(request("vault:lease:aws/creds/deploy/c1"));
      expect(out).toEqual({ status: "failed", detail: "HTTP 403: permission denied", attempts: 1, permanent: true });
      expect(vault.calls).toHaveLength(1);
      expect(JSON.stringify(out)).not.toContain("hvs.");
    });

    it("another 4xx (a wrong address: 404) is permanent and not retried", async () => {
      const out = await store({ addr: `${vault.addr}/nope` }).revoke(request("vault:lease:aws/creds/deploy/c1"));
      expect(out).toEqual({ status: "failed", detail: "HTTP 404", attempts: 1, permanent: true });
      expect(vault.calls.map((c) => c.path)).toEqual(["/nope/v1/sys/leases/revoke"]);
    });

    it.each([
      ["vault:lease:", /the Vault lease is empty/],
      ["vault:prefix:../sys", /'\.\.' segments/],
      ["caep:session:abc", /not a Vault credential reference/],
      ["lease-a", /not a Vault credential reference/],
    ])("%s is refused without calling Vault", async (id, detail) => {
      const out = await store().revoke(request(id));
      expect(out).toMatchObject({ status: "failed", attempts: 0, permanent: true });
      expect(out.detail).toMatch(detail);
      expect(vault.calls).toHaveLength(0);
    });

    it("prefix revocation is off without roots, and only strictly below a root with them", async () => {
      const off = await store({ prefixRoots: [] }).revoke(request("vault:prefix:database/creds/task-42"));
      expect(off).toMatchObject({ status: "failed", attempts: 0, permanent: true });
      expect(off.detail).toMatch(/prefix revocation is off: set DRIFTWATCH_VAULT_PREFIX_ROOTS/);
      for (const prefix of ["database/creds", "database/creds/", "database", "database/credsX/a", "aws/creds/deploy"]) {
        const out = await store({ prefixRoots: ["database/creds/"] }).revoke(request(`vault:prefix:${prefix}`));
        expect(out.detail, prefix).toMatch(/not strictly below an allowed root \(database\/creds\)/);
      }
      expect(vault.calls).toHaveLength(0);
      expect(vault.leases.size).toBe(4);
    });
  });

  describe("the token", () => {
    it("is read from a file and re-read when the file changes (rotation)", async () => {
      const file = join(dir, "token-rotation");
      writeFileSync(file, `${TOKEN}\n`);
      const s = store({ token: new FileSecret(file) });
      expect((await s.revoke(request("vault:lease:database/creds/task-42/a1"))).status).toBe("revoked");
      vault.tokens.clear();
      vault.tokens.add("hvs.rotated-token-2");
      writeFileSync(file, "hvs.rotated-token-2\n");
      expect((await s.revoke(request("vault:lease:database/creds/task-42/a2"))).status).toBe("revoked");
      expect(vault.calls.map((c) => c.headers["x-vault-token"])).toEqual([TOKEN, "hvs.rotated-token-2"]);
    });

    it("on a 403, a token that changed unseen is read again and the call made once more", async () => {
      let current = "hvs.old";
      const source: SecretSource = {
        origin: "test",
        read: (fresh) => {
          if (fresh) current = "hvs.new"; // the file changed without its stamp showing it
          return current;
        },
      };
      vault.tokens.clear();
      vault.tokens.add("hvs.new");
      const out = await store({ token: source }).revoke(request("vault:lease:aws/creds/deploy/c1"));
      expect(out).toEqual({ status: "revoked", detail: "HTTP 204: lease revoked", attempts: 2 });
      expect(vault.calls.map((c) => [c.headers["x-vault-token"], c.status])).toEqual([
        ["hvs.old", 403],
        ["hvs.new", 204],
      ]);
    });

    it("an unreadable token file fails the revocation without calling Vault, naming the file, not the token", async () => {
      const file = join(dir, "no-such-token");
      const out = await store({ token: new FileSecret(file) }).revoke(request("vault:lease:aws/creds/deploy/c1"));
      expect(out).toEqual({
        status: "failed",
        detail: `could not prepare the request: cannot read secret file ${file}: ENOENT`,
        attempts: 0,
      });
      expect(vault.calls).toHaveLength(0);
    });
  });

  describe("outages", () => {
    it("connection refused: retried, then failed (not permanent); once Vault is back the same call succeeds", async () => {
      await vault.stop();
      const s = store();
      const out = await s.revoke(request("vault:lease:database/creds/task-42/a1"));
      expect(out).toMatchObject({ status: "failed", attempts: 3 });
      expect(out.detail).toMatch(/ECONNREFUSED/);
      expect(out.permanent).toBeUndefined();
      await vault.start();
      expect(await s.revoke(request("vault:lease:database/creds/task-42/a1"))).toMatchObject({ status: "revoked", attempts: 1 });
      expect(vault.revoked).toEqual(["database/creds/task-42/a1"]);
    });

    it("500s: retried with the same request each time until one succeeds", async () => {
      vault.server.script.push("500", "500");
      const out = await store().revoke(request("vault:lease:aws/creds/deploy/c1"));
      expect(out).toEqual({ status: "revoked", detail: "HTTP 204: lease revoked", attempts: 3 });
      expect(vault.calls.map((c) => c.status)).toEqual([500, 500, 204]);
      expect(new Set(vault.calls.map((c) => c.body)).size).toBe(1);
    });

    it("500s that last: failed with Vault's error, after every attempt", async () => {
      vault.server.outage = "500";
      const out = await store().revoke(request("vault:lease:aws/creds/deploy/c1"));
      expect(out).toEqual({ status: "failed", detail: "HTTP 500: internal error", attempts: 3 });
    });

    it("an answer slower than the time-out is abandoned and retried; the late one takes effect once", async () => {
      vault.server.script.push("slow");
      const started = Date.now();
      const out = await store().revoke(request("vault:lease:database/creds/task-42/a1"));
      expect(Date.now() - started).toBeLessThan(400);
      expect(out).toEqual({ status: "revoked", detail: "HTTP 204: lease revoked", attempts: 2 });
      await eventually(() => (vault.calls.length === 2 ? true : undefined), 3000, "the slow answer");
      expect(vault.revoked).toEqual(["database/creds/task-42/a1"]);
    });

    it("slow every time: failed after each attempt timed out", async () => {
      vault.server.outage = "slow";
      const out = await store().revoke(request("vault:lease:aws/creds/deploy/c1"));
      expect(out).toEqual({ status: "failed", detail: "timed out after 150 ms", attempts: 3 });
    });

    it("429 with Retry-After: waits as told (capped by the delivery's max delay), then succeeds", async () => {
      vault.server.script.push("429");
      const waits: number[] = [];
      const s = store(
        {},
        fastDelivery({
          retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 5000 },
          sleep: async (ms) => {
            waits.push(ms);
          },
        }),
      );
      expect(await s.revoke(request("vault:lease:aws/creds/deploy/c1"))).toMatchObject({ status: "revoked", attempts: 2 });
      expect(waits).toEqual([1000]);
      vault.server.script.push("429");
      waits.length = 0;
      vault.server.retryAfter = "120";
      await store(
        {},
        fastDelivery({ retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 40 }, sleep: async (ms) => void waits.push(ms) }),
      ).revoke(request("vault:lease:database/creds/task-7/b1"));
      expect(waits).toEqual([40]);
    });

    it("a Vault that stays down opens the circuit: later revocations fail at once without calling", async () => {
      await vault.stop();
      const delivery = fastDelivery({ circuit: { failureThreshold: 4, coolDownMs: 60_000 } });
      const s = store({}, delivery);
      await s.revoke(request("vault:lease:database/creds/task-42/a1")); // 3 failures
      const second = await s.revoke(request("vault:lease:database/creds/task-42/a2")); // the 4th opens it
      expect(second).toMatchObject({ status: "failed", attempts: 1, circuitOpen: true });
      const third = await s.revoke(request("vault:accessor:acc-1"));
      expect(third).toMatchObject({ status: "failed", attempts: 0, circuitOpen: true });
      // (an accessor's revocation first looks Driftwatch's own token up: the circuit refuses that)
      expect(third.detail).toContain(`circuit open for vault ${vault.addr}`);
      expect(delivery.circuit(`vault ${vault.addr}`).state).toBe("open");
      await vault.start();
      expect(vault.calls).toHaveLength(0);
    });
  });
});
