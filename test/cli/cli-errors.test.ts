import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CommanderError } from "commander";
import { describeError } from "../../src/cli/cli-errors.js";
import { SyscallError, UsageError } from "../../src/sys/errors.js";
import { cliPath, runCli } from "../support/cli.js";
import { skipUnlessRoot } from "../support/kernel.js";

const genObject = fileURLToPath(new URL("../../../test/fixtures/gen/gen.o", import.meta.url));
const stackLine = /^\s+at .*:\d+:\d+\)?$/m;

/** One line, `netbpf: …`, no stack, no help text. */
function assertOneLine(output: string, pattern: RegExp, context: string): void {
  assert.ok(output.endsWith("\n"), context);
  const stderr = output.slice(0, -1);
  assert.equal(stderr.split("\n").filter(Boolean).length, 1, `${context}: ${stderr}`);
  assert.match(stderr, /^netbpf: /, context);
  assert.match(stderr, pattern, context);
  assert.doesNotMatch(stderr, /^error:|Usage:/m, context);
}

test("the option parser's errors use netbpf's format and exit 2", () => {
  const cases: [string[], RegExp][] = [
    [["features", "--bogus"], /^netbpf: features: unknown option '--bogus' \(see netbpf features --help\)$/],
    [["no-such-command"], /^netbpf: unknown command 'no-such-command' \(see netbpf --help\)$/],
    [["featurs"], /^netbpf: unknown command 'featurs' \(Did you mean features\?\) \(see netbpf --help\)$/],
    [["map", "dump"], /^netbpf: map dump: missing required argument 'id' \(see netbpf map dump --help\)$/],
    [["load", genObject, "-i"], /^netbpf: load: option '-i, --interface <name>' argument missing/],
    [["features", "extra"], /^netbpf: features: too many arguments/],
  ];
  for (const [args, pattern] of cases) {
    const { status, stderr } = runCli(args);
    assert.equal(status, 2, `${args.join(" ")}: ${stderr}`);
    assertOneLine(stderr, pattern, args.join(" "));
  }
  // A command's own usage errors exit 2 as well.
  assert.equal(runCli(["prog", "show", "abc"]).status, 2);
  // Help and version are not errors.
  assert.equal(runCli(["--version"]).status, 0);
  assert.equal(runCli(["features", "--help"]).status, 0);
});

test("failures at run time exit 1", (t) => {
  if (skipUnlessRoot(t, "to look a map up by id")) return;
  const missing = runCli(["map", "show", "2147483647"]);
  assert.equal(missing.status, 1);
  assertOneLine(missing.stderr, /no map with id 2147483647/, "map show");
});

test("option values are checked even where the option does not apply", () => {
  // "scale" is a socket filter: neither a tc direction nor an XDP mode applies to it.
  for (const [option, value, choices] of [["--direction", "sideways", "ingress, egress"], ["--xdp-mode", "turbo", "native, generic, offload"]] as const) {
    const { status, stdout, stderr } = runCli(["load", genObject, "--program", "scale", option, value, "--duration", "0.1"]);
    assert.equal(status, 2, stderr);
    assert.equal(stdout, "", "nothing was loaded");
    assertOneLine(stderr, new RegExp(`^netbpf: load: option '${option} <\\w+>' argument '${value}' is invalid\\. Allowed choices are ${choices} \\(see netbpf load --help\\)$`), option);
  }
});

test("NETBPF_DEBUG=1 adds the stack trace to every error report", () => {
  const run = (args: string[], debug: boolean) => spawnSync(process.execPath, [cliPath, ...args], { encoding: "utf8", env: { ...process.env, NETBPF_DEBUG: debug ? "1" : "" } });
  for (const args of [["prog", "show", "abc"], ["features", "--bogus"], ["filter", "tcp and"], ["map", "show", "2147483647"]]) {
    const plain = run(args, false);
    assert.doesNotMatch(plain.stderr, stackLine, args.join(" "));
    const debug = run(args, true);
    assert.equal(debug.status, plain.status, args.join(" "));
    assert.ok(debug.stderr.startsWith(plain.stderr.trimEnd()), `${args.join(" ")}: the same report first\n${debug.stderr}`);
    assert.match(debug.stderr, stackLine, args.join(" "));
  }
});

test("every kind of error maps to one report and exit status", () => {
  const usage = describeError(new UsageError("capture", "-c needs a positive packet count", "give -c N"));
  assert.deepEqual(usage, { text: "netbpf: capture: -c needs a positive packet count (give -c N)", exitCode: 2 });
  assert.equal(describeError(new SyscallError("map create", 12)).exitCode, 1);
  const parser = describeError(new CommanderError(1, "commander.unknownOption", "error: unknown option '--x'"), "map dump");
  assert.deepEqual(parser, { text: "netbpf: map dump: unknown option '--x' (see netbpf map dump --help)", exitCode: 2 });
  assert.deepEqual(describeError(new CommanderError(0, "commander.helpDisplayed", "(outputHelp)")), { text: "", exitCode: 0 });
  // An unexpected exception (a bug) still gets one line, and says how to see where it came from.
  const bug = describeError(new TypeError("Cannot read properties of undefined (reading 'x')"));
  assert.equal(bug.exitCode, 1);
  assert.equal(bug.text, "netbpf: Cannot read properties of undefined (reading 'x') (an unexpected error: NETBPF_DEBUG=1 shows where it came from)");
  const debug = describeError(new TypeError("oops"), "", true);
  assert.match(debug.text, /^netbpf: oops\nTypeError: oops\n\s+at /);
  assert.deepEqual(describeError("a string"), { text: "netbpf: a string", exitCode: 1 });
});
