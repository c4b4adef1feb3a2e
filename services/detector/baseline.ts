import { median, medianAbsoluteDeviation } from "simple-statistics";
import type { ToolEffect } from "../../schemas/action.js";
import { entitiesOf } from "../../schemas/entities.js";
import { BaselineSettings } from "../../schemas/policy.js";
import type { Step } from "../../schemas/step.js";
import type { Hit } from "./rules.js";

/**
 * Behaviour baselines: each agent's own history, and how far a step departs from it.
 * Pure functions; baseline-store.ts keeps the counts in the store, learner.ts feeds it
 * finished tasks. Features:
 * - tools: how often each is called; a tool never called before is new;
 * - transitions: which tool follows which (first-order Markov chain, `^` = task start),
 *   scored by surprisal, -log2 of the smoothed likelihood of the step given the one before;
 * - destinations (hosts reached) and argument domains (of e-mail addresses, URLs, domains
 *   and IBAN banks in a write or egress), judged new or known;
 * - pace (the most steps in a minute) and path length, by robust z-score (median and MAD).
 */

/** Where a transition starts when the step is the agent's first tool call of the task. */
export const TASK_START = "^";
/** Additive smoothing of transition likelihoods (a transition never seen counts as 0.1). */
const SMOOTHING = 0.1;
/** MAD → standard deviation of a normal distribution. */
const MAD_TO_SD = 1.4826;
/** The most values listed in a finding's evidence. */
const EVIDENCE_VALUES = 10;

/**
 * What one agent did in one finished task: what its baseline learns. Tools, destinations
 * and domains are counted once per task (how many tasks saw them: a file written and then
 * published in one task is still a one-off); transitions once per occurrence.
 */
export interface TaskBehaviour {
  agent: string;
  /** The tools it called. */
  tools: string[];
  /** [previous tool (or TASK_START), tool], one per tool call. */
  transitions: [string, string][];
  /** Hosts it reached. */
  destinations: string[];
  /** The same, keyed `<tool>→<host>` (where each tool goes). */
  toolDestinations: string[];
  /** Domains in the arguments of its writes and egress. */
  domains: string[];
  /** The same, keyed `<first tool of the task>→<domain>` (whom a kind of task writes to). */
  kindDomains: string[];
  /** Kinds of recipient among those domains (`personal-email`). */
  classes: string[];
  /** How many times it called each tool, keyed `<first tool of the task>→<tool>` (calls depend on the kind of task). */
  calls: Record<string, number>;
  /** The longest run of consecutive calls of each tool. */
  streaks: Record<string, number>;
  /** Its steps in the task. */
  length: number;
  /** The most steps it took within a minute. */
  peakRate: number;
}

/** Counts of values: how often each was seen, in all, and how many were seen just once. */
export interface Tally {
  counts: Map<string, number>;
  total: number;
  once: number;
}

/** The median and median absolute deviation of a feature's recent samples. */
export interface Spread {
  n: number;
  median: number;
  mad: number;
}

export interface Baseline {
  agent: string;
  /** Finished tasks learned. */
  tasks: number;
  tools: Tally;
  /** Next tools by the tool before them. */
  transitions: Map<string, Tally>;
  destinations: Tally;
  /** Hosts by the tool that reached them. */
  destinationsByTool: Map<string, Tally>;
  domains: Tally;
  /** Argument domains by kind of task (its first tool). */
  domainsByKind: Map<string, Tally>;
  /** IBAN banks (`iban:<country>-<bank>`), apart: how often new ones come differs from domains. */
  banks: Tally;
  banksByKind: Map<string, Tally>;
  classes: Tally;
  /** Calls of a tool per task, over the tasks that called it. */
  repeats: Map<string, Spread>;
  /** The longest run of consecutive calls of a tool in any learned task, and over how many tasks. */
  streaks: Map<string, { max: number; tasks: number }>;
  lengths: Spread;
  rates: Spread;
}

export function tallyOf(counts: Map<string, number>): Tally {
  let total = 0;
  let once = 0;
  for (const c of counts.values()) {
    total += c;
    if (c === 1) once++;
  }
  return { counts, total, once };
}

export function spreadOf(samples: number[]): Spread {
  if (samples.length === 0) return { n: 0, median: 0, mad: 0 };
  return { n: samples.length, median: median(samples), mad: medianAbsoluteDeviation(samples) };
}

