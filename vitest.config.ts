import { defineConfig } from "vitest/config";
import { integrationServers, projectDeselected, SkippedReporter, testFiles } from "./test/support/servers-available.js";

// Without Java or redis-server (and outside CI) the unit tests still run, and the run ends by
// naming the integration tests it left out and why (test/support/servers-available.ts).
const INTEGRATION_DIRS = ["test/contract", "test/e2e"];
const servers = projectDeselected("integration") ? ({ available: true } as const) : integrationServers();
const skipped = servers.available
  ? []
  : [
      {
        project: "integration",
        files: testFiles(INTEGRATION_DIRS),
        reason: servers.reason,
        remedy:
          "Install what is named above (or point DRIFTWATCH_TEST_KAFKA_BROKERS and DRIFTWATCH_TEST_REDIS_URL at running servers) and run npm test again; .ci/run installs everything. With CI=true or DRIFTWATCH_TEST_REQUIRE_SERVERS=1 the run fails instead.",
      },
    ];

/**
 * Three projects: `unit` (stage logic, no servers), `integration` (contract and
 * end-to-end tests against a real Kafka broker and a real Redis server, which the
 * global setup finds or starts: see test/support/global-setup.ts) and `browser` (the web
 * console driven in Chromium over the embedded product: test/browser/).
 */
export default defineConfig({
  test: {
    ...(skipped.length > 0 ? { reporters: ["default", new SkippedReporter(skipped)] } : {}),
    projects: [
      {
        test: {
          name: "unit",
          include: ["services/**/*.test.ts", "schemas/**/*.test.ts", "test/unit/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        // the web console in Chromium (playwright-core, /usr/bin/chromium), over the embedded product
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      ...(servers.available
        ? [
            {
              test: {
                name: "integration",
                include: INTEGRATION_DIRS.map((d) => `${d}/**/*.test.ts`),
                globalSetup: ["test/support/global-setup.ts"],
                testTimeout: 120_000,
                hookTimeout: 180_000,
                fileParallelism: false,
              },
            },
          ]
        : []),
    ],
  },
});
