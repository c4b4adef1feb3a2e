import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { newSecret, WebhookReceiver } from "../../test/support/webhook-receiver.js";
import { Delivery, type DeliveryEvent } from "./delivery.js";
import { WebhookClient } from "./webhook-client.js";

describe("WebhookClient on Delivery", () => {
  const secret = newSecret();
  let statuses: number[] = [];
  const receiver = new WebhookReceiver(secret, () => statuses.shift() ?? 200);

  beforeAll(async () => {
    await receiver.start();
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(() => {
    receiver.received.length = 0;
    statuses = [];
  });

  it("signs every attempt afresh with the same webhook-id, so each retry verifies", async () => {
    statuses = [503, 502];
    const result = await new WebhookClient({ timeoutMs: 2000, retries: 2, backoffMs: 5 }).post({ url: receiver.url, secret }, "msg-1", {
      a: 1,
    });
    expect(result).toEqual({ ok: true, status: 200, attempts: 3, detail: "HTTP 200" });
    expect(receiver.received.map((r) => [r.id, r.signatureValid])).toEqual([
      ["msg-1", true],
      ["msg-1", true],
      ["msg-1", true],
    ]);
    expect(receiver.received.every((r) => JSON.stringify(r.body) === '{"a":1}')).toBe(true);
  });

  it("a refusal is permanent and not retried", async () => {
    statuses = [422];
    const result = await new WebhookClient({ timeoutMs: 2000, retries: 3, backoffMs: 5 }).post({ url: receiver.url, secret }, "m", {});
    expect(result).toEqual({ ok: false, status: 422, attempts: 1, detail: "HTTP 422", permanent: true });
  });

  it("a bad secret is reported, not thrown, and nothing is sent", async () => {
    const result = await new WebhookClient({ timeoutMs: 2000 }).post({ url: receiver.url, secret: "whsec_!!!" }, "m", {});
    expect(result.ok).toBe(false);
    expect(result.permanent).toBe(true);
    expect(result.attempts).toBe(0);
    expect(receiver.received).toHaveLength(0);
  });

  it("has no circuit breaker unless asked; with one, an endpoint that keeps failing is no longer called", async () => {
    const plain = new WebhookClient({ timeoutMs: 2000, retries: 0 });
    statuses = Array(8).fill(500);
    for (let i = 0; i < 8; i++) expect((await plain.post({ url: receiver.url, secret }, `p${i}`, {})).circuitOpen).toBeUndefined();
    expect(receiver.received).toHaveLength(8);

    receiver.received.length = 0;
    const events: DeliveryEvent[] = [];
    const guarded = new WebhookClient({
      timeoutMs: 2000,
      retries: 0,
      circuit: { failureThreshold: 2, coolDownMs: 60_000 },
      onEvent: (e) => events.push(e),
    });
    statuses = Array(8).fill(500);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await guarded.post({ url: receiver.url, secret }, `g${i}`, {}));
    expect(receiver.received).toHaveLength(2);
    expect(results.map((r) => [r.attempts, r.circuitOpen ?? false])).toEqual([
      [1, false],
      [1, true],
      [0, true],
      [0, true],
    ]);
    expect(events.some((e) => e.kind === "circuit" && e.to === "open")).toBe(true);
  });

  it("can share a Delivery (its policy and circuits) with other adapters", async () => {
    const delivery = new Delivery({ timeoutMs: 2000, retry: { maxAttempts: 1 }, circuit: { failureThreshold: 1, coolDownMs: 60_000 } });
    statuses = [500];
    await new WebhookClient({ timeoutMs: 2000, delivery }).post({ url: receiver.url, secret }, "s", {});
    expect(delivery.circuit(receiver.url).state).toBe("open");
  });
});
