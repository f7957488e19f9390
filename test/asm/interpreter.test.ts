import { test } from "node:test";
import assert from "node:assert/strict";
import { Assembler, R0, R1, R2, R3, R6, R10 } from "../../src/asm/assembler.js";
import { encode, makeInstruction, type Instruction } from "../../src/asm/instruction.js";
import { ExecutionError, Interpreter, runProgram } from "../../src/asm/interpreter.js";
import { UsageError } from "../../src/sys/errors.js";
import { seededRandom } from "../support/seeded-random.js";
import { randomCase } from "./reference-semantics.js";
import { disassembleInstruction } from "../../src/asm/disassembler.js";

test("r1 points at the memory, r2 holds its length, r10 at a writable stack", () => {
  const program = new Assembler()
    .load("u8", R0, R1, 3)
    .store("u64", R10, -8, R2)
    .load("u64", R3, R10, -8)
    .leftShift64(R3, 8)
    .or64(R0, R3)
    .exit()
    .finish().instructions;
  const result = runProgram(program, Uint8Array.of(1, 2, 3, 0x44, 5));
  assert.equal(result.returnValue, 0x544n);
  assert.equal(result.instructionCount, 6);
});

test("a program given as bytes runs like its instructions", () => {
  const { instructions } = new Assembler().mov64(R0, -7).exit().finish();
  assert.equal(runProgram(encode(instructions)).returnValue, 0xffff_ffff_ffff_fff9n);
});

test("out-of-bounds accesses are errors that name the instruction", () => {
  const past = new Assembler().mov64(R0, 0).load("u32", R0, R1, 2).exit().finish().instructions;
  assert.throws(
    () => runProgram(past, new Uint8Array(5)),
    (error: unknown) => error instanceof ExecutionError && error.failure === "out-of-bounds" && error.instructionIndex === 1 && /instruction 1 \(slot 1\): 4-byte access/.test(error.message),
  );
  const below = new Assembler().load("u8", R0, R1, -1).exit().finish().instructions;
  assert.throws(() => runProgram(below, new Uint8Array(5)), /not in any memory region/);
  const stackOverflow = new Assembler().store("u64", R10, 0, R1).exit().finish().instructions;
  assert.throws(() => runProgram(stackOverflow), /beyond the end of the stack/);
  const stackUnderflow = new Assembler().load("u8", R0, R10, -513).exit().finish().instructions;
  assert.throws(() => runProgram(stackUnderflow), /stack access at r10-513 is below the current 512-byte frame/);
  const deepest = new Assembler().load("u8", R0, R10, -512).exit().finish().instructions;
  assert.equal(runProgram(deepest).returnValue, 0n);
  const wild = new Assembler().loadImmediate64(R1, 0xdead_0000_0000n).load("u8", R0, R1, 0).exit().finish().instructions;
  assert.throws(() => runProgram(wild), (error: unknown) => error instanceof ExecutionError && error.instructionIndex === 1 && error.slot === 2);
});

test("an endless loop stops at the instruction limit", () => {
  const loop = new Assembler().label("top").add64(R0, 1).jump("top").finish().instructions;
  assert.throws(() => runProgram(loop, undefined, { instructionLimit: 1000 }), (error: unknown) => error instanceof ExecutionError && error.failure === "instruction-limit");
});

test("falling off the end is an error, not a crash", () => {
  const program: Instruction[] = [makeInstruction(0xb7, 0, 0, 0, 1)];
  assert.throws(() => runProgram(program, undefined, { validate: false }), (error: unknown) => error instanceof ExecutionError && error.failure === "end-of-program");
});

test("invalid programs are rejected before running", () => {
  assert.throws(() => new Interpreter([makeInstruction(0x07, 0, 1, 0, 1)]), (error: unknown) => error instanceof UsageError && /src must be 0/.test(error.message));
  assert.throws(() => new Interpreter([makeInstruction(0x05, 0, 0, 5, 0), makeInstruction(0x95, 0, 0, 0, 0)]), /outside the program/);
  assert.throws(() => new Interpreter([makeInstruction(0xb7, 10, 0, 0, 1), makeInstruction(0x95, 0, 0, 0, 0)]), /read-only/);
});

