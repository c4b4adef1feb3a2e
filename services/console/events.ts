import type { ServerResponse } from "node:http";

/**
 * Live updates for the web console: what changed, as server-sent events on
 * `GET /api/v1/events`. An event says what kind of thing changed (and which task, when one);
 * the page then reads it again through the API, with the caller's own rights. Two sources
 * feed the hub: the console's own stages, as they record a finding or a lifecycle event, and
 * a cheap poll (`ChangeWatch`) of what other processes change (tasks, revocations,
 * approvals, quarantine, incidents), run only while someone listens.
 */
export type ConsoleEventKind = "finding" | "lifecycle" | "tasks" | "revocations" | "approvals" | "quarantine" | "incidents";

export interface ConsoleEvent {
  kind: ConsoleEventKind;
  taskId?: string;
  /** The finding or lifecycle event, for `finding` and `lifecycle`. */
  id?: string;
  atMs: number;
}

/** At most this many open streams: each holds a socket (503 past it). */
export const MAX_EVENT_CLIENTS = 50;
/** A comment line this often keeps proxies and the server's idle timeout (30 s) from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;
/**
 * A stream ends after this long; the page opens a new one, authenticated again. Its token
 * was checked once, when it opened: an expired or withdrawn token keeps no stream for longer.
 */
export const MAX_STREAM_MS = 10 * 60_000;

interface Client {
  res: ServerResponse;
  expiry: NodeJS.Timeout;
}

export class EventHub {
  private readonly clients = new Set<Client>();
  private heartbeat: NodeJS.Timeout | undefined;
  private nextId = 1;

  constructor(
    private readonly maxClients = MAX_EVENT_CLIENTS,
    private readonly maxStreamMs = MAX_STREAM_MS,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  /**
   * Takes over a response as an event stream, until the client goes or the hub closes.
   * False when the hub is full (the caller answers 503).
   */
  attach(res: ServerResponse, onGone?: () => void): boolean {
    // the client went while it was being authenticated: its close has fired, and would not again
    if (res.destroyed || res.writableEnded) return true;
    if (this.clients.size >= this.maxClients) return false;
    const client: Client = { res, expiry: setTimeout(() => res.end(), this.maxStreamMs).unref() };
    this.clients.add(client);
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      // no buffering by a reverse proxy (nginx): an event is worth its latency
      "x-accel-buffering": "no",
    });
    res.write(`retry: 3000\n: connected\n\n`);
    const gone = () => {
      clearTimeout(client.expiry);
      if (!this.clients.delete(client)) return;
      if (this.clients.size === 0) this.stopHeartbeat();
      onGone?.();
    };
    res.on("close", gone);
    res.on("error", gone);
    this.heartbeat ??= setInterval(() => this.write(": heartbeat\n\n"), HEARTBEAT_MS).unref();
    return true;
  }

  publish(event: Omit<ConsoleEvent, "atMs"> & { atMs?: number }): void {
    if (this.clients.size === 0) return;
    const full: ConsoleEvent = { ...event, atMs: event.atMs ?? Date.now() };
    this.write(`id: ${this.nextId++}\nevent: ${full.kind}\ndata: ${JSON.stringify(full)}\n\n`);
  }

  /** Ends every stream (the server is closing: open streams would hold it). */
  close(): void {
    this.stopHeartbeat();
    for (const { res, expiry } of [...this.clients]) {
      clearTimeout(expiry);
      res.end();
    }
    this.clients.clear();
  }

  private write(chunk: string): void {
    for (const { res } of this.clients) if (!res.writableEnded) res.write(chunk);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}

/** What the poll reads: one cheap signature per kind of thing. */
export type ChangeSources = Partial<Record<Exclude<ConsoleEventKind, "lifecycle">, () => Promise<string>>>;

/**
 * Polls what other processes change (the revoker's ledger, approvals, quarantine; the
 * pathfinder's tasks; the notifier's incidents) while the hub has listeners, and publishes a
 * kind once its signature changes. One poll for every client, not one each.
 */
export class ChangeWatch {
  private readonly last = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly hub: EventHub,
    private readonly sources: ChangeSources,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  start(intervalMs: number): void {
    this.timer ??= setInterval(() => void this.poll(), intervalMs).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads every source once; publishes the kinds that changed since the last poll. */
  async poll(): Promise<void> {
    if (this.running || this.hub.size === 0) return;
    this.running = true;
    try {
      for (const [kind, read] of Object.entries(this.sources) as [ConsoleEventKind, () => Promise<string>][]) {
        // one source failing does not keep the others' changes from the pages
        let signature: string;
        try {
          signature = await read();
        } catch (err) {
          this.onError(err);
          continue;
        }
        const before = this.last.get(kind);
        this.last.set(kind, signature);
        if (before !== undefined && before !== signature) this.hub.publish({ kind });
      }
    } finally {
      this.running = false;
    }
  }
}
