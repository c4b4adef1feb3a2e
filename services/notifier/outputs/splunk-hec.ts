import { hostname } from "node:os";
import type { Severity } from "../../../schemas/finding.js";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import type { Delivery } from "../../runtime/delivery.js";
import { toDetectionFinding } from "../ocsf.js";
import { type AlertOutput, nothingSent, refusal, type SendResult } from "./output.js";

/**
 * Each incident version as one event to a Splunk HTTP Event Collector: `POST
 * /services/collector/event` with `Authorization: Splunk <token>` and the body `{time,
 * host, source, sourcetype, index?, event}`, the event being the OCSF Detection Finding.
 * HEC answers 200 `{"text":"Success","code":0}`; 503 when busy and 429 are retried (the
 * delivery), 400 (bad data), 401 and 403 (token) are refusals. Indexer acknowledgement
 * (channels) is not used.
 */
export interface HecTarget {
  /** The collector's base URL (`https://splunk:8088`), or the full event endpoint. */
  url: string;
  token: string;
  index?: string;
  sourcetype: string;
  source: string;
  host?: string;
  timeoutMs?: number;
}

/** The event endpoint: `/services/collector/event` unless the URL names a path of its own. */
export function hecEventUrl(url: string): string {
  const u = new URL(url);
  if (u.pathname === "" || u.pathname === "/") u.pathname = "/services/collector/event";
  return u.toString();
}

export class SplunkHecOutput implements AlertOutput {
  readonly name = "splunk";
  private readonly url: string;
  private readonly host: string;

  constructor(
    private readonly target: HecTarget,
    private readonly delivery: Delivery,
    readonly minSeverity: Severity = "info",
  ) {
    this.url = hecEventUrl(target.url);
    this.host = target.host ?? hostname();
  }

  /** The HEC event for one incident version. */
  event(update: IncidentUpdate): Record<string, unknown> {
    const ocsf = toDetectionFinding(update);
    return {
      time: ocsf.time / 1000,
      host: this.host,
      source: this.target.source,
      sourcetype: this.target.sourcetype,
      ...(this.target.index ? { index: this.target.index } : {}),
      event: ocsf,
    };
  }

  async send(update: IncidentUpdate): Promise<SendResult> {
    const outcome = await this.delivery.send({
      url: this.url,
      method: "POST",
      headers: { authorization: `Splunk ${this.target.token}`, "content-type": "application/json" },
      body: JSON.stringify(this.event(update)),
      ...(this.target.timeoutMs !== undefined ? { timeoutMs: this.target.timeoutMs } : {}),
    });
    if (outcome.ok) return { ok: true, detail: outcome.detail };
    return {
      ok: false,
      detail: refusal(`Splunk HEC refused incident ${update.incident.id} version ${update.incident.version}`, outcome),
      ...(outcome.permanent ? { permanent: true } : {}),
      ...(nothingSent(outcome) ? { notSent: true } : {}),
    };
  }
}
