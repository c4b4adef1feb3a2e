import type { CredentialBinding } from "../../schemas/lifecycle.js";
import { type Store, taskKey } from "../runtime/store/store.js";

/**
 * Which task a credential belongs to. A credential is bound to one task: the one the scope
 * registry registered it with, or else the first whose span reported it
 * (`agent.credential.id`). The first binding wins and never moves, so a credential seen on
 * another task's step is a reuse beyond its boundary; a delegate's credentials are its own
 * task's, and its delegating task's are never bound to it.
 *
 *   credential:{id}:binding   JSON CredentialBinding (the credential id is the hash tag,
 *                             like its revocation claim)
 *   task:{id}:credentials     every credential the task registered or used (set)
 */
const bindingKey = (credentialId: string) => `credential:{${credentialId}}:binding`;

/** A credential registered with a task through the scope registry. */
export interface RegisteredCredential {
  credentialId: string;
  store?: string;
  kind?: string;
  expiresAtMs?: number;
}

export interface RegisterResult {
  bound: CredentialBinding[];
  /** Credentials already bound to another task: not registered. */
  conflicts: CredentialBinding[];
}

/** A credential of a task, and the binding that says whose it is. */
export interface TaskCredential {
  credentialId: string;
  binding?: CredentialBinding;
  /** Bound to another task: this task used someone else's credential. */
  foreign: boolean;
}

export class CredentialBindings {
  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
  ) {}

  /**
   * Binds credentials a task's spans reported to it, unless bound already (to it or to
   * another task). Issued without waiting for anything else (one burst with the task's writes).
   */
  bindFromSpans(taskId: string, agentId: string | undefined, credentialIds: string[], atMs: number): Promise<boolean>[] {
    return credentialIds.map((credentialId) => {
      const binding: CredentialBinding = { credentialId, taskId, ...(agentId ? { agentId } : {}), source: "span", boundAtMs: atMs };
      return this.store.setIfAbsent(bindingKey(credentialId), JSON.stringify(binding), { ttlMs: this.ttlMs });
    });
  }

  /**
   * Registers credentials with a task (the scope registry). A credential already bound to
   * this task is updated (its store, kind and expiry; it keeps its binding time); one bound
   * to another task is a conflict and left as it is.
   */
  async register(taskId: string, agentId: string | undefined, credentials: RegisteredCredential[], atMs: number): Promise<RegisterResult> {
    const result: RegisterResult = { bound: [], conflicts: [] };
    for (const c of credentials) {
      const binding: CredentialBinding = {
        credentialId: c.credentialId,
        taskId,
        ...(agentId ? { agentId } : {}),
        source: "registry",
        ...(c.store ? { store: c.store } : {}),
        ...(c.kind ? { kind: c.kind } : {}),
        ...(c.expiresAtMs !== undefined ? { expiresAtMs: c.expiresAtMs } : {}),
        boundAtMs: atMs,
      };
      const key = bindingKey(c.credentialId);
      if (await this.store.setIfAbsent(key, JSON.stringify(binding), { ttlMs: this.ttlMs })) {
        result.bound.push(binding);
        continue;
      }
      const existing = await this.get(c.credentialId);
      if (existing && existing.taskId !== taskId) {
        result.conflicts.push(existing);
        continue;
      }
      const updated: CredentialBinding = { ...binding, boundAtMs: existing?.boundAtMs ?? atMs };
      await this.store.set(key, JSON.stringify(updated), { ttlMs: this.ttlMs });
      result.bound.push(updated);
    }
    if (result.bound.length > 0) {
      const set = taskKey(taskId, "credentials");
      await this.store.setAdd(
        set,
        result.bound.map((b) => b.credentialId),
      );
      await this.store.expire(set, this.ttlMs);
    }
    return result;
  }

  async get(credentialId: string): Promise<CredentialBinding | undefined> {
    const raw = await this.store.get(bindingKey(credentialId));
    return raw ? (JSON.parse(raw) as CredentialBinding) : undefined;
  }

  /** The bindings of these credentials (read together: one round trip with auto-pipelining). */
  async of(credentialIds: string[]): Promise<Map<string, CredentialBinding>> {
    const found = await Promise.all(credentialIds.map((c) => this.get(c)));
    return new Map(found.flatMap((b) => (b ? [[b.credentialId, b] as const] : [])));
  }

  /** Every credential the task registered or used, with its binding, in id order. */
  async ofTask(taskId: string): Promise<TaskCredential[]> {
    const ids = (await this.store.setMembers(taskKey(taskId, "credentials"))).sort();
    const bindings = await this.of(ids);
    return ids.map((credentialId) => {
      const binding = bindings.get(credentialId);
      return { credentialId, ...(binding ? { binding } : {}), foreign: binding !== undefined && binding.taskId !== taskId };
    });
  }
}
