import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { assembleText } from "../../src/asm/text-assembler.js";
import { assembleLlvm } from "../../src/asm/llvm-assembler.js";
import { disassemble } from "../../src/asm/disassembler.js";
import { decode, encode, type Instruction } from "../../src/asm/instruction.js";
import { ExecutionError, Interpreter, type HelperContext } from "../../src/asm/interpreter.js";
import { NetbpfError } from "../../src/sys/errors.js";
import { type ConformanceFile, findConformanceDirectory, readConformanceFile } from "./conformance-file.js";

const directory = findConformanceDirectory();

/** The suite's helper 5: returns its argument, and ends the program when that is 0. */
const conformanceHelpers = {
  5: (context: HelperContext) => {
    const value = context.arguments[0];
    if (value === 0n) context.stop(0n);
    return value;
  },
};

function programOf(file: ConformanceFile): Instruction[] {
  if (file.asm !== undefined) return assembleText(file.asm);
  if (file.raw !== undefined) return decode(file.raw);
  throw new Error("the test has neither an asm nor a raw section");
}

function run(file: ConformanceFile): bigint {
  const program = programOf(file);
  const interpreter = new Interpreter(program, { helpers: conformanceHelpers, instructionLimit: 100_000 });
  return interpreter.run(file.memory.slice()).returnValue;
}

// The data is committed in test/fixtures/bpf_conformance: missing data is a failure, never a skip.
function suiteDirectory(): string {
  if (directory) return directory;
  throw new Error("bpf_conformance data not found (expected test/fixtures/bpf_conformance)");
}

test("bpf_conformance: every positive test gives the expected r0", (t) => {
  const suite = suiteDirectory();
  const names = readdirSync(join(suite, "tests")).filter((name) => name.endsWith(".data")).sort();
  assert.equal(names.length, 313);
  const failures: string[] = [];
  let passed = 0;
  for (const name of names) {
    try {
      const file = readConformanceFile(join(suite, "tests", name));
      if (file.result === undefined) throw new Error("no result section");
      const actual = run(file);
      if (actual !== file.result) throw new Error(`r0 = 0x${actual.toString(16)}, expected 0x${file.result.toString(16)}`);
      passed++;
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  t.diagnostic(`${passed}/${names.length} conformance tests pass`);
  assert.deepEqual(failures, []);
});

test("bpf_conformance: every program survives encode → decode and disassemble → assembleLlvm, and matches its raw section", (t) => {
  const suite = suiteDirectory();
  const names = readdirSync(join(suite, "tests")).filter((name) => name.endsWith(".data"));
  let compared = 0;
  for (const name of names) {
    const file = readConformanceFile(join(suite, "tests", name));
    const program = programOf(file);
    const bytes = encode(program);
    assert.equal(bytes.length % 8, 0, name);
    assert.deepEqual(decode(bytes), program, name);
    assert.deepEqual(encode(decode(bytes)), bytes, name);
    // through llvm-objdump syntax and back (helper, local and kfunc calls print alike)
    const viaLlvm = assembleLlvm(disassemble(program, { alu32: true }));
    const callsAsHelperCalls = program.map((instruction) => (instruction.opcode === 0x85 ? { ...instruction, src: 0 } : instruction));
    assert.deepEqual(viaLlvm, callsAsHelperCalls, `${name}: via LLVM syntax`);
    if (file.raw !== undefined && file.asm !== undefined) {
      assert.deepEqual(bytes, Buffer.from(file.raw), `${name}: assembled bytes differ from the raw section`);
      compared++;
    }
  }
  assert.ok(compared >= 1, "at least one test carries both asm and raw");
});

test("bpf_conformance: every negative test is rejected with a clear error", (t) => {
  const suite = suiteDirectory();
  const names = readdirSync(join(suite, "negative")).filter((name) => name.endsWith(".data")).sort();
  assert.equal(names.length, 60);
  const accepted: string[] = [];
  const kinds = new Map<string, number>();
  for (const name of names) {
    const file = readConformanceFile(join(suite, "negative", name));
    let kind: string;
    try {
      const actual = run(file);
      if (file.result === undefined) kind = "no expected result";
      else if (actual !== file.result) kind = "wrong result";
      else {
        accepted.push(name);
        continue;
      }
    } catch (error) {
      // Our own errors must be the typed ones with a message, never a TypeError or RangeError.
      if (!(error instanceof NetbpfError) && (error as Error).message !== "the test has neither an asm nor a raw section") {
        throw new Error(`${name}: raw ${(error as Error).name}: ${(error as Error).message}`);
      }
      kind = error instanceof ExecutionError ? `execution: ${error.failure}` : error instanceof NetbpfError ? error.operation : "no program";
      assert.ok((error as Error).message.length > 10);
    }
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  t.diagnostic(`rejections: ${JSON.stringify(Object.fromEntries(kinds))}`);
  assert.deepEqual(accepted, []);
});

test("text assembler errors name the line and the problem", () => {
  assert.throws(() => assembleText("mov %r0, 1\nor %r0, %r50\nexit"), /line 2: invalid register "%r50"/);
  assert.throws(() => assembleText("mov32 %r0, 2147483648\nexit"), /line 1: immediate 2147483648 is out of the 32-bit range/);
  assert.throws(() => assembleText("mov32 %r0, 0x100000000\nexit"), /out of the 32-bit range/);
  assert.equal(assembleText("mov32 %r0, 0xffffffff\nexit")[0]!.imm, -1);
  assert.throws(() => assembleText("ja NOT_A_LABEL\nexit"), /invalid label "NOT_A_LABEL"/);
  assert.throws(() => assembleText("lock or [%r10-8]\nexit"), /invalid number of operands for lock/);
  assert.throws(() => assembleText("ldxq %r0, %r1\nexit"), /unknown mnemonic "ldxq"/);
  assert.throws(() => assembleText("ldxb %r0, %r1\nexit"), /invalid memory operand/);
  assert.throws(() => assembleText("ldxb %r0, [%r1+0x10000]\nexit"), /16-bit range/);
  assert.throws(() => assembleText("lddw %r0\nexit"), /invalid number of operands for lddw/);
  assert.throws(() => assembleText("# nothing\n"), /no instructions/);
  assert.throws(() => assembleText("a:\na:\nexit"), /label a is defined twice/);
});
