import { test } from "node:test";
import assert from "node:assert/strict";
import { runCli } from "../support/cli.js";

test("netbpf features --json prints one JSON object", () => {
  const { status, stdout, stderr } = runCli(["features", "--json"]);
  assert.equal(status, 0, stderr);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 1);
  const report = JSON.parse(lines[0]!);
  assert.equal(report.programTypes.SocketFilter, true);
  assert.equal(report.mapTypes.Hash, true);
});

test("netbpf features prints tables for people", () => {
  const { status, stdout } = runCli(["features"]);
  assert.equal(status, 0);
  assert.match(stdout, /^instruction set: v\d/m);
  assert.match(stdout, /program type\s+supported/);
  assert.match(stdout, /SocketFilter\s+yes/);
});

test("an unknown command says so and exits non-zero without a stack trace", () => {
  const { status, stderr } = runCli(["no-such-command"]);
  assert.notEqual(status, 0);
  assert.match(stderr, /unknown command/);
  assert.doesNotMatch(stderr, /at .*\.js:\d+/);
});
