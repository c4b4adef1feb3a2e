import type { FastifyInstance, FastifyRequest } from "fastify";
import pLimit from "p-limit";
import type { Logger } from "pino";
import { z } from "zod";
import { ApprovalDecision, ApprovalStatus } from "../../schemas/approval.js";
import { type CredentialRegistration, CredentialsRegistration, ScopeRegistration } from "../../schemas/lifecycle.js";
import { type Policy, profileFor } from "../detector/policy.js";
import { limitOfProfile, limitOfScope, wider } from "../detector/scope.js";
import type { IncidentBook } from "../notifier/incident.js";
import { TASK_STATUSES, type TaskStore } from "../pathfinder/task-store.js";
import type { Approvals } from "../revoker/approvals.js";
import type { RevocationLedger } from "../revoker/ledger.js";
import type { AgentQuarantine } from "../revoker/quarantine.js";
import { createHttpServer } from "../runtime/http.js";
import type { Metrics } from "../runtime/telemetry.js";
import type { AuditLog } from "./audit.js";
import { type Actor, ANONYMOUS, type Authenticator, allows, type Role } from "./auth.js";
import { CredentialRegistrationError, type ResolvedCredential, resolveCredential, taskCredentials } from "./credentials.js";
import type { EventHub } from "./events.js";
import type { FindingLog, LifecycleLog } from "./read-model.js";
import { withReadableTimes } from "./times.js";
import { serveWebConsole } from "./web-assets.js";

/** The console API for SOC analysts, under /api/v1/, plus health and metrics. */
export interface ApiDeps {
  tasks: TaskStore;
  /** The policy in force: a registered scope may only narrow the agent's profile. */
  policy?: () => Policy;
  findings: FindingLog;
  /** The tasks' lifecycle events: what a revocation at a task's end names (absent: not kept here). */
  lifecycle?: LifecycleLog;
  /** The revoker's ledger. */
  revocations: RevocationLedger;
  approvals: Approvals;
  quarantine: AgentQuarantine;
  /** The notifier's incidents (one per task), read-only here. */
  incidents?: IncidentBook;
  metrics: Metrics;
  logger: Logger;
  ready: () => Promise<boolean>;
  /**
   * Who may call /api/v1 and with which role (services/console/auth.ts): static tokens, OIDC
   * tokens. Absent, or configured with nothing: every caller is the local operator (loopback use).
   */
  authenticator?: Authenticator;
  /** Where every write asked of the API is recorded, allowed or not. */
  audit?: AuditLog;
  now?: () => number;
  /** Live updates for the web console (`GET /api/v1/events`); absent: no live updates. */
  events?: EventHub;
  /**
   * The web console's built files, served at `/` (the console service gives
   * dist/console-web: web-assets.ts); absent: no web console.
   */
  webDir?: string;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated caller of an /api/v1 route (set before its handler runs). */
    actor?: Actor;
    /** What a write changed, in short, for its audit record. */
    auditDetail?: Record<string, unknown>;
  }
  interface FastifyContextConfig {
    /** The least role that may call the route (default: viewer for reads, admin for writes). */
    role?: Role;
  }
}

/** Who the ledger names as having decided: the authenticated identity. */
const byOf = (actor: Actor) => (actor.name === actor.id ? actor.id : `${actor.name} (${actor.id})`);
const READS = new Set(["GET", "HEAD"]);
const routeOf = (req: FastifyRequest) => req.routeOptions.url;

