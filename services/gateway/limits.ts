import type { FastifyRequest } from "fastify";

/**
 * Per-client bounds of the OTLP/HTTP gateway: requests per second and spans per minute per
 * client, each a token bucket, and caps on the spans and distinct traces of one request.
 *
 * A client is whatever the gateway's `clientKey` says: the authenticated sender when agent
 * authentication is on (a client behind a shared address, a Collector or a NAT, has its own
 * budget, and one with many addresses has one), else the remote address.
 */
export interface ClientLimits {
  /** Requests per second per client; the bucket holds one second's worth. */
  requestsPerSecond: number;
  /** Spans per minute per client; the bucket holds one minute's worth. */
  spansPerMinute: number;
  /** Spans in one request (good and bad ones); more: 413. */
  maxSpansPerRequest: number;
  /** Distinct trace ids in one request; more: 413. */
  maxTracesPerRequest: number;
}

/**
 * Sized so that a normal fleet never meets them: an OTel SDK's batch processor sends at
 * most 512 spans a request, a Collector's batch processor 8192 by default; a Collector in
 * front of a large fleet is one client at 10,000 spans/s (raise the budget beyond that, or
 * feed `otlp_spans` from the Collector's Kafka exporter directly).
 */
export const DEFAULT_CLIENT_LIMITS: ClientLimits = {
  requestsPerSecond: 100,
  spansPerMinute: 600_000,
  maxSpansPerRequest: 20_000,
  maxTracesPerRequest: 10_000,
};

/** Who is calling, for the budgets. */
export type ClientKey = (req: FastifyRequest) => string;

export const remoteAddress: ClientKey = (req) => req.ip;

/** A token bucket: `capacity` tokens, refilled at `perMs` tokens a millisecond. */
class Bucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly capacity: number,
    private readonly perMs: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.at = now;
  }

  /** Takes `n` tokens (at most the capacity); 0 when taken, else the milliseconds until they would be there. */
  take(n: number, now: number): number {
    const cost = Math.min(n, this.capacity);
    this.tokens = Math.min(this.capacity, this.tokens + Math.max(0, now - this.at) * this.perMs);
    this.at = now;
    if (this.tokens >= cost) {
      this.tokens -= cost;
      return 0;
    }
    return Math.ceil((cost - this.tokens) / this.perMs);
  }
}

/** Clients remembered at once; the least recently seen is forgotten first (a forgotten client starts full). */
const MAX_CLIENTS = 100_000;

/**
 * Every client's two buckets. Bounded: a client not seen for a while is forgotten, which
 * costs it nothing (its buckets would be full again by then, or nearly).
 */
export class ClientBudgets {
  private readonly clients = new Map<string, { requests: Bucket; spans: Bucket }>();

  constructor(
    private readonly limits: ClientLimits,
    private readonly now: () => number = Date.now,
    private readonly maxClients = MAX_CLIENTS,
  ) {}

  private of(client: string) {
    let c = this.clients.get(client);
    if (c) {
      // least recently seen first: seeing a client moves it to the end
      this.clients.delete(client);
    } else {
      const t = this.now();
      c = {
        requests: new Bucket(this.limits.requestsPerSecond, this.limits.requestsPerSecond / 1000, t),
        spans: new Bucket(this.limits.spansPerMinute, this.limits.spansPerMinute / 60_000, t),
      };
      if (this.clients.size >= this.maxClients) this.clients.delete(this.clients.keys().next().value as string);
    }
    this.clients.set(client, c);
    return c;
  }

  /** One more request from `client`: undefined when allowed, else the whole seconds to wait. */
  takeRequest(client: string): number | undefined {
    const wait = this.of(client).requests.take(1, this.now());
    return wait === 0 ? undefined : Math.max(1, Math.ceil(wait / 1000));
  }

  /** `n` spans from `client`: undefined when allowed (and taken), else the whole seconds to wait. */
  takeSpans(client: string, n: number): number | undefined {
    const wait = this.of(client).spans.take(n, this.now());
    return wait === 0 ? undefined : Math.max(1, Math.ceil(wait / 1000));
  }

  /** Clients remembered (for tests and metrics). */
  get size(): number {
    return this.clients.size;
  }
}

/** Why a request over a per-request cap is refused, or undefined when it is within them. */
export function requestCapProblem(
  limits: Pick<ClientLimits, "maxSpansPerRequest" | "maxTracesPerRequest">,
  spans: number,
  traceIds: Iterable<string>,
): { reason: "too_many_spans" | "too_many_traces"; message: string } | undefined {
  if (spans > limits.maxSpansPerRequest) {
    return {
      reason: "too_many_spans",
      message: `request has ${spans} spans; at most ${limits.maxSpansPerRequest} per request (send smaller batches, e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE)`,
    };
  }
  const traces = new Set<string>();
  for (const t of traceIds) {
    traces.add(t);
    if (traces.size > limits.maxTracesPerRequest) {
      return {
        reason: "too_many_traces",
        message: `request has more than ${limits.maxTracesPerRequest} distinct traces; at most ${limits.maxTracesPerRequest} per request (send smaller batches)`,
      };
    }
  }
  return undefined;
}
