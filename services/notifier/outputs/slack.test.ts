import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import { finding, revocation, T0 } from "../../../test/support/alerts.js";
import type { LoopbackServer } from "../../../test/support/loopback-server.js";
import { SLACK_PATH, slackWebhook } from "../../../test/support/soc-receivers.js";
import { Delivery, type DeliveryEvent } from "../../runtime/delivery.js";
import { MemoryStore } from "../../runtime/store/memory-store.js";
import { IncidentBook } from "../incident.js";
import { SlackOutput, slackMessage } from "./slack.js";

interface Block {
  type: string;
  text?: { type: string; text: string };
  fields?: { type: string; text: string }[];
  elements?: { type: string; text: string }[];
}

describe("SlackOutput", () => {
  let slack: LoopbackServer;
  let v1: IncidentUpdate;
  let v2: IncidentUpdate;
  let events: DeliveryEvent[];

  beforeAll(async () => {
    slack = await slackWebhook().start();
    const book = new IncidentBook(new MemoryStore(), { now: () => T0 + 100 });
    v1 = (await book.addFindings("task-1", [finding("a", { explanation: "sent <b>data</b> & more to evil.example" })])) as IncidentUpdate;
    v2 = (await book.addRevocation(revocation({ status: "dead_lettered", detail: "HTTP 500 (gave up)" }))) as IncidentUpdate;
  });
  afterAll(() => slack.stop());
  beforeEach(() => {
    slack.reset();
    events = [];
  });

  const output = (over: { maxAttempts?: number; timeoutMs?: number; maxDelayMs?: number } = {}) =>
    new SlackOutput(
      { url: `${slack.url}${SLACK_PATH}`, timeoutMs: over.timeoutMs ?? 2000 },
      new Delivery({
        timeoutMs: 2000,
        retry: { maxAttempts: over.maxAttempts ?? 1, baseDelayMs: 5, maxDelayMs: over.maxDelayMs ?? 2000, budgetMs: 10_000 },
        circuit: false,
        onEvent: (e) => events.push(e),
      }),
    );

  it("builds a Block Kit message with a plain-text fallback, mrkdwn escaped", () => {
    const msg = slackMessage(v1);
    expect(msg.text).toBe(
      `[HIGH] Agent drift: billing-agent in task task-1: [high] scope.tool at step 3: sent <b>data</b> & more to evil.example`,
    );
    const blocks = msg.blocks as Block[];
    expect(blocks.map((b) => b.type)).toEqual(["header", "section", "section", "context"]);
    expect(blocks[0]?.text).toEqual({ type: "plain_text", text: "[HIGH] Agent drift: billing-agent in task task-1", emoji: true });
    expect(blocks[1]?.text?.text).toContain("sent &lt;b&gt;data&lt;/b&gt; &amp; more");
    expect(blocks[2]?.fields?.map((f) => f.text)).toEqual([
      "*Severity*\nhigh",
      "*Task*\ntask-1",
      "*Agents*\nbilling-agent",
      "*Findings*\n1",
      "*Rules*\nscope.tool ×1",
      "*Credentials*\nnone",
    ]);
    expect(blocks[3]?.elements?.[0]?.text).toContain(`Driftwatch incident ${v1.incident.id} · version 1 · ASI02, L3, MANAGE-2.4`);
    // a credential that could not be revoked is what the message says
    expect(slackMessage(v2).text).toMatch(/^\[CRITICAL\] .*could not be revoked: HTTP 500/);
    expect((slackMessage(v2).blocks[2] as Block).fields?.[5]?.text).toBe("*Credentials*\nvault:lease:db/creds/billing/abc: dead_lettered");
  });

  it("POSTs the message to the webhook, which answers ok", async () => {
    expect(await output().send(v1)).toEqual({ ok: true, detail: "HTTP 200" });
    expect(slack.calls).toHaveLength(1);
    const call = slack.calls[0];
    expect(call).toMatchObject({ method: "POST", path: SLACK_PATH, status: 200 });
    expect(call?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(call?.body ?? "")).toEqual(slackMessage(v1));
  });

  it("honours 429 Retry-After, then delivers", async () => {
    slack.retryAfter = "1";
    slack.script.push("429");
    expect(await output({ maxAttempts: 3 }).send(v1)).toMatchObject({ ok: true });
    expect(slack.calls.map((c) => c.status)).toEqual([429, 200]);
    const waited = (slack.calls[1]?.atMs ?? 0) - (slack.calls[0]?.atMs ?? 0);
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(events.find((e) => e.kind === "retry")).toMatchObject({ retryAfterMs: 1000, delayMs: 1000 });
  });

  it("a refusal (404 no_service, 400 invalid_payload) is permanent and says Slack's reason, never the URL", async () => {
    const wrong = new SlackOutput(
      { url: `${slack.url}/services/T0001/B0001/wrong-secret-path` },
      new Delivery({ timeoutMs: 1000, retry: { maxAttempts: 1 }, circuit: false }),
    );
    const result = await wrong.send(v1);
    expect(result).toEqual({
      ok: false,
      permanent: true,
      detail: `Slack refused incident ${v1.incident.id} version 1: HTTP 404 (no_service)`,
    });
    expect(result.detail).not.toContain("wrong-secret-path");
  });

  it("keeps the secret URL out of circuit names and metrics (the endpoint is `slack`)", async () => {
    await output().send(v1);
    expect(events.filter((e) => e.kind === "attempt").map((e) => e.endpoint)).toEqual(["slack"]);
  });

  it("a slow answer past the time-out is a failure to retry later", async () => {
    slack.slowMs = 400;
    slack.script.push("slow");
    const result = await output({ timeoutMs: 100 }).send(v1);
    expect(result).toMatchObject({ ok: false, detail: expect.stringMatching(/timed out after 100 ms/) });
    expect(result.permanent).toBeUndefined();
  });
});
