import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import { Finding } from "../../schemas/finding.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { type App, startDistributed } from "../../services/cli/app.js";
import { BaselineStore } from "../../services/detector/baseline-store.js";
import type { Bus } from "../../services/runtime/bus/bus.js";
import type { Config } from "../../services/runtime/config.js";
import { recordsOf } from "../../services/runtime/decode.js";
import type { RedisStore } from "../../services/runtime/store/redis-store.js";
import { agentAction, toolCall } from "../support/actions.js";
import { distributedConfig, isolation, kafkaBus, redisStore, testLogger } from "../support/ports.js";
import { eventually } from "../support/wait.js";

/**
 * Behaviour baselines through the real broker and server: two detector instances learn an
 * agent's finished tasks into Redis (each task once, none with a policy finding), and then
 * flag a task unlike them.
 */
describe("behaviour baselines, distributed (real Kafka and Redis)", () => {
  const iso = isolation("baselines");
  const policyDir = mkdtempSync(join(tmpdir(), "dw-baselines-"));
  const apps: App[] = [];
  let config: Config;
  let bus: Bus;
  let store: RedisStore;
  const findings: Finding[] = [];
  let closeWatch: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    writeFileSync(
      join(policyDir, "habit.yaml"),
      [
        "apiVersion: driftwatch/v1",
        "profiles:",
        "  - id: habit",
        "    match: { agentIds: [habit-agent] }",
        "    tools:",
        "      - { name: tickets.read, effect: read }",
        "      - { name: kb.search, effect: read }",
        "      - { name: tickets.reply, effect: write }",
        "      - { name: tickets.export, effect: read }",
        "    baseline: { warmUpTasks: 20, minTransitions: 20 }",
      ].join("\n"),
    );
    config = distributedConfig(iso, {
      DRIFTWATCH_POLICY_DIR: policyDir,
      DRIFTWATCH_BASELINE_SWEEP_MS: "200",
      DRIFTWATCH_BASELINE_SETTLE_MS: "500",
    });
    apps.push(await startDistributed(config, ["pathfinder"], { logger: testLogger }));
    apps.push(await startDistributed(config, ["detector"], { logger: testLogger }));
    apps.push(await startDistributed(config, ["detector"], { logger: testLogger }));
    bus = kafkaBus();
    store = redisStore(iso.keyPrefix);
    const sub = await bus.subscribe(
      { group: `${iso.groupPrefix}findings-watch`, topics: [topicName(config.topicPrefix, TOPICS.findings)], fromBeginning: true },
      async (batch) => {
        for (const m of batch) for (const r of recordsOf(m)) findings.push(Finding.parse(r));
      },
    );
    closeWatch = () => sub.close();
  });

  afterAll(async () => {
    await closeWatch?.();
    for (const app of apps.reverse()) await app.close();
    await bus?.close();
    await store?.close();
    rmSync(policyDir, { recursive: true, force: true });
  });

  /** A finished task of the agent: its invocation at the root, then its tool calls below it. */
  function task(taskId: string, startMs: number, tools: string[]): AgentAction[] {
    const agent = { id: "habit-agent" };
    const root = agentAction({ taskId, agent, operation: "invoke_agent", name: "invoke_agent habit", startTimeMs: startMs });
    root.endTimeMs = startMs + tools.length * 1_000 + 500;
    const calls = tools.map((name, i) =>
      toolCall({ taskId, agent, parentSpanId: root.spanId, startTimeMs: startMs + 100 + i * 1_000, tool: { name } }),
    );
    return [root, ...calls];
  }

  const publish = (actions: AgentAction[]) =>
    bus.publish(
      topicName(config.topicPrefix, TOPICS.actions),
      actions.map((a) => ({ key: a.taskId, value: JSON.stringify(a) })),
    );

  it("learns each finished task once into Redis, leaves out the one with a policy finding, then flags a task unlike them", async () => {
    const start = Date.now() - 600_000;
    for (let n = 0; n < 24; n++) {
      const tools =
        n % 4 === 0 ? ["tickets.read", "kb.search", "kb.search", "tickets.reply"] : ["tickets.read", "kb.search", "tickets.reply"];
      await publish(task(`habit-${n}`, start + n * 10_000, tools));
    }
    // a task that reaches outside the profile: a policy finding, never learned as normal
    await publish(task("habit-bad", start + 250_000, ["tickets.read", "shell.exec"]));

    const baselines = new BaselineStore(store);
    const learned = await eventually(
      async () => {
        const b = await baselines.load("habit-agent");
        return b.tasks >= 24 ? b : undefined;
      },
      60_000,
      "24 tasks in the agent's baseline",
    );
    // two more sweeps of both detectors: still 24, nothing learned twice, the bad task left out
    await new Promise((r) => setTimeout(r, 1_000));
    const again = await baselines.load("habit-agent");
    expect(again.tasks).toBe(24);
    expect(again.tools.counts.has("shell.exec")).toBe(false);
    expect(learned.tools.counts.get("tickets.reply")).toBe(24);
    expect(again.lengths.median).toBe(4);
    expect(findings.some((f) => f.taskId === "habit-bad" && f.ruleId === "scope.tool")).toBe(true);
    expect(findings.filter((f) => f.kind === "anomaly")).toEqual([]);

    // a permitted tool the agent has never used, at the end of an otherwise usual task
    await publish(task("unusual", Date.now() - 5_000, ["tickets.read", "kb.search", "tickets.export"]));
    const anomaly = await eventually(
      () => findings.find((f) => f.taskId === "unusual" && f.kind === "anomaly"),
      60_000,
      "an anomaly finding for the unusual task",
    );
    expect(anomaly).toMatchObject({
      ruleId: "anomaly.novel_tool",
      stepIndex: 3,
      evidence: { observed: { feature: "tool", value: "tickets.export" }, expected: { baseline: { tasks: 24 } } },
    });
  });
});
