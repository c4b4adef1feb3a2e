import { createContext } from "preact";
import { useCallback, useContext, useEffect, useState } from "preact/hooks";
import { ApiError, api } from "./api.js";
import type { LiveEvent } from "./live.js";

/**
 * What every page shares: a version per kind of thing, bumped by each live event of that
 * kind (a page reads its data again when one it shows changes), and the clock for "3 min ago".
 */
export type Versions = Record<LiveEvent["kind"] | "auth", number>;

export interface Shared {
  versions: Versions;
  now: number;
  /** The API answered 401 or 403: the page asks for a token. */
  onAuthError: (status: number) => void;
}

export const SharedContext = createContext<Shared>({
  versions: { finding: 0, lifecycle: 0, tasks: 0, revocations: 0, approvals: 0, quarantine: 0, incidents: 0, auth: 0 },
  now: Date.now(),
  onAuthError: () => undefined,
});

export const useShared = () => useContext(SharedContext);

export interface Loaded<T> {
  data?: T;
  error?: string;
  loading: boolean;
  reload: () => void;
}

/**
 * GETs a path; again when it changes, when a live event of one of `kinds` arrives, or on
 * reload. The data shown stays until the new answer replaces it (no flicker).
 */
export function useApi<T>(path: string | undefined, kinds: (keyof Versions)[]): Loaded<T> {
  const { versions, onAuthError } = useShared();
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [manual, setManual] = useState(0);
  const stamp = [...kinds, "auth" as const].map((k) => versions[k]).join(":");
  useEffect(() => {
    if (!path) return;
    let current = true;
    setState((s) => ({ ...s, loading: true }));
    api
      .get<T>(path)
      .then((data) => current && setState({ data, loading: false }))
      .catch((err: unknown) => {
        if (!current) return;
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) onAuthError(err.status);
        setState((s) => ({ ...s, error: err instanceof Error ? err.message : String(err), loading: false }));
      });
    return () => {
      current = false;
    };
  }, [path, stamp, manual]);
  const reload = useCallback(() => setManual((n) => n + 1), []);
  return { ...state, reload };
}
