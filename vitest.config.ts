import { defineConfig } from "vitest/config";

/**
 * Two projects: `unit` (stage logic, no servers) and `integration` (contract and
 * end-to-end tests against a real Kafka broker and a real Redis server, which the
 * global setup finds or starts: see test/support/global-setup.ts).
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["services/**/*.test.ts", "schemas/**/*.test.ts", "test/unit/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/contract/**/*.test.ts", "test/e2e/**/*.test.ts"],
          globalSetup: ["test/support/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
