import type { z } from "zod";
import type { BusMessage } from "./bus/bus.js";
import { BadInput } from "./stage.js";

/** Parses a bus message's JSON value against a contract schema; BadInput (→ dead letter) when it does not fit. */
export function decodeMessage<T>(schema: z.ZodType<T>, message: BusMessage, what: string): T {
  let doc: unknown;
  try {
    doc = JSON.parse(message.value.toString("utf8"));
  } catch (err) {
    throw new BadInput(`not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadInput(`not ${what}: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}
