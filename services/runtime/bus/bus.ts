/**
 * The Bus port: how stages talk. Kafka in production (kafka-bus.ts), in-process for the
 * embedded mode (memory-bus.ts). Both keep per-key order (same key, same partition) and
 * commit a batch's offsets only after its handler has resolved, so whatever the handler
 * produced is durable before the input is marked consumed (at-least-once).
 */
/** The bus cannot take more now (consumers are behind): try again shortly. Nothing was written. */
export class BusBackpressure extends Error {
  override name = "BusBackpressure";
}

export interface BusMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
  timestampMs: number;
}

export interface OutgoingMessage {
  key?: string | null;
  value: Buffer | string;
  headers?: Record<string, string>;
}

/** Handles one batch of messages from one topic partition, in offset order. */
export type BatchHandler = (batch: BusMessage[]) => Promise<void>;

export interface SubscribeOptions {
  /** Consumer group: instances in one group share the partitions. */
  group: string;
  topics: string[];
  /** Where a group with no committed offset starts. Stages start at the earliest so nothing is missed. */
  fromBeginning?: boolean;
  /** Called when this member's share of the partitions may have changed (a rebalance). */
  onRebalance?: () => void;
}

export interface Subscription {
  close(): Promise<void>;
}

/** How far a consumer group is behind on one partition: messages written and not yet committed. */
export interface PartitionLag {
  topic: string;
  partition: number;
  lag: number;
}

export interface Publisher {
  /** Resolves once the messages are durably written (all in-sync replicas for Kafka). */
  publish(topic: string, messages: OutgoingMessage[]): Promise<void>;
}

export interface Bus extends Publisher {
  ensureTopics(topics: string[]): Promise<void>;
  subscribe(options: SubscribeOptions, handler: BatchHandler): Promise<Subscription>;
  /** Whether the bus can take writes now (for readiness and backpressure). */
  ready(): Promise<boolean>;
  /**
   * The group's lag on each partition of the topics: the partition's end offset less the
   * group's committed offset (all of the partition when the group has committed nothing).
   * Read from the committed offsets, so a stuck consumer shows its lag growing.
   */
  lag(group: string, topics: string[]): Promise<PartitionLag[]>;
  close(): Promise<void>;
}

export function headersToStrings(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || v === null) continue;
    const first = Array.isArray(v) ? v[0] : v;
    out[k] = Buffer.isBuffer(first) ? first.toString("utf8") : String(first);
  }
  return out;
}
