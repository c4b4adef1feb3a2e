import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * Whether the integration tests can have their servers here, decided before any test runs
 * (vitest.config.ts). A machine without Java or redis-server still runs the unit tests:
 * the integration tests are left out, and the run ends by naming them and why (see
 * `SkippedReporter`). Where a run must not go without them, it fails instead:
 * in CI (`CI` set, as `.ci/run` does) or with `DRIFTWATCH_TEST_REQUIRE_SERVERS=1`.
 */
export type Availability = { available: true } | { available: false; reason: string };

export function integrationServers(env: NodeJS.ProcessEnv = process.env, script = "scripts/test-env.sh"): Availability {
  if (env.DRIFTWATCH_TEST_KAFKA_BROKERS && env.DRIFTWATCH_TEST_REDIS_URL) return { available: true };
  if (mustRun(env)) return { available: true };
  // test-env.sh check: what `up` would need and is missing; it starts nothing
  const check = spawnSync("bash", [script, "check"], { env, encoding: "utf8" });
  if (check.status === 0) return { available: true };
  const said = `${check.stderr ?? ""}`.replace(/^\[test-env\] ERROR: /, "").trim();
  return { available: false, reason: said || `scripts/test-env.sh check failed (${check.error?.message ?? `exit ${check.status}`})` };
}

/** The Chromium the browser tests drive (Debian's package; `DRIFTWATCH_CHROMIUM` for another). */
export const chromiumPath = (env: NodeJS.ProcessEnv = process.env) => env.DRIFTWATCH_CHROMIUM ?? "/usr/bin/chromium";

/** Whether the browser tests can run here: Chromium is installed, or the run must not go without them. */
export function browserAvailable(env: NodeJS.ProcessEnv = process.env): Availability {
  const path = chromiumPath(env);
  if (existsSync(path) || mustRun(env)) return { available: true };
  return { available: false, reason: `there is no Chromium at ${path} (apt-get install chromium, or set DRIFTWATCH_CHROMIUM).` };
}

/** In CI or when asked, missing servers fail the run rather than leave tests out. */
export const mustRun = (env: NodeJS.ProcessEnv = process.env) =>
  (env.CI !== undefined && env.CI !== "" && env.CI !== "false") || env.DRIFTWATCH_TEST_REQUIRE_SERVERS === "1";

/** The test files under `dirs` (what a project that is left out would have run). */
export function testFiles(dirs: string[]): string[] {
  return dirs
    .flatMap((dir) => (readdirSync(dir, { recursive: true }) as string[]).map((f) => join(dir, f)))
    .filter((f) => f.endsWith(".test.ts"))
    .sort();
}

/** Whether the command line picked projects (`--project x`) and left `name` out. */
export function projectDeselected(name: string, argv: string[] = process.argv): boolean {
  const picked: string[] = [];
  argv.forEach((a, i) => {
    if (a === "--project" && argv[i + 1]) picked.push(argv[i + 1] as string);
    else if (a.startsWith("--project=")) picked.push(a.slice("--project=".length));
  });
  return picked.length > 0 && !picked.includes(name);
}

/** A vitest reporter that ends the run by saying which tests were left out, and why. */
export class SkippedReporter {
  constructor(private readonly skipped: { project: string; files: string[]; reason: string; remedy: string }[]) {}

  onTestRunEnd(): void {
    for (const s of this.skipped) {
      process.stderr.write(
        `\n  NOT RUN: the ${s.project} tests (${s.files.length} files), because ${s.reason}\n` +
          s.files.map((f) => `    - ${f}\n`).join("") +
          `  ${s.remedy}\n`,
      );
    }
  }
}
