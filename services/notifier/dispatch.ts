import { randomBytes } from "node:crypto";
import type { DeadLetter } from "../../schemas/deadletter.js";
import type { IncidentUpdate } from "../../schemas/incident.js";
import type { Logger } from "../runtime/logging.js";
import type { Store } from "../runtime/store/store.js";
import { atLeast, INCIDENT_KEYS, type Outbox, readIncident, readVersion } from "./incident.js";
import type { NotifierMetrics } from "./metrics.js";
import type { AlertOutput, SendResult } from "./outputs/output.js";

/**
 * Delivers incident versions to the sinks: every version to every sink (at or above its
 * minimum severity) once, in order, and no sink held up by another.
 *
 * - A new version is queued in the store's outbox (`incidents:outbox`, one member per sink
 *   and version, scored by when it is due) before its incident is written, then delivered
 *   at once, in the background, by a small pool of workers per sink.
 * - One notifier at a time delivers one incident to one sink (`incident:{id}:sending:<sink>`,
 *   a lock with a time-to-live); it sends the versions after the sink's mark
 *   (`incident:{id}:delivered`, the highest version the sink has had) in order, moving the
 *   mark after each: a redelivered or recomputed version is not sent twice.
 * - A version the sink could not take (its delivery's attempts spent, a socket error)
 *   waits for another round, later and later (`incident:{id}:retry`: doubling from the
 *   base, full jitter, capped), and the versions after it wait behind it. A round the
 *   endpoint's open circuit refused sent nothing and does not count. The sweep
 *   (`retryDue`) picks up what is due, and what a notifier that died left behind.
 * - After its last round, or at once when the sink refuses it (a 4xx), a version is
 *   dead-lettered (`agent.deadletter`, through `onDeadLetter`) and counted; the next one goes.
 */
export interface DispatcherOptions {
  store: Store;
  outputs: AlertOutput[];
  logger: Logger;
  metrics?: NotifierMetrics;
  /** Sets dead letters aside (on `agent.deadletter`); a throw leaves the version to be tried again. */
  onDeadLetter: (letters: DeadLetter[]) => Promise<void>;
  /** Delivery rounds per version and sink before it is dead-lettered (default 20). */
  rounds?: number;
  /** Delay before the second round (doubling per round, full jitter) and the longest delay. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A queued version waits this long before the sweep may take it (its own notifier delivers it at once). */
  leaseMs?: number;
  /** How long a notifier may hold an incident and sink without a word (renewed for each version). */
  sendLockTtlMs?: number;
  /** Incidents delivered at once per sink. */
  concurrency?: number;
  /** Outbox members looked at per sweep. */
  sweepLimit?: number;
  now?: () => number;
  random?: () => number;
}

interface RetryState {
  round: number;
  atMs: number;
}

interface SinkQueue {
  pending: Set<string>;
  inFlight: Set<string>;
  again: Set<string>;
}

const memberOf = (sink: string, incidentId: string, version: number) => `${sink} ${incidentId} ${version}`;

function parseMember(member: string): { sink: string; incidentId: string; version: number } | undefined {
  const [sink, incidentId, v] = member.split(" ");
  const version = Number(v);
  return sink && incidentId && Number.isInteger(version) && version > 0 ? { sink, incidentId, version } : undefined;
}

