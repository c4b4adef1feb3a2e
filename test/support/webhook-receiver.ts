import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

/**
 * A real HTTP server standing in for a credential store or a SOC endpoint: it records
 * every request and checks its Standard Webhooks signature with the shared secret.
 */
export interface ReceivedWebhook {
  id: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  signatureValid: boolean;
}

export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private server: Server | undefined;
  url = "";

  constructor(
    readonly secret: string,
    private readonly status: () => number = () => 200,
  ) {}

  async start(): Promise<this> {
    const verifier = new Webhook(this.secret);
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        let signatureValid = true;
        try {
          verifier.verify(raw, {
            "webhook-id": String(req.headers["webhook-id"]),
            "webhook-timestamp": String(req.headers["webhook-timestamp"]),
            "webhook-signature": String(req.headers["webhook-signature"]),
          });
        } catch {
          signatureValid = false;
        }
        let body: unknown = raw;
        try {
          body = JSON.parse(raw);
        } catch {
          /* keep the raw text */
        }
        this.received.push({ id: String(req.headers["webhook-id"]), headers: req.headers, body, signatureValid });
        res.writeHead(this.status()).end();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A fresh Standard Webhooks secret. */
export function newSecret(): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
}
