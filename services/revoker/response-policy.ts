import { type Finding, SEVERITY_RANK, type Severity } from "../../schemas/finding.js";

/** What to do about a finding. */
export type Response = "revoke" | "notify";

/** Enforce-mode findings at or above the threshold revoke the task's credentials; the rest only notify. */
export function responseFor(finding: Finding, minSeverity: Severity): Response {
  if (finding.mode === "enforce" && SEVERITY_RANK[finding.severity] >= SEVERITY_RANK[minSeverity]) return "revoke";
  return "notify";
}
