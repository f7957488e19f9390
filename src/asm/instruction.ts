import { argumentError, expectArray, expectBytes } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import {
  AluOperation,
  AtomicOperation,
  CallSource,
  InstructionClass,
  JumpOperation,
  Mode,
  Opcode,
  PseudoSource,
  Size,
  Source,
} from "./opcodes.js";

/**
 * One eBPF instruction. Every field is kept normalised: `dst`/`src` 0-15,
 * `offset` a signed 16-bit number, `imm` a signed 32-bit number.
 * A 64-bit immediate load (`lddw`, opcode 0x18) is one Instruction that
 * occupies two 8-byte slots; its constant is `imm64` (unsigned 64-bit), whose
 * low half is also in `imm`.
 */
export interface Instruction {
  opcode: number;
  dst: number;
  src: number;
  offset: number;
  imm: number;
  imm64?: bigint;
}

export const instructionSize = 8;


/** Builds a normalised instruction; out-of-range fields are an error, not silently truncated. */
export function makeInstruction(opcode: number, dst: number, src: number, offset: number, imm: number): Instruction {
  checkField("opcode", opcode, 0, 0xff);
  checkField("dst register", dst, 0, 15);
  checkField("src register", src, 0, 15);
  checkField("offset", offset, -0x8000, 0xffff);
  checkField("immediate", imm, -0x8000_0000, 0xffff_ffff);
  return { opcode, dst, src, offset: (offset << 16) >> 16, imm: imm | 0 };
}

/** Builds a 64-bit immediate load; `value` is taken modulo 2^64 (negative values wrap). */
export function makeWideInstruction(dst: number, src: number, value: bigint | number): Instruction {
  checkField("dst register", dst, 0, 15);
  checkField("src register", src, 0, 15);
  const big = BigInt.asUintN(64, BigInt(value));
  return { opcode: Opcode.LDDW, dst, src, offset: 0, imm: Number(BigInt.asIntN(32, big)), imm64: big };
}

function checkField(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError("build eBPF instruction", `${name} ${value} is out of range ${min}..${max}`);
  }
}

export function isWide(instruction: Instruction): boolean {
  return instruction.opcode === Opcode.LDDW;
}

/** Number of 8-byte slots an instruction occupies (2 for lddw). */
export function slotCount(instruction: Instruction): 1 | 2 {
  return instruction.opcode === Opcode.LDDW ? 2 : 1;
}

/** Slot index of each instruction, plus one final entry: the total slot count. */
export function slotIndexes(instructions: readonly Instruction[]): number[] {
  if (!Array.isArray(instructions)) throw argumentError("count instruction slots", "instructions", "an array of instructions", instructions);
  const result = new Array<number>(instructions.length + 1);
  let slot = 0;
  for (let i = 0; i < instructions.length; i++) {
    result[i] = slot;
    slot += slotCount(instructions[i]!);
  }
  result[instructions.length] = slot;
  return result;
}

/** The 64-bit constant of an lddw (from imm64, or imm when imm64 is absent). */
export function wideValue(instruction: Instruction): bigint {
  return instruction.imm64 !== undefined ? BigInt.asUintN(64, instruction.imm64) : BigInt(instruction.imm >>> 0);
}

/** Encodes instructions to the kernel's little-endian byte format. */
export function encode(instructions: readonly Instruction[]): Buffer {
  expectArray("encode eBPF instructions", "instructions", instructions);
  const slots = slotIndexes(instructions);
  const buffer = Buffer.alloc(slots[instructions.length]! * instructionSize);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  for (let i = 0; i < instructions.length; i++) {
    const ins = instructions[i]!;
    const problem = fieldProblem(ins);
    if (problem) throw new UsageError("encode eBPF instructions", `instruction ${i}: ${problem}`);
    const at = slots[i]! * instructionSize;
    buffer[at] = ins.opcode;
    buffer[at + 1] = ((ins.src & 0x0f) << 4) | (ins.dst & 0x0f);
    // A DataView: Buffer's write methods check their arguments again, which the checks above have done.
    view.setInt16(at + 2, (ins.offset << 16) >> 16, true);
    if (ins.opcode === Opcode.LDDW) {
      const value = wideValue(ins);
      view.setUint32(at + 4, Number(value & 0xffff_ffffn), true);
      view.setUint32(at + 12, Number((value >> 32n) & 0xffff_ffffn), true);
    } else {
      view.setInt32(at + 4, ins.imm | 0, true);
    }
  }
  return buffer;
}

