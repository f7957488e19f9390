import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { Assembler, R0, R1, R2 } from "../../src/asm/assembler.js";
import { decode, encode, makeInstruction, makeWideInstruction, type Instruction } from "../../src/asm/instruction.js";
import { ExecutionError, Interpreter, type HelperContext } from "../../src/asm/interpreter.js";
import { JavaScriptProgram } from "../../src/asm/javascript-program.js";
import { assembleText } from "../../src/asm/text-assembler.js";
import { compileCaptureFilter } from "../../src/capture/capture-filter.js";
import { Program } from "../../src/core/program.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { NetbpfError, SyscallError } from "../../src/sys/errors.js";
import { craftedEthernet, craftedLinuxSll, craftedRaw } from "../filter/filter-corpus.js";
import { differentialExpressions } from "../filter/filter-expressions.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { seededRandom } from "../support/seeded-random.js";
import { findConformanceDirectory, readConformanceFile, type ConformanceFile } from "./conformance-file.js";
import { randomCase } from "./reference-semantics.js";

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

/** The outcome of one run: r0, or the kind of failure. */
type Outcome = { value: bigint } | { failure: string; index?: number };

function outcome(run: () => bigint): Outcome {
  try {
    return { value: run() };
  } catch (error) {
    if (error instanceof ExecutionError) return { failure: error.failure, index: error.instructionIndex };
    if (error instanceof NetbpfError) return { failure: error.operation };
    if ((error as Error).message === "the test has neither an asm nor a raw section") return { failure: "no program" };
    throw error;
  }
}

const directory = findConformanceDirectory();

