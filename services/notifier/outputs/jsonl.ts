import { appendFile } from "node:fs/promises";
import type { Writable } from "node:stream";
import type { Severity } from "../../../schemas/finding.js";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import { toDetectionFinding } from "../ocsf.js";
import type { AlertOutput, SendResult } from "./output.js";

/**
 * Each incident version as one JSON line: the version as the notifier keeps it with its
 * OCSF Detection Finding as `ocsf` (the signed webhook's body). On stdout (logs go to
 * stderr, so stdout can be piped) or appended to a file (opened for each line, so a rotated
 * file is simply created again).
 */
export type JsonLinesTarget = { stream: Writable } | { path: string };

export function jsonLine(update: IncidentUpdate): string {
  return `${JSON.stringify({ ...update, ocsf: toDetectionFinding(update) })}\n`;
}

export class JsonLinesOutput implements AlertOutput {
  readonly name: string;

  constructor(
    private readonly target: JsonLinesTarget = { stream: process.stdout },
    readonly minSeverity: Severity = "info",
  ) {
    this.name = "path" in target ? "jsonl" : "stdout";
  }

  async send(update: IncidentUpdate): Promise<SendResult> {
    const line = jsonLine(update);
    try {
      if ("path" in this.target) {
        await appendFile(this.target.path, line, "utf8");
        return { ok: true, detail: `appended to ${this.target.path}` };
      }
      const stream = this.target.stream;
      await new Promise<void>((resolve, reject) => stream.write(line, (err) => (err ? reject(err) : resolve())));
      return { ok: true, detail: "written" };
    } catch (err) {
      return { ok: false, detail: `${this.name} could not take incident ${update.incident.id}: ${(err as Error).message}` };
    }
  }
}
