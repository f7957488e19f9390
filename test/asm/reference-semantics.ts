/**
 * RFC 9669 ALU and jump semantics written the slow, obvious way with BigInt,
 * and random cases built from them; the interpreter (and the kernel) must agree.
 */
import { type Instruction, makeInstruction } from "../../src/asm/instruction.js";

const mask64 = (1n << 64n) - 1n;
export const u64 = (value: bigint): bigint => value & mask64;
const s64 = (value: bigint): bigint => BigInt.asIntN(64, value);
const u32 = (value: bigint): bigint => value & 0xffff_ffffn;
const s32 = (value: bigint): bigint => BigInt.asIntN(32, value);

function swapBytes(value: bigint, bits: number): bigint {
  let result = 0n;
  for (let i = 0; i < bits / 8; i++) result = (result << 8n) | ((value >> BigInt(8 * i)) & 0xffn);
  return result;
}

/** dst after `dst op src` (src already sign-extended when it came from an immediate). */
export function referenceAlu(instruction: Instruction, a: bigint, b: bigint): bigint {
  const wide = (instruction.opcode & 7) === 7;
  const operation = instruction.opcode & 0xf0;
  const signed = instruction.offset === 1;
  if (operation === 0xd0) {
    const bits = instruction.imm;
    const swap = wide || (instruction.opcode & 8) !== 0;
    const low = bits === 64 ? a : a & ((1n << BigInt(bits)) - 1n);
    return swap ? swapBytes(low, bits) : low;
  }
  if (!wide) {
    const x = u32(a);
    const y = u32(b);
    switch (operation) {
      case 0x00: return u32(x + y);
      case 0x10: return u32(x - y);
      case 0x20: return u32(x * y);
      case 0x30: return y === 0n ? 0n : signed ? u32(s32(x) / s32(y)) : x / y;
      case 0x40: return x | y;
      case 0x50: return x & y;
      case 0x60: return u32(x << (y & 31n));
      case 0x70: return x >> (y & 31n);
      case 0x80: return u32(-x);
      case 0x90: return y === 0n ? x : signed ? u32(s32(x) % s32(y)) : x % y;
      case 0xa0: return x ^ y;
      case 0xb0: return instruction.offset === 0 ? y : u32(BigInt.asIntN(instruction.offset, y));
      case 0xc0: return u32(s32(x) >> (y & 31n));
    }
  }
  switch (operation) {
    case 0x00: return u64(a + b);
    case 0x10: return u64(a - b);
    case 0x20: return u64(a * b);
    case 0x30: return b === 0n ? 0n : signed ? u64(s64(a) / s64(b)) : a / b;
    case 0x40: return a | b;
    case 0x50: return a & b;
    case 0x60: return u64(a << (b & 63n));
    case 0x70: return a >> (b & 63n);
    case 0x80: return u64(-a);
    case 0x90: return b === 0n ? a : signed ? u64(s64(a) % s64(b)) : a % b;
    case 0xa0: return a ^ b;
    case 0xb0: return instruction.offset === 0 ? b : u64(BigInt.asIntN(instruction.offset, b));
    case 0xc0: return u64(s64(a) >> (b & 63n));
  }
  throw new Error(`operation ${operation}`);
}

export function referenceJump(instruction: Instruction, a: bigint, b: bigint): boolean {
  const wide = (instruction.opcode & 7) === 5;
  const x = wide ? a : u32(a);
  const y = wide ? b : u32(b);
  const sx = wide ? s64(x) : s32(x);
  const sy = wide ? s64(y) : s32(y);
  switch (instruction.opcode & 0xf0) {
    case 0x10: return x === y;
    case 0x20: return x > y;
    case 0x30: return x >= y;
    case 0x40: return (x & y) !== 0n;
    case 0x50: return x !== y;
    case 0x60: return sx > sy;
    case 0x70: return sx >= sy;
    case 0xa0: return x < y;
    case 0xb0: return x <= y;
    case 0xc0: return sx < sy;
    case 0xd0: return sx <= sy;
  }
  throw new Error(`operation ${instruction.opcode}`);
}

