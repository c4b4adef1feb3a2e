import type { Writable } from "node:stream";
import type { Finding } from "../../../schemas/finding.js";
import type { AlertOutput } from "./output.js";

/** Findings as JSON lines on stdout (logs go to stderr, so stdout can be piped). */
export class StdoutOutput implements AlertOutput {
  readonly name = "stdout";

  constructor(private readonly stream: Writable = process.stdout) {}

  async send(findings: Finding[]): Promise<void> {
    if (findings.length === 0) return;
    const text = findings.map((f) => `${JSON.stringify({ type: "driftwatch.finding", finding: f })}\n`).join("");
    await new Promise<void>((resolve, reject) => this.stream.write(text, (err) => (err ? reject(err) : resolve())));
  }
}
