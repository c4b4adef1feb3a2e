import { TOPICS, topicName } from "../../schemas/topics.js";
import { listen } from "../runtime/http.js";
import type { RunningService, ServiceContext } from "../runtime/service.js";
import { createGateway } from "./gateway.js";

export async function startGateway(ctx: ServiceContext): Promise<RunningService & { url: string }> {
  const app = createGateway({
    bus: ctx.bus,
    topic: topicName(ctx.config.topicPrefix, TOPICS.otlpSpans),
    maxBodyBytes: ctx.config.otlp.maxBodyBytes,
    maxInflight: ctx.config.otlp.maxInflight,
    logger: ctx.logger,
    metrics: ctx.metrics,
  });
  const url = await listen(app, ctx.config.otlp.host, ctx.config.otlp.port);
  ctx.logger.info({ url: `${url}/v1/traces` }, "OTLP/HTTP gateway listening");
  return { name: "gateway", url, close: () => app.close() };
}
