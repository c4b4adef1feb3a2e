import { writeFileSync } from "node:fs";
import { ingestStage } from "../services/ingest/ingest.js";
import { packRecords } from "../services/runtime/stage.js";
import { otlpMessages } from "./lib/kafka.js";
import { agentSpans, protobufRequests } from "./lib/workload.js";

const tasks = Number(process.argv[2] ?? 3000);
const requests = protobufRequests(agentSpans(tasks, 10), 10);
const ingest = ingestStage("");
const msgs: string[] = [];
for (let i = 0; i < requests.length; i += 100) {
  const batch = otlpMessages(requests.slice(i, i + 100), "", i);
  const emits = await ingest.handle(
    batch.map((m) => ({ message: m, value: ingest.parse(m) })),
    () => undefined,
  );
  for (const p of packRecords(emits)) msgs.push(String(p.message.value));
}
writeFileSync("/tmp/actions.json", JSON.stringify(msgs));
