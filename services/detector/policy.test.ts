import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../runtime/logging.js";
import { loadPolicy, type Policy, PolicyError, PolicyHolder, parsePolicyText, profileFor } from "./policy.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dw-policy-test-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Writes files (name → lines) into a fresh temp folder. */
function policyDir(files: Record<string, string[]>): string {
  const dir = tempDir();
  for (const [name, lines] of Object.entries(files)) {
    const path = join(dir, name);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, `${lines.join("\n")}\n`);
  }
  return dir;
}

function policyError(path: string): PolicyError {
  try {
    loadPolicy(path);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return err as PolicyError;
  }
  throw new Error(`expected ${path} to be rejected`);
}

const goodProfile = ["apiVersion: driftwatch/v1", "profiles:", "  - id: good", "    match: { agentIds: [good] }"];

describe("loadPolicy: the shipped policies", () => {
  it("loads every file of policies/ with its profiles and rule settings", () => {
    const policy = loadPolicy("policies");
    expect(policy.files.map((f) => f.replace(/\\/g, "/")).sort()).toEqual([
      "policies/billing-agent.yaml",
      "policies/coding-agent.yaml",
      "policies/finance-ops-agent.yaml",
      "policies/redaction.yaml",
      "policies/research-agents.yaml",
      "policies/rules.yaml",
      "policies/support-agent.yaml",
    ]);
    expect(policy.profiles.map((p) => p.id).sort()).toEqual([
      "billing-agent",
      "coding-agent",
      "data-analyst",
      "finance-ops-agent",
      "report-writer",
      "research-lead",
      "support-agent",
      "web-researcher",
    ]);
    expect(policy.version).toMatch(/^[0-9a-f]{12}$/);
    expect(policy.rules.get("scope.tool")).toEqual({ id: "scope.tool", severity: "high", mode: "enforce", enabled: true });
    const billing = policy.profiles.find((p) => p.id === "billing-agent");
    expect(billing?.dataCeiling).toBe("confidential");
    expect(billing?.egress).toEqual(["smtp.acme.example", "*.stripe.com"]);
    // defaults applied by the schema
    expect(billing?.tools.find((t) => t.name === "email.send")).toEqual({ name: "email.send", effect: "egress", output: "trusted" });
  });

  it("gives the same version for the same content and another version when a file changes", () => {
    const a = policyDir({ "p.yaml": goodProfile });
    const b = policyDir({ "p.yaml": goodProfile });
    expect(loadPolicy(a).version).toBe(loadPolicy(b).version);
    const c = policyDir({ "p.yaml": [...goodProfile, "    dataCeiling: public"] });
    expect(loadPolicy(c).version).not.toBe(loadPolicy(a).version);
  });

  it("reads *.yml and nested folders, and skips dot files and other extensions", () => {
    const dir = policyDir({
      "a.yml": goodProfile,
      "nested/b.yaml": ["apiVersion: driftwatch/v1", "profiles:", "  - id: other", "    match: { agentIds: [other] }"],
      ".hidden.yaml": ["not: [valid"],
      "notes.txt": ["not: [valid"],
    });
    const policy = loadPolicy(dir);
    expect(policy.profiles.map((p) => p.id)).toEqual(["good", "other"]);
    expect(policy.files).toHaveLength(2);
  });

  it("loads a single file given directly", () => {
    const dir = policyDir({ "only.yaml": goodProfile });
    const policy = loadPolicy(join(dir, "only.yaml"));
    expect(policy.profiles.map((p) => p.id)).toEqual(["good"]);
  });

  it("rejects a folder with no policy files", () => {
    const dir = policyDir({ "readme.txt": ["hello"] });
    const err = policyError(dir);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]?.message).toMatch(/no policy files/);
  });
});

