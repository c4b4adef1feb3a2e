import type { Severity } from "../../../schemas/finding.js";
import type { IncidentUpdate } from "../../../schemas/incident.js";

/**
 * How one send went. `permanent`: the sink refused this update; sending it again will not
 * help. `notSent`: nothing went out (the endpoint's circuit is open), so it does not count
 * as a round.
 */
export interface SendResult {
  ok: boolean;
  detail: string;
  permanent?: boolean;
  notSent?: boolean;
}

/** Whether a delivery that failed sent nothing at all (its endpoint's circuit was open). */
export function nothingSent(outcome: { circuitOpen?: boolean; attempts: number }): boolean {
  return outcome.circuitOpen === true && outcome.attempts === 0;
}

/**
 * A place SOC alerts go. One file per sink in this folder, its test beside it; the HTTP
 * sinks all send through one `Delivery` (time-outs, retries with backoff and jitter,
 * Retry-After, a circuit per endpoint). An output sends one incident version per call and
 * should not throw (a throw counts as a failure to retry). The dispatcher decides what to
 * send: each version once, in order, at or above `minSeverity`, again later when it failed.
 */
export interface AlertOutput {
  /** Unique among the notifier's outputs and stable across restarts: it names the output's marks in the store. */
  readonly name: string;
  /** Incident versions below this severity are not sent here. */
  readonly minSeverity: Severity;
  send(update: IncidentUpdate): Promise<SendResult>;
  /** Releases sockets and files. */
  close?(): Promise<void>;
}

/** A failed send, for logs and dead letters: the outcome and the start of the sink's own error text (never a request header). */
export function refusal(prefix: string, outcome: { status?: number; detail: string; body?: string }): string {
  const said = outcome.body?.replace(/\s+/g, " ").trim().slice(0, 200);
  return `${prefix}: ${outcome.detail}${said ? ` (${said})` : ""}`;
}
