import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { browserAvailable, integrationServers, mustRun, projectDeselected, testFiles } from "../support/servers-available.js";

/**
 * How `npm test` decides, before running anything, whether the integration tests can have
 * their servers: here on a PATH without Java and redis-server (a fresh laptop), and on free
 * ports, so that servers this machine may be running for other tests do not count.
 */
const bare = mkdtempSync(join(tmpdir(), "dw-bare-path-"));
const bin = join(bare, "bin");
mkdirSync(bin);
for (const dir of ["/usr/local/bin", "/usr/bin", "/bin"]) {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    continue;
  }
  for (const name of names) {
    if (["java", "mvn", "redis-server", "redis-cli"].includes(name)) continue;
    try {
      symlinkSync(join(dir, name), join(bin, name));
    } catch {
      // already linked from an earlier directory
    }
  }
}
afterAll(() => rmSync(bare, { recursive: true, force: true }));

const laptop = {
  PATH: bin,
  HOME: bare,
  DRIFTWATCH_TEST_KAFKA_PORT: "1",
  DRIFTWATCH_TEST_KAFKA_CONTROLLER_PORT: "2",
  DRIFTWATCH_TEST_KAFKA_SSL_PORT: "3",
  DRIFTWATCH_TEST_REDIS_PORT: "4",
  DRIFTWATCH_TEST_REDIS_TLS_PORT: "5",
};

describe("whether the integration tests run", () => {
  it("without Java and redis-server, they are left out, and the reason names both and how to install them", () => {
    const a = integrationServers(laptop);
    expect(a.available).toBe(false);
    const reason = a.available ? "" : a.reason;
    expect(reason).toMatch(/java \(a JDK\/JRE 17 or newer/);
    expect(reason).toMatch(/redis-server \(apt-get update && apt-get install -y redis-server\)/);
    expect(reason).toMatch(/DRIFTWATCH_TEST_KAFKA_BROKERS/);
  });

  it("in CI, or when asked, they are not left out: the global setup then fails with its message", () => {
    expect(integrationServers({ ...laptop, CI: "true" })).toEqual({ available: true });
    expect(integrationServers({ ...laptop, DRIFTWATCH_TEST_REQUIRE_SERVERS: "1" })).toEqual({ available: true });
    expect(mustRun({ CI: "false" })).toBe(false);
    expect(mustRun({})).toBe(false);
  });

  it("servers given by address are used as they are, whatever is installed", () => {
    expect(
      integrationServers({
        ...laptop,
        DRIFTWATCH_TEST_KAFKA_BROKERS: "127.0.0.1:9092",
        DRIFTWATCH_TEST_REDIS_URL: "redis://127.0.0.1:6379",
      }),
    ).toEqual({ available: true });
  });

  it("knows when the command line picked other projects, and which files a left-out project holds", () => {
    expect(projectDeselected("integration", ["node", "vitest", "run", "--project", "unit"])).toBe(true);
    expect(projectDeselected("integration", ["node", "vitest", "run", "--project=integration"])).toBe(false);
    expect(projectDeselected("integration", ["node", "vitest", "run"])).toBe(false);
    const files = testFiles(["test/contract", "test/e2e"]);
    expect(files).toContain("test/e2e/distributed.test.ts");
    expect(files.every((f) => f.endsWith(".test.ts"))).toBe(true);
  });
});

describe("whether the browser tests run", () => {
  it("without Chromium they are left out, saying where it was looked for; in CI they are not", () => {
    const a = browserAvailable({ DRIFTWATCH_CHROMIUM: join(bare, "no-chromium") });
    expect(a).toEqual({ available: false, reason: expect.stringContaining(`there is no Chromium at ${join(bare, "no-chromium")}`) });
    expect(browserAvailable({ DRIFTWATCH_CHROMIUM: join(bare, "no-chromium"), CI: "true" })).toEqual({ available: true });
    expect(browserAvailable({ DRIFTWATCH_CHROMIUM: process.execPath })).toEqual({ available: true });
  });
});
