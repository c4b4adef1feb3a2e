import { taskStoreFor } from "../pathfinder/task-store.js";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { WebhookClient } from "../runtime/webhook-client.js";
import type { CredentialStore } from "./credential-stores/credential-store.js";
import { RecordOnlyCredentialStore } from "./credential-stores/record-only.js";
import { WebhookCredentialStore } from "./credential-stores/webhook.js";
import { revokerStage } from "./revoker.js";

export function credentialStoreFor(ctx: ServiceContext): CredentialStore {
  const hook = ctx.config.revoker.webhook;
  if (hook) return new WebhookCredentialStore(hook, new WebhookClient({ timeoutMs: ctx.config.webhookTimeoutMs }));
  ctx.logger.warn("no credential store configured: revocations are recorded, not sent (set DRIFTWATCH_REVOKE_WEBHOOK_URL)");
  return new RecordOnlyCredentialStore();
}

export async function startRevoker(ctx: ServiceContext): Promise<RunningService> {
  return startStage(
    "revoker",
    ctx,
    revokerStage(ctx.config.topicPrefix, {
      tasks: taskStoreFor(ctx.store, ctx.config.tasks),
      store: ctx.store,
      credentialStore: credentialStoreFor(ctx),
      minSeverity: ctx.config.revoker.minSeverity,
      metrics: ctx.metrics,
    }),
  );
}
