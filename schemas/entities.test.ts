import { describe, expect, it } from "vitest";
import { entitiesOf } from "./entities.js";

describe("entitiesOf on hostile text", () => {
  // a tool payload is up to 16 KB of text the client chose; each used to cost 0.4 to 1 s (a pattern
  // retrying an unbounded run from every position), found by the embedded fuzz run (bench/fuzz.ts)
  const hostile: Record<string, string> = {
    "one long word": "v".repeat(16_384),
    "dotted letters": "a.".repeat(8_192),
    "dotted digits": "1.".repeat(8_192),
    "plus and digits": "+1".repeat(8_192),
    "an @ after a long run": `${"v".repeat(16_383)}@`,
  };
  for (const [name, text] of Object.entries(hostile)) {
    it(`takes bounded time: ${name}`, () => {
      const t0 = performance.now();
      entitiesOf(text);
      expect(performance.now() - t0).toBeLessThan(150);
    });
  }

  it("still finds what it found: addresses, domains, hosts of URLs", () => {
    expect(entitiesOf("mail ops@acme.example and see https://portal.acme.example/x, or docs.acme.example")).toEqual([
      "ops@acme.example",
      "portal.acme.example",
      "acme.example",
      "docs.acme.example",
    ]);
    expect(entitiesOf("deep.a.b.c.d.e.f.g.h.i.j.k.example.com")).toEqual(["deep.a.b.c.d.e.f.g.h.i.j.k.example.com"]);
  });

  it("an address's local part is read up to RFC 5321's 64 characters", () => {
    const local = `${"x".repeat(6)}${"y".repeat(64)}`;
    expect(entitiesOf(`${local}@acme.example`)[0]).toBe(`${"y".repeat(64)}@acme.example`);
  });
});
