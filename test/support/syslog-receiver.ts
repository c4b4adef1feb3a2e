import { createSocket, type Socket as UdpSocket } from "node:dgram";
import type { AddressInfo } from "node:net";
import { createServer, type Server, type Socket } from "node:net";

/**
 * A syslog collector on 127.0.0.1 for tests: UDP (one RFC 5424 message per datagram) and
 * TCP (RFC 6587 octet counting), each message parsed and recorded. The TCP listener can be
 * stopped (connections dropped, connects refused) and started again on the same port.
 */
export interface SyslogMessage {
  transport: "udp" | "tcp";
  raw: string;
  pri: number;
  facility: number;
  severity: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  /** Structured data: SD-ID → its parameters. */
  sd: Record<string, Record<string, string>>;
  /** MSG, without its BOM. */
  msg: string;
  hadBom: boolean;
  /** TCP: the octet count matched the message's length in bytes. */
  framed?: boolean;
}

/** Parses one RFC 5424 message; throws when it does not follow the format. */
export function parseSyslog(raw: Buffer, transport: "udp" | "tcp"): SyslogMessage {
  const text = raw.toString("utf8");
  const head = /^<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(text);
  if (!head) throw new Error(`not RFC 5424: ${text.slice(0, 80)}`);
  let at = head[0].length;
  const sd: Record<string, Record<string, string>> = {};
  if (text[at] === "-") at++;
  else {
    while (text[at] === "[") {
      const end = findElementEnd(text, at);
      const element = text.slice(at + 1, end);
      const id = element.split(" ", 1)[0] as string;
      const params: Record<string, string> = {};
      for (const m of element.slice(id.length).matchAll(/ ([^=\s"\]]+)="((?:[^"\\]|\\.)*)"/g)) {
        params[m[1] as string] = (m[2] as string).replace(/\\(["\\\]])/g, "$1");
      }
      sd[id] = params;
      at = end + 1;
    }
  }
  let msgBytes = Buffer.from(text.slice(at), "utf8");
  if (msgBytes[0] === 0x20) msgBytes = msgBytes.subarray(1);
  const hadBom = msgBytes[0] === 0xef && msgBytes[1] === 0xbb && msgBytes[2] === 0xbf;
  const pri = Number(head[1]);
  return {
    transport,
    raw: text,
    pri,
    facility: pri >> 3,
    severity: pri & 7,
    version: Number(head[2]),
    timestamp: head[3] as string,
    hostname: head[4] as string,
    appName: head[5] as string,
    procId: head[6] as string,
    msgId: head[7] as string,
    sd,
    msg: (hadBom ? msgBytes.subarray(3) : msgBytes).toString("utf8"),
    hadBom,
  };
}

function findElementEnd(text: string, start: number): number {
  let inQuotes = false;
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") i++;
    else if (c === '"') inQuotes = !inQuotes;
    else if (c === "]" && !inQuotes) return i;
  }
  throw new Error("unterminated structured data element");
}

export class SyslogReceiver {
  readonly messages: SyslogMessage[] = [];
  /** What could not be parsed. */
  readonly rejects: string[] = [];
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly connections = new Set<Socket>();
  udpPort = 0;
  tcpPort = 0;

  async start(): Promise<this> {
    const udp = createSocket("udp4");
    udp.on("message", (data) => this.take(data, "udp"));
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", () => resolve()));
    this.udpPort = udp.address().port;
    this.udp = udp;
    await this.startTcp();
    return this;
  }

  /** Listens for TCP again (on the same port once it had one). */
  async startTcp(): Promise<void> {
    if (this.tcp) return;
    const server = createServer((socket) => {
      this.connections.add(socket);
      socket.on("close", () => this.connections.delete(socket));
      socket.on("error", () => undefined);
      let buffered = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        for (;;) {
          const space = buffered.indexOf(0x20);
          if (space < 0) return;
          const count = Number(buffered.subarray(0, space).toString("ascii"));
          if (!Number.isInteger(count) || count <= 0) {
            this.rejects.push(`bad octet count: ${buffered.subarray(0, 40).toString()}`);
            socket.destroy();
            return;
          }
          if (buffered.length < space + 1 + count) return;
          const frame = buffered.subarray(space + 1, space + 1 + count);
          buffered = buffered.subarray(space + 1 + count);
          this.take(frame, "tcp", true);
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.tcpPort, "127.0.0.1", () => resolve());
    });
    this.tcpPort = (server.address() as AddressInfo).port;
    this.tcp = server;
  }

  /** Stops listening for TCP and drops its connections: connects are refused until `startTcp()`. */
  async stopTcp(): Promise<void> {
    const server = this.tcp;
    this.tcp = undefined;
    for (const c of this.connections) c.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async stop(): Promise<void> {
    await this.stopTcp();
    const udp = this.udp;
    this.udp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
  }

  private take(data: Buffer, transport: "udp" | "tcp", framed?: boolean): void {
    try {
      this.messages.push({ ...parseSyslog(data, transport), ...(framed !== undefined ? { framed } : {}) });
    } catch (err) {
      this.rejects.push((err as Error).message);
    }
  }
}
