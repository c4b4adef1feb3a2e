import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditRecord } from "../../schemas/audit.js";
import { consoleApi } from "../../test/support/console-api.js";
import { AgentQuarantine } from "../revoker/quarantine.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { createLogger } from "../runtime/logging.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { AuditLog } from "./audit.js";
import { Authenticator } from "./auth.js";

const ADMIN = "admin-token-0123456789abcdefghij";
const RESPONDER = "responder-token-0123456789abcdef";
const VIEWER = "viewer-token-0123456789abcdefghi";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("console API security: authorization on the matched route, roles, the audit log", () => {
  const store = new MemoryStore();
  const bus = new MemoryBus({ partitions: 1, logger: createLogger("silent") });
  const audit = new AuditLog(store, bus, "agent.audit");
  const quarantine = new AgentQuarantine(store);
  const app = consoleApi(store, {
    quarantine,
    audit,
    authenticator: new Authenticator({
      tokens: [
        { name: "ops-admin", role: "admin", token: ADMIN },
        { name: "soc-alice", role: "responder", token: RESPONDER },
        { name: "auditor", role: "viewer", token: VIEWER },
      ],
    }),
  });
  const published: AuditRecord[] = [];
  beforeAll(async () => {
    await app.ready();
    await bus.subscribe({ group: "audit-test", topics: ["agent.audit"], fromBeginning: true }, async (batch) => {
      for (const m of batch) published.push(AuditRecord.parse(JSON.parse(m.value.toString())));
    });
  });
  afterAll(async () => {
    await app.close();
    await bus.close();
    await store.close();
  });

  // the ways a path can name /api/v1/... without spelling it: escapes (once and twice), doubled
  // and trailing slashes, dots, case; the router decodes some of them and matches the route
  const DISGUISED = [
    "/%61pi/v1/tasks",
    "/api/v1/%74asks",
    "/%2561pi/v1/tasks",
    "/api/%76%31/tasks",
    "//api/v1/tasks",
    "/api//v1/tasks",
    "/api/v1//tasks",
    "/api/v1/tasks/",
    "/api/v1/tasks.",
    "/api/v1/./tasks",
    "/api/v1/x/../tasks",
    "/API/v1/tasks",
    "/Api/V1/Tasks",
    "/api/v1/tasks%20",
    "/api/v1/tasks;x=1",
    "/api/v1/tasks?status=active",
    "/api/v1/tasks#frag",
  ];

  it("answers no disguised /api/v1 path without a token, while the real route, which the router also reaches through escapes, needs one", async () => {
    for (const url of DISGUISED) {
      const res = await app.inject({ method: "GET", url });
      expect([401, 404], `${url} → ${res.statusCode}`).toContain(res.statusCode);
      expect(res.body, url).not.toMatch(/"tasks"\s*:/);
    }
    // the router does decode an escaped path to the route: with a token it answers, without one it is 401, never 200
    expect((await app.inject({ method: "GET", url: "/%61pi/v1/tasks" })).statusCode).toBe(401);
    expect((await app.inject({ method: "GET", url: "/%61pi/v1/tasks", headers: bearer(VIEWER) })).statusCode).toBe(200);
  });

  it("lifts no quarantine through a disguised path, and records each attempt", async () => {
    await quarantine.put({ agentId: "a1", atMs: 1, findingId: "f-1", taskId: "t-1", by: "policy:test" });
    for (const url of ["/%61pi/v1/agents/a1/quarantine/lift", "/api/v1/agents/a1/quarantine/lift/", "//api/v1/agents/a1/quarantine/lift"]) {
      const res = await app.inject({ method: "POST", url, payload: {} });
      expect([401, 404], `${url} → ${res.statusCode}`).toContain(res.statusCode);
    }
    expect(await quarantine.get("a1")).toBeDefined();
    const denied = (await audit.list({ offset: 0, limit: 50 })).records.filter((r) => r.target.id === "a1");
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((r) => r.outcome === "denied" && r.actor.via === "unauthenticated")).toBe(true);
  });

  it("gives each role what it may do: viewers read, responders also answer, admins also register", async () => {
    const lift = (token: string) =>
      app.inject({ method: "POST", url: "/api/v1/agents/a2/quarantine/lift", headers: bearer(token), payload: {} });
    const scope = (token: string) =>
      app.inject({ method: "PUT", url: "/api/v1/tasks/t-9/scope", headers: bearer(token), payload: { tools: ["invoices.read"] } });
    await quarantine.put({ agentId: "a2", atMs: 1, findingId: "f-2", taskId: "t-2", by: "policy:test" });
    expect((await app.inject({ method: "GET", url: "/api/v1/findings", headers: bearer(VIEWER) })).statusCode).toBe(200);
    expect((await lift(VIEWER)).statusCode).toBe(403);
    expect((await scope(RESPONDER)).statusCode).toBe(403);
    expect((await lift(RESPONDER)).statusCode).toBe(200);
    expect((await scope(ADMIN)).statusCode).toBe(201);
    // the read of the audit log itself is for responders and admins
    expect((await app.inject({ method: "GET", url: "/api/v1/audit", headers: bearer(VIEWER) })).statusCode).toBe(403);
  });

  it("keeps an append-only record of every write, with the actor its token names, in the store and on agent.audit", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/audit?limit=100", headers: bearer(RESPONDER) });
    expect(res.statusCode).toBe(200);
    const { records, total } = res.json() as { records: AuditRecord[]; total: number };
    expect(total).toBe(records.length);
    // newest first: the admin's scope registration, then the lift by the responder, …
    expect(records[0]).toMatchObject({
      action: "PUT /api/v1/tasks/:id/scope",
      target: { id: "t-9" },
      outcome: "ok",
      status: 201,
      actor: { id: "token:ops-admin", name: "ops-admin", role: "admin", via: "token" },
      detail: { scope: { tools: ["invoices.read"] } },
    });
    expect(records).toContainEqual(
      expect.objectContaining({
        action: "POST /api/v1/agents/:id/quarantine/lift",
        outcome: "ok",
        actor: expect.objectContaining({ name: "soc-alice" }),
      }),
    );
    expect(records).toContainEqual(
      expect.objectContaining({
        action: "PUT /api/v1/tasks/:id/scope",
        outcome: "denied",
        status: 403,
        actor: expect.objectContaining({ name: "soc-alice" }),
      }),
    );
    // reads are not writes: none recorded
    expect(records.some((r) => r.action.startsWith("GET "))).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(published.map((r) => r.id).sort()).toEqual(records.map((r) => r.id).sort());
    const mine = await app.inject({ method: "GET", url: "/api/v1/audit?actor=ops-admin", headers: bearer(ADMIN) });
    expect((mine.json() as { records: AuditRecord[] }).records.every((r) => r.actor.name === "ops-admin")).toBe(true);
  });
});

