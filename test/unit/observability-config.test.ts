import { describe, expect, it } from "vitest";
import { NotifierMetrics } from "../../services/notifier/metrics.js";
import { Metrics } from "../../services/runtime/telemetry.js";
import { alertRules, dashboard, exposedNames, expressions, metricNames, promqlErrors } from "../support/observability-config.js";

/**
 * The shipped alert rules and dashboard (deploy/) against the metrics the code registers.
 * test/e2e/distributed.test.ts checks them again against what the running services serve.
 */
describe("the Prometheus rules and Grafana dashboard in deploy/", () => {
  it("name only metrics the services register", async () => {
    const metrics = new Metrics();
    new NotifierMetrics(metrics.registry);
    const exposed = exposedNames(await metrics.registry.metrics());
    const named = expressions().flatMap(({ where, expr }) => metricNames(expr).map((name) => ({ where, name })));
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter(({ name }) => !exposed.has(name))).toEqual([]);
  });

  it("cover lag, detection and revocation latency, and the ways a revocation or alert can be lost", () => {
    const used = new Set(expressions().flatMap(({ expr }) => metricNames(expr)));
    for (const name of [
      "driftwatch_consumer_lag",
      "driftwatch_detection_latency_seconds_bucket",
      "driftwatch_revocation_latency_seconds_bucket",
      "driftwatch_revocations_total",
      "driftwatch_delivery_gave_up_total",
      "driftwatch_alerts_total",
      "driftwatch_deadletters_total",
    ])
      expect(used, name).toContain(name);
  });

  it("are well formed: every rule has a severity, a summary and a duration; every panel a unique id and a query", () => {
    const rules = alertRules();
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    for (const r of rules) {
      expect(r.alert, r.alert).toMatch(/^Driftwatch[A-Za-z]+$/);
      expect(["warning", "critical"], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
    }
    const d = dashboard();
    expect(d.uid).toBe("driftwatch");
    expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length);
    for (const p of d.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
  });

  it("are valid PromQL, every expression of them", () => {
    const bad = expressions()
      .map(({ where, expr }) => ({ where, errors: promqlErrors(expr) }))
      .filter((e) => e.errors.length > 0);
    expect(bad).toEqual([]);
    // and the check can fail
    expect(promqlErrors("sum by (stage (rate(driftwatch_deadletters_total[5m]))")).not.toEqual([]);
    expect(promqlErrors("rate(driftwatch_deadletters_total[$__rate_interval])")).toEqual([]);
  });

  it("finds metric names in an expression and the names a scrape offers", () => {
    expect(metricNames('sum by (le) (rate(driftwatch_x_bucket[5m])) / up{job="driftwatch"} + process_cpu_seconds_total')).toEqual([
      "driftwatch_x_bucket",
      "process_cpu_seconds_total",
    ]);
    const names = exposedNames("# HELP a_seconds x\n# TYPE a_seconds histogram\n# TYPE b_total counter\nb_total 1\n");
    expect([...names].sort()).toEqual(["a_seconds", "a_seconds_bucket", "a_seconds_count", "a_seconds_sum", "b_total"]);
  });
});
