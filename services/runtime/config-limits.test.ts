import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

describe("config: the gateway's per-client bounds and the embedded store's", () => {
  it("defaults that a normal fleet never meets, and a store bound sized for a laptop", () => {
    const c = loadConfig({});
    expect(c.otlp.limits).toEqual({
      requestsPerSecond: 100,
      spansPerMinute: 600_000,
      maxSpansPerRequest: 20_000,
      maxTracesPerRequest: 10_000,
    });
    expect(c.embedded).toEqual({ maxTasks: 10_000, maxBytes: 128 * 2 ** 20 });
  });

  it("reads them from DRIFTWATCH_ variables", () => {
    const c = loadConfig({
      DRIFTWATCH_OTLP_CLIENT_REQUESTS_PER_SECOND: "5",
      DRIFTWATCH_OTLP_CLIENT_SPANS_PER_MINUTE: "1000",
      DRIFTWATCH_OTLP_MAX_SPANS_PER_REQUEST: "500",
      DRIFTWATCH_OTLP_MAX_TRACES_PER_REQUEST: "50",
      DRIFTWATCH_EMBEDDED_MAX_TASKS: "200",
      DRIFTWATCH_EMBEDDED_MAX_STORE_MB: "16",
    });
    expect(c.otlp.limits).toEqual({ requestsPerSecond: 5, spansPerMinute: 1000, maxSpansPerRequest: 500, maxTracesPerRequest: 50 });
    expect(c.embedded).toEqual({ maxTasks: 200, maxBytes: 16 * 2 ** 20 });
  });

  it("refuses a span budget a full request would not fit in, and bad numbers, naming the variable", () => {
    expect(() => loadConfig({ DRIFTWATCH_OTLP_CLIENT_SPANS_PER_MINUTE: "100", DRIFTWATCH_OTLP_MAX_SPANS_PER_REQUEST: "200" })).toThrow(
      /DRIFTWATCH_OTLP_CLIENT_SPANS_PER_MINUTE: must be at least DRIFTWATCH_OTLP_MAX_SPANS_PER_REQUEST/,
    );
    for (const name of [
      "DRIFTWATCH_OTLP_CLIENT_REQUESTS_PER_SECOND",
      "DRIFTWATCH_EMBEDDED_MAX_TASKS",
      "DRIFTWATCH_OTLP_MAX_TRACES_PER_REQUEST",
    ]) {
      expect(() => loadConfig({ [name]: "0" }), name).toThrow(ConfigError);
      expect(() => loadConfig({ [name]: "lots" }), name).toThrow(new RegExp(name));
    }
  });
});
