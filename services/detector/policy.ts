import { createHash } from "node:crypto";
import { type FSWatcher, readdirSync, readFileSync, statSync, watch } from "node:fs";
import { join, relative } from "node:path";
import type { Logger } from "pino";
import { isMap, isScalar, LineCounter, parseAllDocuments } from "yaml";
import type { AgentProfile, Redaction, ResponsePolicy, RuleSetting } from "../../schemas/policy.js";
import { PolicyFile } from "../../schemas/policy.js";

/**
 * Policy as code: a folder of YAML files (agent profiles and rule settings), validated
 * with the zod schema in schemas/policy.ts. Every error names its file and line.
 */
export interface Policy {
  /** Content hash of the folder: which policy produced a finding. */
  version: string;
  profiles: AgentProfile[];
  rules: Map<string, RuleSetting>;
  /** The union of every file's redaction settings. */
  redaction: Redaction;
  /** Every file's response rules, in file order; a dry run when any file asks for one. */
  responses?: ResponsePolicy;
  files: string[];
}

export interface PolicyProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

export class PolicyError extends Error {
  constructor(readonly problems: PolicyProblem[]) {
    super(problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join("\n"));
    this.name = "PolicyError";
  }
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith(".")) continue;
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (/\.ya?ml$/i.test(entry.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Parses one policy file's text; problems carry the file's line and column. */
export function parsePolicyText(
  text: string,
  file: string,
): { policy?: PolicyFile; problems: PolicyProblem[]; lineOf?: (path: (string | number)[]) => { line: number; column: number } } {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const problems: PolicyProblem[] = [];
  const at = (offset: number | undefined) => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };
  if (!Array.isArray(docs) || docs.length === 0) return { problems: [{ file, line: 1, column: 1, message: "empty policy file" }] };
  if (docs.length !== 1) {
    return { problems: [{ file, ...at(docs[1]?.range[0]), message: "one YAML document per policy file" }] };
  }
  const doc = docs[0];
  if (!doc) return { problems: [{ file, line: 1, column: 1, message: "empty policy file" }] };
  for (const err of doc.errors) problems.push({ file, ...at(err.pos[0]), message: err.message.split("\n")[0] ?? err.message });
  if (problems.length > 0) return { problems };
  // the deepest YAML node that exists on a path, for its line
  const lineOf = (path: (string | number)[]) => {
    let node: unknown;
    for (let n = path.length; n >= 0 && !node; n--) node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    return at((node as { range?: [number, number, number] } | undefined)?.range?.[0]);
  };
  const parsed = PolicyFile.safeParse(doc.toJS());
  if (parsed.success) return { policy: parsed.data, problems, lineOf };
  for (const issue of parsed.error.issues) {
    const path = issue.path as (string | number)[];
    let where = lineOf(path);
    if (issue.code === "unrecognized_keys" && issue.keys[0] !== undefined) {
      // point at the unknown key itself, not at the mapping that holds it
      const map = path.length === 0 ? doc.contents : doc.getIn(path, true);
      const key = isMap(map) ? map.items.find((pair) => isScalar(pair.key) && pair.key.value === issue.keys[0])?.key : undefined;
      if (isScalar(key)) where = at(key.range?.[0]);
    }
    const prefix = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    problems.push({ file, ...where, message: `${prefix}${issue.message}` });
  }
  return { problems };
}

/** Loads and validates a policy folder (or a single file). Throws PolicyError with every problem found. */
export function loadPolicy(path: string): Policy {
  const isDir = statSync(path).isDirectory();
  const files = isDir ? yamlFiles(path) : [path];
  const problems: PolicyProblem[] = [];
  const hash = createHash("sha256");
  const profiles: AgentProfile[] = [];
  const rules = new Map<string, RuleSetting>();
  const redaction: Redaction = { attributes: [], argumentKeys: [] };
  const responses: ResponsePolicy = { dryRun: false, rules: [] };
  const responseOrigin = new Map<string, string>();
  const profileOrigin = new Map<string, string>();
  if (files.length === 0) problems.push({ file: path, line: 0, column: 0, message: "no policy files (*.yaml, *.yml) found" });
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    const name = isDir ? relative(path, file) : file;
    hash.update(name).update("\0").update(text).update("\0");
    const result = parsePolicyText(text, name);
    problems.push(...result.problems);
    for (const [i, profile] of (result.policy?.profiles ?? []).entries()) {
      const prior = profileOrigin.get(profile.id);
      if (prior) {
        const where = result.lineOf?.(["profiles", i, "id"]) ?? { line: 0, column: 0 };
        problems.push({ file: name, ...where, message: `profile "${profile.id}" is already defined in ${prior}` });
      }
      profileOrigin.set(profile.id, name);
      profiles.push(profile);
    }
    for (const rule of result.policy?.rules ?? []) rules.set(rule.id, rule);
    redaction.attributes.push(...(result.policy?.redaction?.attributes ?? []));
    redaction.argumentKeys.push(...(result.policy?.redaction?.argumentKeys ?? []));
    if (result.policy?.responses?.dryRun) responses.dryRun = true;
    for (const [i, rule] of (result.policy?.responses?.rules ?? []).entries()) {
      const prior = responseOrigin.get(rule.id);
      if (prior) {
        const where = result.lineOf?.(["responses", "rules", i, "id"]) ?? { line: 0, column: 0 };
        problems.push({ file: name, ...where, message: `response rule "${rule.id}" is already defined in ${prior}` });
      }
      responseOrigin.set(rule.id, name);
      responses.rules.push(rule);
    }
  }
  if (problems.length > 0) throw new PolicyError(problems);
  return { version: hash.digest("hex").slice(0, 12), profiles, rules, redaction, responses, files };
}

