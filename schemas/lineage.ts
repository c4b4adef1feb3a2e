import { z } from "zod";

/**
 * Data lineage of a step's arguments: for each value the step's arguments hold, where the
 * task had seen it before the step. The pathfinder works it out from the path (it has the
 * earlier outputs and the user's words in view); the detector judges it against the policy
 * (which tools are trusted, what kind each argument is). Policy-free: nothing here says
 * whether a source is trusted.
 */

/** What a value is, by its shape (`value`: none of these: a name, an id, a word). */
export const TermPattern = z.enum(["email", "url", "host", "iban", "phone", "number", "value"]);
export type TermPattern = z.infer<typeof TermPattern>;

/**
 * How a value sits where it was found:
 * - `value`: a field's whole value (an id, a sender, a name in a listing);
 * - `key`: a mapping's key (`shared_with: {addr: perm}`);
 * - `text`: inside text (prose: a message body, a web page, a review, a plain-text result, or a
 *   content field such as a title or description, which holds somebody's words even when short).
 */
export const TermPlace = z.enum(["value", "key", "text"]);
export type TermPlace = z.infer<typeof TermPlace>;

export const TermOrigin = z.object({
  /**
   * The task's objective (`agent.task.intent`), the user's messages, the agent's system
   * instructions (its operator's configuration), or an earlier step's output.
   */
  source: z.enum(["request", "user", "system", "output"]),
  /** For an output: the path position of the step that returned it, its tool and agent. */
  index: z.number().int().nonnegative().optional(),
  tool: z.string().optional(),
  agentId: z.string().optional(),
  /** For an output: how the output held the value. */
  as: TermPlace.optional(),
  /**
   * For an output: what the user's words named of the call that produced it (one of its
   * argument values, e.g. the file or page the user pointed at), and whether the user told
   * the agent to act on what it says (`directed`: "do what the file says", "pay the bill in …").
   */
  named: z.string().optional(),
  directed: z.boolean().optional(),
  /**
   * For a directed output: what the user pointed at in it (`url`, `contact`, `money`, or a
   * thing: `restaurant`); absent when the user handed over whatever it asks.
   */
  scope: z.array(z.string()).optional(),
  /**
   * For a value found in an output's text: that text carries the marks of an instruction aimed
   * at the agent (the first found: "ignore previous instructions", "AI assistant, before you…").
   */
  mark: z.string().optional(),
  /** For a value found in an output's text: the role the user referred to ("the vendor") stands right before it there. */
  role: z.string().optional(),
});
export type TermOrigin = z.infer<typeof TermOrigin>;

export const ArgumentTerm = z.object({
  /** The value, normalised (lower case, single spaces; a URL as its host; an IBAN without spaces). */
  term: z.string(),
  /** The argument it is in: its key path, array positions left out (`recipients`, `shared_with`, `event.location`). */
  path: z.string(),
  /** How the argument holds it: the whole value, a key, or inside the argument's text. */
  as: TermPlace,
  pattern: TermPattern,
  /** Where the task had it before this step; empty: nowhere (made up, or put together from pieces). */
  origins: z.array(TermOrigin),
});
export type ArgumentTerm = z.infer<typeof ArgumentTerm>;
