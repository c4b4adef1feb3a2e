import { defineConfig } from "vitest/config";
import { browserAvailable, integrationServers, projectDeselected, SkippedReporter, testFiles } from "./test/support/servers-available.js";

// Without Java or redis-server, or without Chromium (and outside CI), the unit tests still
// run, and the run ends by naming the tests it left out and why
// (test/support/servers-available.ts).
const INTEGRATION_DIRS = ["test/contract", "test/e2e"];
const BROWSER_DIRS = ["test/browser"];
const servers = projectDeselected("integration") ? ({ available: true } as const) : integrationServers();
const browser = projectDeselected("browser") ? ({ available: true } as const) : browserAvailable();
const REQUIRE = "With CI=true or DRIFTWATCH_TEST_REQUIRE_SERVERS=1 the run fails instead.";
const skipped = [
  ...(servers.available
    ? []
    : [
        {
          project: "integration",
          files: testFiles(INTEGRATION_DIRS),
          reason: servers.reason,
          remedy: `Install what is named above (or point DRIFTWATCH_TEST_KAFKA_BROKERS and DRIFTWATCH_TEST_REDIS_URL at running servers) and run npm test again; .ci/run installs everything. ${REQUIRE}`,
        },
      ]),
  ...(browser.available
    ? []
    : [
        {
          project: "browser",
          files: testFiles(BROWSER_DIRS),
          reason: browser.reason,
          remedy: `Install Chromium and run npm test again; .ci/run installs it. ${REQUIRE}`,
        },
      ]),
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
      ...(browser.available
        ? [
            {
              // the web console in Chromium (playwright-core, /usr/bin/chromium), over the embedded product
              test: {
                name: "browser",
                include: BROWSER_DIRS.map((d) => `${d}/**/*.test.ts`),
                testTimeout: 120_000,
                hookTimeout: 120_000,
                fileParallelism: false,
              },
            },
          ]
        : []),
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
