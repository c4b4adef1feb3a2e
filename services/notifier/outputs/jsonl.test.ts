import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IncidentUpdate } from "../../../schemas/incident.js";
import { finding, T0 } from "../../../test/support/alerts.js";
import { MemoryStore } from "../../runtime/store/memory-store.js";
import { IncidentBook } from "../incident.js";
import { toDetectionFinding } from "../ocsf.js";
import { JsonLinesOutput, jsonLine } from "./jsonl.js";

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

describe("JsonLinesOutput", () => {
  const dir = mkdtempSync(join(tmpdir(), "dw-jsonl-"));
  let v1: IncidentUpdate;
  let v2: IncidentUpdate;

  beforeAll(async () => {
    const book = new IncidentBook(new MemoryStore(), { now: () => T0 });
    v1 = (await book.addFindings("task-1", [
      finding("a", { explanation: "sent data to evil.example,\nwhich is not allowed" }),
    ])) as IncidentUpdate;
    v2 = (await book.addFindings("task-1", [finding("b")])) as IncidentUpdate;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is named stdout on a stream and jsonl on a file", () => {
    expect(new JsonLinesOutput({ stream: capture().stream }).name).toBe("stdout");
    expect(new JsonLinesOutput({ path: join(dir, "x.jsonl") }, "medium")).toMatchObject({ name: "jsonl", minSeverity: "medium" });
  });

  it("writes each version as one JSON line in one write, newlines inside values escaped", async () => {
    const { stream, writes } = capture();
    const out = new JsonLinesOutput({ stream });
    expect(await out.send(v1)).toEqual({ ok: true, detail: "written" });
    await out.send(v2);
    expect(writes).toHaveLength(2);
    expect(writes.every((w) => w.endsWith("\n") && w.indexOf("\n") === w.length - 1)).toBe(true);
    expect(writes.map((w) => JSON.parse(w))).toEqual([
      { ...v1, ocsf: toDetectionFinding(v1) },
      { ...v2, ocsf: toDetectionFinding(v2) },
    ]);
    expect(jsonLine(v1)).toBe(writes[0]);
  });

  it("appends to a file, creating it", async () => {
    const path = join(dir, "alerts.jsonl");
    const out = new JsonLinesOutput({ path });
    expect(await out.send(v1)).toMatchObject({ ok: true });
    expect(await out.send(v2)).toMatchObject({ ok: true });
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as IncidentUpdate).incident.version)).toEqual([1, 2]);
  });

  it("fails (to be retried) when the stream or the file fails", async () => {
    const broken = new Writable({
      write(_chunk, _enc, done) {
        done(new Error("EPIPE"));
      },
    });
    broken.on("error", () => undefined);
    expect(await new JsonLinesOutput({ stream: broken }).send(v1)).toMatchObject({ ok: false, detail: expect.stringMatching(/EPIPE/) });
    const nowhere = await new JsonLinesOutput({ path: join(dir, "missing", "alerts.jsonl") }).send(v1);
    expect(nowhere).toMatchObject({ ok: false, detail: expect.stringMatching(/ENOENT/) });
    expect(nowhere.permanent).toBeUndefined();
  });

  it("waits until the stream has taken the line", async () => {
    let release: (() => void) | undefined;
    const slow = new Writable({
      write(_chunk: Buffer, _enc, done) {
        release = () => done();
      },
    });
    let settled = false;
    const sending = new JsonLinesOutput({ stream: slow }).send(v1).then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    release?.();
    await sending;
    expect(settled).toBe(true);
  });
});
