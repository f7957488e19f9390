import { test } from "node:test";
import assert from "node:assert/strict";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { FilterSyntaxError } from "../../src/filter/filter-syntax-error.js";
import { generateFilterProgram } from "../../src/filter/generate-filter-program.js";
import { UsageError } from "../../src/sys/errors.js";
import { loadCollectionSpec } from "../../src/elf/collection-spec.js";
import { Btf } from "../../src/btf/btf.js";
import { readCapture } from "../../src/pcap/capture-file.js";

/** Calls `f` with arguments TypeScript would refuse, as plain JavaScript could. */
const untyped = (f: Function, ...args: unknown[]): unknown => f(...args);

test("library functions check their arguments and say what is wrong", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => untyped(compileFilter, 42, { linkType: 1 }), /^compile filter: the expression must be a string, got 42 \(a number\)$/],
    [() => untyped(compileFilter, undefined, { linkType: 1 }), /the expression must be a string, got undefined/],
    [() => untyped(compileFilter, ["tcp"], { linkType: 1 }), /the expression must be a string, got an array/],
    [() => untyped(compileFilter, "tcp", null), /the options must be an object, got null/],
    [() => untyped(compileFilter, "tcp", { linkType: "1" }), /options\.linkType must be an integer from 0 to 4294967295, got "1" \(a string\)/],
    [() => untyped(generateFilterProgram, "tcp", { context: "skb" }), /generate filter program: the filter must be an object/],
    [() => untyped(generateFilterProgram, {}, { context: "skb" }), /the filter must come from compileFilter\(\)/],
    [() => untyped(loadCollectionSpec, 42), /load collection spec: source must be a file path or the object's bytes, got 42/],
    [() => untyped(Btf.parse, "not bytes"), /parse BTF: bytes must be a Buffer or Uint8Array/],
    [() => untyped(readCapture, undefined), /read capture: input must be a Buffer or Uint8Array, got undefined/],
  ];
  for (const [call, pattern] of cases) {
    assert.throws(call, (error: unknown) => error instanceof UsageError && pattern.test(error.message), pattern.source);
  }
  // The valid forms still work.
  assert.equal(compileFilter("tcp", { linkType: 1 }).expression, "tcp");
  // Without options: Ethernet, as the README's example shows.
  assert.equal(compileFilter("tcp").linkType, 1);
});

test("long and deep expressions compile or get a clear error, never a stack overflow", () => {
  const expressions = [
    "len > " + Array(3000).fill("1").join(" + "),
    "len > " + "(".repeat(150) + "1" + " + 1)".repeat(150),
    "not ".repeat(4000) + "tcp",
    "len > " + "-".repeat(8000) + "1",
    "(".repeat(5000) + "tcp" + ")".repeat(5000),
    Array(1600).fill("port 80").join(" or "),
    Array(300).fill("tcp").join(" and "),
  ];
  for (const expression of expressions) {
    try {
      const filter = compileFilter(expression, { linkType: 1 });
      assert.equal(typeof filter.matches(new Uint8Array(64)), "boolean");
    } catch (error) {
      assert.ok(error instanceof FilterSyntaxError, `${expression.slice(0, 40)}…: ${String(error)}`);
      assert.match(error.message, /too|at most|deeper|expected/, expression.slice(0, 40));
    }
  }
});
