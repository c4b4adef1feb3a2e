import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Admin } from "kafkajs";

/**
 * Child processes for the benchmarks that run the pipeline as it is deployed: one process
 * per service (`driftwatch run <service>`, from source), or the baseline's relays. Their
 * stderr (logs) goes to a file under the OS temp folder (driftwatch-bench/), or to this
 * process's with BENCH_LOG=1; BENCH_PROF=pathfinder,detector writes CPU profiles there too.
 */
export interface Child {
  name: string;
  process: ChildProcess;
  log: string;
}

const LOG_DIR = join(tmpdir(), "driftwatch-bench");

/** Children still running: killed if this process exits first (an error, Ctrl-C), so none is left behind. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

export function startChild(name: string, args: string[], env: Record<string, string>): Child {
  mkdirSync(LOG_DIR, { recursive: true });
  const log = join(LOG_DIR, `${name}-${process.pid}.log`);
  const inherit = process.env.BENCH_LOG === "1";
  // DRIFTWATCH_* settings in this environment reach the child too (to try one), unless `env` sets them
  const base = process.env;
  // BENCH_PROF=<name,…>: a CPU profile of those children, written to the log folder when they exit
  const profile = (process.env.BENCH_PROF ?? "").split(",").includes(name) ? ["--cpu-prof", `--cpu-prof-dir=${join(LOG_DIR, "prof")}`] : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", ...args], {
    env: { ...base, ...env },
    stdio: ["ignore", "ignore", inherit ? "inherit" : "pipe"],
  });
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!inherit) child.stderr?.pipe(createWriteStream(log));
  if (process.env.BENCH_LOG === "1") process.stderr.write(`bench: ${name} is pid ${child.pid}\n`);
  child.once("exit", (code, signal) => {
    if (code !== 0 && code !== null && signal === null) process.stderr.write(`bench: ${name} exited with ${code} (log: ${log})\n`);
  });
  return { name, process: child, log };
}

/** A Driftwatch service as `driftwatch run <service>` runs it (its ops port on any free port: many run on this one host). */
export function startService(name: string, env: Record<string, string>, label = name): Child {
  return startChild(label, ["services/cli/main.ts", "run", name], { DRIFTWATCH_OPS_PORT: "0", ...env });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once every child has exited. */
export async function stopChildren(children: Child[], graceMs = 15_000): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.process.exitCode !== null || c.process.signalCode !== null) return resolve();
          const kill = setTimeout(() => c.process.kill("SIGKILL"), graceMs);
          c.process.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          c.process.kill("SIGTERM");
        }),
    ),
  );
}

/** Waits until each consumer group is Stable with `members` members (one by default), each with partitions. */
export async function waitForGroups(
  admin: Admin,
  groups: string[],
  children: Child[],
  { timeoutMs = 120_000, pollMs = 250, members = 1 }: { timeoutMs?: number; pollMs?: number; members?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = children.find((c) => c.process.exitCode !== null);
    if (dead) throw new Error(`${dead.name} exited before its consumer group was ready (log: ${dead.log})`);
    const { groups: described } = await admin.describeGroups(groups);
    if (described.every((g) => g.state === "Stable" && g.members.length === members && g.members.every((m) => m.memberAssignment.length)))
      return;
    if (Date.now() > deadline)
      throw new Error(`consumer groups not ready after ${timeoutMs} ms: ${described.map((g) => `${g.groupId} ${g.state}`).join(", ")}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Messages not yet consumed by `group` on `topic` (summed over partitions). */
export async function lagOf(admin: Admin, group: string, topic: string): Promise<number> {
  const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
  let lag = 0;
  for (const p of ends) {
    const c = Number(committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? -1);
    lag += Number(p.high) - Math.max(0, c);
  }
  return lag;
}

/** CPU time a process has used so far, in seconds (Linux /proc; NaN elsewhere or when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the fields after the command name (which may hold spaces): utime and stime are the 12th and 13th
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** The whole machine's busy and total CPU time so far, in seconds summed over its cores (Linux /proc/stat). */
export function machineCpuSeconds(): { busy: number; total: number } {
  try {
    const [, ...values] = (readFileSync("/proc/stat", "utf8").split("\n")[0] as string).trim().split(/\s+/);
    const n = values.map(Number);
    const total = n.reduce((a, b) => a + b, 0);
    const idle = (n[3] ?? 0) + (n[4] ?? 0);
    return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

/** The Kafka broker's and Redis server's process ids on this machine, when they run here (read from /proc). */
export function serverPids(): { kafka?: number; redis?: number } {
  const out: { kafka?: number; redis?: number } = {};
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return out;
  }
  for (const e of entries) {
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${e}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      continue;
    }
    if (/\skafka\.Kafka\s/.test(cmd)) out.kafka = Number(e);
    else if (cmd.startsWith("redis-server") && out.redis === undefined) out.redis = Number(e); // the first: the plain one (the TLS one starts after)
  }
  return out;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux
