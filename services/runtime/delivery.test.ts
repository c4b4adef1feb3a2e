import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Answer, json, LoopbackServer } from "../../test/support/loopback-server.js";
import {
  backoffDelay,
  Delivery,
  type DeliveryEvent,
  type DeliveryOptions,
  type DeliveryOutcome,
  endpointOf,
  isRetryableStatus,
  parseRetryAfter,
} from "./delivery.js";

describe("backoffDelay (full jitter)", () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000 };

  it("draws from [0, base·2^(retry-1)), capped by maxDelayMs", () => {
    for (const [retry, bound] of [
      [1, 100],
      [2, 200],
      [3, 400],
      [4, 800],
      [5, 1000],
      [12, 1000],
      [2000, 1000], // 2^1999 overflows to Infinity: still capped
    ] as const) {
      expect(backoffDelay(retry, policy, () => 0)).toBe(0);
      const top = backoffDelay(retry, policy, () => 0.999999999);
      expect(top).toBeLessThan(bound);
      expect(top).toBeGreaterThanOrEqual(bound - 1);
      expect(backoffDelay(retry, policy, () => 1)).toBeLessThan(bound); // a random() of exactly 1 stays in range
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(retry, policy);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(bound);
      }
    }
  });

  it("is jittered: repeated draws differ", () => {
    const draws = new Set(Array.from({ length: 50 }, () => backoffDelay(4, policy)));
    expect(draws.size).toBeGreaterThan(10);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-03-01T12:00:00Z");
  it.each<[string | null | undefined, number | undefined]>([
    ["3", 3000],
    ["0", 0],
    [" 120 ", 120_000],
    ["Sun, 01 Mar 2026 12:00:05 GMT", 5000],
    ["Sun, 01 Mar 2026 11:59:00 GMT", 0], // a date in the past: retry now
    ["-1", undefined],
    ["1.5", undefined],
    ["soon", undefined],
    ["", undefined],
    [null, undefined],
    [undefined, undefined],
  ])("%j → %j ms", (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });
});

describe("isRetryableStatus and endpointOf", () => {
  it("retries 408, 429 and 5xx only", () => {
    expect([408, 429, 500, 502, 503, 504, 599].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 409, 410, 422, 301].some(isRetryableStatus)).toBe(false);
  });
  it("keys a circuit by origin and path, never the query", () => {
    expect(endpointOf("https://hooks.example:8443/a/b?token=secret#x")).toBe("https://hooks.example:8443/a/b");
  });
});

