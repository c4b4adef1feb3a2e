import { type Dispatcher, request as undiciRequest } from "undici";
/**
 * Outgoing HTTP delivery: the one module every adapter that calls an outside system uses
 * (credential stores, SOC webhooks). It sends one request with
 *
 * - a time-out per attempt (per endpoint: each request may set its own);
 * - retries with exponential backoff and full jitter, up to `maxAttempts` and within a
 *   total time budget; `Retry-After` (seconds or an HTTP-date) is honoured, capped by
 *   `maxDelayMs`;
 * - retryable: network errors, time-outs, 408, 429 and 5xx; any other non-2xx answer is
 *   permanent (the endpoint refused this request; sending it again will not help);
 * - a circuit breaker per endpoint: after `failureThreshold` consecutive retryable
 *   failures it opens and requests fail at once; after `coolDownMs` it is half-open and
 *   lets one trial request through, whose answer closes or re-opens it.
 *
 * It never throws: every request ends in a `DeliveryOutcome`. Metrics come out through
 * the optional `onEvent` callback.
 */

export type CircuitState = "closed" | "open" | "half-open";

export interface RetryPolicy {
  /** Attempts in all, the first one included (at least 1). */
  maxAttempts: number;
  /** The wait before the second attempt is drawn from [0, baseDelayMs); the bound doubles for each later one. */
  baseDelayMs: number;
  /** No single wait is longer, a `Retry-After` included. */
  maxDelayMs: number;
  /** No retry is started once this long has passed since the first attempt began, or would have by the end of its wait. */
  budgetMs?: number;
}

export interface CircuitPolicy {
  /** Consecutive retryable failures that open an endpoint's circuit. */
  failureThreshold: number;
  /** How long an open circuit refuses requests before it lets one trial through. */
  coolDownMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 10_000, budgetMs: 30_000 };
export const DEFAULT_CIRCUIT: CircuitPolicy = { failureThreshold: 5, coolDownMs: 30_000 };

export interface DeliveryRequest {
  url: string;
  /** The circuit this request counts toward; by default the URL's origin and path (without the query). */
  endpoint?: string;
  method?: string;
  /** Headers, or a function called before each attempt (a fresh signature, a rotated token). */
  headers?: Record<string, string> | (() => Record<string, string>);
  body?: string;
  /** This request's time-out per attempt; the delivery's default otherwise. */
  timeoutMs?: number;
}

export interface DeliveryOutcome {
  /** A 2xx answer. */
  ok: boolean;
  /** The last answer's HTTP status; absent when no answer came (network error, time-out, circuit open). */
  status?: number;
  /** Requests sent. 0 when the circuit refused the first one or the request could not be prepared. */
  attempts: number;
  /** What happened, for people: "HTTP 503", "timed out after 5000 ms", "circuit open ...". Never holds a header value. */
  detail: string;
  /** The endpoint refused the request (a 4xx other than 408 and 429): retrying it will not help. */
  permanent?: boolean;
  /** The endpoint's circuit was open, so the request (or its next retry) was not sent. */
  circuitOpen?: boolean;
  /** The start of the last answer's body (up to 4 KiB), for adapters that read error details. */
  body?: string;
}

export interface CircuitSnapshot {
  endpoint: string;
  state: CircuitState;
  consecutiveFailures: number;
  /** When an open circuit lets its trial through. */
  retryAtMs?: number;
}

export type DeliveryEvent =
  | {
      kind: "attempt";
      endpoint: string;
      attempt: number;
      result: "ok" | "retryable" | "permanent";
      status?: number;
      durationMs: number;
    }
  | { kind: "retry"; endpoint: string; attempt: number; delayMs: number; retryAfterMs?: number }
  | { kind: "circuit"; endpoint: string; from: CircuitState; to: CircuitState }
  | { kind: "rejected"; endpoint: string }
  | { kind: "gave-up"; endpoint: string; reason: "attempts" | "budget"; attempts: number };

