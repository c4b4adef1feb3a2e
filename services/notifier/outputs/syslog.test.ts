import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import { finding, revocation, T0 } from "../../../test/support/alerts.js";
import { parseSyslog, SyslogReceiver } from "../../../test/support/syslog-receiver.js";
import { eventually } from "../../../test/support/wait.js";
import { MemoryStore } from "../../runtime/store/memory-store.js";
import { IncidentBook } from "../incident.js";
import { toDetectionFinding } from "../ocsf.js";
import { octetCounted, SyslogOutput, syslogMessage } from "./syslog.js";

describe("SyslogOutput", () => {
  let receiver: SyslogReceiver;
  let v1: IncidentUpdate;
  let v2: IncidentUpdate;
  let v3: IncidentUpdate;
  const opened: SyslogOutput[] = [];

  beforeAll(async () => {
    receiver = await new SyslogReceiver().start();
    const book = new IncidentBook(new MemoryStore(), { now: () => T0 + 500 });
    v1 = (await book.addFindings("task-1", [
      finding("a", { severity: "medium", explanation: 'quote " and bracket ] and \\ backslash' }),
    ])) as IncidentUpdate;
    v2 = (await book.addFindings("task-1", [finding("b", { severity: "high" })])) as IncidentUpdate;
    v3 = (await book.addRevocation(revocation({ status: "dead_lettered", detail: "gave up" }))) as IncidentUpdate;
  });
  afterAll(() => receiver.stop());
  beforeEach(() => {
    receiver.messages.length = 0;
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((o) => o.close()));
  });

  const output = (transport: "udp" | "tcp", over: { maxMessageBytes?: number; port?: number } = {}) => {
    const o = new SyslogOutput({
      transport,
      host: "127.0.0.1",
      port: over.port ?? (transport === "udp" ? receiver.udpPort : receiver.tcpPort),
      facility: 4,
      hostname: "dw-host",
      timeoutMs: 500,
      ...(over.maxMessageBytes ? { maxMessageBytes: over.maxMessageBytes } : {}),
    });
    opened.push(o);
    return o;
  };

  it("formats RFC 5424: PRI from facility and severity, header, structured data, BOM and the OCSF JSON", () => {
    const raw = syslogMessage(v1, { facility: 16, hostname: "dw host", appName: "driftwatch", procId: "42", maxBytes: 65_000 });
    const m = parseSyslog(raw, "udp");
    expect(m).toMatchObject({
      pri: 16 * 8 + 4,
      facility: 16,
      severity: 4, // medium: warning
      version: 1,
      timestamp: new Date(T0 + 500).toISOString(),
      hostname: "dw-host",
      appName: "driftwatch",
      procId: "42",
      msgId: "incident",
      hadBom: true,
    });
    expect(m.sd).toEqual({
      "driftwatch@32473": {
        incident: v1.incident.id,
        version: "1",
        task: "task-1",
        severity: "medium",
        findings: "1",
        activity: "Create",
        class_uid: "2004",
      },
      origin: { software: "Driftwatch", swVersion: "0.1.0" },
    });
    expect(JSON.parse(m.msg)).toEqual(toDetectionFinding(v1));
  });

  it("maps severities to syslog's (critical 2 … info 6) and escapes structured data values", () => {
    const sev = (u: IncidentUpdate) =>
      parseSyslog(syslogMessage(u, { facility: 4, hostname: "h", appName: "a", procId: "1", maxBytes: 65_000 }), "udp").severity;
    expect([sev(v1), sev(v2), sev(v3)]).toEqual([4, 3, 2]);
    const tricky = structuredClone(v1);
    tricky.incident.taskId = 'task "x" ]\\';
    const m = parseSyslog(syslogMessage(tricky, { facility: 4, hostname: "h", appName: "a", procId: "1", maxBytes: 65_000 }), "udp");
    expect(m.sd["driftwatch@32473"]?.task).toBe('task "x" ]\\');
  });

  it("shortens a message past the limit: a compact OCSF record, then a summary", () => {
    const opts = { facility: 4, hostname: "h", appName: "a", procId: "1" };
    const full = syslogMessage(v2, { ...opts, maxBytes: 65_000 });
    const compact = parseSyslog(syslogMessage(v2, { ...opts, maxBytes: full.length - 1 }), "udp");
    const record = JSON.parse(compact.msg);
    expect(record).toMatchObject({ class_uid: 2004, finding_info: { uid: v2.incident.id } });
    expect(record).not.toHaveProperty("evidences");
    const tiny = syslogMessage(v2, { ...opts, maxBytes: 600 });
    expect(tiny.length).toBeLessThanOrEqual(600);
    expect(parseSyslog(tiny, "udp").msg).toMatch(/^\[high] Agent drift: billing-agent in task task-1/);
  });

  it("frames TCP messages by octet count", () => {
    const framed = octetCounted(Buffer.from("<12>1 é", "utf8"));
    expect(framed.toString("utf8")).toBe("8 <12>1 é"); // "é" is two bytes
  });

  it("sends over UDP, one message per datagram", async () => {
    const out = output("udp");
    expect(await out.send(v1)).toEqual({ ok: true, detail: `sent to udp://127.0.0.1:${receiver.udpPort}` });
    await out.send(v2);
    await eventually(() => (receiver.messages.length === 2 ? true : undefined), 2000, "two datagrams");
    expect(receiver.messages.map((m) => [m.transport, m.sd["driftwatch@32473"]?.version])).toEqual([
      ["udp", "1"],
      ["udp", "2"],
    ]);
    expect(receiver.rejects).toEqual([]);
  });

  it("sends over TCP with octet counting on one connection", async () => {
    const out = output("tcp");
    for (const u of [v1, v2, v3]) expect(await out.send(u)).toMatchObject({ ok: true });
    await eventually(() => (receiver.messages.length === 3 ? true : undefined), 2000, "three messages");
    expect(receiver.messages.map((m) => [m.transport, m.severity, m.framed])).toEqual([
      ["tcp", 4, true],
      ["tcp", 3, true],
      ["tcp", 2, true],
    ]);
    expect(JSON.parse(receiver.messages[2]?.msg ?? "")).toEqual(toDetectionFinding(v3));
  });

  it("TCP: a refused connection is a failure to retry; after the collector is back it reconnects", async () => {
    const out = output("tcp");
    expect(await out.send(v1)).toMatchObject({ ok: true });
    await eventually(() => (receiver.messages.length === 1 ? true : undefined), 2000, "the first message");
    await receiver.stopTcp();
    // the dropped connection is noticed; the next send must connect again, and is refused
    await new Promise((r) => setTimeout(r, 50));
    const refused = await out.send(v2);
    expect(refused).toMatchObject({ ok: false, detail: expect.stringMatching(/ECONNREFUSED/) });
    expect(refused.permanent).toBeUndefined();
    await receiver.startTcp();
    expect(await out.send(v2)).toMatchObject({ ok: true });
    await eventually(() => (receiver.messages.length === 2 ? true : undefined), 2000, "the message after reconnecting");
    expect(receiver.messages.map((m) => m.sd["driftwatch@32473"]?.version)).toEqual(["1", "2"]);
  });

  it("says so after close", async () => {
    const out = output("tcp");
    await out.close();
    expect(await out.send(v1)).toMatchObject({ ok: false, detail: expect.stringMatching(/closed/) });
  });
});
