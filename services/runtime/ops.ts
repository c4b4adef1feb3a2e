import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { createHttpServer, listen } from "./http.js";
import type { Metrics } from "./telemetry.js";

/**
 * The operations port of a distributed process (`driftwatch run <service…>`): what an
 * orchestrator and Prometheus ask of every service, whether or not it serves HTTP of its
 * own. `/healthz`: the process answers (liveness). `/readyz`: its services have started and
 * the bus and store answer (readiness; 503 with the failing checks otherwise). `/metrics`:
 * the process's metrics in Prometheus text format, the consumer lag read at each scrape.
 */
export interface OpsServer {
  url: string;
  /** The process's services are running: readiness may now pass. */
  started(): void;
  close(): Promise<void>;
}

export interface OpsDeps {
  logger: Logger;
  metrics: Metrics;
  /** Named dependency checks, each true when the dependency answers. */
  checks: Record<string, () => Promise<boolean>>;
}

/** How long a readiness check may take before it counts as failed. */
const CHECK_TIMEOUT_MS = 2_000;

export function createOpsApp(deps: OpsDeps, isStarted: () => boolean): FastifyInstance {
  // nothing here reads a body: the smallest limit fastify takes
  const app = createHttpServer({ logger: deps.logger, bodyLimit: 1 });
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    const results: Record<string, boolean> = { started: isStarted() };
    await Promise.all(Object.entries(deps.checks).map(async ([name, check]) => (results[name] = await within(check, CHECK_TIMEOUT_MS))));
    const ready = Object.values(results).every(Boolean);
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "not ready", checks: results });
  });
  app.get("/metrics", async (_req, reply) => reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()));
  return app;
}

export async function startOpsServer(deps: OpsDeps, host: string, port: number): Promise<OpsServer> {
  let started = false;
  const app = createOpsApp(deps, () => started);
  const url = await listen(app, host, port);
  deps.logger.info({ url }, "ops endpoints listening (/healthz, /readyz, /metrics)");
  return {
    url,
    started: () => {
      started = true;
    },
    close: () => app.close(),
  };
}

async function within(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      check().catch(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
