import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { PartitionLag } from "./bus/bus.js";

/** How long a scrape waits for the bus to say a stage's lag. */
const LAG_READ_TIMEOUT_MS = 2_000;

/** The process's own metrics, served on /metrics in Prometheus text format. */
export class Metrics {
  readonly registry = new Registry();
  readonly messagesIn = new Counter({
    name: "driftwatch_stage_messages_in_total",
    help: "Messages a stage consumed",
    labelNames: ["stage"],
    registers: [this.registry],
  });
  readonly messagesOut = new Counter({
    name: "driftwatch_stage_messages_out_total",
    help: "Messages a stage produced",
    labelNames: ["stage", "topic"],
    registers: [this.registry],
  });
  readonly messagesHandled = new Counter({
    name: "driftwatch_stage_messages_handled_total",
    help: "Messages a stage finished: their output durably written, their offsets ready to commit",
    labelNames: ["stage"],
    registers: [this.registry],
  });
  readonly deadLetters = new Counter({
    name: "driftwatch_deadletters_total",
    help: "Messages or spans set aside as bad input",
    labelNames: ["stage"],
    registers: [this.registry],
  });
  readonly batchSeconds = new Histogram({
    name: "driftwatch_stage_batch_seconds",
    help: "Time to handle one batch, output produced",
    labelNames: ["stage"],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly findings = new Counter({
    name: "driftwatch_findings_total",
    help: "Findings produced by the detector",
    labelNames: ["rule", "severity"],
    registers: [this.registry],
  });
  readonly detectionLatency = new Histogram({
    name: "driftwatch_detection_latency_seconds",
    help: "From a flagged span's end to its finding",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly baselineTasks = new Counter({
    name: "driftwatch_baseline_tasks_total",
    help: "Finished tasks the baseline learner looked at: learned, excluded (a policy finding on them, or revoked) or held (an anomaly alert on them: learned after the hold)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly revocations = new Counter({
    name: "driftwatch_revocations_total",
    help: "Credential revocations by outcome",
    labelNames: ["store", "status"],
    registers: [this.registry],
  });
  readonly revocationLatency = new Histogram({
    name: "driftwatch_revocation_latency_seconds",
    help: "From a finding's detection to the credential store's 2xx, per revoked credential",
    labelNames: ["store", "trigger"],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly deliveryAttempts = new Counter({
    name: "driftwatch_delivery_attempts_total",
    help: "Outgoing HTTP requests (credential stores, SOC sinks) by endpoint and result: ok, retryable, permanent",
    labelNames: ["endpoint", "result"],
    registers: [this.registry],
  });
  readonly deliveryGaveUp = new Counter({
    name: "driftwatch_delivery_gave_up_total",
    help: "Deliveries given up after their last attempt or time budget, or refused by an open circuit",
    labelNames: ["endpoint", "reason"],
    registers: [this.registry],
  });
  readonly circuitOpen = new Gauge({
    name: "driftwatch_delivery_circuit_open",
    help: "1 while an endpoint's circuit breaker is open or half-open",
    labelNames: ["endpoint"],
    registers: [this.registry],
  });
  readonly spansReceived = new Counter({
    name: "driftwatch_otlp_spans_received_total",
    help: "Spans accepted by the OTLP/HTTP gateway",
    registers: [this.registry],
  });
  readonly otlpRejected = new Counter({
    name: "driftwatch_otlp_rejected_requests_total",
    help: "OTLP/HTTP requests the gateway refused, by reason: rate_limited, span_budget, too_many_spans, too_many_traces, malformed, body_too_large, unsupported_media_type, unsupported_encoding, backpressure, bus_unavailable",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly storeTasks = new Gauge({
    name: "driftwatch_store_tasks",
    help: "Tasks the embedded (in-memory) store holds",
    registers: [this.registry],
  });
  readonly storeEvictedTasks = new Counter({
    name: "driftwatch_store_evicted_tasks_total",
    help: "Tasks the embedded store evicted (least recently active first) to stay within DRIFTWATCH_EMBEDDED_MAX_TASKS",
    registers: [this.registry],
  });
  readonly storeEvictedRecords = new Counter({
    name: "driftwatch_store_evicted_records_total",
    help: "Findings, incidents and revocations the embedded store let go (the oldest first) to stay within its bounds",
    labelNames: ["kind"],
    registers: [this.registry],
  });
  readonly up = new Gauge({ name: "driftwatch_up", help: "1 while the process runs", registers: [this.registry] });
  /** Where each running stage's lag is read from, at every scrape (see `watchLag`). */
  private readonly lagSources = new Map<string, () => Promise<PartitionLag[]>>();
  readonly consumerLag = new Gauge({
    name: "driftwatch_consumer_lag",
    help: "Messages on a stage's input partition not yet committed by its consumer group (end offset less committed offset), read at scrape time",
    labelNames: ["stage", "topic", "partition"],
    registers: [this.registry],
    collect: () => this.readLagOnce(),
  });
  readonly lagReadFailures = new Counter({
    name: "driftwatch_consumer_lag_read_failures_total",
    help: "Scrapes at which a stage's consumer lag could not be read from the bus (its series are left out)",
    labelNames: ["stage"],
    registers: [this.registry],
    // the registry collects its metrics concurrently: this one waits for the gauge's reading
    collect: () => this.readLagOnce(),
  });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
    this.up.set(1);
  }

  /** Reports `stage`'s consumer lag from `read` until the returned function is called. */
  watchLag(stage: string, read: () => Promise<PartitionLag[]>): () => void {
    this.lagSources.set(stage, read);
    return () => {
      if (this.lagSources.get(stage) === read) this.lagSources.delete(stage);
    };
  }

  private lagReading: Promise<void> | undefined;

  /** One reading of every stage's lag per scrape, however many metrics wait for it. */
  private readLagOnce(): Promise<void> {
    this.lagReading ??= this.readLag().finally(() => {
      this.lagReading = undefined;
    });
    return this.lagReading;
  }

  private async readLag(): Promise<void> {
    // read fresh at every scrape: a stage that stopped committing shows its lag growing
    this.consumerLag.reset();
    await Promise.all(
      [...this.lagSources].map(async ([stage, read]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          const lags = await Promise.race([
            read(),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error("timed out")), LAG_READ_TIMEOUT_MS);
            }),
          ]);
          for (const { topic, partition, lag } of lags) this.consumerLag.set({ stage, topic, partition: String(partition) }, lag);
        } catch {
          this.lagReadFailures.inc({ stage });
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }
}
