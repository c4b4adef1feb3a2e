import { TOPICS, topicName } from "../../schemas/topics.js";
import { PolicyHolder } from "../detector/policy.js";
import { taskStoreFor } from "../pathfinder/task-store.js";
import type { SecretRef } from "../runtime/config.js";
import { Delivery } from "../runtime/delivery.js";
import { deliveryMetrics } from "../runtime/delivery-metrics.js";
import { FileSecret, fixedSecret } from "../runtime/secret-source.js";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { WebhookClient } from "../runtime/webhook-client.js";
import { Approvals } from "./approvals.js";
import { CaepCredentialStore } from "./credential-stores/caep.js";
import type { CredentialStore } from "./credential-stores/credential-store.js";
import { RecordOnlyCredentialStore } from "./credential-stores/record-only.js";
import { CredentialStores } from "./credential-stores/stores.js";
import { VaultCredentialStore } from "./credential-stores/vault.js";
import { WebhookCredentialStore } from "./credential-stores/webhook.js";
import { RevocationLedger } from "./ledger.js";
import { LifecycleResponder, lifecycleStage } from "./lifecycle.js";
import { AgentQuarantine } from "./quarantine.js";
import { emitsOf, merge, Responder, revokerStage } from "./revoker.js";

/** The credential stores the configuration names, all behind one delivery (retries, backoff, a circuit per endpoint). */
export function credentialStoresFor(ctx: ServiceContext): CredentialStores {
  const { revoker, delivery: d, webhookTimeoutMs } = ctx.config;
  const delivery = new Delivery({
    timeoutMs: webhookTimeoutMs,
    retry: { maxAttempts: d.maxAttempts, baseDelayMs: d.backoffMs, maxDelayMs: d.maxDelayMs, budgetMs: d.budgetMs },
    circuit: { failureThreshold: d.circuitFailures, coolDownMs: d.circuitCooldownMs },
    onEvent: deliveryMetrics(ctx.metrics),
  });
  let fallback: CredentialStore;
  if (revoker.webhook) fallback = new WebhookCredentialStore(revoker.webhook, new WebhookClient({ timeoutMs: webhookTimeoutMs, delivery }));
  else {
    ctx.logger.warn(
      "no default credential store configured: revocations of plain credential ids are recorded, not sent (set DRIFTWATCH_REVOKE_WEBHOOK_URL)",
    );
    fallback = new RecordOnlyCredentialStore();
  }
  const secret = (ref: SecretRef) => ("file" in ref ? new FileSecret(ref.file) : fixedSecret(ref.value));
  const vault = revoker.vault;
  const caep = revoker.caep;
  return new CredentialStores({
    default: fallback,
    ...(vault
      ? {
          vault: new VaultCredentialStore(
            {
              addr: vault.addr,
              token: secret(vault.token),
              ...(vault.namespace ? { namespace: vault.namespace } : {}),
              prefixRoots: vault.prefixRoots,
              timeoutMs: vault.timeoutMs,
            },
            delivery,
          ),
        }
      : {}),
    ...(caep
      ? {
          caep: new CaepCredentialStore(
            {
              receiverUrl: caep.receiverUrl,
              issuer: caep.issuer,
              audience: caep.audience,
              signingKey: caep.signingKey,
              ...(caep.keyId ? { keyId: caep.keyId } : {}),
              ...(caep.authorization ? { authorization: fixedSecret(caep.authorization) } : {}),
              timeoutMs: caep.timeoutMs,
            },
            delivery,
          ),
        }
      : {}),
  });
}

export async function startRevoker(ctx: ServiceContext): Promise<RunningService> {
  const policy = new PolicyHolder(ctx.config.policyDir, ctx.logger);
  policy.watch();
  const tasks = taskStoreFor(ctx.store, ctx.config.tasks);
  const responder = new Responder({
    tasks,
    store: ctx.store,
    stores: credentialStoresFor(ctx),
    ledger: new RevocationLedger(ctx.store),
    approvals: new Approvals(ctx.store),
    quarantine: new AgentQuarantine(ctx.store),
    policy: () => policy.current,
    minSeverity: ctx.config.revoker.minSeverity,
    maxAttempts: ctx.config.revoker.maxAttempts,
    retryBaseMs: ctx.config.revoker.retryBaseMs,
    retryMaxMs: ctx.config.revoker.retryMaxMs,
    // a claim outlives one delivery (its whole time budget) with room to spare
    claimTtlMs: 2 * ctx.config.delivery.budgetMs + 10_000,
    recentTaskMs: ctx.config.tasks.idleMs,
    metrics: ctx.metrics,
  });
  const lifecycle = new LifecycleResponder({ responder, tasks, store: ctx.store, policy: () => policy.current });
  const stage = await startStage("revoker", ctx, revokerStage(ctx.config.topicPrefix, responder));
  // the task lifecycle (ended, context changed, silent, credential reused): its own consumer group
  const lifecycleStageRunning = await startStage("revoker", ctx, lifecycleStage(ctx.config.topicPrefix, lifecycle));
  // failed revocations to retry, approvals to carry out, ended tasks past their grace: looked at every DRIFTWATCH_REVOKE_SWEEP_MS
  const log = ctx.logger.child({ stage: "revoker" });
  const revocations = topicName(ctx.config.topicPrefix, TOPICS.revocations);
  const deadletter = topicName(ctx.config.topicPrefix, TOPICS.deadletter);
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = (async () => {
      const out = await responder.retryDue();
      merge(out, await responder.approvalsDue());
      merge(out, await lifecycle.due());
      const emits = emitsOf(out, revocations, deadletter);
      for (const e of emits) await ctx.bus.publish(e.topic, [e.message]);
    })()
      .catch((err: unknown) => log.warn({ err }, "revoker sweep failed; trying again at the next interval"))
      .finally(() => {
        running = undefined;
      });
  }, ctx.config.revoker.sweepMs);
  timer.unref();
  return {
    name: "revoker",
    close: async () => {
      clearInterval(timer);
      // a sweep in flight finishes (its outcome recorded) before the store closes under it
      await running;
      policy.close();
      await lifecycleStageRunning.close();
      await stage.close();
    },
  };
}
