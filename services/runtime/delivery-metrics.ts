import type { DeliveryEvent } from "./delivery.js";
import type { Metrics } from "./telemetry.js";

/** Delivery events as Prometheus metrics (attempts by result, give-ups, open circuits). */
export function deliveryMetrics(metrics: Metrics): (event: DeliveryEvent) => void {
  return (event) => {
    switch (event.kind) {
      case "attempt":
        metrics.deliveryAttempts.inc({ endpoint: event.endpoint, result: event.result });
        break;
      case "gave-up":
        metrics.deliveryGaveUp.inc({ endpoint: event.endpoint, reason: event.reason });
        break;
      case "rejected":
        metrics.deliveryGaveUp.inc({ endpoint: event.endpoint, reason: "circuit_open" });
        break;
      case "circuit":
        metrics.circuitOpen.set({ endpoint: event.endpoint }, event.to === "closed" ? 0 : 1);
        break;
      case "retry":
        break;
    }
  };
}
