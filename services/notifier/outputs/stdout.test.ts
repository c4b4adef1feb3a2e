import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { Finding } from "../../../schemas/finding.js";
import { StdoutOutput } from "./stdout.js";

function finding(id: string, over: Partial<Finding> = {}): Finding {
  return Finding.parse({
    id,
    taskId: "task-1",
    stepIndex: 0,
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    ruleId: "scope.egress",
    kind: "out_of_scope",
    severity: "high",
    mode: "enforce",
    confidence: 0.9,
    explanation: "sent data to evil.example,\nwhich is not on the allowlist",
    evidence: { observed: { destination: "evil.example" }, expected: { egress: ["smtp.acme.example"] } },
    tags: { owaspAgentic: [], maestro: [], nistAiRmf: [] },
    spanEndMs: 1,
    detectedAtMs: 2,
    policyVersion: "v",
    ...over,
  });
}

/** A Writable that keeps each write separately. */
function capture() {
  const writes: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      writes.push(chunk.toString("utf8"));
      done();
    },
  });
  return { stream, writes };
}

describe("StdoutOutput", () => {
  it("is named stdout", () => {
    expect(new StdoutOutput(capture().stream).name).toBe("stdout");
  });

  it("writes one JSON line per finding, in order, newlines inside values escaped", async () => {
    const { stream, writes } = capture();
    const a = finding("a");
    const b = finding("b", { agentId: "billing-agent", severity: "critical" });
    await new StdoutOutput(stream).send([a, b]);
    const text = writes.join("");
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.slice(0, -1).split("\n");
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { type: "driftwatch.finding", finding: a },
      { type: "driftwatch.finding", finding: b },
    ]);
  });

  it("writes a batch in one write, so lines of concurrent batches never interleave", async () => {
    const { stream, writes } = capture();
    const out = new StdoutOutput(stream);
    await Promise.all([out.send([finding("a"), finding("b")]), out.send([finding("c")])]);
    expect(writes).toHaveLength(2);
    expect(writes.map((w) => w.split("\n").filter(Boolean).length)).toEqual([2, 1]);
  });

  it("writes nothing for no findings", async () => {
    const { stream, writes } = capture();
    await new StdoutOutput(stream).send([]);
    expect(writes).toEqual([]);
  });

  it("fails when the stream fails, so the batch is retried", async () => {
    const broken = new Writable({
      write(_chunk, _enc, done) {
        done(new Error("EPIPE"));
      },
    });
    broken.on("error", () => undefined);
    await expect(new StdoutOutput(broken).send([finding("a")])).rejects.toThrow("EPIPE");
  });

  it("waits until the stream has taken the lines", async () => {
    let release: (() => void) | undefined;
    const writes: string[] = [];
    const slow = new Writable({
      write(chunk: Buffer, _enc, done) {
        writes.push(chunk.toString());
        release = () => done();
      },
    });
    let settled = false;
    const sending = new StdoutOutput(slow).send([finding("a")]).then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(writes).toHaveLength(1);
    expect(settled).toBe(false);
    release?.();
    await sending;
    expect(settled).toBe(true);
  });
});
