import { createHash, randomBytes } from "node:crypto";
import { type Finding, SEVERITY_RANK, type Severity } from "../../schemas/finding.js";
import type { Incident, IncidentAlert, IncidentEvidence, IncidentRevocation, IncidentUpdate } from "../../schemas/incident.js";
import type { Revocation } from "../../schemas/revocation.js";
import { Unavailable } from "../runtime/stage.js";
import type { Store } from "../runtime/store/store.js";

/**
 * Incidents: one per task, built from its findings and its credentials' revocations.
 *
 * The roll-up is plain functions (`foldFindings`, `foldRevocation`); `IncidentBook` keeps
 * incidents in the Store, one writer at a time per incident (a lock in the store, so
 * several notifier instances agree), and numbers its versions. Each change the SOC should
 * see makes a new version, written before the incident itself so that a crash in between
 * is redone rather than lost:
 *
 *   incident:{id}              the incident as it stands                      (JSON)
 *   incident:{id}:findings     finding id → the version that added it         (hash)
 *   incident:{id}:v:<n>        version n, as the sinks receive it             (JSON)
 *   incident:{id}:lock         held while one notifier updates it
 *   incidents:by-time          every incident by its last change
 *
 * A redelivered finding (same id) or revocation (same outcome) changes nothing, so it makes
 * no version and nothing is sent.
 */
export const INCIDENT_KEYS = {
  head: (id: string) => `incident:{${id}}`,
  findings: (id: string) => `incident:{${id}}:findings`,
  version: (id: string, v: number) => `incident:{${id}}:v:${v}`,
  lock: (id: string) => `incident:{${id}}:lock`,
  /** Per sink: the highest version delivered (or given up on). Used by the dispatcher. */
  delivered: (id: string) => `incident:{${id}}:delivered`,
  /** Per sink: its retry round and when it is next due. Used by the dispatcher. */
  retry: (id: string) => `incident:{${id}}:retry`,
  /** Held while one notifier delivers the incident to one sink. */
  sending: (id: string, sink: string) => `incident:{${id}}:sending:${sink}`,
  byTime: "incidents:by-time",
  /** Versions waiting for a sink: member `<sink> <incident id> <version>`, score = when due. */
  outbox: "incidents:outbox",
} as const;

export const INCIDENT_TTL_MS = 30 * 24 * 3600 * 1000;
export const VERSION_TTL_MS = 7 * 24 * 3600 * 1000;
/**
 * Versions kept per incident: each is the whole incident as the sinks receive it, so a sink
 * that is behind by more than this many (a busy task while it was down) gets the newest
 * ones, which hold everything the older ones did. Without a bound a task that keeps
 * drifting keeps one version per batch of findings for a week.
 */
export const VERSIONS_KEPT = 100;
const MAX_EVIDENCE = 20;
const MAX_OBSERVED = 50;

/** The incident id of a task: the same however often, and by whichever notifier, it is computed. */
export function incidentIdFor(taskId: string): string {
  return createHash("sha256").update(`incident|${taskId}`).digest("hex").slice(0, 32);
}

export function maxSeverity(a: Severity, b: Severity): Severity {
  return SEVERITY_RANK[a] >= SEVERITY_RANK[b] ? a : b;
}

export function atLeast(severity: Severity, min: Severity): boolean {
  return SEVERITY_RANK[severity] >= SEVERITY_RANK[min];
}

export function emptyIncident(taskId: string, nowMs: number): Incident {
  return {
    id: incidentIdFor(taskId),
    taskId,
    status: "open",
    version: 0,
    severity: "info",
    title: `Agent drift in task ${taskId}`,
    agents: [],
    findingCount: 0,
    maxConfidence: 0,
    rules: [],
    tags: { owaspAgentic: [], maestro: [], nistAiRmf: [] },
    observed: { tools: [], destinations: [] },
    evidence: [],
    revocations: [],
    alerts: [],
    createdAtMs: nowMs,
    updatedAtMs: nowMs,
  };
}