describe("Delivery against a real HTTP server", () => {
  let answer: () => Answer = () => ({ status: 200 });
  const server = new LoopbackServer(() => answer());
  let clock = 1_000_000;
  let sleeps: number[] = [];
  let events: DeliveryEvent[] = [];

  beforeAll(async () => {
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    await server.start();
    server.reset();
    server.slowMs = 1000;
    server.retryAfter = "1";
    answer = () => ({ status: 200 });
    clock = 1_000_000;
    sleeps = [];
    events = [];
  });

  /** A delivery on a fake clock whose waits are recorded and skipped. */
  function delivery(over: Partial<DeliveryOptions> = {}): Delivery {
    return new Delivery({
      timeoutMs: 2000,
      retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000, budgetMs: 60_000 },
      circuit: false,
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
      onEvent: (e) => events.push(e),
      ...over,
    });
  }
  const url = () => `${server.url}/hook`;
  const send = (d: Delivery, extra: Partial<Parameters<Delivery["send"]>[0]> = {}) =>
    d.send({ url: url(), method: "POST", body: '{"a":1}', headers: { "content-type": "application/json" }, ...extra });

  it("delivers on the first attempt: method, body and headers reach the server", async () => {
    const out = await send(delivery());
    expect(out).toEqual({ ok: true, status: 200, attempts: 1, detail: "HTTP 200" });
    expect(server.calls).toHaveLength(1);
    expect(server.calls[0]).toMatchObject({ method: "POST", path: "/hook", body: '{"a":1}' });
    expect(server.calls[0]?.headers["content-type"]).toBe("application/json");
    expect(server.calls[0]?.headers["user-agent"]).toBe("driftwatch");
    expect(sleeps).toEqual([]);
  });

  it("retries 5xx with jittered exponential waits, then succeeds", async () => {
    server.script.push("500", "500");
    const out = await send(delivery({ random: () => 0.5 }));
    expect(out).toMatchObject({ ok: true, status: 200, attempts: 3 });
    expect(server.calls.map((c) => c.status)).toEqual([500, 500, 200]);
    expect(sleeps).toEqual([50, 100]); // half of 100, half of 200
    expect(events.filter((e) => e.kind === "retry").map((e) => (e as { delayMs: number }).delayMs)).toEqual([50, 100]);
  });

  it("each wait stays within its full-jitter bound with a real random source", async () => {
    answer = () => ({ status: 503 });
    const out = await send(delivery({ retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 350 } }));
    expect(out).toMatchObject({ ok: false, status: 503, attempts: 6, detail: "HTTP 503" });
    expect(out.permanent).toBeUndefined();
    // the waits as decided (a wait of 0 ms, about one draw in a hundred here, is not slept)
    const waits = events.filter((e) => e.kind === "retry").map((e) => (e as { delayMs: number }).delayMs);
    expect(waits).toHaveLength(5);
    [100, 200, 350, 350, 350].forEach((bound, i) => {
      expect(waits[i]).toBeGreaterThanOrEqual(0);
      expect(waits[i]).toBeLessThan(bound);
    });
    expect(sleeps).toEqual(waits.filter((w) => w > 0));
    expect(events.at(-1)).toEqual({ kind: "gave-up", endpoint: url(), reason: "attempts", attempts: 6 });
  });

  it.each([408, 429, 500, 502, 503])("HTTP %i is retried", async (status) => {
    server.script.push("none");
    let first = true;
    answer = () => {
      if (first) {
        first = false;
        return { status };
      }
      return { status: 204 };
    };
    const out = await send(delivery());
    expect(out).toMatchObject({ ok: true, status: 204, attempts: 2 });
  });

  it.each([400, 401, 403, 404, 409, 422])("HTTP %i is permanent: not retried, the body kept for the adapter", async (status) => {
    answer = () => json(status, { errors: ["nope"] });
    const out = await send(delivery());
    expect(out).toEqual({ ok: false, status, attempts: 1, detail: `HTTP ${status}`, permanent: true, body: '{"errors":["nope"]}' });
    expect(server.calls).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it("keeps only the start of a large body", async () => {
    answer = () => ({ status: 400, body: "x".repeat(100_000) });
    const out = await send(delivery());
    expect(out.body?.length).toBe(4096);
  });

  it("a refused connection is retried and reported without throwing", async () => {
    await server.stop();
    const out = await send(delivery({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 10 } }));
    expect(out.ok).toBe(false);
    expect(out.attempts).toBe(3);
    expect(out.status).toBeUndefined();
    expect(out.detail).toMatch(/ECONNREFUSED/);
    expect(events.filter((e) => e.kind === "retry")).toHaveLength(2);
  });

  it("an answer slower than the time-out is abandoned and retried", async () => {
    server.outage = "slow";
    server.slowMs = 600;
    const started = Date.now();
    const out = await send(delivery({ timeoutMs: 60, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } }));
    const took = Date.now() - started;
    expect(out).toMatchObject({ ok: false, attempts: 2, detail: "timed out after 60 ms" });
    expect(took).toBeLessThan(550); // two attempts of ~60 ms, not 600 ms each
  });

  it("a request may set its own time-out (per endpoint)", async () => {
    server.outage = "slow";
    server.slowMs = 300;
    const out = await send(delivery({ timeoutMs: 5, retry: { maxAttempts: 1 } }), { timeoutMs: 2000 });
    expect(out).toMatchObject({ ok: true, attempts: 1 });
  });

  it("honours Retry-After in seconds", async () => {
    server.script.push("429");
    server.retryAfter = "2";
    const out = await send(delivery({ random: () => 0 }));
    expect(out).toMatchObject({ ok: true, attempts: 2 });
    expect(sleeps).toEqual([1000]); // 2000 capped by maxDelayMs (1000)
    const d2 = delivery({ retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 5000 } });
    server.script.push("429");
    sleeps = [];
    await send(d2);
    expect(sleeps).toEqual([2000]); // not the jittered backoff
    expect(events.filter((e) => e.kind === "retry").at(-1)).toMatchObject({ delayMs: 2000, retryAfterMs: 2000 });
  });

  it("honours Retry-After as an HTTP-date", async () => {
    const at = new Date(Date.now() + 3000);
    at.setMilliseconds(0);
    server.retryAfter = at.toUTCString();
    server.script.push("429");
    const d = delivery({ now: Date.now, retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 10_000 } });
    await send(d);
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThan(1500);
    expect(sleeps[0]).toBeLessThanOrEqual(3000);
  });

  it("waits for real as long as Retry-After says", async () => {
    server.script.push("429");
    server.retryAfter = "1";
    const d = new Delivery({ timeoutMs: 2000, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5000 }, circuit: false });
    const out = await d.send({ url: url(), method: "GET" });
    expect(out).toMatchObject({ ok: true, attempts: 2 });
    const [first, second] = server.calls;
    expect((second?.atMs ?? 0) - (first?.atMs ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it("gives up when the next wait would overrun the time budget", async () => {
    answer = () => ({ status: 503 });
    const out = await send(
      delivery({ random: () => 0.99, retry: { maxAttempts: 10, baseDelayMs: 400, maxDelayMs: 1000, budgetMs: 1000 } }),
    );
    // waits ~396 then ~792: the second would end past 1000 ms
    expect(out.attempts).toBe(2);
    expect(out.detail).toBe("HTTP 503; retry budget of 1000 ms spent");
    expect(sleeps).toEqual([396]);
    expect(events.at(-1)).toMatchObject({ kind: "gave-up", reason: "budget", attempts: 2 });
  });

  it("re-reads headers before each attempt (a fresh signature, a rotated token)", async () => {
    server.script.push("500", "500");
    let n = 0;
    await send(delivery(), { headers: () => ({ "x-attempt": String(++n) }) });
    expect(server.calls.map((c) => c.headers["x-attempt"])).toEqual(["1", "2", "3"]);
  });

  it("never throws: a bad URL, a failing header function, a failing metrics hook", async () => {
    const d = delivery({
      onEvent: () => {
        throw new Error("metrics down");
      },
    });
    const bad = await d.send({ url: "not a url" });
    expect(bad.ok).toBe(false);
    expect(bad.detail.length).toBeGreaterThan(0);
    const noHeaders = await d.send({
      url: url(),
      headers: () => {
        throw new Error("token file missing");
      },
    });
    expect(noHeaders).toEqual({ ok: false, attempts: 0, detail: "could not prepare the request: token file missing" });
    expect(server.calls).toHaveLength(0);
    expect(await send(d)).toMatchObject({ ok: true, attempts: 1 });
  });

  describe("circuit breaker", () => {
    const breaker = (over: Partial<DeliveryOptions> = {}) =>
      delivery({ circuit: { failureThreshold: 3, coolDownMs: 10_000 }, retry: { maxAttempts: 1 }, ...over });

    it("opens after N consecutive failures and then refuses without calling; half-opens after the cool-down; a good trial closes it", async () => {
      const d = breaker();
      answer = () => ({ status: 500 });
      for (let i = 0; i < 3; i++) expect((await send(d)).circuitOpen).toBe(i === 2 ? true : undefined);
      expect(d.circuit(url())).toEqual({ endpoint: url(), state: "open", consecutiveFailures: 3, retryAtMs: clock + 10_000 });
      expect(server.calls).toHaveLength(3);

      const refused = await send(d);
      expect(refused).toEqual({ ok: false, attempts: 0, detail: `circuit open for ${url()}`, circuitOpen: true });
      expect(server.calls).toHaveLength(3); // nothing sent
      expect(events.filter((e) => e.kind === "rejected")).toHaveLength(1);

      clock += 9_999;
      expect((await send(d)).circuitOpen).toBe(true);
      clock += 1;
      expect(d.circuit(url()).state).toBe("half-open");
      answer = () => ({ status: 200 });
      expect(await send(d)).toMatchObject({ ok: true, attempts: 1 });
      expect(d.circuit(url())).toEqual({ endpoint: url(), state: "closed", consecutiveFailures: 0 });
      expect(events.filter((e) => e.kind === "circuit").map((e) => (e as { to: string }).to)).toEqual(["open", "half-open", "closed"]);
    });

    it("a failed trial re-opens it for another cool-down", async () => {
      const d = breaker();
      answer = () => ({ status: 503 });
      for (let i = 0; i < 3; i++) await send(d);
      clock += 10_000;
      const trial = await send(d);
      expect(trial).toMatchObject({ ok: false, attempts: 1, circuitOpen: true, status: 503 });
      expect(d.circuit(url())).toMatchObject({ state: "open", retryAtMs: clock + 10_000 });
      expect(server.calls).toHaveLength(4);
      expect((await send(d)).attempts).toBe(0);
    });

    it("a trial that could not even be prepared neither closes nor re-opens the circuit", async () => {
      const d = breaker();
      answer = () => ({ status: 500 });
      for (let i = 0; i < 3; i++) await send(d);
      clock += 10_000;
      const unprepared = await send(d, {
        headers: () => {
          throw new Error("no token");
        },
      });
      expect(unprepared).toMatchObject({ ok: false, attempts: 0 });
      expect(d.circuit(url()).state).toBe("half-open");
      expect((await send(d)).attempts).toBe(1); // the next request is the trial
      expect(d.circuit(url()).state).toBe("open"); // and it failed
    });

    it("half-open lets exactly one request through at a time", async () => {
      const d = breaker({ timeoutMs: 5000 });
      answer = () => ({ status: 500 });
      for (let i = 0; i < 3; i++) await send(d);
      clock += 10_000;
      answer = () => ({ status: 200 });
      server.script.push("slow");
      server.slowMs = 150;
      const [a, b, c] = await Promise.all([send(d), send(d), send(d)]);
      const outcomes = [a, b, c] as DeliveryOutcome[];
      expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
      expect(outcomes.filter((o) => o.circuitOpen && o.attempts === 0)).toHaveLength(2);
      expect(server.calls).toHaveLength(4);
      expect(d.circuit(url()).state).toBe("closed");
    });

    it("opening mid-retries stops the retries at once", async () => {
      const d = breaker({ retry: { maxAttempts: 10, baseDelayMs: 10, maxDelayMs: 10 } });
      answer = () => ({ status: 502 });
      const out = await send(d);
      expect(out).toMatchObject({ ok: false, attempts: 3, circuitOpen: true, status: 502, detail: `HTTP 502; circuit open for ${url()}` });
      expect(events.filter((e) => e.kind === "retry")).toHaveLength(2);
    });

    it("counts refused connections and time-outs; permanent refusals and successes reset the count", async () => {
      const d = breaker({ timeoutMs: 50 });
      answer = () => ({ status: 500 });
      await send(d);
      await send(d);
      answer = () => ({ status: 404 });
      await send(d);
      expect(d.circuit(url())).toMatchObject({ state: "closed", consecutiveFailures: 0 });
      for (let i = 0; i < 20; i++) await send(d);
      expect(d.circuit(url()).state).toBe("closed"); // the endpoint answers: permanent refusals never open it
      server.outage = "slow";
      server.slowMs = 400;
      await send(d);
      await server.stop();
      await send(d);
      await send(d);
      expect(d.circuit(url())).toMatchObject({ state: "open", consecutiveFailures: 3 });
    });

    it("is per endpoint: one endpoint's outage leaves another's closed", async () => {
      const d = breaker();
      answer = () => ({ status: 500 });
      for (let i = 0; i < 3; i++) await d.send({ url: `${server.url}/down` });
      answer = () => ({ status: 200 });
      expect(await d.send({ url: `${server.url}/up` })).toMatchObject({ ok: true });
      expect((await d.send({ url: `${server.url}/down` })).circuitOpen).toBe(true);
      // an explicit endpoint groups URLs: a Vault's paths share one circuit
      answer = () => ({ status: 500 });
      for (let i = 0; i < 3; i++) await d.send({ url: `${server.url}/down`, endpoint: "vault" });
      expect((await d.send({ url: `${server.url}/up`, endpoint: "vault" })).circuitOpen).toBe(true);
      expect(d.circuits().map((c) => [c.endpoint, c.state])).toEqual([
        [`${server.url}/down`, "open"],
        [`${server.url}/up`, "closed"],
        ["vault", "open"],
      ]);
    });

    it("is on by default and off with circuit: false", () => {
      const on = new Delivery({ timeoutMs: 100 });
      expect(on.circuit("x").state).toBe("closed");
      expect(new Delivery({ timeoutMs: 100, circuit: false }).circuits()).toEqual([]);
    });
  });
});