export class AlertDispatcher implements Outbox {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly owner = randomBytes(6).toString("hex");
  private lockSeq = 0;
  private readonly outputs: Map<string, AlertOutput>;
  private readonly queues = new Map<string, SinkQueue>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: DispatcherOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.outputs = new Map(options.outputs.map((o) => [o.name, o]));
    if (this.outputs.size !== options.outputs.length) throw new Error("alert outputs need distinct names");
  }

  get sinks(): string[] {
    return [...this.outputs.keys()];
  }

  /** Queues a new version for every sink that takes its severity. Called before the incident is written. */
  async enqueue(update: IncidentUpdate): Promise<void> {
    const due = this.now() + (this.options.leaseMs ?? 60_000);
    const entries = [...this.outputs.values()]
      .filter((o) => atLeast(update.incident.severity, o.minSeverity))
      .map((o) => ({ score: due, member: memberOf(o.name, update.incident.id, update.incident.version) }));
    await this.options.store.sortedAdd(INCIDENT_KEYS.outbox, entries);
  }

  /** Delivers what an incident has waiting, to every sink, in the background. */
  kick(incidentId: string): void {
    for (const output of this.outputs.values()) this.schedule(output, incidentId);
  }

  /** Versions due for another round, or left behind by a notifier that stopped: delivered in the background. */
  async retryDue(): Promise<number> {
    const store = this.options.store;
    const now = this.now();
    const due = await store.sortedRangeByScore(INCIDENT_KEYS.outbox, {
      min: Number.NEGATIVE_INFINITY,
      max: now,
      offset: 0,
      limit: this.options.sweepLimit ?? 500,
    });
    const taken = new Set<string>();
    for (const { member } of due) {
      const m = parseMember(member);
      const output = m ? this.outputs.get(m.sink) : undefined;
      if (!m || !output) {
        this.options.logger.warn({ member }, "dropping an alert queued for a sink this notifier does not have");
        await store.sortedRemove(INCIDENT_KEYS.outbox, [member]);
        continue;
      }
      const [mark] = await store.hashGet(INCIDENT_KEYS.delivered(m.incidentId), [m.sink]);
      if (m.version <= Number(mark ?? 0)) {
        await store.sortedRemove(INCIDENT_KEYS.outbox, [member]); // delivered; its removal was cut short
        continue;
      }
      if ((await store.get(INCIDENT_KEYS.head(m.incidentId))) === null) {
        await store.sortedRemove(INCIDENT_KEYS.outbox, [member]); // the incident has expired
        continue;
      }
      // not picked again by the next sweep while this one is at it
      await store.sortedAdd(INCIDENT_KEYS.outbox, [{ score: now + (this.options.leaseMs ?? 60_000), member }]);
      const key = `${m.sink} ${m.incidentId}`;
      if (taken.has(key)) continue;
      taken.add(key);
      this.schedule(output, m.incidentId);
    }
    return taken.size;
  }

  /** Resolves once no delivery is running or waiting in this process. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Starts nothing new, waits for the deliveries under way and closes the outputs. What is left stays in the outbox. */
  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queues.values()) q.pending.clear();
    await this.idle();
    await Promise.all([...this.outputs.values()].map((o) => o.close?.().catch(() => undefined)));
  }

  private queue(sink: string): SinkQueue {
    let q = this.queues.get(sink);
    if (!q) {
      q = { pending: new Set(), inFlight: new Set(), again: new Set() };
      this.queues.set(sink, q);
    }
    return q;
  }

  private schedule(output: AlertOutput, incidentId: string): void {
    if (this.closed) return;
    const q = this.queue(output.name);
    if (q.inFlight.has(incidentId)) q.again.add(incidentId);
    else q.pending.add(incidentId);
    this.pump(output);
  }

  private pump(output: AlertOutput): void {
    const q = this.queue(output.name);
    while (!this.closed && q.inFlight.size < (this.options.concurrency ?? 4) && q.pending.size > 0) {
      const incidentId = q.pending.values().next().value as string;
      q.pending.delete(incidentId);
      q.inFlight.add(incidentId);
      const work = this.deliver(output, incidentId)
        .catch((err: unknown) =>
          this.options.logger.warn({ err, sink: output.name, incident: incidentId }, "alert delivery stopped; the sweep takes it up again"),
        )
        .finally(() => {
          q.inFlight.delete(incidentId);
          this.running.delete(work);
          if (q.again.delete(incidentId)) q.pending.add(incidentId);
          this.pump(output);
        });
      this.running.add(work);
    }
  }

  /** Sends an incident's waiting versions to one sink, in order, while this notifier holds it. */
  private async deliver(output: AlertOutput, incidentId: string): Promise<void> {
    const store = this.options.store;
    const sink = output.name;
    const lock = INCIDENT_KEYS.sending(incidentId, sink);
    const lockTtlMs = this.options.sendLockTtlMs ?? 120_000;
    const token = `${this.owner}:${++this.lockSeq}`;
    if (!(await store.setIfAbsent(lock, token, { ttlMs: lockTtlMs }))) return; // another notifier is at it, and looks again before letting go
    try {
      for (;;) {
        const incident = await readIncident(store, incidentId);
        if (!incident) return;
        const [[mark], [rawRetry]] = await Promise.all([
          store.hashGet(INCIDENT_KEYS.delivered(incidentId), [sink]),
          store.hashGet(INCIDENT_KEYS.retry(incidentId), [sink]),
        ]);
        const delivered = Number(mark ?? 0);
        if (incident.version <= delivered) return;
        const retry: RetryState = rawRetry ? (JSON.parse(rawRetry) as RetryState) : { round: 0, atMs: 0 };
        if (retry.atMs > this.now()) {
          // backing off: the new version waits with the others
          await this.reschedule(sink, incidentId, delivered + 1, incident.version, retry.atMs);
          return;
        }
        const stopped = await this.sendFrom(output, incidentId, delivered + 1, incident.version, retry, token);
        if (stopped) return;
        // sent everything: look again, another version may have landed meanwhile
      }
    } finally {
      if ((await store.get(lock)) === token) await store.delete(lock);
    }
  }

  /** Sends versions `from`..`to`. True when a failure stopped it (the rest waits for the next round). */
  private async sendFrom(
    output: AlertOutput,
    incidentId: string,
    from: number,
    to: number,
    retry: RetryState,
    token: string,
  ): Promise<boolean> {
    const store = this.options.store;
    const sink = output.name;
    let round = retry.round; // rounds spent on version `v` so far
    let stored = retry.round > 0 || retry.atMs > 0; // a retry state in the store, cleared once `v` is done with
    const done = async (v: number) => {
      await this.settle(sink, incidentId, v, stored);
      stored = false;
      round = 0;
    };
    for (let v = from; v <= to; v++) {
      const update = await readVersion(store, incidentId, v);
      if (!update || !atLeast(update.incident.severity, output.minSeverity)) {
        if (update) this.options.metrics?.alerts.inc({ sink, result: "filtered" });
        await done(v);
        continue;
      }
      // still ours: renew the lock for this send
      const lock = INCIDENT_KEYS.sending(incidentId, sink);
      if ((await store.get(lock)) !== token) return true;
      await store.expire(lock, this.options.sendLockTtlMs ?? 120_000);
      const result = await this.send(output, update);
      if (result.ok) {
        this.options.metrics?.alerts.inc({ sink, result: "delivered" });
        await done(v);
        continue;
      }
      // a round in which nothing went out (the circuit is open) does not count; its wait does
      if (!result.notSent) round++;
      const log = { sink, incident: incidentId, task: update.incident.taskId, version: v, round, detail: result.detail };
      if (result.permanent || round >= (this.options.rounds ?? 20)) {
        const why = result.permanent ? "the sink refused it" : `${round} rounds`;
        this.options.logger.error(log, `alert dead-lettered: ${why}`);
        await this.options.onDeadLetter([this.deadLetter(sink, update, result.detail, why)]);
        this.options.metrics?.alerts.inc({ sink, result: "dead_lettered" });
        await done(v);
        continue;
      }
      this.options.metrics?.alerts.inc({ sink, result: "failed" });
      const atMs = this.now() + this.backoff(Math.max(1, round));
      this.options.logger.warn({ ...log, retryAt: new Date(atMs).toISOString() }, "alert not delivered; trying again later");
      await store.hashSet(INCIDENT_KEYS.retry(incidentId), { [sink]: JSON.stringify({ round, atMs } satisfies RetryState) });
      await this.reschedule(sink, incidentId, v, to, atMs);
      return true;
    }
    return false;
  }

  /** Version `v` is done with at this sink (sent, filtered out or given up on): the mark moves past it. */
  private async settle(sink: string, incidentId: string, v: number, clearRetry: boolean): Promise<void> {
    const store = this.options.store;
    await store.hashSet(INCIDENT_KEYS.delivered(incidentId), { [sink]: String(v) });
    if (clearRetry) await store.hashSet(INCIDENT_KEYS.retry(incidentId), { [sink]: JSON.stringify({ round: 0, atMs: 0 }) });
    await store.sortedRemove(INCIDENT_KEYS.outbox, [memberOf(sink, incidentId, v)]);
  }

  private async reschedule(sink: string, incidentId: string, from: number, to: number, atMs: number): Promise<void> {
    const entries: { score: number; member: string }[] = [];
    for (let v = from; v <= to; v++) entries.push({ score: atMs, member: memberOf(sink, incidentId, v) });
    await this.options.store.sortedAdd(INCIDENT_KEYS.outbox, entries);
  }

  private async send(output: AlertOutput, update: IncidentUpdate): Promise<SendResult> {
    try {
      return await output.send(update);
    } catch (err) {
      return { ok: false, detail: `${output.name} failed: ${(err as Error).message}` };
    }
  }

  /** Full jitter on an exponential backoff: a random delay up to base·2^(round-1), capped. */
  private backoff(round: number): number {
    const cap = Math.min(this.options.retryMaxMs ?? 300_000, (this.options.retryBaseMs ?? 1_000) * 2 ** Math.max(0, round - 1));
    return Math.max(1, Math.round(cap * this.random()));
  }

  private deadLetter(sink: string, update: IncidentUpdate, detail: string, why: string): DeadLetter {
    const i = update.incident;
    return {
      stage: "notifier",
      reason: `incident ${i.id} version ${i.version} (task ${i.taskId}) was not delivered to ${sink}: ${detail} (gave up: ${why})`,
      source: { topic: "", partition: -1, offset: "-1" },
      record: { sink, incidentId: i.id, version: i.version, update },
      atMs: this.now(),
    };
  }
}
