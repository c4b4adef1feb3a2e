import { realpathSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Command, InvalidArgumentError, Option } from "commander";
import { type Finding, Severity } from "../../schemas/finding.js";
import { loadPolicy, PolicyError } from "../detector/policy.js";
import { type Config, ConfigError, loadConfig } from "../runtime/config.js";
import { createLogger } from "../runtime/logging.js";
import { type App, PIPELINE, SERVICE_NAMES, type ServiceName, startDistributed, startEmbedded } from "./app.js";
import { runDemo } from "./demo.js";
import { writePolicySchema } from "./policy-schema.js";
import { diffFindings, exceeds, type ReplayRequest, recordedRequests, replay } from "./replay.js";
import { checkRangeBounds, describeRead, KafkaRangeError, parseRangeBound, type RangeBound, readTopicRange } from "./replay-kafka.js";

/** `driftwatch`: start (embedded), run <service>, replay, policy check, policy schema, demo. */
function waitForSignal(app: App): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      app.logger.info({ signal }, "shutting down");
      await app.close();
      resolve();
    };
    process.once("SIGINT", () => void stop("SIGINT"));
    process.once("SIGTERM", () => void stop("SIGTERM"));
  });
}

function serviceName(value: string, previous: ServiceName[] = []): ServiceName[] {
  if (value === "all") return [...PIPELINE];
  if (!(SERVICE_NAMES as string[]).includes(value)) {
    throw new InvalidArgumentError(`unknown service "${value}"; one of: ${SERVICE_NAMES.join(", ")}, all`);
  }
  return [...previous, value as ServiceName];
}

interface ReplayCliOptions {
  topic?: string;
  kafkaBrokers?: string;
  from?: RangeBound;
  to?: RangeBound;
  policy?: string;
  comparePolicy?: string;
  out?: string;
  failOn?: Severity;
  warmUp?: string[];
}

