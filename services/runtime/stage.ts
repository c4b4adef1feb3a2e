import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { DEADLETTER_LIMITS, type DeadLetter, type DeadLetterSpan } from "../../schemas/deadletter.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { Bus, BusMessage, OutgoingMessage, Subscription } from "./bus/bus.js";
import type { Metrics } from "./telemetry.js";

/**
 * What a dead letter may hold besides the reason and the source: the offending part only
 * (schemas/deadletter.ts). Whoever gives it has already redacted it.
 */
export interface DeadLetterDetail {
  /** The first bytes of undecodable input, cut before anything the redaction policy names. */
  prefix?: Buffer;
  /** The offending spans of a message that decoded. */
  spans?: DeadLetterSpan[];
  /** How many spans were rejected in all. */
  rejectedSpans?: number;
}

/** Bad input: the message is set aside on the dead-letter topic with this reason; the stage goes on. */
export class BadInput extends Error {
  override name = "BadInput";

  constructor(
    message: string,
    readonly detail?: DeadLetterDetail,
  ) {
    super(message);
  }
}

/**
 * Something outside the stage (a SOC endpoint, say) is unavailable: the batch is tried
 * again later, like when the stage's own dependencies are down, and never dead-lettered.
 */
export class Unavailable extends Error {
  override name = "Unavailable";
}

export interface Emit {
  topic: string;
  message: OutgoingMessage;
}

/** What a stage does with one batch of parsed inputs. */
export interface StageLogic<In> {
  name: string;
  input: string;
  /**
   * Turns one message into the stage's input: one value, or several when the message is a
   * pack of records (see `packRecords`). Throws BadInput for bad messages.
   */
  parse(message: BusMessage): In | In[];
  /**
   * Handles the good inputs of a batch, in order, and returns what to produce. May call
   * `reject` to dead-letter part of a message (e.g. one bad span of a batch). Throwing
   * anything else means "try the batch again later" (e.g. Redis is down).
   */
  handle(
    items: { message: BusMessage; value: In }[],
    reject: (message: BusMessage, reason: string, detail?: DeadLetterDetail) => void,
  ): Promise<Emit[]>;
  /** The partitions this instance consumes changed (state kept per partition's keys may be stale). */
  onRebalance?(): void;
}

export interface StageRuntime {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  topicPrefix: string;
  groupPrefix: string;
  /**
   * Pack the records a batch produces for one key into one message (a JSON array), as
   * downstream stages accept. Kafka clients pay per message, so this multiplies throughput.
   */
  packRecords?: boolean;
  /** Whether the stage's dependencies answer; decides between "retry later" and "dead-letter this item". */
  healthy: () => Promise<boolean>;
}

/**
 * The dead letter of a message: its reason, source, size and sha256, and what `detail` holds
 * of it (capped); never the message itself.
 */
export function deadLetterMessage(stage: string, message: BusMessage, reason: string, detail: DeadLetterDetail = {}): OutgoingMessage {
  const letter: DeadLetter = {
    stage,
    reason,
    source: { topic: message.topic, partition: message.partition, offset: message.offset },
    message: { bytes: message.value.length, sha256: createHash("sha256").update(message.value).digest("hex") },
    atMs: Date.now(),
  };
  if (detail.prefix && detail.prefix.length > 0)
    letter.prefix = detail.prefix.subarray(0, DEADLETTER_LIMITS.prefixBytes).toString("base64");
  if (detail.spans && detail.spans.length > 0) letter.spans = detail.spans.slice(0, DEADLETTER_LIMITS.spans);
  if (detail.rejectedSpans !== undefined) letter.rejectedSpans = detail.rejectedSpans;
  return { key: message.key, value: JSON.stringify(letter), headers: { "driftwatch-reason": reason.slice(0, 200) } };
}

const MAX_ITEM_ATTEMPTS = 3;

/** A pack stays well under Kafka's default 1 MB message limit. */
const MAX_PACK_BYTES = 512 * 1024;
const MAX_PACK_RECORDS = 1000;

/**
 * Packs the JSON records emitted for the same topic and key into one message whose value
 * is a JSON array of them, in emission order. Messages with headers (dead letters) and
 * non-object values go alone. Per-key order is kept; nothing is re-serialised.
 */
