import type { Bus, BusMessage, Subscription } from "../../services/runtime/bus/bus.js";

/** Subscribes a fresh group to a topic and collects everything it receives. */
export async function collectTopic(bus: Bus, topic: string, subs: Subscription[]): Promise<BusMessage[]> {
  const got: BusMessage[] = [];
  subs.push(
    await bus.subscribe({ group: `collector-${topic}`, topics: [topic], fromBeginning: true }, async (batch) => {
      got.push(...batch);
    }),
  );
  return got;
}
