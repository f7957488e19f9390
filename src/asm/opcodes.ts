/**
 * eBPF opcode fields (RFC 9669). An opcode byte is `class | …`:
 * - load/store classes: `mode | size | class`;
 * - ALU/jump classes: `operation | source | class`.
 */
import { expectInteger } from "../sys/argument-checks.js";

/** Instruction classes (low 3 bits). */
export const InstructionClass = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  JMP32: 0x06,
  ALU64: 0x07,
} as const;

/** Load/store access sizes (bits 3-4). */
export const Size = {
  W: 0x00,
  H: 0x08,
  B: 0x10,
  DW: 0x18,
} as const;

/** Load/store modes (bits 5-7). */
export const Mode = {
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  MEMSX: 0x80,
  ATOMIC: 0xc0,
} as const;

/** Operand source for ALU and jump instructions (bit 3). */
export const Source = {
  /** Use the 32-bit immediate. */
  K: 0x00,
  /** Use the source register. */
  X: 0x08,
} as const;

/** Byte-swap direction of `BPF_END` in the ALU class (shares the source bit). */
export const Endianness = {
  /** Convert to little-endian (a no-op on little-endian hosts, truncates). */
  TO_LE: 0x00,
  /** Convert to big-endian. */
  TO_BE: 0x08,
} as const;

/** ALU operations (bits 4-7). */
export const AluOperation = {
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90,
  XOR: 0xa0,
  MOV: 0xb0,
  ARSH: 0xc0,
  END: 0xd0,
} as const;

/** Jump operations (bits 4-7). */
export const JumpOperation = {
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  JNE: 0x50,
  JSGT: 0x60,
  JSGE: 0x70,
  CALL: 0x80,
  EXIT: 0x90,
  JLT: 0xa0,
  JLE: 0xb0,
  JSLT: 0xc0,
  JSLE: 0xd0,
  /** Conditional pseudo-jump (src 0: may_goto, kernel ≥ 6.9). */
  JCOND: 0xe0,
} as const;

/** Atomic operations, carried in the immediate of `STX | ATOMIC`. */
export const AtomicOperation = {
  ADD: 0x00,
  OR: 0x40,
  AND: 0x50,
  XOR: 0xa0,
  /** Flag: also return the old value in the source register. */
  FETCH: 0x01,
  /** Exchange (always fetches). */
  XCHG: 0xe0 | 0x01,
  /** Compare r0 with memory and exchange when equal (always fetches; old value into r0). */
  CMPXCHG: 0xf0 | 0x01,
} as const;

/** `src` values of the 64-bit immediate load (`lddw`) that the loader rewrites. */
export const PseudoSource = {
  /** Plain 64-bit constant. */
  IMMEDIATE: 0,
  /** imm is a map file descriptor; becomes a map pointer. */
  MAP_FD: 1,
  /** imm is a map fd, second imm an offset into the map value; becomes a value pointer. */
  MAP_VALUE: 2,
  /** imm is a kernel BTF id of a variable. */
  BTF_ID: 3,
  /** imm is a pc-relative offset of a function; becomes a function pointer. */
  FUNC: 4,
  /** imm is an index into the fd array given at load time. */
  MAP_INDEX: 5,
  /** Like MAP_VALUE with a map index instead of an fd. */
  MAP_INDEX_VALUE: 6,
} as const;

/** `src` values of a call instruction. */
export const CallSource = {
  HELPER: 0,
  /** bpf-to-bpf call; imm is the pc-relative offset of the callee. */
  LOCAL: 1,
  /** Kernel function; imm is its BTF id. */
  KFUNC: 2,
} as const;

/** Opcodes that are used often enough to name. */
export const Opcode = {
  LDDW: InstructionClass.LD | Mode.IMM | Size.DW,
  CALL: InstructionClass.JMP | JumpOperation.CALL,
  CALLX: InstructionClass.JMP | JumpOperation.CALL | Source.X,
  EXIT: InstructionClass.JMP | JumpOperation.EXIT,
  JA: InstructionClass.JMP | JumpOperation.JA,
  JA32: InstructionClass.JMP32 | JumpOperation.JA,
  /** `may_goto`: jumps once the kernel's loop budget for this run is spent, else falls through. */
  MAY_GOTO: InstructionClass.JMP | JumpOperation.JCOND,
} as const;

export function instructionClass(opcode: number): number {
  return expectInteger("read opcode", "opcode", opcode, 0, 0xff) & 0x07;
}

export function isLoadStoreClass(opcode: number): boolean {
  return (expectInteger("read opcode", "opcode", opcode, 0, 0xff) & 0x07) < InstructionClass.ALU;
}

/** Bytes accessed by a load/store size field. */
export function sizeBytes(opcode: number): 1 | 2 | 4 | 8 {
  switch (expectInteger("read opcode", "opcode", opcode, 0, 0xff) & 0x18) {
    case Size.W:
      return 4;
    case Size.H:
      return 2;
    case Size.B:
      return 1;
    default:
      return 8;
  }
}
