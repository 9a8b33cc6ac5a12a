/** Messages quote input cut short, whatever its size or type. */
import assert from "node:assert/strict";
import { capText, MAX_MESSAGE_CHARS, MAX_QUOTED_CHARS, quote, quoteUtf8 } from "./errors.ts";

Deno.test("quote() shows strings cut after MAX_QUOTED_CHARS with their length, and never serialises containers", () => {
  assert.equal(quote("ab"), '"ab"');
  assert.equal(quote("x".repeat(MAX_QUOTED_CHARS)), JSON.stringify("x".repeat(MAX_QUOTED_CHARS)));
  assert.equal(quote("x".repeat(10_000_000)), `"${"x".repeat(MAX_QUOTED_CHARS)}"… (10000000 characters)`);
  assert.equal(quote(1e300), "1e+300");
  assert.equal(quote(-0), "0");
  assert.equal(quote(null), "null");
  assert.equal(quote(new Array(10_000_000).fill("y")), "an array");
  assert.equal(quote({ a: "y".repeat(1_000_000) }), "an object");
});

Deno.test("quoteUtf8() decodes only the part it shows", () => {
  const big = new TextEncoder().encode("é".repeat(5_000_000));
  const q = quoteUtf8(big, 0, big.length);
  assert.equal(q, `"${"é".repeat(MAX_QUOTED_CHARS)}"… (10000000 bytes)`);
  const small = new TextEncoder().encode("héllo");
  assert.equal(quoteUtf8(small, 0, small.length), '"héllo"');
  // A 4-byte character cut at the end of the decoded part shows as U+FFFD at most, inside the cap.
  const emoji = new TextEncoder().encode("😀".repeat(1000));
  assert.ok(quoteUtf8(emoji, 1, emoji.length).length < MAX_QUOTED_CHARS + 40);
});

Deno.test("capText() cuts at the cap, the cut marked with the original length", () => {
  assert.equal(capText("short"), "short");
  const cut = capText("z".repeat(50_000));
  assert.equal(cut.length, MAX_MESSAGE_CHARS);
  assert.match(cut, /^z+… \(50000 characters\)$/);
});
