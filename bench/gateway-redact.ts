/**
 * What redaction before publishing costs the gateway, on one core, against a baseline
 * measured in the same run: the gateway's own decode of the same request (what it did to
 * every request before), on requests of 512 billing-agent spans (the workload's attributes)
 * under the example policy (policies/redaction.yaml):
 *
 * - clean: nothing the policy names (the request is published as received);
 * - named: nothing to redact, but a key the policy names occurs in the bytes
 *   (`gen_ai.usage.input_tokens` holds "token"), so the request is walked, and published as received;
 * - secrets: every tool call's arguments hold a `password` and every span an Authorization
 *   header, so every span is rewritten.
 *
 * And ingest's side: normalising the same spans with the policy's redaction against without.
 *
 *   npm run bench:redact        (node --import tsx bench/gateway-redact.ts [spans] [rounds])
 */
import { loadPolicy } from "../services/detector/policy.js";
import { normaliseSpan } from "../services/ingest/normalise.js";
import { decodeTraces, type OtlpEncoding } from "../services/ingest/otlp.js";
import { redactRequest } from "../services/ingest/otlp-redact.js";
import { compileRedaction, NO_REDACTION } from "../services/ingest/redaction.js";
import { jsonRequest, protobufRequest, type SpanSpec } from "../test/support/otlp-build.js";
import { fmt, rates } from "./lib/workload.js";

const totalSpans = Number(process.argv[2] ?? 51_200);
const rounds = Number(process.argv[3] ?? 10);
const perRequest = 512;
const redactor = compileRedaction(loadPolicy("policies").redaction);

function spans(n: number, secrets: boolean, offset: number, usage = false): SpanSpec[] {
  return Array.from({ length: n }, (_, i) => {
    const t = offset + i;
    const args: Record<string, unknown> = { customer: String(t), page: i % 10, filter: { status: "open" } };
    if (secrets) args.password = `pw-${t}`;
    return {
      name: "execute_tool invoices.read",
      attributes: {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.agent.id": "billing-agent",
        "agent.task.id": `bench-${Math.floor(t / 10)}`,
        "gen_ai.tool.name": "invoices.read",
        "gen_ai.tool.call.id": `call_${t}`,
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.arguments": JSON.stringify(args),
        "gen_ai.tool.call.result": JSON.stringify({ items: [{ id: `INV-${t}`, amount: 120.5 }], next: null }),
        "data.classification": "internal",
        "agent.credential.id": `lease-${Math.floor(t / 10)}`,
        "server.address": "api.internal.example",
        ...(secrets ? { "http.request.header.authorization": `Bearer tok-${t}` } : {}),
        ...(usage ? { "gen_ai.usage.input_tokens": 120 + (t % 50), "gen_ai.usage.output_tokens": 30 } : {}),
      },
    };
  });
}

function requests(encoding: OtlpEncoding, secrets: boolean, usage = false): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < totalSpans; i += perRequest) {
    const spec = {
      resource: {
        "service.name": "billing-agent",
        "deployment.environment.name": "prod",
        "spiffe.id": "spiffe://acme.example/agents/billing",
      },
      spans: spans(Math.min(perRequest, totalSpans - i), secrets, i, usage),
    };
    out.push(encoding === "json" ? jsonRequest(spec) : protobufRequest(spec));
  }
  return out;
}

const sets = {
  protobufClean: requests("protobuf", false),
  protobufSecrets: requests("protobuf", true),
  protobufNamed: requests("protobuf", false, true),
  jsonClean: requests("json", false),
  jsonSecrets: requests("json", true),
};
// a check, outside the timings: secrets are rewritten, clean requests are handed back as they are
for (const b of sets.protobufSecrets) if (redactRequest(b, "protobuf", redactor).includes("pw-")) throw new Error("not redacted");
for (const b of sets.jsonClean) if (redactRequest(b, "json", redactor) !== b) throw new Error("clean request rewritten");
for (const b of sets.protobufNamed) if (redactRequest(b, "protobuf", redactor) !== b) throw new Error("request without secrets rewritten");
const decoded = sets.protobufSecrets.map((b) => decodeTraces(b, "protobuf").spans);

const r = await rates(totalSpans, rounds, {
  protobufDecode: () => {
    for (const b of sets.protobufSecrets) decodeTraces(b, "protobuf");
  },
  protobufClean: () => {
    for (const b of sets.protobufClean) redactRequest(b, "protobuf", redactor);
  },
  protobufSecrets: () => {
    for (const b of sets.protobufSecrets) redactRequest(b, "protobuf", redactor);
  },
  protobufNamed: () => {
    for (const b of sets.protobufNamed) redactRequest(b, "protobuf", redactor);
  },
  jsonDecode: () => {
    for (const b of sets.jsonSecrets) decodeTraces(b, "json");
  },
  jsonClean: () => {
    for (const b of sets.jsonClean) redactRequest(b, "json", redactor);
  },
  jsonSecrets: () => {
    for (const b of sets.jsonSecrets) redactRequest(b, "json", redactor);
  },
  normalisePlain: () => {
    for (const list of decoded) for (const s of list) normaliseSpan(s, 0, NO_REDACTION);
  },
  normaliseRedacted: () => {
    for (const list of decoded) for (const s of list) normaliseSpan(s, 0, redactor);
  },
});

const bytes = (list: Buffer[]) => list.reduce((s, b) => s + b.length, 0) / totalSpans;
console.log(
  `spans ${fmt(totalSpans)} in requests of ${perRequest}; protobuf ${fmt(bytes(sets.protobufSecrets))} bytes/span, JSON ${fmt(bytes(sets.jsonSecrets))}`,
);
const line = (label: string, v: number, base: number, what: string) =>
  console.log(
    `${label.padEnd(18)}${fmt(v).padStart(11)} spans/s   ${(v / base).toFixed(2).padStart(6)} × decode   redaction adds ${((base / v) * 100).toFixed(0).padStart(4)}% of the decode's time   ${what}`,
  );
console.log(`${"protobuf decode".padEnd(18)}${fmt(r.protobufDecode).padStart(11)} spans/s   (the gateway's decode: the baseline)`);
line("  redact, clean", r.protobufClean, r.protobufDecode, "nothing named: one search over the bytes");
line("  redact, named", r.protobufNamed, r.protobufDecode, "nothing to redact, but a key name occurs: walked");
line("  redact, secrets", r.protobufSecrets, r.protobufDecode, "every span rewritten on the wire");
console.log(`${"JSON decode".padEnd(18)}${fmt(r.jsonDecode).padStart(11)} spans/s   (the baseline)`);
line("  redact, clean", r.jsonClean, r.jsonDecode, "nothing named: one search over the bytes");
line("  redact, secrets", r.jsonSecrets, r.jsonDecode, "parse, change, serialise");
console.log(
  `${"ingest normalise".padEnd(18)}${fmt(r.normaliseRedacted).padStart(11)} spans/s with the policy's redaction, ${fmt(r.normalisePlain)} without (${(r.normaliseRedacted / r.normalisePlain).toFixed(2)} ×)`,
);
