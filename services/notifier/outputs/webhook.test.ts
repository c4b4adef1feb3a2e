import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import { finding, T0 } from "../../../test/support/alerts.js";
import { newSecret, WebhookReceiver } from "../../../test/support/webhook-receiver.js";
import { MemoryStore } from "../../runtime/store/memory-store.js";
import { WebhookClient } from "../../runtime/webhook-client.js";
import { IncidentBook } from "../incident.js";
import { toDetectionFinding } from "../ocsf.js";
import { WebhookOutput, webhookIdOf } from "./webhook.js";

describe("WebhookOutput", () => {
  const secret = newSecret();
  let statuses: number[] = [];
  let receiver: WebhookReceiver;
  let v1: IncidentUpdate;
  let v2: IncidentUpdate;

  beforeAll(async () => {
    receiver = await new WebhookReceiver(secret, () => statuses.shift() ?? 200).start();
    const book = new IncidentBook(new MemoryStore(), { now: () => T0 + 100 });
    v1 = (await book.addFindings("task-1", [finding("a")])) as IncidentUpdate;
    v2 = (await book.addFindings("task-1", [finding("b", { severity: "critical" })])) as IncidentUpdate;
  });
  afterAll(() => receiver.stop());
  beforeEach(() => {
    receiver.received.length = 0;
    statuses = [];
  });

  const output = (retries = 0) =>
    new WebhookOutput({ url: receiver.url, secret }, new WebhookClient({ timeoutMs: 2000, retries, backoffMs: 5 }));

  it("is named webhook and takes every severity unless told", () => {
    expect(output().name).toBe("webhook");
    expect(output().minSeverity).toBe("info");
    expect(new WebhookOutput({ url: receiver.url, secret }, new WebhookClient(), "high").minSeverity).toBe("high");
  });

  it("POSTs each version signed, webhook-id = incident id and version, the version whole with its OCSF record", async () => {
    expect(await output().send(v1)).toEqual({ ok: true, detail: "HTTP 200" });
    expect(await output().send(v2)).toMatchObject({ ok: true });
    expect(receiver.received.map((r) => r.id)).toEqual([`${v1.incident.id}-v1`, `${v1.incident.id}-v2`]);
    expect(webhookIdOf(v2)).toBe(`${v1.incident.id}-v2`);
    for (const r of receiver.received) {
      expect(r.signatureValid).toBe(true);
      expect(r.headers["content-type"]).toBe("application/json");
    }
    const body = receiver.received[1]?.body as IncidentUpdate & { ocsf: unknown };
    expect(body).toEqual({ ...v2, ocsf: toDetectionFinding(v2) });
    // the finding this version added is there as `finding`, as receivers of single findings expect
    expect(body.type).toBe("driftwatch.incident");
    expect(body.finding?.id).toBe("b");
  });

  it("retries a 5xx with the same webhook-id, signed afresh", async () => {
    statuses = [503, 502];
    expect(await output(2).send(v1)).toMatchObject({ ok: true });
    expect(receiver.received.map((r) => r.id)).toEqual(Array(3).fill(`${v1.incident.id}-v1`));
    expect(receiver.received.every((r) => r.signatureValid)).toBe(true);
  });

  it("reports a 5xx after its attempts as a failure to retry later, and a 4xx as a refusal", async () => {
    statuses = [500];
    expect(await output().send(v1)).toEqual({
      ok: false,
      detail: `alert webhook refused incident ${v1.incident.id} version 1: HTTP 500`,
    });
    statuses = [400];
    expect(await output().send(v1)).toMatchObject({ ok: false, permanent: true, detail: expect.stringMatching(/HTTP 400$/) });
  });

  it("reports an unreachable receiver as a failure to retry later", async () => {
    const gone = new WebhookOutput({ url: "http://127.0.0.1:1/hook", secret }, new WebhookClient({ timeoutMs: 500, retries: 0 }));
    const result = await gone.send(v1);
    expect(result.ok).toBe(false);
    expect(result.permanent).toBeUndefined();
  });
});
