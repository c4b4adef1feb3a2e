import { readFileSync } from "node:fs";
import type { FindingKind, Severity } from "../../schemas/finding.js";
import type { IncidentUpdate } from "../../schemas/incident.js";

/**
 * An incident version as an OCSF Detection Finding (class 2004, category 2 Findings),
 * schema version 1.3.0. Required there (base_event, finding and detection_finding, and the
 * objects they require): `activity_id`, `category_uid`, `class_uid`, `type_uid`
 * (class_uid·100 + activity_id), `severity_id`, `time`, `metadata` (`version`, `product`
 * with `vendor_name` and a `name` or `uid`) and `finding_info` (`uid`, `title`).
 *
 * The incident is the finding: `finding_info.uid` is the incident id in every version,
 * `activity_id` is 1 (Create) for its first version and 2 (Update) after; the task's
 * findings are the `evidences`, their rules the `analytic`s, the agents and the task the
 * `resources`, and what Driftwatch knows beyond OCSF sits under `unmapped.driftwatch`.
 */
export const OCSF_SCHEMA_VERSION = "1.3.0";
export const DETECTION_FINDING_CLASS_UID = 2004;
export const FINDINGS_CATEGORY_UID = 2;

export const SEVERITY_ID: Record<Severity, number> = { info: 1, low: 2, medium: 3, high: 4, critical: 5 };
const SEVERITY_CAPTION: Record<number, string> = { 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical" };
const ACTIVITY_CAPTION: Record<number, string> = { 1: "Create", 2: "Update", 3: "Close" };
/** Analytic type ids: 1 Rule, 3 Statistical (the behaviour baselines). */
const ANALYTIC_TYPE: Record<FindingKind, { id: number; caption: string }> = {
  out_of_scope: { id: 1, caption: "Rule" },
  flow: { id: 1, caption: "Rule" },
  provenance: { id: 1, caption: "Rule" },
  post_revocation: { id: 1, caption: "Rule" },
  telemetry_gap: { id: 1, caption: "Rule" },
  context_change: { id: 1, caption: "Rule" },
  credential_reuse: { id: 1, caption: "Rule" },
  intent: { id: 1, caption: "Rule" },
  identity: { id: 1, caption: "Rule" },
  anomaly: { id: 3, caption: "Statistical" },
};

/** Observable type ids used here: 1 Hostname, 10 Resource UID, 99 Other. */
interface Observable {
  name: string;
  type_id: number;
  type: string;
  value: string;
}

interface Analytic {
  uid: string;
  name: string;
  type_id: number;
  type: string;
  category: string;
}

export interface DetectionFinding {
  activity_id: number;
  activity_name: string;
  category_uid: number;
  category_name: string;
  class_uid: number;
  class_name: string;
  type_uid: number;
  type_name: string;
  severity_id: number;
  severity: string;
  time: number;
  message: string;
  status_id: number;
  status: string;
  confidence_id: number;
  confidence_score: number;
  count: number;
  start_time?: number;
  end_time?: number;
  metadata: {
    version: string;
    product: { name: string; vendor_name: string; version: string };
    uid: string;
    correlation_uid: string;
  };
  finding_info: {
    uid: string;
    title: string;
    desc: string;
    types: string[];
    created_time: number;
    modified_time: number;
    first_seen_time?: number;
    last_seen_time?: number;
    analytic?: Analytic;
    related_analytics?: Analytic[];
    data_sources: string[];
  };
  evidences: { data: Record<string, unknown>; dst_endpoint?: { hostname: string } }[];
  resources: { uid: string; name?: string; type: string }[];
  observables: Observable[];
  remediation?: { desc: string };
  unmapped: { driftwatch: Record<string, unknown> };
}

/** Driftwatch's version, from its package.json (source and built layouts), for `metadata.product.version`. */
function productVersion(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "driftwatch" && pkg.version) return pkg.version;
    } catch {
      /* try the next layout */
    }
  }
  return "unknown";
}

const PRODUCT = { name: "Driftwatch", vendor_name: "Driftwatch", version: productVersion() };

function analyticOf(rule: { ruleId: string; kind: FindingKind }): Analytic {
  const t = ANALYTIC_TYPE[rule.kind];
  return { uid: rule.ruleId, name: rule.ruleId, type_id: t.id, type: t.caption, category: rule.kind };
}

function confidenceId(c: number): number {
  if (c >= 0.8) return 3;
  if (c >= 0.5) return 2;
  return c > 0 ? 1 : 0;
}

