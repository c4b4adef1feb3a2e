import { type Finding, Finding as FindingSchema } from "../../schemas/finding.js";
import type { IncidentUpdate } from "../../schemas/incident.js";
import { type Revocation, Revocation as RevocationSchema } from "../../schemas/revocation.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { decodeMessage } from "../runtime/decode.js";
import type { Emit, StageLogic } from "../runtime/stage.js";
import { AlertDispatcher, type DispatcherOptions } from "./dispatch.js";
import { IncidentBook } from "./incident.js";

/**
 * notifier: `agent.findings` and `agent.revocations` → incidents → SOC sinks.
 *
 * A task's alertable findings (enforce and alert mode; shadow-mode findings are not
 * alerted) make one incident, rolled up as they arrive (incident.ts); the revoker's
 * outcomes are noted on it, and a credential that could not be revoked raises it as an
 * alert. Each change the SOC should see is a new version, sent to every sink once
 * (dispatch.ts): as the envelope with its OCSF Detection Finding (ocsf.ts) or in the sink's
 * own format. A redelivered finding or revocation changes nothing and sends nothing.
 *
 * A batch is done once its incidents and their queued versions are in the store; the sinks
 * are sent to in the background, so a slow or failing sink holds up neither the stage nor
 * the other sinks, and what it could not take is retried later by the sweep.
 */
/** The notifier's settings: its dispatcher's (dispatch.ts), handed on. */
export type NotifierOptions = Pick<
  DispatcherOptions,
  "store" | "outputs" | "logger" | "metrics" | "onDeadLetter" | "rounds" | "retryBaseMs" | "retryMaxMs" | "leaseMs" | "now" | "random"
>;

export interface Notifier {
  book: IncidentBook;
  dispatcher: AlertDispatcher;
  /** The stage on `agent.findings`. */
  findingsStage(topicPrefix: string): StageLogic<Finding>;
  /** The stage on `agent.revocations`. */
  revocationsStage(topicPrefix: string): StageLogic<Revocation>;
  /** Versions due for another round (and ones a stopped notifier left): sent in the background. */
  sweep(): Promise<number>;
  /** Resolves once nothing is being sent. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** Tasks handled at once in one batch. */
const TASKS_AT_ONCE = 16;

/** Runs `fn` over groups, a few at a time, and returns what each gave, in order. */
async function eachGroup<K, V, R>(groups: Map<K, V[]>, fn: (key: K, values: V[]) => Promise<R>): Promise<R[]> {
  const entries = [...groups];
  const out: R[] = [];
  for (let i = 0; i < entries.length; i += TASKS_AT_ONCE) {
    out.push(...(await Promise.all(entries.slice(i, i + TASKS_AT_ONCE).map(([k, v]) => fn(k, v)))));
  }
  return out;
}

function byTask<T extends { taskId: string }>(values: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const v of values) groups.set(v.taskId, [...(groups.get(v.taskId) ?? []), v]);
  return groups;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const book = new IncidentBook(options.store, { ...(options.now ? { now: options.now } : {}) });
  const dispatcher = new AlertDispatcher({
    store: options.store,
    outputs: options.outputs,
    logger: options.logger,
    onDeadLetter: options.onDeadLetter,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.rounds !== undefined ? { rounds: options.rounds } : {}),
    ...(options.retryBaseMs !== undefined ? { retryBaseMs: options.retryBaseMs } : {}),
    ...(options.retryMaxMs !== undefined ? { retryMaxMs: options.retryMaxMs } : {}),
    ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.random ? { random: options.random } : {}),
  });
  book.outbox = dispatcher;

  const announce = (updates: (IncidentUpdate | undefined)[]) => {
    for (const u of updates) {
      if (!u) continue;
      options.metrics?.incidentVersions.inc({ cause: u.change.cause });
      options.logger.info(
        { incident: u.incident.id, task: u.incident.taskId, version: u.incident.version, severity: u.incident.severity },
        `incident ${u.incident.version === 1 ? "opened" : "updated"}: ${u.change.summary}`,
      );
      dispatcher.kick(u.incident.id);
    }
  };

  return {
    book,
    dispatcher,
    findingsStage: (topicPrefix) => ({
      name: "notifier",
      input: topicName(topicPrefix, TOPICS.findings),
      parse: (message) => decodeMessage(FindingSchema, message, "a finding"),
      async handle(items): Promise<Emit[]> {
        const alertable = items.map((i) => i.value).filter((f) => f.mode !== "shadow");
        announce(await eachGroup(byTask(alertable), (taskId, findings) => book.addFindings(taskId, findings)));
        return [];
      },
    }),
    revocationsStage: (topicPrefix) => ({
      name: "notifier-revocations",
      input: topicName(topicPrefix, TOPICS.revocations),
      parse: (message) => decodeMessage(RevocationSchema, message, "a revocation"),
      async handle(items): Promise<Emit[]> {
        const updates = await eachGroup(byTask(items.map((i) => i.value)), async (_task, revocations) => {
          const made: (IncidentUpdate | undefined)[] = [];
          for (const r of revocations) made.push(await book.addRevocation(r)); // in order: outcomes of one credential follow each other
          return made;
        });
        announce(updates.flat());
        return [];
      },
    }),
    sweep: () => dispatcher.retryDue(),
    idle: () => dispatcher.idle(),
    close: () => dispatcher.close(),
  };
}
