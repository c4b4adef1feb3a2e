import { Problem, Status, TaskLink, Time } from "../components.js";
import { useApi } from "../state.js";
import type { Revocation } from "../types.js";

/**
 * The revocation ledger, newest first. `recorded` is not `revoked`: no credential store took
 * the revocation (none configured), so the credential may still work; the page says so.
 */
export function RevocationsPage() {
  const { data, error } = useApi<{ revocations: Revocation[]; total: number }>("/revocations?limit=200", ["revocations"]);
  const recorded = data?.revocations.filter((r) => r.status === "recorded").length ?? 0;
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
              <th>Status</th>
              <th>Trigger</th>
              <th>Decided by</th>
              <th>Task</th>
              <th>Attempts</th>
              <th>When</th>
            </tr>
          </thead>
          <tbody>
            {data.revocations.map((r) => (
              <tr key={r.id} title={r.detail}>
                <td class="mono">{r.credentialId}</td>
                <td>{r.credentialStore}</td>
                <td>
                  <Status status={r.status} /> {r.status === "recorded" ? <span class="warn">not revoked in a store</span> : null}
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
            ))}
          </tbody>
        </table>
      ) : null}
    </>
  );
}
