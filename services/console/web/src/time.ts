/** Times as people read them: the ISO time with its zone (UTC), and how long ago. */
export function iso(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "—";
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
}

export function ago(ms: number | undefined, now: number): string {
  if (ms === undefined || !Number.isFinite(ms)) return "";
  const s = Math.round((now - ms) / 1000);
  const future = s < 0;
  const a = Math.abs(s);
  const text =
    a < 5
      ? "just now"
      : a < 60
        ? `${a} s`
        : a < 3_600
          ? `${Math.round(a / 60)} min`
          : a < 86_400
            ? `${Math.round(a / 3_600)} h`
            : `${Math.round(a / 86_400)} d`;
  if (text === "just now") return text;
  return future ? `in ${text}` : `${text} ago`;
}

export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1_000) return `${Math.round(ms * 10) / 10} ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 6_000) / 10} min`;
}