test("helpers get their arguments and the program's memory", () => {
  const program = new Assembler()
    .store("u32", R10, -4, 0x01020304)
    .mov64(R1, R10)
    .add64(R1, -4)
    .mov64(R2, 4)
    .call("csum_diff")
    .exit()
    .finish().instructions;
  let seen: bigint[] = [];
  const result = runProgram(program, undefined, {
    helpers: {
      28: (context) => {
        seen = [...context.arguments];
        const bytes = context.read(context.arguments[0], Number(context.arguments[1]));
        return bytes.reduce((sum, byte) => sum + byte, 0);
      },
    },
  });
  assert.equal(result.returnValue, 10n);
  assert.equal(seen[1], 4n);
  assert.throws(() => runProgram(program), (error: unknown) => error instanceof ExecutionError && error.failure === "unknown-helper" && /helper 28/.test(error.message));
});

test("a helper can hand out memory (like a map lookup) and stop the program", () => {
  const value = new Uint8Array(8);
  const program = new Assembler()
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, "out")
    .mov64(R1, 5)
    .atomic("u64", "add", R0, 0, R1)
    .atomic("u64", "add", R0, 0, R1)
    .load("u64", R0, R0, 0)
    .call(5)
    .label("out")
    .exit()
    .finish().instructions;
  const interpreter = new Interpreter(program, {
    helpers: {
      1: (context) => context.map(value),
      5: (context) => context.stop(99),
    },
  });
  assert.equal(interpreter.run().returnValue, 99n);
  assert.equal(new DataView(value.buffer).getBigUint64(0, true), 10n);
  // a mapped address is bounds-checked like any other
  const overrun = new Assembler().call("map_lookup_elem").load("u64", R0, R0, 4).exit().finish().instructions;
  assert.throws(() => runProgram(overrun, undefined, { helpers: { 1: (context) => context.map(value) } }), /beyond the end of the mapped memory/);
});

test("local calls get their own stack frame and keep r6-r9", () => {
  const main = new Assembler()
    .mov64(R6, 11)
    .store("u64", R10, -8, 1000)
    .mov64(R1, 7)
    .callLocal("triple")
    .add64(R0, R6)
    .load("u64", R1, R10, -8)
    .add64(R0, R1)
    .exit();
  const triple = new Assembler()
    .label("triple")
    .mov64(R6, 0)
    .store("u64", R10, -8, 1)
    .mov64(R0, R1)
    .mul64(R0, 3)
    .exit();
  const { instructions } = main.append(triple).finish();
  assert.equal(runProgram(instructions).returnValue, 21n + 11n + 1000n);
  const callerStack = new Assembler()
    .store("u64", R10, -8, 77)
    .mov64(R1, R10).add64(R1, -8)
    .callLocal("read")
    .exit()
    .label("read").load("u64", R0, R1, 0).exit()
    .finish().instructions;
  assert.equal(runProgram(callerStack).returnValue, 77n, "a callee may read its caller's stack through a pointer");
  const recursive = new Assembler().label("f").callLocal("f").exit().finish().instructions;
  assert.throws(() => runProgram(recursive), (error: unknown) => error instanceof ExecutionError && error.failure === "call-depth");
});

test("legacy packet loads read big-endian and end the program with 0 when out of bounds", () => {
  const program = new Assembler()
    .mov64(R6, R1)
    .loadPacketAbsolute("u16", 1)
    .mov64(R3, R0)
    .mov64(R2, 0)
    .loadPacketIndirect("u8", R2, 3)
    .leftShift64(R3, 8)
    .or64(R0, R3)
    .exit()
    .finish().instructions;
  assert.equal(runProgram(program, Uint8Array.of(0, 0x12, 0x34, 0x56)).returnValue, 0x123456n);
  assert.equal(runProgram(program, Uint8Array.of(0, 0x12, 0x34)).returnValue, 0n);
});

test("pseudo 64-bit loads need a resolver", () => {
  const program = new Assembler().loadMapValue(R0, "globals", 8).exit().finish();
  assert.throws(() => runProgram(program.instructions), /resolvePseudoLoad/);
  const result = runProgram(program.instructions, undefined, { resolvePseudoLoad: (src, value) => (src === 2 ? value + 1n : 0n) });
  assert.equal(result.returnValue, (8n << 32n) + 1n);
});

