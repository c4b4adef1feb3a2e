import type { Writable } from "node:stream";
import type { Finding } from "../../schemas/finding.js";
import type { Revocation } from "../../schemas/revocation.js";
import type { CredentialView } from "../console/credentials.js";
import { billingScenario, otlpProtoExporter, runScenarioAgent } from "./scenario.js";

/**
 * `driftwatch demo`: a billing agent runs two tasks against a running Driftwatch; one
 * calls a tool outside its profile. Shows the finding and the revocation from the API.
 */
export async function runDemo(otlpUrl: string, apiUrl: string, out: Writable, timeoutMs = 10_000, token?: string): Promise<number> {
  const api = apiUrl.replace(/\/$/, "");
  const headers = token ? { authorization: `Bearer ${token}` } : undefined;
  const fetch = (url: string, init: RequestInit = {}) => globalThis.fetch(url, { ...init, ...(headers ? { headers } : {}) });
  try {
    const health = await fetch(`${api}/healthz`, { signal: AbortSignal.timeout(2000) });
    if (!health.ok) throw new Error(`HTTP ${health.status}`);
  } catch (err) {
    out.write(`Cannot reach the console at ${api} (${(err as Error).message}). Start Driftwatch first: npm start\n`);
    return 1;
  }
  const scenario = billingScenario();
  out.write(`Sending two tasks of agent "${scenario.agent.id}" over OTLP/HTTP to ${otlpUrl}:\n`);
  out.write(`  ${scenario.benign.taskId}: ${scenario.benign.steps.map((s) => s.tool).join(" → ")}\n`);
  out.write(`  ${scenario.drifting.taskId}: ${scenario.drifting.steps.map((s) => s.tool).join(" → ")}\n`);
  const sentAt = Date.now();
  await runScenarioAgent(scenario, otlpProtoExporter(otlpUrl));
  const flushedAt = Date.now();

  const deadline = Date.now() + timeoutMs;
  let findings: Finding[] = [];
  let revocations: Revocation[] = [];
  while (Date.now() < deadline) {
    const res = await fetch(`${api}/api/v1/tasks/${encodeURIComponent(scenario.drifting.taskId)}`);
    if (res.ok) {
      const body = (await res.json()) as { findings: Finding[]; revocations: Revocation[] };
      findings = body.findings;
      revocations = body.revocations;
      if (findings.length > 0 && revocations.length > 0) break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const seenAt = Date.now();
  if (findings.length === 0) {
    out.write(`No finding for ${scenario.drifting.taskId} within ${timeoutMs} ms. Is the policy folder the one in policies/?\n`);
    return 1;
  }
  out.write(`\nFinding${findings.length > 1 ? "s" : ""} for ${scenario.drifting.taskId}:\n`);
  for (const f of findings) {
    out.write(`  [${f.severity}] ${f.ruleId} at step ${f.stepIndex + 1}: ${f.explanation}\n`);
    out.write(`    detection latency ${Math.round(f.detectedAtMs - f.spanEndMs)} ms after the span ended\n`);
  }
  out.write(`\nRevocation${revocations.length === 1 ? "" : "s"}:\n`);
  for (const r of revocations) out.write(`  ${r.credentialId} via ${r.credentialStore}: ${r.status} (${r.detail})\n`);
  const benign = await fetch(`${api}/api/v1/tasks/${encodeURIComponent(scenario.benign.taskId)}`);
  const benignBody = benign.ok ? ((await benign.json()) as { findings: Finding[] }) : { findings: [] };
  out.write(`\nBenign task ${scenario.benign.taskId}: ${benignBody.findings.length} finding(s).\n`);
  // its credential ends with it: revoked when its root span ended (the credential lifecycle)
  let ended: CredentialView | undefined;
  while (Date.now() < deadline && ended?.revocation === undefined) {
    const res = await fetch(`${api}/api/v1/tasks/${encodeURIComponent(scenario.benign.taskId)}/credentials`);
    if (res.ok) ended = ((await res.json()) as { credentials: CredentialView[] }).credentials[0];
    if (ended?.revocation === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  if (ended?.revocation) {
    const r = ended.revocation;
    const latency =
      r.latencyMs?.fromTrigger !== undefined ? `, ${Math.round(r.latencyMs.fromTrigger)} ms after its final span arrived` : "";
    out.write(`  its credential ${ended.credentialId} ended with it: ${r.status} (${r.trigger}${latency})\n`);
  }
  out.write(
    `Spans flushed in ${flushedAt - sentAt} ms; finding and revocation visible in the API ${seenAt - flushedAt} ms after the flush.\n`,
  );
  out.write(`See it all: curl ${api}/api/v1/tasks/${scenario.drifting.taskId}\n`);
  return revocations.length > 0 ? 0 : 1;
}
