import { test } from "node:test";
import assert from "node:assert/strict";
import { Assembler, patchMapReferences, R0, R1, R2, R6, R10, type Register } from "../../src/asm/assembler.js";
import { decode, encode, slotIndexes, validateInstructions } from "../../src/asm/instruction.js";
import { helperIdOf, helperIds, helperNameOf } from "../../src/asm/helpers.js";
import { UsageError } from "../../src/sys/errors.js";

test("helper table has the kernel's ids", () => {
  assert.equal(helperIds.map_lookup_elem, 1);
  assert.equal(helperIds.ktime_get_ns, 5);
  assert.equal(helperIds.skb_store_bytes, 9);
  assert.equal(helperIds.perf_event_output, 25);
  assert.equal(helperIds.skb_load_bytes, 26);
  assert.equal(helperIds.redirect_map, 51);
  assert.equal(helperIds.ringbuf_output, 130);
  assert.equal(helperIds.ringbuf_discard, 133);
  assert.equal(helperIdOf("bpf_get_prandom_u32"), 7);
  assert.equal(helperIdOf("no_such_helper"), undefined);
  assert.equal(helperNameOf(131), "ringbuf_reserve");
});

test("forward and backward labels resolve to slot distances, counting lddw as two slots", () => {
  const program = new Assembler()
    .label("top")
    .mov64(R0, 0)
    .jumpIf(R1, "==", 5, "out")
    .loadImmediate64(R2, 0x1122334455667788n)
    .jump("top")
    .label("out")
    .exit()
    .finish();
  const [, conditional, wide, back] = program.instructions;
  // conditional at slot 1 → out at slot 5: offset 3
  assert.equal(conditional!.offset, 3);
  assert.equal(wide!.imm64, 0x1122334455667788n);
  // back jump at slot 4 → top at slot 0: offset -5
  assert.equal(back!.offset, -5);
  assert.equal(program.labels.get("out"), 4);
  validateInstructions(program.instructions);
  assert.deepEqual(decode(encode(program.instructions)), program.instructions);
});

test("conditions and widths pick the right opcodes", () => {
  const { instructions } = new Assembler()
    .jumpIf(R1, ">", R2, "x")
    .jumpIf32(R1, "s<=", -1, "x")
    .jumpIf(R1, "&", 0x10, "x")
    .add32(R1, R2)
    .signedDiv64(R1, 3)
    .signedMod32(R1, R2)
    .movSignExtend64(R1, R2, 32)
    .toBigEndian(R1, 16)
    .byteSwap(R1, 64)
    .load("u16", R2, R1, 12)
    .load("s8", R2, R1, -1)
    .store("u64", R10, -8, R1)
    .store("u32", R10, -4, 7)
    .atomic("u64", "add", R1, 0, R2, { fetch: true })
    .atomicCompareExchange("u32", R1, 4, R2)
    .call("map_lookup_elem")
    .label("x")
    .exit()
    .finish();
  assert.deepEqual(
    instructions.map((i) => i.opcode),
    [0x2d, 0xd6, 0x45, 0x0c, 0x37, 0x9c, 0xbf, 0xdc, 0xd7, 0x69, 0x91, 0x7b, 0x62, 0xdb, 0xc3, 0x85, 0x95],
  );
  assert.equal(instructions[4]!.offset, 1);
  assert.equal(instructions[6]!.offset, 32);
  assert.equal(instructions[7]!.imm, 16);
  assert.equal(instructions[13]!.imm, 0x01);
  assert.equal(instructions[14]!.imm, 0xf1);
  assert.equal(instructions[15]!.imm, 1);
  validateInstructions(instructions);
});

test("map references stay symbolic until patched", () => {
  const builder = new Assembler().loadMapFd(R1, "events").loadMapValue(R2, "globals", 16).mov64(R0, 0).exit();
  const program = builder.finish();
  assert.deepEqual(program.references, [
    { instructionIndex: 0, kind: "map-fd", name: "events", offset: 0 },
    { instructionIndex: 1, kind: "map-value", name: "globals", offset: 16 },
  ]);
  const patched = patchMapReferences(program, { events: 7, globals: 9 });
  assert.equal(patched[0]!.src, 1);
  assert.equal(patched[0]!.imm, 7);
  assert.equal(patched[1]!.src, 2);
  assert.equal(patched[1]!.imm64, (16n << 32n) | 9n);
  // the program itself is untouched
  assert.equal(program.instructions[0]!.imm, 0);
  assert.throws(() => patchMapReferences(program, new Map([["events", 3]])), /no file descriptor for map "globals"/);
});

