/**
 * The long fuzz run: generated OTLP payloads (valid, near-valid, hostile; protobuf and JSON;
 * huge values, deep nesting, many spans and traces, bad ids, gzip, wrong content types and
 * encodings) sent over HTTP to the real gateway and pipeline in this one process (the
 * embedded mode), a fast-check property over batches sent at once. It checks that every
 * request gets a well-formed OTLP answer, nothing is thrown or logged as an error, no
 * planted secret reaches `otlp_spans` or a dead letter, and RSS stays under a bound; and
 * prints payloads/s, answers by status, and RSS (start, peak, end) against a baseline
 * measured in the same run: this process, everything started, idle.
 *
 *   npm run bench:fuzz -- [payloads] [seed] [concurrency]     (defaults: 100000 1 8)
 *
 * The per-client request rate is raised (one client sends everything here; the budgets
 * have their own tests); every other setting is the default, the policy is `policies/`.
 * `DRIFTWATCH_*` variables in the environment override. BENCH_MAX_RSS_MIB sets the bound
 * (default 1536).
 */
import { fuzzEmbedded } from "../test/support/otlp-fuzz.js";

const payloads = Number(process.argv[2] ?? 100_000);
const seed = Number(process.argv[3] ?? 1);
const concurrency = Number(process.argv[4] ?? 8);
const maxRssMiB = Number(process.env.BENCH_MAX_RSS_MIB ?? 1536);
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("DRIFTWATCH_"))) as Record<string, string>;

const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
const progress: string[] = [];
const report = await fuzzEmbedded({
  payloads,
  seed,
  concurrency,
  env: { DRIFTWATCH_OTLP_CLIENT_REQUESTS_PER_SECOND: "1000000", ...env },
  maxRssBytes: maxRssMiB * 2 ** 20,
  progress: (line) => {
    progress.push(line);
    console.error(line);
  },
});

const { rss } = report;
console.log(`fuzz: ${report.payloads} payloads, seed ${seed}, ${concurrency} at once, node ${process.version}`);
console.log(`  ${Math.round(report.payloads / report.seconds)} payloads/s (${report.seconds.toFixed(1)} s)`);
console.log(
  `  answers by status: ${Object.entries(report.byStatus)
    .map(([s, n]) => `${s}: ${n}`)
    .join(", ")}`,
);
console.log(
  `  payloads by kind: ${Object.entries(report.byKind)
    .map(([k, n]) => `${k}: ${n}`)
    .join(", ")}`,
);
console.log(`  published on otlp_spans: ${report.spansPublished} requests; dead letters: ${report.deadLetters}`);
console.log(
  `  store: ${report.storeTasks} tasks held, ${report.evictedTasks} tasks and ${report.evictedRecords} findings, incidents and revocations evicted`,
);
console.log(
  `  RSS: baseline (idle) ${mib(rss.baseline)}, start ${mib(rss.start)}, peak ${mib(rss.peak)} (${(rss.peak / rss.baseline).toFixed(2)} × baseline), end ${mib(rss.end)} (${(rss.end / rss.baseline).toFixed(2)} × baseline); heap at the end ${mib(report.heapUsedEnd)}`,
);
console.log(`  error logs: ${report.errorLogs.length}`);
console.log(`  along the run (cumulative rate, RSS now and peak so far):\n${progress.map((l) => `    ${l}`).join("\n")}`);
if (process.env.BENCH_TIMES)
  for (const [k, t] of Object.entries(report.msByKind))
    console.log(`  ${k}: build ${Math.round(t.build)} ms, answer ${Math.round(t.request)} ms`);
if (report.failure) {
  console.log(`FAILED:\n${report.failure}`);
  process.exitCode = 1;
} else {
  console.log("  every answer well formed, no error thrown or logged, no secret published, RSS within the bound");
}
