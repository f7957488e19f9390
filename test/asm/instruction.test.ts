import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decode,
  encode,
  instructionProblem,
  makeInstruction,
  makeWideInstruction,
  validateInstructions,
  type Instruction,
} from "../../src/asm/instruction.js";
import { UsageError } from "../../src/sys/errors.js";

test("encode writes the kernel's little-endian layout", () => {
  const bytes = encode([
    makeInstruction(0x61, 2, 1, -4, 0), // r2 = *(u32 *)(r1 - 4)
    makeWideInstruction(3, 2, (16n << 32n) | 5n), // map value: fd 5, offset 16
    makeInstruction(0x95, 0, 0, 0, 0),
  ]);
  assert.deepEqual(
    [...bytes],
    [0x61, 0x12, 0xfc, 0xff, 0, 0, 0, 0, 0x18, 0x23, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0],
  );
});

test("decode reads signed offsets and immediates and joins the two lddw slots", () => {
  const [load, wide, exit] = decode(
    Uint8Array.of(0x61, 0x12, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0x18, 0x01, 0, 0, 0x88, 0x77, 0x66, 0x55, 0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 0x95, 0, 0, 0, 0, 0, 0, 0),
  ) as [Instruction, Instruction, Instruction];
  assert.deepEqual(load, { opcode: 0x61, dst: 2, src: 1, offset: -4, imm: -1 });
  assert.equal(wide.imm64, 0x1122334455667788n);
  assert.equal(wide.imm, 0x55667788);
  assert.equal(exit.opcode, 0x95);
});

test("decode rejects malformed input, naming the instruction", () => {
  assert.throws(() => decode(new Uint8Array(12)), (error: unknown) => error instanceof UsageError && /length 12 is not a multiple of 8.*after instruction 1/.test(error.message));
  assert.throws(() => decode(Uint8Array.of(0xb7, 0, 0, 0, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0)), /instruction 1 \(slot 1\) is a 64-bit immediate load whose second half is missing/);
  assert.throws(
    () => decode(Uint8Array.of(0x18, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0)),
    /instruction 0 \(slot 0\) is a 64-bit immediate load whose second slot has a non-zero opcode/,
  );
  assert.deepEqual(decode(new Uint8Array(0)), []);
});

test("makeInstruction refuses out-of-range fields instead of truncating", () => {
  assert.throws(() => makeInstruction(0x100, 0, 0, 0, 0), /opcode 256/);
  assert.throws(() => makeInstruction(0xb7, 16, 0, 0, 0), /dst register 16/);
  assert.throws(() => makeInstruction(0xb7, 0, 0, 0x10000, 0), /offset 65536/);
  assert.throws(() => makeInstruction(0xb7, 0, 0, 0, 2 ** 32), /immediate 4294967296/);
  // the unsigned spelling of a field is accepted and normalised to the signed value
  assert.equal(makeInstruction(0x05, 0, 0, 0xffff, 0).offset, -1);
  assert.equal(makeInstruction(0xb4, 0, 0, 0, 0xffffffff).imm, -1);
  assert.equal(makeWideInstruction(0, 0, -1).imm64, 0xffff_ffff_ffff_ffffn);
});

