import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, isIPv6, type Socket } from "node:net";
import { hostname } from "node:os";
import type { Severity } from "../../../schemas/finding.js";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import { type DetectionFinding, toDetectionFinding } from "../ocsf.js";
import type { AlertOutput, SendResult } from "./output.js";

/**
 * Each incident version as one syslog message (RFC 5424) over UDP (RFC 5426, one message
 * per datagram) or TCP (RFC 6587 octet counting: `<length> <message>`, one connection kept
 * open and re-opened when it breaks). PRI is the facility and the incident's severity;
 * structured data names the incident (`driftwatch@32473`: 32473 is the example enterprise
 * number of RFC 5612) and the software (`origin`); MSG is the OCSF Detection Finding as
 * JSON, a compact one (no evidences, observables or extras) when that is too long, else a
 * one-line summary. TCP gives no acknowledgement: a message written just before the
 * collector goes away can be lost with the connection.
 */
export interface SyslogTarget {
  transport: "udp" | "tcp";
  host: string;
  port: number;
  /** 0..23 (e.g. 4 auth, 16 local0; names in config.ts). */
  facility: number;
  appName?: string;
  /** HOSTNAME in the header; this machine's name by default. */
  hostname?: string;
  /** Time-out of a TCP connect or write. */
  timeoutMs?: number;
  /** Longest message, header included (default 8192 bytes, what rsyslog takes by default). */
  maxMessageBytes?: number;
}

/** Syslog severities: 2 critical, 3 error, 4 warning, 5 notice, 6 informational. */
export const SYSLOG_SEVERITY: Record<Severity, number> = { critical: 2, high: 3, medium: 4, low: 5, info: 6 };

const SD_ID = "driftwatch@32473";
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** A header field: printable US-ASCII without spaces, at most `max` characters, "-" when empty. */
function headerField(value: string, max: number): string {
  const v = value.replace(/[^\x21-\x7e]/g, "-").slice(0, max);
  return v || "-";
}

/** An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424, 6.3.3). */
function paramValue(value: string | number): string {
  return String(value).replace(/[\\"\]]/g, (c) => `\\${c}`);
}

function structuredData(update: IncidentUpdate, ocsf: DetectionFinding): string {
  const i = update.incident;
  const params: [string, string | number][] = [
    ["incident", i.id],
    ["version", i.version],
    ["task", i.taskId],
    ["severity", i.severity],
    ["findings", i.findingCount],
    ["activity", ocsf.activity_name],
    ["class_uid", ocsf.class_uid],
  ];
  const own = params.map(([k, v]) => `${k}="${paramValue(v)}"`).join(" ");
  const product = ocsf.metadata.product;
  return `[${SD_ID} ${own}][origin software="${paramValue(product.name)}" swVersion="${paramValue(product.version)}"]`;
}

/** The OCSF record without what makes it long (for a message that must stay short). */
function compact(ocsf: DetectionFinding): Omit<DetectionFinding, "evidences" | "observables" | "unmapped"> {
  const { evidences: _e, observables: _o, unmapped: _u, ...rest } = ocsf;
  return rest;
}

/** One RFC 5424 message for an incident version, at most `maxBytes` long. */
export function syslogMessage(
  update: IncidentUpdate,
  options: { facility: number; hostname: string; appName: string; procId: string; maxBytes: number },
): Buffer {
  const ocsf = toDetectionFinding(update);
  const pri = options.facility * 8 + SYSLOG_SEVERITY[update.incident.severity];
  const header = [
    `<${pri}>1`,
    new Date(ocsf.time).toISOString(),
    headerField(options.hostname, 255),
    headerField(options.appName, 48),
    headerField(options.procId, 128),
    "incident",
    structuredData(update, ocsf),
  ].join(" ");
  const head = Buffer.from(`${header} `, "utf8");
  const room = options.maxBytes - head.length - BOM.length;
  const summary = `[${update.incident.severity}] ${update.incident.title}: ${update.change.summary}`;
  for (const body of [JSON.stringify(ocsf), JSON.stringify(compact(ocsf)), summary]) {
    const msg = Buffer.from(body, "utf8");
    if (msg.length <= room) return Buffer.concat([head, BOM, msg]);
  }
  // even the summary is too long: cut it (at a character boundary)
  let cut = Buffer.from(summary, "utf8").subarray(0, Math.max(0, room)).toString("utf8");
  if (cut.endsWith("\uFFFD")) cut = cut.slice(0, -1);
  return Buffer.concat([head, BOM, Buffer.from(cut, "utf8")]);
}

/** RFC 6587 octet counting: the message's length in bytes, a space, the message. */
export function octetCounted(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `, "ascii"), message]);
}

export class SyslogOutput implements AlertOutput {
  readonly name = "syslog";
  private udp: UdpSocket | undefined;
  private tcp: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private closed = false;

  constructor(
    private readonly target: SyslogTarget,
    readonly minSeverity: Severity = "info",
  ) {}

  message(update: IncidentUpdate): Buffer {
    return syslogMessage(update, {
      facility: this.target.facility,
      hostname: this.target.hostname ?? hostname(),
      appName: this.target.appName ?? "driftwatch",
      procId: String(process.pid),
      maxBytes: this.target.maxMessageBytes ?? 8192,
    });
  }

  async send(update: IncidentUpdate): Promise<SendResult> {
    const where = `${this.target.transport}://${this.target.host}:${this.target.port}`;
    try {
      const message = this.message(update);
      if (this.target.transport === "udp") await this.sendUdp(message);
      else await this.sendTcp(octetCounted(message));
      return { ok: true, detail: `sent to ${where}` };
    } catch (err) {
      return { ok: false, detail: `syslog ${where} did not take incident ${update.incident.id}: ${(err as Error).message}` };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.tcp?.destroy();
    this.tcp = undefined;
    const udp = this.udp;
    this.udp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
  }

  private sendUdp(message: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error("closed"));
    if (!this.udp) {
      const socket = createSocket(isIPv6(this.target.host) ? "udp6" : "udp4");
      socket.on("error", () => undefined); // a send reports its own error
      socket.unref();
      this.udp = socket;
    }
    const socket = this.udp;
    return new Promise((resolve, reject) =>
      socket.send(message, this.target.port, this.target.host, (err) => (err ? reject(err) : resolve())),
    );
  }

  private async sendTcp(frame: Buffer): Promise<void> {
    const socket = await this.connection();
    const timeoutMs = this.target.timeoutMs ?? 5000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`write timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.write(frame, (err) => {
        clearTimeout(timer);
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve();
      });
    });
  }

  /** The open connection, or a new one (one connect at a time). */
  private connection(): Promise<Socket> {
    if (this.closed) return Promise.reject(new Error("closed"));
    const open = this.tcp;
    if (open && !open.destroyed && open.writable) return Promise.resolve(open);
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const timeoutMs = this.target.timeoutMs ?? 5000;
      const socket = connect({ host: this.target.host, port: this.target.port });
      const timer = setTimeout(() => socket.destroy(new Error(`connect timed out after ${timeoutMs} ms`)), timeoutMs);
      const failed = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once("error", failed);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.off("error", failed);
        socket.on("error", () => socket.destroy()); // the next write finds it closed and reconnects
        socket.on("end", () => socket.destroy()); // the collector hung up
        socket.on("close", () => {
          if (this.tcp === socket) this.tcp = undefined;
        });
        socket.on("data", () => undefined); // a collector says nothing in RFC 6587; ignore it if it does
        socket.setKeepAlive(true);
        socket.unref();
        this.tcp = socket;
        resolve(socket);
      });
    }).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }
}
