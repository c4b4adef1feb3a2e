import { Json, List, Problem, Section, Severity, Status, TaskLink, Time } from "../components.js";
import { useApi } from "../state.js";
import { duration } from "../time.js";
import type { Finding, Step, TaskDetail, TreeNode } from "../types.js";

/** A task: its summary, delegation, path as a timeline (flagged steps with their findings), credentials, revocations. */
export function TaskPage({ id }: { id: string }) {
  const { data, error } = useApi<TaskDetail>(`/tasks/${encodeURIComponent(id)}`, ["tasks", "finding", "lifecycle", "revocations"]);
  if (!data) return error ? <Problem error={error} /> : <p class="muted">Loading…</p>;
  const { task, delegation, path, findings, credentials, revocations, lifecycle } = data;
  const byId = new Map(findings.map((f) => [f.id, f]));
  return (
    <>
      <p>
        <a href="#/tasks">← Tasks</a>
      </p>
      <h1>
        Task <span class="mono">{task.taskId}</span> <Status status={task.status} />
      </h1>
      <Problem error={error} />
      <dl class="facts">
        <dt>Agent</dt>
        <dd>{task.agentId ?? "—"}</dd>
        <dt>Agents</dt>
        <dd>
          <List items={task.agents} />
        </dd>
        <dt>Tools</dt>
        <dd>
          <List items={task.tools} />
        </dd>
        <dt>Data classifications</dt>
        <dd>
          <List items={task.dataClassifications} />
        </dd>
        <dt>Environments</dt>
        <dd>
          <List items={task.environments} />
        </dd>
        <dt>Destinations</dt>
        <dd>
          <List items={task.destinations} />
        </dd>
        {task.intent ? (
          <>
            <dt>Intent</dt>
            <dd>{task.intent}</dd>
          </>
        ) : null}
        <dt>Started</dt>
        <dd>
          <Time ms={task.startMs} />
        </dd>
        <dt>Last activity</dt>
        <dd>
          <Time ms={task.lastSeenMs} />
        </dd>
        <dt>Duration</dt>
        <dd>{duration(task.durationMs)}</dd>
        <dt>Steps / findings</dt>
        <dd>
          {task.steps} / <strong class={findings.length ? "flag" : ""}>{findings.length}</strong>
        </dd>
      </dl>

      <Section title="Delegation">
        {delegation.lineage.length > 0 ? (
          <p>
            Delegated by:{" "}
            {delegation.lineage.map((h, i) => (
              <span key={h.taskId}>
                {i > 0 ? " → " : ""}
                <TaskLink id={h.taskId} /> {h.agentId ? <span class="muted">({h.agentId})</span> : null}
              </span>
            ))}{" "}
            → <span class="mono">{task.taskId}</span>
          </p>
        ) : (
          <p class="muted">Not delegated by another task.</p>
        )}
        <ul class="tree">
          <Tree node={delegation.tree} current={task.taskId} />
        </ul>
      </Section>

      <Section title="Path" count={path.length}>
        <ol class="timeline" data-testid="path">
          {path.map((s) => (
            <StepItem key={s.id} step={s} findings={s.findings.map((f) => byId.get(f)).filter((f): f is Finding => f !== undefined)} />
          ))}
        </ol>
      </Section>

      <Section title="Credentials" count={credentials.length}>
        {credentials.length === 0 ? (
          <p class="muted">None registered or used.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Credential</th>
                <th>Store</th>
                <th>Status</th>
                <th>Revocation</th>
              </tr>
            </thead>
            <tbody>
              {credentials.map((c) => (
                <tr key={c.credentialId}>
                  <td class="mono">{c.credentialId}</td>
                  <td>{c.store ?? "—"}</td>
                  <td>
                    <Status status={c.status} />
                    {c.boundTo ? (
                      <>
                        {" "}
                        bound to <TaskLink id={c.boundTo} />
                      </>
                    ) : null}
                  </td>
                  <td>
                    {c.revocation ? (
                      <>
                        {c.revocation.status} ({c.revocation.trigger ?? "?"}, {c.revocation.decidedBy ?? "?"}){" "}
                        <Time ms={c.revocation.completedAtMs} />
                        {c.revocation.status === "recorded" ? (
                          <div class="warn">recorded only: no credential store took it, the credential may still work</div>
                        ) : null}
                      </>
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>

      <Section title="Revocations" count={revocations.length}>
        {revocations.length === 0 ? (
          <p class="muted">None.</p>
        ) : (
          <ul>
            {revocations.map((r) => (
              <li key={r.id}>
                <span class="mono">{r.credentialId}</span> via {r.credentialStore}: <Status status={r.status} /> — {r.trigger ?? "finding"}{" "}
                by {r.decidedBy ?? "?"} <Time ms={r.completedAtMs ?? r.requestedAtMs} />
              </li>
            ))}
          </ul>
        )}
      </Section>

      {lifecycle && lifecycle.length > 0 ? (
        <Section title="Lifecycle" count={lifecycle.length}>
          <ul>
            {lifecycle.map((e) => (
              <li key={e.id}>
                <strong>{e.trigger}</strong>: {e.detail} <Time ms={e.atMs} />
              </li>
            ))}
          </ul>
        </Section>
      ) : null}
    </>
  );
}

function Tree({ node, current }: { node: TreeNode; current: string }) {
  return (
    <li>
      {node.taskId === current ? <strong class="mono">{node.taskId}</strong> : <TaskLink id={node.taskId} />}{" "}
      <span class="muted">
        {node.agentId ?? ""} {node.status ? `· ${node.status}` : ""} {node.steps !== undefined ? `· ${node.steps} steps` : ""}
      </span>
      {node.children.length > 0 ? (
        <ul>
          {node.children.map((c) => (
            <Tree key={c.taskId} node={c} current={current} />
          ))}
        </ul>
      ) : null}
    </li>
  );
}

/** One step of the path, numbered from 1; a flagged step shows each finding's explanation and evidence. */
function StepItem({ step, findings }: { step: Step; findings: Finding[] }) {
  const flagged = findings.length > 0;
  return (
    <li class={flagged ? "step flagged" : "step"} data-step={step.index + 1} data-flagged={flagged ? "true" : "false"}>
      <div class="step-head">
        <span class="step-no">{step.index + 1}</span>
        <span class="step-what">
          <strong>{step.tool?.name ?? step.operation ?? step.name}</strong> <span class="muted">{step.operation ?? ""}</span>
        </span>
        <span class="step-agent">{step.agent.id ?? step.agent.name ?? step.agent.spiffeId ?? "?"}</span>
        <Time ms={step.startTimeMs} />
      </div>
      <div class="step-facts">
        {step.dataClassification ? <span class="chip">data: {step.dataClassification}</span> : null}
        {step.environment ? <span class="chip">env: {step.environment}</span> : null}
        {step.destination?.address || step.destination?.url ? (
          <span class="chip">to: {step.destination.url ?? step.destination.address}</span>
        ) : null}
        {step.credentialId ? <span class="chip mono">credential: {step.credentialId}</span> : null}
        {step.status === "error" ? <span class="chip warn">error</span> : null}
        <span class="chip">{duration(step.endTimeMs - step.startTimeMs)}</span>
      </div>
      {findings.map((f) => (
        <div class="finding" key={f.id} data-finding-id={f.id}>
          <div>
            <Severity severity={f.severity} /> <strong>{f.ruleId}</strong>{" "}
            <span class="muted">
              ({f.kind}, {f.mode})
            </span>
          </div>
          <p class="explanation">{f.explanation}</p>
          <details open>
            <summary>Evidence</summary>
            <div class="evidence">
              <div>
                <h4>Observed</h4>
                <Json value={f.evidence.observed} />
              </div>
              <div>
                <h4>Expected</h4>
                <Json value={f.evidence.expected} />
              </div>
            </div>
          </details>
        </div>
      ))}
    </li>
  );
}
