/**
 * Decode + normalise throughput on one core (this process's one JS thread), against a
 * baseline measured in the same run: protobufjs decoding the same OTLP bytes and nothing
 * else (what any OTLP consumer must at least pay).
 *
 *   npm run bench:decode        (node --import tsx bench/ingest-decode.ts [spans])
 */
import protobuf from "protobufjs";
import { OTLP_TRACE_PROTO } from "../schemas/otlp/trace-proto.js";
import { ingestStage } from "../services/ingest/ingest.js";
import type { BusMessage } from "../services/runtime/bus/bus.js";
import { agentSpans, fmt, protobufRequests, rate } from "./lib/workload.js";

const totalSpans = Number(process.argv[2] ?? 50_000);
const stepsPerTask = 10;
const requests = protobufRequests(agentSpans(totalSpans / stepsPerTask, stepsPerTask), 512);
const messages: BusMessage[] = requests.map((r, i) => ({
  topic: "otlp_spans",
  partition: 0,
  offset: String(i),
  key: null,
  value: Buffer.from(r),
  headers: { "content-type": "application/x-protobuf" },
  timestampMs: 0,
}));
const bytes = requests.reduce((s, r) => s + r.length, 0);

const Request = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: true }).root.lookupType("otlp.ExportTraceServiceRequest");
const baseline = rate(totalSpans, 5, () => {
  for (const r of requests) Request.decode(r);
});

const stage = ingestStage("", () => 0);
let produced = 0;
const measured = rate(totalSpans, 5, () => {
  produced = 0;
  for (const m of messages) {
    const decoded = stage.parse(m);
    // handle() is async only by contract; it does no I/O, so its work is all counted here
    void stage.handle([{ message: m, value: decoded }], () => undefined).then((e) => {
      produced += e.length;
    });
  }
});
await new Promise((r) => setImmediate(r));

console.log(`spans ${fmt(totalSpans)} in ${requests.length} OTLP protobuf requests (${fmt(bytes / totalSpans)} bytes/span)`);
console.log(`baseline  protobufjs decode only                    ${fmt(baseline)} spans/s`);
console.log(`ingest    decode + normalise + validate + serialise ${fmt(measured)} spans/s`);
console.log(`ratio     ingest / baseline                         ${(measured / baseline).toFixed(3)}`);
console.log(`check     actions produced in the last run: ${fmt(produced)}`);