describe("loadPolicy: broken policies name the file and the line", () => {
  it("bad YAML syntax", () => {
    const dir = policyDir({
      "ok.yaml": goodProfile,
      "broken.yaml": [
        "apiVersion: driftwatch/v1", // 1
        "profiles:", // 2
        "  - id: broken", // 3
        "    match: { agentIds: [broken]", // 4: flow map never closed
        "    tools: []", // 5
      ],
    });
    const err = policyError(dir);
    expect(err.problems.length).toBeGreaterThan(0);
    for (const p of err.problems) expect(p.file).toBe("broken.yaml");
    expect(err.problems[0]?.line).toBe(5);
    expect(err.message).toMatch(/^broken\.yaml:5:\d+: /m);
  });

  it("an unknown field points at the field's own line", () => {
    const dir = policyDir({
      "unknown.yaml": [
        "apiVersion: driftwatch/v1", // 1
        "profiles:", // 2
        "  - id: x", // 3
        "    match: { agentIds: [x] }", // 4
        "    colour: blue", // 5
      ],
    });
    const err = policyError(dir);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatchObject({ file: "unknown.yaml", line: 5 });
    expect(err.problems[0]?.message).toMatch(/colour/);
  });

  it("an unknown top-level field points at its line", () => {
    const dir = policyDir({ "top.yaml": ["apiVersion: driftwatch/v1", "# a comment", "profils: []"] });
    const err = policyError(dir);
    expect(err.problems).toEqual([expect.objectContaining({ file: "top.yaml", line: 3 })]);
    expect(err.problems[0]?.message).toMatch(/profils/);
  });

  it("a wrong dataCeiling value", () => {
    const dir = policyDir({
      "ceiling.yaml": [
        "# comment line", // 1
        "apiVersion: driftwatch/v1", // 2
        "profiles:", // 3
        "  - id: x", // 4
        "    match: { agentIds: [x] }", // 5
        "    dataCeiling: secret", // 6
      ],
    });
    const err = policyError(dir);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatchObject({ file: "ceiling.yaml", line: 6, column: 18 });
    expect(err.problems[0]?.message).toMatch(/^profiles\.0\.dataCeiling: /);
    expect(err.problems[0]?.message).toMatch(/confidential/);
  });

  it("a profile whose match names no agent", () => {
    const dir = policyDir({
      "nomatch.yaml": [
        "apiVersion: driftwatch/v1", // 1
        "profiles:", // 2
        "  - id: a", // 3
        "    match: { agentIds: [a] }", // 4
        "  - id: b", // 5
        "    match: {}", // 6
        "    dataCeiling: internal", // 7
      ],
    });
    const err = policyError(dir);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatchObject({ file: "nomatch.yaml", line: 6 });
    expect(err.problems[0]?.message).toMatch(/^profiles\.1\.match: a profile must match at least one agent id or SPIFFE id/);
  });

  it("a profile with no match at all points at the profile", () => {
    const dir = policyDir({
      "missing.yaml": ["apiVersion: driftwatch/v1", "profiles:", "  - id: a", "    match: { agentIds: [a] }", "  - id: b", "    tools: []"],
    });
    const err = policyError(dir);
    expect(err.problems).toEqual([expect.objectContaining({ file: "missing.yaml", line: 5 })]);
    expect(err.problems[0]?.message).toMatch(/^profiles\.1\.match: /);
  });

  it("reports the problems of every broken file, each with its own name, in a nested folder too", () => {
    const dir = policyDir({
      "a.yaml": ["apiVersion: driftwatch/v2"],
      "sub/b.yaml": ["apiVersion: driftwatch/v1", "rules:", "  - { id: scope.tool, mode: block }"],
    });
    const err = policyError(dir);
    const files = err.problems.map((p) => [p.file.replace(/\\/g, "/"), p.line]);
    expect(files).toEqual([
      ["a.yaml", 1],
      ["sub/b.yaml", 3],
    ]);
  });

  it("rejects more than one YAML document in a file, at the second document", () => {
    const dir = policyDir({ "two.yaml": ["apiVersion: driftwatch/v1", "---", "apiVersion: driftwatch/v1"] });
    const err = policyError(dir);
    expect(err.problems).toEqual([expect.objectContaining({ file: "two.yaml", line: 2, message: "one YAML document per policy file" })]);
  });

  it("rejects an empty file as empty", () => {
    const dir = policyDir({ "empty.yaml": ["# nothing here"] });
    const err = policyError(dir);
    expect(err.problems).toEqual([expect.objectContaining({ file: "empty.yaml", line: 1, message: "empty policy file" })]);
  });

  it("rejects a profile id defined in two files, naming both files and the second definition's line", () => {
    const dir = policyDir({
      "a.yaml": goodProfile,
      "b.yaml": [
        "apiVersion: driftwatch/v1", // 1
        "profiles:", // 2
        "  - id: unique", // 3
        "    match: { agentIds: [unique] }", // 4
        "  - id: good", // 5
        "    match: { agentIds: [another] }", // 6
      ],
    });
    const err = policyError(dir);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatchObject({ file: "b.yaml", line: 5 });
    expect(err.problems[0]?.message).toMatch(/"good" is already defined in a\.yaml/);
  });

  it("rejects a profile id defined twice in one file", () => {
    const dir = policyDir({ "a.yaml": [...goodProfile, "  - id: good", "    match: { agentIds: [x] }"] });
    const err = policyError(dir);
    expect(err.problems).toEqual([expect.objectContaining({ file: "a.yaml", line: 5 })]);
  });

  it("parsePolicyText returns the parsed file and no problems for a good file", () => {
    const result = parsePolicyText(goodProfile.join("\n"), "x.yaml");
    expect(result.problems).toEqual([]);
    expect(result.policy?.profiles[0]).toMatchObject({ id: "good", dataCeiling: "internal", tools: [], environments: [], egress: [] });
  });
});

