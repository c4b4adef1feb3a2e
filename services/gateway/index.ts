import { TOPICS, topicName } from "../../schemas/topics.js";
import { PolicyHolder } from "../detector/policy.js";
import { policyRedactor } from "../ingest/redaction.js";
import { listen } from "../runtime/http.js";
import type { RunningService, ServiceContext } from "../runtime/service.js";
import { AgentAuthenticator, readAgentTokens, readTrustBundle } from "./agent-auth.js";
import { createGateway } from "./gateway.js";

/** The agent authentication the configuration asks for; file problems name their variable. */
function agentAuthOf(ctx: ServiceContext): AgentAuthenticator | undefined {
  const a = ctx.config.agentAuth;
  if (a.mode === "none") return undefined;
  const read = <T>(name: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new Error(`${name}: ${(err as Error).message}`);
    }
  };
  const tokens = a.tokensFile ? read("DRIFTWATCH_OTLP_TOKENS_FILE", () => readAgentTokens(a.tokensFile as string)) : [];
  const bundle = a.spiffeBundle ? read("DRIFTWATCH_OTLP_SPIFFE_BUNDLE", () => readTrustBundle(a.spiffeBundle as string)) : undefined;
  if (!ctx.config.ingest.senderKey)
    throw new Error(
      "DRIFTWATCH_INGEST_SIGNING_KEY: required when the gateway authenticates agents (it signs each sender for ingest to check)",
    );
  return new AgentAuthenticator({
    mode: a.mode,
    tokens,
    ...(bundle
      ? { svid: { bundle, audience: a.spiffeAudience, ...(a.spiffeTrustDomain ? { trustDomain: a.spiffeTrustDomain } : {}) } }
      : {}),
  });
}

export async function startGateway(ctx: ServiceContext): Promise<RunningService & { url: string }> {
  // the policy's redaction applies before anything is published (reloaded with the policy)
  const agentAuth = agentAuthOf(ctx);
  const policy = new PolicyHolder(ctx.config.policyDir, ctx.logger);
  policy.watch();
  const app = createGateway({
    bus: ctx.bus,
    topic: topicName(ctx.config.topicPrefix, TOPICS.otlpSpans),
    maxBodyBytes: ctx.config.otlp.maxBodyBytes,
    maxInflight: ctx.config.otlp.maxInflight,
    limits: ctx.config.otlp.limits,
    redactor: policyRedactor(() => policy.current),
    logger: ctx.logger,
    metrics: ctx.metrics,
    ...(agentAuth ? { agentAuth } : {}),
    ...(ctx.config.ingest.senderKey ? { senderKey: ctx.config.ingest.senderKey } : {}),
  });
  const url = await listen(app, ctx.config.otlp.host, ctx.config.otlp.port);
  ctx.logger.info({ url: `${url}/v1/traces` }, "OTLP/HTTP gateway listening");
  return {
    name: "gateway",
    url,
    close: async () => {
      policy.close();
      await app.close();
    },
  };
}
