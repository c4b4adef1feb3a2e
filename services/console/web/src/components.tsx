import type { ComponentChildren } from "preact";
import { useShared } from "./state.js";
import { ago, iso } from "./time.js";

/** A time as ISO (UTC) with "3 min ago" beside it; the exact epoch ms on hover. */
export function Time({ ms }: { ms: number | undefined }) {
  const { now } = useShared();
  if (ms === undefined) return <span class="muted">—</span>;
  return (
    <time dateTime={new Date(ms).toISOString()} title={`${new Date(ms).toISOString()} (${ms} ms)`}>
      {iso(ms)} <span class="muted">({ago(ms, now)})</span>
    </time>
  );
}

export function Status({ status }: { status: string }) {
  return <span class={`badge status-${status}`}>{status}</span>;
}

export function Severity({ severity }: { severity: string }) {
  return <span class={`badge severity-${severity}`}>{severity}</span>;
}

export function TaskLink({ id }: { id: string }) {
  return (
    <a href={`#/tasks/${encodeURIComponent(id)}`} class="mono">
      {id}
    </a>
  );
}

export function List({ items }: { items: string[] | undefined }) {
  if (!items || items.length === 0) return <span class="muted">—</span>;
  return <>{items.join(", ")}</>;
}

export function Problem({ error }: { error: string | undefined }) {
  return error ? (
    <p class="problem" role="alert">
      {error}
    </p>
  ) : null;
}

export function Section({ title, children, count }: { title: string; children: ComponentChildren; count?: number }) {
  return (
    <section>
      <h2>
        {title}
        {count !== undefined ? <span class="count">{count}</span> : null}
      </h2>
      {children}
    </section>
  );
}

export function Json({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}
