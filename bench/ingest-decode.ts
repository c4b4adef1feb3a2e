/**
 * Decode + normalise throughput on one core (this process's one JS thread), against a
 * baseline measured in the same run: protobufjs decoding the same OTLP bytes and nothing
 * else (what any OTLP consumer must at least pay).
 *
 *   npm run bench:decode        (node --import tsx bench/ingest-decode.ts [spans] [rounds])
 */
import protobuf from "protobufjs";
import { OTLP_TRACE_PROTO } from "../schemas/otlp/trace-proto.js";
import { ingestStage } from "../services/ingest/ingest.js";
import { normaliseSpan } from "../services/ingest/normalise.js";
import { decodeProtobuf, decodeProtobufReference } from "../services/ingest/otlp.js";
import { decodeProtobufWire } from "../services/ingest/otlp-wire.js";
import type { BusMessage } from "../services/runtime/bus/bus.js";
import { agentSpans, fmt, protobufRequests, rates } from "./lib/workload.js";

const totalSpans = Number(process.argv[2] ?? 50_000);
const rounds = Number(process.argv[3] ?? 10);
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
const stage = ingestStage("", () => 0);
let produced = 0;

const r = await rates(totalSpans, rounds, {
  // the baseline: protobufjs decoding the bytes into its message objects, and nothing else
  baseline: () => {
    for (const req of requests) Request.decode(req);
  },
  // the two protobuf decoders of ingest alone: bytes → flat spans (as ingest gets them: Buffers)
  reference: () => {
    for (const m of messages) decodeProtobufReference(m.value);
  },
  wire: () => {
    for (const m of messages) decodeProtobufWire(m.value);
  },
  // the target: bytes → normalised actions, without the JSON serialisation for the bus
  normalise: () => {
    for (const m of messages) for (const span of decodeProtobuf(m.value).spans) normaliseSpan(span, 0);
  },
  ingest: () => {
    produced = 0;
    for (const m of messages) {
      const decoded = stage.parse(m);
      // handle() is async only by contract; it does no I/O, so its work is all counted here
      void stage
        .handle([{ message: m, value: decoded }], () => undefined)
        .then((emits) => {
          produced += emits.length;
        });
    }
  },
});
const baseline = r.baseline;

const line = (label: string, what: string, v: number) =>
  console.log(`${label.padEnd(10)}${what.padEnd(50)}${fmt(v).padStart(9)} spans/s  ${(v / baseline).toFixed(3)} × baseline`);
console.log(`spans ${fmt(totalSpans)} in ${requests.length} OTLP protobuf requests (${fmt(bytes / totalSpans)} bytes/span)`);
line("baseline", "protobufjs decode only (RequestType.decode)", r.baseline);
line("reference", "protobufjs decode + conversion to flat spans", r.reference);
line("wire", "wire decoder to flat spans (ingest's decode)", r.wire);
line("normalise", "wire decode + normalise (issue target: 100,000)", r.normalise);
line("ingest", "decode + normalise + validate + serialise", r.ingest);
console.log(`check     actions produced in the last run: ${fmt(produced)}`);
