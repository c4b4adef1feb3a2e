import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";

/**
 * A span exporter that keeps each export as the bytes the OTel JS SDK's own OTLP
 * serializers produce (protobuf or JSON), as an OTLP exporter would have sent them.
 */
export class RecordingExporter implements SpanExporter {
  readonly requests: Uint8Array[] = [];

  constructor(private readonly encoding: "protobuf" | "json" = "protobuf") {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const serializer = this.encoding === "json" ? JsonTraceSerializer : ProtobufTraceSerializer;
    const bytes = serializer.serializeRequest(spans);
    if (bytes) this.requests.push(bytes);
    done({ code: ExportResultCode.SUCCESS });
  }

  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}
