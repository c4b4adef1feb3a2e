import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleApi } from "../../test/support/console-api.js";
import { MemoryStore } from "../runtime/store/memory-store.js";

const TOKEN = "console-token-0123456789abcdef";
const READ_TOKEN = "reader-token-0123456789abcdef";

describe("console API with tokens", () => {
  const store = new MemoryStore();
  const app = consoleApi(store, { auth: { token: TOKEN, readToken: READ_TOKEN } });
  beforeAll(() => app.ready());
  afterAll(async () => {
    await app.close();
    await store.close();
  });

  const call = (method: "GET" | "PUT" | "POST", url: string, token?: string, payload?: object) =>
    app.inject({
      method,
      url,
      ...(token !== undefined ? { headers: { authorization: `Bearer ${token}` } } : {}),
      ...(payload ? { payload } : {}),
    });

  it("answers no /api/v1 request without the token (401, saying how), nor with a wrong one", async () => {
    const none = await call("GET", "/api/v1/tasks");
    expect(none.statusCode).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="driftwatch"');
    expect(none.json().error).toMatch(/Authorization: Bearer/);
    expect((await call("GET", "/api/v1/tasks", "not-the-token")).statusCode).toBe(401);
    expect((await call("GET", "/api/v1/tasks", `${TOKEN}x`)).statusCode).toBe(401);
    expect((await app.inject({ method: "GET", url: "/api/v1/tasks", headers: { authorization: TOKEN } })).statusCode).toBe(401);
    const write = await call("PUT", "/api/v1/tasks/t-1/credentials", undefined, { credentials: [{ id: "key-1" }] });
    expect(write.statusCode).toBe(401);
  });

  it("lets the token do anything, the read token read only (403 for a write); health, readiness and metrics stay open", async () => {
    expect((await call("GET", "/api/v1/tasks", TOKEN)).statusCode).toBe(200);
    expect((await call("GET", "/api/v1/revocations", READ_TOKEN)).statusCode).toBe(200);
    const readWrite = await call("PUT", "/api/v1/tasks/t-1/credentials", READ_TOKEN, { credentials: [{ id: "key-1" }] });
    expect(readWrite.statusCode).toBe(403);
    const write = await call("PUT", "/api/v1/tasks/t-1/credentials", TOKEN, { credentials: [{ id: "key-1" }] });
    expect(write.statusCode, write.body).toBe(201);
    for (const url of ["/healthz", "/readyz", "/metrics"]) expect((await call("GET", url)).statusCode, url).toBe(200);
  });
});
