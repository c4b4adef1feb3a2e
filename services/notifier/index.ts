import { TOPICS, topicName } from "../../schemas/topics.js";
import { Delivery } from "../runtime/delivery.js";
import { deliveryMetrics } from "../runtime/delivery-metrics.js";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { WebhookClient } from "../runtime/webhook-client.js";
import { NotifierMetrics } from "./metrics.js";
import { createNotifier } from "./notifier.js";
import { JsonLinesOutput } from "./outputs/jsonl.js";
import type { AlertOutput } from "./outputs/output.js";
import { SlackOutput } from "./outputs/slack.js";
import { SplunkHecOutput } from "./outputs/splunk-hec.js";
import { SyslogOutput } from "./outputs/syslog.js";
import { WebhookOutput } from "./outputs/webhook.js";

/** The sinks the configuration names; the HTTP ones all behind one delivery (retries, backoff, a circuit per endpoint). */
export function alertOutputsFor(ctx: ServiceContext): AlertOutput[] {
  const { notifier: n, delivery: d, webhookTimeoutMs: timeoutMs } = ctx.config;
  const delivery = new Delivery({
    timeoutMs,
    retry: { maxAttempts: d.maxAttempts, baseDelayMs: d.backoffMs, maxDelayMs: d.maxDelayMs, budgetMs: d.budgetMs },
    circuit: { failureThreshold: d.circuitFailures, coolDownMs: d.circuitCooldownMs },
    onEvent: deliveryMetrics(ctx.metrics),
  });
  const outputs: AlertOutput[] = [];
  if (n.stdout) outputs.push(new JsonLinesOutput({ stream: process.stdout }, n.minSeverity.stdout));
  if (n.jsonl) outputs.push(new JsonLinesOutput({ path: n.jsonl.path }, n.minSeverity.jsonl));
  if (n.webhook) outputs.push(new WebhookOutput(n.webhook, new WebhookClient({ timeoutMs, delivery }), n.minSeverity.webhook));
  if (n.slack) outputs.push(new SlackOutput({ url: n.slack.url, timeoutMs }, delivery, n.minSeverity.slack));
  if (n.splunk) outputs.push(new SplunkHecOutput({ ...n.splunk, timeoutMs }, delivery, n.minSeverity.splunk));
  if (n.syslog) outputs.push(new SyslogOutput({ ...n.syslog, timeoutMs }, n.minSeverity.syslog));
  return outputs;
}

/**
 * The notifier: two stages (`agent.findings`, `agent.revocations`) over one incident book
 * and one dispatcher, and a sweep every DRIFTWATCH_ALERT_SWEEP_MS for alerts to retry.
 */
export async function startNotifier(ctx: ServiceContext): Promise<RunningService> {
  const log = ctx.logger.child({ stage: "notifier" });
  const outputs = alertOutputsFor(ctx);
  const deadletter = topicName(ctx.config.topicPrefix, TOPICS.deadletter);
  const { retry } = ctx.config.notifier;
  const notifier = createNotifier({
    store: ctx.store,
    outputs,
    logger: log,
    metrics: new NotifierMetrics(ctx.metrics.registry),
    rounds: retry.rounds,
    retryBaseMs: retry.baseMs,
    retryMaxMs: retry.maxMs,
    // a version queued by a notifier that then died is taken up by another after this long
    leaseMs: 2 * ctx.config.delivery.budgetMs + 10_000,
    onDeadLetter: (letters) =>
      ctx.bus.publish(
        deadletter,
        letters.map((l) => ({ key: null, value: JSON.stringify(l), headers: { "driftwatch-reason": l.reason.slice(0, 200) } })),
      ),
  });
  log.info({ sinks: notifier.dispatcher.sinks }, "alert sinks");
  const findings = await startStage("notifier", ctx, notifier.findingsStage(ctx.config.topicPrefix));
  const revocations = await startStage("notifier-revocations", ctx, notifier.revocationsStage(ctx.config.topicPrefix));
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    notifier
      .sweep()
      .catch((err: unknown) => log.warn({ err }, "alert sweep failed; trying again shortly"))
      .finally(() => {
        sweeping = false;
      });
  }, retry.sweepMs);
  timer.unref();
  return {
    name: "notifier",
    close: async () => {
      clearInterval(timer);
      await findings.close();
      await revocations.close();
      await notifier.close();
    },
  };
}
