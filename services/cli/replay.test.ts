import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { driftPolicy, driftTasks, recordWorkload } from "../../test/support/drift-workload.js";
import { RecordingExporter } from "../../test/support/recording-exporter.js";
import { loadConfig } from "../runtime/config.js";
import { diffFindings, exceeds, replay } from "./replay.js";
import { billingScenario, runScenarioAgent, type Scenario } from "./scenario.js";

async function recordScenario(encoding: "protobuf" | "json") {
  const scenario = billingScenario();
  const exporter = new RecordingExporter(encoding);
  await runScenarioAgent(scenario, exporter);
  expect(exporter.requests.length).toBeGreaterThan(0);
  return { scenario, requests: exporter.requests };
}

/** The scenario recorded as OTLP protobuf files in a fresh folder, one request per file. */
async function recordToFolder() {
  const { scenario, requests } = await recordScenario("protobuf");
  const dir = mkdtempSync(join(tmpdir(), "dw-replay-"));
  for (const [i, r] of requests.entries()) writeFileSync(join(dir, `request-${i}.pb`), r);
  return { scenario, dir };
}

/** A policy folder whose billing profile also grants shell.exec (the scenario's drift). */
function lenientPolicy(): string {
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
  return policyDir;
}

describe("driftwatch replay", () => {
  const config = loadConfig({ DRIFTWATCH_LOG_LEVEL: "silent", DRIFTWATCH_POLICY_DIR: "policies" });

  it("finds the out-of-scope step in recorded OTLP protobuf, and nothing for the benign task", async () => {
    const { scenario, dir } = await recordToFolder();
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

  it("replays requests one after the other, as they arrived live: a delegate's lineage is known when its spans come", async () => {
    // the delegating task's first step, then its delegate (which searches the web, which the
    // delegating agent may not), then the delegating task's end: three exports, in that order
    const [delegating] = driftTasks(`r${Date.now()}`).filter((t) => t.name === "delegate");
    if (!delegating?.delegate) throw new Error("the workload has no delegation");
    const recorded = await recordWorkload([delegating], "json");
    expect(recorded).toHaveLength(3);
    // requests already read (as from Kafka) replay as files do, with their content type
    const requests = recorded.map((bytes, i) => ({ source: `export ${i}`, bytes: Buffer.from(bytes), contentType: "application/json" }));
    const policyDir = driftPolicy();
    for (let run = 0; run < 5; run++) {
      const findings = await replay({ ...config, policyDir }, requests);
      expect(findings.map((f) => [f.taskId, f.ruleId, f.stepIndex])).toEqual([[delegating.delegate.taskId, "scope.delegation", 2]]);
    }
  });

  it("judges a policy change before it is enabled: with shell.exec granted, the same recording gives no finding", async () => {
    const { dir } = await recordToFolder();
    const policyDir = lenientPolicy();
    const findings = await replay({ ...config, policyDir }, [dir]);
    expect(findings).toEqual([]);
  });
});

describe("driftwatch replay --compare-policy (shadow mode for a policy change)", () => {
  const config = loadConfig({ DRIFTWATCH_LOG_LEVEL: "silent", DRIFTWATCH_POLICY_DIR: "policies" });

  it("says which findings a candidate policy adds, removes or changes over the same recording", async () => {
    const { scenario, dir } = await recordToFolder();
    // candidate 1: shell.exec granted to the billing agent
    const lenient = lenientPolicy();
    // candidate 2: the shipped policy, with scope.tool raised to critical
    const stricter = mkdtempSync(join(tmpdir(), "dw-policy-"));
    for (const name of readdirSync("policies").filter((n) => n !== "rules.yaml")) {
      copyFileSync(join("policies", name), join(stricter, name));
    }
    writeFileSync(join(stricter, "rules.yaml"), "apiVersion: driftwatch/v1\nrules:\n  - { id: scope.tool, severity: critical }\n");

    const shipped = await replay(config, [dir]);
    expect(shipped.map((f) => f.ruleId)).toEqual(["scope.tool"]);
    const removed = diffFindings(shipped, await replay({ ...config, policyDir: lenient }, [dir]));
    expect(removed.added).toEqual([]);
    expect(removed.removed.map((f) => [f.taskId, f.ruleId])).toEqual([[scenario.drifting.taskId, "scope.tool"]]);
    expect(removed.unchanged).toBe(0);

    const changed = diffFindings(shipped, await replay({ ...config, policyDir: stricter }, [dir]));
    expect(changed.added).toEqual([]);
    expect(changed.removed).toEqual([]);
    expect(changed.changed.map((c) => [c.before.severity, c.after.severity, c.after.id === c.before.id])).toEqual([
      ["high", "critical", true],
    ]);

    // and the other way round: what enabling the shipped policy would add to the lenient one
    const added = diffFindings(await replay({ ...config, policyDir: lenient }, [dir]), shipped);
    expect(added.added.map((f) => f.ruleId)).toEqual(["scope.tool"]);
    expect(exceeds(added.added, "high")).toBe(true);
  });

  it("--warm-up: learns baselines from recorded history first, then flags what departs from it, and only then", async () => {
    const { agent } = billingScenario();
    const reminder = (n: number) => ({
      taskId: `history-${n}`,
      intent: `Remind customer ${n} of an overdue invoice`,
      credentialId: `lease-history-${n}`,
      steps: [
        { tool: "invoices.read", effect: "read" as const, classification: "internal" as const, arguments: { customer: String(n) } },
        { tool: "email.send", effect: "egress" as const, destination: "smtp.acme.example", arguments: { to: `ap@customer${n}.example` } },
      ],
    });
    const record = async (scenario: Scenario) => {
      const exporter = new RecordingExporter("protobuf");
      await runScenarioAgent(scenario, exporter);
      const dir = mkdtempSync(join(tmpdir(), "dw-warmup-"));
      for (const [i, r] of exporter.requests.entries()) writeFileSync(join(dir, `request-${String(i).padStart(4, "0")}.pb`), r);
      return dir;
    };
    const history = await record({ agent, tasks: Array.from({ length: 32 }, (_, n) => reminder(n)) });
    // today: a usual reminder, and one that issues a refund, a tool the profile allows but the agent never used
    const today = await record({
      agent,
      tasks: [
        { ...reminder(100), taskId: "usual" },
        {
          taskId: "refund",
          intent: "Remind customer 7 of an overdue invoice",
          credentialId: "lease-refund",
          steps: [
            { tool: "invoices.read", effect: "read", classification: "internal", arguments: { customer: "7" } },
            { tool: "payments.refund", effect: "write", arguments: { invoice: "INV-7", amount: 90 } },
          ],
        },
      ],
    });
    let learned = 0;
    const findings = await replay(config, [today], { warmUp: [history], onWarmedUp: (n) => (learned = n) });
    expect(learned).toBe(32);
    expect(findings.map((f) => [f.taskId, f.ruleId])).toEqual([["refund", "anomaly.novel_tool"]]);
    expect(findings[0]?.evidence.observed).toMatchObject({ feature: "tool", value: "payments.refund" });
    // without the history there is no baseline, so no anomaly
    expect(await replay(config, [today])).toEqual([]);
  });
});
