import type { Logger } from "pino";
import {
  type BatchHandler,
  type Bus,
  BusBackpressure,
  type BusMessage,
  type OutgoingMessage,
  type PartitionLag,
  type SubscribeOptions,
  type Subscription,
} from "./bus.js";

/**
 * The in-process bus of the embedded mode: partitioned append-only logs with consumer
 * groups, the same delivery contract as Kafka (per-partition order, commit after the
 * handler resolves, redelivery after a failed handler) without a broker.
 */
export interface MemoryBusOptions {
  partitions?: number;
  maxBatch?: number;
  /** Per partition of a topic nobody consumes, the most messages kept; older ones are dropped like Kafka retention. */
  retainPerPartition?: number;
  /**
   * Per partition of a consumed topic, the most messages not yet consumed by every group.
   * Beyond it, publish refuses with BusBackpressure instead of dropping anything.
   */
  maxBacklogPerPartition?: number;
  retryDelayMs?: number;
  logger?: Logger;
}

interface Partition {
  base: number; // offset of messages[0]
  messages: BusMessage[];
}

interface Member {
  id: number;
  handler: BatchHandler;
  topics: string[];
  onRebalance?: () => void;
}

interface Group {
  name: string;
  fromBeginning: boolean;
  members: Member[];
  committed: Map<string, number>; // `${topic}/${partition}` -> next offset to consume
  inFlight: Map<string, number>; // partition key -> member id handling it
}

