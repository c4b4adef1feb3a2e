import type { Finding } from "../../schemas/finding.js";
import { Finding as FindingSchema } from "../../schemas/finding.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { decodeMessage } from "../runtime/decode.js";
import type { Logger } from "../runtime/logging.js";
import type { Emit, StageLogic } from "../runtime/stage.js";
import type { Store } from "../runtime/store/store.js";
import type { AlertOutput } from "./outputs/output.js";

const NOTIFIED_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * notifier: `agent.findings` → SOC outputs. Each finding is sent once per output (a
 * redelivered or re-produced finding is recognised by its id); shadow-mode findings are
 * not alerted. An output that fails is retried with the batch; outputs that already took
 * a finding are not sent it again.
 */
export function notifierStage(topicPrefix: string, deps: { outputs: AlertOutput[]; store: Store; logger: Logger }): StageLogic<Finding> {
  return {
    name: "notifier",
    input: topicName(topicPrefix, TOPICS.findings),
    parse: (message) => decodeMessage(FindingSchema, message, "a finding"),
    async handle(items): Promise<Emit[]> {
      // shadow findings are not alerted; a finding twice in the batch is one alert
      const alertable = [...new Map(items.map((i) => [i.value.id, i.value])).values()].filter((f) => f.mode !== "shadow");
      for (const output of deps.outputs) {
        const fresh: Finding[] = [];
        for (const f of alertable) {
          const key = `notified:${output.name}:${f.id}`;
          if ((await deps.store.get(key)) === null) fresh.push(f);
        }
        if (fresh.length === 0) continue;
        await output.send(fresh);
        await Promise.all(fresh.map((f) => deps.store.set(`notified:${output.name}:${f.id}`, "1", { ttlMs: NOTIFIED_TTL_MS })));
      }
      return [];
    },
  };
}
