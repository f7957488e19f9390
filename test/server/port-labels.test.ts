import { test } from "node:test";
import assert from "node:assert/strict";
import { PortLabels, portLabelsOf } from "../../src/server/port-labels.js";
import { UsageError } from "../../src/sys/errors.js";

test("port labels refuse a bad limit, pinned ports or ephemeral range, naming the argument", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => new PortLabels(-1), /^port labels: limit must be an integer ≥ 0, got -1 \(a number\)$/],
    [() => new PortLabels(2, "443" as never), /pinned must be an array or other iterable \(not a string\), got "443"/],
    [() => new PortLabels(2, [443, 70000]), /pinned\[\] must be an integer from 0 to 65535, got 70000/],
    [() => new PortLabels(2, [], [60999, 32768]), /ephemeral must be a \[low, high\] port range, got an array/],
    [() => portLabelsOf("TCP metrics", { ports: [0] }), /^TCP metrics: options\.ports\[0\] must be an integer from 1 to 65535, got 0/],
    [() => portLabelsOf("TCP metrics", { topPorts: 1.5 }), /options\.topPorts must be an integer ≥ 0, got 1\.5/],
  ];
  for (const [call, pattern] of cases) assert.throws(call, (error: unknown) => error instanceof UsageError && pattern.test(error.message), pattern.source);
  const labels = portLabelsOf("TCP metrics", { ports: [9999], topPorts: 0 });
  assert.deepEqual([labels.label(9999), labels.label(80), labels.label(0)], ["9999", "other", "none"]);
});
