import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A real HTTP server on 127.0.0.1 standing in for an outside system, with switchable
 * outages: `stop()` (connection refused until `start()` binds the same port again), and
 * per request `"500"` (an error), `"slow"` (answers after `slowMs`, past a client's
 * time-out; the request still takes effect, as on a slow server), `"429"` (too many
 * requests, with `Retry-After: retryAfter`). Every request is recorded.
 */
export type Outage = "none" | "500" | "slow" | "429";

export interface IncomingCall {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface RecordedCall extends IncomingCall {
  /** The status answered; for a slow answer, the one written after the delay. */
  status: number;
  outage: Outage;
  atMs: number;
  /**
   * Whether the answer went out on an open connection. False when the client had already
   * gone (a slow answer past its time-out): the request may have taken effect, but the
   * client never learnt it.
   */
  delivered: boolean;
}

export class LoopbackServer {
  readonly calls: RecordedCall[] = [];
  /** The outage for every request not covered by `script`. */
  outage: Outage = "none";
  /** Outages for the next requests, one each, before `outage` applies again. */
  readonly script: Outage[] = [];
  slowMs = 1000;
  retryAfter = "1";
  private server: Server | undefined;
  private port = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly handle: (call: IncomingCall) => Answer | Promise<Answer>) {}

  /** The server's base URL, e.g. http://127.0.0.1:40123 (no trailing slash). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<this> {
    if (this.server) return this;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const call: IncomingCall = {
          method: req.method ?? "",
          path: req.url ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        };
        const outage = this.script.shift() ?? this.outage;
        const reply = (answer: Answer) => {
          this.calls.push({ ...call, status: answer.status, outage, atMs: Date.now(), delivered: !res.destroyed });
          if (res.destroyed) return;
          res.writeHead(answer.status, answer.headers).end(answer.body);
        };
        const handled = () =>
          Promise.resolve()
            .then(() => this.handle(call))
            .then(reply, (err: Error) => reply({ status: 599, body: err.message }));
        if (outage === "500")
          reply({ status: 500, headers: { "content-type": "application/json" }, body: '{"errors":["internal error"]}' });
        else if (outage === "429") reply({ status: 429, headers: { "retry-after": this.retryAfter }, body: "" });
        else if (outage === "slow") {
          const t = setTimeout(() => {
            this.timers.delete(t);
            void handled();
          }, this.slowMs);
          this.timers.add(t);
        } else void handled();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Stops listening and drops every connection: calls are refused until `start()`. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** Clears the recorded calls and outages, and drops slow answers still pending. */
  reset(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.calls.length = 0;
    this.script.length = 0;
    this.outage = "none";
  }
}

export const json = (status: number, value: unknown): Answer => ({
  status,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(value),
});
