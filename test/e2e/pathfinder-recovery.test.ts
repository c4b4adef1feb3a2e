import { afterEach, describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import type { Step } from "../../schemas/step.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { type App, allTopics, startDistributed } from "../../services/cli/app.js";
import { TaskStore, type TaskSummary } from "../../services/pathfinder/task-store.js";
import type { Bus, OutgoingMessage } from "../../services/runtime/bus/bus.js";
import type { Config } from "../../services/runtime/config.js";
import { recordsOf } from "../../services/runtime/decode.js";
import type { RedisStore } from "../../services/runtime/store/redis-store.js";
import { rewindGroup, waitForStableGroup } from "../support/kafka-groups.js";
import { distributedConfig, isolation, kafkaBus, redisStore, testLogger } from "../support/ports.js";
import { eventually } from "../support/wait.js";

/**
 * The pathfinder keeps the paths of its tasks in memory; Kafka and Redis are what survive it.
 * A pathfinder stopped mid-stream and started again (same group, nothing in memory) must end
 * with every task's path whole, in order, without duplicates, and no step lost on
 * `agent.steps`; two instances sharing the partitions must build the same paths one does.
 */

const PARTITIONS = 4;
const TOOLS = ["invoices.read", "crm.lookup", "mail.send", "docs.search"] as const;

// ---------- a workload: several tasks' actions, shuffled, with duplicates ----------

/** Small seeded PRNG (mulberry32): a failing order can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hexOf = (rng: () => number, digits: number) => Array.from({ length: digits }, () => Math.floor(rng() * 16).toString(16)).join("");

interface ExpectedTask {
  taskId: string;
  /** Span ids by start time: the path the pathfinder must build. */
  spanIds: string[];
  actionIds: string[];
  status: TaskSummary["status"];
  agents: string[];
  tools: string[];
  credentials: string[];
}

interface Workload {
  tasks: ExpectedTask[];
  /** What is produced to `agent.actions`, in order: every action at least once, some twice or three times. */
  messages: OutgoingMessage[];
  spans: number;
}

/**
 * `taskCount` tasks of `spansPerTask` spans: an agent invocation at the root (missing from
 * every fourth task, which so stays open), model calls and tool calls below it, a delegated
 * helper agent with tool calls of its own. Start times are distinct and all within the
 * lateness window, so the path is fully determined by them whatever the arrival order.
 */
function workload(seed: number, taskCount = 12, spansPerTask = 10): Workload {
  const rng = prng(seed);
  const now = Date.now();
  const tasks: ExpectedTask[] = [];
  const actions: AgentAction[] = [];
  for (let t = 0; t < taskCount; t++) {
    const taskId = `task-${String(t).padStart(2, "0")}`;
    const traceId = hexOf(rng, 32);
    const spanIds = Array.from({ length: spansPerTask }, () => hexOf(rng, 16));
    const hasRoot = t % 4 !== 3;
    const mainAgent = `agent-${t % 3}`;
    const helperAgent = `helper-${t % 2}`;
    const base = now - 20_000 + t * 10;
    const own: AgentAction[] = [];
    for (let i = hasRoot ? 0 : 1; i < spansPerTask; i++) {
      const spanId = spanIds[i] as string;
      const underHelper = i > 4;
      const startTimeMs = base + i * 97 + Math.floor(rng() * 40);
      const a: AgentAction = {
        id: `${traceId}:${spanId}`,
        traceId,
        spanId,
        taskId,
        taskIdSource: "attribute",
        name: "",
        agent: { id: underHelper || i === 4 ? helperAgent : mainAgent, name: underHelper || i === 4 ? "Helper" : "Main" },
        environment: "prod",
        startTimeMs,
        endTimeMs: i === 0 ? base + spansPerTask * 100 + 50 : startTimeMs + 40,
        status: "ok",
        links: [],
        attributes: { "test.seq": i },
        receivedAtMs: now + t * spansPerTask + i,
      };
      if (i > 0) a.parentSpanId = (underHelper ? spanIds[4] : spanIds[0]) as string;
      if (i === 0 || i === 4) {
        a.operation = "invoke_agent";
        a.name = `invoke_agent ${a.agent.name}`;
        if (i === 0) {
          a.intent = `reconcile account ${t}`;
          a.declaredScope = { tools: [...TOOLS], dataCeiling: "confidential" };
        }
      } else if (i % 2 === 1) {
        a.operation = "chat";
        a.name = "chat gpt-x";
        a.provider = "openai";
      } else {
        const tool = TOOLS[(t + i) % TOOLS.length] as string;
        a.operation = "execute_tool";
        a.name = `execute_tool ${tool}`;
        a.tool = { name: tool, callId: `call-${t}-${i}` };
        a.effect = "read";
        a.dataClassification = "internal";
        if (i % 4 === 2) a.credentialId = `cred-${t}-${i}`;
      }
      own.push(a);
    }
    own.sort((x, y) => x.startTimeMs - y.startTimeMs);
    actions.push(...own);
    const sorted = (xs: (string | undefined)[]) => [...new Set(xs.filter((x): x is string => x !== undefined))].sort();
    tasks.push({
      taskId,
      spanIds: own.map((a) => a.spanId),
      actionIds: own.map((a) => a.id),
      status: hasRoot ? "completed" : "active",
      agents: sorted(own.map((a) => a.agent.id)),
      tools: sorted(own.map((a) => a.tool?.name)),
      credentials: sorted(own.map((a) => a.credentialId)),
    });
  }
  // about a quarter of the actions again (some three times), then everything shuffled
  const items = [...actions];
  for (const a of actions) {
    const r = rng();
    if (r < 0.25) items.push(a);
    if (r < 0.05) items.push(a);
  }
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j] as AgentAction, items[i] as AgentAction];
  }
  return { tasks, messages: items.map((a) => ({ key: a.taskId, value: JSON.stringify(a) })), spans: actions.length };
}

