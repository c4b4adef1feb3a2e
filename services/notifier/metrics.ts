import { Counter, type Registry } from "prom-client";

/**
 * The notifier's metrics, registered on the process's registry (once, however many
 * notifiers the process runs): alerts per sink by result (`delivered`, `failed` (a round
 * that will be retried), `dead_lettered`, `filtered` (below the sink's minimum severity)),
 * and incident versions by cause.
 */
export class NotifierMetrics {
  readonly alerts: Counter<"sink" | "result">;
  readonly incidentVersions: Counter<"cause">;

  constructor(registry: Registry) {
    this.alerts = counter(registry, "driftwatch_alerts_total", "Incident versions per SOC sink by result", ["sink", "result"]);
    this.incidentVersions = counter(
      registry,
      "driftwatch_incident_versions_total",
      "Incident versions made (each goes to every sink once), by cause: findings or revocation",
      ["cause"],
    );
  }
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}