export interface DeliveryOptions {
  /** Time-out of one attempt, unless the request sets its own. */
  timeoutMs: number;
  retry?: Partial<RetryPolicy>;
  /** `false` turns the circuit breaker off. */
  circuit?: CircuitPolicy | false;
  /** Called for each attempt, retry, circuit change, refusal and give-up (metrics). Errors in it are ignored. */
  onEvent?: (event: DeliveryEvent) => void;
  userAgent?: string;
  /** Test seams. */
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const BODY_LIMIT = 4096;

/** The full-jitter backoff before retry number `retry` (1 = before the second attempt): uniform in [0, min(max, base·2^(retry-1))). */
export function backoffDelay(
  retry: number,
  policy: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs">,
  random: () => number = Math.random,
): number {
  const bound = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(Math.min(random(), 1 - Number.EPSILON) * bound);
}

/** A `Retry-After` value (delay-seconds or an HTTP-date) in ms from `nowMs`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined; // a bare negative or decimal number is not an HTTP-date
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Retryable statuses: 408 Request Timeout, 429 Too Many Requests, every 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

class Circuit {
  state: CircuitState = "closed";
  failures = 0;
  openedAtMs = 0;
  private trialInFlight = false;

  constructor(
    private readonly endpoint: string,
    private readonly policy: CircuitPolicy,
    private readonly now: () => number,
    private readonly emit: (e: DeliveryEvent) => void,
  ) {}

  /** May a request go now? An open circuit past its cool-down becomes half-open and lets exactly one through. */
  acquire(): "go" | "trial" | "reject" {
    if (this.state === "open" && this.now() - this.openedAtMs >= this.policy.coolDownMs) this.move("half-open");
    if (this.state === "closed") return "go";
    if (this.state === "half-open" && !this.trialInFlight) {
      this.trialInFlight = true;
      return "trial";
    }
    return "reject";
  }

  /** The endpoint answered (2xx, or a permanent refusal: it is up). */
  answered(): void {
    this.trialInFlight = false;
    this.failures = 0;
    if (this.state !== "closed") this.move("closed");
  }

  /** The trial was not sent after all: the next request may be the trial. */
  release(): void {
    this.trialInFlight = false;
  }

  /** A retryable failure. */
  failed(): void {
    this.trialInFlight = false;
    this.failures++;
    if (this.state === "half-open" || (this.state === "closed" && this.failures >= this.policy.failureThreshold)) {
      this.openedAtMs = this.now();
      this.move("open");
    }
  }

  snapshot(): CircuitSnapshot {
    const coolDownOver = this.state === "open" && this.now() - this.openedAtMs >= this.policy.coolDownMs;
    return {
      endpoint: this.endpoint,
      state: coolDownOver ? "half-open" : this.state,
      consecutiveFailures: this.failures,
      ...(this.state === "open" ? { retryAtMs: this.openedAtMs + this.policy.coolDownMs } : {}),
    };
  }

  private move(to: CircuitState): void {
    const from = this.state;
    this.state = to;
    this.emit({ kind: "circuit", endpoint: this.endpoint, from, to });
  }
}

interface AttemptResult {
  ok: boolean;
  retryable: boolean;
  status?: number;
  detail: string;
  body?: string;
  retryAfterMs?: number;
}

