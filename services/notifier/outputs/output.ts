import type { Finding } from "../../../schemas/finding.js";

/** A place SOC alerts go. One file per sink in this folder, its test beside it. */
export interface AlertOutput {
  readonly name: string;
  send(findings: Finding[]): Promise<void>;
}
