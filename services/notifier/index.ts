import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { WebhookClient } from "../runtime/webhook-client.js";
import { notifierStage } from "./notifier.js";
import type { AlertOutput } from "./outputs/output.js";
import { StdoutOutput } from "./outputs/stdout.js";
import { WebhookOutput } from "./outputs/webhook.js";

export function alertOutputsFor(ctx: ServiceContext): AlertOutput[] {
  const outputs: AlertOutput[] = [];
  if (ctx.config.notifier.stdout) outputs.push(new StdoutOutput());
  const hook = ctx.config.notifier.webhook;
  if (hook) outputs.push(new WebhookOutput(hook, new WebhookClient({ timeoutMs: ctx.config.webhookTimeoutMs })));
  return outputs;
}

export async function startNotifier(ctx: ServiceContext): Promise<RunningService> {
  return startStage(
    "notifier",
    ctx,
    notifierStage(ctx.config.topicPrefix, { outputs: alertOutputsFor(ctx), store: ctx.store, logger: ctx.logger }),
  );
}
