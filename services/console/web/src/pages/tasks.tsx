import { useEffect, useState } from "preact/hooks";
import { query } from "../api.js";
import { List, Problem, Status, TaskLink, Time } from "../components.js";
import { useApi } from "../state.js";
import type { TaskSummary } from "../types.js";

const STATUSES = ["started", "active", "idle", "completed", "revoked", "recorded"];
const PAGE = 50;
/** How often the counts are read again. */
const COUNTS_EVERY_MS = 10_000;

interface TaskCounts {
  countedAtMs: number;
  total: number;
  byStatus: Record<string, number>;
  flagged: number;
  isLowerBound?: boolean;
}

interface TaskList {
  tasks: TaskSummary[];
  total: number;
  totalIsLowerBound?: boolean;
  offset: number;
  limit: number;
}

/** The tasks, most recently active first, filtered by agent, status and flagged; live. */
export function TasksPage() {
  const [agent, setAgent] = useState("");
  const [status, setStatus] = useState("");
  const [flagged, setFlagged] = useState("");
  const [offset, setOffset] = useState(0);
  const path = `/tasks${query({ agent: agent.trim() || undefined, status, flagged, offset, limit: PAGE })}`;
  const { data, error } = useApi<TaskList>(path, ["tasks", "finding", "lifecycle", "revocations"]);
  // how many per status and flagged (for the agent asked for): each a shortcut to its filter.
  // Read again every 10 s, not at every live event: a count walks up to 20,000 tasks
  // (bench:task-list: about 0.3 s on the in-memory store at 20,000)
  const countsApi = useApi<TaskCounts>(`/task-counts${query({ agent: agent.trim() || undefined })}`, []);
  useEffect(() => {
    const timer = setInterval(countsApi.reload, COUNTS_EVERY_MS);
    return () => clearInterval(timer);
  }, [countsApi.reload]);
  const counts = countsApi.data;
  const pick = (nextStatus: string, nextFlagged: string) => () => {
    setStatus(nextStatus);
    setFlagged(nextFlagged);
    setOffset(0);
  };
  const plus = counts?.isLowerBound ? "+" : "";
  const filter = (set: (v: string) => void) => (e: Event) => {
    set((e.currentTarget as HTMLInputElement | HTMLSelectElement).value);
    setOffset(0);
  };
  return (
    <>
      <h1>Tasks</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Agent <input name="agent" value={agent} onChange={filter(setAgent)} placeholder="any agent" />
        </label>
        <label>
          Status{" "}
          <select name="status" value={status} onChange={filter(setStatus)}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Flagged{" "}
          <select name="flagged" value={flagged} onChange={filter(setFlagged)}>
            <option value="">any</option>
            <option value="true">with findings</option>
            <option value="false">without findings</option>
          </select>
        </label>
      </form>
      {counts ? (
        <p class="counts" data-testid="task-counts">
          <button type="button" class={status === "" && flagged === "" ? "chip on" : "chip"} onClick={pick("", "")}>
            all{" "}
            <strong>
              {counts.total.toLocaleString("en")}
              {plus}
            </strong>
          </button>
          {STATUSES.map((s) => (
            <button type="button" class={status === s ? "chip on" : "chip"} data-status={s} onClick={pick(s, "")}>
              {s} <strong>{(counts.byStatus[s] ?? 0).toLocaleString("en")}</strong>
            </button>
          ))}
          <button type="button" class={flagged === "true" ? "chip flag on" : "chip flag"} data-status="flagged" onClick={pick("", "true")}>
            ⚑ flagged <strong>{counts.flagged.toLocaleString("en")}</strong>
          </button>
          <span class="muted">
            counted <Time ms={counts.countedAtMs} />
          </span>
        </p>
      ) : null}
      <Problem error={error} />
      {data ? (
        <>
          <p class="summary" data-testid="task-count">
            {data.total}
            {data.totalIsLowerBound ? "+" : ""} {data.total === 1 ? "task matches" : "tasks match"}
            {data.tasks.length > 0 ? `; showing ${data.offset + 1}–${data.offset + data.tasks.length}` : ""}
          </p>
          <table class="tasks">
            <thead>
              <tr>
                <th>Task</th>
                <th>Status</th>
                <th>Agent</th>
                <th>Steps</th>
                <th>Findings</th>
                <th>Tools</th>
                <th>Last activity</th>
              </tr>
            </thead>
            <tbody>
              {data.tasks.map((t) => (
                <tr key={t.taskId} class={t.findings ? "flagged" : ""} data-task-id={t.taskId}>
                  <td>
                    <TaskLink id={t.taskId} />
                  </td>
                  <td>
                    <Status status={t.status} />
                  </td>
                  <td>{t.agentId ?? <List items={t.agents} />}</td>
                  <td class="num">{t.steps}</td>
                  <td class="num">{t.findings ? <strong class="flag">⚑ {t.findings}</strong> : "0"}</td>
                  <td>
                    <List items={t.tools} />
                  </td>
                  <td>
                    <Time ms={t.lastSeenMs} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <nav class="pager">
            <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
              ← Newer
            </button>
            <button type="button" disabled={offset + PAGE >= data.total} onClick={() => setOffset(offset + PAGE)}>
              Older →
            </button>
          </nav>
        </>
      ) : (
        !error && <p class="muted">Loading…</p>
      )}
    </>
  );
}
