import { afterEach, describe, expect, it } from "vitest";
import type { DeadLetter } from "../../schemas/deadletter.js";
import type { Revocation } from "../../schemas/revocation.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { type App, type ServiceName, startDistributed } from "../../services/cli/app.js";
import { RevocationLedger } from "../../services/revoker/ledger.js";
import { revocationId } from "../../services/revoker/revoker.js";
import type { Bus, BusMessage } from "../../services/runtime/bus/bus.js";
import type { Config } from "../../services/runtime/config.js";
import { recordsOf } from "../../services/runtime/decode.js";
import type { RedisStore } from "../../services/runtime/store/redis-store.js";
import { type CredentialTask, credentialTaskMessages } from "../support/credential-tasks.js";
import { FakeVault } from "../support/fake-vault.js";
import { credentialOfCall, FakeWebhookStore } from "../support/fake-webhook-store.js";
import { waitForStableGroup } from "../support/kafka-groups.js";
import type { RecordedCall } from "../support/loopback-server.js";
import { shippedPoliciesWith } from "../support/policy-dir.js";
import { distributedConfig, isolation, kafkaBus, redisStore, testLogger } from "../support/ports.js";
import { eventually } from "../support/wait.js";
import { newSecret } from "../support/webhook-receiver.js";

/**
 * Revocation through credential-store outages, end to end: OTLP on `otlp_spans` through
 * ingest, pathfinder, detector and two revoker instances in one consumer group (each its
 * own app, as separate processes would be), on the real Kafka broker and Redis, against a
 * fake Vault and a generic signed-webhook store, real HTTP servers on loopback.
 *
 * The stores go through the outages a revoker meets: connection refused (stopped, then
 * back), 500s, answers slower than the revoker's time-out (the store still carries them
 * out), 429 with Retry-After, intermittent failures, and one revoker instance closed and
 * replaced mid-outage. What must hold, per credential bound to a drifting task:
 *
 * - the ledger: exactly one record, `revoked`; its history ends with the one `revoked`
 *   outcome, every outcome before it `failed` (and at least one, for every credential that
 *   met a sustained outage); the attempts it counts cover every request the store saw;
 * - `agent.revocations` never says `revoked` twice differently (a done revocation may be
 *   announced again as it stands, never re-done);
 * - the store: accepted it once, and Driftwatch was told "revoked" exactly once (one
 *   answer meaning revoked reached it: a 2xx, or Vault's 400 "invalid accessor" for an
 *   accessor an earlier request revoked). A request the store carried out but answered
 *   after the revoker's time-out is, to the revoker, a failure: it is retried, and the
 *   retry reaches a store that already revoked the credential. That repeat is harmless by
 *   design (Vault's revocations are idempotent, the webhook carries the same `webhook-id`
 *   on every retry): the test checks that such repeats come only after an answer the
 *   revoker never got, that the store's own state changed once, and that every webhook
 *   request for a credential carried the one revocation id;
 * - the latency metric observed each revocation once;
 * - no credential of a benign task was touched.
 *
 * And a store down past the last attempt: the revocation is dead-lettered (one letter on
 * `agent.deadletter`, ledger status `dead_lettered`), and nothing is sent once it is back.
 */

const TOKEN = "hvs.driftwatch-outage-test";

/**
 * Small delivery and retry settings, so that outages of a second or two cost many rounds.
 * The shipped policies, with one change: a billing task's end does not revoke its
 * credentials (test/e2e/credential-lifecycle.test.ts covers that), so what is revoked here
 * is what drift revoked.
 */
