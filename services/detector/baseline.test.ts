import pino from "pino";
import { describe, expect, it } from "vitest";
import type { AgentAction } from "../../schemas/action.js";
import { AgentProfile } from "../../schemas/policy.js";
import { Step } from "../../schemas/step.js";
import { agentAction, toolCall } from "../../test/support/actions.js";
import { recordActions } from "../pathfinder/pathfinder.js";
import { TaskStore } from "../pathfinder/task-store.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { domainOf, entityDomain, recipientClass, robustZ, spreadOf, surprisal, TASK_START, tallyOf } from "./baseline.js";
import { BaselineStore } from "./baseline-store.js";
import { detectorStage } from "./detector.js";
import { ALERT_MARK, VIOLATION_MARK, watchLearning } from "./learner.js";
import type { Policy } from "./policy.js";
import { evaluateStep } from "./rules.js";

const T0 = 1_760_000_000_000;
const logger = pino({ level: "silent" });

describe("baseline features", () => {
  it("reduces argument entities to what an agent repeats: organisation domains and IBAN banks", () => {
    expect(domainOf("mail.eu.acme.example")).toBe("acme.example");
    expect(domainOf("shop.example.co.uk")).toBe("example.co.uk");
    expect(entityDomain("jane@support.customer.example")).toBe("customer.example");
    expect(entityDomain("files.attacker.example")).toBe("attacker.example");
    expect(entityDomain("GB33BUKB20201555555555")).toBe("iban:GB-BUKB");
    // numbers and file ids differ every time: not a feature
    expect(entityDomain("12345678901")).toBeUndefined();
    expect(entityDomain("+442079460958")).toBeUndefined();
    expect(entityDomain("file-9az3kq")).toBeUndefined();
    // a personal mailbox is a kind of recipient, whatever the provider's top-level domain
    expect(recipientClass("gmail.com")).toBe("personal-email");
    expect(recipientClass("yahoo.co.uk")).toBe("personal-email");
    expect(recipientClass("customer.example")).toBeUndefined();
  });

  it("scores a pace or length by robust z-score, with a floor on the scale", () => {
    const s = spreadOf([10, 11, 12, 12, 13, 14, 40]);
    expect(s).toMatchObject({ n: 7, median: 12, mad: 1 });
    expect(robustZ(12, s)).toBe(0);
    // one outlier in the samples does not widen the scale (MAD, not standard deviation)
    expect(robustZ(30, s)).toBeCloseTo(18 / 1.4826, 5);
    // no spread at all: one unit of scale, so the next value above the median is 1, not infinity
    expect(robustZ(6, spreadOf([5, 5, 5, 5]))).toBe(1);
  });

  it("scores a transition by smoothed surprisal: rare and never-seen ones cost more bits", () => {
    const baseline = {
      agent: "a",
      tasks: 100,
      tools: tallyOf(
        new Map([
          ["read", 100],
          ["write", 98],
          ["delete", 2],
        ]),
      ),
      transitions: new Map([
        [
          "read",
          tallyOf(
            new Map([
              ["write", 98],
              ["delete", 2],
            ]),
          ),
        ],
      ]),
      destinations: tallyOf(new Map()),
      destinationsByTool: new Map(),
      domains: tallyOf(new Map()),
      domainsByKind: new Map(),
      banks: tallyOf(new Map()),
      banksByKind: new Map(),
      classes: tallyOf(new Map()),
      repeats: new Map(),
      streaks: new Map(),
      lengths: spreadOf([3]),
      rates: spreadOf([3]),
    };
    const usual = surprisal(baseline, "read", "write");
    const rare = surprisal(baseline, "read", "delete");
    const never = surprisal(baseline, "read", "read");
    expect(usual.bits).toBeLessThan(0.1);
    expect(rare.bits).toBeGreaterThan(5);
    expect(never.bits).toBeGreaterThan(rare.bits + 3);
    expect(never).toMatchObject({ seen: 0, outOf: 100 });
  });
});

/**
 * A support agent with a steady habit: it reads the inbox, looks the customer up, sometimes
 * updates the CRM, and replies through the company relay to customers at many domains.
 */
