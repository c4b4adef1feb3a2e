import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import { finding, T0 } from "../../../test/support/alerts.js";
import { type HecEndpoint, hecEndpoint } from "../../../test/support/soc-receivers.js";
import { Delivery } from "../../runtime/delivery.js";
import { MemoryStore } from "../../runtime/store/memory-store.js";
import { IncidentBook } from "../incident.js";
import { toDetectionFinding } from "../ocsf.js";
import { hecEventUrl, SplunkHecOutput } from "./splunk-hec.js";

const TOKEN = "11111111-2222-3333-4444-555555555555";

describe("SplunkHecOutput", () => {
  let hec: HecEndpoint;
  let v1: IncidentUpdate;

  beforeAll(async () => {
    hec = hecEndpoint(TOKEN);
    await hec.server.start();
    const book = new IncidentBook(new MemoryStore(), { now: () => T0 + 1234 });
    v1 = (await book.addFindings("task-1", [finding("a")])) as IncidentUpdate;
  });
  afterAll(() => hec.server.stop());
  beforeEach(() => {
    hec.server.reset();
    hec.busy = 0;
  });

  const output = (over: { token?: string; index?: string; maxAttempts?: number } = {}) =>
    new SplunkHecOutput(
      {
        url: hec.server.url,
        token: over.token ?? TOKEN,
        sourcetype: "driftwatch:ocsf",
        source: "driftwatch",
        host: "dw-test",
        ...(over.index ? { index: over.index } : {}),
      },
      new Delivery({ timeoutMs: 2000, retry: { maxAttempts: over.maxAttempts ?? 1, baseDelayMs: 5, maxDelayMs: 50 }, circuit: false }),
    );

  it("posts to /services/collector/event unless the URL names a path", () => {
    expect(hecEventUrl("https://splunk.example:8088")).toBe("https://splunk.example:8088/services/collector/event");
    expect(hecEventUrl("https://splunk.example:8088/")).toBe("https://splunk.example:8088/services/collector/event");
    expect(hecEventUrl("https://hec.example/services/collector/event")).toBe("https://hec.example/services/collector/event");
    expect(hecEventUrl("https://proxy.example/splunk/hec")).toBe("https://proxy.example/splunk/hec");
  });

  it("sends the OCSF record as the event, with the token, time in seconds, host, source, sourcetype and index", async () => {
    expect(await output({ index: "security" }).send(v1)).toEqual({ ok: true, detail: "HTTP 200" });
    const call = hec.server.calls[0];
    expect(call).toMatchObject({ method: "POST", path: "/services/collector/event", status: 200 });
    expect(call?.headers.authorization).toBe(`Splunk ${TOKEN}`);
    expect(JSON.parse(call?.body ?? "")).toEqual({
      time: (T0 + 1234) / 1000,
      host: "dw-test",
      source: "driftwatch",
      sourcetype: "driftwatch:ocsf",
      index: "security",
      event: toDetectionFinding(v1),
    });
  });

  it("leaves the index to the token's default when none is set", async () => {
    await output().send(v1);
    expect(JSON.parse(hec.server.calls[0]?.body ?? "")).not.toHaveProperty("index");
  });

  it("retries while HEC is busy (503), then delivers", async () => {
    hec.busy = 2;
    expect(await output({ maxAttempts: 3 }).send(v1)).toMatchObject({ ok: true });
    expect(hec.server.calls.map((c) => c.status)).toEqual([503, 503, 200]);
  });

  it("a busy HEC after the attempts is a failure to retry later, with HEC's text", async () => {
    hec.busy = 5;
    const result = await output().send(v1);
    expect(result).toEqual({
      ok: false,
      detail: `Splunk HEC refused incident ${v1.incident.id} version 1: HTTP 503 ({"text":"Server is busy","code":9})`,
    });
  });

  it("a wrong token is a refusal, and the token never shows in what it says", async () => {
    const result = await output({ token: "not-the-token" }).send(v1);
    expect(result).toMatchObject({
      ok: false,
      permanent: true,
      detail: expect.stringMatching(/HTTP 403 \(\{"text":"Invalid token","code":4\}\)/),
    });
    expect(result.detail).not.toContain("not-the-token");
  });
});
