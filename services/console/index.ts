import { Finding } from "../../schemas/finding.js";
import { TaskEvent } from "../../schemas/lifecycle.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { PolicyHolder } from "../detector/policy.js";
import { IncidentBook } from "../notifier/incident.js";
import { taskStoreFor } from "../pathfinder/task-store.js";
import { Approvals } from "../revoker/approvals.js";
import { RevocationLedger } from "../revoker/ledger.js";
import { AgentQuarantine } from "../revoker/quarantine.js";
import { decodeMessage } from "../runtime/decode.js";
import { listen } from "../runtime/http.js";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { createApi } from "./api.js";
import { AuditLog } from "./audit.js";
import { Authenticator } from "./auth.js";
import { ChangeWatch, EventHub } from "./events.js";
import { FindingLog, LifecycleLog } from "./read-model.js";
import { DEFAULT_WEB_DIR } from "./web-assets.js";

/** How often the console looks for changes other processes made, while a web console listens. */
const CHANGE_POLL_MS = 2_000;

/** console: keeps the findings read model, and serves the API over it, the task store and the revoker's ledger. */
export async function startConsole(ctx: ServiceContext): Promise<RunningService & { url: string }> {
  const findings = new FindingLog(ctx.store);
  const revocations = new RevocationLedger(ctx.store);
  // live updates for the web console: what this process records, and a poll of what others change
  const events = new EventHub();
  const findingStage = await startStage("console-findings", ctx, {
    name: "console-findings",
    input: topicName(ctx.config.topicPrefix, TOPICS.findings),
    parse: (m) => decodeMessage(Finding, m, "a finding"),
    handle: async (items) => {
      for (const { value } of items)
        if (await findings.record(value)) events.publish({ kind: "finding", taskId: value.taskId, id: value.id });
      return [];
    },
  });
  // the lifecycle events too: a revocation at a task's end names its event, which must resolve
  const lifecycle = new LifecycleLog(ctx.store);
  const lifecycleStage = await startStage("console-lifecycle", ctx, {
    name: "console-lifecycle",
    input: topicName(ctx.config.topicPrefix, TOPICS.lifecycle),
    parse: (m) => decodeMessage(TaskEvent, m, "a lifecycle event"),
    handle: async (items) => {
      for (const { value } of items)
        if (await lifecycle.record(value)) events.publish({ kind: "lifecycle", taskId: value.taskId, id: value.id });
      return [];
    },
  });
  const policy = new PolicyHolder(ctx.config.policyDir, ctx.logger);
  const { tokens, oidc } = ctx.config.api;
  const authenticator = new Authenticator({ tokens, ...(oidc ? { oidc } : {}) });
  const tasks = taskStoreFor(ctx.store, ctx.config.tasks);
  const approvals = new Approvals(ctx.store);
  const quarantine = new AgentQuarantine(ctx.store);
  const incidents = new IncidentBook(ctx.store);
  const watch = new ChangeWatch(
    events,
    {
      // the most recently active tasks as the list shows them: a new task, step or status changes it
      tasks: async () => {
        const { taskIds, total } = await tasks.list({ offset: 0, limit: 20 });
        const summaries = await Promise.all(taskIds.map((id) => tasks.summary(id)));
        return `${total}|${summaries.map((t) => (t ? `${t.taskId}:${t.status}:${t.steps}:${t.lastSeenMs}` : "")).join(",")}`;
      },
      // the findings another console replica recorded (its stage has the partition): this
      // replica's pages hear of them here
      finding: async () => `${await findings.count()}|${(await findings.list({ offset: 0, limit: 1 }))[0]?.id ?? ""}`,
      revocations: async () =>
        `${await revocations.count()}|${(await revocations.list({ offset: 0, limit: 20 })).map((r) => `${r.id}:${r.status}:${r.attempts}`).join(",")}`,
      approvals: async () => (await approvals.list({ offset: 0, limit: 50 })).map((a) => `${a.id}:${a.status}`).join(","),
      quarantine: async () => (await quarantine.list()).map((q) => `${q.agentId}:${q.atMs}`).join(","),
      incidents: async () => JSON.stringify((await incidents.list({ offset: 0, limit: 20 })).map((i) => [i.id, i.version])),
    },
    (err) => ctx.logger.warn({ err }, "console: could not poll for live updates"),
  );
  watch.start(CHANGE_POLL_MS);
  const app = createApi({
    tasks,
    policy: () => policy.current,
    findings,
    lifecycle,
    revocations,
    approvals,
    quarantine,
    incidents,
    events,
    webDir: DEFAULT_WEB_DIR,
    metrics: ctx.metrics,
    logger: ctx.logger,
    ready: async () => (await ctx.store.ping()) && (await ctx.bus.ready()),
    authenticator,
    audit: new AuditLog(ctx.store, ctx.bus, topicName(ctx.config.topicPrefix, TOPICS.audit)),
    now: () => ctx.clock.now(),
  });
  const loopback = ["127.0.0.1", "::1", "localhost"].includes(ctx.config.api.host);
  if (!authenticator.enabled && !loopback)
    ctx.logger.warn(
      { host: ctx.config.api.host },
      "the console API is listening beyond loopback without authentication: anyone who can reach it can register scopes, decide approvals and lift quarantines (set DRIFTWATCH_API_TOKEN, DRIFTWATCH_API_TOKENS_FILE or DRIFTWATCH_API_OIDC_*)",
    );
  const url = await listen(app, ctx.config.api.host, ctx.config.api.port);
  ctx.logger.info({ url: `${url}/api/v1/` }, "console API listening");
  return {
    name: "console",
    url,
    close: async () => {
      watch.stop();
      await app.close();
      policy.close();
      await Promise.all([findingStage.close(), lifecycleStage.close()]);
    },
  };
}
