import { PolicyHolder } from "../detector/policy.js";
import { type RunningService, type ServiceContext, startStage } from "../runtime/service.js";
import { ingestStage } from "./ingest.js";
import { compileRedaction, type Redactor } from "./redaction.js";

export async function startIngest(ctx: ServiceContext): Promise<RunningService> {
  const policy = new PolicyHolder(ctx.config.policyDir, ctx.logger);
  policy.watch();
  let compiled: { version: string; redactor: Redactor } | undefined;
  const redactor = () => {
    const current = policy.current;
    if (compiled?.version !== current.version) compiled = { version: current.version, redactor: compileRedaction(current.redaction) };
    return compiled.redactor;
  };
  const stage = await startStage(
    "ingest",
    ctx,
    ingestStage(ctx.config.topicPrefix, () => ctx.clock.now(), {
      encoding: ctx.config.ingest.encoding,
      redactor,
      ...(ctx.config.ingest.senderKey ? { senderKey: ctx.config.ingest.senderKey } : {}),
      requireSender: ctx.config.ingest.requireSender,
    }),
  );
  return {
    name: "ingest",
    close: async () => {
      policy.close();
      await stage.close();
    },
  };
}
