import pLimit from "p-limit";
import type { DeadLetter } from "../../schemas/deadletter.js";
import { TaskEvent } from "../../schemas/lifecycle.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { VIOLATION_MARK } from "../detector/learner.js";
import type { Policy } from "../detector/policy.js";
import type { TaskStore } from "../pathfinder/task-store.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { decodeMessage } from "../runtime/decode.js";
import type { Emit, StageLogic } from "../runtime/stage.js";
import type { Store } from "../runtime/store/store.js";
import { type Cause, emitsOf, empty, merge, type Responder, type ResponseOutput } from "./revoker.js";

/**
 * The revoker's side of the task lifecycle: `agent.lifecycle` → the task's credentials
 * revoked through the same exactly-once path as drift's (one claim per credential; the
 * ledger records the lifecycle trigger). The detector already applied the agent profile's
 * `lifecycle:` settings: an event here means revoke.
 *
 * Which credentials an event ends:
 * - the task ended (completed, idle), went silent, or moved to another environment: every
 *   credential bound to the task and not expired (never one bound to another task that it
 *   used: that is a reuse, reported on its own);
 * - its scope or objective changed: those bound before the change (those bound with it or
 *   after were registered for the new scope);
 * - a credential was reused on another task: that credential (recorded under the task it is bound to);
 * - the task went silent and its profile says `suspend`: its credentials are suspended where
 *   the store can (revoked elsewhere), and resumed when it reports again (`telemetry_resumed`).
 *
 * An event due later (the profile's grace period after a task ends; a moment, when the task
 * ended with a policy finding whose response should go first) waits in the store
 * (`lifecycle:due`, scored by due time) and is carried out by the revoker's sweep.
 */
export const parseTaskEvent = (message: BusMessage): TaskEvent | TaskEvent[] => decodeMessage(TaskEvent, message, "a task lifecycle event");

const DUE = "lifecycle:due";
const eventKey = (id: string) => `lifecycle:event:{${id}}`;
const EVENT_TTL_MS = 7 * 24 * 3600 * 1000;
const LOCK_TTL_MS = 120_000;
const SWEEP_LIMIT = 100;

export class LifecycleResponder {
  private readonly now: () => number;

  constructor(
    private readonly deps: {
      responder: Responder;
      tasks: TaskStore;
      store: Store;
      policy: () => Policy;
      /**
       * How long the end of a task with a policy finding waits, so that the finding's
       * response (revoke, quarantine) goes first and the ledger names the finding; the end
       * is carried out after it all the same (a response that only notifies leaves the
       * credentials to it).
       */
      deferEndAfterFindingMs?: number;
      now?: () => number;
    },
  ) {
    this.now = deps.now ?? Date.now;
  }

  /** One event: carried out now, or kept until it is due. */
  async handle(event: TaskEvent, source?: DeadLetter["source"]): Promise<ResponseOutput> {
    const ends = event.trigger === "task_completed" || event.trigger === "task_idle";
    if (ends && event.dueAtMs === undefined && (await this.deps.tasks.marked(event.taskId, VIOLATION_MARK))) {
      // the detector marks a task with a policy finding before it produces the finding (and this event)
      event = { ...event, dueAtMs: this.now() + (this.deps.deferEndAfterFindingMs ?? 2_000) };
    }
    if (event.dueAtMs !== undefined && event.dueAtMs > this.now()) {
      await this.deps.store.set(eventKey(event.id), JSON.stringify({ event, ...(source ? { source } : {}) }), { ttlMs: EVENT_TTL_MS });
      await this.deps.store.sortedAdd(DUE, [{ score: event.dueAtMs, member: event.id }]);
      return empty();
    }
    return this.endAccess(event, source);
  }