test("validation names what is wrong with an instruction", () => {
  const cases: [Instruction, RegExp][] = [
    [makeInstruction(0x07, 0, 0, 1, 1), /offset must be 0/],
    [makeInstruction(0x0f, 0, 1, 0, 1), /immediate must be 0/],
    [makeInstruction(0x3f, 0, 1, 2, 0), /offset must be 0 \(unsigned\) or 1 \(signed\)/],
    [makeInstruction(0xbc, 0, 1, 32, 0), /sign-extension width must be one of 0, 8, 16/],
    [makeInstruction(0x8c, 0, 1, 0, 0), /negation has no register-source form/],
    [makeInstruction(0xd4, 0, 0, 0, 8), /byte-swap width must be 16, 32 or 64/],
    [makeInstruction(0xdf, 0, 0, 0, 16), /unknown byte-swap form/],
    [makeInstruction(0x9d, 0, 0, 0, 0), /exit takes no operands/],
    [makeInstruction(0x95, 0, 0, 0, 1), /exit takes no operands/],
    [makeInstruction(0x85, 0, 3, 0, 1), /unknown call kind 3/],
    [makeInstruction(0x86, 0, 0, 0, 1), /call exists only in the 64-bit jump class/],
    [makeInstruction(0x06, 0, 0, 1, 0), /offset must be 0 \(the 32-bit jump uses the immediate\)/],
    [makeInstruction(0xdb, 1, 2, 0, 0x02), /unknown atomic operation 0x2/],
    [makeInstruction(0xd3, 1, 2, 0, 0x00), /atomic operations are 32 or 64 bits wide/],
    [makeInstruction(0x98, 0, 0, 0, 0), /unknown load mode/],
    [makeInstruction(0x99, 0, 0, 0, 0), /sign-extending loads have no 64-bit size/],
    [makeInstruction(0x9b, 0, 0, 0, 0), /unknown store mode/],
    [makeInstruction(0xf5, 0, 0, 0, 0), /unknown jump operation/],
    [makeInstruction(0xb7, 11, 0, 0, 0), /dst register r11 does not exist/],
    [makeInstruction(0xb7, 10, 0, 0, 0), /r10 \(the frame pointer\) is read-only/],
    [makeWideInstruction(0, 7, 0), /unknown 64-bit load source 7/],
  ];
  for (const [instruction, message] of cases) {
    assert.match(instructionProblem(instruction) ?? "valid", message, `opcode 0x${instruction.opcode.toString(16)}`);
    assert.throws(() => validateInstructions([makeInstruction(0xb7, 0, 0, 0, 0), instruction]), (error: unknown) => error instanceof UsageError && /instruction 1 \(opcode 0x/.test(error.message));
  }
});

test("validation checks jump targets, counting lddw slots", () => {
  const wide = makeWideInstruction(1, 0, 5);
  const exit = makeInstruction(0x95, 0, 0, 0, 0);
  validateInstructions([makeInstruction(0x05, 0, 0, 2, 0), wide, exit]);
  assert.throws(() => validateInstructions([makeInstruction(0x05, 0, 0, 1, 0), wide, exit]), /jump target slot 2 is the middle of a 64-bit immediate load/);
  assert.throws(() => validateInstructions([makeInstruction(0x05, 0, 0, -2, 0), exit]), /jump target slot -1 is outside the program/);
  assert.throws(() => validateInstructions([makeInstruction(0x85, 0, 1, 0, 5), exit]), /outside the program/);
  validateInstructions([makeInstruction(0x06, 0, 0, 0, 0), exit]);
});

test("encode refuses fields that do not fit instead of truncating", () => {
  const exit = makeInstruction(0x95, 0, 0, 0, 0);
  assert.throws(() => encode([exit, { opcode: 0xb7, dst: 0, src: 0, offset: 70000, imm: 0 }]), (error: unknown) => error instanceof UsageError && /instruction 1: offset 70000/.test(error.message));
  assert.throws(() => encode([{ opcode: 0xb7, dst: 0, src: 0, offset: 0, imm: 1.5 }]), /imm 1.5/);
  assert.throws(() => encode([{ opcode: 0x18, dst: 0, src: 0, offset: 0, imm: 0, imm64: 1n << 64n }]), /imm64/);
  // a negative imm64 is taken modulo 2^64, like makeWideInstruction does
  assert.deepEqual(decode(encode([{ opcode: 0x18, dst: 0, src: 0, offset: 0, imm: -1, imm64: -1n }]))[0]!.imm64, 0xffff_ffff_ffff_ffffn);
});

test("instruction lists and single instructions are checked where they enter", () => {
  const exit = makeInstruction(0x95, 0, 0, 0, 0);
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  assert.throws(() => validateInstructions("exit" as never), refused(/instructions must be an array, got "exit"/));
  assert.throws(() => validateInstructions([exit, { ...exit, dst: 16 }]), refused(/instructions\[1\] must be an instruction \(dst 16 is not an integer in 0\.\.15\)/));
  assert.throws(() => validateInstructions([exit, 7 as never]), refused(/instructions\[1\] must be an instruction object/));
  assert.throws(() => instructionProblem({} as never), refused(/instruction must be an instruction \(opcode undefined is not an integer/));
  assert.throws(() => encode({} as never), refused(/instructions must be an array/));
  assert.throws(() => decode("AAAAAAAA" as never), refused(/bytes must be a Buffer or Uint8Array/));
  assert.equal(instructionProblem(exit), undefined);
});

test("opcode readers take an opcode byte", async () => {
  const { instructionClass, isLoadStoreClass, sizeBytes } = await import("../../src/asm/opcodes.js");
  assert.equal(instructionClass(0x95), 0x05);
  assert.equal(isLoadStoreClass(0x61), true);
  assert.equal(sizeBytes(0x61), 4);
  for (const bad of [256, -1, 1.5, "0x61"]) assert.throws(() => sizeBytes(bad as never), /opcode must be an integer from 0 to 255/);
});
