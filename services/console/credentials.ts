import type { CredentialBinding, CredentialRegistration } from "../../schemas/lifecycle.js";
import type { Revocation } from "../../schemas/revocation.js";
import type { TaskStore } from "../pathfinder/task-store.js";
import { type CredentialRef, CredentialRefError, parseCredentialRef } from "../revoker/credential-stores/credential-ref.js";
import type { CredentialRevocation, RevocationLedger } from "../revoker/ledger.js";

/**
 * A task's credentials in the console: what the scope registry is told (a reference, or a
 * store's own id with its store and kind) made into the reference the revoker revokes, and
 * each credential's status as the task's bindings and the revocation ledger say.
 */

/** Which credential store revokes a credential (credential-ref.ts: anything without `vault:` or `caep:` goes to the webhook). */
export type CredentialStoreName = "vault" | "caep" | "webhook";

/** A registered credential as it will be bound: its reference, store and kind. */
export interface ResolvedCredential {
  credentialId: string;
  store: CredentialStoreName;
  kind?: string;
  expiresAtMs?: number;
}

const VAULT_KINDS = ["lease", "prefix", "accessor"];
const CAEP_KIND = /^(session|credential:[a-z0-9][a-z0-9._-]{0,63})$/;

const quoted = (id: string) => JSON.stringify(id.length > 200 ? `${id.slice(0, 200)}…` : id);
const schemeOf = (id: string): "vault" | "caep" | undefined => {
  const scheme = id.slice(0, Math.max(0, id.indexOf(":"))).toLowerCase();
  return scheme === "vault" || scheme === "caep" ? scheme : undefined;
};
const storeName = (ref: CredentialRef): CredentialStoreName => (ref.store === "default" ? "webhook" : ref.store);

/** The kind a reference names: the Vault kind, or the CAEP `session`, `subject` or `credential:<type>`. */
function kindOfRef(reference: string, ref: CredentialRef): string | undefined {
  if (ref.store === "vault") return ref.kind;
  if (ref.store === "caep") {
    if (ref.event === "credential-change") return `credential:${ref.credentialType}`;
    return /^caep:session:/i.test(reference) ? "session" : "subject";
  }
  return undefined;
}

/** A registered credential that cannot be one: its message names it. */
export class CredentialRegistrationError extends Error {
  constructor(id: string, reason: string) {
    super(`credential ${quoted(id)}: ${reason}`);
    this.name = "CredentialRegistrationError";
  }
}

/**
 * The reference a registered credential stands for, its store and kind. Throws
 * `CredentialRegistrationError` when it cannot be one (a malformed `vault:`/`caep:`
 * reference, an unknown kind, a store that does not match the reference).
 */
export function resolveCredential(c: CredentialRegistration): ResolvedCredential {
  const fail = (reason: string): never => {
    throw new CredentialRegistrationError(c.id, reason);
  };
  const scheme = schemeOf(c.id);
  const kind = c.store === "vault" || c.store === "caep" ? c.kind?.toLowerCase() : c.kind;
  let reference = c.id;
  if (c.store === "webhook" && scheme) fail(`a ${scheme}: reference is revoked by ${scheme}, not the webhook store`);
  if ((c.store === "vault" || c.store === "caep") && scheme !== c.store) {
    if (scheme) fail(`a ${scheme}: reference is revoked by ${scheme}, not ${c.store}`);
    if (c.store === "vault") {
      if (kind === undefined || !VAULT_KINDS.includes(kind)) fail("a Vault credential's kind is lease, prefix or accessor");
      reference = `vault:${kind}:${c.id}`;
    } else {
      if (kind !== undefined && !CAEP_KIND.test(kind))
        fail("a CAEP credential's kind is session or credential:<credential type> (none: every session of the subject id)");
      reference = kind === undefined ? `caep:${c.id}` : `caep:${kind}:${c.id}`;
    }
  }
  let ref: CredentialRef;
  try {
    ref = parseCredentialRef(reference);
  } catch (err) {
    if (err instanceof CredentialRefError) return fail(err.message);
    throw err;
  }
  const named = kindOfRef(reference, ref);
  if (named !== undefined && kind !== undefined && kind.toLowerCase() !== named)
    fail(`the kind "${c.kind}" does not match the reference, which names ${named}`);
  if (reference.length > 1024) fail("the reference is longer than 1024 characters");
  const resolvedKind = named ?? kind;
  return {
    credentialId: reference,
    store: storeName(ref),
    ...(resolvedKind !== undefined ? { kind: resolvedKind } : {}),
    ...(c.expiresAt !== undefined ? { expiresAtMs: c.expiresAt } : {}),
  };
}