test("local calls and appended subprograms", () => {
  const helper = new Assembler().label("double").mov64(R0, R1).add64(R0, R1).exit();
  const program = new Assembler().mov64(R1, 21).callLocal("double").exit().append(helper).finish();
  assert.equal(program.instructions[1]!.src, 1);
  assert.equal(program.instructions[1]!.imm, 1);
  assert.equal(program.labels.get("double"), 3);
  assert.throws(() => new Assembler().label("double").exit().append(helper), /label "double" a second time/);
});

test("may_goto: encoded as JMP|JCOND with an offset, valid, disassembled, and never taken by the interpreters (they have no loop budget)", async () => {
  const { Interpreter } = await import("../../src/asm/interpreter.js");
  const { JavaScriptProgram } = await import("../../src/asm/javascript-program.js");
  const { disassemble } = await import("../../src/asm/disassembler.js");
  const program = new Assembler().mov64(R0, 1).mayGoto("out").mov64(R0, 2).label("out").exit().finish();
  const instruction = program.instructions[1]!;
  assert.deepEqual([instruction.opcode, instruction.dst, instruction.src, instruction.offset, instruction.imm], [0xe5, 0, 0, 1, 0]);
  assert.doesNotThrow(() => validateInstructions(program.instructions));
  assert.match(disassemble(program.instructions), /may_goto \+(0x)?1\b/);
  assert.equal(new Interpreter(program.instructions).run().returnValue, 2n);
  assert.equal(new JavaScriptProgram(program.instructions).run().returnValue, 2n);
  assert.throws(() => validateInstructions([program.instructions[0]!, { ...instruction, src: 1 }, ...program.instructions.slice(2)]), /may_goto takes only an offset/);
});

test("far unconditional jumps become gotol; far conditional jumps are an error", () => {
  const far = new Assembler().jump("end");
  for (let i = 0; i < 40000; i++) far.mov64(R0, 0);
  const program = far.label("end").exit().finish();
  assert.equal(program.instructions[0]!.opcode, 0x06);
  assert.equal(program.instructions[0]!.imm, 40000);
  validateInstructions(program.instructions);

  const conditional = new Assembler().jumpIf(R1, "==", 0, "end");
  for (let i = 0; i < 40000; i++) conditional.mov64(R0, 0);
  assert.throws(() => conditional.label("end").exit().finish(), /40000 instructions away/);

  const strict = new Assembler({ allowLongJumps: false }).jump("end");
  for (let i = 0; i < 40000; i++) strict.mov64(R0, 0);
  assert.throws(() => strict.label("end").exit().finish(), UsageError);
});

test("bad input is a UsageError that says what was wrong", () => {
  assert.throws(() => new Assembler().jump("nowhere").finish(), /label "nowhere", which is never defined/);
  assert.throws(() => new Assembler().label("a").label("a"), /defined twice/);
  assert.throws(() => new Assembler().mov64(R0, 0x80000000), /sign-extended 32-bit/);
  assert.doesNotThrow(() => new Assembler().mov32(R0, 0xffffffff));
  assert.throws(() => new Assembler().mov64("r11" as Register, 0), /dst must be a register \(r0 … r10, the R0 … R10 constants\), got "r11"/);
  assert.throws(() => new Assembler().load("u16", R0, R1, 40000), /offset must be an integer that fits in a signed 16-bit field \(-32768 … 32767; add more to the base register first\), got 40000/);
  assert.throws(() => new Assembler().call("nope"), /helper must be a known helper name \(from helperIds\) or a numeric id, got "nope"/);
  assert.throws(() => new Assembler().movSignExtend32(R1, R2, 32 as 8), /bits must be one of 8, 16, got 32/);
  assert.throws(() => new Assembler().store("s8", R10, -1, 0), /unsigned/);
});

test("slot indexes count lddw twice", () => {
  const { instructions } = new Assembler().mov64(R6, R1).loadImmediate64(R0, -1).exit().finish();
  assert.deepEqual(slotIndexes(instructions), [0, 1, 3, 4]);
  assert.equal(instructions[1]!.imm64, 0xffff_ffff_ffff_ffffn);
  assert.equal(encode(instructions).length, 32);
});

test("newLabel hands out fresh names for code generators", () => {
  const builder = new Assembler().label("L0");
  const first = builder.newLabel();
  const second = builder.newLabel();
  assert.notEqual(first, "L0");
  assert.notEqual(first, second);
  const skip = builder.newLabel("skip");
  assert.match(skip, /^skip\d+$/);
  const program = builder.jumpIf(R1, "==", 0, skip).mov64(R0, 1).label(skip).exit().finish();
  assert.equal(program.instructions[0]!.offset, 1);
  // a name already used by a forward jump is not handed out either
  assert.notEqual(new Assembler().jump("L0").newLabel(), "L0");
});

