import { test } from "node:test";
import assert from "node:assert/strict";
import { toJson } from "../../src/cli/output.js";

test("JSON output keeps 64-bit integers exact, negative ones too", () => {
  const safe = BigInt(Number.MAX_SAFE_INTEGER);
  assert.equal(toJson({ a: safe, b: -safe, c: 0n, d: -5n }), `{"a":${safe},"b":-${safe},"c":0,"d":-5}`);
  // One past the safe range either way: a string with every digit.
  assert.equal(toJson([safe + 1n, -safe - 1n]), `["${safe + 1n}","-${safe + 1n}"]`);
  assert.equal(toJson(-(2n ** 63n)), `"-9223372036854775808"`);
  assert.equal(toJson(2n ** 64n - 1n), `"18446744073709551615"`);
  for (const value of [safe + 1n, -safe - 1n, -(2n ** 63n), 2n ** 64n - 1n]) assert.equal(BigInt(JSON.parse(toJson(value))), value);
});
