import { expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { type Instruction, makeInstruction, makeWideInstruction, slotIndexes } from "./instruction.js";
import {
  AluOperation,
  AtomicOperation,
  CallSource,
  Endianness,
  InstructionClass,
  JumpOperation,
  Mode,
  Opcode,
  Size,
  Source,
} from "./opcodes.js";

/**
 * Assembles the text syntax of the bpf_conformance suite (the ubpf-style
 * assembly): `mov %r0, 1`, `ldxb %r0, [%r1+2]`, `lock fetch add [%r10-8], %r1`,
 * `jne %r1, 0x2, label`, `ja +1`, `call 5`, `call local func`, `call %r2`,
 * `lddw %r0, 0x1122334455667788`, `be16 %r0`, labels as `name:` and `#` comments.
 * A jump to `exit` goes to the first exit instruction unless a label `exit` exists.
 */
export function assembleText(source: string): Instruction[] {
  return new TextAssembler().assemble(expectString(operation, "source", source));
}

const operation = "assemble eBPF text";

const aluOperations: Record<string, { code: number; signed?: boolean }> = {
  add: { code: AluOperation.ADD },
  sub: { code: AluOperation.SUB },
  mul: { code: AluOperation.MUL },
  div: { code: AluOperation.DIV },
  sdiv: { code: AluOperation.DIV, signed: true },
  or: { code: AluOperation.OR },
  and: { code: AluOperation.AND },
  lsh: { code: AluOperation.LSH },
  rsh: { code: AluOperation.RSH },
  mod: { code: AluOperation.MOD },
  smod: { code: AluOperation.MOD, signed: true },
  xor: { code: AluOperation.XOR },
  mov: { code: AluOperation.MOV },
  arsh: { code: AluOperation.ARSH },
};

const jumpOperations: Record<string, number> = {
  jeq: JumpOperation.JEQ,
  jgt: JumpOperation.JGT,
  jge: JumpOperation.JGE,
  jset: JumpOperation.JSET,
  jne: JumpOperation.JNE,
  jsgt: JumpOperation.JSGT,
  jsge: JumpOperation.JSGE,
  jlt: JumpOperation.JLT,
  jle: JumpOperation.JLE,
  jslt: JumpOperation.JSLT,
  jsle: JumpOperation.JSLE,
};

const sizes: Record<string, number> = { b: Size.B, h: Size.H, w: Size.W, dw: Size.DW };

const atomicOperations: Record<string, number> = {
  add: AtomicOperation.ADD,
  or: AtomicOperation.OR,
  and: AtomicOperation.AND,
  xor: AtomicOperation.XOR,
  xchg: AtomicOperation.XCHG,
  cmpxchg: AtomicOperation.CMPXCHG,
};

interface Pending {
  instructionIndex: number;
  label: string;
  line: number;
  /** Which field receives the distance. */
  field: "offset" | "imm";
}

class TextAssembler {
  private readonly instructions: Instruction[] = [];
  private readonly labels = new Map<string, number>();
  private readonly pending: Pending[] = [];
  private firstExit: number | undefined;
  private line = 0;

  assemble(source: string): Instruction[] {
    const lines = source.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      this.line = i + 1;
      const text = lines[i]!.replace(/#.*$/, "").trim();
      if (text === "") continue;
      const labelMatch = /^([A-Za-z_.$][\w.$]*):$/.exec(text);
      if (labelMatch) {
        const name = labelMatch[1]!;
        if (this.labels.has(name)) this.fail(`label ${name} is defined twice`);
        this.labels.set(name, this.instructions.length);
        continue;
      }
      this.statement(text);
    }
    if (this.instructions.length === 0) throw new UsageError(operation, "the program has no instructions");
    this.resolveLabels();
    return this.instructions;
  }

  private statement(text: string): void {
    // Collapse spaces inside [ ] so "[%r1 + 2]" is one token.
    const normalised = text.replace(/\[([^\]]*)\]/g, (_, inner: string) => `[${inner.replace(/\s+/g, "")}]`);
    const [mnemonic, ...operands] = normalised.split(/[\s,]+/).filter((token) => token !== "");
    if (mnemonic === undefined) this.fail(`expected an instruction, found ${JSON.stringify(text)}`);
    const name = mnemonic.toLowerCase();

    if (name === "exit") {
      this.expectOperands(name, operands, 0);
      if (this.firstExit === undefined) this.firstExit = this.instructions.length;
      return this.push(makeInstruction(Opcode.EXIT, 0, 0, 0, 0));
    }
    if (name === "lock") return this.lock(operands);
    if (name === "call") return this.call(operands);
    if (name === "lddw") {
      this.expectOperands(name, operands, 2);
      return this.push(makeWideInstruction(this.register(operands[0]!), 0, this.integer64(operands[1]!)));
    }
    if (name === "ja" || name === "ja32") {
      this.expectOperands(name, operands, 1);
      if (name === "ja32") return this.push(makeInstruction(Opcode.JA32, 0, 0, 0, this.jumpTarget(operands[0]!, "imm")));
      return this.push(makeInstruction(Opcode.JA, 0, 0, this.jumpTarget(operands[0]!, "offset"), 0));
    }

    let match = /^(be|le|swap|bswap)(16|32|64)$/.exec(name);
    if (match) {
      this.expectOperands(name, operands, 1);
      const opcode =
        match[1] === "be" ? InstructionClass.ALU | AluOperation.END | Endianness.TO_BE
        : match[1] === "le" ? InstructionClass.ALU | AluOperation.END | Endianness.TO_LE
        : InstructionClass.ALU64 | AluOperation.END;
      return this.push(makeInstruction(opcode, this.register(operands[0]!), 0, 0, Number(match[2])));
    }
    match = /^neg(32|64)?$/.exec(name);
    if (match) {
      this.expectOperands(name, operands, 1);
      const cls = match[1] === "32" ? InstructionClass.ALU : InstructionClass.ALU64;
      return this.push(makeInstruction(cls | AluOperation.NEG, this.register(operands[0]!), 0, 0, 0));
    }
    match = /^movsx(8|16|32)(32|64)$/.exec(name);
    if (match) {
      this.expectOperands(name, operands, 2);
      const cls = match[2] === "32" ? InstructionClass.ALU : InstructionClass.ALU64;
      return this.push(makeInstruction(cls | AluOperation.MOV | Source.X, this.register(operands[0]!), this.register(operands[1]!), Number(match[1]), 0));
    }
    match = /^ldx(s?)(b|h|w|dw)$/.exec(name);
    if (match) {
      this.expectOperands(name, operands, 2);
      const [base, offset] = this.memory(operands[1]!);
      const mode = match[1] === "s" ? Mode.MEMSX : Mode.MEM;
      return this.push(makeInstruction(InstructionClass.LDX | mode | sizes[match[2]!]!, this.register(operands[0]!), base, offset, 0));
    }
    match = /^st(x?)(b|h|w|dw)$/.exec(name);
    if (match) {
      this.expectOperands(name, operands, 2);
      const [base, offset] = this.memory(operands[0]!);
      const size = sizes[match[2]!]!;
      if (match[1] === "x") return this.push(makeInstruction(InstructionClass.STX | Mode.MEM | size, base, this.register(operands[1]!), offset, 0));
      return this.push(makeInstruction(InstructionClass.ST | Mode.MEM | size, base, 0, offset, this.integer32(operands[1]!)));
    }
    match = /^ld(abs|ind)(b|h|w)$/.exec(name);
    if (match) {
      const mode = match[1] === "abs" ? Mode.ABS : Mode.IND;
      this.expectOperands(name, operands, mode === Mode.ABS ? 1 : 2);
      const index = mode === Mode.IND ? this.register(operands[0]!) : 0;
      return this.push(makeInstruction(InstructionClass.LD | mode | sizes[match[2]!]!, 0, index, 0, this.integer32(operands[operands.length - 1]!)));
    }
    match = /^([a-z]+?)(32|64)?$/.exec(name);
    if (match && Object.hasOwn(aluOperations, match[1]!)) {
      const alu = aluOperations[match[1]!]!;
      this.expectOperands(name, operands, 2);
      const cls = match[2] === "32" ? InstructionClass.ALU : InstructionClass.ALU64;
      const dst = this.register(operands[0]!);
      const offset = alu.signed ? 1 : 0;
      if (this.isRegister(operands[1]!)) return this.push(makeInstruction(cls | alu.code | Source.X, dst, this.register(operands[1]!), offset, 0));
      return this.push(makeInstruction(cls | alu.code | Source.K, dst, 0, offset, this.integer32(operands[1]!)));
    }
    if (match && Object.hasOwn(jumpOperations, match[1]!)) {
      this.expectOperands(name, operands, 3);
      const cls = match[2] === "32" ? InstructionClass.JMP32 : InstructionClass.JMP;
      const code = jumpOperations[match[1]!]!;
      const dst = this.register(operands[0]!);
      const fromRegister = this.isRegister(operands[1]!);
      const src = fromRegister ? this.register(operands[1]!) : 0;
      const imm = fromRegister ? 0 : this.integer32(operands[1]!);
      const offset = this.jumpTarget(operands[2]!, "offset");
      return this.push(makeInstruction(cls | code | (fromRegister ? Source.X : Source.K), dst, src, offset, imm));
    }
    this.fail(`unknown mnemonic ${JSON.stringify(mnemonic)}`);
  }

  private lock(operands: string[]): void {
    let fetch = false;
    let rest = operands;
    if (rest[0] === "fetch") {
      fetch = true;
      rest = rest.slice(1);
    }
    if (rest.length !== 3) this.fail(`invalid number of operands for lock: expected [fetch] operation [base+offset], register`);
    const match = /^([a-z]+?)(32)?$/.exec(rest[0]!);
    if (!match || !Object.hasOwn(atomicOperations, match[1]!)) this.fail(`unknown atomic operation ${JSON.stringify(rest[0])}`);
    let code = atomicOperations[match![1]!]!;
    if (fetch) code |= AtomicOperation.FETCH;
    const [base, offset] = this.memory(rest[1]!);
    const size = match![2] === "32" ? Size.W : Size.DW;
    this.push(makeInstruction(InstructionClass.STX | Mode.ATOMIC | size, base, this.register(rest[2]!), offset, code));
  }

  private call(operands: string[]): void {
    if (operands.length === 1) {
      const target = operands[0]!;
      if (this.isRegister(target)) return this.push(makeInstruction(Opcode.CALLX, this.register(target), 0, 0, 0));
      return this.push(makeInstruction(Opcode.CALL, 0, CallSource.HELPER, 0, this.integer32(target)));
    }
    this.expectOperands("call", operands, 2);
    const [kind, target] = operands as [string, string];
    if (kind === "local") return this.push(makeInstruction(Opcode.CALL, 0, CallSource.LOCAL, 0, this.jumpTarget(target, "imm")));
    if (kind === "helper") return this.push(makeInstruction(Opcode.CALL, 0, CallSource.HELPER, 0, this.integer32(target)));
    if (kind === "runtime" || kind === "kfunc") return this.push(makeInstruction(Opcode.CALL, 0, CallSource.KFUNC, 0, this.integer32(target)));
    this.fail(`unknown call kind ${JSON.stringify(kind)}: use call N, call local label, call helper N, call runtime N or call %rN`);
  }

  private push(instruction: Instruction): void {
    this.instructions.push(instruction);
  }

  /** A jump target: `+N`/`-N` (returned) or a label (resolved later; 0 for now). */
  private jumpTarget(text: string, field: "offset" | "imm"): number {
    if (/^[+-]/.test(text)) {
      const value = this.parseInteger(text);
      const [min, max] = field === "offset" ? [-0x8000, 0x7fff] : [-0x8000_0000, 0x7fff_ffff];
      if (value < min || value > max) this.fail(`jump offset ${text} is out of range ${min}..${max}`);
      return Number(value);
    }
    if (!/^[A-Za-z_.$][\w.$]*$/.test(text)) this.fail(`invalid jump target ${JSON.stringify(text)}`);
    this.pending.push({ instructionIndex: this.instructions.length, label: text, line: this.line, field });
    return 0;
  }

  private resolveLabels(): void {
    const slots = slotIndexes(this.instructions);
    for (const use of this.pending) {
      let target = this.labels.get(use.label);
      if (target === undefined && use.label === "exit") target = this.firstExit;
      if (target === undefined) {
        throw new UsageError(operation, `line ${use.line}: invalid label ${JSON.stringify(use.label)}: it is never defined`);
      }
      const distance = slots[target]! - slots[use.instructionIndex]! - 1;
      const instruction = this.instructions[use.instructionIndex]!;
      if (use.field === "imm") {
        instruction.imm = distance;
      } else {
        if (distance < -0x8000 || distance > 0x7fff) {
          throw new UsageError(operation, `line ${use.line}: label ${use.label} is ${distance} instructions away, beyond the 16-bit jump range`);
        }
        instruction.offset = distance;
      }
    }
  }

  private isRegister(text: string): boolean {
    return text.startsWith("%");
  }

  private register(text: string): number {
    const match = /^%r(\d+)$/.exec(text);
    if (!match || Number(match[1]) > 10) this.fail(`invalid register ${JSON.stringify(text)}: use %r0 … %r10`);
    return Number(match![1]);
  }

  /** `[%rN]`, `[%rN+off]` or `[%rN-off]` → register, offset. */
  private memory(text: string): [number, number] {
    const match = /^\[(%r\d+)(?:([+-])([^\]]+))?\]$/.exec(text);
    if (!match) this.fail(`invalid memory operand ${JSON.stringify(text)}: expected [%rN+offset]`);
    const base = this.register(match![1]!);
    if (match![2] === undefined) return [base, 0];
    const magnitude = this.parseInteger(match![3]!);
    const value = match![2] === "-" ? -magnitude : magnitude;
    if (value < -0x8000n || value > 0x7fffn) this.fail(`memory offset ${match![2]}${match![3]} is out of the 16-bit range -32768..32767`);
    return [base, Number(value)];
  }

  /**
   * A 32-bit immediate: decimal -2^31 … 2^31-1, or hexadecimal up to 0xffffffff
   * (the bit pattern, so 0xffffffff is -1).
   */
  private integer32(text: string): number {
    const value = this.parseInteger(text);
    const hex = /^[+-]?0x/i.test(text);
    const max = hex ? 0xffff_ffffn : 0x7fff_ffffn;
    if (value < -0x8000_0000n || value > max) {
      this.fail(`immediate ${text} is out of the 32-bit range (${hex ? "-0x80000000 … 0xffffffff" : "-2147483648 … 2147483647"})`);
    }
    return Number(BigInt.asIntN(32, value));
  }

  private integer64(text: string): bigint {
    const value = this.parseInteger(text);
    if (value < -(1n << 63n) || value > (1n << 64n) - 1n) this.fail(`immediate ${text} is out of the 64-bit range`);
    return BigInt.asUintN(64, value);
  }

  private parseInteger(text: string): bigint {
    const match = /^([+-]?)(0x[0-9a-f]+|\d+)$/i.exec(text);
    if (!match) this.fail(`${JSON.stringify(text)} is not a number`);
    const magnitude = BigInt(match![2]!);
    return match![1] === "-" ? -magnitude : magnitude;
  }

  private expectOperands(mnemonic: string, operands: string[], count: number): void {
    if (operands.length !== count) {
      this.fail(`invalid number of operands for ${mnemonic}: expected ${count}, got ${operands.length}`);
    }
  }

  private fail(message: string): never {
    throw new UsageError(operation, `line ${this.line}: ${message}`);
  }
}
