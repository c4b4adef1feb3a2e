import type { Store } from "../runtime/store/store.js";

/**
 * Quarantined agents: a response can quarantine an agent (every open task's credentials are
 * revoked, and whatever it does next is a finding) until someone lifts it through the API.
 *
 *   agent:{id}:quarantine   the mark (JSON), the first one wins
 *   agents:quarantined      quarantined agents by the time they were quarantined
 */
export interface QuarantineMark {
  agentId: string;
  atMs: number;
  findingId: string;
  taskId: string;
  /** `policy:<response rule>` or `human:<name>`. */
  by: string;
}

const markKey = (agentId: string) => `agent:{${agentId}}:quarantine`;
const INDEX = "agents:quarantined";

export class AgentQuarantine {
  constructor(private readonly store: Store) {}

  /** Quarantines the agent; the mark in force (an earlier one wins) and whether this call set it. */
  async put(mark: QuarantineMark): Promise<{ mark: QuarantineMark; fresh: boolean }> {
    if (await this.store.setIfAbsent(markKey(mark.agentId), JSON.stringify(mark))) {
      await this.store.sortedAdd(INDEX, [{ score: mark.atMs, member: mark.agentId }]);
      return { mark, fresh: true };
    }
    return { mark: (await this.get(mark.agentId)) ?? mark, fresh: false };
  }

  async get(agentId: string): Promise<QuarantineMark | undefined> {
    const raw = await this.store.get(markKey(agentId));
    return raw ? (JSON.parse(raw) as QuarantineMark) : undefined;
  }

  /** The marks of these agents (read together: one round trip). */
  async of(agentIds: string[]): Promise<Map<string, QuarantineMark>> {
    const marks = await Promise.all(agentIds.map((a) => this.get(a)));
    return new Map(marks.flatMap((m) => (m ? [[m.agentId, m]] : [])));
  }

  async list(): Promise<QuarantineMark[]> {
    const ids = await this.store.sortedRange(INDEX, { offset: 0, limit: 10_000, reverse: true });
    return [...(await this.of(ids)).values()];
  }

  /** Lifts the quarantine; the mark that was lifted, if there was one. */
  async lift(agentId: string): Promise<QuarantineMark | undefined> {
    const mark = await this.get(agentId);
    await Promise.all([this.store.delete(markKey(agentId)), this.store.sortedRemove(INDEX, [agentId])]);
    return mark;
  }
}
