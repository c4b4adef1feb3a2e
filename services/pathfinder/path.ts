import {
  type AgentAction,
  type AttributeValue,
  DATA_CLASSIFICATIONS,
  type DataClassification,
  type TaskScope,
} from "../../schemas/action.js";
import type { Hop, PathSoFar, Step, StepContext } from "../../schemas/step.js";
import {
  argumentLineage,
  asksOf,
  type EarlierOutput,
  indexOutput,
  MAX_USER_TEXT,
  markNamedSources,
  namingTerms,
  normalise,
  type OutputIndex,
  rolesOf,
  type Sources,
  systemTextOf,
  userTextOf,
} from "./lineage.js";

/**
 * A task's path as the pathfinder keeps it: the order of its steps, what it knows of each
 * span (parent, depth, agent), the task's facts, and where the task is in its life. Plain
 * data and functions: `placeActions` is the whole ordering logic, with no I/O; the task
 * store persists what it changed.
 */

/** Where a task is in its life (`idle` and `revoked` are read on top of this). */
export type TaskPhase = "started" | "active" | "completed";

/** What the path keeps of one span. */
export interface SpanInfo {
  parent?: string;
  depth: number;
  agentId?: string;
  spiffeId?: string;
  /** The span arrived after the lateness window (see placeActions). */
  late?: boolean;
  /** Start time (epoch ms) and the data classification it touched: what later steps look back at. */
  start?: number;
  data?: DataClassification;
  /** The tool called, what its output held (lineage.ts), and its argument values that could name a source. */
  tool?: string;
  src?: OutputIndex;
  asks?: string[];
  /** What the user wrote (an inference span's `gen_ai.input.messages`, role `user`), normalised. */
  said?: string;
  /** The agent's system instructions on an inference span, normalised. */
  sys?: string;
  /** The host the step reached (its destination). */
  host?: string;
}

export interface TaskFacts {
  taskId: string;
  firstSeenMs: number;
  lastSeenMs: number;
  /** Earliest step start and latest step end: the task's duration. */
  startMs: number;
  endMs: number;
  /** The newest step's start: the lateness window is measured back from it. */
  maxStartMs: number;
  /**
   * The start of the task's first recorded span: step scores are start times relative to
   * it, so that a double keeps sub-microsecond precision for the causal tie-break.
   */
  baseMs: number;
  phase: TaskPhase;
  completedAtMs?: number;
  agentId?: string;
  agentName?: string;
  spiffeId?: string;
  intent?: string;
  scope?: TaskScope;
  /** Where the scope came from: the scope registry (authoritative) or the task's spans. */
  scopeSource?: "registry" | "span";
  scopeError?: string;
  /** The scope in force changed mid-task: how often, when last, and what it was before. */
  scopeRevision?: number;
  scopeChangedAtMs?: number;
  previousScope?: TaskScope;
  /** The environment the task began in. */
  environment?: string;
  parentTaskId?: string;
  /** The hops above this task (its delegating tasks), root first. */
  lineage?: Hop[];
}

export interface OrderEntry {
  id: string;
  score: number;
}

export interface TaskPath {
  taskId: string;
  /** Undefined until the task's first step. */
  facts?: TaskFacts;
  /** Step ids in path order: ascending score, ties by id (as a Redis sorted set orders them). */
  order: OrderEntry[];
  ids: Set<string>;
  /** By span id. */
  spans: Map<string, SpanInfo>;
  /** What the task touched: `agent:…`, `tool:…`, `data:…`, `env:…`, `dest:…`. */
  facets: Set<string>;
  credentials: Set<string>;
  /** The scope registered for the task through the API, if any (it wins over a span's), and when. */
  registeredScope?: TaskScope;
  registeredAtMs?: number;
}

export function emptyPath(taskId: string): TaskPath {
  return { taskId, order: [], ids: new Set(), spans: new Map(), facets: new Set(), credentials: new Set() };
}

export interface PlaceOptions {
  /** How far before the task's newest step a span may start and still re-order the steps after it. */
  latenessMs: number;
  /** At most this many earlier steps are emitted again for one batch. */
  maxReevaluated?: number;
  /**
   * Earlier steps one task may have emitted again per minute (a token bucket): past it, a
   * span that would re-order the steps after it is taken as late instead (placed, marked
   * `late`, judged once). Spans that start before steps already recorded are otherwise a
   * lever: each could make the pipeline judge a thousand steps again.
   */
  reevaluationsPerMinute?: number;
  now?: () => number;
}

