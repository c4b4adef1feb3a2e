import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { checkRangeBounds, KafkaRangeError, parseRangeBound, type RangeBound, readTopicRange, topicHint } from "./replay-kafka.js";

/**
 * Replay's Kafka source, what can be checked without a broker: the bounds an operator
 * writes, and the errors when the brokers cannot be reached. Reading a real topic range
 * is tested against the real broker (test/e2e/replay-parity.test.ts).
 */
describe("range bounds (--from, --to)", () => {
  it("reads ISO 8601 times with a zone, dates, and epoch milliseconds", () => {
    expect(parseRangeBound("2025-06-01T10:00:00Z")).toEqual({ kind: "time", ms: Date.UTC(2025, 5, 1, 10) });
    expect(parseRangeBound("2025-06-01T12:00:00.000+02:00")).toEqual({ kind: "time", ms: Date.UTC(2025, 5, 1, 10) });
    expect(parseRangeBound("2025-06-01")).toEqual({ kind: "time", ms: Date.UTC(2025, 5, 1) });
    expect(parseRangeBound("1748772000000")).toEqual({ kind: "time", ms: 1_748_772_000_000 });
  });

  it("reads an offset for every partition, or one per partition", () => {
    expect(parseRangeBound("offset:0")).toEqual({ kind: "offset", offset: 0 });
    expect(parseRangeBound("offset:1200")).toEqual({ kind: "offset", offset: 1200 });
    expect(parseRangeBound("offset:0=1200, 1=98,2=0")).toEqual({
      kind: "offsets",
      offsets: new Map([
        [0, 1200],
        [1, 98],
        [2, 0],
      ]),
    });
  });

  it("refuses what it cannot read, and says what it expected", () => {
    const refusal = (text: string) => {
      try {
        parseRangeBound(text);
      } catch (err) {
        expect(err).toBeInstanceOf(KafkaRangeError);
        return (err as Error).message;
      }
      throw new Error(`"${text}" was accepted`);
    };
    expect(refusal("yesterday")).toMatch(/not a range bound; give an ISO 8601 time .*epoch milliseconds.*offset:N/);
    expect(refusal("2025-06-01T10:00")).toMatch(/has no time zone: add one \(Z for UTC/);
    expect(refusal("2025-13-45T00:00:00Z")).toMatch(/not a valid ISO 8601 time/);
    // a small number is an offset written without its prefix, or epoch seconds
    expect(refusal("120")).toMatch(/reads as epoch milliseconds \(1970-01-01T00:00:00.120Z\).*offset:120/);
    expect(refusal("1748772000")).toMatch(/epoch milliseconds have 13 digits/);
    expect(refusal("offset:-1")).toMatch(/not an offset/);
    expect(refusal("offset:next")).toMatch(/not an offset/);
    expect(refusal("offset:0=")).toMatch(/not an offset/);
    expect(refusal("offset:0=5,x=3")).toMatch(/offset:P=N,P=N/);
    expect(refusal("offset:0=5,0=6")).toMatch(/names partition 0 twice/);
  });

  it("refuses a range that is empty or backwards before asking any broker", () => {
    const t = (iso: string): RangeBound => ({ kind: "time", ms: Date.parse(iso) });
    const o = (offset: number): RangeBound => ({ kind: "offset", offset });
    const per = (entries: [number, number][]): RangeBound => ({ kind: "offsets", offsets: new Map(entries) });
    expect(() => checkRangeBounds(t("2025-06-02T00:00:00Z"), t("2025-06-01T00:00:00Z"))).toThrow(
      "--from 2025-06-02T00:00:00.000Z is not before --to 2025-06-01T00:00:00.000Z: the range is empty",
    );
    expect(() => checkRangeBounds(t("2025-06-01T00:00:00Z"), t("2025-06-01T00:00:00Z"))).toThrow(KafkaRangeError);
    expect(() => checkRangeBounds(o(10), o(10))).toThrow("--from offset:10 is not before --to offset:10");
    expect(() => checkRangeBounds(per([[0, 5]]), per([[0, 3]]))).toThrow("--from offset 5 is after --to offset 3 in partition 0");
    expect(() => checkRangeBounds(o(5), per([[1, 3]]))).toThrow("in partition 1");
    // fine: open ends, other partitions, a time against an offset (resolved on the broker)
    expect(() => checkRangeBounds(undefined, o(3))).not.toThrow();
    expect(() => checkRangeBounds(per([[0, 5]]), per([[1, 3]]))).not.toThrow();
    expect(() => checkRangeBounds(per([[0, 5]]), per([[0, 5]]))).not.toThrow();
    expect(() => checkRangeBounds(t("2025-06-01T00:00:00Z"), o(3))).not.toThrow();
    expect(() => checkRangeBounds(o(3), t("2025-06-01T00:00:00Z"))).not.toThrow();
  });

  it("an unknown topic's error names the topics like it", () => {
    const topics = ["prod.otlp_spans", "staging.otlp_spans", "prod.agent.steps", "orders"];
    expect(topicHint("otlp_spans", topics)).toBe(' (topics there with a name like it: "prod.otlp_spans", "staging.otlp_spans")');
    expect(topicHint("orderz", topics)).toBe(' (topics there with a name like it: "prod.otlp_spans", "staging.otlp_spans")');
    expect(topicHint("orderz", ["orders"])).toBe("");
  });
});

describe("brokers that cannot be reached", () => {
  let server: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it("nothing listening: says which brokers and why", async () => {
    // port 9 (discard) has nothing listening on a test machine: the connection is refused
    const read = readTopicRange({ brokers: ["127.0.0.1:9"], topic: "otlp_spans" }, { timeoutMs: 10_000 });
    await expect(read).rejects.toThrow(KafkaRangeError);
    await expect(read).rejects.toThrow(/^cannot reach Kafka at 127\.0\.0\.1:9: .*ECONNREFUSED/);
  });

  it("a socket that never answers: gives up after the timeout", async () => {
    server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const started = Date.now();
    const read = readTopicRange({ brokers: [`127.0.0.1:${port}`], topic: "otlp_spans" }, { timeoutMs: 1_000 });
    await expect(read).rejects.toThrow(`cannot reach Kafka at 127.0.0.1:${port}: no answer within 1 s`);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("checks the bounds before connecting", async () => {
    const read = readTopicRange({
      brokers: ["127.0.0.1:9"],
      topic: "otlp_spans",
      from: { kind: "offset", offset: 9 },
      to: { kind: "offset", offset: 2 },
    });
    await expect(read).rejects.toThrow("is not before --to offset:2");
  });
});
