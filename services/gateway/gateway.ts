import { createGunzip } from "node:zlib";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { Sender } from "../../schemas/ingest-identity.js";
import { decodeTraces, encodeExportResponse, OtlpDecodeError, type OtlpEncoding } from "../ingest/otlp.js";
import { redactRequest } from "../ingest/otlp-redact.js";
import { NO_REDACTION, type Redactor } from "../ingest/redaction.js";
import { BusBackpressure, type Publisher } from "../runtime/bus/bus.js";
import { createHttpServer } from "../runtime/http.js";
import { signSender } from "../runtime/sender-signature.js";
import type { Metrics } from "../runtime/telemetry.js";
import type { AgentAuthenticator } from "./agent-auth.js";
import { ClientBudgets, type ClientKey, type ClientLimits, DEFAULT_CLIENT_LIMITS, remoteAddress, requestCapProblem } from "./limits.js";
import { encodeStatus, STATUS_CONTENT_TYPE } from "./status.js";

/**
 * gateway: OTLP/HTTP `POST /v1/traces` (protobuf or JSON, optionally gzip) → `otlp_spans`.
 * The body is checked before it is accepted (400 with a clear message when malformed),
 * bounded per client (limits.ts), redacted as the policy says, published (as the
 * Collector's kafka exporter would), and answered per the OTLP spec: partial success when
 * some spans were rejected, a google.rpc.Status body with every 4xx and 5xx.
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
  /** Per-client budgets and per-request caps (defaults: DEFAULT_CLIENT_LIMITS). */
  limits?: Partial<ClientLimits>;
  /** Who is calling, for the budgets (default: the authenticated sender, else the remote address). */
  clientKey?: ClientKey;
  /** The redaction in force (from the policy), applied before anything is published; read per request. */
  redactor?: () => Redactor;
  now?: () => number;
  /** Who may send spans (agent tokens, JWT-SVIDs: docs/trust-model.md); absent: nobody is asked. */
  agentAuth?: AgentAuthenticator;
  /** The key the authenticated sender is signed onto each published message with (ingest checks it). */
  senderKey?: Buffer;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The agent credential's holder, once authenticated. */
    sender?: Sender;
  }
}

const PROTOBUF_TYPES = ["application/x-protobuf", "application/protobuf"];

function encodingOf(req: FastifyRequest): OtlpEncoding {
  return String(req.headers["content-type"] ?? "").includes("json") ? "json" : "protobuf";
}

function sendStatus(reply: FastifyReply, encoding: OtlpEncoding, code: number, message: string, retryAfterS?: number) {
  // OTLP/HTTP: errors carry a google.rpc.Status, binary for protobuf clients, its JSON form for JSON ones
  if (retryAfterS !== undefined) reply.header("retry-after", String(retryAfterS));
  return reply
    .code(code)
    .type(STATUS_CONTENT_TYPE[encoding])
    .send(encodeStatus(encoding, code, message));
}

/** The metric label of a refusal by status code (the reasons counted where they are known better are passed). */
const REASON_BY_STATUS: Record<number, string> = {
  400: "malformed",
  413: "body_too_large",
  415: "unsupported_media_type",
  429: "backpressure",
  503: "bus_unavailable",
};

