import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeProtobuf } from "../../services/ingest/otlp.js";

/** One span of a recording, as ingest decodes it. */
export interface RecordedSpan {
  traceId: string;
  spanId: string;
  name: string;
  startTimeMs: number;
  taskId?: string;
  agentId?: string;
  tool?: string;
}

const text = (v: unknown) => (typeof v === "string" ? v : undefined);

/** The spans of OTLP protobuf files (paths relative to `dir`), decoded with ingest's own decoder. */
export function readRecordings(dir: string, files: readonly string[]): RecordedSpan[] {
  const out: RecordedSpan[] = [];
  for (const f of files) {
    const decoded = decodeProtobuf(readFileSync(join(dir, f)));
    if (decoded.rejected.length > 0) throw new Error(`${f}: ${decoded.rejected.length} span(s) rejected: ${decoded.rejected[0]?.reason}`);
    for (const s of decoded.spans) {
      const taskId = text(s.attributes["agent.task.id"]);
      const agentId = text(s.attributes["gen_ai.agent.id"]);
      const tool = text(s.attributes["gen_ai.tool.name"]);
      out.push({
        traceId: s.traceId,
        spanId: s.spanId,
        name: s.name,
        startTimeMs: Number(s.startTimeUnixNano / 1000n) / 1000,
        ...(taskId ? { taskId } : {}),
        ...(agentId ? { agentId } : {}),
        ...(tool ? { tool } : {}),
      });
    }
  }
  return out;
}

/** Start times by `traceId:spanId`: the timeline the scoring compares flagged steps against. */
export function spanStarts(spans: readonly RecordedSpan[]): Map<string, number> {
  return new Map(spans.map((s) => [`${s.traceId}:${s.spanId}`, s.startTimeMs]));
}