test("the options of an Assembler are checked: allowLongJumps is a boolean", () => {
  assert.equal(new Assembler({ allowLongJumps: false }).allowLongJumps, false);
  assert.equal(new Assembler(undefined).allowLongJumps, true);
  assert.throws(() => new Assembler({ allowLongJumps: "no" } as never), (error: Error) => error instanceof UsageError && /options\.allowLongJumps must be a boolean, got "no"/.test(error.message));
  assert.throws(() => new Assembler(42 as never), (error: Error) => error instanceof UsageError && /options must be an object, got 42/.test(error.message));
});

test("helper lookups refuse what is not a name or an id", () => {
  assert.equal(helperIdOf("nope"), undefined);
  assert.equal(helperNameOf(100_000), undefined);
  assert.throws(() => helperIdOf(1 as never), /name must be a string, got 1 \(a number\)/);
  assert.throws(() => helperNameOf("map_lookup_elem" as never), /id must be an integer/);
  assert.throws(() => helperNameOf(1.5), /id must be an integer, got 1\.5/);
});

test("assembler methods name the parameter that is wrong", () => {
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  assert.throws(() => new Assembler().add64(R1, "r12" as Register), refused(/source must be a register/));
  assert.throws(() => new Assembler().add32(R1, 1.5), refused(/source must be a register or an integer that fits in 32 bits/));
  assert.throws(() => new Assembler().jumpIf(R1, "=~" as never, 0, "end"), refused(/condition must be one of == != /));
  assert.throws(() => new Assembler().jumpIf(R1, "==", 0, ""), refused(/label must be a non-empty string, got ""/));
  assert.throws(() => new Assembler().load("u24" as never, R0, R1, 0), refused(/type must be an access type/));
  assert.throws(() => new Assembler().atomic("u64", "nand" as never, R10, -8, R1), refused(/operationName must be one of add, or, and, xor, got "nand"/));
  assert.throws(() => new Assembler().loadMapFd(R1, 3 as never), refused(/mapName must be a non-empty string, got 3/));
  assert.throws(() => new Assembler().loadMapValue(R1, "globals", -1), refused(/offset must be an integer from 0 to 4294967295, got -1/));
  assert.throws(() => new Assembler().loadImmediate64(R1, "7" as never), refused(/value must be a bigint or an integer, got "7"/));
  assert.throws(() => new Assembler().callKernelFunction(-1), refused(/btfId must be an integer from 0 to 2147483647, got -1/));
  assert.throws(() => new Assembler().raw({ opcode: 0x95 } as never), refused(/instructions\[0\] must be an instruction \(dst undefined/));
  assert.throws(() => new Assembler().append({} as never), refused(/other must be an Assembler, got an object/));
  assert.throws(() => new Assembler().call({} as never), refused(/helper must be a known helper name/));
  assert.throws(() => new Assembler().return(undefined as never), refused(/value must be a register or an integer/));
  assert.throws(() => new Assembler().hasLabel(42 as never), refused(/name must be a non-empty string, got 42/));
  assert.throws(() => new Assembler().atomic("u64", "add", R10, -8, R1, { fetch: "yes" } as never), refused(/options\.fetch must be true or false, got "yes"/));
  assert.throws(() => new Assembler().atomic("u64", "add", R10, -8, R1, null as never), refused(/options must be an object, got null/));
  assert.throws(() => new Assembler().movSignExtend64(R1, 5 as never, 8), refused(/source must be a register/));
  assert.throws(() => new Assembler().loadPacketAbsolute("u64" as never, 0), refused(/type must be u8, u16 or u32 for a packet load/));
  assert.throws(() => new Assembler().loadPacketIndirect("s8" as never, R1, 0), refused(/type must be u8, u16 or u32 for a packet load/));
});

test("names inherited from Object.prototype are not registers, conditions, access types or atomic operations", () => {
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  for (const name of ["constructor", "toString", "__proto__"]) {
    assert.throws(() => new Assembler().mov64(name as never, 1), refused(/dst must be a register/));
    assert.throws(() => new Assembler().jumpIf(R1, name as never, 0, "end"), refused(/condition must be one of/));
    assert.throws(() => new Assembler().load(name as never, R0, R1, 0), refused(/type must be an access type/));
    assert.throws(() => new Assembler().store(name as never, R10, -8, 0), refused(/type must be an access type/));
    assert.throws(() => new Assembler().atomic("u64", name as never, R10, -8, R1), refused(/operationName must be one of/));
  }
});