export function packRecords(emits: Emit[]): Emit[] {
  const out: Emit[] = [];
  const open = new Map<string, { emit: Emit; parts: string[]; bytes: number }>();
  const flush = (k: string) => {
    const pack = open.get(k);
    if (!pack) return;
    open.delete(k);
    out.push(
      pack.parts.length === 1
        ? pack.emit
        : { topic: pack.emit.topic, message: { key: pack.emit.message.key ?? null, value: `[${pack.parts.join(",")}]` } },
    );
  };
  for (const e of emits) {
    const v = e.message.value;
    const text = typeof v === "string" ? v : undefined;
    if (e.message.headers || text === undefined || !text.startsWith("{") || e.message.key === null || e.message.key === undefined) {
      out.push(e);
      continue;
    }
    const k = `${e.topic}\u0000${e.message.key}`;
    const pack = open.get(k);
    if (pack && (pack.bytes + text.length > MAX_PACK_BYTES || pack.parts.length >= MAX_PACK_RECORDS)) flush(k);
    const current = open.get(k);
    if (current) {
      current.parts.push(text);
      current.bytes += text.length + 1;
    } else {
      open.set(k, { emit: e, parts: [text], bytes: text.length + 2 });
    }
  }
  for (const k of [...open.keys()]) flush(k);
  return out;
}

/**
 * Runs a stage on the bus: parse, handle, produce, and only then let the bus commit.
 * Bad messages go to the dead-letter topic; the stage never stops on them.
 */
export async function runStage<In>(logic: StageLogic<In>, rt: StageRuntime): Promise<Subscription> {
  const deadletterTopic = topicName(rt.topicPrefix, TOPICS.deadletter);
  const log = rt.logger.child({ stage: logic.name });

  const publishAll = async (emits: Emit[]) => {
    const byTopic = new Map<string, OutgoingMessage[]>();
    for (const e of rt.packRecords ? packRecords(emits) : emits) {
      const list = byTopic.get(e.topic) ?? [];
      list.push(e.message);
      byTopic.set(e.topic, list);
    }
    await Promise.all(
      [...byTopic].map(async ([topic, messages]) => {
        await rt.bus.publish(topic, messages);
        rt.metrics.messagesOut.inc({ stage: logic.name, topic }, messages.length);
      }),
    );
  };

  const handleBatch = async (batch: BusMessage[]) => {
    const timer = rt.metrics.batchSeconds.startTimer({ stage: logic.name });
    rt.metrics.messagesIn.inc({ stage: logic.name }, batch.length);
    const dead: OutgoingMessage[] = [];
    const reject = (message: BusMessage, reason: string, detail?: DeadLetterDetail) => {
      log.warn({ topic: message.topic, partition: message.partition, offset: message.offset, reason }, "bad input dead-lettered");
      dead.push(deadLetterMessage(logic.name, message, reason, detail));
    };
    const items: { message: BusMessage; value: In }[] = [];
    for (const message of batch) {
      try {
        const parsed = logic.parse(message);
        if (Array.isArray(parsed)) for (const value of parsed) items.push({ message, value });
        else items.push({ message, value: parsed as In });
      } catch (err) {
        if (err instanceof BadInput) reject(message, err.message, err.detail);
        else reject(message, `unparseable: ${(err as Error).message}`);
      }
    }
    // a failed attempt's rejections are dropped: the retry makes them again (one dead letter each)
    const tryHandle = async (some: { message: BusMessage; value: In }[]) => {
      const mark = dead.length;
      try {
        return await logic.handle(some, reject);
      } catch (err) {
        dead.length = mark;
        throw err;
      }
    };
    let emits: Emit[];
    try {
      emits = await tryHandle(items);
    } catch (err) {
      if (err instanceof Unavailable || !(await rt.healthy())) throw err; // infrastructure trouble: the bus redelivers the batch
      // The dependencies answer, so some item itself makes the stage fail: isolate it.
      log.error({ err }, "batch failed; retrying item by item");
      emits = [];
      for (const item of items) {
        for (let attempt = 1; ; attempt++) {
          try {
            emits.push(...(await tryHandle([item])));
            break;
          } catch (itemErr) {
            if (itemErr instanceof Unavailable || !(await rt.healthy())) throw itemErr;
            if (attempt >= MAX_ITEM_ATTEMPTS) {
              reject(item.message, `processing failed ${attempt} times: ${(itemErr as Error).message}`);
              break;
            }
          }
        }
      }
    }
    if (dead.length > 0) {
      rt.metrics.deadLetters.inc({ stage: logic.name }, dead.length);
      emits.push(...dead.map((message) => ({ topic: deadletterTopic, message })));
    }
    await publishAll(emits);
    rt.metrics.messagesHandled.inc({ stage: logic.name }, batch.length);
    timer();
  };

  const onRebalance = logic.onRebalance?.bind(logic);
  const group = `${rt.groupPrefix}${logic.name}`;
  const sub = await rt.bus.subscribe(
    { group, topics: [logic.input], fromBeginning: true, ...(onRebalance ? { onRebalance } : {}) },
    handleBatch,
  );
  const unwatch = rt.metrics.watchLag(logic.name, () => rt.bus.lag(group, [logic.input]));
  return {
    close: async () => {
      unwatch();
      await sub.close();
    },
  };
}