/** What is wrong with an instruction's fields (missing, not integers, out of range), or undefined. */
export function fieldProblem(ins: Instruction): string | undefined {
  if (typeof ins !== "object" || ins === null) return "not an instruction object";
  // Checked one by one, without a table: this runs for every instruction of every program loaded, at start-up too.
  const problem = rangeProblem("opcode", ins.opcode, 0, 0xff) ?? rangeProblem("dst", ins.dst, 0, 15) ?? rangeProblem("src", ins.src, 0, 15)
    ?? rangeProblem("offset", ins.offset, -0x8000, 0xffff) ?? rangeProblem("imm", ins.imm, -0x8000_0000, 0xffff_ffff);
  if (problem !== undefined) return problem;
  if (ins.opcode === Opcode.LDDW && ins.imm64 !== undefined && (typeof ins.imm64 !== "bigint" || ins.imm64 < -(1n << 63n) || ins.imm64 >= 1n << 64n)) {
    return `imm64 ${String(ins.imm64)} is not a 64-bit integer`;
  }
  return undefined;
}

function rangeProblem(name: string, value: unknown, min: number, max: number): string | undefined {
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return undefined;
  return `${name} ${String(value)} is not an integer in ${min}..${max}`;
}

/** Decodes little-endian eBPF bytes. Rejects a length that is not a multiple of 8 and a truncated or malformed lddw. */
export function decode(bytes: Uint8Array): Instruction[] {
  const operation = "decode eBPF instructions";
  expectBytes(operation, "bytes", bytes);
  if (bytes.length % instructionSize !== 0) {
    throw new UsageError(
      operation,
      `length ${bytes.length} is not a multiple of ${instructionSize}: the last ${bytes.length % instructionSize} bytes after instruction ${Math.floor(bytes.length / instructionSize)} are a partial instruction`,
      "pass whole 8-byte instructions",
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const slotTotal = bytes.length / instructionSize;
  const result: Instruction[] = [];
  for (let slot = 0; slot < slotTotal; slot++) {
    const at = slot * instructionSize;
    const opcode = view.getUint8(at);
    const registers = view.getUint8(at + 1);
    const instruction: Instruction = {
      opcode,
      dst: registers & 0x0f,
      src: registers >> 4,
      offset: view.getInt16(at + 2, true),
      imm: view.getInt32(at + 4, true),
    };
    if (opcode === Opcode.LDDW) {
      if (slot + 1 >= slotTotal) {
        throw new UsageError(operation, `instruction ${result.length} (slot ${slot}) is a 64-bit immediate load whose second half is missing`, "the input is truncated");
      }
      const next = at + instructionSize;
      if (view.getUint8(next) !== 0 || view.getUint8(next + 1) !== 0 || view.getInt16(next + 2, true) !== 0) {
        throw new UsageError(
          operation,
          `instruction ${result.length} (slot ${slot}) is a 64-bit immediate load whose second slot has a non-zero opcode, register or offset`,
        );
      }
      const high = BigInt(view.getUint32(next + 4, true));
      instruction.imm64 = (high << 32n) | BigInt(view.getUint32(at + 4, true));
      slot++;
    }
    result.push(instruction);
  }
  return result;
}

/**
 * Checks that every instruction is defined by RFC 9669 (or the Linux
 * extensions: pseudo lddw sources, kfunc calls, callx, legacy packet loads)
 * and that fields the instruction does not use are zero. Jump targets are
 * checked to land inside the program and not in the middle of an lddw.
 * Throws a UsageError naming the first bad instruction.
 */
export function validateInstructions(instructions: readonly Instruction[]): void {
  expectArray("validate eBPF program", "instructions", instructions);
  const slots = slotIndexes(instructions);
  const total = slots[instructions.length]!;
  const starts = new Set(slots.slice(0, instructions.length));
  for (let i = 0; i < instructions.length; i++) {
    const ins = instructions[i]!;
    const fields = fieldProblem(ins);
    if (fields) throw instructionError("validate eBPF program", `instructions[${i}]`, ins, fields);
    const problem = problemOf(ins);
    if (problem) throw new UsageError("validate eBPF program", `instruction ${i} (opcode 0x${ins.opcode.toString(16).padStart(2, "0")}): ${problem}`);
    const target = jumpTargetSlot(ins, slots[i]!);
    if (target !== undefined && (target < 0 || target >= total || !starts.has(target))) {
      throw new UsageError(
        "validate eBPF program",
        `instruction ${i}: jump target slot ${target} is ${target < 0 || target >= total ? "outside the program" : "the middle of a 64-bit immediate load"}`,
      );
    }
  }
}

/** The slot a jump or local call at `slot` goes to, or undefined for other instructions. */
export function jumpTargetSlot(ins: Instruction, slot: number): number | undefined {
  const cls = ins.opcode & 0x07;
  if (cls !== InstructionClass.JMP && cls !== InstructionClass.JMP32) return undefined;
  const operation = ins.opcode & 0xf0;
  if (operation === JumpOperation.EXIT) return undefined;
  if (operation === JumpOperation.CALL) {
    return ins.opcode === Opcode.CALL && ins.src === CallSource.LOCAL ? slot + 1 + ins.imm : undefined;
  }
  if (ins.opcode === Opcode.JA32) return slot + 1 + ins.imm;
  return slot + 1 + ins.offset;
}

const atomicOperations = new Set<number>([
  AtomicOperation.ADD,
  AtomicOperation.OR,
  AtomicOperation.AND,
  AtomicOperation.XOR,
  AtomicOperation.ADD | AtomicOperation.FETCH,
  AtomicOperation.OR | AtomicOperation.FETCH,
  AtomicOperation.AND | AtomicOperation.FETCH,
  AtomicOperation.XOR | AtomicOperation.FETCH,
  AtomicOperation.XCHG,
  AtomicOperation.CMPXCHG,
]);

/** Why an instruction is invalid, or undefined when it is valid. */
export function instructionProblem(instruction: Instruction): string | undefined {
  const fields = fieldProblem(instruction);
  if (fields) throw instructionError("check eBPF instruction", "instruction", instruction, fields);
  return problemOf(instruction);
}

/** The UsageError for an argument that is not an instruction with in-range fields (`problem`, from fieldProblem). */
export function instructionError(operation: string, name: string, value: unknown, problem: string): UsageError {
  const expected = typeof value === "object" && value !== null ? `an instruction (${problem})` : "an instruction object {opcode, dst, src, offset, imm}";
  return argumentError(operation, name, expected, value);
}

/** instructionProblem of an instruction whose fields are known to be in range. */
function problemOf(ins: Instruction): string | undefined {
  const { opcode, dst, src, offset, imm } = ins;
  const cls = opcode & 0x07;
  if (dst > 10) return `dst register r${dst} does not exist`;
  if (src > 10 && !(opcode === Opcode.LDDW || opcode === Opcode.CALL)) return `src register r${src} does not exist`;
  if (dst === 10 && (cls === InstructionClass.LD || cls === InstructionClass.LDX || cls === InstructionClass.ALU || cls === InstructionClass.ALU64)) {
    return "r10 (the frame pointer) is read-only";
  }
  switch (cls) {
    case InstructionClass.LD: {
      const mode = opcode & 0xe0;
      if (opcode === Opcode.LDDW) {
        if (src > PseudoSource.MAP_INDEX_VALUE) return `unknown 64-bit load source ${src}`;
        if (offset !== 0) return "offset must be 0";
        return undefined;
      }
      if (mode === Mode.ABS || mode === Mode.IND) {
        if ((opcode & 0x18) === Size.DW) return "legacy packet loads have no 64-bit size";
        if (dst !== 0) return "legacy packet loads write r0; dst must be 0";
        if (offset !== 0) return "offset must be 0";
        if (mode === Mode.ABS && src !== 0) return "src must be 0";
        return undefined;
      }
      return "unknown load mode";
    }
    case InstructionClass.LDX: {
      const mode = opcode & 0xe0;
      if (mode !== Mode.MEM && mode !== Mode.MEMSX) return "unknown load mode";
      if (mode === Mode.MEMSX && (opcode & 0x18) === Size.DW) return "sign-extending loads have no 64-bit size";
      if (imm !== 0) return "immediate must be 0";
      return undefined;
    }
    case InstructionClass.ST:
      if ((opcode & 0xe0) !== Mode.MEM) return "unknown store mode";
      if (src !== 0) return "src must be 0";
      return undefined;
    case InstructionClass.STX: {
      const mode = opcode & 0xe0;
      if (mode === Mode.MEM) return imm !== 0 ? "immediate must be 0" : undefined;
      if (mode !== Mode.ATOMIC) return "unknown store mode";
      const size = opcode & 0x18;
      if (size !== Size.W && size !== Size.DW) return "atomic operations are 32 or 64 bits wide";
      if (!atomicOperations.has(imm)) return `unknown atomic operation 0x${(imm >>> 0).toString(16)}`;
      return undefined;
    }
    case InstructionClass.ALU:
    case InstructionClass.ALU64:
      return aluProblem(ins, cls === InstructionClass.ALU64);
    case InstructionClass.JMP:
    case InstructionClass.JMP32:
      return jumpProblem(ins, cls === InstructionClass.JMP32);
  }
  return "unknown instruction class";
}

function aluProblem(ins: Instruction, wide: boolean): string | undefined {
  const { opcode, src, offset, imm } = ins;
  const operation = opcode & 0xf0;
  const register = (opcode & Source.X) !== 0;
  if (operation > AluOperation.END) return "unknown ALU operation";
  if (operation === AluOperation.END) {
    if (wide && register) return "unknown byte-swap form";
    if (src !== 0) return "src must be 0";
    if (offset !== 0) return "offset must be 0";
    if (imm !== 16 && imm !== 32 && imm !== 64) return `byte-swap width must be 16, 32 or 64, not ${imm}`;
    return undefined;
  }
  if (operation === AluOperation.NEG) {
    if (register) return "negation has no register-source form";
    if (src !== 0) return "src must be 0";
    if (offset !== 0) return "offset must be 0";
    if (imm !== 0) return "immediate must be 0";
    return undefined;
  }
  if (register ? imm !== 0 : src !== 0) return register ? "immediate must be 0" : "src must be 0";
  if (operation === AluOperation.DIV || operation === AluOperation.MOD) {
    if (offset !== 0 && offset !== 1) return `offset must be 0 (unsigned) or 1 (signed), not ${offset}`;
    return undefined;
  }
  if (operation === AluOperation.MOV && register) {
    const allowed = wide ? [0, 8, 16, 32] : [0, 8, 16];
    if (!allowed.includes(offset)) return `sign-extension width must be one of ${allowed.join(", ")}, not ${offset}`;
    return undefined;
  }
  if (offset !== 0) return "offset must be 0";
  return undefined;
}

function jumpProblem(ins: Instruction, narrow: boolean): string | undefined {
  const { opcode, dst, src, offset, imm } = ins;
  const operation = opcode & 0xf0;
  const register = (opcode & Source.X) !== 0;
  switch (operation) {
    case JumpOperation.JA:
      if (register) return "unconditional jump has no register form";
      if (dst !== 0) return "dst must be 0";
      if (src !== 0) return "src must be 0";
      if (narrow ? offset !== 0 : imm !== 0) return narrow ? "offset must be 0 (the 32-bit jump uses the immediate)" : "immediate must be 0";
      return undefined;
    case JumpOperation.CALL:
      if (narrow) return "call exists only in the 64-bit jump class";
      if (offset !== 0) return "offset must be 0";
      if (register) {
        if (src !== 0 || imm !== 0) return "callx takes its target in dst; src and immediate must be 0";
        return undefined;
      }
      if (dst !== 0) return "dst must be 0";
      if (src > CallSource.KFUNC) return `unknown call kind ${src}`;
      return undefined;
    case JumpOperation.EXIT:
      if (narrow) return "exit exists only in the 64-bit jump class";
      if (register || dst !== 0 || src !== 0 || offset !== 0 || imm !== 0) return "exit takes no operands; all fields must be 0";
      return undefined;
    case JumpOperation.JCOND:
      if (narrow || register) return "may_goto exists only as a 64-bit jump with an immediate";
      if (dst !== 0 || src !== 0 || imm !== 0) return "may_goto takes only an offset; dst, src and immediate must be 0";
      return undefined;
    case 0xf0:
      return "unknown jump operation";
  }
  if (register ? imm !== 0 : src !== 0) return register ? "immediate must be 0" : "src must be 0";
  return undefined;
}