/**
 * - `active`: in force as far as Driftwatch knows (a dry run leaves it so: see `dryRun`);
 * - `expired`: its registered expiry has passed, and nothing revoked it;
 * - `revoking`: a revoker is at it, or it failed and is tried again later;
 * - `revoked`: the credential store said so (2xx);
 * - `recorded`: a revocation was decided, but no credential store is configured for it: it may still work;
 * - `revocation_failed`: given up after the last attempt, or refused (dead-lettered and alerted).
 */
export type CredentialStatus = "active" | "expired" | "suspended" | "revoking" | "revoked" | "recorded" | "revocation_failed";

/** The revocation of a credential, as the console shows it. */
export interface RevocationView {
  id: string;
  /** The task it was recorded under (the credential's owner for a reuse). */
  taskId: string;
  /** Ledger status: revoked, recorded, failed, dead_lettered, dry_run. */
  status: Revocation["status"];
  /** The credential store that was asked (`webhook`, `vault`, `caep`, `record-only`, `none`). */
  credentialStore: string;
  trigger: Revocation["trigger"];
  decidedBy: Revocation["decidedBy"];
  /** The store's answer or the reason it failed. */
  detail: string;
  /** The finding, lifecycle event or approval that caused it. */
  findingId: string;
  attempts: number;
  triggeredAtMs?: number;
  requestedAtMs: number;
  completedAtMs: number;
  retryAtMs?: number;
  /** From the trigger (and the finding's detection, the offending span's end) to the store's answer. */
  latencyMs?: Revocation["latencyMs"];
}

export interface CredentialView {
  credentialId: string;
  store: CredentialStoreName;
  kind?: string;
  /** How it was bound: `registry` (the scope registry) or `span` (first reported by a span); none when its binding has lapsed. */
  source?: CredentialBinding["source"];
  agentId?: string;
  boundAtMs?: number;
  expiresAtMs?: number;
  /** Bound to another task: this task used someone else's credential. */
  reused?: true;
  boundTo?: string;
  status: CredentialStatus;
  /** A span reported a `vault:`/`caep:` reference that is malformed: the revoker cannot revoke it. */
  referenceError?: string;
  revocation?: RevocationView;
  /** A dry run's verdict: what a revocation would have done (the credential stays in force). */
  dryRun?: RevocationView;
  /** Taken away while its task's telemetry was silent (`suspended`), or given back since (`resumed`). */
  suspension?: RevocationView;
  /** A revoker claimed it and is at it (`revoking` without a ledger record yet). */
  claimedAtMs?: number;
}

const viewOf = (r: Revocation): RevocationView => ({
  id: r.id,
  taskId: r.taskId,
  status: r.status,
  credentialStore: r.credentialStore,
  trigger: r.trigger,
  decidedBy: r.decidedBy,
  detail: r.detail,
  findingId: r.findingId,
  attempts: r.attempts,
  ...(r.triggeredAtMs !== undefined ? { triggeredAtMs: r.triggeredAtMs } : {}),
  requestedAtMs: r.requestedAtMs,
  completedAtMs: r.completedAtMs,
  ...(r.retryAtMs !== undefined ? { retryAtMs: r.retryAtMs } : {}),
  ...(r.latencyMs ? { latencyMs: r.latencyMs } : {}),
});

