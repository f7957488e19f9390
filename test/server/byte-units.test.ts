import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { formatBytes, formatCount, formatDuration, formatRate } from "../../src/server/byte-units.js";

test("units are humanised", () => {
  assert.equal(formatBytes(0), "0B");
  assert.equal(formatBytes(1023), "1023B");
  assert.equal(formatBytes(1536), "1.50KiB");
  assert.equal(formatBytes(1500000), "1.43MiB");
  assert.equal(formatRate(20 * 1024 * 1024), "20.0MiB/s");
  assert.equal(formatCount(950), "950");
  assert.equal(formatCount(12345), "12.3k");
  assert.equal(formatDuration(0.031), "31µs");
  assert.equal(formatDuration(2.5), "2.50ms");
  assert.equal(formatDuration(12.5), "12.5ms");
  assert.equal(formatDuration(3200), "3.2s");
  assert.equal(formatDuration(245_000), "4m05s");
  assert.equal(formatDuration(7_380_000), "2h03m");
});

test("the module imports nothing, so the browser can load its built form", () => {
  const built = readFileSync(new URL("../../src/server/byte-units.js", import.meta.url), "utf8");
  assert.doesNotMatch(built, /^\s*import /m);
});