export class Delivery {
  private readonly retry: RetryPolicy;
  private readonly circuitPolicy: CircuitPolicy | false;
  private readonly circuitsByEndpoint = new Map<string, Circuit>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: DeliveryOptions) {
    const given = Object.fromEntries(Object.entries(options.retry ?? {}).filter(([, v]) => v !== undefined));
    this.retry = { ...DEFAULT_RETRY, ...given };
    this.retry.maxAttempts = Math.max(1, Math.floor(this.retry.maxAttempts));
    this.circuitPolicy = options.circuit === undefined ? DEFAULT_CIRCUIT : options.circuit;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** The state of one endpoint's circuit (closed when it has seen no request). */
  circuit(endpoint: string): CircuitSnapshot {
    return this.circuitsByEndpoint.get(endpoint)?.snapshot() ?? { endpoint, state: "closed", consecutiveFailures: 0 };
  }

  /** Every endpoint's circuit. */
  circuits(): CircuitSnapshot[] {
    return [...this.circuitsByEndpoint.values()].map((c) => c.snapshot());
  }

  /** Sends the request, retrying as the policy allows. Never throws. */
  async send(request: DeliveryRequest): Promise<DeliveryOutcome> {
    try {
      return await this.deliver(request);
    } catch (err) {
      return { ok: false, attempts: 0, detail: `delivery failed: ${(err as Error).message}` };
    }
  }

  private async deliver(request: DeliveryRequest): Promise<DeliveryOutcome> {
    const endpoint = request.endpoint ?? endpointOf(request.url);
    const circuit = this.circuitFor(endpoint);
    const startedAt = this.now();
    let last: AttemptResult | undefined;
    for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
      const permit = circuit?.acquire() ?? "go";
      if (permit === "reject") {
        this.emit({ kind: "rejected", endpoint });
        const open = `circuit open for ${endpoint}`;
        return {
          ok: false,
          attempts: attempt - 1,
          detail: last ? `${last.detail}; ${open}` : open,
          circuitOpen: true,
          ...(last?.status !== undefined ? { status: last.status } : {}),
        };
      }
      let headers: Record<string, string>;
      try {
        headers = typeof request.headers === "function" ? request.headers() : (request.headers ?? {});
      } catch (err) {
        if (permit === "trial") circuit?.release(); // nothing was sent: the state stands, the next request is the trial
        return { ok: false, attempts: attempt - 1, detail: `could not prepare the request: ${(err as Error).message}` };
      }
      const began = this.now();
      last = await this.attempt(request, headers);
      const result = last.ok ? "ok" : last.retryable ? "retryable" : "permanent";
      this.emit({
        kind: "attempt",
        endpoint,
        attempt,
        result,
        durationMs: this.now() - began,
        ...(last.status !== undefined ? { status: last.status } : {}),
      });
      if (!last.retryable) {
        circuit?.answered();
        return outcome(last, attempt);
      }
      circuit?.failed();
      if (circuit?.state === "open") {
        // this failure opened the circuit (or a trial failed): no point waiting to be refused
        return { ...outcome(last, attempt), detail: `${last.detail}; circuit open for ${endpoint}`, circuitOpen: true };
      }
      if (attempt === this.retry.maxAttempts) {
        this.emit({ kind: "gave-up", endpoint, reason: "attempts", attempts: attempt });
        return outcome(last, attempt);
      }
      const delayMs =
        last.retryAfterMs !== undefined
          ? Math.min(last.retryAfterMs, this.retry.maxDelayMs)
          : backoffDelay(attempt, this.retry, this.random);
      if (this.retry.budgetMs !== undefined && this.now() - startedAt + delayMs >= this.retry.budgetMs) {
        this.emit({ kind: "gave-up", endpoint, reason: "budget", attempts: attempt });
        return { ...outcome(last, attempt), detail: `${last.detail}; retry budget of ${this.retry.budgetMs} ms spent` };
      }
      this.emit({
        kind: "retry",
        endpoint,
        attempt,
        delayMs,
        ...(last.retryAfterMs !== undefined ? { retryAfterMs: last.retryAfterMs } : {}),
      });
      if (delayMs > 0) await this.sleep(delayMs);
    }
    // not reached: the loop returns on its last attempt
    return { ok: false, attempts: this.retry.maxAttempts, detail: last?.detail ?? "not attempted" };
  }

  private async attempt(request: DeliveryRequest, headers: Record<string, string>): Promise<AttemptResult> {
    const timeoutMs = request.timeoutMs ?? this.options.timeoutMs;
    // undici's request rather than fetch: the same client underneath, without the WHATWG
    // Response and streams around every answer (a third of a busy revoker's CPU with fetch)
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await undiciRequest(request.url, {
        method: (request.method ?? "POST") as Dispatcher.HttpMethod,
        headers: { "user-agent": this.options.userAgent ?? "driftwatch", ...headers },
        ...(request.body !== undefined ? { body: request.body } : {}),
        signal,
      });
      const body = await readStart(res.body);
      const status = res.statusCode;
      if (status >= 200 && status < 300) return { ok: true, retryable: false, status, detail: `HTTP ${status}`, body };
      const retryable = isRetryableStatus(status);
      const header = res.headers["retry-after"];
      const retryAfterMs = retryable
        ? parseRetryAfter(Array.isArray(header) ? (header[0] ?? null) : (header ?? null), this.now())
        : undefined;
      return { ok: false, retryable, status, detail: `HTTP ${status}`, body, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    } catch (err) {
      return { ok: false, retryable: true, detail: describeError(signal.aborted ? signal.reason : err, timeoutMs) };
    }
  }

  private circuitFor(endpoint: string): Circuit | undefined {
    if (!this.circuitPolicy) return undefined;
    let c = this.circuitsByEndpoint.get(endpoint);
    if (!c) {
      c = new Circuit(endpoint, this.circuitPolicy, this.now, (e) => this.emit(e));
      this.circuitsByEndpoint.set(endpoint, c);
    }
    return c;
  }

  private emit(event: DeliveryEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      /* a metrics hook must not break delivery */
    }
  }
}

function outcome(r: AttemptResult, attempts: number): DeliveryOutcome {
  return {
    ok: r.ok,
    attempts,
    detail: r.detail,
    ...(r.status !== undefined ? { status: r.status } : {}),
    ...(!r.ok && !r.retryable ? { permanent: true } : {}),
    ...(r.body ? { body: r.body } : {}),
  };
}

/** The default circuit key: scheme, host, port and path, no query (which may carry ids). */
export function endpointOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url;
  }
}

/** The first BODY_LIMIT bytes of the body as text; the rest is discarded unread. */
async function readStart(body: Dispatcher.ResponseData["body"]): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      chunks.push(buf);
      size += buf.byteLength;
      if (size >= BODY_LIMIT) break;
    }
  } finally {
    if (!body.destroyed) body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, BODY_LIMIT).toString("utf8");
}

function describeError(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return `timed out after ${timeoutMs} ms`;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message}: ${cause}` : (e?.message ?? String(err));
}