describe("baselines learned from finished tasks", () => {
  const policy: Policy = {
    version: "baseline-test",
    profiles: [
      AgentProfile.parse({
        id: "support",
        match: { agentIds: ["support-agent"] },
        tools: [
          { name: "inbox.read", effect: "read", output: "untrusted" },
          { name: "crm.lookup", effect: "read" },
          { name: "crm.update", effect: "write" },
          { name: "crm.export", effect: "read" },
          { name: "email.reply", effect: "egress" },
        ],
        dataCeiling: "confidential",
        egress: ["*.example"],
        baseline: { warmUpTasks: 20, minTransitions: 20 },
      }),
    ],
    rules: new Map(),
    redaction: { attributes: [], argumentKeys: [] },
    files: [],
  };
  const agent = { id: "support-agent" };

  /** Task `n`'s spans: the habit, or `steps` when given (tool, destination and arguments). */
  function task(taskId: string, start: number, n: number, steps?: Partial<AgentAction>[]): AgentAction[] {
    const habit: Partial<AgentAction>[] = [
      { tool: { name: "inbox.read" } },
      { tool: { name: "crm.lookup", arguments: { customer: `C-${n}` } } },
      ...(n % 3 === 0 ? [{ tool: { name: "crm.update", arguments: { customer: `C-${n}`, note: "answered" } } }] : []),
      {
        tool: { name: "email.reply", arguments: { to: `client${n}@customer${n}.example` } },
        destination: { address: "smtp.acme.example" },
      },
    ];
    return (steps ?? habit).map((s, i) =>
      toolCall({ taskId, agent, startTimeMs: start + i * 20_000, ...s, tool: s.tool ?? { name: "inbox.read" } }),
    );
  }

  async function learned(tasksLearned: number) {
    const store = new MemoryStore();
    const tasks = new TaskStore(store);
    const baselines = new BaselineStore(store);
    for (let n = 0; n < tasksLearned; n++) await recordActions(tasks, task(`hist-${n}`, T0 + n * 600_000, n));
    const learner = watchLearning({ tasks, baselines, policy: () => policy, intervalMs: 60_000, settleMs: 0, idleMs: 0, logger });
    learner.stop();
    return { store, tasks, baselines, learner };
  }

  /** The findings of a new task's last step, against the baseline as learned. */
  async function judge(env: Awaited<ReturnType<typeof learned>>, steps: Partial<AgentAction>[]) {
    const taskId = `new-${Math.random().toString(16).slice(2)}`;
    const emitted = await recordActions(env.tasks, task(taskId, T0 + 1e9, 1, steps));
    const last = Step.parse(emitted.find((s) => s.index === steps.length - 1));
    const baseline = (await env.baselines.forAgents(["support-agent"])).get("support-agent");
    return evaluateStep(last, { policy, now: T0 + 2e9, ...(baseline ? { baseline } : {}) });
  }

  const inbox = { tool: { name: "inbox.read" } };
  const lookup = { tool: { name: "crm.lookup", arguments: { customer: "C-9" } } };

  it("learns every finished task once, even with two learners at it, and nothing raises before the warm-up", async () => {
    const env = await learned(30);
    const other = watchLearning({
      tasks: env.tasks,
      baselines: env.baselines,
      policy: () => policy,
      intervalMs: 60_000,
      settleMs: 0,
      idleMs: 0,
      logger,
    });
    other.stop();
    const counts = await Promise.all([env.learner.learnAll(), other.learnAll()]);
    expect(counts[0] + counts[1]).toBe(30);
    expect(await env.learner.learnAll()).toBe(0);
    const b = await env.baselines.load("support-agent");
    expect(b.tasks).toBe(30);
    expect(b.tools.counts.get("email.reply")).toBe(30);
    expect(b.transitions.get(TASK_START)?.counts.get("inbox.read")).toBe(30);
    expect(b.lengths.median).toBe(3);

    const early = await learned(10);
    await early.learner.learnAll();
    expect(await judge(early, [inbox, lookup, { tool: { name: "crm.export" } }])).toEqual([]);
  });

  it("flags a permitted tool the agent never used, naming the feature, the baseline, the value and the score", async () => {
    const env = await learned(30);
    await env.learner.learnAll();
    const findings = await judge(env, [inbox, lookup, { tool: { name: "crm.export", arguments: { all: true } } }]);
    expect(findings.map((f) => f.ruleId)).toEqual(["anomaly.novel_tool"]);
    expect(findings[0]).toMatchObject({
      kind: "anomaly",
      mode: "alert",
      evidence: {
        observed: { feature: "tool", value: "crm.export", score: 0 },
        expected: { baseline: { tasks: 30, mostSeen: { "inbox.read": 30, "crm.lookup": 30, "email.reply": 30, "crm.update": 10 } } },
      },
    });
    expect(findings[0]?.explanation).toMatch(/crm\.export.*not used before.*30 learned tasks/);
  });

  it("flags an unlikely transition between known tools, not the usual ones", async () => {
    const env = await learned(30);
    await env.learner.learnAll();
    const usual = await judge(env, [inbox, lookup, { tool: { name: "crm.update", arguments: { customer: "C-9" } } }]);
    expect(usual).toEqual([]);
    // straight from the inbox to an e-mail, with no look-up: never seen in 30 tasks
    const findings = await judge(env, [
      inbox,
      { tool: { name: "email.reply", arguments: { to: "x@customer5.example" } }, destination: { address: "smtp.acme.example" } },
    ]);
    expect(findings.map((f) => f.ruleId)).toEqual(["anomaly.transition"]);
    expect(findings[0]?.evidence.observed).toMatchObject({ feature: "transition", value: "inbox.read -> email.reply" });
    expect((findings[0]?.evidence.observed as { score?: number } | undefined)?.score).toBeGreaterThan(8);
  });

  it("flags a new destination, but not a new customer domain where every task brings one (Good-Turing)", async () => {
    const env = await learned(30);
    await env.learner.learnAll();
    const reply = (address: string, to: string) => ({ tool: { name: "email.reply", arguments: { to } }, destination: { address } });
    // customers' domains are new every time in this agent's history: a new one is not news
    expect(await judge(env, [inbox, lookup, reply("smtp.acme.example", "z@brand-new.example")])).toEqual([]);
    const findings = await judge(env, [inbox, lookup, reply("mx.partner.example", "client9@customer9.example")]);
    expect(findings.map((f) => f.ruleId)).toEqual(["anomaly.novel_destination"]);
    expect(findings[0]?.evidence.expected).toMatchObject({ baseline: { mostSeen: { "smtp.acme.example": 30 } } });
  });

  it("a tool that goes somewhere new most times says nothing by going somewhere new again", async () => {
    const env = await learned(30);
    // a link checker, in 6 of the learned tasks, each time on the customer's own site
    for (let n = 0; n < 6; n++) {
      await recordActions(
        env.tasks,
        task(`links-${n}`, T0 + 1e8 + n * 600_000, n, [
          inbox,
          {
            tool: { name: "web.fetch", arguments: { url: `https://shop${n}.example/help` } },
            destination: { url: `https://shop${n}.example/help` },
          },
        ]),
      );
    }
    await env.learner.learnAll();
    const checker = await judge(env, [inbox, { tool: { name: "web.fetch" }, destination: { url: "https://shop99.example/faq" } }]);
    expect(checker.map((f) => f.ruleId)).not.toContain("anomaly.novel_destination");
    // the mail relay always goes to one host: another is news
    const relay = await judge(env, [inbox, lookup, { tool: { name: "email.reply" }, destination: { address: "mx.partner.example" } }]);
    expect(relay.map((f) => f.ruleId)).toContain("anomaly.novel_destination");
  });

  it("flags a path far longer and a pace far faster than the agent's tasks, once per task", async () => {
    const env = await learned(30);
    await env.learner.learnAll();
    const loop = Array.from({ length: 12 }, () => lookup);
    const findings = await judge(env, [inbox, ...loop]);
    expect(findings.map((f) => f.ruleId)).toContain("anomaly.path_length");
    const length = findings.find((f) => f.ruleId === "anomaly.path_length");
    expect(length?.evidence.observed).toMatchObject({ feature: "path length", value: 13 });
    // 13 steps 20 s apart: at most 3 in a minute, as usual; the same steps 1 s apart are a burst
    expect(findings.map((f) => f.ruleId)).not.toContain("anomaly.rate");
    const taskId = "burst";
    const burst = [inbox, ...loop].map((s, i) => toolCall({ taskId, agent, startTimeMs: T0 + 2e9 + i * 1_000, ...s }));
    const steps = await recordActions(env.tasks, burst);
    const baseline = (await env.baselines.forAgents(["support-agent"])).get("support-agent");
    const rate = Step.parse(steps.at(-1));
    const all = evaluateStep(rate, { policy, now: T0 + 3e9, ...(baseline ? { baseline } : {}) });
    expect(all.find((f) => f.ruleId === "anomaly.rate")?.evidence.observed).toMatchObject({ feature: "steps per minute", value: 13 });
  });

  it("finds every finished task when more of them share one last-seen time than a page holds", async () => {
    const store = new MemoryStore();
    const tasks = new TaskStore(store);
    const baselines = new BaselineStore(store);
    const same = T0 + 5_000;
    for (let i = 0; i < 1_500; i += 250) {
      const batch = Array.from({ length: 250 }, (_, j) =>
        toolCall({ taskId: `tie-${i + j}`, agent, startTimeMs: T0, receivedAtMs: same, tool: { name: "inbox.read" } }),
      );
      await recordActions(tasks, batch);
    }
    let clock = same + 1_000;
    const learner = watchLearning({
      tasks,
      baselines,
      policy: () => policy,
      intervalMs: 60_000,
      settleMs: 10,
      idleMs: 100,
      logger,
      now: () => clock,
    });
    learner.stop();
    // one sweep finds a page and learns what has settled; the next ones go on from the cursor
    expect(await learner.sweep()).toBe(0);
    clock += 20;
    let total = 0;
    for (let i = 0; i < 4; i++) {
      total += await learner.sweep();
      clock += 20;
    }
    expect(total).toBe(1_500);
    expect((await baselines.load("support-agent")).tasks).toBe(1_500);
  });

  it("learns a task that completed after one whose last span came later (its partition was behind)", async () => {
    const store = new MemoryStore();
    let placedAt = T0 + 100_000;
    const tasks = new TaskStore(store, { now: () => placedAt });
    const baselines = new BaselineStore(store);
    /** A finished task: its invocation at the root (ended), one tool call below it, its last span received at `receivedAtMs`. */
    const finished = (taskId: string, traceNo: number, receivedAtMs: number): AgentAction[] => {
      const traceId = traceNo.toString(16).padStart(32, "0");
      const root = agentAction({
        taskId,
        agent,
        traceId,
        operation: "invoke_agent",
        name: "invoke_agent support",
        startTimeMs: receivedAtMs - 5_000,
        receivedAtMs,
      });
      root.endTimeMs = receivedAtMs - 100;
      const call = toolCall({
        taskId,
        agent,
        traceId,
        parentSpanId: root.spanId,
        startTimeMs: receivedAtMs - 4_000,
        receivedAtMs,
        tool: { name: "inbox.read" },
      });
      return [call, root];
    };
    let clock = placedAt;
    const learner = watchLearning({
      tasks,
      baselines,
      policy: () => policy,
      intervalMs: 60_000,
      settleMs: 0,
      idleMs: 3_600_000,
      logger,
      now: () => clock,
    });
    learner.stop();

    // the task whose spans came later completes first, and is learned
    await recordActions(tasks, finished("seen-later", 1, T0 + 50_000));
    clock = placedAt += 1_000;
    expect(await learner.sweep()).toBe(1);
    // then the one whose spans came earlier completes (another partition, behind)
    await recordActions(tasks, finished("seen-earlier", 2, T0 + 10_000));
    clock = placedAt += 1_000;
    expect(await learner.sweep()).toBe(1);
    expect((await baselines.load("support-agent")).tasks).toBe(2);
    // each once
    clock += 1_000;
    expect(await learner.sweep()).toBe(0);
  });

  it("holds a task that raised an anomaly alert back for the hold, then learns it; never learns a revoked one", async () => {
    const store = new MemoryStore();
    const tasks = new TaskStore(store);
    const baselines = new BaselineStore(store);
    for (const [n, id] of ["plain", "alerted", "revoked"].entries()) {
      await recordActions(
        tasks,
        task(id, T0 + n * 60_000, n).map((a) => ({ ...a, receivedAtMs: T0 + n * 60_000 })),
      );
    }
    await tasks.markOnce("alerted", ALERT_MARK);
    await tasks.markRevoked("revoked", { atMs: T0, findingId: "f-1" });
    let clock = T0 + 10 * 60_000;
    const learner = watchLearning({
      tasks,
      baselines,
      policy: () => policy,
      intervalMs: 60_000,
      settleMs: 1_000,
      holdMs: 3_600_000,
      idleMs: 60_000,
      logger,
      now: () => clock,
    });
    learner.stop();
    await learner.sweep();
    clock += 2_000;
    expect(await learner.sweep()).toBe(1);
    expect((await baselines.load("support-agent")).tasks).toBe(1);
    // within the hold nothing more; past it, the alerted task (the revoked one never)
    clock += 1_800_000;
    expect(await learner.sweep()).toBe(0);
    clock += 1_800_000;
    expect(await learner.sweep()).toBe(1);
    clock += 3_600_000;
    expect(await learner.sweep()).toBe(0);
    expect((await baselines.load("support-agent")).tasks).toBe(2);
  });

  it("flags a tool called far more often in a task than the agent's tasks call it, and a first mail to a personal mailbox", async () => {
    const env = await learned(30);
    await env.learner.learnAll();
    const lookups = Array.from({ length: 8 }, (_, i) => ({ tool: { name: "crm.lookup", arguments: { customer: `C-${i}` } } }));
    const repeat = await judge(env, [inbox, ...lookups]);
    expect(repeat.map((f) => f.ruleId)).toContain("anomaly.tool_repeat");
    expect(repeat.find((f) => f.ruleId === "anomaly.tool_repeat")?.evidence.observed).toMatchObject({
      feature: "calls of a tool in a task",
      tool: "crm.lookup",
      value: 8,
    });
    // the agent writes to customers' own domains, never to a personal mailbox
    const personal = await judge(env, [
      inbox,
      lookup,
      { tool: { name: "email.reply", arguments: { to: "someone@gmail.com" } }, destination: { address: "smtp.acme.example" } },
    ]);
    expect(personal.map((f) => f.ruleId)).toEqual(["anomaly.novel_entity"]);
    expect(personal[0]?.evidence.observed).toMatchObject({ feature: "recipient class", value: "personal-email", domain: "gmail.com" });
  });

  it("flags a domain the agent knows, written to in a kind of task that never writes there", async () => {
    const env = await learned(30);
    // 30 report tasks (they begin with crm.export) that always mail the internal team
    const report = (n: number, to: string) =>
      task(`report-${n}`, T0 + 1e8 + n * 600_000, n, [
        { tool: { name: "crm.export", arguments: { period: "2026-10" } } },
        { tool: { name: "email.reply", arguments: { to } }, destination: { address: "smtp.acme.example" } },
      ]);
    for (let n = 0; n < 30; n++) await recordActions(env.tasks, report(n, "team@acme.example"));
    await env.learner.learnAll();
    // customer3.example is known (a support reply went there), but never from a report task
    const emitted = await recordActions(env.tasks, report(99, "client3@customer3.example"));
    const last = Step.parse(emitted.find((x) => x.index === 1));
    const baseline = (await env.baselines.forAgents(["support-agent"])).get("support-agent");
    const findings = evaluateStep(last, { policy, now: T0 + 2e9, ...(baseline ? { baseline } : {}) });
    expect(findings.map((f) => f.ruleId)).toEqual(["anomaly.novel_entity"]);
    expect(findings[0]?.evidence.observed).toMatchObject({
      feature: "argument domain in this kind of task",
      value: "customer3.example",
      kind: "crm.export",
    });
    // the usual report mail is not
    const usual = await recordActions(env.tasks, report(100, "team@acme.example"));
    expect(
      evaluateStep(Step.parse(usual.find((x) => x.index === 1)), { policy, now: T0 + 2e9, ...(baseline ? { baseline } : {}) }),
    ).toEqual([]);
  });

  it("leaves tasks with a policy finding out of the baseline", async () => {
    const env = await learned(25);
    await env.tasks.markOnce("hist-3", VIOLATION_MARK);
    await env.tasks.markOnce("hist-4", VIOLATION_MARK);
    expect(await env.learner.learnAll()).toBe(23);
    expect((await env.baselines.load("support-agent")).tasks).toBe(23);
  });

  it("the detector stage reads baselines again once the learner learned more, and marks tasks with policy findings", async () => {
    const env = await learned(30);
    const stage = detectorStage("", { policy: () => policy, tasks: env.tasks, baselines: env.baselines, now: () => T0 + 2e9 });
    const message = { topic: "", partition: 0, offset: "0", key: null, value: Buffer.alloc(0), headers: {}, timestampMs: 0 };
    const run = async (actions: AgentAction[]) => {
      const steps = await recordActions(env.tasks, actions);
      const emits = await stage.handle(
        steps.map((s) => ({ message, value: Step.parse(s) })),
        () => undefined,
      );
      return emits.map((e) => JSON.parse(String(e.message.value)) as { ruleId: string });
    };
    const novel = (taskId: string) => task(taskId, T0 + 1e9, 1, [inbox, lookup, { tool: { name: "crm.export" } }]);
    // nothing learned yet: no baseline, no anomaly (and the stage keeps what it read in memory)
    expect(await run(task("before", T0 + 1e9, 1))).toEqual([]);
    await env.learner.learnAll();
    expect((await run(novel("after"))).map((f) => f.ruleId)).toEqual(["anomaly.novel_tool"]);
    // a policy finding (a tool outside the profile) marks the task: the learner will skip it
    expect((await run(task("bad", T0 + 1e9, 1, [{ tool: { name: "shell.exec" } }]))).map((f) => f.ruleId)).toEqual(["scope.tool"]);
    expect(await env.tasks.marked("bad", VIOLATION_MARK)).toBe(true);
    expect(await env.tasks.marked("after", VIOLATION_MARK)).toBe(false);
  });

  it("keeps a bounded number of samples per agent", async () => {
    const store = new MemoryStore();
    const baselines = new BaselineStore(store, { samples: 5 });
    for (let i = 0; i < 12; i++) {
      await baselines.learn({
        agent: "a",
        tools: ["t"],
        transitions: [[TASK_START, "t"]],
        destinations: [],
        toolDestinations: [],
        domains: [],
        kindDomains: [],
        classes: [],
        calls: { t: 1 + (i % 2) },
        streaks: { t: 1 },
        length: i,
        peakRate: 1,
      });
    }
    const b = await baselines.load("a");
    expect(b.lengths).toMatchObject({ n: 5, median: 9 });
    expect(b.tasks).toBe(12);
    // calls per task are a histogram in the hash: six tasks called t once, six twice
    expect(b.repeats.get("t")).toEqual({ n: 12, median: 1, mad: 0 });
  });

  it("agentAction without a tool is learned as part of the path, not as a tool", async () => {
    const store = new MemoryStore();
    const tasks = new TaskStore(store);
    const baselines = new BaselineStore(store);
    await recordActions(tasks, [
      agentAction({ taskId: "chat", agent, operation: "chat", startTimeMs: T0 }),
      toolCall({ taskId: "chat", agent, startTimeMs: T0 + 1, tool: { name: "inbox.read" } }),
    ]);
    const learner = watchLearning({ tasks, baselines, policy: () => policy, intervalMs: 60_000, settleMs: 0, idleMs: 0, logger });
    learner.stop();
    await learner.learnAll();
    const b = await baselines.load("support-agent");
    expect([...b.tools.counts]).toEqual([["inbox.read", 1]]);
    expect(b.lengths.median).toBe(2);
  });
});