export interface Placement {
  /** The new steps, in path order, with their action, span info and score (what the store writes). */
  recorded: { step: Step; action: AgentAction; score: number; span: SpanInfo; actionJson?: string }[];
  /** Steps recorded before, to be emitted again (their index or context changed), in path order. */
  reevaluate: { id: string; index: number }[];
  /**
   * Spans recorded before and received again (a retrying exporter, a Kafka redelivery): not
   * new steps, but emitted again as they are, since the first emission may not have
   * reached the bus (at-least-once; findings are idempotent downstream).
   */
  repeated: Step[];
  duplicates: number;
  /** The facts changed (the store rewrites them). */
  factsChanged: boolean;
  previousPhase?: TaskPhase;
  newFacets: string[];
  newCredentials: string[];
}

/**
 * Below span clock resolution (ingest keeps microseconds), and representable next to
 * relative start times of weeks (scores are relative to the task's first span).
 */
const DEPTH_TIE_BREAK_MS = 0.000_001;
const MAX_DEPTH = 64;
const DEFAULT_MAX_REEVALUATED = 1_000;
const DEFAULT_REEVALUATIONS_PER_MINUTE = 5_000;

const PRUNE_EVERY = 256;

/**
 * Forgets the indexed outputs (and naming terms) of tool calls older than the most recent
 * 2 × MAX_SOURCE_OUTPUTS (room for steps judged again): lineage never reads them (`soFar` traces through the most recent
 * MAX_SOURCE_OUTPUTS), and a task of thousands of calls would keep every output's index in
 * memory. Once every PRUNE_EVERY steps, so the walk costs nothing per step. What the store
 * holds is unchanged.
 */
function pruneOldOutputs(path: TaskPath, oldCount: number): void {
  const kept = 2 * MAX_SOURCE_OUTPUTS;
  if (Math.floor(path.order.length / PRUNE_EVERY) === Math.floor(oldCount / PRUNE_EVERY) || path.order.length <= kept) return;
  let calls = 0;
  for (let i = path.order.length - 1; i >= 0; i--) {
    const info = infoAt(path, i);
    if (!info?.tool) continue;
    if (++calls <= kept) continue;
    if (info.src === undefined && info.asks === undefined) continue;
    delete info.src;
    delete info.asks;
  }
}

/** Each path's re-evaluation budget (in memory: a task reloaded starts full). */
const reevaluationBudgets = new WeakMap<TaskPath, { tokens: number; atMs: number }>();

/** Takes `n` re-evaluations from the task's budget: true when it held them. */
function takeReevaluations(path: TaskPath, n: number, perMinute: number, nowMs: number): boolean {
  const b = reevaluationBudgets.get(path) ?? { tokens: perMinute, atMs: nowMs };
  b.tokens = Math.min(perMinute, b.tokens + ((nowMs - b.atMs) * perMinute) / 60_000);
  b.atMs = nowMs;
  reevaluationBudgets.set(path, b);
  if (b.tokens < n) return false;
  b.tokens -= n;
  return true;
}

const before = (a: OrderEntry, b: OrderEntry) => a.score < b.score || (a.score === b.score && a.id < b.id);

/** Where `entry` goes in `order` (binary search). */
function insertionPoint(order: OrderEntry[], entry: OrderEntry): number {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(order[mid] as OrderEntry, entry)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A span of the task's own root: an agent invocation with no parent, or the first span of a delegate. */
export function isTaskRoot(a: AgentAction): boolean {
  // a span its sender may not send (schemas/action.ts identityMismatch) ends no task
  return a.operation === "invoke_agent" && (a.parentSpanId === undefined || a.parentTaskId !== undefined) && !a.identityMismatch;
}

export function facetsOf(a: AgentAction): string[] {
  const out: string[] = [];
  if (a.agent.id) out.push(`agent:${a.agent.id}`);
  if (a.tool) out.push(`tool:${a.tool.name}`);
  if (a.dataClassification) out.push(`data:${a.dataClassification}`);
  if (a.environment) out.push(`env:${a.environment}`);
  const dest = a.destination?.address ?? hostOf(a.destination?.url);
  if (dest) out.push(`dest:${dest}`);
  return out;
}

function hostOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).hostname || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Puts the scope registered for the task in force. A different scope replacing one already
 * in force mid-task (the task had steps) is a change of the task's context: counted, with
 * the scope before it, so the detector can report it and the revoker end what was granted for it.
 */
