import { useState } from "preact/hooks";
import { ApiError, api } from "../api.js";
import { Problem, Status, TaskLink, Time } from "../components.js";
import { useApi, useShared } from "../state.js";
import type { Approval, QuarantineMark } from "../types.js";

/** Responses held for a human: approve or reject each (a responder's right); quarantined agents to lift. */
export function ApprovalsPage() {
  const approvals = useApi<{ approvals: Approval[] }>("/approvals?limit=100", ["approvals", "revocations"]);
  const quarantine = useApi<{ agents: QuarantineMark[] }>("/quarantine", ["quarantine"]);
  const pending = approvals.data?.approvals.filter((a) => a.status === "pending") ?? [];
  const decided = approvals.data?.approvals.filter((a) => a.status !== "pending") ?? [];
  return (
    <>
      <h1>Approvals</h1>
      <Problem error={approvals.error} />
      <h2>
        Waiting for a decision <span class="count">{pending.length}</span>
      </h2>
      {pending.length === 0 ? <p class="muted">Nothing waits for a decision.</p> : null}
      {pending.map((a) => (
        <PendingApproval key={a.id} approval={a} onDone={approvals.reload} />
      ))}
      <h2>
        Decided <span class="count">{decided.length}</span>
      </h2>
      {decided.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th>Task</th>
              <th>Rule</th>
              <th>Status</th>
              <th>By</th>
              <th>When</th>
            </tr>
          </thead>
          <tbody>
            {decided.map((a) => (
              <tr key={a.id} data-approval-id={a.id}>
                <td>
                  <TaskLink id={a.taskId} />
                </td>
                <td>{a.rule}</td>
                <td>
                  <Status status={a.status} />
                </td>
                <td>{a.decidedBy ?? "—"}</td>
                <td>
                  <Time ms={a.decidedAtMs ?? a.expiresAtMs} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}

      <h1>Quarantine</h1>
      <Problem error={quarantine.error} />
      {quarantine.data && quarantine.data.agents.length === 0 ? <p class="muted">No agent is quarantined.</p> : null}
      {quarantine.data?.agents.map((q) => (
        <Quarantined key={q.agentId} mark={q} onDone={quarantine.reload} />
      ))}
    </>
  );
}

function useAction(onDone: () => void) {
  const { onAuthError } = useShared();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const run = async (path: string, body: unknown) => {
    setBusy(true);
    setError(undefined);
    try {
      await api.post(path, body);
      onDone();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onAuthError(err.status);
      setError(
        err instanceof ApiError && err.status === 403 ? `Not allowed: ${err.message}` : err instanceof Error ? err.message : String(err),
      );
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

function PendingApproval({ approval: a, onDone }: { approval: Approval; onDone: () => void }) {
  const [comment, setComment] = useState("");
  const { busy, error, run } = useAction(onDone);
  const decide = (decision: "approve" | "reject") =>
    run(`/approvals/${encodeURIComponent(a.id)}/decision`, { decision, ...(comment.trim() ? { comment: comment.trim() } : {}) });
  return (
    <div class="card" data-approval-id={a.id}>
      <p>
        Task <TaskLink id={a.taskId} /> {a.agentId ? <>of {a.agentId}</> : null}: rule <strong>{a.rule}</strong> proposes{" "}
        <strong>{a.proposed}</strong>
        {a.dryRun ? " (dry run)" : ""}. Without an answer by <Time ms={a.expiresAtMs} />: <strong>{a.onTimeout}</strong>.
      </p>
      <p class="muted">Findings: {a.findingIds.join(", ")}</p>
      <label>
        Comment <input value={comment} maxLength={2000} onInput={(e) => setComment((e.currentTarget as HTMLInputElement).value)} />
      </label>{" "}
      <button type="button" class="approve" disabled={busy} onClick={() => decide("approve")}>
        Approve ({a.proposed})
      </button>{" "}
      <button type="button" class="reject" disabled={busy} onClick={() => decide("reject")}>
        Reject
      </button>
      <Problem error={error} />
    </div>
  );
}

function Quarantined({ mark: q, onDone }: { mark: QuarantineMark; onDone: () => void }) {
  const [comment, setComment] = useState("");
  const { busy, error, run } = useAction(onDone);
  return (
    <div class="card" data-agent-id={q.agentId}>
      <p>
        Agent <strong>{q.agentId}</strong> quarantined <Time ms={q.atMs} /> for task <TaskLink id={q.taskId} /> (finding{" "}
        <span class="mono">{q.findingId}</span>
        {q.by ? `, by ${q.by}` : ""}).
      </p>
      <label>
        Comment <input value={comment} maxLength={2000} onInput={(e) => setComment((e.currentTarget as HTMLInputElement).value)} />
      </label>{" "}
      <button
        type="button"
        disabled={busy}
        onClick={() => run(`/agents/${encodeURIComponent(q.agentId)}/quarantine/lift`, comment.trim() ? { comment: comment.trim() } : {})}
      >
        Lift quarantine
      </button>
      <Problem error={error} />
    </div>
  );
}