/** The median and MAD of values given as a histogram (value → how many times). */
export function spreadOfHistogram(histogram: Map<number, number>): Spread {
  const weighted = (entries: [number, number][]) => {
    const sorted = entries.filter(([, w]) => w > 0).sort((a, b) => a[0] - b[0]);
    const total = sorted.reduce((n, [, w]) => n + w, 0);
    let seen = 0;
    for (const [v, w] of sorted) {
      seen += w;
      if (seen * 2 >= total) return v;
    }
    return 0;
  };
  const entries = [...histogram.entries()];
  const n = entries.reduce((t, [, w]) => t + w, 0);
  if (n === 0) return { n: 0, median: 0, mad: 0 };
  const med = weighted(entries);
  return { n, median: med, mad: weighted(entries.map(([v, w]) => [Math.abs(v - med), w])) };
}

/**
 * Personal mailbox providers, by the name a domain gives them (`gmail` in gmail.com and
 * gmail.co.uk): mail to a private mailbox from an agent that never wrote to one is a
 * classic way for data to leave.
 */
const PERSONAL_EMAIL = new Set(
  "gmail googlemail outlook hotmail live msn yahoo ymail icloud aol proton protonmail gmx yandex zoho fastmail tutanota tuta mailfence posteo qq 163 126 naver daum rediffmail".split(
    " ",
  ),
);

/** The kind of recipient an argument domain is (only `personal-email` for now). */
export function recipientClass(domain: string): string | undefined {
  if (domain.startsWith("iban:")) return undefined;
  const name = domain.split(".")[0] ?? "";
  return PERSONAL_EMAIL.has(name) ? "personal-email" : undefined;
}

/** The agent a step belongs to, as baselines key it. */
export function agentKey(step: Pick<Step, "agent">): string | undefined {
  return step.agent.id ?? step.agent.spiffeId;
}

