import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { Problem, Status, TaskLink, Time } from "../components.js";
import { useApi } from "../state.js";
import type { Credential, Revocation } from "../types.js";

/** At most this many tasks' credentials are read for one page of the ledger. */
const MAX_TASKS = 50;

/**
 * Each listed credential's status as its task's credentials say it now
 * (`/api/v1/tasks/:id/credentials`): a ledger entry says what the revocation did, the
 * credential's status whether it still works (recorded, suspended then resumed, …).
 */
const statusKey = (taskId: string, credentialId: string) => `${taskId}\u0000${credentialId}`;

function useCredentialStatus(revocations: Revocation[] | undefined): Map<string, string> {
  const [statuses, setStatuses] = useState(new Map<string, string>());
  const tasks = [...new Set((revocations ?? []).map((r) => r.taskId))].slice(0, MAX_TASKS);
  const key = tasks.join("|") + (revocations ?? []).map((r) => r.status).join("");
  useEffect(() => {
    let current = true;
    void Promise.all(
      tasks.map((t) =>
        api.get<{ credentials: Credential[] }>(`/tasks/${encodeURIComponent(t)}/credentials`).then(
          (r) => r.credentials,
          () => [] as Credential[],
        ),
      ),
    ).then((lists) => {
      // by task and credential: a credential used by more than one task has a status in each
      if (current)
        setStatuses(new Map(lists.flatMap((list, i) => list.map((c) => [statusKey(tasks[i] as string, c.credentialId), c.status]))));
    });
    return () => {
      current = false;
    };
  }, [key]);
  return statuses;
}

/**
 * The revocation ledger, newest first. `recorded` is not `revoked`: no credential store took
 * the revocation (none configured), so the credential may still work; the page says so.
 */
export function RevocationsPage() {
  const { data, error } = useApi<{ revocations: Revocation[]; total: number }>("/revocations?limit=200", ["revocations"]);
  const recorded = data?.revocations.filter((r) => r.status === "recorded").length ?? 0;
  const now = useCredentialStatus(data?.revocations);
  return (
    <>
      <h1>Revocation ledger</h1>
      <Problem error={error} />
      {data ? (
        <p class="summary">
          {data.total} revocation{data.total === 1 ? "" : "s"}
          {recorded > 0 ? (
            <span class="warn"> · {recorded} only recorded: no credential store took them, those credentials may still work</span>
          ) : null}
        </p>
      ) : null}
      {data && data.revocations.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th>Credential</th>
              <th>Store</th>
              <th>Revocation</th>
              <th>Credential now</th>
              <th>Trigger</th>
              <th>Decided by</th>
              <th>Task</th>
              <th>Attempts</th>
              <th>When</th>
            </tr>
          </thead>
          <tbody>
            {data.revocations.map((r) => {
              const credentialNow = now.get(statusKey(r.taskId, r.credentialId));
              return (
                <tr key={r.id} title={r.detail}>
                  <td class="mono">{r.credentialId}</td>
                  <td>{r.credentialStore}</td>
                  <td>
                    <Status status={r.status} /> {r.status === "recorded" ? <span class="warn">not revoked in a store</span> : null}
                  </td>
                  <td data-credential-status={credentialNow ?? ""}>
                    {credentialNow ? <Status status={credentialNow} /> : <span class="muted">—</span>}
                  </td>
                  <td>{r.trigger ?? "finding"}</td>
                  <td>{r.decidedBy ?? "—"}</td>
                  <td>
                    <TaskLink id={r.taskId} />
                  </td>
                  <td class="num">{r.attempts}</td>
                  <td>
                    <Time ms={r.completedAtMs ?? r.requestedAtMs} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
    </>
  );
}
