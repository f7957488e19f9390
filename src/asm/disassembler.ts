import { argumentError, expectArray, expectInteger, expectObject, expectOneOf } from "../sys/argument-checks.js";
import { type Instruction, instructionProblem, slotIndexes, wideValue } from "./instruction.js";
import { AtomicOperation, InstructionClass, Opcode } from "./opcodes.js";

export interface DisassemblyOptions {
  /** Print immediates and offsets in hex (llvm-objdump's default) or decimal (`--no-print-imm-hex`). */
  immediates?: "hex" | "decimal";
  /**
   * Print 32-bit loads, stores and atomics with `w` registers, as llvm-objdump
   * does with `--mattr=+alu32`. Without it (llvm-objdump's default) they use
   * `r` registers, except 32-bit fetching atomics, which llvm-objdump can only
   * print in this form.
   */
  alu32?: boolean;
  /** Symbol names by slot, used to annotate jump targets as `<name+0xoffset>`. */
  symbols?: ReadonlyMap<number, string>;
  /** Print a `0000000000000018 <name>:` heading before each symbol, as llvm-objdump does for functions. */
  headings?: boolean;
}

/** Slot → name for the labels of an assembled program, for the `symbols` option. */
export function labelSymbols(program: { instructions: readonly Instruction[]; labels: ReadonlyMap<string, number> }): Map<number, string> {
  const operation = "label disassembly symbols";
  expectObject(operation, "program", program);
  expectArray(operation, "program.instructions", program.instructions);
  if (!(program.labels instanceof Map)) throw argumentError(operation, "program.labels", "a Map of label name to instruction index", program.labels);
  const slots = slotIndexes(program.instructions);
  const symbols = new Map<number, string>();
  for (const [name, index] of program.labels) {
    const slot = slots[index]!;
    if (!symbols.has(slot)) symbols.set(slot, name);
  }
  return symbols;
}

function checkDisassemblyOptions(options: DisassemblyOptions): void {
  expectObject("disassemble", "options", options);
  if (options.immediates !== undefined) expectOneOf("disassemble", "options.immediates", options.immediates, ["hex", "decimal"]);
  if (options.symbols !== undefined && !(options.symbols instanceof Map)) throw argumentError("disassemble", "options.symbols", "a Map of slot to name", options.symbols);
}

const aluOperators: Record<number, string> = {
  0x00: "+=",
  0x10: "-=",
  0x20: "*=",
  0x30: "/=",
  0x40: "|=",
  0x50: "&=",
  0x60: "<<=",
  0x70: ">>=",
  0x90: "%=",
  0xa0: "^=",
  0xb0: "=",
  0xc0: "s>>=",
};

const jumpOperators: Record<number, string> = {
  0x10: "==",
  0x20: ">",
  0x30: ">=",
  0x40: "&",
  0x50: "!=",
  0x60: "s>",
  0x70: "s>=",
  0xa0: "<",
  0xb0: "<=",
  0xc0: "s<",
  0xd0: "s<=",
};

const atomicNames: Record<number, string> = {
  [AtomicOperation.ADD]: "add",
  [AtomicOperation.OR]: "or",
  [AtomicOperation.AND]: "and",
  [AtomicOperation.XOR]: "xor",
};

const atomicOperators: Record<number, string> = {
  [AtomicOperation.ADD]: "+=",
  [AtomicOperation.OR]: "|=",
  [AtomicOperation.AND]: "&=",
  [AtomicOperation.XOR]: "^=",
};

const sizeNames: Record<number, string> = { 0x00: "32", 0x08: "16", 0x10: "8", 0x18: "64" };

/**
 * Disassembles a program into llvm-objdump's text: one line per instruction,
 * `%8d:\t<text>`, numbered by slot (an lddw takes two).
 */