const FAST_RETRIES = {
  DRIFTWATCH_POLICY_DIR: shippedPoliciesWith({ "billing-agent": { lifecycle: { onTaskEnd: "ignore" } } }),
  DRIFTWATCH_WEBHOOK_TIMEOUT_MS: "250",
  DRIFTWATCH_VAULT_TIMEOUT_MS: "250",
  DRIFTWATCH_DELIVERY_MAX_ATTEMPTS: "2",
  DRIFTWATCH_DELIVERY_BACKOFF_MS: "20",
  // a Retry-After of 1 s is honoured in full
  DRIFTWATCH_DELIVERY_MAX_DELAY_MS: "1200",
  DRIFTWATCH_DELIVERY_BUDGET_MS: "2000",
  DRIFTWATCH_CIRCUIT_FAILURES: "4",
  DRIFTWATCH_CIRCUIT_COOLDOWN_MS: "200",
  DRIFTWATCH_REVOKE_RETRY_BASE_MS: "100",
  DRIFTWATCH_REVOKE_RETRY_MAX_MS: "600",
  DRIFTWATCH_REVOKE_SWEEP_MS: "50",
};

const storeOf = (credentialId: string) => (credentialId.startsWith("vault:") ? "vault" : "webhook");
const idOf = (credentialId: string) => revocationId(storeOf(credentialId), credentialId);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Harness {
  config: Config;
  bus: Bus;
  redis: RedisStore;
  ledger: RevocationLedger;
  vault: FakeVault;
  store: FakeWebhookStore;
  revocations: Revocation[];
  deadLetters: DeadLetter[];
  revokers: App[];
  startRevoker(): Promise<App>;
  /** Drifting (and benign) tasks holding a Vault lease, a Vault token accessor and a webhook-store credential each. */
  tasks(label: string, drifting: number, benign: number): CredentialTask[];
  publish(tasks: CredentialTask[]): Promise<void>;
}

