import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { Logger } from "pino";

/** An HTTP server with the project's limits: bounded bodies, no trust in client input, quiet request logs. */
export function createHttpServer(options: { logger: Logger; bodyLimit: number }): FastifyInstance {
  return Fastify({
    loggerInstance: options.logger.child({ component: "http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    return503OnClosing: true,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
  });
}

export async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const addr = app.server.address();
  return typeof addr === "object" && addr
    ? `http://${addr.address.includes(":") ? `[${addr.address}]` : addr.address}:${addr.port}`
    : String(addr);
}
