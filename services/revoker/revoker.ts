import { createHash } from "node:crypto";
import type { Severity } from "../../schemas/finding.js";
import { Finding } from "../../schemas/finding.js";
import type { Revocation } from "../../schemas/revocation.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import type { TaskStore } from "../pathfinder/task-store.js";
import type { BusMessage } from "../runtime/bus/bus.js";
import { decodeMessage } from "../runtime/decode.js";
import type { Emit, StageLogic } from "../runtime/stage.js";
import { type Store, taskKey } from "../runtime/store/store.js";
import type { Metrics } from "../runtime/telemetry.js";
import type { CredentialStore } from "./credential-stores/credential-store.js";
import { responseFor } from "./response-policy.js";

/**
 * revoker: `agent.findings` → credential-store revocations → `agent.revocations`.
 * Each credential bound to a drifting task is revoked once: a claim in the store makes a
 * repeated finding (or a redelivered one) a no-op, and a claim left pending by a crash is
 * finished on redelivery with the same revocation id.
 */
export const parseFinding = (message: BusMessage): Finding | Finding[] => decodeMessage(Finding, message, "a finding");

export function revocationId(storeName: string, taskId: string, credentialId: string): string {
  return createHash("sha256").update(`${storeName}|${taskId}|${credentialId}`).digest("hex").slice(0, 32);
}

interface Deps {
  tasks: TaskStore;
  store: Store;
  credentialStore: CredentialStore;
  minSeverity: Severity;
  metrics?: Metrics;
  now?: () => number;
}

export function revokerStage(topicPrefix: string, deps: Deps): StageLogic<Finding> {
  const output = topicName(topicPrefix, TOPICS.revocations);
  const now = deps.now ?? Date.now;

  async function revokeCredential(finding: Finding, credentialId: string): Promise<Revocation | undefined> {
    const id = revocationId(deps.credentialStore.name, finding.taskId, credentialId);
    const claimKey = taskKey(finding.taskId, `revocation:${credentialId}`);
    const claimed = await deps.store.setIfAbsent(claimKey, "pending");
    if (!claimed) {
      const state = await deps.store.get(claimKey);
      if (state && state !== "pending") return JSON.parse(state) as Revocation; // done before: re-emit the same record
      // "pending": a previous attempt stopped midway; finish it with the same id
    }
    const requestedAtMs = now();
    const outcome = await deps.credentialStore.revoke({
      revocationId: id,
      credentialId,
      taskId: finding.taskId,
      findingId: finding.id,
      reason: `${finding.ruleId}: ${finding.explanation}`,
    });
    const revocation: Revocation = {
      id,
      taskId: finding.taskId,
      credentialId,
      findingId: finding.id,
      credentialStore: deps.credentialStore.name,
      status: outcome.status,
      detail: outcome.detail,
      requestedAtMs,
      completedAtMs: now(),
      attempts: outcome.attempts,
    };
    deps.metrics?.revocations.inc({ store: deps.credentialStore.name, status: outcome.status });
    if (outcome.status === "failed")
      await deps.store.delete(claimKey); // a later finding tries again
    else await deps.store.set(claimKey, JSON.stringify(revocation));
    return revocation;
  }

  return {
    name: "revoker",
    input: topicName(topicPrefix, TOPICS.findings),
    parse: parseFinding,
    async handle(items): Promise<Emit[]> {
      const emits: Emit[] = [];
      for (const { value: finding } of items) {
        if (responseFor(finding, deps.minSeverity) !== "revoke") continue;
        await deps.tasks.markRevoked(finding.taskId, { atMs: now(), findingId: finding.id });
        const credentials = await deps.tasks.credentials(finding.taskId);
        const done = await Promise.all(credentials.map((c) => revokeCredential(finding, c)));
        for (const r of done) if (r) emits.push({ topic: output, message: { key: r.taskId, value: JSON.stringify(r) } });
      }
      return emits;
    },
  };
}
