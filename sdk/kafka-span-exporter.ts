import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { Kafka, type KafkaConfig, logLevel, Partitioners, type Producer } from "kafkajs";

/**
 * A span exporter for the OpenTelemetry Node SDK that writes OTLP protobuf straight to
 * Driftwatch's `otlp_spans` topic, so Node agents can skip the OTLP/HTTP gateway. It
 * writes what the OTel Collector's Kafka exporter writes with `partition_traces_by_id`:
 * one ExportTraceServiceRequest per trace, keyed by the trace id in lowercase hex.
 *
 *   new NodeSDK({ traceExporter: new KafkaSpanExporter({ brokers: ["kafka:9092"] }) })
 */
export interface KafkaSpanExporterOptions {
  brokers?: string[];
  /** Default `otlp_spans`. */
  topic?: string;
  clientId?: string;
  /** Extra kafkajs settings (SSL, SASL, ...). */
  kafka?: Omit<KafkaConfig, "brokers" | "clientId">;
  /** A producer you manage yourself; the exporter then neither connects nor disconnects it. */
  producer?: Producer;
}

export class KafkaSpanExporter implements SpanExporter {
  private readonly topic: string;
  private readonly producer: Producer;
  private readonly ownsProducer: boolean;
  private connected: Promise<void> | undefined;
  private readonly pending = new Set<Promise<void>>();
  private shutDown = false;

  constructor(options: KafkaSpanExporterOptions) {
    this.topic = options.topic ?? "otlp_spans";
    if (options.producer) {
      this.producer = options.producer;
      this.ownsProducer = false;
    } else {
      if (!options.brokers?.length) throw new Error("KafkaSpanExporter needs brokers or a producer");
      const kafka = new Kafka({
        logLevel: logLevel.WARN,
        ...options.kafka,
        brokers: options.brokers,
        clientId: options.clientId ?? "otel-kafka-span-exporter",
      });
      this.producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
      this.ownsProducer = true;
    }
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.shutDown) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error("exporter is shut down") });
      return;
    }
    const sending = this.send(spans).then(
      () => resultCallback({ code: ExportResultCode.SUCCESS }),
      (error: Error) => resultCallback({ code: ExportResultCode.FAILED, error }),
    );
    this.pending.add(sending);
    void sending.finally(() => this.pending.delete(sending));
  }

  private async send(spans: ReadableSpan[]): Promise<void> {
    const byTrace = new Map<string, ReadableSpan[]>();
    for (const span of spans) {
      const traceId = span.spanContext().traceId;
      const list = byTrace.get(traceId) ?? [];
      list.push(span);
      byTrace.set(traceId, list);
    }
    const messages = [...byTrace].map(([traceId, traceSpans]) => {
      const bytes = ProtobufTraceSerializer.serializeRequest(traceSpans);
      if (!bytes) throw new Error("OTLP serialization failed");
      return { key: traceId, value: Buffer.from(bytes), headers: { "content-type": "application/x-protobuf" } };
    });
    if (this.ownsProducer) {
      this.connected ??= this.producer.connect().catch((err: unknown) => {
        this.connected = undefined;
        throw err;
      });
      await this.connected;
    }
    await this.producer.send({ topic: this.topic, acks: -1, messages });
  }

  async forceFlush(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  async shutdown(): Promise<void> {
    this.shutDown = true;
    await this.forceFlush();
    if (this.ownsProducer && this.connected) await this.producer.disconnect();
  }
}