export function putRegisteredScope(facts: TaskFacts, scope: TaskScope, atMs: number): void {
  const before = facts.scope;
  if (before && JSON.stringify(before) !== JSON.stringify(scope)) {
    facts.scopeRevision = (facts.scopeRevision ?? 0) + 1;
    facts.scopeChangedAtMs = atMs;
    facts.previousScope = before;
  }
  facts.scope = scope;
  facts.scopeSource = "registry";
  delete facts.scopeError;
}

export function stepContext(facts: TaskFacts | undefined): StepContext | undefined {
  if (!facts) return undefined;
  const ctx: StepContext = {};
  if (facts.scope) ctx.declaredScope = facts.scope;
  if (facts.scopeError) ctx.declaredScopeError = facts.scopeError;
  if (facts.intent) ctx.intent = facts.intent;
  if (facts.environment) ctx.environment = facts.environment;
  if (facts.phase === "completed" && facts.completedAtMs !== undefined) ctx.completedAtMs = facts.completedAtMs;
  if (facts.scopeRevision) {
    ctx.scopeRevision = facts.scopeRevision;
    if (facts.scopeChangedAtMs !== undefined) ctx.scopeChangedAtMs = facts.scopeChangedAtMs;
    if (facts.previousScope) ctx.previousScope = facts.previousScope;
  }
  return Object.keys(ctx).length > 0 ? ctx : undefined;
}

/**
 * The hops above a step: its task's lineage, then the agents above it within the task
 * (an ancestor span of another agent delegated to it), root first.
 */
export function lineageOf(path: TaskPath, spanId: string, agentId: string | undefined): Hop[] | undefined {
  const within: Hop[] = [];
  let current = agentId;
  let cursor = path.spans.get(spanId)?.parent;
  for (let guard = 0; cursor !== undefined && guard < MAX_DEPTH; guard++) {
    const info = path.spans.get(cursor);
    if (!info) break;
    if (info.agentId && info.agentId !== current) {
      const hop: Hop = { taskId: path.taskId, agentId: info.agentId };
      if (info.spiffeId) hop.spiffeId = info.spiffeId;
      if (path.facts?.scope) hop.declaredScope = path.facts.scope;
      within.push(hop);
      current = info.agentId;
    }
    cursor = info.parent;
  }
  const lineage = [...(path.facts?.lineage ?? []), ...within.reverse()];
  return lineage.length > 0 ? lineage : undefined;
}

/** The step of a recorded action, at `index`, with what the path knows now. */
export function stepOf(path: TaskPath, action: AgentAction, index: number, flags: { reevaluated?: boolean } = {}): Step {
  const step: Step = { ...action, index };
  if (path.spans.get(action.spanId)?.late) step.late = true;
  if (flags.reevaluated) step.reevaluated = true;
  const context = stepContext(path.facts);
  if (context) step.context = context;
  const lineage = lineageOf(path, action.spanId, action.agent.id);
  if (lineage) step.lineage = lineage;
  step.before = soFar(path, index, action.startTimeMs, action.agent.id, action.tool?.name, action.tool?.arguments);
  return step;
}

const RECENT_MS = 60_000;
/** The most recent earlier reads a step carries. */
const MAX_READS = 50;
/** The most hosts reached earlier a step carries. */
const MAX_REACHED = 32;
/**
 * The earlier tool outputs a step's lineage is traced through: the most recent ones. Tracing
 * is quadratic in them (what the user said of each, for each step), so a task of thousands of
 * calls would cost seconds per step; a value that came from an older output is unexplained
 * (a finding, not a pass: the bound fails closed).
 */
export const MAX_SOURCE_OUTPUTS = 128;
/** Steps looked back over for the agent's own steps of the last minute and the lineage's sources. */
const MAX_LOOKBACK = 512;