// ---- differential: pair-of-32-bit arithmetic against a BigInt reference ----------------

test("ALU and jump results agree with a BigInt reference on 20,000 seeded random cases", () => {
  const random = seededRandom(0x5eed);
  for (let round = 0; round < 20_000; round++) {
    const testCase = randomCase(random, false);
    const builder = new Assembler().loadImmediate64(R0, testCase.a).loadImmediate64(R1, testCase.a).loadImmediate64(R2, testCase.b);
    if (testCase.kind === "alu") builder.raw(testCase.instruction);
    else builder.mov64(R0, 1).raw(testCase.instruction).mov64(R0, 0);
    const actual = runProgram(builder.exit().finish().instructions).returnValue;
    assert.equal(
      actual,
      testCase.expected,
      `round ${round}: ${disassembleInstruction(testCase.instruction)} with dst=0x${testCase.a.toString(16)} src=0x${testCase.b.toString(16)}`,
    );
  }
});

test("the interpreter runs a packet-filter-sized program quickly", () => {
  // 40 instructions of header checks per packet, over 20,000 packets.
  const builder = new Assembler().load("u16", R2, R1, 12).jumpIf(R2, "!=", 0x0008, "drop");
  for (let i = 0; i < 18; i++) builder.load("u8", R3, R1, 14 + i).jumpIf32(R3, "==", 0x1ff, "drop");
  const program = builder.return(1).label("drop").return(0).finish().instructions;
  const interpreter = new Interpreter(program);
  const packet = new Uint8Array(64);
  packet[12] = 0x08;
  const start = performance.now();
  let accepted = 0n;
  for (let i = 0; i < 20_000; i++) accepted += interpreter.run(packet).returnValue;
  const seconds = (performance.now() - start) / 1000;
  assert.equal(accepted, 20_000n);
  // ~800k instructions: generous bound so a loaded CI machine passes, but a BigInt-per-op design would not.
  assert.ok(seconds < 2, `took ${seconds.toFixed(2)} s`);
});

test("unvalidated programs still fail cleanly", () => {
  const backwards = [makeInstruction(0x05, 0, 0, -5, 0), makeInstruction(0x95, 0, 0, 0, 0)];
  assert.throws(() => runProgram(backwards, undefined, { validate: false }), /before the first instruction/);
  const unknownLoad = [makeInstruction(0x60, 0, 0, 0, 0), makeInstruction(0x95, 0, 0, 0, 0)];
  assert.throws(() => runProgram(unknownLoad, undefined, { validate: false }), (error: unknown) => error instanceof ExecutionError && error.failure === "unsupported");
});

test("initial registers can be given per run", () => {
  const program = new Assembler().mov64(R0, R1).add64(R0, R2).exit().finish().instructions;
  const interpreter = new Interpreter(program);
  assert.equal(interpreter.run(undefined, { registers: { 1: 40, 2: 2n } }).returnValue, 42n);
  assert.equal(interpreter.run(undefined, { registers: { 1: -1 } }).returnValue, 0xffff_ffff_ffff_ffffn);
});

test("bad arguments are UsageErrors", () => {
  const program = new Assembler().return(0).finish().instructions;
  assert.throws(() => new Interpreter("exit" as unknown as Instruction[]), UsageError);
  assert.throws(() => new Interpreter(program).run([1, 2] as unknown as Uint8Array), /memory must be a Uint8Array/);
  assert.throws(() => new Interpreter(program).run(undefined, { registers: { 7: 1 } as never }), /r7 cannot be set/);
  assert.throws(() => new Interpreter(program).run(undefined, { registers: { 1: 1.5 } }), /must be an integer/);
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  assert.throws(() => new Interpreter(program).run(undefined, null as never), refused(/options must be an object, got null/));
  assert.throws(() => new Interpreter(program).run(undefined, { linearLength: -1 }), refused(/options\.linearLength must be a non-negative integer, got -1/));
  assert.throws(() => new Interpreter(program).run(undefined, { context: "xdp" as never }), refused(/options\.context must be a context model/));
  assert.throws(() => new Interpreter(program).run(undefined, { registers: 3 as never }), refused(/options\.registers must be an object/));
  assert.throws(() => new Interpreter(program).run(undefined, { registers: { 2: "7" as never } }), refused(/options\.registers\[2\] must be an integer or a bigint, got "7"/));
  assert.throws(() => new Interpreter(program, null as never), refused(/options must be an object, got null/));
  assert.throws(() => new Interpreter(program, { instructionLimit: "0; throw 1" as never }), refused(/options\.instructionLimit must be an integer ≥ 1/));
  assert.throws(() => new Interpreter(program, { helpers: { 1: "map_lookup_elem" as never } }), refused(/options\.helpers\[1\] must be a function/));
  assert.throws(() => new Interpreter(program, { helpers: { lookup: () => 0 } as never }), refused(/options\.helpers: the key "lookup" \(a string\) is not a helper id/));
  assert.throws(() => new Interpreter(program, { validate: "no" as never }), refused(/options\.validate must be true or false/));
});

