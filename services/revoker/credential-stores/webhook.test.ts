import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newSecret, WebhookReceiver } from "../../../test/support/webhook-receiver.js";
import { WebhookClient } from "../../runtime/webhook-client.js";
import { WebhookCredentialStore } from "./webhook.js";

describe("generic webhook credential store", () => {
  const secret = newSecret();
  let status = 200;
  let receiver: WebhookReceiver;
  let store: WebhookCredentialStore;
  beforeAll(async () => {
    receiver = await new WebhookReceiver(secret, () => status).start();
    store = new WebhookCredentialStore({ url: receiver.url, secret }, new WebhookClient({ timeoutMs: 2_000, retries: 0, backoffMs: 5 }));
  });
  afterAll(() => receiver.stop());

  const request = { revocationId: "rev-1", credentialId: "key-9", taskId: "t-1", findingId: "e-1", reason: "telemetry_silence: quiet" };

  it("revokes, suspends and resumes with signed messages, each with its own id (the same on a retry)", async () => {
    expect(await store.revoke(request)).toMatchObject({ status: "revoked", attempts: 1 });
    expect(await store.suspend(request)).toMatchObject({ status: "revoked", attempts: 1 });
    expect(await store.resume(request)).toMatchObject({ status: "revoked", attempts: 1 });
    expect(receiver.received.map((r) => [r.id, (r.body as { type: string }).type, r.signatureValid])).toEqual([
      ["rev-1", "driftwatch.credential.revoke", true],
      ["rev-1-suspend", "driftwatch.credential.suspend", true],
      ["rev-1-resume", "driftwatch.credential.resume", true],
    ]);
    expect(receiver.received[1]?.body).toMatchObject({ credential_id: "key-9", task_id: "t-1", reason: "telemetry_silence: quiet" });
  });

  it("says failed when the store refuses a suspension", async () => {
    status = 503;
    try {
      expect((await store.suspend(request)).status).toBe("failed");
    } finally {
      status = 200;
    }
  });
});