export function disassemble(instructions: readonly Instruction[], options: DisassemblyOptions = {}): string {
  expectArray("disassemble", "instructions", instructions);
  checkDisassemblyOptions(options);
  const slots = slotIndexes(instructions);
  const lines: string[] = [];
  instructions.forEach((instruction, index) => {
    const slot = slots[index]!;
    const symbol = options.headings ? options.symbols?.get(slot) : undefined;
    if (symbol !== undefined) {
      if (lines.length > 0) lines.push("");
      lines.push(`${(slot * 8).toString(16).padStart(16, "0")} <${symbol}>:`);
    }
    lines.push(`${String(slot).padStart(8)}:\t${formatInstruction(instruction, { ...options, slot })}`);
  });
  return lines.join("\n");
}

/** One instruction in llvm-objdump's syntax, e.g. `r0 = *(u32 *)(r1 + 0x4)`; `<unknown>` for an invalid one. */
export function disassembleInstruction(instruction: Instruction, options: DisassemblyOptions & { slot?: number } = {}): string {
  checkDisassemblyOptions(options);
  if (options.slot !== undefined) expectInteger("disassemble", "options.slot", options.slot, 0);
  return formatInstruction(instruction, options);
}

function formatInstruction(instruction: Instruction, options: DisassemblyOptions & { slot?: number }): string {
  if (instructionProblem(instruction) !== undefined && !looseEncodingAllowed(instruction)) return "<unknown>";
  const hex = (options.immediates ?? "hex") === "hex";
  const alu32 = options.alu32 ?? false;
  const { opcode, dst, src, offset, imm } = instruction;
  const number = (value: number | bigint): string => formatNumber(value, hex);
  const memory = (register: number): string => `(r${register} ${offset < 0 ? "-" : "+"} ${number(Math.abs(offset))})`;
  const cls = opcode & 0x07;
  const size = opcode & 0x18;
  const narrowAccess = size !== 0x18;

  switch (cls) {
    case InstructionClass.LD: {
      if (opcode === Opcode.LDDW) {
        const value = wideValue(instruction);
        if (src === 0) return `r${dst} = ${number(BigInt.asIntN(64, value))} ll`;
        const second = Number(value >> 32n);
        const extra = second !== 0 ? `, ${number(second)}` : "";
        return `ld_pseudo\tr${dst}, ${number(src)}, ${number(imm)}${extra}`;
      }
      const type = `u${sizeNames[size]}`;
      if ((opcode & 0xe0) === 0x20) return `r0 = *(${type} *)skb[${number(imm)}]`;
      const index = imm === 0 ? `r${src}` : `r${src} ${imm < 0 ? "-" : "+"} ${number(Math.abs(imm))}`;
      return `r0 = *(${type} *)skb[${index}]`;
    }
    case InstructionClass.LDX: {
      const signed = (opcode & 0xe0) === 0x80;
      const register = !signed && alu32 && narrowAccess ? "w" : "r";
      return `${register}${dst} = *(${signed ? "s" : "u"}${sizeNames[size]} *)${memory(src)}`;
    }
    case InstructionClass.ST:
      return `*(u${sizeNames[size]} *)${memory(dst)} = ${number(imm)}`;
    case InstructionClass.STX: {
      if ((opcode & 0xe0) !== 0xc0) {
        return `*(u${sizeNames[size]} *)${memory(dst)} = ${alu32 && narrowAccess ? "w" : "r"}${src}`;
      }
      const wide = size === 0x18;
      const address = `r${dst} ${offset < 0 ? "-" : "+"} ${number(Math.abs(offset))}`;
      if (imm === AtomicOperation.XCHG) {
        return wide ? `r${src} = xchg_64(${address}, r${src})` : `w${src} = xchg32_32(${address}, w${src})`;
      }
      if (imm === AtomicOperation.CMPXCHG) {
        return wide ? `r0 = cmpxchg_64(${address}, r0, r${src})` : `w0 = cmpxchg32_32(${address}, w0, w${src})`;
      }
      const operation = imm & 0xf0;
      if ((imm & AtomicOperation.FETCH) !== 0) {
        const register = wide ? "r" : "w";
        return `${register}${src} = atomic_fetch_${atomicNames[operation]}((u${wide ? 64 : 32} *)(${address}), ${register}${src})`;
      }
      return `lock *(u${wide ? 64 : 32} *)(${address}) ${atomicOperators[operation]} ${wide || !alu32 ? "r" : "w"}${src}`;
    }
    case InstructionClass.ALU:
    case InstructionClass.ALU64: {
      const register = cls === InstructionClass.ALU64 ? "r" : "w";
      const operation = opcode & 0xf0;
      const fromRegister = (opcode & 0x08) !== 0;
      if (operation === 0xd0) {
        const name = cls === InstructionClass.ALU64 ? "bswap" : fromRegister ? "be" : "le";
        return `r${dst} = ${name}${imm} r${dst}`;
      }
      if (operation === 0x80) return `${register}${dst} = -${register}${dst}`;
      const source = fromRegister ? `${register}${src}` : number(imm);
      if (operation === 0xb0 && fromRegister && offset !== 0) return `${register}${dst} = (s${offset})${register}${src}`;
      const signed = (operation === 0x30 || operation === 0x90) && offset === 1 ? "s" : "";
      return `${register}${dst} ${signed}${aluOperators[operation]} ${source}`;
    }
    case InstructionClass.JMP:
    case InstructionClass.JMP32: {
      const operation = opcode & 0xf0;
      if (operation === 0x90) return "exit";
      if (operation === 0x80) return (opcode & 0x08) !== 0 ? `callx r${dst}` : `call ${number(imm)}`;
      const slot = options.slot;
      if (operation === 0x00) {
        const distance = cls === InstructionClass.JMP32 ? imm : offset;
        return `${cls === InstructionClass.JMP32 ? "gotol" : "goto"} ${signedNumber(distance, hex)}${targetSymbol(slot, distance, options.symbols)}`;
      }
      if (operation === 0xe0) return `may_goto ${signedNumber(offset, hex)}${targetSymbol(slot, offset, options.symbols)}`;
      const register = cls === InstructionClass.JMP32 ? "w" : "r";
      const source = (opcode & 0x08) !== 0 ? `${register}${src}` : number(imm);
      return `if ${register}${dst} ${jumpOperators[operation]} ${source} goto ${signedNumber(offset, hex)}${targetSymbol(slot, offset, options.symbols)}`;
    }
  }
  return "<unknown>";
}

