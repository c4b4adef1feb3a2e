import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Finding } from "../../schemas/finding.js";
import { ResponsePolicy } from "../../schemas/policy.js";
import { aFinding } from "../../test/support/findings.js";
import { loadPolicy, PolicyError } from "../detector/policy.js";
import { decideResponse } from "./response-policy.js";

const finding = (over: Partial<Finding> = {}) => aFinding({ id: "f", taskId: "t", ...over });

describe("response policy", () => {
  const policy = ResponsePolicy.parse({
    rules: [
      { id: "exfil-quarantines", when: { kinds: ["flow"], minSeverity: "high" }, action: "quarantine" },
      {
        id: "finance-asks",
        when: { agents: ["finance-*"], rules: ["scope.*"] },
        action: "ask_human",
        approval: { timeoutMs: 60_000, onTimeout: "revoke" },
      },
      { id: "anomalies-notify", when: { kinds: ["anomaly"], modes: ["alert", "enforce"] }, action: "notify" },
      { id: "trial", when: { rules: ["provenance.*"] }, action: "revoke", dryRun: true },
    ],
  });
  const minSeverity = "high" as const;

  it("takes the first rule that matches, by kind, severity, rule id prefix, agent prefix and mode", () => {
    expect(decideResponse(finding({ kind: "flow", ruleId: "flow.egress_after_sensitive_read" }), policy, { minSeverity })).toEqual({
      action: "quarantine",
      rule: "exfil-quarantines",
      dryRun: false,
    });
    // a medium flow finding misses the first rule and every other: the default (enforce, below the threshold) notifies
    expect(decideResponse(finding({ kind: "flow", severity: "medium" }), policy, { minSeverity }).rule).toBe("default");
    expect(decideResponse(finding({ agentId: "finance-ops-agent" }), policy, { minSeverity })).toEqual({
      action: "ask_human",
      rule: "finance-asks",
      dryRun: false,
      approval: { timeoutMs: 60_000, onTimeout: "revoke", onApprove: "revoke" },
    });
    expect(decideResponse(finding({ kind: "anomaly", ruleId: "anomaly.novel_tool", mode: "alert" }), policy, { minSeverity }).rule).toBe(
      "anomalies-notify",
    );
    expect(decideResponse(finding({ ruleId: "provenance.untrusted_argument", kind: "provenance" }), policy, { minSeverity })).toEqual({
      action: "revoke",
      rule: "trial",
      dryRun: true,
    });
  });

  it("falls back to the default: enforce at or above the minimum severity revokes, the rest notify, shadow never acts", () => {
    expect(decideResponse(finding(), undefined, { minSeverity })).toMatchObject({ action: "revoke", rule: "default" });
    expect(decideResponse(finding({ severity: "medium" }), undefined, { minSeverity }).action).toBe("notify");
    expect(decideResponse(finding({ mode: "alert", severity: "critical" }), undefined, { minSeverity }).action).toBe("notify");
    const everything = ResponsePolicy.parse({ rules: [{ id: "all", action: "quarantine", when: { modes: ["enforce", "alert"] } }] });
    expect(decideResponse(finding({ mode: "shadow" }), everything, { minSeverity }).action).toBe("notify");
    expect(decideResponse(finding({ mode: "alert" }), everything, { minSeverity }).action).toBe("quarantine");
  });

  it("a global dry run makes every decision a dry run", () => {
    const dry = ResponsePolicy.parse({ dryRun: true });
    expect(decideResponse(finding(), dry, { minSeverity })).toEqual({ action: "revoke", rule: "default", dryRun: true });
  });

  it("loads response rules from policy files in file order, and rejects a bad or repeated rule with file and line", () => {
    const dir = mkdtempSync(join(tmpdir(), "dw-responses-"));
    try {
      writeFileSync(
        join(dir, "a.yaml"),
        "apiVersion: driftwatch/v1\nresponses:\n  rules:\n    - { id: first, action: notify, when: { kinds: [anomaly] } }\n",
      );
      writeFileSync(
        join(dir, "b.yaml"),
        "apiVersion: driftwatch/v1\nresponses:\n  dryRun: true\n  rules:\n    - { id: second, action: revoke }\n",
      );
      const loaded = loadPolicy(dir);
      expect(loaded.responses?.rules.map((r) => r.id)).toEqual(["first", "second"]);
      expect(loaded.responses?.dryRun).toBe(true);

      writeFileSync(
        join(dir, "c.yaml"),
        [
          "apiVersion: driftwatch/v1",
          "responses:",
          "  rules:",
          "    - id: first",
          "      action: revoke",
          "    - id: broken",
          "      action: explode",
          "    - id: approval-without-asking",
          "      action: revoke",
          "      approval: { timeoutMs: 1000 }",
        ].join("\n"),
      );
      let error: PolicyError | undefined;
      try {
        loadPolicy(dir);
      } catch (err) {
        error = err as PolicyError;
      }
      expect(error).toBeInstanceOf(PolicyError);
      const problems = (error as PolicyError).problems.map((p) => `${p.file}:${p.line}: ${p.message}`);
      expect(problems).toEqual([
        expect.stringMatching(/^c\.yaml:7: responses\.rules\.1\.action: Invalid option/),
        expect.stringMatching(/^c\.yaml:10: responses\.rules\.2\.approval: approval applies only to action ask_human/),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
