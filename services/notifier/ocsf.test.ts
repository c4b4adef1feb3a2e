import { Ajv } from "ajv";
import { beforeAll, describe, expect, it } from "vitest";
import type { IncidentUpdate } from "../../schemas/incident.js";
import { finding, revocation, T0 } from "../../test/support/alerts.js";
import { MemoryStore } from "../runtime/store/memory-store.js";
import { IncidentBook } from "./incident.js";
import { type DetectionFinding, OCSF_SCHEMA_VERSION, SEVERITY_ID, toDetectionFinding } from "./ocsf.js";

/**
 * What OCSF 1.3.0 requires of a Detection Finding (class 2004), as a JSON Schema: the
 * required attributes of base_event (activity_id, category_uid, class_uid, metadata,
 * severity_id, time, type_uid), of finding (finding_info) and of the objects they require
 * (metadata: product, version; product: vendor_name, and a name or uid; finding_info: uid,
 * title), with the values class 2004 allows. Sources: ocsf/ocsf-schema events/base_event.json,
 * events/findings/finding.json, events/findings/detection_finding.json, objects/metadata.json;
 * for 1.3.0's object requirements the schema's rendering per version (docs.tenzir.com
 * reference/ocsf/1-3-0: objects/finding_info, objects/product).
 */
const detectionFinding2004 = {
  type: "object",
  required: ["activity_id", "category_uid", "class_uid", "type_uid", "severity_id", "time", "metadata", "finding_info"],
  properties: {
    activity_id: { enum: [0, 1, 2, 3, 99] },
    category_uid: { const: 2 },
    class_uid: { const: 2004 },
    type_uid: { enum: [200400, 200401, 200402, 200403, 200499] },
    severity_id: { enum: [0, 1, 2, 3, 4, 5, 6, 99] },
    time: { type: "integer", minimum: 0 },
    metadata: {
      type: "object",
      required: ["product", "version"],
      properties: {
        version: { type: "string", pattern: "^1\\.\\d+\\.\\d+" },
        product: {
          type: "object",
          required: ["vendor_name"],
          anyOf: [{ required: ["name"] }, { required: ["uid"] }],
          properties: { vendor_name: { type: "string", minLength: 1 }, name: { type: "string" }, uid: { type: "string" } },
        },
      },
    },
    finding_info: {
      type: "object",
      required: ["uid", "title"],
      properties: {
        uid: { type: "string", minLength: 1 },
        title: { type: "string", minLength: 1 },
        types: { type: "array", items: { type: "string" } },
        first_seen_time: { type: "integer" },
        last_seen_time: { type: "integer" },
        analytic: { type: "object", required: ["type_id"] },
      },
    },
    observables: { type: "array", items: { type: "object", required: ["name", "type_id"] } },
    evidences: { type: "array", items: { type: "object", minProperties: 1 } },
    remediation: { type: "object", required: ["desc"] },
    unmapped: { type: "object" },
  },
};

/** Every required attribute, as a path, for the must-fail checks. */
const REQUIRED_PATHS = [
  ["activity_id"],
  ["category_uid"],
  ["class_uid"],
  ["type_uid"],
  ["severity_id"],
  ["time"],
  ["metadata"],
  ["metadata", "version"],
  ["metadata", "product"],
  ["metadata", "product", "vendor_name"],
  ["finding_info"],
  ["finding_info", "uid"],
  ["finding_info", "title"],
];

const validate = new Ajv({ allErrors: true, strict: false }).compile(detectionFinding2004);

function without(record: DetectionFinding, path: string[]): unknown {
  const copy = structuredClone(record) as unknown as Record<string, unknown>;
  let at: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  delete at[path.at(-1) as string];
  return copy;
}