export function interestingValue(random: () => number): bigint {
  const special = [0n, 1n, 2n, 31n, 32n, 63n, 64n, 0x7fn, 0x80n, 0x7fffn, 0x8000n, 0x7fff_ffffn, 0x8000_0000n, 0xffff_ffffn, 0x1_0000_0000n, 0x7fff_ffff_ffff_ffffn, 0x8000_0000_0000_0000n, mask64, mask64 - 1n];
  const choice = random();
  if (choice < 0.4) return special[Math.floor(random() * special.length)]!;
  const high = BigInt(Math.floor(random() * 2 ** 32));
  const low = BigInt(Math.floor(random() * 2 ** 32));
  if (choice < 0.6) return low;
  if (choice < 0.7) return u64(-low);
  return (high << 32n) | low;
}

/** An ALU or conditional-jump instruction on dst r0 (ALU) / r1 (jump), src r2, with operand values. */
export interface RandomCase {
  kind: "alu" | "jump";
  instruction: Instruction;
  /** dst value */
  a: bigint;
  /** src register value (unused for immediate forms) */
  b: bigint;
  /** r0 after the ALU instruction, or 1/0 for jump taken/not taken. */
  expected: bigint;
}

const aluOperations = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0];
const jumpOperations = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0];

/**
 * A random case. `verifierSafe` avoids what the kernel verifier refuses
 * although the ISA defines it: division by an immediate 0 and shifts by an
 * immediate out of range.
 */
export function randomCase(random: () => number, verifierSafe: boolean): RandomCase {
  const a = interestingValue(random);
  const b = interestingValue(random);
  const wide = random() < 0.5;
  let useImmediate = random() < 0.3;
  let immediate = Math.floor(random() * 2 ** 32) - 2 ** 31;
  if (random() < 0.3) immediate = Number(BigInt.asIntN(32, interestingValue(random)));
  if (random() < 0.5) {
    const operation = aluOperations[Math.floor(random() * aluOperations.length)]!;
    const cls = wide ? 0x07 : 0x04;
    let offset = (operation === 0x30 || operation === 0x90) && random() < 0.5 ? 1 : 0;
    let instruction: Instruction;
    if (operation === 0x80) {
      instruction = makeInstruction(cls | 0x80, 0, 0, 0, 0);
    } else if (operation === 0xd0) {
      const bits = [16, 32, 64][Math.floor(random() * 3)]!;
      const form = wide ? 0 : random() < 0.5 ? 0 : 8;
      instruction = makeInstruction(cls | 0xd0 | form, 0, 0, 0, bits);
    } else {
      if (operation === 0xb0 && !useImmediate && random() < 0.5) offset = wide ? [8, 16, 32][Math.floor(random() * 3)]! : [8, 16][Math.floor(random() * 2)]!;
      if (verifierSafe && useImmediate) {
        if ((operation === 0x30 || operation === 0x90) && immediate === 0) immediate = 7;
        if (operation === 0x60 || operation === 0x70 || operation === 0xc0) immediate &= wide ? 63 : 31;
      }
      instruction = useImmediate
        ? makeInstruction(cls | operation, 0, 0, offset, immediate)
        : makeInstruction(cls | operation | 8, 0, 2, offset, 0);
    }
    if (operation === 0x80 || operation === 0xd0) useImmediate = false;
    const source = useImmediate ? u64(BigInt(immediate)) : b;
    return { kind: "alu", instruction, a, b, expected: referenceAlu(instruction, a, source) };
  }
  const operation = jumpOperations[Math.floor(random() * jumpOperations.length)]!;
  const cls = wide ? 0x05 : 0x06;
  const instruction = useImmediate
    ? makeInstruction(cls | operation, 1, 0, 1, immediate)
    : makeInstruction(cls | operation | 8, 1, 2, 1, 0);
  const source = useImmediate ? u64(BigInt(immediate)) : b;
  return { kind: "jump", instruction, a, b, expected: referenceJump(instruction, a, source) ? 1n : 0n };
}
