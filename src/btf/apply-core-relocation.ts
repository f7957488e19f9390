import { CoreRelocationError, type CoreRelocationResult } from "./core-relocation.js";
import { argumentError, expectBytes, expectInteger, expectObject, expectOneOf } from "../sys/argument-checks.js";

/** The immediate libbpf writes into a poisoned instruction (a call to helper 0xbad2310, "bad relo"). */
export const corePoisonImmediate = 0xbad2310;

/**
 * Patch instruction `index` of raw BPF bytecode with a resolved relocation (libbpf's
 * bpf_core_patch_insn): ALU immediates, load/store offsets (adjusting the access
 * size when allowed), 64-bit immediate loads; poisons when the result says so.
 */
export function applyCoreRelocation(instructions: Uint8Array, index: number, result: CoreRelocationResult, options: { byteOrder?: "little" | "big" } = {}): void {
  expectBytes("apply CO-RE relocation", "instructions", instructions);
  expectInteger("apply CO-RE relocation", "index", index, 0);
  expectObject("apply CO-RE relocation", "result", result);
  if (typeof result.targetValue !== "bigint" || typeof result.localValue !== "bigint") throw argumentError("apply CO-RE relocation", "result", "a CoreRelocationResult (from resolveCoreRelocation)", result);
  expectObject("apply CO-RE relocation", "options", options, true);
  if (options.byteOrder !== undefined) expectOneOf("apply CO-RE relocation", "options.byteOrder", options.byteOrder, ["little", "big"]);
  const littleEndian = (options.byteOrder ?? "little") === "little";
  const view = new DataView(instructions.buffer, instructions.byteOffset, instructions.byteLength);
  const at = index * 8;
  if (index < 0 || at + 8 > instructions.byteLength) throw new CoreRelocationError(`instruction ${index} is outside the program (${instructions.byteLength / 8} instructions)`);
  const code = instructions[at]!;
  const isLoadImmediate64 = code === 0x18;
  const poison = (position: number) => {
    instructions[position] = 0x85;
    instructions[position + 1] = 0;
    view.setInt16(position + 2, 0, littleEndian);
    view.setInt32(position + 4, corePoisonImmediate, littleEndian);
  };
  const poisonAll = () => {
    if (isLoadImmediate64 && at + 16 <= instructions.byteLength) poison(at + 8);
    poison(at);
  };
  if (result.poison) return poisonAll();
  const instructionClass = code & 0x07;
  const where = `instruction ${index} (${result.localSpec})`;
  switch (instructionClass) {
    case 0x04: case 0x07: {
      if ((code & 0x08) !== 0) throw new CoreRelocationError(`${where}: ALU instruction has a register source, expected an immediate`);
      const immediate = view.getInt32(at + 4, littleEndian);
      if (result.validate && BigInt(immediate >>> 0) !== BigInt.asUintN(32, result.localValue)) {
        throw new CoreRelocationError(`${where}: immediate ${immediate} is not the expected ${result.localValue}`);
      }
      view.setInt32(at + 4, Number(BigInt.asIntN(32, result.targetValue)), littleEndian);
      return;
    }
    case 0x01: case 0x02: case 0x03: {
      const offset = view.getInt16(at + 2, littleEndian);
      if (result.validate && BigInt(offset) !== result.localValue) throw new CoreRelocationError(`${where}: offset ${offset} is not the expected ${result.localValue}`);
      if (result.targetValue > 32767n) throw new CoreRelocationError(`${where}: offset ${result.targetValue} does not fit in 16 bits`);
      if (result.failMemorySizeAdjust) return poisonAll();
      view.setInt16(at + 2, Number(result.targetValue), littleEndian);
      if (result.targetSize !== result.localSize) {
        const sizes: Record<number, number> = { 0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8 };
        const current = sizes[code & 0x18];
        if (current !== result.localSize) throw new CoreRelocationError(`${where}: access size ${current} is not the expected ${result.localSize}`);
        const encoded = { 4: 0x00, 2: 0x08, 1: 0x10, 8: 0x18 }[result.targetSize];
        if (encoded === undefined) throw new CoreRelocationError(`${where}: field size ${result.targetSize} cannot be loaded in one instruction`);
        instructions[at] = (code & ~0x18) | encoded;
      }
      return;
    }
    case 0x00: {
      if (!isLoadImmediate64 || at + 16 > instructions.byteLength || instructions[at + 1]! & (littleEndian ? 0xf0 : 0x0f) || view.getInt16(at + 2, littleEndian) !== 0 ||
        instructions[at + 8] !== 0 || instructions[at + 9] !== 0 || view.getInt16(at + 10, littleEndian) !== 0) {
        throw new CoreRelocationError(`${where}: 64-bit immediate load has an unexpected form`);
      }
      const current = BigInt(view.getUint32(at + 4, littleEndian)) | (BigInt(view.getUint32(at + 12, littleEndian)) << 32n);
      if (result.validate && current !== BigInt.asUintN(64, result.localValue)) throw new CoreRelocationError(`${where}: immediate ${current} is not the expected ${result.localValue}`);
      const value = BigInt.asUintN(64, result.targetValue);
      view.setUint32(at + 4, Number(value & 0xffffffffn), littleEndian);
      view.setUint32(at + 12, Number(value >> 32n), littleEndian);
      return;
    }
    default:
      throw new CoreRelocationError(`${where}: cannot relocate instruction with opcode 0x${code.toString(16)}`);
  }
}
