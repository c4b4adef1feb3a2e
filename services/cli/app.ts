import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { startAnalyser } from "../analyser/index.js";
import { startConsole } from "../console/index.js";
import { startDetector } from "../detector/index.js";
import { startGateway } from "../gateway/index.js";
import { startIngest } from "../ingest/index.js";
import { startNotifier } from "../notifier/index.js";
import { startPathfinder } from "../pathfinder/index.js";
import { TaskRetention } from "../pathfinder/task-retention.js";
import { startRevoker } from "../revoker/index.js";
import type { Bus } from "../runtime/bus/bus.js";
import { KafkaBus } from "../runtime/bus/kafka-bus.js";
import { MemoryBus } from "../runtime/bus/memory-bus.js";
import { type Clock, systemClock } from "../runtime/clock.js";
import type { Config } from "../runtime/config.js";
import { createLogger } from "../runtime/logging.js";
import { type OpsServer, startOpsServer } from "../runtime/ops.js";
import type { RunningService, ServiceContext, ServiceStarter } from "../runtime/service.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { RedisStore } from "../runtime/store/redis-store.js";
import type { Store } from "../runtime/store/store.js";
import { Metrics } from "../runtime/telemetry.js";
import { RecordRetention } from "./record-retention.js";

/**
 * Every service, in pipeline order. Consumers start before the HTTP front doors. The
 * analyser is the pathfinder and the detector in one process; they also run apart (the
 * detector then reads `agent.steps`), never both ways in one deployment.
 */
export const SERVICES = {
  ingest: startIngest,
  analyser: startAnalyser,
  pathfinder: startPathfinder,
  detector: startDetector,
  revoker: startRevoker,
  notifier: startNotifier,
  console: startConsole,
  gateway: startGateway,
} as const satisfies Record<string, ServiceStarter>;

export type ServiceName = keyof typeof SERVICES;
export const SERVICE_NAMES = Object.keys(SERVICES) as ServiceName[];
/** What `start` and `run all` run: every stage once, the pathfinder and detector as the analyser. */
export const PIPELINE: ServiceName[] = SERVICE_NAMES.filter((n) => n !== "pathfinder" && n !== "detector");

export interface App {
  bus: Bus;
  store: Store;
  logger: Logger;
  metrics: Metrics;
  services: RunningService[];
  gatewayUrl?: string;
  apiUrl?: string;
  /** A distributed process's /healthz, /readyz and /metrics. */
  opsUrl?: string;
  close(): Promise<void>;
}

export function allTopics(prefix: string): string[] {
  return Object.values(TOPICS).map((t) => topicName(prefix, t));
}

async function startServices(
  names: ServiceName[],
  base: { config: Config; bus: Bus; store: Store; logger: Logger; metrics: Metrics; clock: Clock },
): Promise<App> {
  const ctx: ServiceContext = base;
  await base.bus.ensureTopics(allTopics(base.config.topicPrefix));
  const services: RunningService[] = [];
  const app: App = {
    ...base,
    services,
    close: async () => {
      for (const s of [...services].reverse()) await s.close().catch((err) => base.logger.error({ err, service: s.name }, "close failed"));
      await base.bus.close();
      await base.store.close();
    },
  };
  try {
    for (const name of SERVICE_NAMES.filter((n) => names.includes(n))) {
      const s = await SERVICES[name](ctx);
      services.push(s);
      if (name === "gateway") app.gatewayUrl = s.url;
      if (name === "console") app.apiUrl = s.url;
    }
  } catch (err) {
    await app.close();
    throw err;
  }
  return app;
}

/**
 * The embedded mode's store: in memory, within bounds. Tasks: at most `maxTasks`, and
 * `maxBytes` of their state (least recently active first, all their keys together). The
 * records that come with tasks (findings, incidents, revocations): a few per task, the
 * oldest first.
 */
export function boundedStore(bounds: Config["embedded"], metrics: Metrics): Store {
  const tasks = new TaskRetention(new MemoryStore(), { maxTasks: bounds.maxTasks, maxBytes: bounds.maxBytes, metrics });
  return new RecordRetention(
    tasks,
    // a task's end makes a lifecycle event or two (completed; idle, resumed)
    {
      findings: 2 * bounds.maxTasks,
      incidents: Math.ceil(bounds.maxTasks / 2),
      revocations: bounds.maxTasks,
      lifecycleEvents: 2 * bounds.maxTasks,
    },
    metrics,
  );
}

/** Messages the embedded bus keeps per partition of a topic no stage consumes. */
const EMBEDDED_RETAIN_PER_PARTITION = 5_000;

/** The embedded mode: every stage in this process, in-process bus and store. */
export async function startEmbedded(
  config: Config,
  options: { services?: ServiceName[]; logger?: Logger; clock?: Clock } = {},
): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = new Metrics();
  // the gateway and ingest share this process: a key of their own unless one is configured
  const senderKey = config.ingest.senderKey ?? randomBytes(32);
  return startServices(options.services ?? PIPELINE, {
    config: {
      ...config,
      ingest: { ...config.ingest, senderKey },
      // paths of tasks the store no longer holds are not worth keeping in memory either
      tasks: { ...config.tasks, cachedTasks: Math.min(config.tasks.cachedTasks, config.embedded.maxTasks) },
    },
    // topics nobody here reads (the dead letters) keep their most recent messages only
    bus: new MemoryBus({ partitions: config.kafka.partitions, logger, retainPerPartition: EMBEDDED_RETAIN_PER_PARTITION }),
    // bounded: past DRIFTWATCH_EMBEDDED_MAX_TASKS the least recently active task leaves, all its keys together
    // (a replay is not bounded: it must find what the live pipeline found)
    store: Number.isFinite(config.embedded.maxTasks) ? boundedStore(config.embedded, metrics) : new MemoryStore(),
    logger,
    metrics,
    clock: options.clock ?? systemClock,
  });
}

/**
 * The distributed mode: the named services on Kafka and Redis, and the process's ops port
 * (/healthz, /readyz, /metrics), up first so that an orchestrator sees the process start.
 */
export async function startDistributed(config: Config, names: ServiceName[], options: { logger?: Logger } = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  // with the configured TLS, SASL and Redis ACL user (docs/transport-security.md)
  const bus = new KafkaBus({ ...config.kafka, clientId: `${config.kafka.clientId}-${names.join("-")}`, logger });
  const store = new RedisStore({ ...config.redis, logger });
  const metrics = new Metrics();
  let ops: OpsServer;
  try {
    ops = await startOpsServer(
      { logger, metrics, checks: { bus: () => bus.ready(), store: () => store.ping() } },
      config.ops.host,
      config.ops.port,
    );
  } catch (err) {
    await Promise.allSettled([bus.close(), store.close()]);
    throw new Error(`the ops port ${config.ops.host}:${config.ops.port} (DRIFTWATCH_OPS_HOST/PORT): ${(err as Error).message}`);
  }
  let app: App;
  try {
    app = await startServices(names, { config, bus, store, logger, metrics, clock: systemClock });
  } catch (err) {
    await ops.close();
    throw err;
  }
  ops.started();
  const close = app.close;
  return {
    ...app,
    opsUrl: ops.url,
    close: async () => {
      await ops.close();
      await close();
    },
  };
}
