import { TOPICS, topicName } from "../../schemas/topics.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { BadInput, type Emit, type StageLogic } from "../runtime/stage.js";
import { normaliseSpan } from "./normalise.js";
import { type DecodedTraces, decodeTraces, detectEncoding, OtlpDecodeError, type OtlpEncoding } from "./otlp.js";
import { NO_REDACTION, type Redactor } from "./redaction.js";

export interface IngestOptions {
  /** `auto` reads the message's content-type header, else sniffs the bytes; otherwise every message is read so. */
  encoding?: "auto" | OtlpEncoding;
  /** The redaction in force (from the policy); read per batch so policy reloads apply. */
  redactor?: () => Redactor;
}

/**
 * ingest: `otlp_spans` (OTLP export requests, protobuf or JSON) → `agent.actions`, one
 * normalised action per span, keyed by task id. A message that cannot be decoded, and
 * each bad span of a good message, goes to the dead-letter topic with the reason.
 */
/** Ingest reads OTLP requests, never packs: one message, one decoded request. */
export type IngestStage = Omit<StageLogic<DecodedTraces>, "parse"> & { parse(message: BusMessage): DecodedTraces };

export function ingestStage(topicPrefix: string, now: () => number = Date.now, options: IngestOptions = {}): IngestStage {
  const output = topicName(topicPrefix, TOPICS.actions);
  const fixed = options.encoding && options.encoding !== "auto" ? options.encoding : undefined;
  const redactor = options.redactor ?? (() => NO_REDACTION);
  return {
    name: "ingest",
    input: topicName(topicPrefix, TOPICS.otlpSpans),
    parse(message: BusMessage): DecodedTraces {
      if (message.value.length === 0) throw new BadInput("empty message");
      const encoding = fixed ?? detectEncoding(message.value, message.headers["content-type"]);
      try {
        return decodeTraces(message.value, encoding);
      } catch (err) {
        if (err instanceof OtlpDecodeError) throw new BadInput(err.message);
        throw err;
      }
    },
    async handle(items, reject): Promise<Emit[]> {
      const emits: Emit[] = [];
      const receivedAt = now();
      const redact = redactor();
      for (const { message, value } of items) {
        const problems = value.rejected.map((r) => r.reason);
        for (const span of value.spans) {
          try {
            const action = normaliseSpan(span, receivedAt, redact);
            emits.push({ topic: output, message: { key: action.taskId, value: JSON.stringify(action) } });
          } catch (err) {
            problems.push((err as Error).message);
          }
        }
        if (problems.length > 0) {
          const total = value.spans.length + value.rejected.length;
          reject(message, `${problems.length} of ${total} spans rejected: ${problems.slice(0, 5).join("; ")}`);
        }
      }
      return emits;
    },
  };
}
