import { realpathSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Command, InvalidArgumentError, Option } from "commander";
import { type Finding, Severity } from "../../schemas/finding.js";
import { loadPolicy, PolicyError } from "../detector/policy.js";
import { ConfigError, loadConfig } from "../runtime/config.js";
import { type App, SERVICE_NAMES, type ServiceName, startDistributed, startEmbedded } from "./app.js";
import { runDemo } from "./demo.js";
import { writePolicySchema } from "./policy-schema.js";
import { diffFindings, exceeds, replay } from "./replay.js";

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
  if (value === "all") return [...SERVICE_NAMES];
  if (!(SERVICE_NAMES as string[]).includes(value)) {
    throw new InvalidArgumentError(`unknown service "${value}"; one of: ${SERVICE_NAMES.join(", ")}, all`);
  }
  return [...previous, value as ServiceName];
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
        `driftwatch running (embedded)\n  OTLP/HTTP  ${app.gatewayUrl}/v1/traces\n  console    ${app.apiUrl}/api/v1/tasks\n  policy     ${config.policyDir}\nPress Ctrl-C to stop.\n`,
      );
      await waitForSignal(app);
    });

  program
    .command("run")
    .description(`run services against Kafka and Redis (${SERVICE_NAMES.join(", ")}, or all)`)
    .argument("<service...>", "service name(s)", (v, prev: ServiceName[] | undefined) => serviceName(v, prev ?? []))
    .action(async (names: ServiceName[]) => {
      const config = loadConfig();
      const app = await startDistributed(config, [...new Set(names)]);
      app.logger.info({ services: names }, "driftwatch running (distributed)");
      await waitForSignal(app);
    });

  program
    .command("replay")
    .description(
      "run recorded OTLP (protobuf or JSON files, folders, .jsonl) through detection; findings as JSON lines, or with --compare-policy the difference a policy change makes",
    )
    .argument("<paths...>", "files or folders of recorded OTLP export requests")
    .option("--policy <dir>", "policy folder (default: DRIFTWATCH_POLICY_DIR or ./policies)")
    .option("--compare-policy <dir>", "a candidate policy folder: print what it would add, remove or change (shadow mode)")
    .option("--out <file>", "write the JSON lines to this file instead of stdout")
    .addOption(
      new Option(
        "--fail-on <severity>",
        "exit 1 if a finding is at or above this severity (with --compare-policy: a finding the candidate adds)",
      ).choices(Severity.options),
    )
    .action(async (paths: string[], opts: { policy?: string; comparePolicy?: string; out?: string; failOn?: Severity }) => {
      const config = loadConfig();
      if (opts.policy) config.policyDir = opts.policy;
      const lines: string[] = [];
      let failing: Finding[];
      if (opts.comparePolicy) {
        const before = await replay(config, paths);
        const after = await replay({ ...config, policyDir: opts.comparePolicy }, paths);
        const diff = diffFindings(before, after);
        for (const f of diff.added) lines.push(JSON.stringify({ change: "added", finding: f }));
        for (const f of diff.removed) lines.push(JSON.stringify({ change: "removed", finding: f }));
        for (const c of diff.changed) lines.push(JSON.stringify({ change: "changed", before: c.before, finding: c.after }));
        process.stderr.write(
          `${opts.comparePolicy} against ${config.policyDir}: ${diff.added.length} added, ${diff.removed.length} removed, ${diff.changed.length} changed, ${diff.unchanged} unchanged\n`,
        );
        failing = diff.added;
      } else {
        failing = await replay(config, paths);
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
      process.exitCode = await runDemo(opts.otlp, opts.api, process.stdout);
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
