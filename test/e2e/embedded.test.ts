import { afterAll, beforeAll, describe, it } from "vitest";
import { type App, startEmbedded } from "../../services/cli/app.js";
import { loadConfig } from "../../services/runtime/config.js";
import { testLogger } from "../support/ports.js";
import { newSecret, WebhookReceiver } from "../support/webhook-receiver.js";
import { runAgentAndCheckPipeline } from "./pipeline-checks.js";

/** The embedded mode: every stage in one process, in-process bus and store, no Kafka, no Redis. */
describe("end to end, embedded mode", () => {
  let app: App;
  const revoke = new WebhookReceiver(newSecret());
  const alert = new WebhookReceiver(newSecret());

  beforeAll(async () => {
    await Promise.all([revoke.start(), alert.start()]);
    const config = loadConfig({
      DRIFTWATCH_LOG_LEVEL: "silent",
      DRIFTWATCH_OTLP_PORT: "0",
      DRIFTWATCH_API_PORT: "0",
      DRIFTWATCH_POLICY_DIR: "policies",
      DRIFTWATCH_ALERT_STDOUT: "false",
      DRIFTWATCH_REVOKE_WEBHOOK_URL: revoke.url,
      DRIFTWATCH_REVOKE_WEBHOOK_SECRET: revoke.secret,
      DRIFTWATCH_ALERT_WEBHOOK_URL: alert.url,
      DRIFTWATCH_ALERT_WEBHOOK_SECRET: alert.secret,
    });
    app = await startEmbedded(config, { logger: testLogger });
  });

  afterAll(async () => {
    await app?.close();
    await Promise.all([revoke.stop(), alert.stop()]);
  });

  it("flags the out-of-scope step, revokes its credential once, alerts; the benign task raises nothing and its credential ends with it", async () => {
    await runAgentAndCheckPipeline({ gateway: app.gatewayUrl as string, api: app.apiUrl as string }, { revoke, alert });
  });
});
