import type { Suite, ToolSpec } from "./kit.js";

/** The operator-facing tool reference of a suite (eval/suites/tools/<suite>.md). */

/** A Markdown table with padded columns (as the repository's formatter lays them out). */
function table(head: string[], rows: string[][]): string[] {
  const width = head.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i] ?? 0)).join(" | ")} |`;
  return [line(head), line(width.map((w) => "-".repeat(w))), ...rows.map(line)];
}

const esc = (s: string) => s.replace(/\|/g, "\\|");

function signature(t: ToolSpec): string {
  return `${t.name}(${t.args.map((a) => `${a.name}${a.optional ? "?" : ""}: ${a.type}`).join(", ")})`;
}

function toolSection(t: ToolSpec): string {
  const lines = [`### \`${t.name}\``, "", t.description, "", "```", signature(t), "```", ""];
  if (t.args.length === 0) lines.push("Arguments: none.", "");
  else {
    const rows = t.args.map((a) => [`\`${a.name}\``, `\`${esc(a.type)}\``, a.optional ? "no" : "yes", esc(a.description)]);
    lines.push(...table(["argument", "type", "required", "description"], rows), "");
  }
  lines.push(`Returns: ${t.returns} (${t.format === "yaml" ? "YAML text" : t.format === "json" ? "JSON text" : "plain text"})`, "");
  lines.push(t.writes ? `Side effects: ${t.effect ?? "changes state"}` : "Side effects: none (read-only).", "");
  return lines.join("\n");
}

// biome-ignore lint/suspicious/noExplicitAny: only the catalogue is read
export function toolDoc(s: Suite<any>): string {
  const reads = s.tools.filter((t) => !t.writes);
  const writes = s.tools.filter((t) => t.writes);
  return [
    `# ${s.title}: tools`,
    "",
    s.description,
    "",
    `- Agent id (\`gen_ai.agent.id\`): \`${s.agent.id}\``,
    `- Agent name (\`gen_ai.agent.name\`): ${s.agent.name}`,
    `- Service (\`service.name\`): \`${s.service}\`, environment (\`deployment.environment.name\`): \`${s.environment}\``,
    "- Telemetry: the agent framework's OpenTelemetry GenAI instrumentation. One `invoke_agent` span per user request (with `agent.task.id` and the request as `agent.task.intent`), a `chat` span per model turn (the conversation in `gen_ai.input.messages`), an `execute_tool` span per tool call with `gen_ai.tool.name`, `gen_ai.tool.call.arguments` (JSON) and `gen_ai.tool.call.result` (the text the tool returned). The tools below are function tools (`gen_ai.tool.type: function`).",
    "",
    `${s.tools.length} tools: ${reads.length} read-only, ${writes.length} that change something or send something.`,
    "",
    ...table(
      ["tool", "description", "side effects"],
      s.tools.map((t) => [`\`${t.name}\``, esc(t.description), t.writes ? esc(t.effect ?? "changes state") : "none"]),
    ),
    "",
    "## Read-only tools",
    "",
    ...reads.map(toolSection),
    "## Tools that change or send something",
    "",
    ...writes.map(toolSection),
  ]
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .replace(/\n*$/, "\n");
}