export function createGateway(options: GatewayOptions): FastifyInstance {
  const app = createHttpServer({ logger: options.logger, bodyLimit: options.maxBodyBytes });
  const limits: ClientLimits = { ...DEFAULT_CLIENT_LIMITS, ...options.limits };
  const budgets = new ClientBudgets(limits, options.now);
  // an authenticated sender is its own client for the budgets; else its address
  const clientKey: ClientKey = options.clientKey ?? ((req) => (req.sender ? `sender:${req.sender.name}` : remoteAddress(req)));
  const redactor = options.redactor ?? (() => NO_REDACTION);
  const refuse = (reply: FastifyReply, encoding: OtlpEncoding, code: number, message: string, reason?: string, retryAfterS?: number) => {
    options.metrics.otlpRejected.inc({ reason: reason ?? REASON_BY_STATUS[code] ?? String(code) });
    return sendStatus(reply, encoding, code, message, retryAfterS);
  };
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
      return refuse(reply, encoding, 415, "unsupported Content-Type: use application/x-protobuf or application/json");
    }
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return refuse(reply, encoding, 413, `request body larger than ${options.maxBodyBytes} bytes`);
    }
    if (err.code === "Z_DATA_ERROR" || err.code === "Z_BUF_ERROR") {
      return refuse(reply, encoding, 400, `malformed gzip body: ${err.message}`);
    }
    if (status === 415) return refuse(reply, encoding, 415, err.message, "unsupported_encoding");
    if (status >= 500) options.logger.error({ err }, "gateway error");
    return refuse(reply, encoding, status, status >= 500 ? "internal error" : err.message, status >= 500 ? "internal" : undefined);
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) =>
    (await options.bus.ready()) ? { status: "ready" } : reply.code(503).send({ status: "bus unavailable" }),
  );

  let publishing = 0;
  const maxInflight = options.maxInflight ?? 64;
  const publishTimeoutMs = options.publishTimeoutMs ?? 10_000;
  // Before the body is read: the client's request budget, and backpressure (the bus is not
  // keeping up): either way the exporter should retry later.
  app.addHook("onRequest", async (req, reply) => {
    if (req.method !== "POST" || req.routeOptions.url !== "/v1/traces") return;
    // who is sending, before anything else is read (docs/trust-model.md)
    if (options.agentAuth) {
      const auth = await options.agentAuth.authenticate(req.headers.authorization);
      if ("status" in auth) {
        reply.header("www-authenticate", 'Bearer realm="driftwatch-otlp"');
        return refuse(reply, encodingOf(req), 401, auth.error, "unauthenticated");
      }
      if (auth.sender) req.sender = auth.sender;
    }
    const wait = budgets.takeRequest(clientKey(req));
    if (wait !== undefined) {
      return refuse(
        reply,
        encodingOf(req),
        429,
        `rate limited: more than ${limits.requestsPerSecond} requests per second from this client; retry after ${wait} s`,
        "rate_limited",
        wait,
      );
    }
    if (publishing >= maxInflight)
      return refuse(reply, encodingOf(req), 429, "too many requests in flight, retry later", "backpressure", 1);
  });

  const publishWithin = async (body: Buffer, contentType: string, sender: Sender | undefined) => {
    publishing++;
    let timer: NodeJS.Timeout | undefined;
    // the sender the gateway vouches for, signed with the body, so ingest can tell it from a forged header
    const signed = sender && options.senderKey ? signSender(options.senderKey, sender, body) : {};
    try {
      await Promise.race([
        options.bus.publish(options.topic, [{ key: null, value: body, headers: { "content-type": contentType, ...signed } }]),
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
    if (!body || body.length === 0) return refuse(reply, encoding, 400, "empty request body");
    let decoded: ReturnType<typeof decodeTraces>;
    try {
      decoded = decodeTraces(body, encoding);
    } catch (err) {
      if (err instanceof OtlpDecodeError) return refuse(reply, encoding, 400, err.message);
      throw err;
    }
    // per request: refused whole (413, not retried), as the OTLP spec has it for a request the server will not process
    const total = decoded.spans.length + decoded.rejected.length;
    const capped = requestCapProblem(
      limits,
      total,
      decoded.spans.map((s) => s.traceId),
    );
    if (capped) return refuse(reply, encoding, 413, capped.message, capped.reason);
    const client = clientKey(req);
    const wait = total > 0 ? budgets.takeSpans(client, total) : undefined;
    if (wait !== undefined) {
      return refuse(
        reply,
        encoding,
        429,
        `span budget exceeded: more than ${limits.spansPerMinute} spans per minute from this client; retry after ${wait} s`,
        "span_budget",
        wait,
      );
    }
    if (decoded.spans.length > 0) {
      let redacted: Buffer;
      try {
        redacted = redactRequest(body, encoding, redactor());
      } catch (err) {
        if (err instanceof OtlpDecodeError) return refuse(reply, encoding, 400, err.message);
        throw err;
      }
      try {
        await publishWithin(redacted, encoding === "json" ? "application/json" : "application/x-protobuf", req.sender);
      } catch (err) {
        if (err instanceof BusBackpressure) return refuse(reply, encoding, 429, "pipeline is behind, retry later", "backpressure", 1);
        options.logger.warn({ err }, "bus unavailable; asking the exporter to retry");
        return refuse(reply, encoding, 503, "bus unavailable, retry later", "bus_unavailable", 2);
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