test("JavaScript compiler: every bpf_conformance positive test gives the expected r0", () => {
  assert.ok(directory, "bpf_conformance data not found");
  const names = readdirSync(join(directory, "tests")).filter((name) => name.endsWith(".data")).sort();
  assert.equal(names.length, 313);
  const failures: string[] = [];
  for (const name of names) {
    const file = readConformanceFile(join(directory, "tests", name));
    try {
      const compiled = new JavaScriptProgram(programOf(file), { helpers: conformanceHelpers, instructionLimit: 100_000 });
      const actual = compiled.run(file.memory.slice()).returnValue;
      if (actual !== file.result) failures.push(`${name}: r0 = 0x${actual.toString(16)}, expected 0x${file.result?.toString(16)}`);
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  assert.deepEqual(failures, []);
});

test("JavaScript compiler: every bpf_conformance negative test fails as in the interpreter", () => {
  assert.ok(directory, "bpf_conformance data not found");
  const names = readdirSync(join(directory, "negative")).filter((name) => name.endsWith(".data")).sort();
  assert.equal(names.length, 60);
  let failed = 0;
  for (const name of names) {
    const file = readConformanceFile(join(directory, "negative", name));
    const reference = outcome(() => new Interpreter(programOf(file), { helpers: conformanceHelpers, instructionLimit: 100_000 }).run(file.memory.slice()).returnValue);
    const compiled = outcome(() => new JavaScriptProgram(programOf(file), { helpers: conformanceHelpers, instructionLimit: 100_000 }).run(file.memory.slice()).returnValue);
    assert.deepEqual(compiled, reference, name);
    if ("failure" in compiled) failed++;
  }
  assert.ok(failed >= 50, `${failed} negative tests failed to run`);
});

test("JavaScript compiler agrees with the BigInt reference (itself checked against the kernel) on 2,000 seeded ALU and jump cases", () => {
  const random = seededRandom(0x5eed);
  for (let round = 0; round < 2000; round++) {
    const testCase = randomCase(random, false);
    const builder = new Assembler().loadImmediate64(R0, testCase.a).loadImmediate64(R1, testCase.a).loadImmediate64(R2, testCase.b);
    if (testCase.kind === "alu") builder.raw(testCase.instruction);
    else builder.mov64(R0, 1).raw(testCase.instruction).mov64(R0, 0);
    const program = builder.exit().finish().instructions;
    assert.equal(new JavaScriptProgram(program).run().returnValue, testCase.expected, `round ${round}: ${JSON.stringify(testCase.instruction)} a=${testCase.a} b=${testCase.b}`);
  }
});

/** A random program that mostly runs: register set-up, then ALU, loads, stores, forward jumps, loops and a call. */
function randomProgram(random: () => number, memoryLength: number): Instruction[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const register = () => Math.floor(random() * 10);
  const value = () => (random() < 0.5 ? Math.floor(random() * 64) - 8 : (Math.floor(random() * 2 ** 32) | 0));
  const body: Instruction[] = [];
  // r1 keeps the memory pointer, r2 its length; r6-r9 and r0, r3-r5 get values.
  for (const r of [0, 3, 4, 5, 6, 7, 8, 9]) {
    body.push(random() < 0.3 ? makeWideInstruction(r, 0, BigInt.asUintN(64, BigInt(value()) * 0x1_0000_0003n)) : makeInstruction(0xb7, r, 0, 0, value()));
  }
  const length = 5 + Math.floor(random() * 30);
  const aluOperations = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0];
  const jumpOperations = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0];
  const sizes = [0x00, 0x08, 0x10, 0x18];
  const dataRegister = () => pick([0, 3, 4, 5, 6, 7, 8, 9]);
  for (let i = 0; i < length; i++) {
    const choice = random();
    const remaining = length - i;
    if (choice < 0.45) {
      const operation = pick(aluOperations);
      const cls = random() < 0.5 ? 0x07 : 0x04;
      const dst = dataRegister();
      if (operation === 0x80) body.push(makeInstruction(cls | 0x80, dst, 0, 0, 0));
      else if (operation === 0xd0) body.push(makeInstruction(cls | 0xd0 | (cls === 0x04 && random() < 0.5 ? 8 : 0), dst, 0, 0, pick([16, 32, 64])));
      else {
        const offset = (operation === 0x30 || operation === 0x90) && random() < 0.5 ? 1 : operation === 0xb0 && random() < 0.2 ? pick(cls === 7 ? [8, 16, 32] : [8, 16]) : 0;
        const fromRegister = random() < 0.5 || offset > 1;
        body.push(fromRegister ? makeInstruction(cls | operation | 8, dst, register(), offset, 0) : makeInstruction(cls | operation, dst, 0, offset, value()));
      }
    } else if (choice < 0.6) {
      // load from memory (sometimes out of bounds on purpose)
      const size = pick(sizes);
      const at = Math.floor(random() * (memoryLength + 4));
      body.push(makeInstruction((random() < 0.2 && size !== 0x18 ? 0x81 : 0x61) | size, dataRegister(), 1, at, 0));
    } else if (choice < 0.7) {
      // store to the stack, then load it back
      const size = pick(sizes);
      const at = -8 * (1 + Math.floor(random() * 8));
      body.push(makeInstruction(0x63 | size, 10, dataRegister(), at, 0));
      if (random() < 0.3) body.push(makeInstruction(0x62 | size, 10, 0, at, value()));
      body.push(makeInstruction(0x61 | size, dataRegister(), 10, at, 0));
    } else if (choice < 0.75) {
      // legacy packet load
      const size = pick([0x00, 0x08, 0x10]);
      body.push(random() < 0.5 ? makeInstruction(0x20 | size, 0, 0, 0, Math.floor(random() * (memoryLength + 4))) : makeInstruction(0x40 | size, 0, dataRegister(), 0, Math.floor(random() * 8)));
    } else if (choice < 0.8) {
      // atomic on the stack
      const size = pick([0x00, 0x18]);
      body.push(makeInstruction(0x7b, 10, dataRegister(), -8, 0));
      body.push(makeInstruction(0xc3 | size, 10, dataRegister(), -8, pick([0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1])));
    } else if (remaining > 2) {
      const operation = pick(jumpOperations);
      const cls = random() < 0.5 ? 0x05 : 0x06;
      const skip = 1 + Math.floor(random() * Math.min(remaining - 1, 6));
      body.push(random() < 0.5 ? makeInstruction(cls | operation | 8, dataRegister(), register(), skip, 0) : makeInstruction(cls | operation, dataRegister(), 0, skip, value()));
    }
  }
  // Sometimes a bounded loop over r6, sometimes an infinite one (the instruction limit must stop both engines alike).
  if (random() < 0.15) {
    const bound = random() < 0.2 ? -1 : Math.floor(random() * 50);
    body.push(makeInstruction(0xb7, 6, 0, 0, 0), makeInstruction(0x07, 6, 0, 0, 1), makeInstruction(0x0f, 0, 6, 0, 0));
    body.push(bound < 0 ? makeInstruction(0x05, 0, 0, -3, 0) : makeInstruction(0xa5, 6, 0, -3, bound));
  }
  body.push(makeInstruction(0x95, 0, 0, 0, 0));
  return body;
}