// ---------- helpers ----------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function publishPaced(bus: Bus, topic: string, messages: OutgoingMessage[], chunk = 8, gapMs = 25): Promise<void> {
  for (let i = 0; i < messages.length; i += chunk) {
    await bus.publish(topic, messages.slice(i, i + chunk));
    if (gapMs > 0) await sleep(gapMs);
  }
}

/** Everything on a prefix's `agent.steps`, packs unpacked, in per-partition (so per-task) order. */
async function watchSteps(bus: Bus, config: Config, group: string): Promise<Step[]> {
  const steps: Step[] = [];
  await bus.subscribe({ group, topics: [topicName(config.topicPrefix, TOPICS.steps)], fromBeginning: true }, async (batch) => {
    for (const m of batch) steps.push(...(recordsOf(m) as Step[]));
  });
  return steps;
}

/** Waits until nothing new arrives on the watched topic for a second. */
async function settle(steps: Step[]): Promise<void> {
  let seen = -1;
  await eventually(
    async () => {
      const n = steps.length;
      await sleep(1000);
      if (n === steps.length && n === seen) return true;
      seen = n;
      return undefined;
    },
    30_000,
    "agent.steps to settle",
  );
}

const spanKey = (s: { taskId: string; spanId: string }) => `${s.taskId}/${s.spanId}`;
const firstEmissions = (steps: Step[]) => new Set(steps.filter((s) => !s.reevaluated).map(spanKey));

async function messagesIn(app: App): Promise<number> {
  return (await app.metrics.messagesIn.get()).values.reduce((n, v) => n + v.value, 0);
}

/** Waits until the store holds every span of every task. */
async function waitForStore(tasks: TaskStore, w: Workload, what: string): Promise<void> {
  await eventually(
    async () => {
      const counts = await Promise.all(w.tasks.map(async (t) => (await tasks.summary(t.taskId))?.steps ?? 0));
      return counts.every((n, i) => n === w.tasks[i]?.spanIds.length) ? true : undefined;
    },
    90_000,
    what,
  );
}