/** Kafka's default partitioner for keyed messages is murmur2; any stable hash keeps per-key order. */
function partitionFor(key: string | null | undefined, partitions: number, roundRobin: number): number {
  if (key === null || key === undefined) return roundRobin % partitions;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

export class MemoryBus implements Bus {
  private readonly topics = new Map<string, Partition[]>();
  private readonly groups = new Map<string, Group>();
  private readonly partitions: number;
  private readonly maxBatch: number;
  private readonly retain: number;
  private readonly retryDelayMs: number;
  private readonly maxBacklog: number;
  private nextMemberId = 1;
  private roundRobin = 0;
  private closed = false;

  constructor(private readonly options: MemoryBusOptions = {}) {
    this.partitions = options.partitions ?? 3;
    this.maxBatch = options.maxBatch ?? 500;
    this.retain = options.retainPerPartition ?? 100_000;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.maxBacklog = options.maxBacklogPerPartition ?? 50_000;
  }

  /** The earliest offset some group still needs in this partition, or undefined when no group reads the topic. */
  private slowestCommit(topic: string, p: number): number | undefined {
    let min: number | undefined;
    for (const g of this.groups.values()) {
      const c = g.committed.get(`${topic}/${p}`);
      if (c !== undefined) min = min === undefined ? c : Math.min(min, c);
    }
    return min;
  }

  async ensureTopics(topics: string[]): Promise<void> {
    for (const t of topics) this.log(t);
  }

  async ready(): Promise<boolean> {
    return !this.closed;
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new Error("bus is closed");
    const parts = this.log(topic);
    const now = Date.now();
    const targets = messages.map((m) => partitionFor(m.key, parts.length, this.roundRobin++));
    const adding = new Map<number, number>();
    for (const p of targets) adding.set(p, (adding.get(p) ?? 0) + 1);
    for (const [p, n] of adding) {
      const part = parts[p] as Partition;
      const slowest = this.slowestCommit(topic, p);
      if (slowest !== undefined && part.base + part.messages.length + n - slowest > this.maxBacklog) {
        throw new BusBackpressure(`${topic} partition ${p} has ${part.base + part.messages.length - slowest} unconsumed messages`);
      }
    }
    messages.forEach((m, i) => {
      const p = targets[i] as number;
      const part = parts[p] as Partition;
      part.messages.push({
        topic,
        partition: p,
        offset: String(part.base + part.messages.length),
        key: m.key ?? null,
        value: typeof m.value === "string" ? Buffer.from(m.value) : m.value,
        headers: { ...(m.headers ?? {}) },
        timestampMs: now,
      });
      if (part.messages.length > this.retain && this.slowestCommit(topic, p) === undefined) {
        const drop = part.messages.length - this.retain;
        part.messages.splice(0, drop);
        part.base += drop;
      }
    });
    this.schedule();
  }

  async subscribe(options: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
    let group = this.groups.get(options.group);
    if (!group) {
      group = {
        name: options.group,
        fromBeginning: options.fromBeginning ?? false,
        members: [],
        committed: new Map(),
        inFlight: new Map(),
      };
      this.groups.set(options.group, group);
    }
    for (const t of options.topics) {
      const parts = this.log(t);
      parts.forEach((part, p) => {
        const k = `${t}/${p}`;
        if (!group.committed.has(k)) {
          group.committed.set(k, group.fromBeginning ? part.base : part.base + part.messages.length);
        }
      });
    }
    const member: Member = {
      id: this.nextMemberId++,
      handler,
      topics: options.topics,
      ...(options.onRebalance ? { onRebalance: options.onRebalance } : {}),
    };
    group.members.push(member);
    // partitions are shared among the members: a new member changes everyone's share
    for (const m of group.members) m.onRebalance?.();
    this.schedule();
    const g = group;
    return {
      close: async () => {
        g.members = g.members.filter((m) => m.id !== member.id);
        for (const m of g.members) m.onRebalance?.();
        // wait for this member's in-flight batches to settle so close() means "stopped"
        while ([...g.inFlight.values()].includes(member.id)) {
          await new Promise((r) => setTimeout(r, 5));
        }
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const g of this.groups.values()) g.members = [];
    this.topics.clear();
  }

  async lag(group: string, topics: string[]): Promise<PartitionLag[]> {
    const g = this.groups.get(group);
    const out: PartitionLag[] = [];
    for (const topic of topics) {
      this.topics.get(topic)?.forEach((part, partition) => {
        const end = part.base + part.messages.length;
        out.push({ topic, partition, lag: end - (g?.committed.get(`${topic}/${partition}`) ?? part.base) });
      });
    }
    return out;
  }

  /** Messages not yet consumed by a group, all its partitions together (for tests and `idle`). */
  backlog(group: string): number {
    const g = this.groups.get(group);
    if (!g) return 0;
    let lag = 0;
    for (const [k, next] of g.committed) {
      const [topic, p] = k.split("/") as [string, string];
      const part = this.topics.get(topic)?.[Number(p)];
      if (part) lag += part.base + part.messages.length - next;
    }
    return lag;
  }

  /** True when every group has consumed everything and no batch is being handled. */
  idle(): boolean {
    for (const g of this.groups.values()) {
      if (g.inFlight.size > 0 || this.backlog(g.name) > 0) return false;
    }
    return !this.scheduled;
  }

  private log(topic: string): Partition[] {
    let parts = this.topics.get(topic);
    if (!parts) {
      parts = Array.from({ length: this.partitions }, () => ({ base: 0, messages: [] }));
      this.topics.set(topic, parts);
    }
    return parts;
  }

  private scheduled = false;
  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    for (const group of this.groups.values()) {
      if (group.members.length === 0) continue;
      for (const [k, next] of group.committed) {
        const slash = k.lastIndexOf("/");
        const topic = k.slice(0, slash);
        const p = Number(k.slice(slash + 1));
        const eligible = group.members.filter((m) => m.topics.includes(topic));
        if (eligible.length === 0) continue;
        const member = eligible[p % eligible.length] as Member;
        if (group.inFlight.has(k)) continue;
        const part = this.topics.get(topic)?.[p];
        if (!part) continue;
        const start = Math.max(next, part.base);
        const end = part.base + part.messages.length;
        if (start >= end) continue;
        const batch = part.messages.slice(start - part.base, Math.min(end, start + this.maxBatch) - part.base);
        group.inFlight.set(k, member.id);
        member.handler(batch).then(
          () => {
            group.committed.set(k, start + batch.length);
            this.trim(topic, p);
            group.inFlight.delete(k);
            this.schedule();
          },
          (err: unknown) => {
            this.options.logger?.error({ err, group: group.name, topic, partition: p }, "handler failed; batch will be redelivered");
            setTimeout(() => {
              group.inFlight.delete(k);
              this.schedule();
            }, this.retryDelayMs);
          },
        );
      }
    }
  }

  /** Drop messages every group has consumed. */
  private trim(topic: string, p: number): void {
    const part = this.topics.get(topic)?.[p];
    if (!part) return;
    let min = Number.POSITIVE_INFINITY;
    for (const g of this.groups.values()) {
      const c = g.committed.get(`${topic}/${p}`);
      if (c !== undefined) min = Math.min(min, c);
    }
    if (!Number.isFinite(min)) return;
    const drop = min - part.base;
    if (drop > 0) {
      part.messages.splice(0, drop);
      part.base += drop;
    }
  }
}
