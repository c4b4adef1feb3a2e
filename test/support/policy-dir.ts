import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";

/**
 * A copy of the shipped policies (`policies/`) in a temporary folder, with some profiles'
 * settings replaced: for a test that needs the shipped profiles but, say, other lifecycle
 * settings. Returns the folder (for DRIFTWATCH_POLICY_DIR).
 */
export function shippedPoliciesWith(overrides: Record<string, Record<string, unknown>>): string {
  const dir = mkdtempSync(join(tmpdir(), "dw-policies-"));
  const left = new Set(Object.keys(overrides));
  for (const name of readdirSync("policies").filter((f) => f.endsWith(".yaml"))) {
    const doc = parse(readFileSync(join("policies", name), "utf8")) as { profiles?: { id: string }[] };
    for (const [i, profile] of (doc.profiles ?? []).entries()) {
      const over = overrides[profile.id];
      if (!over) continue;
      (doc.profiles as Record<string, unknown>[])[i] = { ...profile, ...over };
      left.delete(profile.id);
    }
    writeFileSync(join(dir, name), stringify(doc));
  }
  if (left.size > 0) throw new Error(`no shipped profile ${[...left].join(", ")}`);
  return dir;
}