const Page = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
const TaskIdParam = z.object({ id: z.string().min(1).max(256) });
const IdParam = z.object({ id: z.string().min(1).max(256) });
const ApprovalFilter = Page.extend({ status: ApprovalStatus.optional() });
/** The actor of a decision or a lift is the caller's identity: a body cannot name one. */
const Lift = z.object({ comment: z.string().max(2_000).optional() }).strict();
const Decision = ApprovalDecision.omit({ by: true });
const AuditQuery = Page.extend({ actor: z.string().min(1).max(300).optional() });
const ScopeQuery = z.object({ agent: z.string().min(1).max(256).optional() });
const TaskFilter = Page.extend({
  status: z.enum(TASK_STATUSES).optional(),
  agent: z.string().min(1).max(256).optional(),
  /** `true`: only tasks with a finding; `false`: only tasks without. */
  flagged: z.enum(["true", "false"]).optional(),
  /** Last activity at or after / at or before: epoch ms or an ISO 8601 time. */
  from: z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((v) => Date.parse(v))]).optional(),
  to: z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((v) => Date.parse(v))]).optional(),
});

/** What the task counts are taken over: an agent's tasks (or all), by last activity. */
const CountsFilter = TaskFilter.pick({ agent: true, from: true, to: true });
/**
 * How many counts run at once (each walks up to 20,000 tasks); the rest wait their turn. Not
 * cached: an answer from before a change would stay on a page's screen until its next read
 * (the web console reads them every 10 s).
 */
const COUNTS_AT_ONCE = 2;

/** How deep the console walks a delegation tree below a task. */
const MAX_TREE_DEPTH = 8;
const MAX_TREE_NODES = 200;
/** A registration may carry 100 credentials of up to 1,024 characters each. */
const REGISTRATION_BODY_LIMIT = 256 * 1024;

/** The owner task a credential.reuse finding names (`evidence.expected.boundTo`). */
const boundToOf = (expected: unknown): string | undefined => {
  const boundTo = (expected as { boundTo?: unknown } | null)?.boundTo;
  return typeof boundTo === "string" ? boundTo : undefined;
};

interface TreeNode {
  taskId: string;
  agentId?: string;
  status?: string;
  steps?: number;
  children: TreeNode[];
}