  /** Events whose grace period has passed: carried out, each by one revoker. */
  async due(): Promise<ResponseOutput> {
    const now = this.now();
    const ids = await this.deps.store.sortedRangeByScore(DUE, { min: Number.NEGATIVE_INFINITY, max: now, offset: 0, limit: SWEEP_LIMIT });
    const out = empty();
    for (const { member: id } of ids) {
      const lock = `${eventKey(id)}:lock`;
      if (!(await this.deps.store.setIfAbsent(lock, "1", { ttlMs: LOCK_TTL_MS }))) continue;
      try {
        const raw = await this.deps.store.get(eventKey(id));
        if (raw) {
          const { event, source } = JSON.parse(raw) as { event: TaskEvent; source?: DeadLetter["source"] };
          merge(out, await this.endAccess(event, source));
        }
        // removed once carried out: a revoker dying before this leaves it due for the next sweep
        await this.deps.store.sortedRemove(DUE, [id]);
        await this.deps.store.delete(eventKey(id));
      } finally {
        await this.deps.store.delete(lock);
      }
    }
    return out;
  }

  private async endAccess(event: TaskEvent, source?: DeadLetter["source"]): Promise<ResponseOutput> {
    const cause: Cause = {
      findingId: event.findingId ?? event.id,
      ...(event.agentId ? { agentId: event.agentId } : {}),
      reason: `${event.trigger}: ${event.detail}`,
      trigger: event.trigger,
      decidedBy: `lifecycle:${event.profileId ?? "default"}`,
      dryRun: this.deps.policy().responses?.dryRun ?? false,
      triggeredAtMs: event.atMs,
      detectedAtMs: event.detectedAtMs,
      ...(event.spanEndMs !== undefined ? { spanEndMs: event.spanEndMs } : {}),
      ...(source ? { source } : {}),
    };
    if (event.trigger === "credential_reuse") {
      if (!event.credentialId) return empty();
      // recorded under the task the credential is bound to: it is that task's access that ends
      return this.deps.responder.revokeCredentials(event.ownerTaskId ?? event.taskId, [event.credentialId], cause);
    }
    const now = this.now();
    const credentials = (await this.deps.tasks.bindings.ofTask(event.taskId)).filter(({ binding, foreign }) => {
      if (foreign) return false;
      if (binding?.expiresAtMs !== undefined && binding.expiresAtMs <= now) return false; // expired: nothing left to end
      if (event.trigger === "scope_changed" && binding && binding.boundAtMs >= event.atMs) return false; // granted for the new scope
      return true;
    });
    const ids = credentials.map((c) => c.credentialId);
    const { responder } = this.deps;
    if (event.trigger === "telemetry_resumed") {
      const outs = await Promise.all(ids.map((c) => responder.resumeCredential(event.taskId, c, cause, event.atMs)));
      return outs.reduce(merge, empty());
    }
    if (event.trigger === "telemetry_silence" && event.suspend) {
      const outs = await Promise.all(ids.map((c) => responder.suspendCredential(event.taskId, c, cause)));
      return outs.reduce(merge, empty());
    }
    return responder.revokeCredentials(event.taskId, ids, cause);
  }
}

/** Tasks whose events of a batch are handled at once, at most (each may call a credential store). */
const CONCURRENT_TASKS = 32;

export function lifecycleStage(topicPrefix: string, lifecycle: LifecycleResponder): StageLogic<TaskEvent> {
  const limit = pLimit(CONCURRENT_TASKS);
  const revocations = topicName(topicPrefix, TOPICS.revocations);
  const deadletter = topicName(topicPrefix, TOPICS.deadletter);
  return {
    name: "revoker-lifecycle",
    input: topicName(topicPrefix, TOPICS.lifecycle),
    parse: parseTaskEvent,
    async handle(items): Promise<Emit[]> {
      // different tasks' events at once (up to a limit): each is a few store round trips and
      // an HTTP call, and one at a time the stage falls behind every task's end; one task's
      // events in order (its first trigger is the one the ledger names); results in order
      const byTask = new Map<string, number[]>();
      for (const [i, { value }] of items.entries()) byTask.set(value.taskId, [...(byTask.get(value.taskId) ?? []), i]);
      const outs: ResponseOutput[] = new Array(items.length);
      await Promise.all(
        [...byTask.values()].map((indexes) =>
          limit(async () => {
            for (const i of indexes) {
              const { value: event, message } = items[i] as (typeof items)[number];
              outs[i] = await lifecycle.handle(event, { topic: message.topic, partition: message.partition, offset: message.offset });
            }
          }),
        ),
      );
      return emitsOf(outs.reduce(merge, empty()), revocations, deadletter);
    },
  };
}
