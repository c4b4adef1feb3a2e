import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RecordingExporter } from "../../test/support/recording-exporter.js";
import { loadConfig } from "../runtime/config.js";
import { exceeds, replay } from "./replay.js";
import { billingScenario, runScenarioAgent } from "./scenario.js";

async function recordScenario(encoding: "protobuf" | "json") {
  const scenario = billingScenario();
  const exporter = new RecordingExporter(encoding);
  await runScenarioAgent(scenario, exporter);
  expect(exporter.requests.length).toBeGreaterThan(0);
  return { scenario, requests: exporter.requests };
}

describe("driftwatch replay", () => {
  const config = loadConfig({ DRIFTWATCH_LOG_LEVEL: "silent", DRIFTWATCH_POLICY_DIR: "policies" });

  it("finds the out-of-scope step in recorded OTLP protobuf, and nothing for the benign task", async () => {
    const { scenario, requests } = await recordScenario("protobuf");
    const dir = mkdtempSync(join(tmpdir(), "dw-replay-"));
    for (const [i, r] of requests.entries()) writeFileSync(join(dir, `request-${i}.pb`), r);
    const findings = await replay(config, [dir]);
    expect(findings.map((f) => [f.taskId, f.ruleId, f.stepIndex])).toEqual([[scenario.drifting.taskId, "scope.tool", 2]]);
    expect(exceeds(findings, "high")).toBe(true);
    expect(exceeds(findings, "critical")).toBe(false);
  });

  it("reads OTLP JSON lines, one export request per line", async () => {
    const { scenario, requests } = await recordScenario("json");
    const dir = mkdtempSync(join(tmpdir(), "dw-replay-"));
    const file = join(dir, "spans.jsonl");
    writeFileSync(file, requests.map((r) => Buffer.from(r).toString("utf8")).join("\n"));
    const findings = await replay(config, [file]);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ taskId: scenario.drifting.taskId, ruleId: "scope.tool" });
  });

  it("judges a policy change before it is enabled: with shell.exec granted, the same recording gives no finding", async () => {
    const { requests } = await recordScenario("protobuf");
    const dir = mkdtempSync(join(tmpdir(), "dw-replay-"));
    for (const [i, r] of requests.entries()) writeFileSync(join(dir, `request-${i}.pb`), r);
    const policyDir = mkdtempSync(join(tmpdir(), "dw-policy-"));
    writeFileSync(
      join(policyDir, "billing.yaml"),
      [
        "apiVersion: driftwatch/v1",
        "profiles:",
        "  - id: billing-agent",
        "    match: { agentIds: [billing-agent] }",
        "    tools: [{ name: invoices.read }, { name: email.send, effect: egress }, { name: shell.exec }]",
        "    environments: [prod]",
        "    egress: [smtp.acme.example]",
      ].join("\n"),
    );
    const findings = await replay({ ...config, policyDir }, [dir]);
    expect(findings).toEqual([]);
  });
});
