import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
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
import { CredentialRegistrationError, type ResolvedCredential, resolveCredential, taskCredentials } from "./credentials.js";
import type { FindingLog } from "./read-model.js";

/** The console API for SOC analysts, under /api/v1/, plus health and metrics. */
export interface ApiDeps {
  tasks: TaskStore;
  /** The policy in force: a registered scope may only narrow the agent's profile. */
  policy?: () => Policy;
  findings: FindingLog;
  /** The revoker's ledger. */
  revocations: RevocationLedger;
  approvals: Approvals;
  quarantine: AgentQuarantine;
  /** The notifier's incidents (one per task), read-only here. */
  incidents?: IncidentBook;
  metrics: Metrics;
  logger: Logger;
  ready: () => Promise<boolean>;
  /** Bearer tokens the API requires under /api/v1 (none: open, for loopback use); a read token is good for GET only. */
  auth?: { token: string; readToken?: string };
}

/** Constant-time comparison of a presented token with the expected one. */
function sameToken(presented: string, expected: string): boolean {
  const a = createHash("sha256").update(presented).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

const Page = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
const TaskIdParam = z.object({ id: z.string().min(1).max(256) });
const IdParam = z.object({ id: z.string().min(1).max(256) });
const ApprovalFilter = Page.extend({ status: ApprovalStatus.optional() });
const Lift = z.object({ by: z.string().min(1).max(200), comment: z.string().max(2_000).optional() }).strict();
const ScopeQuery = z.object({ agent: z.string().min(1).max(256).optional() });
const TaskFilter = Page.extend({
  status: z.enum(TASK_STATUSES).optional(),
  agent: z.string().min(1).max(256).optional(),
  /** Last activity at or after / at or before: epoch ms or an ISO 8601 time. */
  from: z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((v) => Date.parse(v))]).optional(),
  to: z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((v) => Date.parse(v))]).optional(),
});

/** How deep the console walks a delegation tree below a task. */
const MAX_TREE_DEPTH = 8;
const MAX_TREE_NODES = 200;
/** A registration may carry 100 credentials of up to 1,024 characters each. */
const REGISTRATION_BODY_LIMIT = 256 * 1024;

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

  // with tokens configured, every /api/v1 request carries one: the token for anything, the
  // read token for reads only (health, readiness and metrics stay open for probes and scrapers)
  const auth = deps.auth;
  if (auth) {
    app.addHook("onRequest", async (req, reply) => {
      if (!req.url.startsWith("/api/")) return;
      const header = req.headers.authorization ?? "";
      const presented = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
      const read = req.method === "GET" || req.method === "HEAD";
      if (presented !== "" && sameToken(presented, auth.token)) return;
      if (presented !== "" && auth.readToken && sameToken(presented, auth.readToken)) {
        if (read) return;
        return reply.code(403).send({ error: "the read token cannot change anything; use DRIFTWATCH_API_TOKEN" });
      }
      return reply
        .code(401)
        .header("www-authenticate", 'Bearer realm="driftwatch"')
        .send({ error: presented === "" ? "a bearer token is required (Authorization: Bearer <token>)" : "invalid token" });
    });
  }

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => ((await deps.ready()) ? { status: "ready" } : reply.code(503).send({ status: "not ready" })));
  app.get("/metrics", async (_req, reply) => reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()));

  app.get("/api/v1/tasks", async (req) => {
    const q = TaskFilter.parse(req.query);
    const now = Date.now();
    const { taskIds, total } = await deps.tasks.list(
      {
        offset: q.offset,
        limit: q.limit,
        ...(q.status ? { status: q.status } : {}),
        ...(q.agent ? { agentId: q.agent } : {}),
        ...(q.from !== undefined ? { fromMs: q.from } : {}),
        ...(q.to !== undefined ? { toMs: q.to } : {}),
      },
      now,
    );
    const tasks = (await Promise.all(taskIds.map((id) => deps.tasks.summary(id, now)))).filter((t) => t !== undefined);
    return { tasks, ...(total !== undefined ? { total } : {}), offset: q.offset, limit: q.limit };
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

  app.get("/api/v1/tasks/:id", async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const task = await deps.tasks.summary(id);
    if (!task) return reply.code(404).send({ error: `no task ${id}` });
    const [path, findings, revocations, below] = await Promise.all([
      deps.tasks.path(id),
      deps.findings.forTask(id),
      deps.revocations.forTask(id),
      treeBelow(id, 0, { nodes: MAX_TREE_NODES }),
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
   * idle, or its access was revoked). Its lifecycle has run its course: a credential bound
   * now would outlive it.
   */
  const endedReason = async (taskId: string, now: number): Promise<string | undefined> => {
    const summary = await deps.tasks.summary(taskId, now);
    if (!summary || (summary.status !== "completed" && summary.status !== "idle" && summary.status !== "revoked")) return undefined;
    return `task ${taskId} has ended (${summary.status}): a credential registered now would outlive it`;
  };

  /**
   * The scope registry: a task's scope, registered before or while it runs (by the
   * platform that starts the agent, not by the agent). It may only narrow: the agent's
   * profile, the delegating task's scope, and a scope registered before.
   */
  app.put("/api/v1/tasks/:id/scope", { bodyLimit: REGISTRATION_BODY_LIMIT }, async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const { agent } = ScopeQuery.parse(req.query);
    const { credentials: entries, ...scope } = ScopeRegistration.parse(req.body);
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
  app.put("/api/v1/tasks/:id/credentials", { bodyLimit: REGISTRATION_BODY_LIMIT }, async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const { agent } = ScopeQuery.parse(req.query);
    const { credentials: entries } = CredentialsRegistration.parse(req.body);
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

  app.post("/api/v1/approvals/:id/decision", async (req, reply) => {
    const { id } = IdParam.parse(req.params);
    const answer = ApprovalDecision.parse(req.body);
    const result = await deps.approvals.decide(id, answer, Date.now());
    if (result.ok) {
      deps.logger.info({ approval: id, decision: answer.decision, by: answer.by }, "approval decided");
      return result.approval;
    }
    if (result.reason === "not_found") return reply.code(404).send({ error: `no approval ${id}` });
    // 409: the approval was decided already, or expired (its default was taken)
    return reply.code(409).send({ error: `approval ${id} ${result.reason.replace("_", " ")}`, approval: result.approval });
  });

  app.get("/api/v1/quarantine", async () => ({ agents: await deps.quarantine.list() }));

  app.post("/api/v1/agents/:id/quarantine/lift", async (req, reply) => {
    const { id } = IdParam.parse(req.params);
    const { by, comment } = Lift.parse(req.body);
    const lifted = await deps.quarantine.lift(id);
    if (!lifted) return reply.code(404).send({ error: `agent ${id} is not quarantined` });
    deps.logger.info({ agent: id, by, comment }, "quarantine lifted");
    return { lifted, by, ...(comment ? { comment } : {}) };
  });

  return app;
}