describe("console API with OIDC access tokens (a JWT verified against the issuer's JWKS)", () => {
  let jwksServer: Server;
  let issuer: string;
  let sign: (claims: Record<string, unknown>, options?: { expiresIn?: string; issuer?: string; audience?: string }) => Promise<string>;
  const store = new MemoryStore();
  let app: ReturnType<typeof consoleApi>;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    jwksServer = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      if (req.url === "/.well-known/openid-configuration") res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      else if (req.url === "/jwks") res.end(JSON.stringify({ keys: [jwk] }));
      else res.writeHead(404).end("{}");
    });
    await new Promise<void>((r) => jwksServer.listen(0, "127.0.0.1", r));
    issuer = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
    sign = (claims, options = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setIssuer(options.issuer ?? issuer)
        .setAudience(options.audience ?? "driftwatch-api")
        .setSubject(String(claims.sub ?? "user-1"))
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? "5m")
        .sign(privateKey);
    app = consoleApi(store, {
      authenticator: new Authenticator({
        tokens: [],
        oidc: { issuer, audience: "driftwatch-api", rolesClaim: "groups", roleMap: { responder: ["soc-team"], viewer: ["everyone"] } },
      }),
    });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await new Promise((r) => jwksServer.close(r));
  });

  const get = (token: string) => app.inject({ method: "GET", url: "/api/v1/tasks", headers: bearer(token) });

  it("accepts a token the issuer signed for this API, with a role from its claim; the actor is the token's subject", async () => {
    expect((await get(await sign({ sub: "u-7", groups: ["everyone"] }))).statusCode).toBe(200);
    const decide = await app.inject({
      method: "POST",
      url: "/api/v1/agents/nobody/quarantine/lift",
      headers: bearer(await sign({ sub: "u-8", name: "Dana SOC", groups: ["everyone", "soc-team"] })),
      payload: {},
    });
    expect(decide.statusCode).toBe(404); // authorized (a responder); there was simply nothing to lift
    const viewer = await app.inject({
      method: "POST",
      url: "/api/v1/agents/nobody/quarantine/lift",
      headers: bearer(await sign({ sub: "u-7", groups: ["everyone"] })),
      payload: {},
    });
    expect(viewer.statusCode).toBe(403);
  });

  it("refuses expired tokens, other issuers or audiences, shared-secret and unsigned tokens, and tokens without a role", async () => {
    const expired = await get(await sign({ groups: ["everyone"] }, { expiresIn: "-10m" }));
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error).toMatch(/expired/);
    expect((await get(await sign({ groups: ["everyone"] }, { issuer: "https://evil.example" }))).statusCode).toBe(401);
    expect((await get(await sign({ groups: ["everyone"] }, { audience: "another-api" }))).statusCode).toBe(401);
    const hs = await new SignJWT({ groups: ["everyone"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer(issuer)
      .setAudience("driftwatch-api")
      .setSubject("u-1")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode("a-shared-secret-of-thirty-two-bytes!"));
    expect((await get(hs)).statusCode).toBe(401);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const unsigned = `${b64({ alg: "none" })}.${b64({ iss: issuer, aud: "driftwatch-api", sub: "u-1", exp: 9_999_999_999, groups: ["soc-team"] })}.`;
    expect((await get(unsigned)).statusCode).toBe(401);
    const noRole = await get(await sign({ groups: ["marketing"] }));
    expect(noRole.statusCode).toBe(403);
    expect(noRole.json().error).toMatch(/no Driftwatch role/);
  });
});
