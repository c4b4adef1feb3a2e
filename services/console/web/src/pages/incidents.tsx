import { Problem, Severity, Status, TaskLink, Time } from "../components.js";
import { useApi } from "../state.js";
import type { Incident } from "../types.js";

/** The notifier's incidents, one per task, newest first. */
export function IncidentsPage() {
  const { data, error } = useApi<{ incidents: Incident[] }>("/incidents?limit=100", ["incidents", "finding"]);
  return (
    <>
      <h1>Incidents</h1>
      <Problem error={error} />
      {data && data.incidents.length === 0 ? <p class="muted">No incidents.</p> : null}
      {data && data.incidents.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th>Incident</th>
              <th>Severity</th>
              <th>Status</th>
              <th>Task</th>
              <th>Findings</th>
              <th>Revocations</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {data.incidents.map((i) => (
              <tr key={i.id}>
                <td>{i.title}</td>
                <td>
                  <Severity severity={i.severity} />
                </td>
                <td>
                  <Status status={i.status} />
                </td>
                <td>
                  <TaskLink id={i.taskId} />
                </td>
                <td class="num">{i.findingCount}</td>
                <td class="num">{i.revocations.length}</td>
                <td>
                  <Time ms={i.updatedAtMs} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </>
  );
}