/** Every task's stored path: each span once, by start time, indexed 0..n-1; its summary counts right. */
async function expectStoredPaths(tasks: TaskStore, w: Workload): Promise<void> {
  for (const t of w.tasks) {
    const path = await tasks.path(t.taskId);
    expect(
      path.map((s) => s.spanId),
      t.taskId,
    ).toEqual(t.spanIds);
    expect(
      path.map((s) => s.id),
      t.taskId,
    ).toEqual(t.actionIds);
    expect(new Set(path.map((s) => s.id)).size, t.taskId).toBe(path.length);
    expect(
      path.map((s) => s.index),
      t.taskId,
    ).toEqual(t.spanIds.map((_, i) => i));
    const starts = path.map((s) => s.startTimeMs);
    expect(starts, t.taskId).toEqual([...starts].sort((a, b) => a - b));
    const summary = (await tasks.summary(t.taskId)) as TaskSummary;
    expect(summary, t.taskId).toBeDefined();
    expect(
      { steps: summary.steps, status: summary.status, agents: summary.agents, tools: summary.tools, credentials: summary.credentials },
      t.taskId,
    ).toEqual({ steps: t.spanIds.length, status: t.status, agents: t.agents, tools: t.tools, credentials: t.credentials });
  }
}

// ---------- the tests ----------

