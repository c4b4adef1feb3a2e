import { authHeaders } from "./api.js";

/**
 * Live updates: `GET /api/v1/events` read as a server-sent event stream through fetch (not
 * EventSource, which cannot send the Authorization header: a token would have to go in the
 * URL, and URLs get logged). Reconnects with backoff; stops on 401/403 until started again.
 */
export interface LiveEvent {
  kind: "finding" | "lifecycle" | "tasks" | "revocations" | "approvals" | "quarantine" | "incidents";
  taskId?: string;
  id?: string;
  atMs: number;
}

export type LiveState = "connecting" | "live" | "offline" | "unauthorized";

export function connectLive(onEvent: (e: LiveEvent) => void, onState: (s: LiveState) => void): () => void {
  const controller = new AbortController();
  let delay = 1_000;
  let stopped = false;

  const run = async () => {
    while (!stopped) {
      onState("connecting");
      try {
        const res = await fetch("/api/v1/events", {
          headers: { accept: "text/event-stream", ...authHeaders() },
          signal: controller.signal,
        });
        if (res.status === 401 || res.status === 403) {
          onState("unauthorized");
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onState("live");
        delay = 1_000;
        await readEvents(res.body, onEvent);
      } catch {
        // the network or the server dropped the stream: tried again below, after a pause
        if (stopped) return;
      }
      onState("offline");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  };
  void run();
  return () => {
    stopped = true;
    controller.abort();
  };
}

/** Reads `event:`/`data:` blocks (separated by a blank line) until the stream ends. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (e: LiveEvent) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data) {
        try {
          onEvent(JSON.parse(data) as LiveEvent);
        } catch {
          // a malformed event is skipped: the next poll-driven one brings the page up to date
        }
      }
      end = buffer.indexOf("\n\n");
    }
  }
}