function rangeBound(value: string): RangeBound {
  try {
    return parseRangeBound(value);
  } catch (err) {
    if (err instanceof KafkaRangeError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

/** What `replay` reads: the files and folders named, or the Kafka topic range (read once). */
async function replayInput(paths: string[], opts: ReplayCliOptions, config: Config, command: Command): Promise<ReplayRequest[]> {
  if (!opts.topic) {
    const kafkaOnly = (["kafkaBrokers", "from", "to"] as const).filter((k) => opts[k] !== undefined);
    if (kafkaOnly.length > 0) {
      const flag = { kafkaBrokers: "--kafka-brokers", from: "--from", to: "--to" }[kafkaOnly[0] as (typeof kafkaOnly)[number]];
      command.error(`error: ${flag} reads a Kafka topic range: give --topic too (e.g. --topic otlp_spans)`);
    }
    if (paths.length === 0)
      command.error("error: nothing to replay: give files or folders of recorded OTLP, or --topic <name> for a Kafka topic range");
    return recordedRequests(paths);
  }
  if (paths.length > 0)
    command.error(`error: replay either files and folders or --topic, not both (got ${paths.join(" ")} and --topic ${opts.topic})`);
  try {
    checkRangeBounds(opts.from, opts.to);
  } catch (err) {
    if (err instanceof KafkaRangeError) command.error(`error: ${err.message}`);
    throw err;
  }
  const brokers = opts.kafkaBrokers
    ? opts.kafkaBrokers
        .split(",")
        .map((b) => b.trim())
        .filter(Boolean)
    : config.kafka.brokers;
  if (brokers.length === 0) command.error("error: --kafka-brokers names no broker");
  const read = await readTopicRange(
    { brokers, topic: opts.topic, ...(opts.from ? { from: opts.from } : {}), ...(opts.to ? { to: opts.to } : {}) },
    {
      clientId: `${config.kafka.clientId}-replay`,
      groupPrefix: config.groupPrefix,
      security: config.kafka,
      logger: createLogger(config.logLevel === "info" ? "warn" : config.logLevel),
    },
  );
  process.stderr.write(`${describeRead(read)}\n`);
  return read.requests;
}

export function buildCli(): Command {
  const program = new Command("driftwatch").description("Runtime behaviour monitor for AI agents").version("0.1.0").showHelpAfterError();

  program
    .command("start")
    .description("run every stage in this process (no Kafka, no Redis): OTLP/HTTP and the console API")
    .action(async () => {
      const config = loadConfig();
      const app = await startEmbedded(config);
      process.stderr.write(
        `driftwatch running (embedded)\n  OTLP/HTTP  ${app.gatewayUrl}/v1/traces\n  console    ${app.apiUrl}/ (web), ${app.apiUrl}/api/v1/tasks (API)\n  policy     ${config.policyDir}\nPress Ctrl-C to stop.\n`,
      );
      await waitForSignal(app);
    });

  program
    .command("run")
    .description(`run services against Kafka and Redis (${SERVICE_NAMES.join(", ")}, or all: ${PIPELINE.join(", ")})`)
    .argument("<service...>", "service name(s)", (v, prev: ServiceName[] | undefined) => serviceName(v, prev ?? []))
    .action(async (names: ServiceName[]) => {
      const config = loadConfig();
      const app = await startDistributed(config, [...new Set(names)]);
      app.logger.info({ services: names }, "driftwatch running (distributed)");
      await waitForSignal(app);
    });

  program
    .command("replay")
    .showHelpAfterError("(driftwatch replay --help for usage)")
    .description(
      "run recorded OTLP through detection, from files or folders (protobuf, JSON, .jsonl) or a Kafka topic range; findings as JSON lines, or with --compare-policy the difference a policy change makes",
    )
    .argument("[paths...]", "files or folders of recorded OTLP export requests")
    .option(
      "--topic <name>",
      "replay a Kafka topic instead, e.g. otlp_spans (its name on the broker: with DRIFTWATCH_TOPIC_PREFIX if the pipeline has one)",
    )
    .option("--kafka-brokers <list>", "with --topic: comma-separated brokers (default: DRIFTWATCH_KAFKA_BROKERS)")
    .option(
      "--from <bound>",
      "with --topic: where to start, inclusive: an ISO 8601 time (2025-06-01T10:00:00Z), epoch ms, offset:N (every partition) or offset:P=N,P=N (per partition) (default: the earliest message kept)",
      rangeBound,
    )
    .option(
      "--to <bound>",
      "with --topic: where to stop, exclusive, in the same forms (default: each partition's end when replay starts, so replay ends)",
      rangeBound,
    )
    .option("--policy <dir>", "policy folder (default: DRIFTWATCH_POLICY_DIR or ./policies)")
    .option("--compare-policy <dir>", "a candidate policy folder: print what it would add, remove or change (shadow mode)")
    .option(
      "--warm-up <paths...>",
      "recorded history (files or folders) to learn behaviour baselines from first; its own findings are not printed",
    )
    .option("--out <file>", "write the JSON lines to this file instead of stdout")
    .addOption(
      new Option(
        "--fail-on <severity>",
        "exit 1 if a finding is at or above this severity (with --compare-policy: a finding the candidate adds)",
      ).choices(Severity.options),
    )
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  driftwatch replay recordings/ --fail-on high",
        "  driftwatch replay recordings/today/ --warm-up recordings/last-week/",
        "  driftwatch replay --topic otlp_spans --from 2025-06-01T10:00:00Z --to 2025-06-01T11:00:00Z",
        "  driftwatch replay --topic otlp_spans --kafka-brokers kafka:9092 --from offset:0=1200,1=1180 --compare-policy policies-next/",
        "",
        "A topic range is read from every partition (times resolved per partition to offsets), as a consumer",
        "group of its own that commits nothing and is deleted afterwards; the live pipeline's groups are untouched.",
      ].join("\n"),
    )
    .action(async (paths: string[], opts: ReplayCliOptions, command: Command) => {
      const config = loadConfig();
      if (opts.policy) config.policyDir = opts.policy;
      const requests = await replayInput(paths, opts, config, command);
      const lines: string[] = [];
      let failing: Finding[];
      const warmUp = opts.warmUp ? recordedRequests(opts.warmUp) : undefined;
      const options = warmUp
        ? { warmUp, onWarmedUp: (n: number) => process.stderr.write(`warm-up: ${n} tasks learned into the behaviour baselines\n`) }
        : {};
      if (opts.comparePolicy) {
        // read once, replayed under both policies
        const before = await replay(config, requests, options);
        const after = await replay({ ...config, policyDir: opts.comparePolicy }, requests, options);
        const diff = diffFindings(before, after);
        for (const f of diff.added) lines.push(JSON.stringify({ change: "added", finding: f }));
        for (const f of diff.removed) lines.push(JSON.stringify({ change: "removed", finding: f }));
        for (const c of diff.changed) lines.push(JSON.stringify({ change: "changed", before: c.before, finding: c.after }));
        process.stderr.write(
          `${opts.comparePolicy} against ${config.policyDir}: ${diff.added.length} added, ${diff.removed.length} removed, ${diff.changed.length} changed, ${diff.unchanged} unchanged\n`,
        );
        failing = diff.added;
      } else {
        failing = await replay(config, requests, options);
        for (const f of failing) lines.push(JSON.stringify(f));
      }
      const text = lines.map((l) => `${l}\n`).join("");
      if (opts.out) writeFileSync(opts.out, text);
      else process.stdout.write(text);
      if (opts.failOn && exceeds(failing, opts.failOn)) process.exitCode = 1;
    });

  const policy = program.command("policy").description("policy-as-code tools");
  policy
    .command("check")
    .description("validate a policy folder; every error with its file and line")
    .argument("[dir]", "policy folder or file", process.env.DRIFTWATCH_POLICY_DIR ?? "policies")
    .action((dir: string) => {
      try {
        const p = loadPolicy(dir);
        process.stdout.write(
          `ok: ${p.files.length} file(s), ${p.profiles.length} profile(s), ${p.rules.size} rule setting(s), version ${p.version}\n`,
        );
      } catch (err) {
        if (err instanceof PolicyError) {
          process.stderr.write(`${err.message}\n`);
          process.exitCode = 1;
          return;
        }
        throw err;
      }
    });
  policy
    .command("schema")
    .description("print the JSON Schema of a policy file (generated from the zod schema), for editors")
    .option("--out <file>", "write it to this file instead of stdout")
    .action((opts: { out?: string }) => writePolicySchema(opts.out));

  program
    .command("demo")
    .description("send a demo scenario to a running driftwatch and show the finding and the revocation")
    .option("--otlp <url>", "OTLP/HTTP base URL", "http://127.0.0.1:4318")
    .option("--api <url>", "console base URL", "http://127.0.0.1:8080")
    .action(async (opts: { otlp: string; api: string }) => {
      // the console's token, when it requires one (DRIFTWATCH_API_TOKEN or its _FILE, as the console reads it)
      const { token } = loadConfig(process.env).api;
      process.exitCode = await runDemo(opts.otlp, opts.api, process.stdout, 10_000, token);
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`driftwatch: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof PolicyError) {
      process.stderr.write(`driftwatch: policy is invalid:\n${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`driftwatch: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

/** Run directly (`node --import tsx services/cli/main.ts …`); bin/driftwatch.js imports the built module and calls main. */
function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}
if (isEntryPoint()) await main(process.argv);
