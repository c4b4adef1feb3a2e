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
import { FindingLog, LifecycleLog } from "./read-model.js";

/** console: keeps the findings read model, and serves the API over it, the task store and the revoker's ledger. */
export async function startConsole(ctx: ServiceContext): Promise<RunningService & { url: string }> {
  const findings = new FindingLog(ctx.store);
  const revocations = new RevocationLedger(ctx.store);
  const findingStage = await startStage("console-findings", ctx, {
    name: "console-findings",
    input: topicName(ctx.config.topicPrefix, TOPICS.findings),
    parse: (m) => decodeMessage(Finding, m, "a finding"),
    handle: async (items) => {
      for (const { value } of items) await findings.record(value);
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
      for (const { value } of items) await lifecycle.record(value);
      return [];
    },
  });
  const policy = new PolicyHolder(ctx.config.policyDir, ctx.logger);
  const { tokens, oidc } = ctx.config.api;
  const authenticator = new Authenticator({ tokens, ...(oidc ? { oidc } : {}) });
  const app = createApi({
    tasks: taskStoreFor(ctx.store, ctx.config.tasks),
    policy: () => policy.current,
    findings,
    lifecycle,
    revocations,
    approvals: new Approvals(ctx.store),
    quarantine: new AgentQuarantine(ctx.store),
    incidents: new IncidentBook(ctx.store),
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
      await app.close();
      policy.close();
      await Promise.all([findingStage.close(), lifecycleStage.close()]);
    },
  };
}