/** The host a step reached: its `server.address`, or its URL's host. */
export function hostOf(step: Pick<Step, "destination">): string | undefined {
  if (step.destination?.address) return step.destination.address.toLowerCase();
  if (step.destination?.url) {
    try {
      return new URL(step.destination.url).hostname.toLowerCase() || undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The organisation-level domain of a host: its last two labels, or three under a short second level (`co.uk`). */
export function domainOf(host: string): string {
  const labels = host.toLowerCase().split(".").filter(Boolean);
  if (labels.length <= 2) return labels.join(".");
  const [second, top] = labels.slice(-2) as [string, string];
  return labels.slice(top.length === 2 && second.length <= 3 ? -3 : -2).join(".");
}

/**
 * What an argument entity says about where things go, as a value an agent repeats: the
 * domain of an e-mail address, URL or domain, the country and bank of an IBAN. Account,
 * phone numbers and file ids differ every time and say nothing here.
 */
export function entityDomain(entity: string): string | undefined {
  const at = entity.lastIndexOf("@");
  if (at >= 0) return domainOf(entity.slice(at + 1));
  if (/^[A-Z]{2}\d{2}[A-Z0-9]{4}/.test(entity)) return `iban:${entity.slice(0, 2)}-${entity.slice(4, 8)}`;
  if (/^[a-z0-9.-]+\.[a-z]{2,24}$/.test(entity)) return domainOf(entity);
  return undefined;
}

/** The domains in a step's arguments (addressed or mentioned: a new domain in a patch matters too), when it writes or sends (see entityDomain). */
export function argumentDomains(step: Step, effect: ToolEffect | undefined): string[] {
  if (!step.tool || step.tool.arguments === undefined || (effect !== "write" && effect !== "egress")) return [];
  const out = new Set<string>();
  for (const e of entitiesOf(step.tool.arguments)) {
    const d = entityDomain(e);
    if (d) out.add(d);
  }
  return [...out];
}

/** Each agent's behaviour in one finished task, from its steps in path order. */
export function behaviourOf(steps: Step[], effectOf: (step: Step) => ToolEffect | undefined): TaskBehaviour[] {
  interface Acc {
    tools: Set<string>;
    transitions: [string, string][];
    destinations: Set<string>;
    toolDestinations: Set<string>;
    domains: Set<string>;
    kindDomains: Set<string>;
    classes: Set<string>;
    calls: Record<string, number>;
    streaks: Record<string, number>;
    length: number;
    peakRate: number;
  }
  const byAgent = new Map<string, Acc>();
  for (const step of steps) {
    const agent = agentKey(step);
    if (!agent) continue;
    let b = byAgent.get(agent);
    if (!b) {
      b = {
        tools: new Set(),
        transitions: [],
        destinations: new Set(),
        toolDestinations: new Set(),
        domains: new Set(),
        kindDomains: new Set(),
        classes: new Set(),
        calls: {},
        streaks: {},
        length: 0,
        peakRate: 0,
      };
      byAgent.set(agent, b);
    }
    b.length++;
    b.peakRate = Math.max(b.peakRate, paceOf(step));
    if (step.tool) {
      b.tools.add(step.tool.name);
      const key = repeatKey(step.before?.firstTool ?? step.tool.name, step.tool.name);
      b.calls[key] = (b.calls[key] ?? 0) + 1;
      b.streaks[step.tool.name] = Math.max(b.streaks[step.tool.name] ?? 0, (step.before?.streak ?? 0) + 1);
      b.transitions.push([step.before?.lastTool ?? TASK_START, step.tool.name]);
    }
    const effect = effectOf(step);
    const host = hostOf(step);
    if (host) {
      b.destinations.add(host);
      if (step.tool) b.toolDestinations.add(repeatKey(step.tool.name, host));
    }
    for (const d of argumentDomains(step, effect)) {
      b.domains.add(d);
      b.kindDomains.add(repeatKey(step.before?.firstTool ?? step.tool?.name ?? TASK_START, d));
      const c = recipientClass(d);
      if (c) b.classes.add(c);
    }
  }
  return [...byAgent].map(([agent, b]) => ({
    agent,
    tools: [...b.tools],
    transitions: b.transitions,
    destinations: [...b.destinations],
    toolDestinations: [...b.toolDestinations],
    domains: [...b.domains],
    kindDomains: [...b.kindDomains],
    classes: [...b.classes],
    calls: b.calls,
    streaks: b.streaks,
    length: b.length,
    peakRate: b.peakRate,
  }));
}

/** Calls of a tool are counted per kind of task: the first tool its agent called in it. */
export const repeatKey = (firstTool: string, tool: string) => `${firstTool}→${tool}`;

/** The step's agent's steps within the minute up to this step (its own pace). */
function paceOf(step: Step): number {
  return (step.before?.agentStepsLastMinute ?? step.before?.stepsLastMinute ?? 0) + 1;
}

/** How many steps the step's agent has taken in the task, this one included. */
function lengthOf(step: Step): number {
  return (step.before?.agentSteps ?? step.index) + 1;
}

/** The Good-Turing estimate of the chance that the next value is one never seen. */
export function novelty(t: Tally): number {
  return t.total === 0 ? 1 : t.once / t.total;
}

/** Surprisal (bits) of `to` following `from`, smoothed over the tools the agent knows. */
export function surprisal(baseline: Baseline, from: string, to: string): { bits: number; seen: number; outOf: number } {
  const next = baseline.transitions.get(from);
  const seen = next?.counts.get(to) ?? 0;
  const outOf = next?.total ?? 0;
  const k = baseline.tools.counts.size + 1;
  return { bits: -Math.log2((seen + SMOOTHING) / (outOf + SMOOTHING * k)), seen, outOf };
}

/**
 * How many robust standard deviations `x` lies above the median. The scale is at least
 * `floor` (and a tenth of the median): with no spread at all (most tasks exactly at the
 * median) one unit of it is what an ordinary departure is worth.
 */
export function robustZ(x: number, spread: Spread, floor = 1): number {
  const scale = Math.max(MAD_TO_SD * spread.mad, floor, 0.1 * spread.median);
  return (x - spread.median) / scale;
}

/** Calls of one tool: with no spread, each call beyond the usual is one unit. */
const REPEAT_FLOOR = 1;

/** Learned tasks that used a tool before its own habits (where it goes) are judged. */
const TOOL_EVIDENCE = 5;

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

function mostSeen(t: Tally): Record<string, number> {
  return Object.fromEntries([...t.counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, EVIDENCE_VALUES));
}

function newValueHit(
  rule: "anomaly.novel_tool" | "anomaly.novel_destination" | "anomaly.novel_entity",
  feature: string,
  value: string,
  tally: Tally,
  baseline: Baseline,
  settings: BaselineSettings,
  explanation: string,
): Hit | undefined {
  if (tally.counts.has(value)) return undefined;
  const chance = novelty(tally);
  if (chance >= settings.maxNovelty) return undefined;
  return {
    rule,
    explanation: `${explanation} In ${baseline.tasks} learned tasks, a new ${feature} turned up in ${round(chance * 100, 1)}% of observations.`,
    observed: { feature, value, score: round(chance, 4) },
    expected: {
      baseline: { tasks: baseline.tasks, observations: tally.total, mostSeen: mostSeen(tally) },
      maxNovelty: settings.maxNovelty,
    },
  };
}

/**
 * How a step departs from its agent's baseline. Nothing before the warm-up, nor for a value
 * a policy rule on the same step already flags (`skip`: a tool out of scope is not also new).
 */
export function anomalyHits(
  step: Step,
  baseline: Baseline | undefined,
  settings: BaselineSettings,
  options: { effect: ToolEffect | undefined; skip?: { tool?: boolean; destination?: boolean } },
): Hit[] {
  if (!settings.enabled || !baseline || baseline.tasks < settings.warmUpTasks) return [];
  const hits: Hit[] = [];
  const agent = agentKey(step) ?? "The agent";
  const tool = step.tool?.name;
  if (tool && !options.skip?.tool) {
    const fresh = newValueHit(
      "anomaly.novel_tool",
      "tool",
      tool,
      baseline.tools,
      baseline,
      settings,
      `${agent} called "${tool}", a tool it has not used before.`,
    );
    if (fresh) hits.push(fresh);
    else if (baseline.tools.counts.has(tool)) {
      const from = step.before?.lastTool ?? TASK_START;
      const s = surprisal(baseline, from, tool);
      if (s.outOf >= settings.minTransitions && s.bits > settings.maxSurprisalBits) {
        const next = baseline.transitions.get(from);
        hits.push({
          rule: "anomaly.transition",
          explanation: `${agent} ${from === TASK_START ? "began a task with" : `went from "${from}" to`} "${tool}": in its history that happened ${s.seen} times in ${s.outOf} (surprisal ${round(s.bits, 1)} bits, over the limit of ${settings.maxSurprisalBits}).`,
          observed: { feature: "transition", value: `${from} -> ${tool}`, score: round(s.bits, 2) },
          expected: {
            baseline: { from, outOf: s.outOf, seen: s.seen, usualNext: next ? mostSeen(next) : {} },
            maxSurprisalBits: settings.maxSurprisalBits,
          },
        });
      }
    }
  }
  const host = hostOf(step);
  if (host && !options.skip?.destination) {
    // judged by where this tool goes when it has enough history (a mail relay always to one
    // host, a link checker somewhere new each time), else by where the agent goes at all
    const byTool = tool ? baseline.destinationsByTool.get(tool) : undefined;
    const toolTasks = tool ? (baseline.tools.counts.get(tool) ?? 0) : 0;
    const fresh =
      byTool && toolTasks >= TOOL_EVIDENCE
        ? newValueHit(
            "anomaly.novel_destination",
            `destination of ${tool}`,
            host,
            byTool,
            baseline,
            settings,
            `${agent} reached ${host} with ${tool}, which has not gone there before.`,
          )
        : newValueHit(
            "anomaly.novel_destination",
            "destination",
            host,
            baseline.destinations,
            baseline,
            settings,
            `${agent} reached ${host}, a destination it has not reached before.`,
          );
    if (fresh) hits.push(fresh);
  }
  // a domain the task itself reached earlier (a page it read, cited in a note) is not new to it
  const visited = new Set((step.before?.reached ?? []).map(domainOf));
  const domains = argumentDomains(step, options.effect).filter((d) => !visited.has(d));
  for (const domain of domains) {
    const kind = recipientClass(domain);
    if (!kind || baseline.classes.counts.has(kind)) continue;
    hits.push({
      rule: "anomaly.novel_entity",
      explanation: `${agent} called ${tool} addressed to ${domain}, a ${kind.replace("-", " ")} address: in ${baseline.tasks} learned tasks it never wrote to one.`,
      observed: { feature: "recipient class", value: kind, domain, score: 1 },
      expected: { baseline: { tasks: baseline.tasks, classes: mostSeen(baseline.classes) } },
    });
    break;
  }
  for (const domain of hits.some((h) => h.rule === "anomaly.novel_entity") ? [] : domains) {
    const bank = domain.startsWith("iban:");
    const fresh = newValueHit(
      "anomaly.novel_entity",
      bank ? "IBAN bank" : "argument domain",
      domain,
      bank ? baseline.banks : baseline.domains,
      baseline,
      settings,
      `${agent} called ${tool} with an argument at ${domain}, a domain its writes and messages have not used before.`,
    );
    if (fresh) {
      hits.push(fresh);
      break;
    }
    // known to the agent, but not in this kind of task (month-end close mail to a vendor)
    const kind = step.before?.firstTool ?? tool ?? TASK_START;
    const ofKind = (bank ? baseline.banksByKind : baseline.domainsByKind).get(kind) ?? tallyOf(new Map());
    const kindTasks = baseline.repeats.get(repeatKey(kind, kind))?.n ?? 0;
    // no domain at all in that many tasks of the kind: any domain is new
    const chance = ofKind.total === 0 ? 0 : novelty(ofKind);
    if (kindTasks >= settings.warmUpTasks && !ofKind.counts.has(domain) && chance < settings.maxNovelty) {
      hits.push({
        rule: "anomaly.novel_entity",
        explanation: `${agent} called ${tool} with an argument at ${domain}; in ${kindTasks} learned tasks that began with "${kind}" it never wrote there, and such tasks rarely bring a new domain (${round(chance * 100, 1)}%).`,
        observed: {
          feature: `${bank ? "IBAN bank" : "argument domain"} in this kind of task`,
          value: domain,
          kind,
          score: round(chance, 4),
        },
        expected: { baseline: { tasks: kindTasks, mostSeen: mostSeen(ofKind) }, maxNovelty: settings.maxNovelty },
      });
      break;
    }
  }
  const calls = step.before?.toolCalls;
  const usual = tool ? baseline.repeats.get(repeatKey(step.before?.firstTool ?? tool, tool)) : undefined;
  if (tool && calls !== undefined && usual && usual.n >= settings.warmUpTasks / 2) {
    const count = calls + 1;
    const z = robustZ(count, usual, REPEAT_FLOOR);
    if (z > settings.maxRobustZ) {
      hits.push({
        rule: "anomaly.tool_repeat",
        explanation: `${agent} has called "${tool}" ${count} times in this task; its tasks that begin with "${step.before?.firstTool ?? tool}" call it a median of ${usual.median} times (robust z-score ${round(z, 1)}, over the limit of ${settings.maxRobustZ}).`,
        observed: { feature: "calls of a tool in a task", value: count, tool, score: round(z, 2) },
        expected: { baseline: { ...usual }, maxRobustZ: settings.maxRobustZ },
      });
    }
  }
  // a run of the same tool far longer than any learned task's: a loop (enumeration, retries, a burst)
  const streak = (step.before?.streak ?? -1) + 1;
  const longest = tool ? baseline.streaks.get(tool) : undefined;
  if (tool && streak > 0 && longest && longest.tasks >= settings.warmUpTasks && !hits.some((h) => h.rule === "anomaly.tool_repeat")) {
    const limit = longest.max + Math.max(2, Math.ceil(longest.max / 2));
    if (streak > limit) {
      hits.push({
        rule: "anomaly.tool_repeat",
        explanation: `${agent} has called "${tool}" ${streak} times in a row; in ${longest.tasks} learned tasks its longest run was ${longest.max}.`,
        observed: { feature: "consecutive calls of a tool", value: streak, tool, score: streak - longest.max },
        expected: { baseline: { ...longest }, limit },
      });
    }
  }
  if (step.before) {
    const pace = paceOf(step);
    const z = robustZ(pace, baseline.rates);
    if (baseline.rates.n > 0 && z > settings.maxRobustZ) {
      hits.push({
        rule: "anomaly.rate",
        explanation: `${agent} took ${pace} steps within a minute; its tasks peak at a median of ${baseline.rates.median} (robust z-score ${round(z, 1)}, over the limit of ${settings.maxRobustZ}).`,
        observed: { feature: "steps per minute", value: pace, score: round(z, 2) },
        expected: { baseline: { ...baseline.rates }, maxRobustZ: settings.maxRobustZ },
      });
    }
  }
  const length = lengthOf(step);
  const z = robustZ(length, baseline.lengths);
  if (baseline.lengths.n > 0 && z > settings.maxRobustZ) {
    hits.push({
      rule: "anomaly.path_length",
      explanation: `${agent} has taken ${length} steps in this task; its tasks take a median of ${baseline.lengths.median} (robust z-score ${round(z, 1)}, over the limit of ${settings.maxRobustZ}).`,
      observed: { feature: "path length", value: length, score: round(z, 2) },
      expected: { baseline: { ...baseline.lengths }, maxRobustZ: settings.maxRobustZ },
    });
  }
  return hits;
}

const DEFAULT_SETTINGS = BaselineSettings.parse({});

/** A profile's baseline settings, with the defaults for what it leaves out. */
export function baselineSettings(profile: { baseline?: BaselineSettings } | undefined): BaselineSettings {
  return profile?.baseline ?? DEFAULT_SETTINGS;
}
