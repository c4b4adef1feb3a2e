import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";
import { TaskScope } from "../../schemas/action.js";
import { ApprovalDecision, ApprovalStatus } from "../../schemas/approval.js";
import { type Policy, profileFor } from "../detector/policy.js";
import { limitOfProfile, limitOfScope, wider } from "../detector/scope.js";
import type { IncidentBook } from "../notifier/incident.js";
import { TASK_STATUSES, type TaskStore } from "../pathfinder/task-store.js";
import type { Approvals } from "../revoker/approvals.js";
import type { RevocationLedger } from "../revoker/ledger.js";
import type { AgentQuarantine } from "../revoker/quarantine.js";
import { createHttpServer } from "../runtime/http.js";
import type { Metrics } from "../runtime/telemetry.js";
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
    const byStep = new Map<string, string[]>();
    for (const f of findings) byStep.set(`${f.traceId}:${f.spanId}`, [...(byStep.get(`${f.traceId}:${f.spanId}`) ?? []), f.id]);
    return {
      task,
      // who delegated to this task (root first) and whom it delegated to
      delegation: { lineage: task.lineage ?? [], tree: below },
      path: path.map((s) => ({ ...s, findings: byStep.get(s.id) ?? [] })),
      findings,
      revocations,
    };
  });

  /**
   * The scope registry: a task's scope, registered before or while it runs (by the
   * platform that starts the agent, not by the agent). It may only narrow: the agent's
   * profile, the delegating task's scope, and a scope registered before.
   */
  app.put("/api/v1/tasks/:id/scope", async (req, reply) => {
    const { id } = TaskIdParam.parse(req.params);
    const { agent } = ScopeQuery.parse(req.query);
    const scope = TaskScope.parse(req.body);
    const [facts, before] = await Promise.all([deps.tasks.facts(id), deps.tasks.registeredScope(id)]);
    const problems: string[] = [];
    const agentId = agent ?? facts?.agentId;
    const profile = agentId && deps.policy ? profileFor(deps.policy(), { id: agentId }) : undefined;
    if (profile) problems.push(...wider(scope, limitOfProfile(profile)).map((p) => `beyond profile "${profile.id}": ${p}`));
    if (facts?.parentTaskId) {
      const parent = await deps.tasks.facts(facts.parentTaskId);
      if (parent?.scope)
        problems.push(...wider(scope, limitOfScope(parent.scope)).map((p) => `beyond delegating task ${facts.parentTaskId}: ${p}`));
    }
    if (before) problems.push(...wider(scope, limitOfScope(before)).map((p) => `beyond the scope registered before: ${p}`));
    if (problems.length > 0) return reply.code(422).send({ error: "a task's scope may only narrow", details: problems });
    await deps.tasks.registerScope(id, scope);
    return reply.code(before ? 200 : 201).send({ taskId: id, scope, ...(profile ? { profile: profile.id } : {}) });
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