const union = (a: string[], b: Iterable<string>, limit = Number.POSITIVE_INFINITY) => {
  const out = [...a];
  for (const x of b) if (!out.includes(x) && out.length < limit) out.push(x);
  return out;
};

/** Tools and destinations a finding's evidence names (`observed.tool`, `observed.destination`, `observed.domain`). */
export function observedOf(f: Pick<Finding, "evidence">): { tools: string[]; destinations: string[] } {
  const o = f.evidence.observed;
  const tools: string[] = [];
  const destinations: string[] = [];
  if (o && typeof o === "object") {
    const rec = o as Record<string, unknown>;
    if (typeof rec.tool === "string" && rec.tool) tools.push(rec.tool);
    for (const k of ["destination", "domain"]) {
      const v = rec[k];
      if (typeof v === "string" && v && !destinations.includes(v)) destinations.push(v);
    }
  }
  return { tools, destinations };
}

function bySeverityThenNewest(a: IncidentEvidence, b: IncidentEvidence): number {
  return SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || b.detectedAtMs - a.detectedAtMs;
}

/** The most severe of some findings (the newest among equals). */
export function mostSevere(findings: Finding[]): Finding | undefined {
  let top: Finding | undefined;
  for (const f of findings) {
    if (!top || SEVERITY_RANK[f.severity] > SEVERITY_RANK[top.severity]) top = f;
    else if (SEVERITY_RANK[f.severity] === SEVERITY_RANK[top.severity] && f.detectedAtMs >= top.detectedAtMs) top = f;
  }
  return top;
}

function titleOf(i: Pick<Incident, "taskId" | "agents" | "findingCount" | "alerts" | "revocations">): string {
  const agents =
    i.agents.length === 0
      ? "an agent"
      : i.agents.length <= 2
        ? i.agents.join(" and ")
        : `${i.agents[0]} and ${i.agents.length - 1} more agents`;
  const unrevoked = i.revocations.some((r) => r.status === "dead_lettered" || r.status === "failed");
  if (i.findingCount === 0) return unrevoked ? `Credential of task ${i.taskId} could not be revoked` : `Agent drift in task ${i.taskId}`;
  return `Agent drift: ${agents} in task ${i.taskId}${unrevoked ? " (credential not revoked)" : ""}`;
}

/**
 * Adds findings the incident does not have yet (the caller removed those it has): count,
 * severity (the highest), first and last seen, rules, agents, framework tags, what they
 * observed, and their evidence (the most severe and newest are kept). The version is the
 * caller's business.
 */
