/**
 * What the console's task list and counts cost as the store fills: on the in-memory store
 * (embedded) and, with a Redis URL, on Redis. Per request, the median of `rounds`:
 * - baseline: the unfiltered list (one page of the index and its size), what the list cost
 *   before filtered totals;
 * - a status filter, an agent filter and `flagged` (each walks the matching index, at most
 *   20,000 tasks, to count its total);
 * - the counts per status and flagged (`GET /api/v1/task-counts`).
 *
 *   npm run bench:task-list -- [tasks] [rounds] [redis-url]
 */

import { FindingLog } from "../services/console/read-model.js";
import { recordActions } from "../services/pathfinder/pathfinder.js";
import { TaskStore } from "../services/pathfinder/task-store.js";
import { MemoryStore } from "../services/runtime/store/memory-store.js";
import { RedisStore } from "../services/runtime/store/redis-store.js";
import type { Store } from "../services/runtime/store/store.js";
import { agentAction } from "../test/support/actions.js";
import { aFinding } from "../test/support/findings.js";
import { fmt } from "./lib/workload.js";

const total = Number(process.argv[2] ?? 20_000);
const rounds = Number(process.argv[3] ?? 7);
const redisUrl = process.argv[4];

async function fill(store: Store): Promise<{ tasks: TaskStore; findings: FindingLog }> {
  const tasks = new TaskStore(store);
  const findings = new FindingLog(store);
  const now = Date.now();
  const hex = (n: number, len: number) => n.toString(16).padStart(len, "0");
  for (let i = 0; i < total; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(total, i + 200); j++)
      batch.push(
        agentAction({
          taskId: `task-${j}`,
          traceId: hex(j + 1, 32),
          spanId: hex(1, 16),
          agent: { id: `agent-${j % 10}` },
          startTimeMs: now - (total - j) * 10,
        }),
      );
    await recordActions(tasks, batch);
  }
  // one task in 20 flagged
  for (let j = 0; j < total; j += 20) await findings.record(aFinding({ id: `f-${j}`, taskId: `task-${j}` }));
  return { tasks, findings };
}

async function median(run: () => Promise<unknown>): Promise<number> {
  await run();
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)] as number;
}

async function measure(label: string, store: Store): Promise<void> {
  const t0 = performance.now();
  const { tasks, findings } = await fill(store);
  process.stderr.write(`bench:task-list: ${label}: ${fmt(total)} tasks stored in ${fmt(performance.now() - t0)} ms\n`);
  const page = { offset: 0, limit: 50 };
  const flagged = async (id: string) => (await findings.countForTask(id)) > 0;
  const cases: [string, () => Promise<unknown>][] = [
    ["baseline: unfiltered list (page + index size)", () => tasks.list(page)],
    ["status=started", () => tasks.list({ ...page, status: "started" })],
    ["agent=agent-3 (a tenth of the tasks)", () => tasks.list({ ...page, agentId: "agent-3" })],
    ["flagged=true", () => tasks.list({ ...page, accept: flagged })],
    ["counts per status and flagged", () => tasks.counts({}, flagged)],
  ];
  const baseline = await median(cases[0]?.[1] as () => Promise<unknown>);
  console.log(`\n${label}, ${fmt(total)} tasks, median of ${rounds}`);
  for (const [name, run] of cases) {
    const ms = name.startsWith("baseline") ? baseline : await median(run);
    console.log(`  ${name.padEnd(48)}${ms.toFixed(1).padStart(9)} ms  ${(ms / baseline).toFixed(1).padStart(7)} × baseline`);
  }
}

await measure("in-memory store (embedded)", new MemoryStore());
if (redisUrl) {
  const prefix = `bench-tasklist-${Date.now()}:`;
  const redis = new RedisStore({ url: redisUrl, keyPrefix: prefix });
  try {
    await measure(`Redis (${redisUrl})`, redis);
  } finally {
    await redis.close();
  }
}
