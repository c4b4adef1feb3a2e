import type { IdGenerator } from "@opentelemetry/sdk-trace-base";

/** Hands the OTel SDK the trace and span ids a test chose, in order. */
export class QueuedIds implements IdGenerator {
  constructor(
    private readonly traceIds: string[],
    private readonly spanIds: string[],
    private readonly fallbackTraceId = "4bf92f3577b34da6a3ce929d0e0e4736",
  ) {}

  generateTraceId(): string {
    return this.traceIds.shift() ?? this.fallbackTraceId;
  }

  generateSpanId(): string {
    const id = this.spanIds.shift();
    if (!id) throw new Error("test ran out of span ids");
    return id;
  }
}
