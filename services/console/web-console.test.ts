import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleApi } from "../../test/support/console-api.js";
import { listen } from "../runtime/http.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { Authenticator } from "./auth.js";
import { ChangeWatch, EventHub } from "./events.js";
import { CONTENT_SECURITY_POLICY } from "./web-assets.js";

const VIEWER = "viewer-token-0123456789abcdef";

describe("the web console's files, served at /", () => {
  const dir = mkdtempSync(join(tmpdir(), "driftwatch-web-"));
  let app: FastifyInstance;
  let missing: FastifyInstance;

  beforeAll(async () => {
    mkdirSync(join(dir, "assets"));
    writeFileSync(join(dir, "index.html"), '<!doctype html><script type="module" src="/assets/main-abc123.js"></script>');
    writeFileSync(join(dir, "assets", "main-abc123.js"), "console.log(1)");
    writeFileSync(join(dir, "assets", "main-abc123.css"), "body{}");
    app = consoleApi(new MemoryStore(), {
      webDir: dir,
      authenticator: new Authenticator({ tokens: [{ name: "v", role: "viewer", token: VIEWER }] }),
    });
    missing = consoleApi(new MemoryStore(), { webDir: join(dir, "nowhere") });
  });

  afterAll(async () => {
    await Promise.all([app?.close(), missing?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the page without a token, checked each time, under a policy that allows no inline script", async () => {
    const res = await app.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
    expect(res.headers["cache-control"]).toBe("no-cache");
    expect(res.headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toMatch(/script-src 'self'(;|$)/);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.body).toContain("/assets/main-abc123.js");
  });

  it("serves the hashed assets with their content types, cached for good", async () => {
    const js = await app.inject({ method: "GET", url: "/assets/main-abc123.js" });
    expect(js.statusCode).toBe(200);
    expect(js.headers["content-type"]).toMatch(/^(text|application)\/javascript/);
    expect(js.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const css = await app.inject({ method: "GET", url: "/assets/main-abc123.css" });
    expect(css.headers["content-type"]).toMatch(/^text\/css/);
  });

  it("keeps the API behind its token, and answers 404 for a file that is not there", async () => {
    expect((await app.inject({ method: "GET", url: "/api/v1/tasks" })).statusCode).toBe(401);
    expect((await app.inject({ method: "GET", url: "/assets/nope.js" })).statusCode).toBe(404);
    expect((await app.inject({ method: "GET", url: "/../package.json" })).statusCode).toBe(404);
    // only the files built are routes: a disguised API path is no file, and no answer but 404
    for (const url of ["//api/v1/tasks", "/%2e%2e/package.json", "/assets/../index.html/x", "/src/main.tsx"]) {
      const res = await app.inject({ method: "GET", url });
      expect(res.statusCode, url).toBe(404);
      expect(res.body, url).not.toMatch(/"tasks"\s*:/);
    }
  });

  it("says to run npm run build when the console is not built", async () => {
    const res = await missing.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain("run `npm run build`");
  });
});

/** Reads a streamed response until `until` holds for what was read (or fails after a while). */
async function readUntil(body: ReadableStream<Uint8Array>, until: (text: string) => boolean): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + 5_000;
  while (!until(text)) {
    if (Date.now() > deadline) throw new Error(`timed out; read so far: ${text}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended; read: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("GET /api/v1/events (live updates)", () => {
  const hub = new EventHub(2);
  let app: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    app = consoleApi(new MemoryStore(), {
      events: hub,
      authenticator: new Authenticator({ tokens: [{ name: "v", role: "viewer", token: VIEWER }] }),
    });
    url = await listen(app, "127.0.0.1", 0);
  });

  afterAll(async () => {
    await app?.close();
  });

  const open = (token = VIEWER) => {
    const controller = new AbortController();
    return {
      controller,
      res: fetch(`${url}/api/v1/events`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal }),
    };
  };

  it("needs the caller's token", async () => {
    const res = await fetch(`${url}/api/v1/events`);
    expect(res.status).toBe(401);
    expect((await open("wrong").res).status).toBe(401);
  });

  it("streams what is published as server-sent events, and lets a client go when it disconnects", async () => {
    const { controller, res } = open();
    const response = await res;
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(response.headers.get("cache-control")).toBe("no-store");
    await until(() => hub.size === 1);
    hub.publish({ kind: "finding", taskId: "t-1", id: "f-1" });
    const text = await readUntil(response.body as ReadableStream<Uint8Array>, (t) => t.includes("event: finding"));
    const data = JSON.parse(
      text
        .split("\n")
        .find((l) => l.startsWith("data: "))
        ?.slice(6) ?? "{}",
    );
    expect(data).toMatchObject({ kind: "finding", taskId: "t-1", id: "f-1", atMs: expect.any(Number) });
    controller.abort();
    await until(() => hub.size === 0);
  });

  it("holds at most so many streams: past them 503 with Retry-After", async () => {
    const a = open();
    const b = open();
    expect((await a.res).status).toBe(200);
    expect((await b.res).status).toBe(200);
    await until(() => hub.size === 2);
    const third = await open().res;
    expect(third.status).toBe(503);
    expect(third.headers.get("retry-after")).toBe("10");
    a.controller.abort();
    b.controller.abort();
    await until(() => hub.size === 0);
  });

  it("publishes a kind when what the poll reads of it changes, and polls only while someone listens", async () => {
    let pending = "a1:pending";
    let reads = 0;
    const watch = new ChangeWatch(hub, {
      approvals: async () => {
        reads++;
        return pending;
      },
    });
    await watch.poll();
    expect(reads).toBe(0);
    const { controller, res } = open();
    const response = await res;
    await until(() => hub.size === 1);
    await watch.poll();
    pending = "a1:approved";
    await watch.poll();
    const text = await readUntil(response.body as ReadableStream<Uint8Array>, (t) => t.includes("event: approvals"));
    expect(text).toContain('"kind":"approvals"');
    expect(reads).toBe(2);
    controller.abort();
    await until(() => hub.size === 0);
  });

  it("answers no HEAD on the stream (a HEAD answer has no body: it would hold a slot and send nothing)", async () => {
    const res = await fetch(`${url}/api/v1/events`, {
      method: "HEAD",
      headers: { authorization: `Bearer ${VIEWER}` },
      signal: AbortSignal.timeout(3_000),
    });
    expect(res.status).toBe(404);
    expect(hub.size).toBe(0);
  });

  it("keeps no slot for a client that went while it was authenticated, and ends a stream after its longest life", async () => {
    const short = new EventHub(1, 200);
    const gone = new PassThrough() as unknown as ServerResponse;
    (gone as unknown as PassThrough).destroy();
    expect(short.attach(gone)).toBe(true);
    expect(short.size).toBe(0);

    // a real response: the stream ends by itself after 200 ms, and its slot comes back
    const server = createServer((_req, res) => void short.attach(res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const t0 = Date.now();
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(short.size).toBe(1);
      await res.text(); // resolves when the server ends the stream
      expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
      await until(() => short.size === 0);
    } finally {
      short.close();
      await new Promise((r) => server.close(r));
    }
  });

  it("a poll source that fails keeps no other source's change from the pages", async () => {
    let quarantine = "q0";
    const watch = new ChangeWatch(hub, {
      tasks: async () => {
        throw new Error("store away");
      },
      quarantine: async () => quarantine,
    });
    const { controller, res } = open();
    const response = await res;
    await until(() => hub.size === 1);
    await watch.poll();
    quarantine = "q1";
    await watch.poll();
    const text = await readUntil(response.body as ReadableStream<Uint8Array>, (t) => t.includes("event: quarantine"));
    expect(text).toContain('"kind":"quarantine"');
    controller.abort();
    await until(() => hub.size === 0);
  });
});