function statusOf(
  revocation: Revocation | undefined,
  claim: CredentialRevocation | undefined,
  suspension: Revocation | undefined,
  expiresAtMs: number | undefined,
  nowMs: number,
) {
  switch (revocation?.status) {
    case "revoked":
      return "revoked";
    case "recorded":
      return "recorded";
    case "dead_lettered":
      return "revocation_failed";
    case "failed":
      return "revoking";
  }
  if (claim && claim.state !== "done") return "revoking";
  if (suspension?.status === "suspended") return "suspended";
  return expiresAtMs !== undefined && expiresAtMs <= nowMs ? "expired" : "active";
}

/** The newest record of each credential, of those passing `keep`. */
function newestBy(records: Revocation[], keep: (r: Revocation) => boolean): Map<string, Revocation> {
  const out = new Map<string, Revocation>();
  for (const r of records) {
    if (!keep(r)) continue;
    const seen = out.get(r.credentialId);
    if (!seen || r.completedAtMs >= seen.completedAtMs) out.set(r.credentialId, r);
  }
  return out;
}

/**
 * Every credential of a task with its status, in id order. `known` are the task's ledger
 * records when the caller has them already. A credential's revocation is its claim's (one
 * per credential, whichever task's trigger revoked it); the ledger records of the task and
 * of the owners of the credentials it reused give the dry runs, and a revocation whose claim
 * has lapsed.
 */
export async function taskCredentials(
  deps: { tasks: TaskStore; revocations: RevocationLedger },
  taskId: string,
  nowMs: number,
  known?: Revocation[],
): Promise<CredentialView[]> {
  const credentials = await deps.tasks.bindings.ofTask(taskId);
  if (credentials.length === 0) return [];
  const owners = [...new Set(credentials.flatMap((c) => (c.foreign && c.binding ? [c.binding.taskId] : [])))];
  const [claims, own, ...others] = await Promise.all([
    Promise.all(credentials.map((c) => deps.revocations.ofCredential(c.credentialId))),
    known ?? deps.revocations.forTask(taskId),
    ...owners.map((t) => deps.revocations.forTask(t)),
  ]);
  const records = [...own, ...others.flat()];
  const dryRuns = newestBy(records, (r) => r.status === "dry_run");
  const suspensions = newestBy(records, (r) => r.status === "suspended" || r.status === "resumed");
  const settled = newestBy(records, (r) => r.status !== "dry_run" && r.status !== "suspended" && r.status !== "resumed");
  return credentials.map(({ credentialId, binding, foreign }, i) => {
    const claim = claims[i];
    const revocation = claim?.revocation ?? (claim?.state === "pending" ? undefined : settled.get(credentialId));
    const dryRun = dryRuns.get(credentialId);
    const suspension = suspensions.get(credentialId);
    let store: CredentialStoreName;
    let kind = binding?.kind;
    let referenceError: string | undefined;
    try {
      const ref = parseCredentialRef(credentialId);
      store = storeName(ref);
      kind ??= kindOfRef(credentialId, ref);
    } catch (err) {
      if (!(err instanceof CredentialRefError)) throw err;
      store = schemeOf(credentialId) ?? "webhook";
      referenceError = err.message;
    }
    return {
      credentialId,
      store,
      ...(kind !== undefined ? { kind } : {}),
      ...(binding
        ? {
            source: binding.source,
            ...(binding.agentId ? { agentId: binding.agentId } : {}),
            boundAtMs: binding.boundAtMs,
            ...(binding.expiresAtMs !== undefined ? { expiresAtMs: binding.expiresAtMs } : {}),
          }
        : {}),
      ...(foreign && binding ? { reused: true as const, boundTo: binding.taskId } : {}),
      status: statusOf(revocation, claim, suspension, binding?.expiresAtMs, nowMs),
      ...(referenceError ? { referenceError } : {}),
      ...(revocation ? { revocation: viewOf(revocation) } : {}),
      ...(dryRun && !revocation ? { dryRun: viewOf(dryRun) } : {}),
      ...(suspension ? { suspension: viewOf(suspension) } : {}),
      ...(claim?.state === "pending" && claim.claimedAtMs !== undefined ? { claimedAtMs: claim.claimedAtMs } : {}),
    };
  });
}