describe("revocation through credential-store outages (real Kafka, Redis and loopback stores)", () => {
  const closers: (() => Promise<unknown>)[] = [];
  // the stores stop last; everything else closes at once (an idle consumer's disconnect waits out its long poll)
  const stores: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close().catch(() => undefined)));
    await Promise.all(stores.splice(0).map((close) => close().catch(() => undefined)));
  });

  async function harness(label: string, env: Record<string, string>, revokerCount: number): Promise<Harness> {
    const iso = isolation(label);
    const vault = await new FakeVault(TOKEN).start();
    const store = await new FakeWebhookStore(newSecret()).start();
    stores.push(
      () => vault.stop(),
      () => store.stop(),
    );
    const config = distributedConfig(iso, {
      ...FAST_RETRIES,
      DRIFTWATCH_VAULT_ADDR: vault.addr,
      DRIFTWATCH_VAULT_TOKEN: TOKEN,
      DRIFTWATCH_REVOKE_WEBHOOK_URL: store.url,
      DRIFTWATCH_REVOKE_WEBHOOK_SECRET: store.secret,
      ...env,
    });
    const start = async (names: ServiceName[]) => {
      const app = await startDistributed(config, names, { logger: testLogger });
      closers.push(() => app.close());
      return app;
    };
    // ingest first (it creates the topics), then the rest side by side
    await start(["ingest"]);
    const revokers: App[] = [];
    const startRevoker = async () => {
      const app = await start(["revoker"]);
      revokers.push(app);
      return app;
    };
    await Promise.all([start(["pathfinder"]), start(["detector"]), ...Array.from({ length: revokerCount }, () => startRevoker())]);
    await waitForStableGroup(`${iso.groupPrefix}revoker`, revokerCount);

    const bus = kafkaBus();
    closers.push(() => bus.close());
    const redis = redisStore(iso.keyPrefix);
    closers.push(() => redis.close());
    const revocations: Revocation[] = [];
    const deadLetters: DeadLetter[] = [];
    const watch = async (topic: string, into: (m: BusMessage) => void) => {
      const sub = await bus.subscribe({ group: `${iso.groupPrefix}watch-${topic}`, topics: [topic], fromBeginning: true }, async (batch) =>
        batch.forEach(into),
      );
      closers.push(() => sub.close());
    };
    await watch(topicName(config.topicPrefix, TOPICS.revocations), (m) => revocations.push(...(recordsOf(m) as Revocation[])));
    await watch(topicName(config.topicPrefix, TOPICS.deadletter), (m) => deadLetters.push(...(recordsOf(m) as DeadLetter[])));

    const run = iso.id.replace(/[^a-z0-9]/gi, "");
    return {
      config,
      bus,
      redis,
      ledger: new RevocationLedger(redis),
      vault,
      store,
      revocations,
      deadLetters,
      revokers,
      startRevoker,
      tasks(phase, drifting, benign) {
        const out: CredentialTask[] = [];
        for (let i = 0; i < drifting + benign; i++) {
          const n = `${run}-${phase}-${i}`;
          const lease = `aws/creds/deploy/${n}`;
          const accessor = `acc${run}${phase}${i}`;
          vault.leases.add(lease);
          vault.accessors.add(accessor);
          out.push({
            taskId: `task-${n}`,
            credentials: [`vault:lease:${lease}`, `vault:accessor:${accessor}`, `api-key-${n}`],
            drifts: i < drifting,
          });
        }
        return out;
      },
      async publish(tasks) {
        const topic = topicName(config.topicPrefix, TOPICS.otlpSpans);
        await bus.publish(
          topic,
          credentialTaskMessages(tasks).map((m) => ({
            key: m.traceId,
            value: Buffer.from(m.request),
            headers: { "content-type": "application/x-protobuf" },
          })),
        );
      },
    };
  }

  const credentialsOf = (tasks: CredentialTask[], drifting: boolean) =>
    tasks.filter((t) => t.drifts === drifting).flatMap((t) => t.credentials);

  /** Waits until every credential's ledger history holds an outcome with `status`; says which did not, and how they stand. */
  async function waitForOutcome(h: Harness, credentials: string[], status: Revocation["status"], what: string, timeoutMs = 30_000) {
    const missing = async () => {
      const histories = await Promise.all(credentials.map((c) => h.ledger.history(idOf(c))));
      return credentials.filter((_, i) => !histories[i]?.some((o) => o.status === status));
    };
    try {
      await eventually(async () => ((await missing()).length === 0 ? true : undefined), timeoutMs, what);
    } catch (err) {
      const lines = await Promise.all(
        (await missing()).map(async (c) => {
          const history = (await h.ledger.history(idOf(c))).map((o) => `${o.status}(${o.attempts}): ${o.detail}`);
          const claim = await h.redis.get(`credential:{${c}}:revocation`);
          const due = await h.redis.sortedRank("revocations:retry", c);
          return `${c}\n    history: ${history.join(" | ") || "none"}\n    claim: ${claim?.slice(0, 120)}\n    in the retry schedule: ${due !== null}`;
        }),
      );
      throw new Error(`${(err as Error).message}\n  ${lines.join("\n  ")}`);
    }
  }

  const metricTotal = async (
    apps: App[],
    metric: "revocationLatency" | "revocations",
    filter: (name: string, labels: Record<string, unknown>) => boolean,
  ) => {
    let n = 0;
    for (const app of apps)
      for (const v of (await app.metrics[metric].get()).values as { metricName?: string; labels: Record<string, unknown>; value: number }[])
        if (filter(v.metricName ?? "", v.labels)) n += v.value;
    return n;
  };

  it("every credential is revoked exactly once through refused connections, 500s, slow answers, 429s, flaky answers and a revoker restart", async () => {
    // rounds with the circuit open count toward the last attempt: enough of them to outlast every outage here
    const h = await harness("revoke-outages", { DRIFTWATCH_REVOKE_MAX_ATTEMPTS: "400" }, 2);
    const { vault, store } = h;
    const both = [vault.server, store.server];
    const phases: { name: string; tasks: CredentialTask[]; sustained: boolean }[] = [];

    /**
     * One outage: set it up, publish the phase's tasks, hold it until every drifting
     * credential of the phase has a failed outcome in the ledger (so the revoker did meet
     * it), lift it, and wait until they are all revoked.
     */
    const outage = async (
      name: string,
      apply: () => Promise<void> | void,
      whileDown: () => Promise<void> | void,
      lift: () => Promise<void> | void,
    ) => {
      const tasks = h.tasks(name, 4, 1);
      phases.push({ name, tasks, sustained: true });
      const drifting = credentialsOf(tasks, true);
      await apply();
      await h.publish(tasks);
      await waitForOutcome(h, drifting, "failed", `a failed outcome for every credential of phase ${name}`);
      await whileDown();
      await lift();
      await waitForOutcome(h, drifting, "revoked", `every credential of phase ${name} revoked`);
    };
    const nothing = () => undefined;

    // connection refused: both stores stopped for a while, then back on the same ports
    await outage(
      "refused",
      async () => {
        await Promise.all(both.map((s) => s.stop()));
      },
      () => sleep(1000),
      async () => {
        await Promise.all(both.map((s) => s.start()));
      },
    );
    // 500s
    await outage(
      "errors",
      () => {
        for (const s of both) s.outage = "500";
      },
      () => sleep(500),
      () => {
        for (const s of both) s.outage = "none";
      },
    );
    // answers after 700 ms, past the revoker's 250 ms time-out; the stores still carry them out
    for (const s of both) s.slowMs = 700;
    await outage(
      "slow",
      () => {
        for (const s of both) s.outage = "slow";
      },
      () => sleep(500),
      () => {
        for (const s of both) s.outage = "none";
      },
    );
    // 429 with Retry-After: 1 (second)
    for (const s of both) s.retryAfter = "1";
    await outage(
      "throttled",
      () => {
        for (const s of both) s.outage = "429";
      },
      nothing,
      () => {
        for (const s of both) s.outage = "none";
      },
    );

    // flaky: the stores mostly answer, with an error, a throttle or a slow answer now and then
    {
      const tasks = h.tasks("flaky", 6, 1);
      phases.push({ name: "flaky", tasks, sustained: false });
      const pattern = ["500", "none", "slow", "none", "none", "429", "none", "500", "500", "none", "slow"] as const;
      for (const s of both) s.script.push(...pattern, ...pattern, ...pattern);
      for (const s of both) s.retryAfter = "0";
      await h.publish(tasks);
      await waitForOutcome(h, credentialsOf(tasks, true), "revoked", "every credential of phase flaky revoked");
      for (const s of both) s.script.length = 0;
    }

    // a revoker instance closed mid-outage (its share of the partitions and of the retries
    // goes to the other), and a new one started in the same group before the stores are back
    const [, second] = h.revokers as [App, App];
    await outage(
      "restart",
      async () => {
        await Promise.all(both.map((s) => s.stop()));
      },
      async () => {
        await second.close();
        await h.startRevoker();
        await waitForStableGroup(`${h.config.groupPrefix}revoker`, 2);
      },
      async () => {
        await Promise.all(both.map((s) => s.start()));
      },
    );

    // the same while the stores answer too slowly: the instance is closed while it waits on them
    const [first] = h.revokers as [App];
    await outage(
      "restart-slow",
      () => {
        for (const s of both) s.outage = "slow";
      },
      async () => {
        await first.close();
        await h.startRevoker();
        await waitForStableGroup(`${h.config.groupPrefix}revoker`, 2);
      },
      () => {
        for (const s of both) s.outage = "none";
      },
    );

    // late duplicates (a redelivered finding, a sweep that read a stale retry list) get a chance to show
    await sleep(1500);

    const drifting = phases.flatMap((p) => credentialsOf(p.tasks, true));
    const benign = phases.flatMap((p) => credentialsOf(p.tasks, false));
    expect(drifting).toHaveLength(4 * 3 * 6 + 6 * 3);
    expect(new Set(drifting).size).toBe(drifting.length);

    // ---- the ledger: one record per credential, revoked, after the failures it met ----
    expect(await h.ledger.count()).toBe(drifting.length);
    const records = await h.ledger.list({ offset: 0, limit: 1000 });
    expect(records.map((r) => r.credentialId).sort()).toEqual([...drifting].sort());
    const calls: RecordedCall[] = [...vault.calls, ...store.calls];
    const callsFor = new Map<string, RecordedCall[]>();
    for (const c of calls) {
      const credential = credentialOfCall(c);
      if (credential) callsFor.set(credential, [...(callsFor.get(credential) ?? []), c]);
    }
    for (const phase of phases) {
      for (const credential of credentialsOf(phase.tasks, true)) {
        const record = (await h.ledger.get(idOf(credential))) as Revocation;
        expect(record, credential).toMatchObject({ credentialId: credential, credentialStore: storeOf(credential), status: "revoked" });
        const history = await h.ledger.history(record.id);
        const statuses = history.map((o) => o.status);
        // one revoked outcome, the last; everything before it a failure
        expect(
          statuses.filter((s) => s === "revoked"),
          `${credential}: ${statuses}`,
        ).toHaveLength(1);
        expect(statuses.at(-1), credential).toBe("revoked");
        expect(
          statuses.slice(0, -1).every((s) => s === "failed"),
          `${credential}: ${statuses}`,
        ).toBe(true);
        if (phase.sustained) expect(statuses.length, `${credential} met the ${phase.name} outage`).toBeGreaterThan(1);
        // the attempts the ledger counts cover every request the store saw (refused ones it never saw)
        expect(record.attempts, credential).toBeGreaterThanOrEqual((callsFor.get(credential) ?? []).length);
        expect(record.latencyMs?.fromDetection, credential).toBeGreaterThanOrEqual(0);
      }
    }

    // ---- agent.revocations: never two different revoked outcomes for one credential ----
    const unannounced = () => drifting.filter((c) => !h.revocations.some((r) => r.credentialId === c && r.status === "revoked"));
    await eventually(
      () => (unannounced().length === 0 ? true : undefined),
      15_000,
      "a revoked record on agent.revocations for every credential",
    ).catch((err: Error) => {
      const seen = unannounced().map(
        (c) =>
          `${c}: ${h.revocations
            .filter((r) => r.credentialId === c)
            .map((r) => r.status)
            .join(", ")}`,
      );
      throw new Error(`${err.message}; missing:\n  ${seen.join("\n  ")}`);
    });
    for (const credential of drifting) {
      const revoked = h.revocations.filter((r) => r.credentialId === credential && r.status === "revoked");
      expect(new Set(revoked.map((r) => JSON.stringify(r))).size, credential).toBe(1);
    }

    // ---- the stores: each credential accepted once, Driftwatch told "revoked" once ----
    const revokedAtVault = new Map<string, number>();
    for (const v of vault.revoked) {
      const credential = v.startsWith("accessor:") ? `vault:${v}` : `vault:lease:${v}`;
      revokedAtVault.set(credential, (revokedAtVault.get(credential) ?? 0) + 1);
    }
    const revokedAtStore = new Map<string, number>();
    for (const r of store.revoked) revokedAtStore.set(r.credentialId, (revokedAtStore.get(r.credentialId) ?? 0) + 1);
    let repeatedAfterTimeOut = 0;
    for (const credential of drifting) {
      const own = callsFor.get(credential) ?? [];
      const isAccessor = credential.startsWith("vault:accessor:");
      // the store's own state changed once
      expect(storeOf(credential) === "vault" ? revokedAtVault.get(credential) : revokedAtStore.get(credential), credential).toBe(1);
      // answers meaning "revoked" that reached Driftwatch: exactly one
      const meansRevoked = (c: RecordedCall) => (c.status >= 200 && c.status < 300) || (isAccessor && c.status === 400);
      const told = own.filter((c) => c.delivered && meansRevoked(c));
      expect(told.length, `${credential}: ${own.map((c) => `${c.status}/${c.outage}/${c.delivered}`)}`).toBe(1);
      // requests carried out that Driftwatch never heard back from: only slow answers past its time-out
      const unheard = own.filter((c) => !c.delivered);
      expect(
        unheard.every((c) => c.outage === "slow"),
        credential,
      ).toBe(true);
      // what the store carried out besides that one answer, it answered after Driftwatch had timed out and gone
      const carriedOut = own.filter((c) => c.status !== 500 && c.status !== 429);
      expect(
        carriedOut.filter((c) => !c.delivered),
        credential,
      ).toHaveLength(carriedOut.length - 1);
      if (carriedOut.length > 1) repeatedAfterTimeOut++;
      // the webhook store saw one id for a credential however often it was asked: the revocation's
      if (storeOf(credential) === "webhook")
        expect(new Set(own.map((c) => String(c.headers["webhook-id"])))).toEqual(new Set([idOf(credential)]));
    }
    // the slow phase did make the stores carry out requests whose answer came too late
    expect(repeatedAfterTimeOut).toBeGreaterThan(0);

    // ---- nothing for the benign tasks ----
    for (const credential of benign) {
      expect(await h.ledger.get(idOf(credential)), credential).toBeUndefined();
      expect(callsFor.get(credential), credential).toBeUndefined();
    }
    expect(h.deadLetters).toEqual([]);

    // ---- both instances took part; the latency metric observed each revocation once ----
    const revokedBy = await Promise.all(
      h.revokers.map((app) => metricTotal([app], "revocations", (_n, labels) => labels.status === "revoked")),
    );
    expect(revokedBy.reduce((a, b) => a + b, 0)).toBe(drifting.length);
    expect(revokedBy.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(await metricTotal(h.revokers, "revocationLatency", (name) => name.endsWith("_count"))).toBe(drifting.length);
    expect(await h.revokers[0]?.metrics.registry.metrics()).toMatch(/^driftwatch_revocation_latency_seconds_bucket\{/m);
  }, 110_000);

  it("a store down past the last attempt: the revocation is dead-lettered once, and nothing is sent when the store is back", async () => {
    const h = await harness(
      "revoke-deadletter",
      { DRIFTWATCH_REVOKE_MAX_ATTEMPTS: "4", DRIFTWATCH_CIRCUIT_FAILURES: "3", DRIFTWATCH_REVOKE_RETRY_MAX_MS: "300" },
      1,
    );
    const { vault, store } = h;
    await Promise.all([vault.stop(), store.stop()]);
    const tasks = h.tasks("down", 2, 1);
    const drifting = credentialsOf(tasks, true);
    await h.publish(tasks);
    await waitForOutcome(h, drifting, "dead_lettered", "every credential dead-lettered");
    await eventually(() => (h.deadLetters.length >= drifting.length ? true : undefined), 15_000, "the dead letters");

    // the stores come back: a dead-lettered revocation is final (the notifier alerts on it)
    await Promise.all([vault.start(), store.start()]);
    await sleep(1500);
    expect(vault.calls).toEqual([]);
    expect(store.calls).toEqual([]);

    for (const credential of drifting) {
      const record = (await h.ledger.get(idOf(credential))) as Revocation;
      expect(record, credential).toMatchObject({ credentialId: credential, status: "dead_lettered" });
      expect(record.detail).toMatch(/gave up/);
      const statuses = (await h.ledger.history(record.id)).map((o) => o.status);
      expect(statuses.at(-1), credential).toBe("dead_lettered");
      expect(
        statuses.filter((s) => s === "dead_lettered"),
        credential,
      ).toHaveLength(1);
      expect(
        statuses.slice(0, -1).every((s) => s === "failed"),
        `${credential}: ${statuses}`,
      ).toBe(true);
      expect(statuses.length, credential).toBeGreaterThan(1);
      // one dead letter, carrying the request and the final record
      const letters = h.deadLetters.filter((d) => d.reason.includes(`revocation of ${credential} `));
      expect(letters, credential).toHaveLength(1);
      const letter = letters[0] as DeadLetter;
      expect(letter.stage).toBe("revoker");
      const raw = letter.record as { request: { credentialId: string }; revocation: Revocation };
      expect(raw.request.credentialId).toBe(credential);
      expect(raw.revocation).toMatchObject({ id: record.id, status: "dead_lettered" });
      // on agent.revocations too, never as revoked
      expect(h.revocations.some((r) => r.credentialId === credential && r.status === "dead_lettered")).toBe(true);
      expect(h.revocations.some((r) => r.credentialId === credential && r.status === "revoked")).toBe(false);
    }
    expect(h.deadLetters).toHaveLength(drifting.length);
    for (const credential of credentialsOf(tasks, false)) expect(await h.ledger.get(idOf(credential))).toBeUndefined();
  }, 90_000);
});
