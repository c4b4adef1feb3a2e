import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A credential store on loopback for the latency benchmark: it answers every POST 200 and
 * notes, per credential, when it wrote its first 2xx (wall clock, the clock every other
 * timestamp of the benchmark is on) and how many requests it received. It reads
 * `credential_id` from the JSON body (the revocation webhook's body, and the baseline relay's).
 */
export class TimestampingStore {
  /** Credential id → when its first 2xx was written (epoch ms, fractional). */
  readonly answeredAt = new Map<string, number>();
  /** Credential id → requests received for it (a credential revoked exactly once: 1). */
  readonly requestsFor = new Map<string, number>();
  requests = 0;
  private server: Server | undefined;
  url = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.requests++;
        let credential: string | undefined;
        try {
          credential = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { credential_id?: string }).credential_id;
        } catch {
          /* not ours */
        }
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
        if (!credential) return;
        this.requestsFor.set(credential, (this.requestsFor.get(credential) ?? 0) + 1);
        if (!this.answeredAt.has(credential)) this.answeredAt.set(credential, nowMs());
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/revoke`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

/** Wall-clock time in ms with sub-millisecond resolution (performance.timeOrigin + now()). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
