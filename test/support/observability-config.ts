import { readFileSync } from "node:fs";
import { parser as promql } from "@prometheus-io/lezer-promql";
import { parse } from "yaml";

/**
 * What the shipped Prometheus rules and Grafana dashboard (deploy/) ask of the services:
 * their expressions, and the metric names in them (ours and the Node client's defaults).
 */
export const ALERT_RULES = "deploy/prometheus/driftwatch-alerts.yml";
export const DASHBOARD = "deploy/grafana/dashboards/driftwatch.json";

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function alertRules(): AlertRule[] {
  const doc = parse(readFileSync(ALERT_RULES, "utf8")) as { groups: { name: string; rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

export interface Dashboard {
  uid: string;
  panels: { id: number; title: string; targets: { refId: string; expr: string }[] }[];
}

export function dashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
}

/** Every expression of the rules and the dashboard, with where it comes from. */
export function expressions(): { where: string; expr: string }[] {
  return [
    ...alertRules().map((r) => ({ where: `${ALERT_RULES}: ${r.alert}`, expr: r.expr })),
    ...dashboard().panels.flatMap((p) => p.targets.map((t) => ({ where: `${DASHBOARD}: ${p.title} ${t.refId}`, expr: t.expr }))),
  ];
}

/**
 * Where an expression does not parse as PromQL (Prometheus's own grammar,
 * @prometheus-io/lezer-promql), with Grafana's interval variables replaced as Grafana does
 * before it sends a query: the text around each error, none when it parses.
 */
export function promqlErrors(expr: string): string[] {
  const query = expr.replaceAll(/\$__(rate_interval|interval|range)\b/g, "5m");
  const errors: string[] = [];
  promql.parse(query).iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(`at ${node.from}: …${query.slice(Math.max(0, node.from - 15), node.to + 15)}…`);
    },
  });
  return errors;
}

/** The service metric names an expression reads (Prometheus's own `up` aside). */
export function metricNames(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\b(?:driftwatch|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]))];
}

/**
 * The sample names a Prometheus text exposition offers, from its `# TYPE` lines (a family
 * is listed even before it has samples): histograms' `_bucket`, `_sum` and `_count`.
 */
export function exposedNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    out.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) out.add(name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) out.add(name + s);
  }
  return out;
}
