import { DEADLETTER_LIMITS, type DeadLetterSpan } from "../../schemas/deadletter.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { verifySender } from "../runtime/sender-signature.js";
import { BadInput, type Emit, type StageLogic } from "../runtime/stage.js";
import { badSpanExcerpt, requestIndexes, screenedPrefix } from "./deadletter-excerpt.js";
import { normaliseSpan } from "./normalise.js";
import { type DecodedTraces, decodeTraces, detectEncoding, OtlpDecodeError, type OtlpEncoding } from "./otlp.js";
import { NO_REDACTION, type Redactor } from "./redaction.js";
import { withSender } from "./sender.js";

export interface IngestOptions {
  /** `auto` reads the message's content-type header, else sniffs the bytes; otherwise every message is read so. */
  encoding?: "auto" | OtlpEncoding;
  /** The redaction in force (from the policy); read per batch so policy reloads apply. */
  redactor?: () => Redactor;
  /**
   * The key the gateway signs senders with (runtime/sender-signature.ts): a message whose
   * sender's signature does not verify is dead-lettered as forged.
   */
  senderKey?: Buffer;
  /** Messages with no signed sender (a Collector writing to the topic itself) are dead-lettered too. */
  requireSender?: boolean;
}

/**
 * ingest: `otlp_spans` (OTLP export requests, protobuf or JSON) → `agent.actions`, one
 * normalised action per span, keyed by task id. A message that cannot be decoded, and
 * each bad span of a good message, goes to the dead-letter topic with the reason and only
 * the offending part, redacted: the start of undecodable bytes (cut before anything the
 * redaction policy names), or the bad spans' ids and excerpts (deadletter-excerpt.ts).
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
        if (err instanceof OtlpDecodeError) {
          const prefix = screenedPrefix(message.value, redactor());
          throw new BadInput(err.message, prefix ? { prefix } : {});
        }
        throw err;
      }
    },
    async handle(items, reject): Promise<Emit[]> {
      const emits: Emit[] = [];
      const receivedAt = now();
      const redact = redactor();
      for (const { message, value } of items) {
        const check = verifySender(options.senderKey, message.headers, message.value);
        if ("forged" in check || ("unsigned" in check && options.requireSender)) {
          reject(
            message,
            "forged" in check
              ? `forged sender: ${check.forged}`
              : "no signed sender, and this ingest requires one (DRIFTWATCH_INGEST_REQUIRE_SENDER)",
          );
          continue;
        }
        const problems = value.rejected.map((r) => r.reason);
        const failed: { at: number; reason: string }[] = [];
        for (const [at, span] of value.spans.entries()) {
          try {
            const normalised = normaliseSpan(span, receivedAt, redact);
            const action = "sender" in check ? withSender(normalised, check.sender) : normalised;
            emits.push({ topic: output, message: { key: action.taskId, value: JSON.stringify(action) } });
          } catch (err) {
            problems.push((err as Error).message);
            if (failed.length < DEADLETTER_LIMITS.spans) failed.push({ at, reason: (err as Error).message });
          }
        }
        if (problems.length > 0) {
          const total = value.spans.length + value.rejected.length;
          // the offending spans only: the decoder's (bad ids, quoted in the reason), then normalising's, with redacted excerpts
          const spans: DeadLetterSpan[] = value.rejected
            .slice(0, DEADLETTER_LIMITS.spans)
            .map((r) => ({ index: r.index, reason: r.reason }));
          const indexOf = requestIndexes(value);
          for (const f of failed.slice(0, DEADLETTER_LIMITS.spans - spans.length)) {
            const span = value.spans[f.at] as DecodedTraces["spans"][number];
            spans.push({
              index: indexOf(f.at),
              traceId: span.traceId,
              spanId: span.spanId,
              reason: f.reason,
              excerpt: badSpanExcerpt(span, redact),
            });
          }
          reject(message, `${problems.length} of ${total} spans rejected: ${problems.slice(0, 5).join("; ")}`, {
            spans,
            rejectedSpans: problems.length,
          });
        }
      }
      return emits;
    },
  };
}