export function createApi(deps: ApiDeps): FastifyInstance {
  const app = createHttpServer({ logger: deps.logger, bodyLimit: 64 * 1024 });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof z.ZodError) {
      return reply.code(400).send({ error: "bad request", details: err.issues.map((i) => `${i.path.join(".")}: ${i.message}`) });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) deps.logger.error({ err }, "api error");
    return reply.code(status).send({ error: status >= 500 ? "internal error" : err.message });
  });

  // Authorization is decided on the route the router matched (not on the raw URL, whose
  // escapes, case and slashes the router reads its own way): every /api/v1 route needs an
  // authenticated caller with the route's role; health, readiness and metrics stay open for
  // probes and scrapers, and a path no route matches is a 404 whoever asks.
  const authenticator = deps.authenticator;
  const now = deps.now ?? Date.now;
  app.addHook("onRequest", async (req, reply) => {
    if (!routeOf(req)?.startsWith("/api/")) return;
    const needed = req.routeOptions.config.role ?? (READS.has(req.method) ? "viewer" : "admin");
    const result = authenticator ? await authenticator.authenticate(req.headers.authorization) : { actor: ANONYMOUS };
    if ("status" in result) {
      if (result.status === 401) reply.header("www-authenticate", 'Bearer realm="driftwatch"');
      return reply.code(result.status).send({ error: result.error });
    }
    req.actor = result.actor;
    if (!allows(result.actor, needed)) {
      return reply.code(403).send({ error: `${result.actor.name} has role ${result.actor.role}; this needs ${needed} or above` });
    }
  });

  // every write asked of the API goes to the audit log before the answer does, allowed or not
  const audit = deps.audit;
  if (audit) {
    app.addHook("onSend", async (req, reply, payload) => {
      const route = routeOf(req);
      if (!route?.startsWith("/api/") || READS.has(req.method)) return payload;
      const status = reply.statusCode;
      const actor = req.actor;
      try {
        await audit.append({
          atMs: now(),
          actor: actor
            ? { id: actor.id, name: actor.name, role: actor.role, via: actor.via }
            : { id: "unauthenticated", name: "unauthenticated", via: "unauthenticated" },
          action: `${req.method} ${route}`,
          target: Object.fromEntries(Object.entries((req.params ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)])),
          outcome: status < 300 ? "ok" : status === 401 || status === 403 ? "denied" : status < 500 ? "rejected" : "error",
          status,
          ...(req.auditDetail ? { detail: req.auditDetail } : {}),
          remote: req.ip,
        });
      } catch (err) {
        deps.logger.error({ err, route, actor: actor?.id }, "could not write the audit record of an API write");
      }
      return payload;
    });
  }

  // every epoch-ms time in an answer gets its ISO 8601 string beside it, and ms values are
  // rounded to the µs (times.ts); the numbers stay for programs
  app.addHook("preSerialization", async (req, _reply, payload) =>
    routeOf(req)?.startsWith("/api/") ? withReadableTimes(payload) : payload,
  );

  if (deps.webDir !== undefined) serveWebConsole(app, deps.webDir);

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => ((await deps.ready()) ? { status: "ready" } : reply.code(503).send({ status: "not ready" })));
  app.get("/metrics", async (_req, reply) => reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()));

  app.get("/api/v1/tasks", async (req) => {
    const q = TaskFilter.parse(req.query);
    const now = Date.now();
    const { taskIds, total, totalIsLowerBound } = await deps.tasks.list(
      {
        offset: q.offset,
        limit: q.limit,
        ...(q.status ? { status: q.status } : {}),
        ...(q.agent ? { agentId: q.agent } : {}),
        ...(q.from !== undefined ? { fromMs: q.from } : {}),
        ...(q.to !== undefined ? { toMs: q.to } : {}),
        ...(q.flagged ? { accept: async (id: string) => (await deps.findings.countForTask(id)) > 0 === (q.flagged === "true") } : {}),
      },
      now,
    );
    const tasks = (
      await Promise.all(
        taskIds.map(async (id) => {
          const [summary, findings] = await Promise.all([deps.tasks.summary(id, now), deps.findings.countForTask(id)]);
          // findings: how many the task has (the list shows which are flagged)
          return summary ? { ...summary, findings } : undefined;
        }),
      )
    ).filter((t) => t !== undefined);
    // total: how many tasks the filter matches (a lower bound past the walk's limit, and said so)
    return { tasks, total, ...(totalIsLowerBound ? { totalIsLowerBound } : {}), offset: q.offset, limit: q.limit };
  });

  /** The delegation tree below a task: its delegates, theirs, and so on (bounded). */
  const treeBelow = async (taskId: string, depth: number, budget: { nodes: number }): Promise<TreeNode> => {
    const summary = await deps.tasks.summary(taskId);
    const node: TreeNode = {
      taskId,
      ...(summary?.agentId ? { agentId: summary.agentId } : {}),
      ...(summary ? { status: summary.status, steps: summary.steps } : {}),
      children: [],
    };
    if (depth >= MAX_TREE_DEPTH) return node;
    for (const child of summary?.children ?? []) {
      if (--budget.nodes < 0) break;
      node.children.push(await treeBelow(child, depth + 1, budget));
    }
    return node;
  };

  // how many tasks there are per status and flagged, beside the list's filters (a path of
  // its own: under /tasks/ it would hide a task named "counts")
  const counting = pLimit(COUNTS_AT_ONCE);
  app.get("/api/v1/task-counts", async (req) => {
    const q = CountsFilter.parse(req.query);
    return counting(async () => {
      const now = Date.now();
      const counts = await deps.tasks.counts(
        {
          ...(q.agent ? { agentId: q.agent } : {}),
          ...(q.from !== undefined ? { fromMs: q.from } : {}),
          ...(q.to !== undefined ? { toMs: q.to } : {}),
        },
        async (id) => (await deps.findings.countForTask(id)) > 0,
        now,
      );
      return { ...counts, countedAtMs: now };
    });
  });

  app.get("/api/v1/tasks/:id", async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const task = await deps.tasks.summary(id);
    if (!task) return reply.code(404).send({ error: `no task ${id}` });
    const [path, findings, revocations, below, lifecycle] = await Promise.all([
      deps.tasks.path(id),
      deps.findings.forTask(id),
      deps.revocations.forTask(id),
      treeBelow(id, 0, { nodes: MAX_TREE_NODES }),
      deps.lifecycle?.forTask(id) ?? [],
    ]);
    const credentials = await taskCredentials(deps, id, Date.now(), revocations);
    const byStep = new Map<string, string[]>();
    for (const f of findings) byStep.set(`${f.traceId}:${f.spanId}`, [...(byStep.get(`${f.traceId}:${f.spanId}`) ?? []), f.id]);
    return {
      task,
      // who delegated to this task (root first) and whom it delegated to
      delegation: { lineage: task.lineage ?? [], tree: below },
      path: path.map((s) => ({ ...s, findings: byStep.get(s.id) ?? [] })),
      findings,
      revocations,
      // each credential with its status (task.credentials has their ids)
      credentials,
      // what ended or changed the task's access (completed, idle, scope or environment changed, …)
      lifecycle,
    };
  });

  /** Registered credentials made into references, or what is wrong with them (422). */
  const resolveAll = (entries: CredentialRegistration[]): { resolved: ResolvedCredential[]; problems: string[] } => {
    const resolved: ResolvedCredential[] = [];
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const entry of entries) {
      try {
        const c = resolveCredential(entry);
        if (seen.has(c.credentialId)) problems.push(`credential ${JSON.stringify(c.credentialId)} is listed twice`);
        seen.add(c.credentialId);
        resolved.push(c);
      } catch (err) {
        if (!(err instanceof CredentialRegistrationError)) throw err;
        problems.push(err.message);
      }
    }
    return { resolved, problems };
  };

  /** Credentials of these that are bound to another task (a credential is one task's). */
  const boundElsewhere = async (taskId: string, credentials: ResolvedCredential[]) => {
    if (credentials.length === 0) return { conflicts: [], known: new Set<string>() };
    const bindings = await deps.tasks.bindings.of(credentials.map((c) => c.credentialId));
    const conflicts = [...bindings.values()]
      .filter((b) => b.taskId !== taskId)
      .map((b) => ({ credentialId: b.credentialId, taskId: b.taskId }));
    return { conflicts, known: new Set([...bindings.keys()]) };
  };

  const conflictError = (conflicts: { credentialId: string; taskId: string }[]) => ({
    error:
      conflicts.length === 1
        ? `credential ${conflicts[0]?.credentialId} is bound to task ${conflicts[0]?.taskId}`
        : `${conflicts.length} credentials are bound to other tasks`,
    conflicts,
  });

  /**
   * Binds checked credentials to the task. A credential bound to another task between the
   * check and now (a span reported it) is a conflict: the others are bound, and said so.
   */
  const bind = async (taskId: string, agentId: string | undefined, credentials: ResolvedCredential[], atMs: number) => {
    const { bound, conflicts } = await deps.tasks.bindings.register(taskId, agentId, credentials, atMs);
    return { bound, conflicts: conflicts.map((b) => ({ credentialId: b.credentialId, taskId: b.taskId })) };
  };

  /**
   * Why no credential may be registered with a task any more: it ended (completed, went
   * idle, or its access was revoked, or recorded as to be revoked). Its lifecycle has run its course: a credential bound
   * now would outlive it.
   */
  const ENDED = new Set<string>(["completed", "idle", "revoked", "recorded"]);
  const endedReason = async (taskId: string, now: number): Promise<string | undefined> => {
    const summary = await deps.tasks.summary(taskId, now);
    if (!summary || !ENDED.has(summary.status)) return undefined;
    return `task ${taskId} has ended (${summary.status}): a credential registered now would outlive it`;
  };

  /**
   * The scope registry: a task's scope, registered before or while it runs (by the
   * platform that starts the agent, not by the agent). It may only narrow: the agent's
   * profile, the delegating task's scope, and a scope registered before.
   */
  app.put("/api/v1/tasks/:id/scope", { bodyLimit: REGISTRATION_BODY_LIMIT, config: { role: "admin" } }, async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const { agent } = ScopeQuery.parse(req.query);
    const { credentials: entries, ...scope } = ScopeRegistration.parse(req.body);
    req.auditDetail = { scope, ...(entries ? { credentials: entries.length } : {}), ...(agent ? { agent } : {}) };
    // everything is checked before anything is written: a bad credential or one bound to
    // another task registers neither the scope nor any credential
    const { resolved, problems: malformed } = resolveAll(entries ?? []);
    if (malformed.length > 0) return reply.code(422).send({ error: "credentials that cannot be registered", details: malformed });
    const [facts, registration] = await Promise.all([deps.tasks.facts(id), deps.tasks.registration(id)]);
    const before = registration?.scope;
    // the task's agent as its spans say, else as a first registration said: a registrant
    // cannot pick another agent's (wider) profile to check the scope against
    const known = facts?.agentId ?? registration?.agentId;
    if (agent && known && agent !== known) return reply.code(409).send({ error: `task ${id} is agent ${known}'s, not ${agent}'s` });
    const problems: string[] = [];
    const agentId = known ?? agent;
    const profile = agentId && deps.policy ? profileFor(deps.policy(), { id: agentId }) : undefined;
    if (profile) problems.push(...wider(scope, limitOfProfile(profile)).map((p) => `beyond profile "${profile.id}": ${p}`));
    if (facts?.parentTaskId) {
      const parent = await deps.tasks.facts(facts.parentTaskId);
      if (parent?.scope)
        problems.push(...wider(scope, limitOfScope(parent.scope)).map((p) => `beyond delegating task ${facts.parentTaskId}: ${p}`));
    }
    if (before) problems.push(...wider(scope, limitOfScope(before)).map((p) => `beyond the scope registered before: ${p}`));
    if (problems.length > 0) return reply.code(422).send({ error: "a task's scope may only narrow", details: problems });
    const { conflicts } = await boundElsewhere(id, resolved);
    if (conflicts.length > 0) return reply.code(409).send(conflictError(conflicts));
    const now = Date.now();
    const ended = resolved.length > 0 ? await endedReason(id, now) : undefined;
    if (ended) return reply.code(409).send({ error: ended });
    // the scope and the credentials registered with it at one time: those credentials are the
    // new scope's, and a scope change mid-task revokes only those bound before it
    await deps.tasks.registerScope(id, scope, now, agentId);
    const body = { taskId: id, scope, ...(profile ? { profile: profile.id } : {}) };
    if (entries === undefined) return reply.code(before ? 200 : 201).send(body);
    const bound = await bind(id, agentId, resolved, now);
    if (bound.conflicts.length > 0) return reply.code(409).send({ ...conflictError(bound.conflicts), ...body, credentials: bound.bound });
    return reply.code(before ? 200 : 201).send({ ...body, credentials: bound.bound });
  });

  /**
   * Credentials registered with a task alone (before or while it runs): each bound to it,
   * and revoked with it. All are checked first: a malformed one (422) or one bound to another
   * task (409) registers none.
   */
  app.put("/api/v1/tasks/:id/credentials", { bodyLimit: REGISTRATION_BODY_LIMIT, config: { role: "admin" } }, async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const { agent } = ScopeQuery.parse(req.query);
    const { credentials: entries } = CredentialsRegistration.parse(req.body);
    req.auditDetail = { credentials: entries.map((c) => ({ id: c.id, store: c.store, kind: c.kind })) };
    const { resolved, problems } = resolveAll(entries);
    if (problems.length > 0) return reply.code(422).send({ error: "credentials that cannot be registered", details: problems });
    const { conflicts, known } = await boundElsewhere(id, resolved);
    if (conflicts.length > 0) return reply.code(409).send(conflictError(conflicts));
    const now = Date.now();
    const ended = await endedReason(id, now);
    if (ended) return reply.code(409).send({ error: ended });
    const [facts, registration] = await Promise.all([deps.tasks.facts(id), deps.tasks.registration(id)]);
    const owner = facts?.agentId ?? registration?.agentId;
    if (agent && owner && agent !== owner) return reply.code(409).send({ error: `task ${id} is agent ${owner}'s, not ${agent}'s` });
    const bound = await bind(id, owner ?? agent, resolved, now);
    if (bound.conflicts.length > 0)
      return reply.code(409).send({ ...conflictError(bound.conflicts), taskId: id, credentials: bound.bound });
    // 201 when one was not bound before; 200 when all were (their store, kind and expiry updated)
    return reply.code(resolved.some((c) => !known.has(c.credentialId)) ? 201 : 200).send({ taskId: id, credentials: bound.bound });
  });

  app.get("/api/v1/tasks/:id/credentials", async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const [facts, credentials] = await Promise.all([deps.tasks.facts(id), taskCredentials(deps, id, Date.now())]);
    if (!facts && credentials.length === 0) return reply.code(404).send({ error: `no task ${id}` });
    return { taskId: id, credentials };
  });

  app.get("/api/v1/tasks/:id/scope", async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const [facts, registered] = await Promise.all([deps.tasks.facts(id), deps.tasks.registeredScope(id)]);
    if (!registered && !facts?.scope && !facts?.scopeError) return reply.code(404).send({ error: `no scope for task ${id}` });
    return {
      taskId: id,
      ...(registered ? { registered } : {}),
      // what the task's steps are checked against now
      ...(facts?.scope ? { inForce: { scope: facts.scope, source: facts.scopeSource ?? "span" } } : {}),
      ...(facts?.scopeError ? { declarationError: facts.scopeError } : {}),
    };
  });

  app.get("/api/v1/findings", async (req) => {
    const page = Page.parse(req.query);
    const [findings, total] = await Promise.all([deps.findings.list(page), deps.findings.count()]);
    return { findings, total, ...page };
  });

  /**
   * What a finding id names: a finding, or a lifecycle event (a revocation at a task's end
   * names its event, which is no finding), with the revocations it triggered.
   */
  app.get("/api/v1/findings/:id", async (req, reply) => {
    const { id } = IdParam.parse(req.params);
    const finding = await deps.findings.get(id);
    const event = finding ? undefined : await deps.lifecycle?.get(id);
    const taskId = finding?.taskId ?? event?.taskId;
    if (!taskId) return reply.code(404).send({ error: `no finding or lifecycle event ${id}` });
    // a reused credential's revocation is recorded under the task it is bound to (its owner)
    const owner = event?.ownerTaskId ?? (finding?.ruleId === "credential.reuse" ? boundToOf(finding.evidence.expected) : undefined);
    const ledgers = await Promise.all([taskId, ...(owner && owner !== taskId ? [owner] : [])].map((t) => deps.revocations.forTask(t)));
    const revocations = ledgers.flat().filter((r) => r.findingId === id);
    return finding ? { kind: "finding", finding, revocations } : { kind: "lifecycle_event", event, revocations };
  });

  app.get("/api/v1/revocations", async (req) => {
    const page = Page.parse(req.query);
    const [revocations, total] = await Promise.all([deps.revocations.list(page), deps.revocations.count()]);
    return { revocations, total, ...page };
  });

  app.get("/api/v1/revocations/:id", async (req, reply) => {
    const { id } = IdParam.parse(req.params);
    const [revocation, history] = await Promise.all([deps.revocations.get(id), deps.revocations.history(id)]);
    if (!revocation) return reply.code(404).send({ error: `no revocation ${id}` });
    return { revocation, history };
  });

  app.get("/api/v1/incidents", async (req, reply) => {
    if (!deps.incidents) return reply.code(404).send({ error: "incidents are not kept here" });
    const page = Page.parse(req.query);
    return { incidents: await deps.incidents.list(page), ...page };
  });

  app.get("/api/v1/incidents/:id", async (req, reply) => {
    const { id } = IdParam.parse(req.params);
    const incident = await deps.incidents?.get(id);
    return incident ?? reply.code(404).send({ error: `no incident ${id}` });
  });

  app.get("/api/v1/tasks/:id/incident", async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const incident = await deps.incidents?.forTask(id);
    return incident ?? reply.code(404).send({ error: `no incident for task ${id}` });
  });

  // responses held for a human (response rules with `ask_human`)
  app.get("/api/v1/approvals", async (req) => {
    const query = ApprovalFilter.parse(req.query);
    return { approvals: await deps.approvals.list(query), ...query };
  });

  app.get("/api/v1/approvals/:id", async (req, reply) => {
    const { id } = IdParam.parse(req.params);
    const approval = await deps.approvals.get(id);
    return approval ?? reply.code(404).send({ error: `no approval ${id}` });
  });

  app.post("/api/v1/approvals/:id/decision", { config: { role: "responder" } }, async (req, reply) => {
    const { id } = IdParam.parse(req.params);
    const asked = Decision.parse(req.body);
    const answer = { ...asked, by: byOf(req.actor ?? ANONYMOUS) };
    req.auditDetail = { decision: answer.decision, ...(answer.comment ? { comment: answer.comment } : {}) };
    const result = await deps.approvals.decide(id, answer, now());
    if (result.ok) {
      deps.logger.info({ approval: id, decision: answer.decision, by: answer.by }, "approval decided");
      return result.approval;
    }
    if (result.reason === "not_found") return reply.code(404).send({ error: `no approval ${id}` });
    // 409: the approval was decided already, or expired (its default was taken)
    return reply.code(409).send({ error: `approval ${id} ${result.reason.replace("_", " ")}`, approval: result.approval });
  });

  app.get("/api/v1/quarantine", async () => ({ agents: await deps.quarantine.list() }));

  app.post("/api/v1/agents/:id/quarantine/lift", { config: { role: "responder" } }, async (req, reply) => {
    const { id } = IdParam.parse(req.params);
    const { comment } = Lift.parse(req.body ?? {});
    const by = byOf(req.actor ?? ANONYMOUS);
    if (comment) req.auditDetail = { comment };
    const lifted = await deps.quarantine.lift(id);
    if (!lifted) return reply.code(404).send({ error: `agent ${id} is not quarantined` });
    deps.logger.info({ agent: id, by, comment }, "quarantine lifted");
    return { lifted, by, ...(comment ? { comment } : {}) };
  });

  /**
   * What changes, as it changes (server-sent events, events.ts): the web console listens and
   * reads again what an event names. Authenticated like every read; a bounded number of
   * streams (503 past it, with Retry-After), each ended when its client goes or the server closes.
   */
  const events = deps.events;
  // no HEAD: a HEAD answer carries no body, so a stream would hold its slot and send nothing
  app.get("/api/v1/events", { exposeHeadRoute: false }, async (req, reply) => {
    if (!events) return reply.code(404).send({ error: "no live updates here" });
    reply.hijack();
    if (!events.attach(reply.raw)) {
      reply.raw.writeHead(503, { "content-type": "application/json", "retry-after": "10" });
      reply.raw.end(JSON.stringify({ error: "too many live update streams; try again later" }));
      return;
    }
    req.log.debug({ clients: events.size }, "live update stream opened");
  });
  if (events) app.addHook("preClose", async () => events.close());

  // the audit log: every write asked of the API, newest first (responders and admins)
  app.get("/api/v1/audit", { config: { role: "responder" } }, async (req, reply) => {
    if (!deps.audit) return reply.code(404).send({ error: "no audit log is kept here" });
    const query = AuditQuery.parse(req.query);
    const { records, total } = await deps.audit.list(query);
    return { records, total, ...query };
  });

  return app;
}
