import fc from "fast-check";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { type AttrValue, hexId, jsonRequest, protobufRequest, type RequestSpec } from "../../test/support/otlp-build.js";
import { loadPolicy } from "../detector/policy.js";
import { normaliseSpan } from "./normalise.js";
import { decodeTraces } from "./otlp.js";
import { redactRequest } from "./otlp-redact.js";
import { NESTED_TOO_DEEP } from "./otlp-span.js";
import { compileRedaction, NO_REDACTION, REDACTED } from "./redaction.js";

/** The example policy's redaction: two header attributes, nine argument keys. */
const redactor = compileRedaction(loadPolicy("policies").redaction);
const ARGS = "gen_ai.tool.call.arguments";
const RESULT = "gen_ai.tool.call.result";

const both = (spec: RequestSpec) =>
  [
    ["protobuf", protobufRequest(spec)],
    ["json", jsonRequest(spec)],
  ] as const;

describe("redactRequest", () => {
  it("hands back the very same Buffer when there is nothing to redact, or no redaction", () => {
    for (const [encoding, body] of both({ spans: [{ attributes: { [ARGS]: '{"to":"a@example.com"}', "http.method": "GET" } }] })) {
      expect(redactRequest(body, encoding, redactor)).toBe(body);
    }
    const secret = protobufRequest({ spans: [{ attributes: { "http.request.header.authorization": "Bearer x" } }] });
    expect(redactRequest(secret, "protobuf", NO_REDACTION)).toBe(secret);
  });

  it("a key named only in a value (not as a key) changes nothing, though it makes the walk happen", () => {
    const body = protobufRequest({ spans: [{ attributes: { note: "the password is not here", [ARGS]: '{"q":"token"}' } }] });
    expect(redactRequest(body, "protobuf", redactor).equals(body)).toBe(true);
  });

  it("redacts every attribute list: resource, scope, span, event, link", () => {
    const auth = "http.request.header.authorization";
    const spec: RequestSpec = {
      resource: { "service.name": "a", [auth]: "SECRET-1" },
      scope: { name: "s", attributes: { [auth]: "SECRET-2" } },
      spans: [
        {
          attributes: { [auth]: "SECRET-3", keep: "me" },
          events: [{ name: "e", attributes: { [auth]: "SECRET-4" } }],
          links: [{ traceId: hexId(16), spanId: hexId(8), attributes: { [auth]: "SECRET-5" } }],
        },
      ],
    };
    for (const [encoding, body] of both(spec)) {
      const out = redactRequest(body, encoding, redactor);
      expect(out.includes("SECRET-"), encoding).toBe(false);
      expect(out.toString("latin1").split(REDACTED).length - 1, encoding).toBe(5);
      const [span] = decodeTraces(out, encoding).spans;
      expect(span?.attributes).toEqual({ [auth]: REDACTED, keep: "me" });
      expect(span?.resource).toEqual({ "service.name": "a", [auth]: REDACTED });
    }
  });

  it("redacts payload keys at any depth of JSON text, kvlists and arrays; the rest of the payload stays", () => {
    const spec: RequestSpec = {
      spans: [
        {
          attributes: {
            [ARGS]: JSON.stringify({ to: "x@example.com", nested: [{ deeper: { API_KEY: "SECRET-a" } }], Password: "SECRET-b" }),
            [RESULT]: { rows: [{ token: "SECRET-c", id: 7 }], ok: true },
          },
        },
      ],
    };
    for (const [encoding, body] of both(spec)) {
      const out = redactRequest(body, encoding, redactor);
      expect(out.includes("SECRET-"), encoding).toBe(false);
      const [span] = decodeTraces(out, encoding).spans;
      expect(JSON.parse(String(span?.attributes[ARGS]))).toEqual({
        to: "x@example.com",
        nested: [{ deeper: { API_KEY: REDACTED } }],
        Password: REDACTED,
      });
      expect(span?.attributes[RESULT]).toEqual({ rows: [{ token: REDACTED, id: 7 }], ok: true });
    }
  });

  it("a payload kvlist nested past the decoders' depth becomes what they read of it, its keys gone from the bytes", () => {
    let deep: AttrValue = { token: "SECRET-deep" };
    for (let i = 0; i < 12; i++) deep = { level: deep };
    for (const [encoding, body] of both({ spans: [{ attributes: { [RESULT]: deep, other: deep } }] })) {
      const out = redactRequest(body, encoding, redactor);
      const [before] = decodeTraces(body, encoding).spans;
      const [after] = decodeTraces(out, encoding).spans;
      // ingest reads the same: the cut was there already
      expect(after?.attributes[RESULT]).toEqual(before?.attributes[RESULT]);
      expect(JSON.stringify(after?.attributes[RESULT])).toContain(NESTED_TOO_DEEP);
      // only the payload is cut: another attribute keeps its bytes (the policy names no key there)
      expect(out.toString("latin1").split("SECRET-deep").length - 1, encoding).toBe(1);
    }
  });

  it("JSON text nested deeper than redaction walks, naming a payload key, is redacted whole (fail closed)", () => {
    const text = `${"[".repeat(100)}{"password":"SECRET-x"}${"]".repeat(100)}`;
    const out = redactRequest(protobufRequest({ spans: [{ attributes: { [ARGS]: text } }] }), "protobuf", redactor);
    expect(decodeTraces(out, "protobuf").spans[0]?.attributes[ARGS]).toBe(REDACTED);
  });

  it("keeps fields it does not know byte for byte (a newer OTLP), and the order of the rest", () => {
    const body = protobufRequest({ spans: [{ attributes: { "http.request.header.cookie": "SECRET-c", a: "1" } }] });
    // an unknown field (number 99, a string) appended to the request's ResourceSpans: rewrite that message by hand
    const unknown = protobuf.Writer.create()
      .uint32((99 << 3) | 2)
      .string("future-field")
      .finish();
    const reader = protobuf.Reader.create(body);
    reader.uint32(); // tag of resource_spans
    const len = reader.uint32();
    const rs = Buffer.concat([body.subarray(reader.pos, reader.pos + len), unknown]);
    const withUnknown = Buffer.from(
      protobuf.Writer.create()
        .uint32((1 << 3) | 2)
        .bytes(rs)
        .finish(),
    );
    const out = redactRequest(withUnknown, "protobuf", redactor);
    expect(out.includes("SECRET-")).toBe(false);
    expect(out.includes(Buffer.from(unknown))).toBe(true);
    expect(Object.keys(decodeTraces(out, "protobuf").spans[0]?.attributes ?? {})).toEqual(["http.request.header.cookie", "a"]);
  });

  it("ingest makes the same actions of the redacted request as of the original (generated requests, both encodings)", () => {
    const keys = fc.constantFrom(
      "http.request.header.authorization",
      "http.request.header.cookie",
      "agent.task.id",
      "gen_ai.tool.name",
      "note",
    );
    const payloadKeys = fc.constantFrom("password", "TOKEN", "api_key", "to", "amount", "Secret");
    const leaf = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean());
    const payload = fc.letrec<{ node: AttrValue }>((tie) => ({
      node: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        leaf,
        fc.array(tie("node"), { maxLength: 3 }),
        fc.dictionary(payloadKeys, tie("node"), { maxKeys: 3 }),
      ),
    })).node;
    const span = fc.record({
      attributes: fc
        .tuple(fc.dictionary(keys, fc.string({ maxLength: 20 }), { maxKeys: 4 }), fc.option(payload), fc.option(payload), fc.boolean())
        .map(([plain, args, result, asText]) => ({
          ...plain,
          ...(args !== null ? { [ARGS]: asText ? JSON.stringify(args) : args } : {}),
          ...(result !== null ? { [RESULT]: result } : {}),
        })),
    });
    let rewritten = 0;
    fc.assert(
      fc.property(
        fc.array(span, { minLength: 1, maxLength: 4 }),
        fc.constantFrom("protobuf" as const, "json" as const),
        (spans, encoding) => {
          const spec: RequestSpec = { spans: spans as RequestSpec["spans"] };
          const body = encoding === "json" ? jsonRequest(spec) : protobufRequest(spec);
          const out = redactRequest(body, encoding, redactor);
          if (out !== body) rewritten++;
          const actions = (b: Buffer) => decodeTraces(b, encoding).spans.map((s) => normaliseSpan(s, 0, redactor));
          expect(actions(out)).toEqual(actions(body));
        },
      ),
      { numRuns: 500, seed: 7 },
    );
    expect(rewritten).toBeGreaterThan(100); // the property was tested on requests that had something to redact
  });
});