/** An incident version as an OCSF 1.3.0 Detection Finding. */
export function toDetectionFinding(update: IncidentUpdate): DetectionFinding {
  const i = update.incident;
  const activityId = i.status === "closed" ? 3 : i.version <= 1 ? 1 : 2;
  const severityId = SEVERITY_ID[i.severity];
  const [topRule, ...otherRules] = i.rules;
  const types = [
    ...new Set(i.rules.map((r) => r.kind)),
    ...i.tags.owaspAgentic.map((t) => `OWASP Agentic: ${t}`),
    ...i.tags.maestro.map((t) => `CSA MAESTRO: ${t}`),
    ...i.tags.nistAiRmf.map((t) => `NIST AI RMF: ${t}`),
  ];
  const unrevoked = i.revocations.filter((r) => r.status === "dead_lettered" || r.status === "failed");
  if (unrevoked.length > 0) types.push("credential_not_revoked");
  const evidences = i.evidence.map((e) => {
    const seen = observedDestination(e.observed);
    return {
      data: {
        finding_id: e.findingId,
        rule_id: e.ruleId,
        kind: e.kind,
        severity: e.severity,
        confidence: e.confidence,
        ...(e.agentId ? { agent_id: e.agentId } : {}),
        task_id: i.taskId,
        step_index: e.stepIndex,
        trace_id: e.traceId,
        span_id: e.spanId,
        explanation: e.explanation,
        observed: e.observed,
        expected: e.expected,
        span_end_time: e.spanEndMs,
        detected_time: e.detectedAtMs,
      },
      ...(seen ? { dst_endpoint: { hostname: seen } } : {}),
    };
  });
  const observables: Observable[] = [
    ...i.agents.map((a) => ({ name: "resources.uid", type_id: 10, type: "Resource UID", value: a })),
    { name: "resources.uid", type_id: 10, type: "Resource UID", value: i.taskId },
    ...i.observed.destinations.map((d) => ({ name: "evidences.dst_endpoint.hostname", type_id: 1, type: "Hostname", value: d })),
    ...i.observed.tools.map((t) => ({ name: "evidences.data.observed.tool", type_id: 99, type: "Other", value: t })),
  ];
  return {
    activity_id: activityId,
    activity_name: ACTIVITY_CAPTION[activityId] as string,
    category_uid: FINDINGS_CATEGORY_UID,
    category_name: "Findings",
    class_uid: DETECTION_FINDING_CLASS_UID,
    class_name: "Detection Finding",
    type_uid: DETECTION_FINDING_CLASS_UID * 100 + activityId,
    type_name: `Detection Finding: ${ACTIVITY_CAPTION[activityId]}`,
    severity_id: severityId,
    severity: SEVERITY_CAPTION[severityId] as string,
    time: i.updatedAtMs,
    message: update.change.summary,
    status_id: 1,
    status: "New",
    confidence_id: confidenceId(i.maxConfidence),
    confidence_score: Math.round(i.maxConfidence * 100),
    count: i.findingCount,
    ...(i.firstSeenMs !== undefined ? { start_time: i.firstSeenMs } : {}),
    ...(i.lastSeenMs !== undefined ? { end_time: i.lastSeenMs } : {}),
    metadata: {
      version: OCSF_SCHEMA_VERSION,
      product: PRODUCT,
      uid: `${i.id}-v${i.version}`,
      correlation_uid: i.id,
    },
    finding_info: {
      uid: i.id,
      title: i.title,
      desc: describe(update),
      types,
      created_time: i.createdAtMs,
      modified_time: i.updatedAtMs,
      ...(i.firstSeenMs !== undefined ? { first_seen_time: i.firstSeenMs } : {}),
      ...(i.lastSeenMs !== undefined ? { last_seen_time: i.lastSeenMs } : {}),
      ...(topRule ? { analytic: analyticOf(topRule) } : {}),
      ...(otherRules.length > 0 ? { related_analytics: otherRules.map(analyticOf) } : {}),
      data_sources: ["OpenTelemetry traces"],
    },
    evidences,
    resources: [...i.agents.map((a) => ({ uid: a, name: a, type: "AI Agent" })), { uid: i.taskId, type: "Agent Task" }],
    observables,
    ...(unrevoked.length > 0
      ? { remediation: { desc: `Revoke by hand: ${unrevoked.map((r) => `${r.credentialId} (${r.credentialStore})`).join(", ")}` } }
      : {}),
    unmapped: {
      driftwatch: {
        incident_id: i.id,
        incident_version: i.version,
        task_id: i.taskId,
        agents: i.agents,
        finding_count: i.findingCount,
        new_finding_ids: update.findings.map((f) => f.id),
        rules: i.rules,
        tags: { owasp_agentic: i.tags.owaspAgentic, maestro: i.tags.maestro, nist_ai_rmf: i.tags.nistAiRmf },
        observed: i.observed,
        revocations: i.revocations,
        alerts: i.alerts,
        change: update.change,
      },
    },
  };
}

function observedDestination(observed: unknown): string | undefined {
  if (!observed || typeof observed !== "object") return undefined;
  const rec = observed as Record<string, unknown>;
  for (const k of ["destination", "domain"]) if (typeof rec[k] === "string" && rec[k]) return rec[k] as string;
  return undefined;
}

function describe(update: IncidentUpdate): string {
  const i = update.incident;
  const parts = [
    `${i.findingCount} finding(s) in task ${i.taskId}${i.agents.length > 0 ? ` by ${i.agents.join(", ")}` : ""}`,
    i.rules.length > 0 ? `rules: ${i.rules.map((r) => `${r.ruleId} (${r.severity}, ${r.count})`).join(", ")}` : "",
    ...i.revocations
      .filter((r) => r.status === "dead_lettered" || r.status === "failed")
      .map((r) => `credential ${r.credentialId} (${r.credentialStore}) not revoked: ${r.detail}`),
    `latest change: ${update.change.summary}`,
  ];
  return parts.filter(Boolean).join(". ");
}