test("JavaScript compiler and interpreter agree on 3,000 seeded random programs (results and failures)", () => {
  const random = seededRandom(0x71c);
  const kinds = new Map<string, number>();
  for (let round = 0; round < 3000; round++) {
    const memoryLength = Math.floor(random() * 80);
    const memory = Uint8Array.from({ length: memoryLength }, () => Math.floor(random() * 256));
    let program = randomProgram(random, memoryLength);
    // A local call into a copy of the body, now and then.
    if (random() < 0.1) program = [makeInstruction(0x85, 0, 1, 0, 1), makeInstruction(0x95, 0, 0, 0, 0), ...program];
    const bytes = encode(program);
    const interpreterMemory = memory.slice();
    const compiledMemory = memory.slice();
    const reference = outcome(() => new Interpreter(bytes, { instructionLimit: 10_000 }).run(interpreterMemory).returnValue);
    const compiled = outcome(() => new JavaScriptProgram(bytes, { instructionLimit: 10_000 }).run(compiledMemory).returnValue);
    assert.deepEqual(compiled, reference, `round ${round}:\n${Buffer.from(bytes).toString("hex")}`);
    assert.deepEqual(compiledMemory, interpreterMemory, `round ${round}: memory after the run`);
    const kind = "value" in reference ? "value" : reference.failure;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  // The generator must exercise both successful runs and each failure the engines report.
  assert.ok((kinds.get("value") ?? 0) > 1000, JSON.stringify(Object.fromEntries(kinds)));
  assert.ok((kinds.get("out-of-bounds") ?? 0) > 50, JSON.stringify(Object.fromEntries(kinds)));
  assert.ok((kinds.get("instruction-limit") ?? 0) > 5, JSON.stringify(Object.fromEntries(kinds)));
});

test("JavaScript compiler: one compiled program runs many memories, keeps state apart, and checks its inputs", () => {
  const program = new JavaScriptProgram(assembleText("ldxb %r0, [%r1+2]\nexit"));
  assert.equal(program.run(Uint8Array.of(1, 2, 3)).returnValue, 3n);
  assert.equal(program.run(Uint8Array.of(4, 5, 6)).returnValue, 6n);
  assert.equal(program.test(Uint8Array.of(0, 0, 0)), false);
  assert.equal(program.test(Uint8Array.of(0, 0, 9)), true);
  assert.throws(() => program.run(Uint8Array.of(1)), (error: unknown) => error instanceof ExecutionError && error.failure === "out-of-bounds" && error.instructionIndex === 0);
  assert.throws(() => program.run("x" as unknown as Uint8Array), /memory must be a Uint8Array/);
  assert.equal(program.testWindow(Uint8Array.of(9, 9, 0, 0, 7, 9), 2, 3), true);
  assert.equal(program.testWindow(Uint8Array.of(9, 9, 0, 0, 0, 9), 2, 3), false);
  assert.throws(() => program.testWindow(Uint8Array.of(9, 9, 0, 0, 7, 9), 2, 2), (error: unknown) => error instanceof ExecutionError && error.failure === "out-of-bounds");
  assert.throws(() => program.testWindow(Uint8Array.of(1, 2), 1, 2), /outside the 2-byte memory/);
  const refused = (pattern: RegExp) => (error: Error) => error instanceof NetbpfError && pattern.test(error.message);
  assert.throws(() => program.test(undefined as never), refused(/memory must be a Uint8Array \(or Buffer\), got undefined/));
  assert.throws(() => program.test(Uint8Array.of(1), -1), refused(/r3 must be an integer from 0 to 4294967295, got -1/));
  assert.throws(() => program.test(Uint8Array.of(1), 0, "1" as never), refused(/r4 must be an integer from 0 to 4294967295, got "1"/));
  assert.throws(() => program.testWindow(Uint8Array.of(1, 2), 0.5, 1), refused(/start must be an integer from 0 to 4294967295, got 0\.5/));
  assert.throws(() => program.testWindow(Uint8Array.of(1, 2), 0, undefined as never), refused(/length must be an integer/));
  assert.throws(() => program.testWindow(Uint8Array.of(1, 2), 0, 2, 2 ** 32), refused(/r3 must be an integer from 0 to 4294967295/));
  assert.throws(() => program.run(Uint8Array.of(1, 2, 3), { registers: { 6: 1 } as never }), refused(/r6 cannot be set/));
  assert.equal(program.testWindow(Uint8Array.of(9, 9, 0, 0, 7, 9), 2, 3, 2 ** 32 - 1, 0), true);
  // The limit is written into the generated source: only an integer may get there.
  assert.throws(() => new JavaScriptProgram(assembleText("exit"), { instructionLimit: "0; globalThis.injected = 1; //" as never }), refused(/options\.instructionLimit must be an integer ≥ 1/));
  assert.throws(() => new JavaScriptProgram(assembleText("exit"), { resolvePseudoLoad: 1 as never }), refused(/options\.resolvePseudoLoad must be a function/));
  assert.throws(() => new JavaScriptProgram("x" as unknown as Uint8Array), /must be an Instruction\[\] or the encoded bytes/);
  const registers = new JavaScriptProgram(assembleText("mov %r0, %r3\nadd %r0, %r4\nexit"));
  assert.equal(registers.run(new Uint8Array(0), { registers: { 3: 40, 4: 2 } }).returnValue, 42n);
  assert.equal(registers.test(new Uint8Array(0), 0, 0), false);
  assert.equal(registers.test(new Uint8Array(0), 1, 0), true);
  assert.match(registers.source, /function run/);
});

const corpora: [number, () => { data: Uint8Array; length?: number }[]][] = [
  [LinkType.ETHERNET, craftedEthernet],
  [LinkType.LINUX_SLL, craftedLinuxSll],
  [LinkType.RAW, craftedRaw],
];

test("compiled capture filters select the same packets as the interpreter for every differential expression", () => {
  let compared = 0;
  let selected = 0;
  for (const [linkType, corpus] of corpora) {
    const packets = corpus();
    for (const expression of differentialExpressions.filter((_, index) => index % 3 === linkType % 3)) {
      let filter;
      try {
        filter = compileCaptureFilter(expression, linkType);
      } catch {
        continue; // not valid for this link type
      }
      const interpreter = new Interpreter(filter.interpreterProgram.instructions);
      const compiled = new JavaScriptProgram(filter.interpreterProgram.instructions);
      for (const packet of packets) {
        const wire = packet.length ?? packet.data.length;
        const expected = interpreter.run(packet.data, { registers: { 3: wire, 4: 0 } }).returnValue !== 0n;
        assert.equal(compiled.test(packet.data, wire, 0), expected, `${expression} on a ${packet.data.length}-byte packet`);
        // The same packet inside a larger buffer, between bytes the filter must not see.
        const padded = new Uint8Array(packet.data.length + 64).fill(0xa5);
        padded.set(packet.data, 17);
        assert.equal(compiled.testWindow(padded, 17, packet.data.length, wire, 0), expected, `${expression} on a ${packet.data.length}-byte packet in a window`);
        compared++;
        if (expected) selected++;
      }
    }
  }
  assert.ok(compared > 3000, `${compared} comparisons`);
  assert.ok(selected > 300 && selected < compared - 300, `${selected} of ${compared} selected`);
});

test("compiled capture filters agree with the kernel (BPF_PROG_TEST_RUN of the tc program) on Ethernet packets", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load and test-run programs")) return;
  const packets = craftedEthernet().filter((packet) => packet.data.length >= 14 && packet.length === undefined);
  const expressions = differentialExpressions.filter((_, index) => index % 4 === 0);
  let compared = 0;
  for (const expression of expressions) {
    let filter;
    try {
      filter = compileCaptureFilter(expression, LinkType.ETHERNET);
    } catch {
      continue; // not valid on saved Ethernet frames (inbound/outbound)
    }
    using kernel = Program.load({ type: ProgramType.SchedCls, instructions: filter.kernelProgram, name: "jit_check" });
    const compiled = new JavaScriptProgram(filter.interpreterProgram.instructions);
    for (const packet of packets) {
      let kernelResult: boolean;
      try {
        kernelResult = kernel.run({ data: Buffer.from(packet.data) }).returnValue !== 0;
      } catch (error) {
        if (error instanceof SyscallError && error.code === "EINVAL") continue;
        throw error;
      }
      assert.equal(compiled.test(packet.data, packet.data.length, 0), kernelResult, `${expression} on a ${packet.data.length}-byte packet`);
      compared++;
    }
  }
  assert.ok(compared > 1000, `${compared} comparisons`);
});
