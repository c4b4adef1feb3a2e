import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

/** The built `driftwatch` command, as a user runs it. */
function driftwatch(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync("node", ["bin/driftwatch.js", ...args], {
    encoding: "utf8",
    env: { ...process.env, DRIFTWATCH_LOG_LEVEL: "silent", ...env },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("driftwatch CLI", () => {
  beforeAll(() => {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
  }, 120_000);

  it("policy check accepts the shipped policies", () => {
    const r = driftwatch(["policy", "check", "policies"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: 7 file\(s\), 8 profile\(s\)/);
  });

  it("policy check rejects a broken policy with its file and line", () => {
    const dir = mkdtempSync(join(tmpdir(), "dw-cli-policy-"));
    writeFileSync(
      join(dir, "bad.yaml"),
      ["apiVersion: driftwatch/v1", "profiles:", "  - id: x", "    match: { agentIds: [x] }", "    dataCeiling: secret", ""].join("\n"),
    );
    const r = driftwatch(["policy", "check", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^bad\.yaml:5:\d+: profiles\.0\.dataCeiling: /m);
  });

  it("a bad environment variable stops the process with an error naming it", () => {
    const r = driftwatch(["start"], { DRIFTWATCH_API_PORT: "eighty" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("DRIFTWATCH_API_PORT");
  });

  it("run refuses an unknown service and names the valid ones", () => {
    const r = driftwatch(["run", "frobnicator"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('unknown service "frobnicator"');
    expect(r.stderr).toContain("pathfinder");
  });

  it("replay says what is wrong with a Kafka topic range before asking any broker", () => {
    const cases: [string[], RegExp][] = [
      [
        ["--topic", "otlp_spans", "--from", "yesterday"],
        /argument 'yesterday' is invalid\. "yesterday" is not a range bound; give an ISO 8601 time/,
      ],
      [["--topic", "otlp_spans", "--to", "2025-06-01T10:00"], /"2025-06-01T10:00" has no time zone/],
      [["--topic", "otlp_spans", "--from", "120"], /reads as epoch milliseconds .* an offset is written offset:120/],
      [
        ["--topic", "otlp_spans", "--from", "2025-06-02T00:00:00Z", "--to", "2025-06-01T00:00:00Z"],
        /is not before --to .*: the range is empty/,
      ],
      [["--topic", "otlp_spans", "--from", "offset:0=9", "--to", "offset:0=3"], /--from offset 9 is after --to offset 3 in partition 0/],
      [["--from", "offset:5"], /--from reads a Kafka topic range: give --topic too/],
      [["--kafka-brokers", "kafka:9092", "recordings"], /--kafka-brokers reads a Kafka topic range: give --topic too/],
      [["recordings", "--topic", "otlp_spans"], /replay either files and folders or --topic, not both/],
      [[], /nothing to replay: give files or folders of recorded OTLP, or --topic <name>/],
    ];
    for (const [args, message] of cases) {
      const r = driftwatch(["replay", ...args]);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toMatch(message);
      expect(r.stderr).toContain("(driftwatch replay --help for usage)");
    }
  }, 90_000);

  it("replay --topic says clearly when no broker answers", () => {
    const r = driftwatch(["replay", "--topic", "otlp_spans", "--kafka-brokers", "127.0.0.1:9"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^driftwatch: cannot reach Kafka at 127\.0\.0\.1:9: .*ECONNREFUSED/m);
  });

  it("demo says clearly when no Driftwatch is running", () => {
    const r = driftwatch(["demo", "--api", "http://127.0.0.1:9", "--otlp", "http://127.0.0.1:9"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("Start Driftwatch first");
  });
});