describe("pathfinder recovery and scale-out (real Kafka and Redis)", () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
  const track = <T extends { close(): Promise<unknown> }>(x: T): T => {
    closers.push(() => x.close());
    return x;
  };
  const openStore = (keyPrefix: string): { store: RedisStore; tasks: TaskStore } => {
    const store = track(redisStore(keyPrefix));
    return { store, tasks: new TaskStore(store) };
  };

  it("a pathfinder stopped mid-stream and started afresh in the same group loses no step and duplicates none", async () => {
    const iso = isolation("pf-restart");
    const config = distributedConfig(iso, { DRIFTWATCH_KAFKA_PARTITIONS: String(PARTITIONS) });
    const w = workload(0x5eed01);
    const bus = track(kafkaBus(PARTITIONS));
    await bus.ensureTopics(allTopics(config.topicPrefix));
    const steps = await watchSteps(bus, config, `${iso.groupPrefix}steps-watch`);
    const { tasks } = openStore(iso.keyPrefix);
    const actionsTopic = topicName(config.topicPrefix, TOPICS.actions);

    // the first pathfinder, stopped once a fifth of the spans are out, while the first part is still being produced
    const first = await startDistributed(config, ["pathfinder"], { logger: testLogger });
    let firstOpen = true;
    closers.push(async () => firstOpen && first.close());
    const cut = Math.floor(w.messages.length * 0.7);
    const producing = publishPaced(bus, actionsTopic, w.messages.slice(0, cut), 4, 50);
    await eventually(() => (firstEmissions(steps).size >= w.spans / 5 ? true : undefined), 60_000, "a fifth of the steps");
    await first.close();
    firstOpen = false;
    const firstHandled = await messagesIn(first);
    // traffic goes on while no pathfinder runs
    await producing;
    const later = Math.floor((w.messages.length + cut) / 2);
    await publishPaced(bus, actionsTopic, w.messages.slice(cut, later), 16, 0);
    await settle(steps);
    const emittedByFirst = firstEmissions(steps).size;
    expect(emittedByFirst).toBeLessThan(w.spans);
    expect(firstHandled).toBeGreaterThan(0);
    expect(firstHandled).toBeLessThan(cut);
    // lose the newer half of the first's commits, as a crash before them would: part of what it
    // handled (and emitted) is delivered again, to a pathfinder that remembers none of it
    const group = `${config.groupPrefix}pathfinder`;
    const { committed, rewound } = await rewindGroup(group, actionsTopic, 0.5);
    const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    expect(sum(committed)).toBeLessThanOrEqual(firstHandled);
    expect(sum(rewound)).toBeLessThan(sum(committed));

    // a fresh pathfinder, the service as deployed: new client, new connections, nothing in memory, same group
    const second = track(await startDistributed(config, ["pathfinder"], { logger: testLogger }));
    await publishPaced(bus, actionsTopic, w.messages.slice(later), 4, 50);

    const all = w.tasks.flatMap((t) => t.spanIds.map((spanId) => spanKey({ taskId: t.taskId, spanId })));
    await eventually(
      () => {
        const got = firstEmissions(steps);
        return all.every((k) => got.has(k)) ? true : undefined;
      },
      90_000,
      "a first emission of every span on agent.steps",
    );
    await waitForStore(tasks, w, "every span in the store");
    await settle(steps);
    // the second resumed at the rewound offsets: it read part of the first's share again, and the rest
    expect(await messagesIn(second)).toBe(w.messages.length - sum(rewound));
    await expectStoredPaths(tasks, w);

    // agent.steps: every span was emitted (none lost), nothing else was
    const expectedKeys = new Set(all);
    const fresh = steps.filter((s) => !s.reevaluated);
    expect(firstEmissions(steps)).toEqual(expectedKeys);
    expect(steps.filter((s) => !expectedKeys.has(spanKey(s)))).toEqual([]);
    // a redelivered batch emits its spans again, each with its index at that moment: the
    // path may have grown before it since. Redeliveries did happen (the offsets were rewound):
    const emissions = new Map<string, number>();
    for (const s of fresh) emissions.set(s.id, (emissions.get(s.id) ?? 0) + 1);
    expect([...emissions.values()].some((n) => n > 1)).toBe(true);
    // and what the detector saw last of every step is where the step ended up
    const last = new Map<string, number>();
    for (const s of steps) last.set(s.id, s.index);
    for (const t of w.tasks) {
      expect(
        t.actionIds.map((id) => last.get(id)),
        t.taskId,
      ).toEqual(t.actionIds.map((_, i) => i));
    }
  });

  it("two pathfinders in one group build the same paths and summaries as one", async () => {
    const w = workload(0x5eed02);
    const iso1 = isolation("pf-one");
    const iso2 = isolation("pf-two");
    const config1 = distributedConfig(iso1, { DRIFTWATCH_KAFKA_PARTITIONS: String(PARTITIONS) });
    const config2 = distributedConfig(iso2, { DRIFTWATCH_KAFKA_PARTITIONS: String(PARTITIONS) });
    const bus = track(kafkaBus(PARTITIONS));
    const { tasks: tasks1 } = openStore(iso1.keyPrefix);
    const { tasks: tasks2 } = openStore(iso2.keyPrefix);

    // both set-ups running and settled before anything is produced
    const [one, twoA] = await Promise.all([
      startDistributed(config1, ["pathfinder"], { logger: testLogger }).then(track),
      startDistributed(config2, ["pathfinder"], { logger: testLogger }).then(track),
    ]);
    const twoB = track(await startDistributed(config2, ["pathfinder"], { logger: testLogger }));
    const assignments = await waitForStableGroup(`${iso2.groupPrefix}pathfinder`, 2, 60_000);
    const actionsTopic2 = topicName(config2.topicPrefix, TOPICS.actions);
    const owned = assignments.map((a) => a[actionsTopic2] ?? []);
    expect(owned.flat().sort()).toEqual([0, 1, 2, 3]);
    await waitForStableGroup(`${iso1.groupPrefix}pathfinder`, 1, 60_000);

    await Promise.all([
      publishPaced(bus, topicName(config1.topicPrefix, TOPICS.actions), w.messages),
      publishPaced(bus, actionsTopic2, w.messages),
    ]);
    await Promise.all([waitForStore(tasks1, w, "every span in p1's store"), waitForStore(tasks2, w, "every span in p2's store")]);
    await sleep(1000);

    // both instances of the pair took part
    const [byA, byB] = await Promise.all([messagesIn(twoA), messagesIn(twoB)]);
    expect(byA).toBeGreaterThan(0);
    expect(byB).toBeGreaterThan(0);
    expect(byA + byB).toBe(w.messages.length);
    expect(await messagesIn(one)).toBe(w.messages.length);

    for (const t of w.tasks) {
      const [p1, p2] = await Promise.all([tasks1.path(t.taskId), tasks2.path(t.taskId)]);
      expect(
        p2.map((s) => [s.spanId, s.index]),
        t.taskId,
      ).toEqual(p1.map((s) => [s.spanId, s.index]));
      const [s1, s2] = (await Promise.all([tasks1.summary(t.taskId), tasks2.summary(t.taskId)])) as TaskSummary[];
      const pick = (s: TaskSummary | undefined) =>
        s && { steps: s.steps, agents: s.agents, tools: s.tools, credentials: s.credentials, status: s.status };
      expect(pick(s2), t.taskId).toEqual(pick(s1));
    }
    // and both are the path the workload implies
    await expectStoredPaths(tasks1, w);
    await expectStoredPaths(tasks2, w);
  });
});
