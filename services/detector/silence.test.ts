import { afterEach, describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import { Finding } from "../../schemas/finding.js";
import { AgentProfile } from "../../schemas/policy.js";
import { toolCall } from "../../test/support/actions.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import type { OutgoingMessage } from "../runtime/bus/bus.js";
import { createLogger } from "../runtime/logging.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import type { Policy } from "./policy.js";
import { type SilenceWatch, watchSilence } from "./silence.js";

const T0 = 1_760_000_000_000;
const TRACE = "6bf92f3577b34da6a3ce929d0e0e4738";
const SILENCE_MS = 60_000;

const policy: Policy = {
  version: "silence-test",
  profiles: [
    { id: "watched", match: { agentIds: ["watched-agent"] }, tools: [{ name: "crm.read" }], telemetry: { silenceMs: SILENCE_MS } },
    { id: "unwatched", match: { agentIds: ["quiet-agent"] }, tools: [{ name: "crm.read" }] },
  ].map((p) => AgentProfile.parse(p)),
  rules: new Map(),
  redaction: { attributes: [], argumentKeys: [] },
  files: [],
};

const act = (taskId: string, agentId: string, at: number, over: Partial<AgentAction> = {}): AgentAction =>
  toolCall({ taskId, traceId: TRACE, agent: { id: agentId }, tool: { name: "crm.read" }, startTimeMs: at, ...over });

describe("telemetry silence", () => {
  let watch: SilenceWatch | undefined;
  afterEach(() => watch?.stop());

  function setup() {
    const tasks = new TaskStore(new MemoryStore());
    const published: { topic: string; messages: OutgoingMessage[] }[] = [];
    let clock = T0;
    watch = watchSilence({
      tasks,
      policy: () => policy,
      bus: { publish: async (topic, messages) => void published.push({ topic, messages }) },
      findingsTopic: "agent.findings",
      intervalMs: 3_600_000,
      logger: createLogger("silent"),
      now: () => clock,
    });
    const sweep = (atMs: number) => {
      clock = atMs;
      return (watch as SilenceWatch).sweep();
    };
    return { tasks, published, sweep };
  }

  it("flags a running task whose agent has sent nothing for longer than its profile allows, once, at its last step", async () => {
    const { tasks, published, sweep } = setup();
    await recordActions(tasks, [act("t-silent", "watched-agent", T0), act("t-silent", "watched-agent", T0 + 1_000)]);
    const lastSeen = T0 + 1_010;
    expect(await sweep(lastSeen + SILENCE_MS)).toEqual([]);
    const [finding] = await sweep(lastSeen + SILENCE_MS + 5_000);
    expect(Finding.parse(finding)).toMatchObject({
      taskId: "t-silent",
      ruleId: "task.telemetry_silence",
      kind: "telemetry_gap",
      stepIndex: 1,
      evidence: { observed: { silentMs: SILENCE_MS + 5_000, lastSeenMs: lastSeen }, expected: { silenceMs: SILENCE_MS } },
    });
    expect(published).toHaveLength(1);
    expect(published[0]?.topic).toBe("agent.findings");
    expect(published[0]?.messages.map((m) => m.key)).toEqual(["t-silent"]);
    // once per task
    expect(await sweep(lastSeen + 10 * SILENCE_MS)).toEqual([]);
    expect(published).toHaveLength(1);
  });

  it("leaves alone completed tasks, revoked tasks and agents whose profile sets no silence limit", async () => {
    const { tasks, sweep } = setup();
    const root = act("t-done", "watched-agent", T0, { operation: "invoke_agent" });
    delete root.tool;
    await recordActions(tasks, [act("t-done", "watched-agent", T0 + 1), root]);
    await recordActions(tasks, [act("t-revoked", "watched-agent", T0)]);
    await tasks.markRevoked("t-revoked", { atMs: T0 + 100, findingId: "f" });
    await recordActions(tasks, [act("t-quiet", "quiet-agent", T0)]);
    expect(await sweep(T0 + 100 * SILENCE_MS)).toEqual([]);
  });

  it("finds a task that just fell silent behind more long-idle tasks than one sweep looks at", async () => {
    const { tasks, sweep } = setup();
    // 1,100 tasks abandoned hours ago (flagged back then, or never watched): more than a sweep reads
    for (let i = 0; i < 1_100; i += 100) {
      await recordActions(
        tasks,
        Array.from({ length: 100 }, (_, j) => act(`t-old-${i + j}`, "watched-agent", T0 + i + j)),
      );
    }
    const later = T0 + 3 * 3_600_000;
    await recordActions(tasks, [act("t-new", "watched-agent", later)]);
    const found = await sweep(later + SILENCE_MS + 1_000);
    expect(found.map((f) => f.taskId)).toEqual(["t-new"]);
  });
});
