/** Tiny programs for feature probes, encoded by the asm layer's encoder (no assembler needed). */
import { encode, makeInstruction } from "../asm/instruction.js";

function instruction(opcode: number, dst: number, src: number, offset: number, imm: number): Buffer {
  return encode([makeInstruction(opcode, dst, src, offset, imm)]);
}

const movR0Zero = instruction(0xb7, 0, 0, 0, 0);
const exit = instruction(0x95, 0, 0, 0, 0);

/** r0 = 0; exit */
export const returnZero = Buffer.concat([movR0Zero, exit]);

/** call helper; r0 = 0; exit */
export function callHelper(helper: number): Buffer {
  return Buffer.concat([instruction(0x85, 0, 0, 0, helper), movR0Zero, exit]);
}

/** Instruction-set probes: each uses an instruction first defined by that version. */
export const instructionSetProbes: Record<"v2" | "v3" | "v4", Buffer> = {
  // v2: jlt (0xa5) on 64-bit registers
  v2: Buffer.concat([movR0Zero, instruction(0xa5, 0, 0, 0, 1), movR0Zero, exit]),
  // v3: 32-bit jump (jmp32 jeq, 0x16)
  v3: Buffer.concat([movR0Zero, instruction(0x16, 0, 0, 0, 1), movR0Zero, exit]),
  // v4: sign-extending move (movsx r0, w0 as 8-bit: 0xbf with offset 8)
  v4: Buffer.concat([movR0Zero, instruction(0xbf, 0, 0, 8, 0), exit]),
};

/** may_goto +0 (kernel ≥ 6.9: the loop-budget pseudo-jump netbpf's protochain loops use); r0 = 0; exit */
export const mayGotoProbe = Buffer.concat([instruction(0xe5, 0, 0, 0, 0), movR0Zero, exit]);

/** A minimal BTF blob holding one type: [1] int (signed, 32 bits). For map types that demand BTF. */
export function minimalIntBtf(): Buffer {
  const strings = Buffer.from("\0int\0", "latin1");
  const types = Buffer.alloc(16);
  types.writeUInt32LE(1, 0); // name "int"
  types.writeUInt32LE(1 << 24, 4); // kind INT
  types.writeUInt32LE(4, 8); // size
  types.writeUInt32LE((1 << 24) | 32, 12); // signed, 32 bits
  const header = Buffer.alloc(24);
  header.writeUInt16LE(0xeb9f, 0);
  header[2] = 1;
  header.writeUInt32LE(24, 4);
  header.writeUInt32LE(0, 8);
  header.writeUInt32LE(types.length, 12);
  header.writeUInt32LE(types.length, 16);
  header.writeUInt32LE(strings.length, 20);
  return Buffer.concat([header, types, strings]);
}