describe("profileFor", () => {
  const policy: Policy = loadPolicy("policies");

  it("matches an exact agent id", () => {
    expect(profileFor(policy, { id: "billing-agent" })?.id).toBe("billing-agent");
    expect(profileFor(policy, { id: "support-agent" })?.id).toBe("support-agent");
  });

  it("prefers the agent id over a SPIFFE pattern that matches another profile", () => {
    expect(profileFor(policy, { id: "billing-agent", spiffeId: "spiffe://acme.example/agents/support-eu" })?.id).toBe("billing-agent");
  });

  it("falls back to the SPIFFE id when the agent id matches nothing", () => {
    expect(profileFor(policy, { id: "nobody", spiffeId: "spiffe://acme.example/agents/coder/ci-7" })?.id).toBe("coding-agent");
  });

  it("matches SPIFFE `*` patterns and exact SPIFFE ids", () => {
    expect(profileFor(policy, { spiffeId: "spiffe://acme.example/agents/support-eu-1" })?.id).toBe("support-agent");
    expect(profileFor(policy, { spiffeId: "spiffe://acme.example/agents/billing" })?.id).toBe("billing-agent");
  });

  it("treats pattern characters other than `*` literally", () => {
    // `.` in the pattern is not a regex wildcard
    expect(profileFor(policy, { spiffeId: "spiffe://acmeXexample/agents/coder/a" })).toBeUndefined();
    // exact ids do not match as prefixes
    expect(profileFor(policy, { spiffeId: "spiffe://acme.example/agents/billing2" })).toBeUndefined();
    // the pattern is anchored at both ends
    expect(profileFor(policy, { spiffeId: "x-spiffe://acme.example/agents/coder/a" })).toBeUndefined();
    expect(profileFor(policy, { spiffeId: "spiffe://acme.example/agents/coder" })).toBeUndefined();
  });

  it("returns nothing for an unknown agent or no identity", () => {
    expect(profileFor(policy, { id: "rogue" })).toBeUndefined();
    expect(profileFor(policy, {})).toBeUndefined();
  });

  it("an agent id is never treated as a pattern", () => {
    const dir = policyDir({ "p.yaml": ["apiVersion: driftwatch/v1", "profiles:", "  - id: star", "    match: { agentIds: ['agent-*'] }"] });
    const p = loadPolicy(dir);
    expect(profileFor(p, { id: "agent-1" })).toBeUndefined();
    expect(profileFor(p, { id: "agent-*" })?.id).toBe("star");
  });
});

