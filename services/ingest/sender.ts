import type { AgentAction } from "../../schemas/action.js";
import type { Sender } from "../../schemas/ingest-identity.js";
import { spiffeMatches } from "../detector/policy.js";

/**
 * A span may speak only for the workload its sender's credential names (docs/trust-model.md):
 * its `gen_ai.agent.id` among the credential's agent ids, its `spiffe.id` among its SPIFFE
 * ids. A span that names another is not trusted: it is recorded with `identityMismatch`, and
 * the detector flags it. A span that names no SPIFFE id takes the one its sender proved.
 */
const agentMatches = (pattern: string, id: string) =>
  pattern === id ||
  (pattern.includes("*") &&
    new RegExp(
      `^${pattern
        .split("*")
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
    ).test(id));

export function withSender(action: AgentAction, sender: Sender): AgentAction {
  const spiffeIds = [...sender.spiffeIds, ...(sender.spiffeId ? [sender.spiffeId] : [])];
  const claimed = {
    ...(action.agent.id ? { agentId: action.agent.id } : {}),
    ...(action.agent.spiffeId ? { spiffeId: action.agent.spiffeId } : {}),
  };
  const badAgent =
    claimed.agentId !== undefined && sender.agentIds.length > 0 && !sender.agentIds.some((p) => agentMatches(p, claimed.agentId as string));
  const badWorkload =
    claimed.spiffeId !== undefined && spiffeIds.length > 0 && !spiffeIds.some((p) => spiffeMatches(p, claimed.spiffeId as string));
  const out: AgentAction = {
    ...action,
    sender: { name: sender.name, via: sender.via, ...(sender.spiffeId ? { spiffeId: sender.spiffeId } : {}) },
  };
  // the proven workload stands in for one the span does not name
  if (!claimed.spiffeId && sender.spiffeId) out.agent = { ...action.agent, spiffeId: sender.spiffeId };
  if (badAgent || badWorkload) out.identityMismatch = { claimed, allowed: { agentIds: sender.agentIds, spiffeIds } };
  return out;
}
