/**
 * How the API shows times and durations. Every epoch-milliseconds field (`startTimeMs`,
 * `receivedAtMs`, `detectedAtMs`, …) keeps its number and gets an ISO 8601 UTC string beside
 * it, named without the `Ms` and with `Iso` (`startTimeIso: "2026-12-03T14:50:01.123Z"`), so
 * a person reading a response needs no converter and a program keeps the number. Every
 * millisecond value, time or duration, is rounded to the microsecond (0.001 ms): span clocks
 * give nanoseconds, and `8.174072265625` says no more than `8.174`.
 */

/** Durations, not instants: their names say so (`durationMs`, `latencyMs`, `graceMs`, …). */
const DURATION = /(duration|latency|grace|idle|silence|ttl|timeout|window|lateness|age|elapsed|interval|delay|backoff|retryAfter)Ms$/i;
/** An instant is read as epoch ms between 2000-01-01 and 2100-01-01; a smaller number is a duration or an offset. */
const EPOCH_MIN = Date.UTC(2000, 0, 1);
const EPOCH_MAX = Date.UTC(2100, 0, 1);
/** How deep a response is walked (ours are shallow; evidence may nest). */
const MAX_DEPTH = 32;

export const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

/** The ISO name of an epoch-ms field: `startTimeMs` → `startTimeIso`, `atMs` → `atIso`. */
export const isoNameOf = (key: string): string => `${key.slice(0, -2)}Iso`;

const isInstant = (key: string, value: number) => !DURATION.test(key) && value >= EPOCH_MIN && value < EPOCH_MAX;

/**
 * The value with every `…Ms` number rounded and every instant given its ISO string; numbers
 * under a duration object (`latencyMs: { fromTrigger: … }`) are rounded too. A new object:
 * the value itself (perhaps a stored record) is left as it was.
 */
export function withReadableTimes(value: unknown, depth = 0, inDuration = false): unknown {
  if (depth > MAX_DEPTH || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => withReadableTimes(v, depth + 1, inDuration));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const ms = key.endsWith("Ms") && key.length > 2;
    if (typeof v === "number" && Number.isFinite(v) && (ms || inDuration)) {
      out[key] = roundMs(v);
      if (ms && !inDuration && isInstant(key, v)) {
        const iso = isoNameOf(key);
        // a field of that name already there is the record's own: it is kept
        if (!(iso in (value as Record<string, unknown>))) out[iso] = new Date(v).toISOString();
      }
    } else {
      out[key] = withReadableTimes(v, depth + 1, inDuration || (ms && typeof v === "object" && DURATION.test(key)));
    }
  }
  return out;
}