export function foldFindings(incident: Incident, fresh: Finding[], nowMs: number): Incident {
  if (fresh.length === 0) return incident;
  const next: Incident = structuredClone(incident);
  for (const f of fresh) {
    next.findingCount++;
    next.severity = maxSeverity(next.severity, f.severity);
    next.maxConfidence = Math.max(next.maxConfidence, f.confidence);
    next.firstSeenMs = next.firstSeenMs === undefined ? f.spanEndMs : Math.min(next.firstSeenMs, f.spanEndMs);
    next.lastSeenMs = next.lastSeenMs === undefined ? f.spanEndMs : Math.max(next.lastSeenMs, f.spanEndMs);
    if (f.agentId && !next.agents.includes(f.agentId)) next.agents.push(f.agentId);
    const rule = next.rules.find((r) => r.ruleId === f.ruleId);
    if (rule) {
      rule.count++;
      rule.severity = maxSeverity(rule.severity, f.severity);
    } else next.rules.push({ ruleId: f.ruleId, kind: f.kind, severity: f.severity, count: 1 });
    next.tags.owaspAgentic = union(next.tags.owaspAgentic, f.tags.owaspAgentic);
    next.tags.maestro = union(next.tags.maestro, f.tags.maestro);
    next.tags.nistAiRmf = union(next.tags.nistAiRmf, f.tags.nistAiRmf);
    const seen = observedOf(f);
    next.observed.tools = union(next.observed.tools, seen.tools, MAX_OBSERVED);
    next.observed.destinations = union(next.observed.destinations, seen.destinations, MAX_OBSERVED);
    if (!next.evidence.some((e) => e.findingId === f.id)) {
      next.evidence.push({
        findingId: f.id,
        ruleId: f.ruleId,
        kind: f.kind,
        severity: f.severity,
        confidence: f.confidence,
        ...(f.agentId ? { agentId: f.agentId } : {}),
        stepIndex: f.stepIndex,
        traceId: f.traceId,
        spanId: f.spanId,
        explanation: f.explanation,
        observed: f.evidence.observed,
        expected: f.evidence.expected,
        spanEndMs: f.spanEndMs,
        detectedAtMs: f.detectedAtMs,
      });
    }
  }
  next.evidence = next.evidence.sort(bySeverityThenNewest).slice(0, MAX_EVIDENCE);
  next.rules.sort((a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || b.count - a.count);
  next.title = titleOf(next);
  next.updatedAtMs = nowMs;
  return next;
}

/** What a batch of new findings changed, in one line. */
export function findingsSummary(fresh: Finding[]): string {
  const top = mostSevere(fresh);
  if (!top) return "no new findings";
  // people count steps from 1 (as the web console shows them); `stepIndex` stays the 0-based index
  const one = `[${top.severity}] ${top.ruleId} at step ${top.stepIndex + 1}: ${top.explanation}`;
  if (fresh.length === 1) return one;
  const rules = [...new Set(fresh.map((f) => f.ruleId))];
  return `${fresh.length} new findings (${rules.join(", ")}); most severe: ${one}`;
}

export interface RevocationFold {
  incident: Incident;
  /** A change the SOC must see (a credential that could not be revoked, or was after all): a new version. */
  alert?: IncidentAlert;
  summary: string;
}

/**
 * Notes a revocation outcome on the incident. Undefined when nothing changed (the same
 * outcome again, or an older one replayed after a newer). A credential that could not be
 * revoked raises an alert: `failed` (the revoker retries) at least high, `dead_lettered`
 * (it gave up) critical; one revoked after failing says so. A first-time success, a dry run
 * and further failed rounds are noted without a new version: they go out with the next one.
 */
export function foldRevocation(incident: Incident, r: Revocation, nowMs: number): RevocationFold | undefined {
  const prev = incident.revocations.find((x) => x.id === r.id);
  if (prev && r.completedAtMs < prev.atMs) return undefined;
  if (prev && prev.status === r.status && prev.attempts === r.attempts && prev.detail === r.detail) return undefined;
  const next: Incident = structuredClone(incident);
  const entry: IncidentRevocation = {
    id: r.id,
    credentialId: r.credentialId,
    credentialStore: r.credentialStore,
    status: r.status,
    detail: r.detail,
    attempts: r.attempts,
    findingId: r.findingId,
    decidedBy: r.decidedBy,
    atMs: r.completedAtMs,
  };
  const at = next.revocations.findIndex((x) => x.id === r.id);
  if (at >= 0) next.revocations[at] = entry;
  else next.revocations.push(entry);
  if (r.agentId && !next.agents.includes(r.agentId)) next.agents.push(r.agentId);
  const where = `${r.credentialId} (${r.credentialStore})`;
  let alert: IncidentAlert | undefined;
  let floor: Severity | undefined;
  if (r.status === "failed" && prev?.status !== "failed" && prev?.status !== "dead_lettered") {
    alert = {
      kind: "revocation_failed",
      revocationId: r.id,
      credentialId: r.credentialId,
      message: `credential ${where} could not be revoked yet: ${r.detail}; the revoker keeps trying`,
      atMs: r.completedAtMs,
    };
    floor = "high";
  } else if (r.status === "dead_lettered" && prev?.status !== "dead_lettered") {
    alert = {
      kind: "revocation_dead_lettered",
      revocationId: r.id,
      credentialId: r.credentialId,
      message: `credential ${where} could not be revoked: ${r.detail}; revoke it by hand`,
      atMs: r.completedAtMs,
    };
    floor = "critical";
  } else if ((r.status === "revoked" || r.status === "recorded") && (prev?.status === "failed" || prev?.status === "dead_lettered")) {
    alert = {
      kind: "revocation_recovered",
      revocationId: r.id,
      credentialId: r.credentialId,
      message: `credential ${where} ${r.status} after ${r.attempts} attempt(s)`,
      atMs: r.completedAtMs,
    };
  }
  if (alert) next.alerts.push(alert);
  if (floor) next.severity = maxSeverity(next.severity, floor);
  next.title = titleOf(next);
  next.updatedAtMs = nowMs;
  const summary = alert?.message ?? `credential ${where}: ${r.status} (${r.detail})`;
  return { incident: next, ...(alert ? { alert } : {}), summary };
}

/** Where new versions are queued for the sinks, before the incident itself is written. */
export interface Outbox {
  enqueue(update: IncidentUpdate): Promise<void>;
}

export interface IncidentBookOptions {
  outbox?: Outbox;
  now?: () => number;
  /** How long the update lock holds if its holder dies. */
  lockTtlMs?: number;
  /** How long to wait for another notifier's update before the batch is tried again later. */
  lockWaitMs?: number;
}

export async function readIncident(store: Store, id: string): Promise<Incident | undefined> {
  const raw = await store.get(INCIDENT_KEYS.head(id));
  return raw ? (JSON.parse(raw) as Incident) : undefined;
}

export async function readVersion(store: Store, id: string, version: number): Promise<IncidentUpdate | undefined> {
  const raw = await store.get(INCIDENT_KEYS.version(id, version));
  return raw ? (JSON.parse(raw) as IncidentUpdate) : undefined;
}

export class IncidentBook {
  private readonly now: () => number;
  private readonly owner = randomBytes(6).toString("hex");
  private lockSeq = 0;
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly options: IncidentBookOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The outbox new versions are queued in (set once the dispatcher exists). */
  set outbox(outbox: Outbox) {
    this.options.outbox = outbox;
  }

  get(id: string): Promise<Incident | undefined> {
    return readIncident(this.store, id);
  }

  forTask(taskId: string): Promise<Incident | undefined> {
    return this.get(incidentIdFor(taskId));
  }

  version(id: string, version: number): Promise<IncidentUpdate | undefined> {
    return readVersion(this.store, id, version);
  }

  /** Most recently changed first. */
  async list(query: { offset: number; limit: number }): Promise<Incident[]> {
    const ids = await this.store.sortedRange(INCIDENT_KEYS.byTime, { ...query, reverse: true });
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found.filter((i): i is Incident => i !== undefined);
  }

  /**
   * Adds a task's alertable findings to its incident. Returns the new version, or undefined
   * when every finding was already in it.
   */
  async addFindings(taskId: string, findings: Finding[]): Promise<IncidentUpdate | undefined> {
    const unique = [...new Map(findings.map((f) => [f.id, f])).values()];
    if (unique.length === 0) return undefined;
    const id = incidentIdFor(taskId);
    return this.withLock(id, async () => {
      const current = (await this.get(id)) ?? emptyIncident(taskId, this.now());
      const fresh = await this.unseen(current, unique);
      if (fresh.length === 0) return undefined;
      const next = { ...foldFindings(current, fresh, this.now()), version: current.version + 1 };
      const top = mostSevere(fresh);
      const update: IncidentUpdate = {
        type: "driftwatch.incident",
        incident: next,
        change: { cause: "findings", summary: findingsSummary(fresh) },
        findings: fresh,
        ...(top ? { finding: top } : {}),
      };
      await this.store.hashSet(INCIDENT_KEYS.findings(id), Object.fromEntries(fresh.map((f) => [f.id, String(next.version)])));
      await this.commit(next, update);
      return update;
    });
  }

  /**
   * Notes a revocation outcome on its task's incident. Returns the new version when the SOC
   * must see it (see `foldRevocation`); otherwise the incident is updated in place.
   */
  async addRevocation(r: Revocation): Promise<IncidentUpdate | undefined> {
    const id = incidentIdFor(r.taskId);
    return this.withLock(id, async () => {
      const existing = await this.get(id);
      const current = existing ?? emptyIncident(r.taskId, this.now());
      const fold = foldRevocation(current, r, this.now());
      if (!fold) return undefined;
      // a credential that simply ended with its task (completed, idle), on a task with nothing
      // to report: no incident (every finished task would have one); one that could not be
      // revoked is an incident whatever the trigger. A revocation for a finding may arrive
      // before the finding, and waits for it in the incident (version 0).
      const ended = r.trigger === "task_completed" || r.trigger === "task_idle";
      if (!existing && !fold.alert && ended) return undefined;
      if (!fold.alert) {
        await this.commit(fold.incident);
        return undefined;
      }
      const next = { ...fold.incident, version: current.version + 1 };
      const update: IncidentUpdate = {
        type: "driftwatch.incident",
        incident: next,
        change: { cause: "revocation", summary: fold.summary },
        findings: [],
        revocation: r,
      };
      await this.commit(next, update);
      return update;
    });
  }

  /**
   * The findings not in the incident yet. A finding's mark names the version that added
   * it; a mark above the incident's version, or naming a version that does not hold the
   * finding (written by an update that never finished, then reused), does not count.
   */
  private async unseen(current: Incident, findings: Finding[]): Promise<Finding[]> {
    const marks = await this.store.hashGet(
      INCIDENT_KEYS.findings(current.id),
      findings.map((f) => f.id),
    );
    const claimed = new Map<number, Finding[]>();
    const fresh: Finding[] = [];
    findings.forEach((f, i) => {
      const mark = marks[i];
      const v = mark === null || mark === undefined ? Number.NaN : Number(mark);
      if (!Number.isInteger(v) || v < 1 || v > current.version) fresh.push(f);
      else claimed.set(v, [...(claimed.get(v) ?? []), f]);
    });
    for (const [v, some] of claimed) {
      const record = await this.version(current.id, v);
      if (!record) continue; // long gone: it was sent then
      const held = new Set(record.findings.map((f) => f.id));
      for (const f of some) if (!held.has(f.id)) fresh.push(f);
    }
    const order = new Map(findings.map((f, i) => [f.id, i]));
    return fresh.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  }

  /** Writes a change: the version (and its place in the outbox) first, then the incident. */
  private async commit(next: Incident, update?: IncidentUpdate): Promise<void> {
    if (update) {
      await this.store.set(INCIDENT_KEYS.version(next.id, next.version), JSON.stringify(update), { ttlMs: VERSION_TTL_MS });
      if (next.version > VERSIONS_KEPT) await this.store.delete(INCIDENT_KEYS.version(next.id, next.version - VERSIONS_KEPT));
      await this.options.outbox?.enqueue(update);
    }
    await this.store.set(INCIDENT_KEYS.head(next.id), JSON.stringify(next), { ttlMs: INCIDENT_TTL_MS });
    await Promise.all([
      this.store.expire(INCIDENT_KEYS.findings(next.id), INCIDENT_TTL_MS),
      this.store.sortedAdd(INCIDENT_KEYS.byTime, [{ score: next.updatedAtMs, member: next.id }]),
    ]);
  }

  /** One update of an incident at a time: in this process (a queue), and across notifiers (a lock in the store). */
  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = this.chains.get(id) ?? Promise.resolve();
    let done: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      done = resolve;
    });
    const mine = before.then(() => gate);
    this.chains.set(id, mine);
    await before;
    try {
      return await this.withStoreLock(id, fn);
    } finally {
      done();
      if (this.chains.get(id) === mine) this.chains.delete(id);
    }
  }

  private async withStoreLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const key = INCIDENT_KEYS.lock(id);
    const token = `${this.owner}:${++this.lockSeq}`;
    const deadline = Date.now() + (this.options.lockWaitMs ?? 10_000);
    while (!(await this.store.setIfAbsent(key, token, { ttlMs: this.options.lockTtlMs ?? 30_000 }))) {
      if (Date.now() >= deadline) throw new Unavailable(`incident ${id} is being updated by another notifier`);
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    try {
      return await fn();
    } finally {
      if ((await this.store.get(key)) === token) await this.store.delete(key);
    }
  }
}
