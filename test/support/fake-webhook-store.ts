import { Webhook } from "standardwebhooks";
import { type Answer, type IncomingCall, json, LoopbackServer } from "./loopback-server.js";

/**
 * A real HTTP server on 127.0.0.1 standing in for a generic credential store reached by
 * Driftwatch's signed revocation webhook (Standard Webhooks), with the outages of
 * `LoopbackServer` (`store.server.outage`, `.script`, `stop()`).
 *
 * It answers as a careful receiver would: 401 to a bad signature, 400 to a body that names
 * no credential, 200 otherwise, and it revokes each credential once: a repeated `webhook-id`
 * (Driftwatch sends the same one on every retry) is answered 200 again without revoking
 * anything more. `revoked` holds what it revoked, in order. It also suspends and resumes
 * (`type` `driftwatch.credential.suspend` / `.resume`): `suspensions` holds those, in order,
 * and `suspended` what is suspended now.
 */
export interface StoreRevocation {
  credentialId: string;
  webhookId: string;
  atMs: number;
}

export class FakeWebhookStore {
  readonly server: LoopbackServer;
  readonly revoked: StoreRevocation[] = [];
  readonly suspensions: (StoreRevocation & { action: "suspend" | "resume" })[] = [];
  readonly suspended = new Set<string>();
  private readonly seen = new Set<string>();
  private readonly verifier: Webhook;

  constructor(readonly secret: string) {
    this.verifier = new Webhook(secret);
    this.server = new LoopbackServer((call) => this.answer(call));
  }

  /** The revocation webhook's URL (the path is the store's own). */
  get url(): string {
    return `${this.server.url}/revoke`;
  }

  get calls() {
    return this.server.calls;
  }

  async start(): Promise<this> {
    await this.server.start();
    return this;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  private answer(call: IncomingCall): Answer {
    const header = (name: string) => String(call.headers[name] ?? "");
    try {
      this.verifier.verify(call.body, {
        "webhook-id": header("webhook-id"),
        "webhook-timestamp": header("webhook-timestamp"),
        "webhook-signature": header("webhook-signature"),
      });
    } catch {
      return json(401, { error: "bad signature" });
    }
    const body = JSON.parse(call.body) as { credential_id?: unknown; type?: unknown };
    if (typeof body.credential_id !== "string" || body.credential_id === "") return json(400, { error: "no credential_id" });
    const webhookId = header("webhook-id");
    const action =
      body.type === "driftwatch.credential.suspend" ? "suspend" : body.type === "driftwatch.credential.resume" ? "resume" : "revoke";
    if (!this.seen.has(webhookId)) {
      this.seen.add(webhookId);
      const entry = { credentialId: body.credential_id, webhookId, atMs: Date.now() };
      if (action === "revoke") this.revoked.push(entry);
      else {
        this.suspensions.push({ ...entry, action });
        if (action === "suspend") this.suspended.add(body.credential_id);
        else this.suspended.delete(body.credential_id);
      }
    }
    return json(200, { [action === "revoke" ? "revoked" : `${action}ed`]: body.credential_id });
  }
}

/** The credential a recorded call to the fake webhook store or the fake Vault is about. */
export function credentialOfCall(call: IncomingCall): string | undefined {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(call.body) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof body.credential_id === "string") return body.credential_id;
  if (typeof body.lease_id === "string") return `vault:lease:${body.lease_id}`;
  if (typeof body.accessor === "string") return `vault:accessor:${body.accessor}`;
  return undefined;
}