/** The first position before `end` whose score is at least `score` (order is ascending by score). */
function firstFrom(order: OrderEntry[], end: number, score: number): number {
  let lo = 0;
  let hi = end;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((order[mid] as OrderEntry).score < score) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
const NO_AGENT = "\u0000";

/** What one agent did in a prefix of the path. */
interface AgentSoFar {
  steps: number;
  firstTool?: string;
  lastTool?: string;
  /** Calls per tool. */
  calls: Map<string, number>;
  /** The agent's latest run of calls of one tool, and its length. */
  runTool?: string;
  run: number;
}

/** The path's first `upTo` steps folded: what every later step looks back at. */
interface Prefix {
  upTo: number;
  /** The step at `upTo - 1` when folded: another one there means the path changed before it. */
  last?: OrderEntry;
  max?: DataClassification;
  said: Set<string>;
  system: Set<string>;
  reached: Set<string>;
  agents: Map<string, AgentSoFar>;
  /** What the user and the system said, as sources read it: made once per what they said, not per step. */
  texts?: PrefixTexts;
}

interface PrefixTexts {
  /** What it was made from: the objective and how many distinct words the user and system had said (the sets only grow). */
  intent: string | undefined;
  saidCount: number;
  systemCount: number;
  request: string | undefined;
  userText: string;
  systemText: string;
  roles: string[];
}

function textsOf(prefix: Prefix, intent: string | undefined): PrefixTexts {
  const kept = prefix.texts;
  if (kept && kept.intent === intent && kept.saidCount === prefix.said.size && kept.systemCount === prefix.system.size) return kept;
  const request = intent ? normalise(intent) : undefined;
  // the user's words besides the objective itself (a chat history repeats it)
  const userText = [...prefix.said]
    .filter((t) => t !== request)
    .join(" | ")
    .slice(0, MAX_USER_TEXT);
  const texts: PrefixTexts = {
    intent,
    saidCount: prefix.said.size,
    systemCount: prefix.system.size,
    request,
    userText,
    systemText: [...prefix.system].join(" | ").slice(0, MAX_USER_TEXT),
    roles: rolesOf([request, userText].filter(Boolean).join(" | ")),
  };
  prefix.texts = texts;
  return texts;
}

/**
 * Each path's prefixes folded so far, extended as steps are appended: a step costs the steps
 * since the last one, not the whole path (a task of thousands of steps stays linear). Two
 * are kept: the one at the path's end, and one walking up through steps judged again (a
 * span placed before others re-orders them, and they are judged again in path order). A
 * prefix the path changed before is folded again.
 */
const prefixes = new WeakMap<TaskPath, Prefix[]>();
const PREFIXES_KEPT = 2;

function infoAt(path: TaskPath, i: number): SpanInfo | undefined {
  const id = (path.order[i] as OrderEntry).id;
  return path.spans.get(id.slice(id.indexOf(":") + 1));
}

const emptyPrefix = (): Prefix => ({ upTo: 0, said: new Set(), system: new Set(), reached: new Set(), agents: new Map() });

function fold(path: TaskPath, p: Prefix, to: number): Prefix {
  for (let i = p.upTo; i < to; i++) {
    const info = infoAt(path, i);
    if (!info) continue;
    if (info.data && (p.max === undefined || sensitivity(info.data) > sensitivity(p.max))) p.max = info.data;
    if (info.said) p.said.add(info.said);
    if (info.sys) p.system.add(info.sys);
    if (info.host && p.reached.size < MAX_REACHED) p.reached.add(info.host);
    const key = info.agentId ?? NO_AGENT;
    let a = p.agents.get(key);
    if (!a) {
      a = { steps: 0, calls: new Map(), run: 0 };
      p.agents.set(key, a);
    }
    a.steps++;
    if (info.tool) {
      a.firstTool ??= info.tool;
      a.lastTool = info.tool;
      a.calls.set(info.tool, (a.calls.get(info.tool) ?? 0) + 1);
      a.run = a.runTool === info.tool ? a.run + 1 : 1;
      a.runTool = info.tool;
    }
  }
  p.upTo = to;
  p.last = to > 0 ? path.order[to - 1] : undefined;
  return p;
}

const intact = (path: TaskPath, p: Prefix) => p.upTo === 0 || (p.upTo <= path.order.length && path.order[p.upTo - 1] === p.last);

/** The first `end` steps of the path, folded: from the furthest kept prefix at or before `end` the path did not change before. */
function prefixOf(path: TaskPath, end: number): Prefix {
  const kept = (prefixes.get(path) ?? []).filter((p) => intact(path, p));
  let best: Prefix | undefined;
  for (const p of kept) if (p.upTo <= end && (!best || p.upTo > best.upTo)) best = p;
  if (best) return fold(path, best, end);
  const fresh = fold(path, emptyPrefix(), end);
  // kept beside the furthest one (the path's end), or in place of the nearer one
  kept.sort((a, b) => b.upTo - a.upTo);
  prefixes.set(path, [...kept.slice(0, PREFIXES_KEPT - 1), fresh]);
  return fresh;
}
const sensitivity = (c: DataClassification) => DATA_CLASSIFICATIONS.indexOf(c);

/**
 * What the path holds before position `index` (a step of `agentId` starting at `startMs`,
 * calling `tool` with `args`), with the lineage of the step's argument values.
 */
export function soFar(path: TaskPath, index: number, startMs: number, agentId?: string, tool?: string, args?: AttributeValue): PathSoFar {
  const end = Math.min(index, path.order.length);
  const prefix = prefixOf(path, end);
  const mine = prefix.agents.get(agentId ?? NO_AGENT);
  const own = mine?.steps ?? 0;
  const sameTool = tool !== undefined ? (mine?.calls.get(tool) ?? 0) : 0;
  const streak = tool !== undefined && mine?.runTool === tool ? mine.run : 0;
  const firstTool = mine?.firstTool;
  const lastTool = mine?.lastTool;
  const { max, reached } = prefix;
  // the steps of the last minute: the path is in start order (a score is the start after the
  // task's base; a tie of starts is broken by depth, far below a millisecond), so where they
  // begin is a binary search; the agent's own among them are counted back from the step, at
  // most MAX_LOOKBACK of them (a lower bound past that, where other agents also crowd the minute)
  const from = firstFrom(path.order, end, startMs - RECENT_MS - (path.facts?.baseMs ?? 0));
  const recent = end - from;
  let ownRecent = 0;
  // one agent so far, and it is this one: all of them are its own
  if (prefix.agents.size === 1 && mine) ownRecent = recent;
  else for (let i = end - 1; i >= from && i >= end - MAX_LOOKBACK; i--) if (infoAt(path, i)?.agentId === agentId) ownRecent++;
  // the sources of the step's lineage: the most recent MAX_SOURCE_OUTPUTS tool calls
  const calls: number[] = [];
  for (let i = end - 1, seen = 0; i >= 0 && seen < MAX_LOOKBACK && calls.length < MAX_SOURCE_OUTPUTS; i--, seen++) {
    if (infoAt(path, i)?.tool) calls.push(i);
  }
  const outputs: EarlierOutput[] = [];
  const naming = new Map<number, string[]>();
  for (let c = calls.length - 1; c >= 0; c--) {
    const i = calls[c] as number;
    const info = infoAt(path, i) as SpanInfo;
    outputs.push({
      index: i,
      tool: info.tool as string,
      ...(info.agentId ? { agentId: info.agentId } : {}),
      ...(info.src ? { output: info.src } : {}),
    });
    if (info.asks) naming.set(i, info.asks);
  }
  const first = path.facts?.startMs ?? startMs;
  const { request, userText, systemText, roles } = textsOf(prefix, path.facts?.intent);
  const sources = {} as Sources;
  if (request) sources.request = request;
  if (userText) sources.user = userText;
  if (systemText) sources.system = systemText;
  sources.outputs = outputs;
  if (roles.length > 0) sources.roles = roles;
  if (outputs.length > 0) markNamedSources(sources, naming);
  const lineage = args !== undefined ? argumentLineage(args, sources) : [];
  // built field by field (not spread from conditional literals): this runs for every step
  type Read = NonNullable<PathSoFar["reads"]>[number];
  const reads = outputs.slice(-MAX_READS).map((o) => {
    const read: Read = { index: o.index, tool: o.tool };
    if (o.named) read.named = o.named;
    if (o.output) read.recorded = true;
    if (o.directed) read.directed = true;
    if (o.output?.m) read.marked = true;
    // the actions a source asks for count as asked only where the user handed its request over
    if (o.direction?.open) {
      const asks = asksOf(o.output?.t);
      if (asks.length > 0) read.asks = asks;
    }
    return read;
  });
  const out: PathSoFar = max ? ({ maxDataClassification: max } as PathSoFar) : ({} as PathSoFar);
  out.stepsLastMinute = recent;
  out.elapsedMs = Math.max(0, startMs - first);
  out.agentSteps = own;
  out.agentStepsLastMinute = ownRecent;
  if (tool !== undefined) {
    out.toolCalls = sameTool;
    out.streak = streak;
  }
  if (firstTool) out.firstTool = firstTool;
  if (lastTool) out.lastTool = lastTool;
  if (reads.length > 0) out.reads = reads;
  if (userText) out.userText = userText;
  if (lineage.length > 0) out.arguments = lineage;
  if (reached.size > 0) out.reached = [...reached];
  return out;
}

/**
 * Places a batch of a task's actions in its path (mutating `path`) and says what changed.
 * Order is by start time, and by causality where start times tie: a span's depth below
 * its task's root breaks the tie, so an agent invocation precedes the tool calls it makes.
 * A span seen before is a duplicate and changes nothing. A span that lands before steps
 * already recorded re-orders them: when it started within the lateness window of the
 * task's newest step, the steps after it are emitted again (re-evaluated); an older one is
 * recorded in its place all the same, flagged `late`, and nothing else is re-evaluated,
 * unless it is the parent of a recorded span (it may change the lineage of the steps below).
 */
export function placeActions(path: TaskPath, actions: AgentAction[], options: PlaceOptions): Placement {
  const fresh: AgentAction[] = [];
  const again: AgentAction[] = [];
  let duplicates = 0;
  const seen = new Set<string>();
  for (const a of actions) {
    if (path.ids.has(a.id) || seen.has(a.id)) {
      duplicates++;
      if (path.ids.has(a.id) && !seen.has(a.id)) again.push(a);
      seen.add(a.id);
    } else {
      seen.add(a.id);
      fresh.push(a);
    }
  }
  const placement: Placement = {
    recorded: [],
    reevaluate: [],
    repeated: [],
    duplicates,
    factsChanged: false,
    newFacets: [],
    newCredentials: [],
  };
  if (fresh.length === 0) {
    placement.repeated = repeatedSteps(path, again);
    return placement;
  }

  // depth below the task's root, through parents in this batch or already known
  const inBatch = new Map(fresh.map((a) => [a.spanId, a]));
  const depth = new Map<string, number>();
  const depthOf = (a: AgentAction, guard = 0): number => {
    const known = depth.get(a.spanId) ?? path.spans.get(a.spanId)?.depth;
    if (known !== undefined) return known;
    let d = 0;
    if (a.parentSpanId && guard < MAX_DEPTH) {
      const parent = inBatch.get(a.parentSpanId);
      const parentDepth = parent ? depthOf(parent, guard + 1) : path.spans.get(a.parentSpanId)?.depth;
      d = parentDepth === undefined ? 1 : Math.min(parentDepth + 1, MAX_DEPTH);
    }
    depth.set(a.spanId, d);
    return d;
  };

  // a span arriving after spans below it (OTel exports parents last) must still sort before
  // them where start times tie: it goes above the shallowest of its recorded children
  const childDepth = new Map<string, number>();
  if (path.spans.size > 0) {
    for (const info of path.spans.values()) {
      if (info.parent && inBatch.has(info.parent))
        childDepth.set(info.parent, Math.min(childDepth.get(info.parent) ?? info.depth, info.depth));
    }
    for (const [spanId, d] of childDepth) {
      const a = inBatch.get(spanId) as AgentAction;
      depth.set(spanId, Math.min(depthOf(a), d - 1));
    }
  }

  const previous = path.facts;
  const watermark = previous ? previous.maxStartMs - options.latenessMs : Number.NEGATIVE_INFINITY;
  const oldCount = path.order.length;
  const oldContext = JSON.stringify(stepContext(previous) ?? {});
  const oldLineage = JSON.stringify(previous?.lineage ?? []);

  const baseMs = previous?.baseMs ?? Math.min(...fresh.map((a) => a.startTimeMs));
  const entries = fresh
    .map((a) => ({ action: a, entry: { id: a.id, score: a.startTimeMs - baseMs + depthOf(a) * DEPTH_TIE_BREAK_MS } }))
    .sort((x, y) => (before(x.entry, y.entry) ? -1 : 1));
  const late = new Set<string>();
  for (const { action, entry } of entries) {
    path.order.splice(insertionPoint(path.order, entry), 0, entry);
    path.ids.add(entry.id);
    const info: SpanInfo = { depth: depth.get(action.spanId) ?? 0, start: action.startTimeMs };
    if (action.dataClassification) info.data = action.dataClassification;
    // a span its sender may not send is in the path, but nothing it says is a source: not its
    // output, not the user's or system's words it claims
    const trusted = !action.identityMismatch;
    if (action.tool) {
      info.tool = action.tool.name;
      const src = trusted ? indexOutput(action.tool.result) : undefined;
      if (src) info.src = src;
      const asks = namingTerms(action.tool.arguments);
      if (asks) info.asks = asks;
    }
    const said = trusted ? userTextOf(action) : undefined;
    if (said) info.said = said;
    const sys = trusted ? systemTextOf(action) : undefined;
    if (sys) info.sys = sys;
    const host = (action.destination?.address ?? hostOf(action.destination?.url))?.toLowerCase();
    if (host) info.host = host;
    if (action.parentSpanId) info.parent = action.parentSpanId;
    if (action.agent.id) info.agentId = action.agent.id;
    if (action.agent.spiffeId) info.spiffeId = action.agent.spiffeId;
    if (action.startTimeMs < watermark) {
      info.late = true;
      late.add(action.id);
    }
    path.spans.set(action.spanId, info);
  }

  placement.factsChanged = updateFacts(path, fresh, placement, baseMs);
  pruneOldOutputs(path, oldCount);

  // positions after the batch; the earliest in-window new step re-orders what follows it
  const index = new Map<string, number>();
  for (const [i, e] of path.order.entries()) index.set(e.id, i);
  let reorderFrom = Number.POSITIVE_INFINITY;
  for (const { action } of entries) if (!late.has(action.id)) reorderFrom = Math.min(reorderFrom, index.get(action.id) as number);
  // a late span that is the parent of a recorded one (OTel exports parents last) may tell who
  // delegated to the steps below it: they are re-evaluated all the same (their lineage changed)
  if (late.size > 0) {
    const parents = new Set<string>();
    for (const [spanId, info] of path.spans) if (info.parent && !inBatch.has(spanId)) parents.add(info.parent);
    for (const { action } of entries) {
      if (late.has(action.id) && parents.has(action.spanId)) reorderFrom = Math.min(reorderFrom, index.get(action.id) as number);
    }
  }
  // a new context (a declared scope, a lineage) changes every step's verdict
  const contextChanged =
    oldCount > 0 &&
    (JSON.stringify(stepContext(path.facts) ?? {}) !== oldContext || JSON.stringify(path.facts?.lineage ?? []) !== oldLineage);
  const maxReevaluated = options.maxReevaluated ?? DEFAULT_MAX_REEVALUATED;
  // the steps after the earliest re-ordering new one (all of them, for a new context) are
  // judged again, within the task's budget; past it a re-ordering span is taken as late
  let from = contextChanged ? 0 : reorderFrom;
  if (from < path.order.length) {
    const wanted = Math.min(maxReevaluated, path.order.length - from - entries.length);
    const nowMs = (options.now ?? Date.now)();
    if (wanted > 0 && !takeReevaluations(path, wanted, options.reevaluationsPerMinute ?? DEFAULT_REEVALUATIONS_PER_MINUTE, nowMs)) {
      if (!contextChanged) {
        // the last step recorded before this batch: a new one before it re-orders
        const fresh = new Set(entries.map((e) => e.action.id));
        let lastOld = path.order.length - 1;
        while (lastOld >= 0 && fresh.has((path.order[lastOld] as OrderEntry).id)) lastOld--;
        for (const { action } of entries) {
          if (late.has(action.id) || (index.get(action.id) as number) > lastOld) continue;
          late.add(action.id);
          (path.spans.get(action.spanId) as SpanInfo).late = true;
        }
      }
      from = Number.POSITIVE_INFINITY;
    }
  }
  for (let i = from; i < path.order.length && placement.reevaluate.length < maxReevaluated; i++) {
    const e = path.order[i] as OrderEntry;
    if (!seen.has(e.id)) placement.reevaluate.push({ id: e.id, index: i });
  }

  for (const { action, entry } of entries) {
    const step = stepOf(path, action, index.get(action.id) as number);
    placement.recorded.push({ step, action, score: entry.score, span: path.spans.get(action.spanId) as SpanInfo });
  }
  placement.recorded.sort((x, y) => x.step.index - y.step.index);
  placement.repeated = repeatedSteps(path, again);
  return placement;
}

function repeatedSteps(path: TaskPath, again: AgentAction[]): Step[] {
  if (again.length === 0) return [];
  const index = new Map<string, number>();
  for (const [i, e] of path.order.entries()) index.set(e.id, i);
  return again.map((a) => stepOf(path, a, index.get(a.id) as number));
}

/** Folds a batch's actions into the task's facts; true when they changed. */
function updateFacts(path: TaskPath, fresh: AgentAction[], placement: Placement, baseMs: number): boolean {
  const before = path.facts ? JSON.stringify(path.facts) : "";
  placement.previousPhase = path.facts?.phase;
  // the first span of the task (by start) says who the task is; the first value of each fact wins
  const byStart = [...fresh].sort((a, b) => a.startTimeMs - b.startTimeMs);
  const first = byStart[0] as AgentAction;
  const facts: TaskFacts = path.facts ?? {
    taskId: path.taskId,
    firstSeenMs: first.receivedAtMs,
    lastSeenMs: first.receivedAtMs,
    startMs: first.startTimeMs,
    endMs: first.endTimeMs,
    maxStartMs: first.startTimeMs,
    baseMs,
    phase: "started",
  };
  for (const a of byStart) {
    facts.firstSeenMs = Math.min(facts.firstSeenMs, a.receivedAtMs);
    facts.lastSeenMs = Math.max(facts.lastSeenMs, a.receivedAtMs);
    // a span its sender may not send is timed, but says nothing of who the task is or what it
    // may do, and binds no credential
    if (a.identityMismatch) continue;
    facts.startMs = Math.min(facts.startMs, a.startTimeMs);
    facts.endMs = Math.max(facts.endMs, a.endTimeMs);
    facts.maxStartMs = Math.max(facts.maxStartMs, a.startTimeMs);
    facts.agentId ??= a.agent.id;
    facts.agentName ??= a.agent.name;
    facts.spiffeId ??= a.agent.spiffeId;
    facts.intent ??= a.intent;
    facts.environment ??= a.environment;
    if (path.registeredScope) {
      putRegisteredScope(facts, path.registeredScope, path.registeredAtMs ?? a.receivedAtMs);
    } else if (!facts.scope && !facts.scopeError) {
      if (a.declaredScope) {
        facts.scope = a.declaredScope;
        facts.scopeSource = "span";
      } else if (a.declaredScopeError) facts.scopeError = a.declaredScopeError;
    }
    facts.parentTaskId ??= a.parentTaskId;
    if (isTaskRoot(a) && facts.phase !== "completed") {
      facts.phase = "completed";
      facts.completedAtMs = a.receivedAtMs;
    }
    for (const f of facetsOf(a)) {
      if (!path.facets.has(f)) {
        path.facets.add(f);
        placement.newFacets.push(f);
      }
    }
    if (a.credentialId && !path.credentials.has(a.credentialId)) {
      path.credentials.add(a.credentialId);
      placement.newCredentials.push(a.credentialId);
    }
  }
  if (facts.phase !== "completed") facts.phase = path.order.length > 1 ? "active" : "started";
  // drop the keys `??=` left undefined: the facts are stored as JSON and compared as such
  for (const k of Object.keys(facts) as (keyof TaskFacts)[]) if (facts[k] === undefined) delete facts[k];
  path.facts = facts;
  return JSON.stringify(facts) !== before;
}
