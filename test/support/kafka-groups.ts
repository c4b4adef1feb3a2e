import { AssignerProtocol, Kafka, logLevel } from "kafkajs";
import { inject } from "vitest";
import { eventually } from "./wait.js";

/** Partitions per topic, as the group coordinator assigned them to one member. */
export type MemberAssignment = Record<string, number[]>;

/**
 * Waits until a consumer group is Stable with exactly `members` members, each assigned at
 * least one partition (asks the broker's group coordinator); returns the assignments.
 */
export async function waitForStableGroup(groupId: string, members: number, timeoutMs = 60_000): Promise<MemberAssignment[]> {
  const kafka = new Kafka({ clientId: "driftwatch-test-admin", brokers: inject("kafkaBrokers").split(","), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await eventually(
      async () => {
        const { groups } = await admin.describeGroups([groupId]);
        const group = groups[0];
        if (group?.state !== "Stable" || group.members.length !== members) {
          await new Promise((r) => setTimeout(r, 200));
          return undefined;
        }
        const assignments = group.members.map((m) => AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment ?? {});
        return assignments.every((a) => Object.values(a).flat().length > 0) ? assignments : undefined;
      },
      timeoutMs,
      `consumer group ${groupId} stable with ${members} members, each with partitions`,
    );
  } finally {
    await admin.disconnect();
  }
}

/**
 * Moves a stopped group's committed offsets on `topic` back to `fraction` of where they
 * are (per partition), as if the commits after that point had been lost: a consumer that
 * joins next gets those messages again. Returns the committed and the new offsets.
 */
export async function rewindGroup(
  groupId: string,
  topic: string,
  fraction: number,
): Promise<{ committed: Map<number, number>; rewound: Map<number, number> }> {
  const kafka = new Kafka({ clientId: "driftwatch-test-admin", brokers: inject("kafkaBrokers").split(","), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const committed = new Map((offsets?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]));
    const rewound = new Map([...committed].map(([p, o]) => [p, Math.floor(o * fraction)]));
    // the group must have no members left: retry while the broker still counts the one that left
    await eventually(
      async () => {
        await admin.setOffsets({ groupId, topic, partitions: [...rewound].map(([partition, o]) => ({ partition, offset: String(o) })) });
        return true;
      },
      30_000,
      `offsets of ${groupId} rewound`,
    );
    return { committed, rewound };
  } finally {
    await admin.disconnect();
  }
}