test("a context run with a linear length: data_end stops there until skb_pull_data (packetHelpers) moves it; pulling past skb->len fails", async () => {
  const { packetHelpers, socketBufferContext } = await import("../../src/asm/contexts.js");
  // r0 = data_end - data before, then (r6) after bpf_skb_pull_data(ctx, r7), plus the helper's result in the upper bits.
  const program = (pull: number) => new Assembler()
    .mov64(R6, R1)
    .load("u32", R2, R1, 76).load("u32", R3, R1, 80).sub64(R3, R2).store("u64", R10, -8, R3)
    .mov64(R2, pull).call("skb_pull_data").store("u64", R10, -16, R0)
    .load("u32", R2, R6, 76).load("u32", R0, R6, 80).sub64(R0, R2)
    .load("u64", R3, R10, -8).leftShift64(R3, 16).or64(R0, R3)
    .load("u64", R3, R10, -16).leftShift64(R3, 32).or64(R0, R3)
    .exit().finish().instructions;
  const packet = new Uint8Array(100);
  const run = (pull: number, linearLength?: number) => {
    const value = new Interpreter(program(pull), { helpers: packetHelpers }).run(packet, { context: socketBufferContext(), linearLength }).returnValue;
    return { before: Number((value >> 16n) & 0xffffn), after: Number(value & 0xffffn), result: BigInt.asIntN(32, value >> 32n) };
  };
  assert.deepEqual(run(60, 20), { before: 20, after: 60, result: 0n });
  assert.deepEqual(run(10, 20), { before: 20, after: 20, result: 0n }, "pulling less than the linear part changes nothing");
  assert.deepEqual(run(0, 20), { before: 20, after: 20, result: 0n }, "0 pulls nothing");
  assert.deepEqual(run(101, 20), { before: 20, after: 20, result: -12n }, "-ENOMEM past skb->len");
  assert.deepEqual(run(60), { before: 100, after: 100, result: 0n }, "linear by default");
  assert.throws(() => new Interpreter(program(0), { helpers: packetHelpers }).run(packet, { context: socketBufferContext(), linearLength: -1 }), UsageError);
});

test("context models check their field values once, when made", async () => {
  const { ethernetProtocol, socketBufferContext, xdpContext } = await import("../../src/asm/contexts.js");
  assert.equal(socketBufferContext({ protocol: 0x86dd, mark: 0xffff_ffff }).name, "__sk_buff");
  assert.throws(() => socketBufferContext({ protocol: 0x10000 }), /options\.protocol must be an integer from 0 to 65535, got 65536/);
  assert.throws(() => socketBufferContext({ mark: -1 }), /options\.mark must be an integer from 0 to 4294967295, got -1/);
  assert.throws(() => socketBufferContext({ vlanTci: "5" as never }), /options\.vlanTci must be an integer/);
  assert.throws(() => xdpContext({ receiveQueueIndex: 1.5 }), /options\.receiveQueueIndex must be an integer/);
  assert.throws(() => xdpContext("eth0" as never), /options must be an object, got "eth0"/);
  assert.throws(() => ethernetProtocol([0x08, 0x00] as never), /packet must be a Buffer or Uint8Array, got an array/);
  assert.equal(ethernetProtocol(Buffer.from("ffffffffffff0000000000000800", "hex")), 0x0800);
});
