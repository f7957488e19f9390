import { expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { type Instruction, makeInstruction, makeWideInstruction, slotIndexes } from "./instruction.js";
import { AtomicOperation, CallSource, InstructionClass, Mode, Opcode } from "./opcodes.js";

/**
 * Assembles LLVM's BPF assembly syntax — what llvm-objdump and
 * {@link disassemble} print, and what clang accepts as inline assembly:
 * `r0 = *(u32 *)(r1 + 0x4)`, `if w1 s< -3 goto +2`, `lock *(u64 *)(r1 + 0) += r2`,
 * `r1 = 0x1122334455667788 ll`, `call 1`, `exit`, labels `name:`.
 * Lines may carry an objdump slot prefix (`    12:\t…`); objdump function
 * headings (`0000000000000000 <prog>:`) and `<target>` annotations are ignored.
 * A jump or call target is `+N`/`-N` (slots) or a label; `call label` is a
 * local (bpf-to-bpf) call, `call N` a helper call.
 */
export function assembleLlvm(source: string): Instruction[] {
  return new LlvmAssembler().assemble(expectString(operation, "source", source));
}

const operation = "assemble LLVM BPF text";

const sizes: Record<string, number> = { "8": 0x10, "16": 0x08, "32": 0x00, "64": 0x18 };

const aluOperators: Record<string, { code: number; signed?: boolean }> = {
  "+=": { code: 0x00 },
  "-=": { code: 0x10 },
  "*=": { code: 0x20 },
  "/=": { code: 0x30 },
  "s/=": { code: 0x30, signed: true },
  "|=": { code: 0x40 },
  "&=": { code: 0x50 },
  "<<=": { code: 0x60 },
  ">>=": { code: 0x70 },
  "%=": { code: 0x90 },
  "s%=": { code: 0x90, signed: true },
  "^=": { code: 0xa0 },
  "=": { code: 0xb0 },
  "s>>=": { code: 0xc0 },
};

const jumpOperators: Record<string, number> = {
  "==": 0x10,
  ">": 0x20,
  ">=": 0x30,
  "&": 0x40,
  "!=": 0x50,
  "s>": 0x60,
  "s>=": 0x70,
  "<": 0xa0,
  "<=": 0xb0,
  "s<": 0xc0,
  "s<=": 0xd0,
};

const atomicOperators: Record<string, number> = {
  "+=": AtomicOperation.ADD,
  "|=": AtomicOperation.OR,
  "&=": AtomicOperation.AND,
  "^=": AtomicOperation.XOR,
};

const number = String.raw`[+-]?(?:0x[0-9a-fA-F]+|\d+)`;
const register = String.raw`[rw]\d+`;
const address = String.raw`\((r\d+)(?:\s*([+-])\s*(0x[0-9a-fA-F]+|\d+))?\)`;
const label = String.raw`[A-Za-z_.$][\w.$]*`;

const patterns = {
  exit: /^exit$/,
  call: new RegExp(`^call\\s+(${number}|${label})$`),
  callx: new RegExp(`^callx\\s+(${register})$`),
  goto: new RegExp(`^(goto|gotol)\\s+(${number}|${label})$`),
  conditional: new RegExp(`^if\\s+(${register})\\s+(s?[<>]=?|==|!=|&)\\s+(${register}|${number})\\s+goto\\s+(${number}|${label})$`),
  wide: new RegExp(`^(${register})\\s*=\\s*(${number})\\s+ll$`),
  pseudo: new RegExp(`^ld_pseudo\\s+(${register}),\\s*(${number}),\\s*(${number})(?:,\\s*(${number}))?$`),
  load: new RegExp(`^(${register})\\s*=\\s*\\*\\(([us])(8|16|32|64)\\s*\\*\\)${address}$`),
  store: new RegExp(`^\\*\\(u(8|16|32|64)\\s*\\*\\)${address}\\s*=\\s*(${register}|${number})$`),
  lock: new RegExp(`^lock\\s+\\*\\(u(32|64)\\s*\\*\\)${address}\\s*([+|&^]=)\\s*(${register})$`),
  fetch: new RegExp(`^(${register})\\s*=\\s*atomic_fetch_(add|or|and|xor)\\(\\(u(32|64)\\s*\\*\\)${address},\\s*(${register})\\)$`),
  exchange: new RegExp(`^(${register})\\s*=\\s*(xchg_64|xchg32_32)\\((r\\d+)(?:\\s*([+-])\\s*(0x[0-9a-fA-F]+|\\d+))?,\\s*(${register})\\)$`),
  compareExchange: new RegExp(`^(${register})\\s*=\\s*(cmpxchg_64|cmpxchg32_32)\\((r\\d+)(?:\\s*([+-])\\s*(0x[0-9a-fA-F]+|\\d+))?,\\s*(${register}),\\s*(${register})\\)$`),
  packet: new RegExp(`^r0\\s*=\\s*\\*\\(u(8|16|32)\\s*\\*\\)skb\\[(?:(${number})|(r\\d+)(?:\\s*([+-])\\s*(0x[0-9a-fA-F]+|\\d+))?)\\]$`),
  byteOrder: new RegExp(`^(${register})\\s*=\\s*(be|le|bswap)(16|32|64)\\s+(${register})$`),
  negate: new RegExp(`^(${register})\\s*=\\s*-(${register})$`),
  signExtend: new RegExp(`^(${register})\\s*=\\s*\\(s(8|16|32)\\)(${register})$`),
  alu: new RegExp(`^(${register})\\s*(s?(?:[-+*/|&^%]|<<|>>)?=)\\s*(${register}|${number})$`),
};

interface Pending {
  instructionIndex: number;
  label: string;
  line: number;
  field: "offset" | "imm";
}

class LlvmAssembler {
  private readonly instructions: Instruction[] = [];
  private readonly labels = new Map<string, number>();
  private readonly pending: Pending[] = [];
  private line = 0;

  assemble(source: string): Instruction[] {
    const lines = source.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      this.line = i + 1;
      let text = lines[i]!.replace(/(?:#|\/\/|;).*$/, "").trim();
      if (text === "" || /^[0-9a-f]{16} <.*>:$/.test(text) || /^Disassembly of section/.test(text) || /file format/.test(text) || text === "...") continue;
      text = text.replace(/^\d+:\s*/, "").replace(/\s*<[^<>]*>$/, "").trim();
      const labelMatch = new RegExp(`^(${label}):$`).exec(text);
      if (labelMatch) {
        if (this.labels.has(labelMatch[1]!)) this.fail(`label ${labelMatch[1]} is defined twice`);
        this.labels.set(labelMatch[1]!, this.instructions.length);
        continue;
      }
      this.instructions.push(this.statement(text));
    }
    this.resolveLabels();
    return this.instructions;
  }

  private statement(text: string): Instruction {
    let m: RegExpExecArray | null;
    if (patterns.exit.test(text)) return makeInstruction(Opcode.EXIT, 0, 0, 0, 0);
    if ((m = patterns.callx.exec(text))) return makeInstruction(Opcode.CALLX, this.register(m[1]!, "r"), 0, 0, 0);
    if ((m = patterns.call.exec(text))) {
      if (this.isNumber(m[1]!)) return makeInstruction(Opcode.CALL, 0, CallSource.HELPER, 0, this.integer(m[1]!, -0x8000_0000, 0xffff_ffff));
      return makeInstruction(Opcode.CALL, 0, CallSource.LOCAL, 0, this.target(m[1]!, "imm"));
    }
    if ((m = patterns.goto.exec(text))) {
      if (m[1] === "gotol") return makeInstruction(Opcode.JA32, 0, 0, 0, this.target(m[2]!, "imm"));
      return makeInstruction(Opcode.JA, 0, 0, this.target(m[2]!, "offset"), 0);
    }
    if ((m = patterns.conditional.exec(text))) {
      const [, dst, operator, source, target] = m as unknown as [string, string, string, string, string];
      const code = jumpOperators[operator];
      if (code === undefined) this.fail(`unknown jump condition ${operator}`);
      const width = dst[0] as "r" | "w";
      const cls = width === "w" ? InstructionClass.JMP32 : InstructionClass.JMP;
      const offset = this.target(target, "offset");
      if (this.isNumber(source)) return makeInstruction(cls | code!, this.register(dst, width), 0, offset, this.integer(source, -0x8000_0000, 0xffff_ffff));
      return makeInstruction(cls | code! | 0x08, this.register(dst, width), this.register(source, width), offset, 0);
    }
    if ((m = patterns.wide.exec(text))) {
      const value = this.bigInteger(m[2]!);
      if (value < -(1n << 63n) || value >= 1n << 64n) this.fail(`${m[2]} does not fit in 64 bits`);
      return makeWideInstruction(this.register(m[1]!, "r"), 0, value);
    }
    if ((m = patterns.pseudo.exec(text))) {
      const source = this.integer(m[2]!, 0, 15);
      const low = BigInt(this.integer(m[3]!, -0x8000_0000, 0xffff_ffff) >>> 0);
      const high = m[4] === undefined ? 0n : BigInt(this.integer(m[4], -0x8000_0000, 0xffff_ffff) >>> 0);
      return makeWideInstruction(this.register(m[1]!, "r"), source, (high << 32n) | low);
    }
    if ((m = patterns.load.exec(text))) {
      const [, dst, signedness, bits] = m as unknown as [string, string, string, string];
      const signed = signedness === "s";
      if (signed && bits === "64") this.fail("there is no sign-extending 64-bit load");
      if (dst[0] === "w" && (signed || bits === "64")) this.fail(`${dst} cannot receive a ${signedness}${bits} load`);
      const mode = signed ? Mode.MEMSX : Mode.MEM;
      return makeInstruction(InstructionClass.LDX | mode | sizes[bits]!, this.register(dst, dst[0] as "r" | "w"), this.register(m[4]!, "r"), this.offset(m[5], m[6]), 0);
    }
    if ((m = patterns.store.exec(text))) {
      const [, bits, base, sign, magnitude, value] = m as unknown as [string, string, string, string | undefined, string | undefined, string];
      const offset = this.offset(sign, magnitude);
      if (this.isNumber(value)) {
        return makeInstruction(InstructionClass.ST | Mode.MEM | sizes[bits]!, this.register(base, "r"), 0, offset, this.integer(value, -0x8000_0000, bits === "64" ? 0x7fff_ffff : 0xffff_ffff));
      }
      return makeInstruction(InstructionClass.STX | Mode.MEM | sizes[bits]!, this.register(base, "r"), this.register(value, value[0] as "r" | "w"), offset, 0);
    }
    if ((m = patterns.lock.exec(text))) {
      const [, bits, base, sign, magnitude, operator, source] = m as unknown as [string, string, string, string | undefined, string | undefined, string, string];
      return makeInstruction(InstructionClass.STX | Mode.ATOMIC | sizes[bits]!, this.register(base, "r"), this.register(source, source[0] as "r" | "w"), this.offset(sign, magnitude), atomicOperators[operator]!);
    }
    if ((m = patterns.fetch.exec(text))) {
      const [, result, name, bits, base, sign, magnitude, source] = m as unknown as [string, string, string, string, string, string | undefined, string | undefined, string];
      if (result !== source) this.fail(`atomic_fetch_${name} returns into its source register: write ${source} = atomic_fetch_${name}(…, ${source})`);
      const code = { add: AtomicOperation.ADD, or: AtomicOperation.OR, and: AtomicOperation.AND, xor: AtomicOperation.XOR }[name]! | AtomicOperation.FETCH;
      return makeInstruction(InstructionClass.STX | Mode.ATOMIC | sizes[bits]!, this.register(base, "r"), this.register(source, source[0] as "r" | "w"), this.offset(sign, magnitude), code);
    }
    if ((m = patterns.exchange.exec(text))) {
      const [, result, name, base, sign, magnitude, source] = m as unknown as [string, string, string, string, string | undefined, string | undefined, string];
      if (result !== source) this.fail(`${name} returns into its source register`);
      const size = name === "xchg_64" ? 0x18 : 0x00;
      return makeInstruction(InstructionClass.STX | Mode.ATOMIC | size, this.register(base, "r"), this.register(source, source[0] as "r" | "w"), this.offset(sign, magnitude), AtomicOperation.XCHG);
    }
    if ((m = patterns.compareExchange.exec(text))) {
      const [, result, name, base, sign, magnitude, expected, source] = m as unknown as [string, string, string, string, string | undefined, string | undefined, string, string];
      if (this.register(result, result[0] as "r" | "w") !== 0 || this.register(expected, expected[0] as "r" | "w") !== 0) this.fail(`${name} compares with and returns into r0`);
      const size = name === "cmpxchg_64" ? 0x18 : 0x00;
      return makeInstruction(InstructionClass.STX | Mode.ATOMIC | size, this.register(base, "r"), this.register(source, source[0] as "r" | "w"), this.offset(sign, magnitude), AtomicOperation.CMPXCHG);
    }
    if ((m = patterns.packet.exec(text))) {
      const [, bits, absolute, index, sign, magnitude] = m as unknown as [string, string, string | undefined, string | undefined, string | undefined, string | undefined];
      if (absolute !== undefined) return makeInstruction(InstructionClass.LD | Mode.ABS | sizes[bits]!, 0, 0, 0, this.integer(absolute, -0x8000_0000, 0xffff_ffff));
      const extra = magnitude === undefined ? 0 : this.integer(magnitude, 0, 0x8000_0000) * (sign === "-" ? -1 : 1);
      if (extra > 0x7fff_ffff) this.fail(`packet offset ${magnitude} does not fit in 32 bits`);
      return makeInstruction(InstructionClass.LD | Mode.IND | sizes[bits]!, 0, this.register(index!, "r"), 0, extra);
    }
    if ((m = patterns.byteOrder.exec(text))) {
      const [, dst, kind, bits, source] = m as unknown as [string, string, string, string, string];
      if (dst !== source) this.fail(`${kind}${bits} works in place: write ${dst} = ${kind}${bits} ${dst}`);
      const opcode = kind === "bswap" ? InstructionClass.ALU64 | 0xd0 : InstructionClass.ALU | 0xd0 | (kind === "be" ? 0x08 : 0x00);
      return makeInstruction(opcode, this.register(dst, "r"), 0, 0, Number(bits));
    }
    if ((m = patterns.negate.exec(text))) {
      if (m[1] !== m[2]) this.fail(`negation works in place: write ${m[1]} = -${m[1]}`);
      const width = m[1]![0] as "r" | "w";
      return makeInstruction((width === "w" ? InstructionClass.ALU : InstructionClass.ALU64) | 0x80, this.register(m[1]!, width), 0, 0, 0);
    }
    if ((m = patterns.signExtend.exec(text))) {
      const [, dst, bits, source] = m as unknown as [string, string, string, string];
      const width = dst[0] as "r" | "w";
      if (width === "w" && bits === "32") this.fail("a 32-bit register cannot sign-extend from 32 bits");
      const cls = width === "w" ? InstructionClass.ALU : InstructionClass.ALU64;
      return makeInstruction(cls | 0xb0 | 0x08, this.register(dst, width), this.register(source, width), Number(bits), 0);
    }
    if ((m = patterns.alu.exec(text))) {
      const [, dst, operator, source] = m as unknown as [string, string, string, string];
      const alu = aluOperators[operator];
      if (alu === undefined) this.fail(`unknown operator ${operator}`);
      const width = dst[0] as "r" | "w";
      const cls = width === "w" ? InstructionClass.ALU : InstructionClass.ALU64;
      const offset = alu!.signed ? 1 : 0;
      if (this.isNumber(source)) {
        return makeInstruction(cls | alu!.code, this.register(dst, width), 0, offset, this.integer(source, -0x8000_0000, width === "w" ? 0xffff_ffff : 0x7fff_ffff));
      }
      return makeInstruction(cls | alu!.code | 0x08, this.register(dst, width), this.register(source, width), offset, 0);
    }
    this.fail(`cannot read ${JSON.stringify(text)} as an instruction`);
  }

  private target(text: string, field: "offset" | "imm"): number {
    if (this.isNumber(text)) {
      const [min, max] = field === "offset" ? [-0x8000, 0x7fff] : [-0x8000_0000, 0x7fff_ffff];
      return this.integer(text, min, max);
    }
    this.pending.push({ instructionIndex: this.instructions.length, label: text, line: this.line, field });
    return 0;
  }

  private resolveLabels(): void {
    const slots = slotIndexes(this.instructions);
    for (const use of this.pending) {
      const target = this.labels.get(use.label);
      if (target === undefined) throw new UsageError(operation, `line ${use.line}: label ${JSON.stringify(use.label)} is never defined`);
      const distance = slots[target]! - slots[use.instructionIndex]! - 1;
      const instruction = this.instructions[use.instructionIndex]!;
      if (use.field === "imm") instruction.imm = distance;
      else if (distance < -0x8000 || distance > 0x7fff) {
        throw new UsageError(operation, `line ${use.line}: label ${use.label} is ${distance} instructions away, beyond the 16-bit jump range`, "use gotol");
      } else instruction.offset = distance;
    }
  }

  private register(text: string, width: "r" | "w"): number {
    const match = /^([rw])(\d+)$/.exec(text);
    if (!match || Number(match[2]) > 10) this.fail(`${JSON.stringify(text)} is not a register (r0 … r10, or w0 … w10 for 32 bits)`);
    if (match![1] !== width) this.fail(`${text} mixes 32-bit (w) and 64-bit (r) registers in one instruction`);
    return Number(match![2]);
  }

  private offset(sign: string | undefined, magnitude: string | undefined): number {
    if (magnitude === undefined) return 0;
    const value = this.integer(magnitude, 0, 0x8000) * (sign === "-" ? -1 : 1);
    if (value > 0x7fff) this.fail(`offset ${sign}${magnitude} does not fit in 16 bits`);
    return value;
  }

  private isNumber(text: string): boolean {
    return new RegExp(`^${number}$`).test(text);
  }

  private bigInteger(text: string): bigint {
    const negative = text.startsWith("-");
    const magnitude = BigInt(text.replace(/^[+-]/, ""));
    return negative ? -magnitude : magnitude;
  }

  private integer(text: string, min: number, max: number): number {
    const value = this.bigInteger(text);
    if (value < BigInt(min) || value > BigInt(max)) this.fail(`${text} is out of range ${min}..${max}`);
    return Number(value);
  }

  private fail(message: string): never {
    throw new UsageError(operation, `line ${this.line}: ${message}`);
  }
}
