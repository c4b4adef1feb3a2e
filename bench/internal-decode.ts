/**
 * What reading a typed internal topic costs: the actions ingest writes to `agent.actions`
 * (its own output for the bench workload, packed as it packs them), read back as the
 * analyser reads them (JSON parse + the contract's zod check, `decodeMessage`), against a
 * baseline measured in the same run: the JSON parse alone, which any JSON reader pays. The
 * difference is what validating on every internal hop costs, and the most a schema-trusting
 * or binary encoding of the topic could save per action.
 *
 *   npm run bench:internal-decode   (node --import tsx bench/internal-decode.ts [spans] [rounds])
 */
import { AgentAction } from "../schemas/action.js";
import { ingestStage } from "../services/ingest/ingest.js";
import type { BusMessage } from "../services/runtime/bus/bus.js";
import { decodeMessage } from "../services/runtime/decode.js";
import { otlpMessages } from "./lib/kafka.js";
import { agentSpans, fmt, protobufRequests, rates } from "./lib/workload.js";

const totalSpans = Number(process.argv[2] ?? 50_000);
const rounds = Number(process.argv[3] ?? 10);
const stepsPerTask = 10;

// the workload through ingest: what it writes to agent.actions
const ingest = ingestStage("", () => 0);
const actions: BusMessage[] = [];
for (const message of otlpMessages(protobufRequests(agentSpans(totalSpans / stepsPerTask, stepsPerTask), 512), "otlp_spans")) {
  for (const e of await ingest.handle([{ message, value: ingest.parse(message) }], () => undefined)) {
    actions.push({ ...message, topic: "agent_actions", offset: String(actions.length), value: Buffer.from(e.message.value as string) });
  }
}
let count = 0;
for (const m of actions) {
  const d = decodeMessage(AgentAction, m, "an agent action");
  count += Array.isArray(d) ? d.length : 1;
}
const bytes = actions.reduce((s, m) => s + m.value.length, 0);

const r = await rates(count, rounds, {
  baseline: () => {
    for (const m of actions) JSON.parse(m.value.toString("utf8"));
  },
  validated: () => {
    for (const m of actions) decodeMessage(AgentAction, m, "an agent action");
  },
});
const us = (rate: number) => 1e6 / rate;
console.log(`actions ${fmt(count)} in ${fmt(actions.length)} messages on agent.actions (${fmt(bytes / count)} bytes/action)`);
console.log(
  `baseline   JSON.parse only                     ${fmt(r.baseline).padStart(9)} actions/s  ${us(r.baseline).toFixed(2).padStart(6)} µs/action`,
);
console.log(
  `validated  JSON.parse + zod (decodeMessage)      ${fmt(r.validated).padStart(9)} actions/s  ${us(r.validated).toFixed(2).padStart(6)} µs/action  ${(r.validated / r.baseline).toFixed(3)} × baseline`,
);
console.log(`zod's share: ${(us(r.validated) - us(r.baseline)).toFixed(2)} µs/action`);
