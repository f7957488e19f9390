/**
 * Hand-written eBPF for the link tests: just the few instructions they need,
 * so these tests do not depend on the assembler. The bytes come from the asm
 * layer's one encoder.
 */
import { encode, makeInstruction, makeWideInstruction } from "../../src/asm/instruction.js";

export type Instruction = Buffer;

export function instruction(opcode: number, dst: number, src: number, offset: number, immediate: number): Instruction {
  return encode([makeInstruction(opcode, dst, src, offset, immediate)]);
}

export const movImmediate = (dst: number, imm: number) => instruction(0xb7, dst, 0, 0, imm);
export const movRegister = (dst: number, src: number) => instruction(0xbf, dst, src, 0, 0);
export const addImmediate = (dst: number, imm: number) => instruction(0x07, dst, 0, 0, imm);
export const exit = () => instruction(0x95, 0, 0, 0, 0);
export const call = (helper: number) => instruction(0x85, 0, 0, 0, helper);
/** *(u32 *)(dst + offset) = imm */
export const storeWordImmediate = (dst: number, offset: number, imm: number) => instruction(0x62, dst, 0, offset, imm);
/** dst = *(u32 / u16 / u8 *)(src + offset) */
export const loadWord = (dst: number, src: number, offset: number) => instruction(0x61, dst, src, offset, 0);
export const loadHalf = (dst: number, src: number, offset: number) => instruction(0x69, dst, src, offset, 0);
export const loadByte = (dst: number, src: number, offset: number) => instruction(0x71, dst, src, offset, 0);
/** Legacy packet loads (r0 = packet[k], network order), for socket filters and tc. */
export const loadPacketByte = (k: number) => instruction(0x30, 0, 0, 0, k);
export const loadPacketHalf = (k: number) => instruction(0x28, 0, 0, 0, k);
export const jumpIfNotEqual = (dst: number, imm: number, offset: number) => instruction(0x55, dst, 0, offset, imm);
export const jumpIfEqual = (dst: number, imm: number, offset: number) => instruction(0x15, dst, 0, offset, imm);
/** if dst > src goto +offset (unsigned) */
export const jumpIfGreater = (dst: number, src: number, offset: number) => instruction(0x2d, dst, src, offset, 0);
export const jump = (offset: number) => instruction(0x05, 0, 0, offset, 0);
/** lock *(u64 *)(dst + offset) += src */
export const atomicAdd64 = (dst: number, src: number, offset: number) => instruction(0xdb, dst, src, offset, 0);
/** dst = map (ld_imm64 with BPF_PSEUDO_MAP_FD): two slots. */
export const loadMap = (dst: number, mapFd: number) => encode([makeWideInstruction(dst, 1, mapFd)]);

export const helperMapLookupElement = 1;

/** Instructions that add 1 to slot 0 of an array map (u64 values). Clobbers r0-r5; needs nothing else. */
export function incrementSlotZero(mapFd: number): Instruction[] {
  return [
    storeWordImmediate(10, -4, 0),
    movRegister(2, 10),
    addImmediate(2, -4),
    loadMap(1, mapFd),
    call(helperMapLookupElement),
    jumpIfEqual(0, 0, 2),
    movImmediate(1, 1),
    atomicAdd64(0, 1, 0),
  ];
}

/** Slots taken by a list of instructions (ld_imm64 takes two). */
export function slots(instructions: Instruction[]): number {
  return instructions.reduce((n, i) => n + i.length / 8, 0);
}

export function program(...parts: (Instruction | Instruction[])[]): Buffer {
  return Buffer.concat(parts.flat());
}

/** One condition of a counting program: run `load` (leaving a value in `register`), continue only if it equals `equals`. */
export interface Check {
  load: Instruction[];
  register: number;
  equals: number;
}

/**
 * A program that runs `prologue`, then the checks in order; when all pass it
 * adds 1 to slot 0 of the array map `mapFd`. It returns `returnValue` or, when
 * given, `rejectValue` for packets that failed a check.
 */
export function countingProgram(mapFd: number, checks: Check[], returnValue: number, options: { prologue?: Instruction[]; rejectValue?: number } = {}): Buffer {
  const body: Instruction[] = [];
  const jumps: { index: number; register: number; equals: number }[] = [];
  for (const c of checks) {
    body.push(...c.load);
    jumps.push({ index: body.length, register: c.register, equals: c.equals });
    body.push(Buffer.alloc(8));
  }
  body.push(...incrementSlotZero(mapFd));
  const reject = options.rejectValue;
  // Accepted packets jump over the reject return when there is one.
  if (reject !== undefined) body.push(movImmediate(0, returnValue), exit());
  const outIndex = body.length;
  for (const j of jumps) {
    const distance = slots(body.slice(j.index + 1, outIndex));
    body[j.index] = jumpIfNotEqual(j.register, j.equals, distance);
  }
  body.push(movImmediate(0, reject ?? returnValue), exit());
  return program(options.prologue ?? [], body);
}
export const loadDouble = (dst: number, src: number, offset: number) => instruction(0x79, dst, src, offset, 0);
export const shiftRightImmediate = (dst: number, imm: number) => instruction(0x77, dst, 0, 0, imm);
export const helperGetCurrentPidTgid = 14;
