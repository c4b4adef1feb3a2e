import { Webhook } from "standardwebhooks";
import { json, LoopbackServer } from "./loopback-server.js";

/**
 * Stand-ins for the SOC's HTTP endpoints, on real loopback servers with switchable outages
 * (LoopbackServer: refused while stopped, 500s, slow answers, 429 with Retry-After): a
 * signed webhook receiver, a Slack incoming webhook and a Splunk HTTP Event Collector. Each
 * answers as the real one does.
 */

/** A Standard Webhooks receiver: 204 for a message signed with `secret`, 401 otherwise. */
export function signedWebhook(secret: string): LoopbackServer {
  const verifier = new Webhook(secret);
  return new LoopbackServer((call) => {
    try {
      verifier.verify(call.body, {
        "webhook-id": String(call.headers["webhook-id"]),
        "webhook-timestamp": String(call.headers["webhook-timestamp"]),
        "webhook-signature": String(call.headers["webhook-signature"]),
      });
    } catch {
      return { status: 401, body: "bad signature" };
    }
    return { status: 204 };
  });
}

/** The path of a Slack incoming webhook URL (its last segments are the secret). */
export const SLACK_PATH = "/services/T0001/B0001/abcdefghijklmnopqrstuvwx";

/**
 * A Slack incoming webhook: 200 `ok` for a message with `text` or `blocks` at its path,
 * 400 `invalid_payload` for anything else it can read, 404 `no_service` elsewhere.
 */
export function slackWebhook(): LoopbackServer {
  return new LoopbackServer((call) => {
    const text = { "content-type": "text/plain" };
    if (call.method !== "POST" || call.path !== SLACK_PATH) return { status: 404, headers: text, body: "no_service" };
    try {
      const msg = JSON.parse(call.body) as { text?: unknown; blocks?: unknown };
      if (typeof msg.text === "string" || Array.isArray(msg.blocks)) return { status: 200, headers: text, body: "ok" };
    } catch {
      /* not JSON */
    }
    return { status: 400, headers: text, body: "invalid_payload" };
  });
}

export interface HecEndpoint {
  server: LoopbackServer;
  /** Answers 503 `Server is busy` to this many more requests (after the outage switches). */
  busy: number;
}

/**
 * A Splunk HTTP Event Collector at `/services/collector/event`: 401 without a token, 403
 * with a wrong one, 400 without an `event`, 503 while `busy`, else 200
 * `{"text":"Success","code":0}`.
 */
export function hecEndpoint(token: string): HecEndpoint {
  const hec: HecEndpoint = {
    busy: 0,
    server: new LoopbackServer((call) => {
      if (call.path !== "/services/collector/event")
        return json(404, { text: "The requested URL was not found on this server.", code: 404 });
      const auth = call.headers.authorization;
      if (!auth) return json(401, { text: "Token is required", code: 2 });
      if (auth !== `Splunk ${token}`) return json(403, { text: "Invalid token", code: 4 });
      if (hec.busy > 0) {
        hec.busy--;
        return json(503, { text: "Server is busy", code: 9 });
      }
      try {
        const body = JSON.parse(call.body) as { event?: unknown };
        if (body.event === undefined) return json(400, { text: "Event field is required", code: 12 });
      } catch {
        return json(400, { text: "Invalid data format", code: 6 });
      }
      return json(200, { text: "Success", code: 0 });
    }),
  };
  return hec;
}
