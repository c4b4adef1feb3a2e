import { describe, expect, it } from "vitest";
import { Finding } from "../../schemas/finding.js";
import { TOPICS, topicName } from "../../schemas/topics.js";
import { type App, startDistributed } from "../../services/cli/app.js";
import { decodeTraces } from "../../services/ingest/otlp.js";
import type { Subscription } from "../../services/runtime/bus/bus.js";
import { recordsOf } from "../../services/runtime/decode.js";
import { driftPolicy, driftTasks, recordWorkload } from "../support/drift-workload.js";
import { waitForStableGroup } from "../support/kafka-groups.js";
import { ANALYSER_PIPELINE, PipelineWatch } from "../support/pipeline-settled.js";
import { distributedConfig, isolation, kafkaBus, testLogger } from "../support/ports.js";
import { eventually } from "../support/wait.js";

/**
 * Scale-out: the stages are consumer groups, so a second instance of ingest and of the
 * analyser takes over some of the partitions (and the tasks keyed to them, their paths in
 * its memory, delegating tasks' facts read from Redis). Whatever the number of instances,
 * the findings must be the same: the same ids (rule, task, span), nothing more, nothing lost.
 */
describe("scale-out: two instances of each stage find what one does (real Kafka and Redis)", () => {
  it("the drift workload, in order and in bulk, gives the same findings through 1 and 2 instances of ingest and the analyser", async () => {
    const policyDir = driftPolicy();
    const run = isolation("scale").id;
    // in order: delegating tasks' exports before their delegates', each placed before the next goes on
    const ordered = await recordWorkload(driftTasks(`${run}-ordered`), "protobuf");
    // in bulk: tasks that delegate nothing, several copies, all on the bus at once
    const bulk = (
      await Promise.all(
        [1, 2, 3, 4].map((k) =>
          recordWorkload(
            driftTasks(`${run}-bulk${k}`).filter((t) => !t.delegate),
            "protobuf",
          ),
        ),
      )
    ).flat();

    const findingsWith = async (instances: number): Promise<string[]> => {
      const iso = isolation(`scale${instances}`);
      const config = distributedConfig(iso, { DRIFTWATCH_POLICY_DIR: policyDir });
      const apps: App[] = [];
      const subs: Subscription[] = [];
      const bus = kafkaBus();
      const watch = new PipelineWatch(iso, [{ group: "watch-findings", input: TOPICS.findings }], ANALYSER_PIPELINE);
      try {
        for (const name of ["ingest", "analyser"] as const)
          for (let k = 0; k < instances; k++) apps.push(await startDistributed(config, [name], { logger: testLogger }));
        await Promise.all(ANALYSER_PIPELINE.map((s) => waitForStableGroup(`${iso.groupPrefix}${s.group}`, instances)));
        const steps = new Set<string>();
        const found: Finding[] = [];
        subs.push(
          await bus.subscribe(
            { group: `${iso.groupPrefix}watch-steps`, topics: [topicName(config.topicPrefix, TOPICS.steps)], fromBeginning: true },
            async (batch) => {
              for (const m of batch) for (const r of recordsOf(m)) steps.add((r as { spanId: string }).spanId);
            },
          ),
          await bus.subscribe(
            { group: `${iso.groupPrefix}watch-findings`, topics: [topicName(config.topicPrefix, TOPICS.findings)], fromBeginning: true },
            async (batch) => {
              for (const m of batch) for (const r of recordsOf(m)) found.push(Finding.parse(r));
            },
          ),
        );
        const spans = topicName(config.topicPrefix, TOPICS.otlpSpans);
        const headers = { "content-type": "application/x-protobuf" };
        for (const bytes of ordered) {
          await bus.publish(spans, [{ key: null, value: Buffer.from(bytes), headers }]);
          const ids = decodeTraces(bytes, "protobuf").spans.map((s) => s.spanId);
          await eventually(() => (ids.every((s) => steps.has(s)) ? true : undefined), 60_000, "an export's steps");
        }
        await bus.publish(
          spans,
          bulk.map((bytes) => ({ key: null, value: Buffer.from(bytes), headers })),
        );
        await watch.settled(90_000);
        return [...new Set(found.map((f) => `${f.ruleId} ${f.taskId} ${f.spanId ?? "-"} ${f.id}`))].sort();
      } finally {
        await Promise.all(subs.map((s) => s.close()));
        await bus.close();
        await watch.close();
        await Promise.all(apps.map((a) => a.close()));
      }
    };

    const one = await findingsWith(1);
    const two = await findingsWith(2);
    expect(two).toEqual(one);
    // the planted drifts are among them, of the ordered run and of every bulk copy
    const rules = (suffix: string) => new Set(one.filter((f) => f.split(" ")[1]?.endsWith(suffix)).map((f) => f.split(" ")[0]));
    for (const rule of ["scope.tool", "flow.egress_after_sensitive_read", "scope.delegation", "provenance.untrusted_argument"])
      expect([...rules(`${run}-ordered`)], rule).toContain(rule);
    for (const k of [1, 2, 3, 4]) expect([...rules(`${run}-bulk${k}`)], `bulk copy ${k}`).toContain("scope.tool");
  }, 300_000);
});