/** Encodings llvm-objdump prints although their unused fields are not zero. */
function looseEncodingAllowed(instruction: Instruction): boolean {
  // callx carries its register in dst; llvm-objdump ignores the immediate.
  return instruction.opcode === Opcode.CALLX;
}

function formatNumber(value: number | bigint, hex: boolean): string {
  if (!hex) return value.toString();
  const negative = value < 0;
  const magnitude = negative ? -BigInt(value) : BigInt(value);
  return `${negative ? "-" : ""}0x${magnitude.toString(16)}`;
}

function signedNumber(value: number, hex: boolean): string {
  return `${value < 0 ? "-" : "+"}${formatNumber(Math.abs(value), hex)}`;
}

function targetSymbol(slot: number | undefined, distance: number, symbols: ReadonlyMap<number, string> | undefined): string {
  if (slot === undefined || symbols === undefined || symbols.size === 0) return "";
  // llvm-objdump computes the target address as an unsigned 64-bit number and names it after the nearest symbol at or before it.
  const target = BigInt.asUintN(64, BigInt(slot + 1 + distance) * 8n);
  let best: { address: bigint; name: string } | undefined;
  for (const [symbolSlot, name] of symbols) {
    const address = BigInt(symbolSlot) * 8n;
    if (address <= target && (best === undefined || address > best.address)) best = { address, name };
  }
  if (best === undefined) return "";
  const delta = target - best.address;
  return delta === 0n ? ` <${best.name}>` : ` <${best.name}+0x${delta.toString(16)}>`;
}
