import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeadLetter } from "../../schemas/deadletter.js";
import { Finding } from "../../schemas/finding.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { collectTopic } from "../../test/support/collect.js";
import { hexId, jsonRequest } from "../../test/support/otlp-build.js";
import { eventually } from "../../test/support/wait.js";
import { type App, startEmbedded } from "../cli/app.js";
import { taskStoreFor } from "../pathfinder/task-store.js";
import type { BusMessage, Subscription } from "../runtime/bus/bus.js";
import { loadConfig } from "../runtime/config.js";
import { recordsOf } from "../runtime/decode.js";
import { createLogger } from "../runtime/logging.js";
import { signSender } from "../runtime/sender-signature.js";

/**
 * Agent authentication in the running product (embedded: gateway, ingest, pathfinder,
 * detector in one process): a span may speak only for the workload its sender's credential
 * names (docs/trust-model.md).
 */
const BILLING_TOKEN = "billing-agent-token-0123456789abcdef";
const SPIFFE_BILLING = "spiffe://acme.example/agents/billing";
const KEY = "the-gateway-and-ingest-share-this-key-0123456789";

describe("agent authentication at the gateway, checked through ingest and the detector", () => {
  let app: App;
  let sign: (sub: string, audience?: string) => Promise<string>;
  const subs: Subscription[] = [];
  let findings: BusMessage[];
  let deadLetters: BusMessage[];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "dw-agent-auth-"));
    writeFileSync(
      join(dir, "agents.yaml"),
      `- { name: billing-prod, token: ${BILLING_TOKEN}, agentIds: [billing-agent], spiffeIds: ["${SPIFFE_BILLING}"] }\n`,
    );
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: "spire-1", use: "jwt-svid" };
    writeFileSync(join(dir, "bundle.json"), JSON.stringify({ keys: [jwk] }));
    sign = (sub, audience = "driftwatch") =>
      new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid: "spire-1" })
        .setSubject(sub)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(privateKey);
    const config = loadConfig({
      DRIFTWATCH_LOG_LEVEL: "silent",
      DRIFTWATCH_POLICY_DIR: "policies",
      DRIFTWATCH_OTLP_PORT: "0",
      DRIFTWATCH_OTLP_TOKENS_FILE: join(dir, "agents.yaml"),
      DRIFTWATCH_OTLP_SPIFFE_BUNDLE: join(dir, "bundle.json"),
      DRIFTWATCH_OTLP_SPIFFE_TRUST_DOMAIN: "acme.example",
      DRIFTWATCH_INGEST_SIGNING_KEY: KEY,
    });
    app = await startEmbedded(config, { services: ["ingest", "pathfinder", "detector", "gateway"], logger: createLogger("silent") });
    findings = await collectTopic(app.bus, topicName(config.topicPrefix, TOPICS.findings), subs);
    deadLetters = await collectTopic(app.bus, topicName(config.topicPrefix, TOPICS.deadletter), subs);
  });
  afterAll(async () => {
    for (const s of subs) await s.close();
    await app.close();
  });

  const post = (body: Buffer, authorization?: string) =>
    fetch(`${app.gatewayUrl}/v1/traces`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
      body,
    });
  /** A task's root span (which ends the task) and a tool call using a credential, for `agentId`. */
  const taskRequest = (taskId: string, agentId: string, resource: Record<string, string> = {}) => {
    const traceId = hexId(16);
    const root = hexId(8);
    return jsonRequest({
      resource: { "service.name": agentId, ...resource },
      spans: [
        {
          traceId,
          spanId: hexId(8),
          parentSpanId: root,
          name: "execute_tool invoices.read",
          attributes: {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.agent.id": agentId,
            "agent.task.id": taskId,
            "gen_ai.tool.name": "invoices.read",
            "agent.credential.id": `lease-${taskId}`,
          },
        },
        {
          traceId,
          spanId: root,
          name: "invoke_agent",
          attributes: { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": agentId, "agent.task.id": taskId },
        },
      ],
    });
  };
  const findingsOf = (taskId: string) =>
    findings.flatMap((m) => recordsOf(m).map((r) => Finding.parse(r))).filter((f) => f.taskId === taskId);
  const tasks = () => taskStoreFor(app.store, { idleMs: 300_000, ttlMs: 3_600_000 });

  it("refuses a request without a credential, or with a wrong one, before reading it (401)", async () => {
    const none = await post(taskRequest("t-anon", "billing-agent"));
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/Bearer/);
    expect((await post(taskRequest("t-anon", "billing-agent"), "Bearer not-a-token-of-anyone-at-all")).status).toBe(401);
    expect((await post(taskRequest("t-anon", "billing-agent"), `Bearer ${await sign(SPIFFE_BILLING, "another-audience")}`)).status).toBe(
      401,
    );
    expect(
      (await post(taskRequest("t-anon", "billing-agent"), `Bearer ${await sign("spiffe://evil.example/agents/billing")}`)).status,
    ).toBe(401);
  });

  it("takes the billing agent's own spans as they are: the task completes and its credential is bound", async () => {
    expect((await post(taskRequest("t-own", "billing-agent"), `Bearer ${BILLING_TOKEN}`)).status).toBe(200);
    const facts = await eventually(
      async () => ((await tasks().facts("t-own"))?.phase === "completed" ? true : undefined),
      5_000,
      "t-own completed",
    );
    expect(facts).toBe(true);
    expect(await tasks().credentials("t-own")).toEqual(["lease-t-own"]);
    expect(findingsOf("t-own").filter((f) => f.ruleId === "ingest.identity_mismatch")).toEqual([]);
  });

  it("trusts a span speaking for another agent for nothing, and flags it; the same with a JWT-SVID for another workload", async () => {
    // the billing agent's token, spans claiming the finance agent: a confused deputy attempt
    expect((await post(taskRequest("t-forged", "finance-ops-agent"), `Bearer ${BILLING_TOKEN}`)).status).toBe(200);
    await eventually(
      () => (findingsOf("t-forged").some((f) => f.ruleId === "ingest.identity_mismatch") ? true : undefined),
      5_000,
      "mismatch finding",
    );
    expect((await tasks().facts("t-forged"))?.phase).not.toBe("completed");
    expect(await tasks().credentials("t-forged")).toEqual([]);
    // a JWT-SVID proving the billing workload, spans whose resource says another workload
    const svid = await sign(SPIFFE_BILLING);
    const other = taskRequest("t-svid", "billing-agent", { "spiffe.id": "spiffe://acme.example/agents/finance" });
    expect((await post(other, `Bearer ${svid}`)).status).toBe(200);
    await eventually(
      () => (findingsOf("t-svid").some((f) => f.ruleId === "ingest.identity_mismatch") ? true : undefined),
      5_000,
      "SVID mismatch",
    );
    // and the right workload passes
    expect((await post(taskRequest("t-svid-ok", "billing-agent"), `Bearer ${svid}`)).status).toBe(200);
    await eventually(
      async () => ((await tasks().facts("t-svid-ok"))?.phase === "completed" ? true : undefined),
      5_000,
      "t-svid-ok completed",
    );
    expect((await tasks().facts("t-svid-ok"))?.spiffeId).toBe(SPIFFE_BILLING);
  });

  it("dead-letters a message on otlp_spans whose sender header is forged (no key, another body, an altered sender)", async () => {
    const topic = topicName("", TOPICS.otlpSpans);
    const body = taskRequest("t-kafka", "finance-ops-agent");
    const sender = { name: "billing-prod", via: "token" as const, agentIds: ["*"], spiffeIds: [] };
    const wrongKey = signSender(Buffer.from("not-the-shared-key-not-the-shared-key!!"), sender, body);
    const moved = signSender(Buffer.from(KEY), sender, Buffer.from("another body"));
    await app.bus.publish(topic, [
      { key: null, value: body, headers: { "content-type": "application/json", ...wrongKey } },
      { key: null, value: body, headers: { "content-type": "application/json", ...moved } },
    ]);
    const letters = await eventually(
      () => {
        const got = deadLetters.map((m) => DeadLetter.parse(JSON.parse(m.value.toString()))).filter((d) => /forged sender/.test(d.reason));
        return got.length >= 2 ? got : undefined;
      },
      5_000,
      "two forged senders dead-lettered",
    );
    expect(letters.every((d) => d.stage === "ingest")).toBe(true);
    expect(await tasks().facts("t-kafka")).toBeUndefined();
  });
});