describe("the notifier's OCSF Detection Finding", () => {
  let v1: IncidentUpdate;
  let v2: IncidentUpdate;
  let v3: IncidentUpdate;

  beforeAll(async () => {
    let now = T0 + 1000;
    const book = new IncidentBook(new MemoryStore(), { now: () => now });
    v1 = (await book.addFindings("task-1", [finding("a", { severity: "medium", confidence: 0.6 })])) as IncidentUpdate;
    now += 500;
    v2 = (await book.addFindings("task-1", [
      finding("b", {
        severity: "high",
        ruleId: "flow.egress_after_confidential",
        kind: "flow",
        spanEndMs: T0 + 400,
        evidence: { observed: { destination: "evil.example" }, expected: { egress: ["smtp.acme.example"] } },
      }),
      finding("c", {
        ruleId: "anomaly.new_tool",
        kind: "anomaly",
        severity: "low",
        confidence: 0.4,
        tags: { owaspAgentic: [], maestro: ["L7"], nistAiRmf: [] },
      }),
    ])) as IncidentUpdate;
    now += 500;
    v3 = (await book.addRevocation(revocation({ status: "dead_lettered", detail: "HTTP 500 (gave up: 30 attempts)" }))) as IncidentUpdate;
  });

  it("validates against the class 2004 required fields, in every version", () => {
    for (const update of [v1, v2, v3]) {
      const record = toDetectionFinding(update);
      const ok = validate(record);
      expect(validate.errors ?? []).toEqual([]);
      expect(ok).toBe(true);
    }
  });

  it.each(REQUIRED_PATHS.map((p) => [p.join(".")]))("is invalid without %s (the check has teeth)", (path) => {
    const record = toDetectionFinding(v2);
    expect(validate(record)).toBe(true);
    expect(validate(without(record, path.split(".")))).toBe(false);
  });

  it("is invalid with another class, category or a type_uid that is not class_uid·100 + activity_id", () => {
    const record = toDetectionFinding(v2);
    expect(validate({ ...record, class_uid: 2001 })).toBe(false);
    expect(validate({ ...record, category_uid: 1 })).toBe(false);
    expect(validate({ ...record, type_uid: 200101 })).toBe(false);
    expect(validate({ ...record, metadata: { ...record.metadata, product: { vendor_name: "Driftwatch" } } })).toBe(false);
  });

  it("is a Create for the incident's first version and an Update after, with one finding uid throughout", () => {
    const [r1, r2, r3] = [v1, v2, v3].map(toDetectionFinding) as [DetectionFinding, DetectionFinding, DetectionFinding];
    expect([r1.activity_id, r2.activity_id, r3.activity_id]).toEqual([1, 2, 2]);
    expect([r1.activity_name, r2.activity_name]).toEqual(["Create", "Update"]);
    for (const r of [r1, r2, r3]) {
      expect(r.type_uid).toBe(r.class_uid * 100 + r.activity_id);
      expect(r).toMatchObject({ class_uid: 2004, class_name: "Detection Finding", category_uid: 2, category_name: "Findings" });
      expect(r.finding_info.uid).toBe(v1.incident.id);
      expect(r.metadata.correlation_uid).toBe(v1.incident.id);
    }
    expect([r1.metadata.uid, r2.metadata.uid]).toEqual([`${v1.incident.id}-v1`, `${v1.incident.id}-v2`]);
    expect(r1.metadata.version).toBe(OCSF_SCHEMA_VERSION);
    expect(r1.metadata.product).toEqual({ name: "Driftwatch", vendor_name: "Driftwatch", version: "0.1.0" });
  });

  it("maps severities info..critical to severity_id 1..5, and rolls up", () => {
    expect(SEVERITY_ID).toEqual({ info: 1, low: 2, medium: 3, high: 4, critical: 5 });
    expect(toDetectionFinding(v1)).toMatchObject({ severity_id: 3, severity: "Medium" });
    expect(toDetectionFinding(v2)).toMatchObject({ severity_id: 4, severity: "High" });
    // a credential that could not be revoked: critical, with what to do
    expect(toDetectionFinding(v3)).toMatchObject({
      severity_id: 5,
      severity: "Critical",
      remediation: { desc: "Revoke by hand: vault:lease:db/creds/billing/abc (vault)" },
    });
  });

  it("carries times, the rules as analytics, framework tags as types, evidences, resources and observables", () => {
    const r = toDetectionFinding(v2);
    expect(r.time).toBe(v2.incident.updatedAtMs);
    expect(r.finding_info).toMatchObject({
      title: "Agent drift: billing-agent in task task-1",
      first_seen_time: T0,
      last_seen_time: T0 + 400,
      created_time: v1.incident.createdAtMs,
      modified_time: v2.incident.updatedAtMs,
      analytic: { uid: "flow.egress_after_confidential", type_id: 1, type: "Rule", category: "flow" },
    });
    expect(r.finding_info.related_analytics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ uid: "scope.tool", type_id: 1 }),
        expect.objectContaining({ uid: "anomaly.new_tool", type_id: 3, type: "Statistical" }),
      ]),
    );
    expect(r.finding_info.types).toEqual(
      expect.arrayContaining([
        "out_of_scope",
        "flow",
        "anomaly",
        "OWASP Agentic: ASI02",
        "CSA MAESTRO: L3",
        "CSA MAESTRO: L7",
        "NIST AI RMF: MANAGE-2.4",
      ]),
    );
    expect(r).toMatchObject({ start_time: T0, end_time: T0 + 400, count: 3, confidence_id: 3, confidence_score: 95, status_id: 1 });
    expect(r.message).toMatch(/^2 new findings/);
    expect(r.evidences).toHaveLength(3);
    expect(r.evidences[0]).toEqual({
      data: expect.objectContaining({
        finding_id: "b",
        rule_id: "flow.egress_after_confidential",
        task_id: "task-1",
        agent_id: "billing-agent",
      }),
      dst_endpoint: { hostname: "evil.example" },
    });
    expect(r.resources).toEqual([
      { uid: "billing-agent", name: "billing-agent", type: "AI Agent" },
      { uid: "task-1", type: "Agent Task" },
    ]);
    expect(r.observables).toEqual(
      expect.arrayContaining([
        { name: "resources.uid", type_id: 10, type: "Resource UID", value: "billing-agent" },
        { name: "resources.uid", type_id: 10, type: "Resource UID", value: "task-1" },
        { name: "evidences.dst_endpoint.hostname", type_id: 1, type: "Hostname", value: "evil.example" },
        { name: "evidences.data.observed.tool", type_id: 99, type: "Other", value: "shell.exec" },
      ]),
    );
    expect(r.unmapped.driftwatch).toMatchObject({
      incident_version: 2,
      task_id: "task-1",
      new_finding_ids: ["b", "c"],
      tags: { owasp_agentic: ["ASI02"], maestro: ["L3", "L7"], nist_ai_rmf: ["MANAGE-2.4"] },
    });
  });
});
