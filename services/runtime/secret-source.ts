import { readFileSync, statSync } from "node:fs";

/**
 * A secret that an adapter reads when it needs it: a fixed value (from the environment), or
 * a file that is read again whenever it changes, so a rotated secret (a Vault token renewed
 * by Vault Agent, a Kubernetes secret swapped under its symlink) is picked up without a
 * restart. `read()` throws with a message that names the file, never the secret.
 */
export interface SecretSource {
  /** The current secret. `fresh` re-reads a file even when it looks unchanged. */
  read(fresh?: boolean): string;
  /** Where it comes from, for messages: "environment" or the file's path. */
  readonly origin: string;
}

export function fixedSecret(value: string): SecretSource {
  return { read: () => value, origin: "environment" };
}

export class FileSecret implements SecretSource {
  private value: string | undefined;
  private stamp = "";

  constructor(readonly path: string) {}

  get origin(): string {
    return this.path;
  }

  read(fresh = false): string {
    let stamp: string;
    try {
      const s = statSync(this.path); // follows symlinks: a swapped link target has another inode
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    } catch (err) {
      throw new Error(`cannot read secret file ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (fresh || this.value === undefined || stamp !== this.stamp) {
      let text: string;
      try {
        text = readFileSync(this.path, "utf8").trim();
      } catch (err) {
        throw new Error(`cannot read secret file ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (text === "") throw new Error(`secret file ${this.path} is empty`);
      this.value = text;
      this.stamp = stamp;
    }
    return this.value;
  }
}

/** The source of a secret given in the environment (`{ value }`) or in a file (`{ file }`, re-read when it changes). */
export function secretFrom(ref: { value: string } | { file: string }): SecretSource {
  return "file" in ref ? new FileSecret(ref.file) : fixedSecret(ref.value);
}