describe("PolicyHolder", () => {
  const logger = createLogger("silent");

  it("keeps the last good policy when an edit is broken, and switches once it is fixed", () => {
    const dir = policyDir({ "p.yaml": goodProfile });
    const holder = new PolicyHolder(dir, logger);
    const first = holder.current;
    expect(first.profiles.map((p) => p.id)).toEqual(["good"]);

    writeFileSync(join(dir, "p.yaml"), [...goodProfile, "    dataCeiling: top-secret", ""].join("\n"));
    expect(holder.reload()).toBe(false);
    expect(holder.current).toBe(first);
    expect(holder.current.version).toBe(first.version);

    writeFileSync(join(dir, "p.yaml"), [...goodProfile, "    dataCeiling: public", ""].join("\n"));
    expect(holder.reload()).toBe(true);
    expect(holder.current.version).not.toBe(first.version);
    expect(holder.current.profiles[0]?.dataCeiling).toBe("public");
  });

  it("keeps the same policy object when nothing changed", () => {
    const dir = policyDir({ "p.yaml": goodProfile });
    const holder = new PolicyHolder(dir, logger);
    const first = holder.current;
    expect(holder.reload()).toBe(true);
    expect(holder.current).toBe(first);
  });

  it("picks up a new file and rejects a duplicate profile added later", () => {
    const dir = policyDir({ "p.yaml": goodProfile });
    const holder = new PolicyHolder(dir, logger);
    writeFileSync(
      join(dir, "q.yaml"),
      ["apiVersion: driftwatch/v1", "profiles:", "  - id: extra", "    match: { agentIds: [extra] }"].join("\n"),
    );
    expect(holder.reload()).toBe(true);
    expect(holder.current.profiles.map((p) => p.id)).toEqual(["good", "extra"]);
    const before = holder.current;
    writeFileSync(join(dir, "r.yaml"), goodProfile.join("\n"));
    expect(holder.reload()).toBe(false);
    expect(holder.current).toBe(before);
  });

  it("refuses to start on a broken policy", () => {
    const dir = policyDir({ "p.yaml": ["apiVersion: nope"] });
    expect(() => new PolicyHolder(dir, logger)).toThrow(PolicyError);
  });
});

describe("profileFor: SPIFFE patterns", () => {
  const policy = loadPolicy("policies");
  it("`*` matches within one path segment only", () => {
    expect(profileFor(policy, { spiffeId: "spiffe://acme.example/agents/coder/alice" })?.id).toBe("coding-agent");
    expect(profileFor(policy, { spiffeId: "spiffe://acme.example/agents/coder/alice/escalated" })).toBeUndefined();
    expect(profileFor(policy, { spiffeId: "spiffe://acme.example/agents/support-eu" })?.id).toBe("support-agent");
    expect(profileFor(policy, { spiffeId: "spiffe://acme.example/agents/support-eu/x" })).toBeUndefined();
  });
});

describe("loadPolicy: redaction", () => {
  it("unites the redaction settings of every file", () => {
    const dir = policyDir({
      "a.yaml": [...goodProfile, "redaction:", "  attributes: [gen_ai.input.*]"],
      "b.yaml": ["apiVersion: driftwatch/v1", "redaction:", "  argumentKeys: [password]"],
    });
    const p = loadPolicy(dir);
    expect(p.redaction).toEqual({ attributes: ["gen_ai.input.*"], argumentKeys: ["password"] });
  });
});
