import { createGunzip } from "node:zlib";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { decodeTraces, encodeExportResponse, OtlpDecodeError, type OtlpEncoding } from "../ingest/otlp.js";
import { BusBackpressure, type Publisher } from "../runtime/bus/bus.js";
import { createHttpServer } from "../runtime/http.js";
import type { Metrics } from "../runtime/telemetry.js";

/**
 * gateway: OTLP/HTTP `POST /v1/traces` (protobuf or JSON, optionally gzip) → `otlp_spans`.
 * The body is checked before it is accepted (400 with a clear message when malformed),
 * published as received (as the Collector's kafka exporter would), and answered per the
 * OTLP spec, with partial success when some spans were rejected.
 */
export interface GatewayOptions {
  bus: Publisher & { ready(): Promise<boolean> };
  topic: string;
  maxBodyBytes: number;
  /** Requests being published at once; beyond it, 429 with Retry-After. */
  maxInflight?: number;
  /** How long a publish may take before the request gets a 503. */
  publishTimeoutMs?: number;
  logger: Logger;
  metrics: Metrics;
}

const PROTOBUF_TYPES = ["application/x-protobuf", "application/protobuf"];

function encodingOf(req: FastifyRequest): OtlpEncoding {
  return String(req.headers["content-type"] ?? "").includes("json") ? "json" : "protobuf";
}

function sendStatus(reply: FastifyReply, encoding: OtlpEncoding, code: number, message: string) {
  // OTLP/HTTP: errors carry a google.rpc.Status; JSON clients get its JSON form
  if (encoding === "json") return reply.code(code).type("application/json").send({ code, message });
  return reply.code(code).type("text/plain; charset=utf-8").send(message);
}

export function createGateway(options: GatewayOptions): FastifyInstance {
  const app = createHttpServer({ logger: options.logger, bodyLimit: options.maxBodyBytes });
  // fastify's built-in parsers (JSON, and text/plain, which would let any text through to the decoder)
  app.removeContentTypeParser(["application/json", "text/plain"]);
  app.addContentTypeParser([...PROTOBUF_TYPES, "application/json"], { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.addHook("preParsing", async (req, _reply, payload) => {
    const enc = String(req.headers["content-encoding"] ?? "identity").toLowerCase();
    if (enc === "identity" || enc === "") return payload;
    if (enc !== "gzip") {
      const err = new Error(`unsupported Content-Encoding "${enc}" (use gzip or none)`) as Error & { statusCode: number };
      err.statusCode = 415;
      throw err;
    }
    // bodyLimit applies to the decompressed stream too, so a gzip bomb stops at the limit
    // and fastify compares Content-Length with the stream's receivedEncodedLength (the compressed
    // bytes), not with what comes out of it
    const gunzip = Object.assign(createGunzip(), { receivedEncodedLength: 0 });
    payload.on("data", (chunk: Buffer) => {
      gunzip.receivedEncodedLength += chunk.length;
    });
    // fastify stops listening once the limit is hit, but inflating goes on: a bomb with a bad
    // checksum would then fail with nobody listening and take the process down
    gunzip.on("error", () => {});
    return payload.pipe(gunzip);
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    const encoding = encodingOf(req);
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      return sendStatus(reply, encoding, 415, "unsupported Content-Type: use application/x-protobuf or application/json");
    }
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return sendStatus(reply, encoding, 413, `request body larger than ${options.maxBodyBytes} bytes`);
    }
    if (err.code === "Z_DATA_ERROR" || err.code === "Z_BUF_ERROR") {
      return sendStatus(reply, encoding, 400, `malformed gzip body: ${err.message}`);
    }
    if (status >= 500) options.logger.error({ err }, "gateway error");
    return sendStatus(reply, encoding, status, status >= 500 ? "internal error" : err.message);
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) =>
    (await options.bus.ready()) ? { status: "ready" } : reply.code(503).send({ status: "bus unavailable" }),
  );

  let publishing = 0;
  const maxInflight = options.maxInflight ?? 64;
  const publishTimeoutMs = options.publishTimeoutMs ?? 10_000;
  // Backpressure before the body is read: the bus is not keeping up, so the exporter should retry later.
  app.addHook("onRequest", async (req, reply) => {
    if (req.method === "POST" && req.url.startsWith("/v1/traces") && publishing >= maxInflight) {
      return reply.header("retry-after", "1").code(429).type("text/plain").send("too many requests in flight, retry later");
    }
  });

  const publishWithin = async (body: Buffer, contentType: string) => {
    publishing++;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        options.bus.publish(options.topic, [{ key: null, value: body, headers: { "content-type": contentType } }]),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`publish took longer than ${publishTimeoutMs} ms`)), publishTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      publishing--;
    }
  };

  app.post("/v1/traces", async (req, reply) => {
    const encoding = encodingOf(req);
    const body = req.body as Buffer | undefined;
    if (!body || body.length === 0) return sendStatus(reply, encoding, 400, "empty request body");
    let decoded: ReturnType<typeof decodeTraces>;
    try {
      decoded = decodeTraces(body, encoding);
    } catch (err) {
      if (err instanceof OtlpDecodeError) return sendStatus(reply, encoding, 400, err.message);
      throw err;
    }
    if (decoded.spans.length > 0) {
      try {
        await publishWithin(body, encoding === "json" ? "application/json" : "application/x-protobuf");
      } catch (err) {
        if (err instanceof BusBackpressure) {
          return reply.header("retry-after", "1").code(429).type("text/plain").send("pipeline is behind, retry later");
        }
        options.logger.warn({ err }, "bus unavailable; asking the exporter to retry");
        return reply.header("retry-after", "2").code(503).type("text/plain").send("bus unavailable, retry later");
      }
      options.metrics.spansReceived.inc(decoded.spans.length);
    }
    const rejected = decoded.rejected.length;
    const message =
      rejected > 0
        ? decoded.rejected
            .slice(0, 5)
            .map((r) => r.reason)
            .join("; ")
        : "";
    return reply
      .code(200)
      .type(encoding === "json" ? "application/json" : "application/x-protobuf")
      .send(encodeExportResponse(encoding, rejected, message));
  });

  return app;
}
