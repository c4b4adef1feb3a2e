import type { z } from "zod";
import type { BusMessage } from "./bus/bus.js";
import { BadInput } from "./stage.js";

/**
 * Parses a bus message's JSON value against a contract schema: one record, or a pack of
 * records (a JSON array, see packRecords) of the same key. BadInput (→ dead letter) when
 * any of it does not fit.
 */
export function decodeMessage<T>(schema: z.ZodType<T>, message: BusMessage, what: string): T | T[] {
  let doc: unknown;
  try {
    doc = JSON.parse(message.value.toString("utf8"));
  } catch (err) {
    throw new BadInput(`not JSON: ${(err as Error).message}`);
  }
  if (Array.isArray(doc)) {
    if (doc.length === 0) throw new BadInput(`not ${what}: an empty pack`);
    return doc.map((d, i) => check(schema, d, what, `[${i}].`));
  }
  return check(schema, doc, what, "");
}

function check<T>(schema: z.ZodType<T>, doc: unknown, what: string, at: string): T {
  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadInput(`not ${what}: ${at}${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}

/** The raw records of a message: its JSON value, or each element of a pack. No validation. */
export function recordsOf(message: BusMessage): unknown[] {
  const doc: unknown = JSON.parse(message.value.toString("utf8"));
  return Array.isArray(doc) ? doc : [doc];
}
