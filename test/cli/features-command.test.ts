import { test } from "node:test";
import assert from "node:assert/strict";
import { runCli } from "../support/cli.js";
import { hasCapability } from "../../src/sys/errors.js";
import { skipUnlessRoot } from "../support/kernel.js";

test("netbpf features --json prints one JSON object", (t) => {
  if (skipUnlessRoot(t, "for the kernel to answer probes")) return;
  const { status, stdout, stderr } = runCli(["features", "--json"]);
  assert.equal(status, 0, stderr);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 1);
  const report = JSON.parse(lines[0]!);
  assert.equal(report.programTypes.SocketFilter, "yes");
  assert.equal(report.mapTypes.Hash, "yes");
  assert.equal(typeof report.unknown, "object");
  for (const reason of Object.values(report.unknown)) assert.equal(typeof reason, "string");
});

test("netbpf features prints tables for people", (t) => {
  if (skipUnlessRoot(t, "for the kernel to answer probes")) return;
  const { status, stdout, stderr } = runCli(["features"]);
  assert.equal(status, 0, stderr);
  assert.match(stdout, /^instruction set: v\d/m);
  assert.match(stdout, /program type\s+supported/);
  assert.match(stdout, /SocketFilter\s+yes/);
  assert.match(stdout, /^Arena\s+(yes|no|unknown \(\d+\))$/m);
  // Each "unknown (n)" has its numbered reason below the tables.
  for (const [, number] of stdout.matchAll(/unknown \((\d+)\)$/gm)) assert.match(stdout, new RegExp(`^  \\(${number}\\) probe `, "m"));
  if (hasCapability("CAP_BPF")) assert.doesNotMatch(stdout + stderr, /run as root/);
});

test("an unknown command says so and exits non-zero without a stack trace", () => {
  const { status, stderr } = runCli(["no-such-command"]);
  assert.notEqual(status, 0);
  assert.match(stderr, /unknown command/);
  assert.doesNotMatch(stderr, /at .*\.js:\d+/);
});
