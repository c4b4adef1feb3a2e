import type { FastifyInstance } from "fastify";
import { type ApiDeps, createApi } from "../../services/console/api.js";
import { FindingLog } from "../../services/console/read-model.js";
import { TaskStore } from "../../services/pathfinder/task-store.js";
import { Approvals } from "../../services/revoker/approvals.js";
import { RevocationLedger } from "../../services/revoker/ledger.js";
import { AgentQuarantine } from "../../services/revoker/quarantine.js";
import { createLogger } from "../../services/runtime/logging.js";
import type { Store } from "../../services/runtime/store/store.js";
import { Metrics } from "../../services/runtime/telemetry.js";

/** The console API over one store, every part made from it unless given: for `app.inject` tests. */
export function consoleApi(store: Store, over: Partial<ApiDeps> = {}): FastifyInstance {
  return createApi({
    tasks: new TaskStore(store),
    findings: new FindingLog(store),
    revocations: new RevocationLedger(store),
    approvals: new Approvals(store),
    quarantine: new AgentQuarantine(store),
    metrics: new Metrics(false),
    logger: createLogger("silent"),
    ready: async () => true,
    ...over,
  });
}
