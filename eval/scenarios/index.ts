import type { AgentKind } from "../lib/scenario.js";
import { coding } from "./coding.js";
import { finance } from "./finance.js";
import { research } from "./research.js";
import { support } from "./support.js";

/** The suite's agent kinds, in the order they are generated. */
export const KINDS: readonly AgentKind[] = [finance, support, coding, research];
