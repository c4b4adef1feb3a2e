import { render } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { token } from "./api.js";
import { connectLive, type LiveEvent, type LiveState } from "./live.js";
import { ApprovalsPage } from "./pages/approvals.js";
import { IncidentsPage } from "./pages/incidents.js";
import { RevocationsPage } from "./pages/revocations.js";
import { TaskPage } from "./pages/task.js";
import { TasksPage } from "./pages/tasks.js";
import { SharedContext, type Versions } from "./state.js";

/**
 * The Driftwatch web console: one page, routed by the URL's fragment (`#/tasks/<id>`), so the
 * server serves one file and a link to a task can be shared. Reads the API with the token in
 * the tab's sessionStorage; live updates bump the versions the pages watch.
 */
type Route = { page: "tasks" } | { page: "task"; id: string } | { page: "incidents" } | { page: "revocations" } | { page: "approvals" };

/** A link's part as it was encoded; as it stands when it is not valid percent-encoding (a page, not a blank screen). */
function decodeOr(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function routeOf(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/");
  if (parts[0] === "tasks" && parts[1]) return { page: "task", id: decodeOr(parts[1]) };
  if (parts[0] === "incidents" || parts[0] === "revocations" || parts[0] === "approvals") return { page: parts[0] };
  return { page: "tasks" };
}

const NAV: [Route["page"], string, string][] = [
  ["tasks", "#/tasks", "Tasks"],
  ["incidents", "#/incidents", "Incidents"],
  ["revocations", "#/revocations", "Revocations"],
  ["approvals", "#/approvals", "Approvals & quarantine"],
];

const ZERO: Versions = { finding: 0, lifecycle: 0, tasks: 0, revocations: 0, approvals: 0, quarantine: 0, incidents: 0, auth: 0 };

/** How often live events are applied: a burst of findings makes one read per page, not one each. */
const REFRESH_MS = 1_000;

/** Every kind changed (but the token): the pages read their data again. */
const bumpAll = (v: Versions): Versions =>
  Object.fromEntries(Object.entries(v).map(([k, n]) => [k, k === "auth" ? n : n + 1])) as unknown as Versions;

function App() {
  const [route, setRoute] = useState(routeOf(location.hash));
  const [versions, setVersions] = useState<Versions>(ZERO);
  const [now, setNow] = useState(Date.now());
  const [live, setLive] = useState<LiveState>("connecting");
  const [needsToken, setNeedsToken] = useState(false);
  const [hasToken, setHasToken] = useState(token.get() !== null);

  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash));
    window.addEventListener("hashchange", onHash);
    const clock = setInterval(() => setNow(Date.now()), 10_000);
    return () => {
      window.removeEventListener("hashchange", onHash);
      clearInterval(clock);
    };
  }, []);

  // one live stream per token: a new token starts it again
  useEffect(() => {
    let connectedBefore = false;
    // events coalesced: a page reads again at most once a second however many findings arrive
    const pending = new Set<LiveEvent["kind"]>();
    const flush = setInterval(() => {
      if (pending.size === 0) return;
      const kinds = [...pending];
      pending.clear();
      setVersions((v) => {
        const next = { ...v };
        for (const k of kinds) next[k] = v[k] + 1;
        return next;
      });
    }, REFRESH_MS);
    const stop = connectLive(
      (e) => pending.add(e.kind),
      (s) => {
        setLive(s);
        if (s === "unauthorized") setNeedsToken(true);
        // back after a drop: what changed meanwhile sent no event here, so everything is read again
        if (s === "live" && connectedBefore) setVersions((v) => bumpAll(v));
        if (s === "live") connectedBefore = true;
      },
    );
    return () => {
      clearInterval(flush);
      stop();
    };
  }, [versions.auth]);

  const onAuthError = useCallback(() => setNeedsToken(true), []);
  const saveToken = (value: string) => {
    if (value) token.set(value);
    else token.clear();
    setHasToken(value !== "");
    setNeedsToken(false);
    setVersions((v) => ({ ...v, auth: v.auth + 1 }));
  };

  return (
    <SharedContext.Provider value={{ versions, now, onAuthError }}>
      <header>
        <a class="brand" href="#/tasks">
          Driftwatch
        </a>
        <nav>
          {NAV.map(([page, href, label]) => (
            <a href={href} class={route.page === page || (page === "tasks" && route.page === "task") ? "active" : ""}>
              {label}
            </a>
          ))}
        </nav>
        <span class={`live live-${live}`} data-testid="live" title="Live updates (server-sent events)">
          {live === "live"
            ? "● live"
            : live === "connecting"
              ? "○ connecting"
              : live === "unauthorized"
                ? "○ needs a token"
                : "○ offline, retrying"}
        </span>
        <TokenBox needed={needsToken} hasToken={hasToken} onSave={saveToken} />
      </header>
      <main>
        {route.page === "tasks" ? <TasksPage /> : null}
        {/* a page of its own per task: another task's data is never shown while this one's loads */}
        {route.page === "task" ? <TaskPage key={route.id} id={route.id} /> : null}
        {route.page === "incidents" ? <IncidentsPage /> : null}
        {route.page === "revocations" ? <RevocationsPage /> : null}
        {route.page === "approvals" ? <ApprovalsPage /> : null}
      </main>
    </SharedContext.Provider>
  );
}

/**
 * The API token (DRIFTWATCH_API_TOKEN, a named token, or an OIDC access token), kept in this
 * tab's sessionStorage and sent as `Authorization: Bearer`. Shown when the API asks for one.
 */
function TokenBox({ needed, hasToken, onSave }: { needed: boolean; hasToken: boolean; onSave: (t: string) => void }) {
  const [value, setValue] = useState("");
  const [open, setOpen] = useState(false);
  if (!needed && !open)
    return (
      <button type="button" class="link" onClick={() => setOpen(true)}>
        {hasToken ? "Token ✓" : "Set token"}
      </button>
    );
  return (
    <form
      class={needed ? "token needed" : "token"}
      onSubmit={(e) => {
        e.preventDefault();
        onSave(value.trim());
        setValue("");
        setOpen(false);
      }}
    >
      {needed ? <span class="warn">The API needs a token (or this one lacks the role).</span> : null}
      <input
        type="password"
        name="token"
        autocomplete="off"
        placeholder="API token"
        aria-label="API token"
        value={value}
        onInput={(e) => setValue((e.currentTarget as HTMLInputElement).value)}
      />
      <button type="submit">Use token</button>
      {hasToken ? (
        <button type="button" onClick={() => onSave("")}>
          Forget
        </button>
      ) : null}
    </form>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
