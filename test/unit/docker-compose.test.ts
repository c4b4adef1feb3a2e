import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo, Server } from "node:net";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";

/**
 * docker-compose.yml cannot be run here (no Docker engine): its properties are checked on
 * the parsed file, and its healthcheck commands are run with this Node against stand-ins.
 */
interface Service {
  ports?: string[];
  volumes?: string[];
  command?: string[];
  environment?: Record<string, string | number>;
  healthcheck?: { test: string[] };
}
const compose = parse(readFileSync("docker-compose.yml", "utf8"), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;

const run = promisify(execFile);
/** Runs a `["CMD", "node", "-e", script]` healthcheck with this Node and `env`; its exit code. */
async function healthcheck(service: string, env: Record<string, string>): Promise<number> {
  const test = services[service]?.healthcheck?.test ?? [];
  expect(test.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
  try {
    await run(process.execPath, ["-e", test[3] as string], { env: { PATH: process.env.PATH, ...env }, timeout: 15_000 });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});
async function listening(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

describe("docker-compose.yml", () => {
  it("publishes the console, and the gateway, on the host's loopback only", () => {
    expect(services.console?.ports).toEqual(["127.0.0.1:8080:8080"]);
    expect(services.gateway?.ports).toEqual(["127.0.0.1:4318:4318"]);
    for (const [name, s] of Object.entries(services)) for (const p of s.ports ?? []) expect(p, name).toMatch(/^127\.0\.0\.1:/);
    // a token can be given; empty leaves the API open, on loopback
    expect(services.console?.environment?.DRIFTWATCH_API_TOKEN).toBe(`$\{DRIFTWATCH_API_TOKEN:-}`); // compose's substitution, as written
  });

  it("has a healthcheck for every service", () => {
    expect(Object.keys(services).sort()).toEqual([
      "analyser",
      "console",
      "gateway",
      "grafana",
      "ingest",
      "kafka",
      "notifier",
      "prometheus",
      "redis",
      "revoker",
    ]);
    for (const [name, s] of Object.entries(services)) expect(s.healthcheck?.test.length, name).toBeGreaterThan(1);
  });

  it("keeps Kafka's data on a named volume, where the broker writes it", () => {
    expect(services.kafka?.volumes).toContain("kafka-data:/var/lib/kafka/data");
    expect(services.kafka?.environment?.KAFKA_LOG_DIRS).toBe("/var/lib/kafka/data");
    expect(services.kafka?.environment?.CLUSTER_ID).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Object.keys(compose.volumes)).toContain("kafka-data");
  });

  it("runs Redis with persistence (append-only file and snapshots) on a named volume", () => {
    const command = services.redis?.command ?? [];
    expect(command.slice(command.indexOf("--appendonly"), command.indexOf("--appendonly") + 2)).toEqual(["--appendonly", "yes"]);
    expect(command).toContain("--save");
    expect(command.slice(command.indexOf("--dir"), command.indexOf("--dir") + 2)).toEqual(["--dir", "/data"]);
    expect(services.redis?.volumes).toContain("redis-data:/data");
    expect(Object.keys(compose.volumes)).toContain("redis-data");
  });

  it("every Driftwatch service's healthcheck follows /readyz on its ops port, which is open to the compose network only", async () => {
    let ready = true;
    const port = await listening(
      createHttpServer((req, res) => {
        res.statusCode = req.url === "/readyz" && ready ? 200 : 503;
        res.end();
      }) as unknown as Server,
    );
    const driftwatch = Object.entries(services).filter(([, s]) => s.command?.[0] === "run");
    expect(driftwatch.map(([name]) => name).sort()).toEqual(["analyser", "console", "gateway", "ingest", "notifier", "revoker"]);
    for (const [name, s] of driftwatch) {
      expect(s.environment?.DRIFTWATCH_OPS_HOST, name).toBe("0.0.0.0");
      expect(await healthcheck(name, { DRIFTWATCH_OPS_PORT: String(port) }), name).toBe(0);
    }
    ready = false;
    for (const [name] of driftwatch) expect(await healthcheck(name, { DRIFTWATCH_OPS_PORT: String(port) }), name).toBe(1);
    expect(await healthcheck("ingest", { DRIFTWATCH_OPS_PORT: "1" })).toBe(1);
  });

  it("Prometheus (profile observability) scrapes every Driftwatch service's ops port, with the alert rules; Grafana gets the dashboard", () => {
    const prometheus = parse(readFileSync("deploy/prometheus/prometheus.yml", "utf8")) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = prometheus.scrape_configs.find((c) => c.job_name === "driftwatch")?.static_configs.flatMap((c) => c.targets) ?? [];
    const driftwatch = Object.entries(services)
      .filter(([, s]) => s.command?.[0] === "run")
      .map(([name]) => `${name}:9464`);
    expect(targets.sort()).toEqual(driftwatch.sort());
    const mounts = (name: string) => Object.fromEntries((services[name]?.volumes ?? []).map((v) => v.split(":").slice(0, 2).reverse()));
    for (const rules of prometheus.rule_files) expect(mounts("prometheus")[rules]).toMatch(/^\.\/deploy\/prometheus\/.+\.yml$/);
    expect(mounts("grafana")["/var/lib/grafana/dashboards"]).toBe("./deploy/grafana/dashboards");
    for (const name of ["prometheus", "grafana"]) {
      expect((services[name] as { profiles?: string[] }).profiles, name).toEqual(["observability"]);
      for (const p of services[name]?.ports ?? []) expect(p).toMatch(/^127\.0\.0\.1:/);
    }
  });
});