/** Whether a SPIFFE id matches a pattern (`*` within one path segment, `**` across segments). */
export const spiffeMatches = (pattern: string, id: string): boolean => globToRegExp(pattern).test(id);

/** SPIFFE id patterns: `*` matches within one path segment, `**` across segments. */
function globToRegExp(pattern: string): RegExp {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\?]/g, "\\$&")
    .split("**")
    .map((part) => part.replace(/\*/g, "[^/]*"))
    .join(".*");
  return new RegExp(`^${escaped}$`);
}

/** The profile of an agent: an exact agent id match first, then the first SPIFFE pattern that matches. */
export function profileFor(policy: Policy, agent: { id?: string; spiffeId?: string }): AgentProfile | undefined {
  if (agent.id) {
    const byId = policy.profiles.find((p) => p.match.agentIds.includes(agent.id as string));
    if (byId) return byId;
  }
  if (agent.spiffeId) {
    return policy.profiles.find((p) => p.match.spiffeIds.some((pat) => globToRegExp(pat).test(agent.spiffeId as string)));
  }
  return undefined;
}

/**
 * Holds the policy in force and reloads it when its files change. A broken edit is
 * reported and the last good policy stays in force.
 */
export class PolicyHolder {
  private policy: Policy;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
  ) {
    this.policy = loadPolicy(path);
    logger.info({ path, version: this.policy.version, profiles: this.policy.profiles.length }, "policy loaded");
  }

  get current(): Policy {
    return this.policy;
  }

  reload(): boolean {
    try {
      const next = loadPolicy(this.path);
      if (next.version !== this.policy.version) {
        this.policy = next;
        this.logger.info({ version: next.version, profiles: next.profiles.length }, "policy reloaded");
      }
      return true;
    } catch (err) {
      this.logger.error(
        { problems: (err as PolicyError).problems ?? String(err) },
        "policy change rejected; previous policy stays in force",
      );
      return false;
    }
  }

  watch(): void {
    if (this.watcher) return;
    this.watcher = watch(this.path, { recursive: true }, () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), 200);
    });
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
