import { argumentError, expectInstance, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { helperIdOf, type HelperName } from "./helpers.js";
import { fieldProblem, instructionError, type Instruction, makeInstruction, makeWideInstruction, slotIndexes } from "./instruction.js";
import {
  AluOperation,
  AtomicOperation,
  CallSource,
  Endianness,
  InstructionClass,
  JumpOperation,
  Mode,
  Opcode,
  PseudoSource,
  Size,
  Source,
} from "./opcodes.js";

/** A register by name: r0 return value, r1-r5 arguments, r6-r9 callee-saved, r10 read-only frame pointer. */
export type Register = "r0" | "r1" | "r2" | "r3" | "r4" | "r5" | "r6" | "r7" | "r8" | "r9" | "r10";

export const R0: Register = "r0";
export const R1: Register = "r1";
export const R2: Register = "r2";
export const R3: Register = "r3";
export const R4: Register = "r4";
export const R5: Register = "r5";
export const R6: Register = "r6";
export const R7: Register = "r7";
export const R8: Register = "r8";
export const R9: Register = "r9";
export const R10: Register = "r10";

/** A source operand: a register, or an immediate number. */
export type Operand = Register | number;

/** Memory access type: unsigned (`u`) or sign-extending (`s`, loads only) of 8-64 bits. */
export type AccessType = "u8" | "u16" | "u32" | "u64" | "s8" | "s16" | "s32";

/** Jump conditions, as llvm-objdump prints them; `s` prefix = signed, `&` = any common bit (jset). */
export type Condition = "==" | "!=" | ">" | ">=" | "<" | "<=" | "s>" | "s>=" | "s<" | "s<=" | "&";

export type AtomicOperationName = "add" | "or" | "and" | "xor";

/** Where the loader must put a map's file descriptor. */
export interface MapReference {
  /** Index into `instructions` of the lddw to patch. */
  instructionIndex: number;
  kind: "map-fd" | "map-value";
  /** The map's name, as given to loadMapFd / loadMapValue. */
  name: string;
  /** Offset into the map value (map-value only; 0 for map-fd). */
  offset: number;
}

/** The result of {@link Assembler.finish}: instructions with every label resolved. */
export interface AssembledProgram {
  instructions: Instruction[];
  /** lddw instructions whose map fd is to be filled in by {@link patchMapReferences}. */
  references: MapReference[];
  /** Label name → index into `instructions`. */
  labels: Map<string, number>;
}

const registerNumbers: Record<Register, number> = {
  r0: 0, r1: 1, r2: 2, r3: 3, r4: 4, r5: 5, r6: 6, r7: 7, r8: 8, r9: 9, r10: 10,
};

const conditionOperations: Record<Condition, number> = {
  "==": JumpOperation.JEQ,
  "!=": JumpOperation.JNE,
  ">": JumpOperation.JGT,
  ">=": JumpOperation.JGE,
  "<": JumpOperation.JLT,
  "<=": JumpOperation.JLE,
  "s>": JumpOperation.JSGT,
  "s>=": JumpOperation.JSGE,
  "s<": JumpOperation.JSLT,
  "s<=": JumpOperation.JSLE,
  "&": JumpOperation.JSET,
};

/** Sign-extending access: a bit above the size field's. */
const signedAccess = 0x100;

// Every table below maps names to numbers, and every lookup checks for a number: a
// name inherited from Object.prototype ("constructor", "__proto__") is never one.
const accessSizes: Record<AccessType, number> = {
  u8: Size.B,
  u16: Size.H,
  u32: Size.W,
  u64: Size.DW,
  s8: Size.B | signedAccess,
  s16: Size.H | signedAccess,
  s32: Size.W | signedAccess,
};

const atomicOperations: Record<AtomicOperationName, number> = {
  add: AtomicOperation.ADD,
  or: AtomicOperation.OR,
  and: AtomicOperation.AND,
  xor: AtomicOperation.XOR,
};

/** What a pending label reference patches. */
type LabelUse = "offset" | "call" | "jump-auto" | "function-address";

interface Item {
  instruction: Instruction;
  label?: { name: string; use: LabelUse };
  reference?: { kind: "map-fd" | "map-value"; name: string; offset: number };
}

const operation = "assemble eBPF";

/** Number of a register name; throws a UsageError for anything else. */
export function registerNumber(register: Register, parameter = "register"): number {
  const number = registerNumbers[register];
  if (typeof number !== "number") throw argumentError(operation, parameter, "a register (r0 … r10, the R0 … R10 constants)", register);
  return number;
}

/**
 * Checks an immediate. 64-bit operations sign-extend the 32-bit immediate, so
 * they take -2^31 … 2^31-1; 32-bit ones also take 2^31 … 2^32-1 (same bits).
 */
function immediate(value: number, narrow: boolean, parameter: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < -0x8000_0000 || value > (narrow ? 0xffff_ffff : 0x7fff_ffff)) {
    const expected = narrow
      ? "a register or an integer that fits in 32 bits (-2147483648 … 4294967295)"
      : "a register or an integer that fits in a sign-extended 32-bit immediate (-2147483648 … 2147483647; load larger ones with loadImmediate64, or use the 32-bit form)";
    throw argumentError(operation, parameter, expected, value);
  }
  return value | 0;
}

function checkOffset(offset: number): number {
  if (typeof offset !== "number" || !Number.isInteger(offset) || offset < -0x8000 || offset > 0x7fff) {
    throw argumentError(operation, "offset", "an integer that fits in a signed 16-bit field (-32768 … 32767; add more to the base register first)", offset);
  }
  return offset;
}

/** A label or map name. */
function checkName(name: string, parameter: string): void {
  if (typeof name !== "string" || name.length === 0) throw argumentError(operation, parameter, "a non-empty string", name);
}

const anyByteOrderBits: readonly number[] = [16, 32, 64];
const signExtend64Bits: readonly number[] = [8, 16, 32];
const signExtend32Bits: readonly number[] = [8, 16];

function checkBits<T extends number>(bits: T, allowed: readonly number[]): T {
  if (!allowed.includes(bits)) throw argumentError(operation, "bits", `one of ${allowed.join(", ")}`, bits);
  return bits;
}

/** The size field of an access type, with {@link signedAccess} for the sign-extending ones. */
function accessSize(type: AccessType): number {
  const access = accessSizes[type];
  if (typeof access !== "number") throw argumentError(operation, "type", "an access type: u8 u16 u32 u64 (or s8 s16 s32 for loads)", type);
  return access;
}

function packetAccessSize(type: "u8" | "u16" | "u32"): number {
  const access = accessSizes[type];
  if (typeof access !== "number" || access >= Size.DW) throw argumentError(operation, "type", "u8, u16 or u32 for a packet load", type);
  return access;
}

function isRegister(operand: Operand): operand is Register {
  return typeof operand === "string";
}

/**
 * Builds an eBPF program instruction by instruction, with symbolic labels for
 * jumps and local calls (resolved by {@link finish}) and symbolic map
 * references (filled in by the loader through {@link patchMapReferences}).
 *
 * Every method returns `this`, so calls chain:
 *
 * ```ts
 * const program = new Assembler()
 *   .load("u16", R2, R1, 12)
 *   .jumpIf(R2, "!=", 0x0008, "drop")
 *   .mov64(R0, 1).exit()
 *   .label("drop").mov64(R0, 0).exit()
 *   .finish();
 * ```
 */
export class Assembler {
  private readonly items: Item[] = [];
  private readonly labelIndexes = new Map<string, number>();
  private labelCounter = 0;
  /** Names used by jumps and calls, defined or not yet. */
  private readonly referencedLabels = new Set<string>();
  /** Allow `jump(label)` to become the 32-bit-offset `gotol` (JMP32|JA, kernel ≥ 6.6) when the target is too far. */
  readonly allowLongJumps: boolean;

  constructor(options: { allowLongJumps?: boolean } = {}) {
    const { allowLongJumps = true } = expectObject<{ allowLongJumps?: unknown }>(operation, "options", options);
    if (typeof allowLongJumps !== "boolean") throw argumentError(operation, "options.allowLongJumps", "a boolean", allowLongJumps);
    this.allowLongJumps = allowLongJumps;
  }

  /** Number of instructions so far (an lddw counts once). */
  get length(): number {
    return this.items.length;
  }

  /** Marks the position of the next instruction with `name`. */
  label(name: string): this {
    checkName(name, "name");
    if (this.labelIndexes.has(name)) {
      throw new UsageError(operation, `label ${JSON.stringify(name)} is defined twice (first at instruction ${this.labelIndexes.get(name)}, again at ${this.items.length})`);
    }
    this.labelIndexes.set(name, this.items.length);
    return this;
  }

  /**
   * A label name not used yet in this builder (nor handed out before), for
   * code generators: `const done = a.newLabel("done"); … a.label(done)`.
   */
  newLabel(prefix = "L"): string {
    expectString(operation, "prefix", prefix);
    let name: string;
    do name = `${prefix}${this.labelCounter++}`;
    while (this.labelIndexes.has(name) || this.referencedLabels.has(name));
    return name;
  }

  /** True when `name` has been placed with {@link label}. */
  hasLabel(name: string): boolean {
    checkName(name, "name");
    return this.labelIndexes.has(name);
  }

  /** Appends instructions as they are (jump offsets in them are taken literally). */
  raw(...instructions: Instruction[]): this {
    for (let i = 0; i < instructions.length; i++) {
      const problem = fieldProblem(instructions[i]!);
      if (problem !== undefined) throw instructionError(operation, `instructions[${i}]`, instructions[i], problem);
    }
    for (const instruction of instructions) this.items.push({ instruction: { ...instruction } });
    return this;
  }

  /**
   * Appends another builder's instructions, labels and map references, e.g. a
   * subprogram placed after the main program. Label names must not clash.
   */
  append(other: Assembler): this {
    expectInstance(operation, "other", other, Assembler, "an Assembler");
    const base = this.items.length;
    for (const [name, index] of other.labelIndexes) {
      if (this.labelIndexes.has(name)) throw new UsageError(operation, `appending defines label ${JSON.stringify(name)} a second time`, "give subprogram labels distinct names");
      this.labelIndexes.set(name, base + index);
    }
    for (const item of other.items) {
      this.items.push({ ...item, instruction: { ...item.instruction } });
      if (item.label) this.referencedLabels.add(item.label.name);
    }
    return this;
  }

  // ---- ALU ---------------------------------------------------------------

  /** dst = src (64-bit). */
  mov64(dst: Register, source: Operand): this { return this.alu(AluOperation.MOV, true, dst, source); }
  /** dst = (u32)src, upper half cleared. */
  mov32(dst: Register, source: Operand): this { return this.alu(AluOperation.MOV, false, dst, source); }
  add64(dst: Register, source: Operand): this { return this.alu(AluOperation.ADD, true, dst, source); }
  add32(dst: Register, source: Operand): this { return this.alu(AluOperation.ADD, false, dst, source); }
  sub64(dst: Register, source: Operand): this { return this.alu(AluOperation.SUB, true, dst, source); }
  sub32(dst: Register, source: Operand): this { return this.alu(AluOperation.SUB, false, dst, source); }
  mul64(dst: Register, source: Operand): this { return this.alu(AluOperation.MUL, true, dst, source); }
  mul32(dst: Register, source: Operand): this { return this.alu(AluOperation.MUL, false, dst, source); }
  /** Unsigned division; division by zero gives 0. */
  div64(dst: Register, source: Operand): this { return this.alu(AluOperation.DIV, true, dst, source); }
  div32(dst: Register, source: Operand): this { return this.alu(AluOperation.DIV, false, dst, source); }
  /** Signed division (cpu v4). */
  signedDiv64(dst: Register, source: Operand): this { return this.alu(AluOperation.DIV, true, dst, source, 1); }
  signedDiv32(dst: Register, source: Operand): this { return this.alu(AluOperation.DIV, false, dst, source, 1); }
  /** Unsigned modulo; modulo by zero leaves dst unchanged. */
  mod64(dst: Register, source: Operand): this { return this.alu(AluOperation.MOD, true, dst, source); }
  mod32(dst: Register, source: Operand): this { return this.alu(AluOperation.MOD, false, dst, source); }
  /** Signed modulo (cpu v4). */
  signedMod64(dst: Register, source: Operand): this { return this.alu(AluOperation.MOD, true, dst, source, 1); }
  signedMod32(dst: Register, source: Operand): this { return this.alu(AluOperation.MOD, false, dst, source, 1); }
  or64(dst: Register, source: Operand): this { return this.alu(AluOperation.OR, true, dst, source); }
  or32(dst: Register, source: Operand): this { return this.alu(AluOperation.OR, false, dst, source); }
  and64(dst: Register, source: Operand): this { return this.alu(AluOperation.AND, true, dst, source); }
  and32(dst: Register, source: Operand): this { return this.alu(AluOperation.AND, false, dst, source); }
  xor64(dst: Register, source: Operand): this { return this.alu(AluOperation.XOR, true, dst, source); }
  xor32(dst: Register, source: Operand): this { return this.alu(AluOperation.XOR, false, dst, source); }
  /** Left shift; the amount is masked to 0-63. */
  leftShift64(dst: Register, source: Operand): this { return this.alu(AluOperation.LSH, true, dst, source); }
  leftShift32(dst: Register, source: Operand): this { return this.alu(AluOperation.LSH, false, dst, source); }
  /** Logical right shift. */
  rightShift64(dst: Register, source: Operand): this { return this.alu(AluOperation.RSH, true, dst, source); }
  rightShift32(dst: Register, source: Operand): this { return this.alu(AluOperation.RSH, false, dst, source); }
  /** Arithmetic (sign-propagating) right shift. */
  arithmeticRightShift64(dst: Register, source: Operand): this { return this.alu(AluOperation.ARSH, true, dst, source); }
  arithmeticRightShift32(dst: Register, source: Operand): this { return this.alu(AluOperation.ARSH, false, dst, source); }
  neg64(dst: Register): this { return this.emit(makeInstruction(InstructionClass.ALU64 | AluOperation.NEG, registerNumber(dst, "dst"), 0, 0, 0)); }
  neg32(dst: Register): this { return this.emit(makeInstruction(InstructionClass.ALU | AluOperation.NEG, registerNumber(dst, "dst"), 0, 0, 0)); }

  /** dst = the low `bits` of src, sign-extended to 64 bits (cpu v4). */
  movSignExtend64(dst: Register, source: Register, bits: 8 | 16 | 32): this {
    return this.emit(makeInstruction(InstructionClass.ALU64 | AluOperation.MOV | Source.X, registerNumber(dst, "dst"), registerNumber(source, "source"), checkBits(bits, signExtend64Bits), 0));
  }
  /** dst = the low `bits` of src, sign-extended to 32 bits, upper half cleared (cpu v4). */
  movSignExtend32(dst: Register, source: Register, bits: 8 | 16): this {
    return this.emit(makeInstruction(InstructionClass.ALU | AluOperation.MOV | Source.X, registerNumber(dst, "dst"), registerNumber(source, "source"), checkBits(bits, signExtend32Bits), 0));
  }

  /** Converts the low `bits` of dst to big-endian (network order), zero-extending. */
  toBigEndian(dst: Register, bits: 16 | 32 | 64): this {
    return this.emit(makeInstruction(InstructionClass.ALU | AluOperation.END | Endianness.TO_BE, registerNumber(dst, "dst"), 0, 0, checkBits(bits, anyByteOrderBits)));
  }
  /** Converts the low `bits` of dst to little-endian (truncates on a little-endian host). */
  toLittleEndian(dst: Register, bits: 16 | 32 | 64): this {
    return this.emit(makeInstruction(InstructionClass.ALU | AluOperation.END | Endianness.TO_LE, registerNumber(dst, "dst"), 0, 0, checkBits(bits, anyByteOrderBits)));
  }
  /** Reverses the byte order of the low `bits` unconditionally (cpu v4 `bswap`). */
  byteSwap(dst: Register, bits: 16 | 32 | 64): this {
    return this.emit(makeInstruction(InstructionClass.ALU64 | AluOperation.END, registerNumber(dst, "dst"), 0, 0, checkBits(bits, anyByteOrderBits)));
  }

  // ---- 64-bit immediates and maps -------------------------------------------

  /** dst = a 64-bit constant (lddw, two slots). */
  loadImmediate64(dst: Register, value: bigint | number): this {
    if (typeof value !== "bigint" && !Number.isInteger(value)) throw argumentError(operation, "value", "a bigint or an integer", value);
    return this.emit(makeWideInstruction(registerNumber(dst, "dst"), PseudoSource.IMMEDIATE, value));
  }

  /** dst = pointer to the map called `mapName` (its fd is patched in at load time). */
  loadMapFd(dst: Register, mapName: string): this {
    checkName(mapName, "mapName");
    this.items.push({
      instruction: makeWideInstruction(registerNumber(dst, "dst"), PseudoSource.MAP_FD, 0),
      reference: { kind: "map-fd", name: mapName, offset: 0 },
    });
    return this;
  }

  /** dst = pointer to byte `offset` of the value of the (array) map `mapName`, e.g. a global variable section. */
  loadMapValue(dst: Register, mapName: string, offset = 0): this {
    checkName(mapName, "mapName");
    expectInteger(operation, "offset", offset, 0, 0xffff_ffff);
    this.items.push({
      instruction: makeWideInstruction(registerNumber(dst, "dst"), PseudoSource.MAP_VALUE, BigInt(offset) << 32n),
      reference: { kind: "map-value", name: mapName, offset },
    });
    return this;
  }

  /** dst = address of the local function at `label` (for callbacks such as bpf_loop). */
  loadFunctionAddress(dst: Register, label: string): this {
    checkName(label, "label");
    this.pushLabelled(makeWideInstruction(registerNumber(dst, "dst"), PseudoSource.FUNC, 0), label, "function-address");
    return this;
  }

  // ---- memory --------------------------------------------------------------

  /** dst = *(type *)(base + offset); `s` types sign-extend (cpu v4). */
  load(type: AccessType, dst: Register, base: Register, offset: number): this {
    const access = accessSize(type);
    const mode = access > Size.DW ? Mode.MEMSX : Mode.MEM;
    return this.emit(makeInstruction(InstructionClass.LDX | mode | (access & Size.DW), registerNumber(dst, "dst"), registerNumber(base, "base"), checkOffset(offset), 0));
  }

  /** *(type *)(base + offset) = value (a register, or a 32-bit immediate sign-extended for u64). */
  store(type: AccessType, base: Register, offset: number, value: Operand): this {
    const size = accessSize(type);
    if (size > Size.DW) throw argumentError(operation, "type", "an unsigned type (u8 … u64) for a store", type);
    if (isRegister(value)) {
      return this.emit(makeInstruction(InstructionClass.STX | Mode.MEM | size, registerNumber(base, "base"), registerNumber(value, "value"), checkOffset(offset), 0));
    }
    return this.emit(makeInstruction(InstructionClass.ST | Mode.MEM | size, registerNumber(base, "base"), 0, checkOffset(offset), immediate(value, size !== Size.DW, "value")));
  }

  /**
   * Atomic read-modify-write of a u32 or u64 in memory: *(type *)(base + offset) op= source.
   * With `fetch`, source receives the old value.
   */
  atomic(type: "u32" | "u64", operationName: AtomicOperationName, base: Register, offset: number, source: Register, options: { fetch?: boolean } = {}): this {
    const code = atomicOperations[operationName];
    if (typeof code !== "number") throw argumentError(operation, "operationName", "one of add, or, and, xor", operationName);
    if (typeof options !== "object" || options === null) throw argumentError(operation, "options", "an object", options);
    const fetch = options.fetch;
    if (fetch !== undefined && typeof fetch !== "boolean") throw argumentError(operation, "options.fetch", "true or false", fetch);
    return this.atomicRaw(type, base, offset, source, code | (fetch === true ? AtomicOperation.FETCH : 0));
  }

  /** source = exchange(*(type *)(base + offset), source). */
  atomicExchange(type: "u32" | "u64", base: Register, offset: number, source: Register): this {
    return this.atomicRaw(type, base, offset, source, AtomicOperation.XCHG);
  }

  /** r0 = compare-and-exchange(*(type *)(base + offset), expected r0, new value source). */
  atomicCompareExchange(type: "u32" | "u64", base: Register, offset: number, source: Register): this {
    return this.atomicRaw(type, base, offset, source, AtomicOperation.CMPXCHG);
  }

  /** Legacy packet load (socket filters, tc): r0 = ntoh(packet[offset]); r6 must hold the skb. Ends the program with 0 when out of bounds. */
  loadPacketAbsolute(type: "u8" | "u16" | "u32", offset: number): this {
    const size = packetAccessSize(type);
    return this.emit(makeInstruction(InstructionClass.LD | Mode.ABS | size, 0, 0, 0, immediate(offset, false, "offset")));
  }

  /** Legacy packet load: r0 = ntoh(packet[index + offset]). */
  loadPacketIndirect(type: "u8" | "u16" | "u32", index: Register, offset: number): this {
    const size = packetAccessSize(type);
    return this.emit(makeInstruction(InstructionClass.LD | Mode.IND | size, 0, registerNumber(index, "index"), 0, immediate(offset, false, "offset")));
  }

  // ---- control flow --------------------------------------------------------

  /** Unconditional jump to `label`; becomes `gotol` (32-bit offset) when the target is out of 16-bit range and long jumps are allowed. */
  jump(label: string): this {
    checkName(label, "label");
    this.pushLabelled(makeInstruction(Opcode.JA, 0, 0, 0, 0), label, "jump-auto");
    return this;
  }

  /**
   * `may_goto label` (kernel ≥ 6.9): falls through until the kernel's loop budget for
   * this run is spent, then jumps. At a loop head it lets the verifier check the body
   * once the loop state stops growing instead of unrolling every iteration.
   */
  mayGoto(label: string): this {
    checkName(label, "label");
    this.pushLabelled(makeInstruction(Opcode.MAY_GOTO, 0, 0, 0, 0), label, "offset");
    return this;
  }

  /** if (dst <condition> operand) goto label, comparing all 64 bits (immediates are sign-extended). */
  jumpIf(dst: Register, condition: Condition, operand: Operand, label: string): this {
    return this.conditional(InstructionClass.JMP, dst, condition, operand, label);
  }

  /** if ((u32)dst <condition> (u32)operand) goto label (cpu v3). */
  jumpIf32(dst: Register, condition: Condition, operand: Operand, label: string): this {
    return this.conditional(InstructionClass.JMP32, dst, condition, operand, label);
  }

  /** Calls a kernel helper by name (`"map_lookup_elem"` or `"bpf_map_lookup_elem"`) or id. */
  call(helper: HelperName | (string & {}) | number): this {
    const id = typeof helper === "number" ? helper : typeof helper === "string" ? helperIdOf(helper) : undefined;
    if (id === undefined || !Number.isInteger(id) || id < 0 || id > 0x7fff_ffff) {
      throw argumentError(operation, "helper", "a known helper name (from helperIds) or a numeric id", helper);
    }
    return this.emit(makeInstruction(Opcode.CALL, 0, CallSource.HELPER, 0, id));
  }

  /** bpf-to-bpf call of the local function at `label`. */
  callLocal(label: string): this {
    checkName(label, "label");
    this.pushLabelled(makeInstruction(Opcode.CALL, 0, CallSource.LOCAL, 0, 0), label, "call");
    return this;
  }

  /** Calls a kernel function (kfunc) by its BTF id (and module BTF fd index in `offset`, 0 for vmlinux). */
  callKernelFunction(btfId: number, moduleIndex = 0): this {
    expectInteger(operation, "btfId", btfId, 0, 0x7fff_ffff);
    expectInteger(operation, "moduleIndex", moduleIndex, 0, 0x7fff);
    return this.emit(makeInstruction(Opcode.CALL, 0, CallSource.KFUNC, moduleIndex, btfId));
  }

  exit(): this {
    return this.emit(makeInstruction(Opcode.EXIT, 0, 0, 0, 0));
  }

  /** Shorthand for `mov64(r0, value).exit()`. */
  return(value: Operand): this {
    return this.alu(AluOperation.MOV, true, R0, value, 0, "value").exit();
  }

  // ---- finishing -----------------------------------------------------------

  /**
   * Resolves every label and returns the program. Throws a UsageError for an
   * unknown label, or for a jump whose offset does not fit in 16 bits.
   */
  finish(): AssembledProgram {
    const instructions = this.items.map((item) => ({ ...item.instruction }));
    // Converting a jump to gotol changes no sizes, so one pass decides which jumps need it.
    const slots = slotIndexes(instructions);
    for (let i = 0; i < this.items.length; i++) {
      const label = this.items[i]!.label;
      if (!label) continue;
      const target = this.labelIndexes.get(label.name);
      if (target === undefined) {
        throw new UsageError(operation, `instruction ${i} refers to label ${JSON.stringify(label.name)}, which is never defined`, "add .label(name) at the target");
      }
      const distance = slots[target]! - slots[i]! - 1;
      const instruction = instructions[i]!;
      switch (label.use) {
        case "call":
          instruction.imm = distance;
          break;
        case "function-address":
          instruction.imm = distance;
          instruction.imm64 = BigInt.asUintN(64, BigInt(distance));
          break;
        case "jump-auto":
        case "offset":
          if (distance >= -0x8000 && distance <= 0x7fff) {
            instruction.offset = distance;
          } else if (label.use === "jump-auto" && this.allowLongJumps) {
            instruction.opcode = Opcode.JA32;
            instruction.offset = 0;
            instruction.imm = distance;
          } else {
            throw new UsageError(
              operation,
              `instruction ${i}: the jump to ${JSON.stringify(label.name)} is ${distance} instructions away, beyond the 16-bit offset range -32768..32767`,
              label.use === "offset" ? "jump over a short conditional to an unconditional jump(), which can use a 32-bit offset" : "allow long jumps (needs kernel ≥ 6.6)",
            );
          }
          break;
      }
    }
    const references: MapReference[] = [];
    this.items.forEach((item, index) => {
      if (item.reference) references.push({ instructionIndex: index, ...item.reference });
    });
    return { instructions, references, labels: new Map(this.labelIndexes) };
  }

  // ---- internals -------------------------------------------------------------

  private pushLabelled(instruction: Instruction, name: string, use: LabelUse): void {
    this.items.push({ instruction, label: { name, use } });
    this.referencedLabels.add(name);
  }

  private emit(instruction: Instruction): this {
    this.items.push({ instruction });
    return this;
  }

  private alu(aluOperation: number, wide: boolean, dst: Register, source: Operand, offset = 0, sourceName = "source"): this {
    const cls = wide ? InstructionClass.ALU64 : InstructionClass.ALU;
    const dstNumber = registerNumber(dst, "dst");
    if (isRegister(source)) {
      return this.emit(makeInstruction(cls | aluOperation | Source.X, dstNumber, registerNumber(source, sourceName), offset, 0));
    }
    return this.emit(makeInstruction(cls | aluOperation | Source.K, dstNumber, 0, offset, immediate(source, !wide, sourceName)));
  }

  private conditional(cls: number, dst: Register, condition: Condition, operand: Operand, label: string): this {
    const jumpOperation = conditionOperations[condition];
    if (typeof jumpOperation !== "number") {
      throw argumentError(operation, "condition", `one of ${Object.keys(conditionOperations).join(" ")}`, condition);
    }
    checkName(label, "label");
    const dstNumber = registerNumber(dst, "dst");
    const instruction = isRegister(operand)
      ? makeInstruction(cls | jumpOperation | Source.X, dstNumber, registerNumber(operand, "operand"), 0, 0)
      : makeInstruction(cls | jumpOperation | Source.K, dstNumber, 0, 0, immediate(operand, cls === InstructionClass.JMP32, "operand"));
    this.pushLabelled(instruction, label, "offset");
    return this;
  }

  private atomicRaw(type: "u32" | "u64", base: Register, offset: number, source: Register, code: number): this {
    if (type !== "u32" && type !== "u64") throw argumentError(operation, "type", "u32 or u64 for an atomic operation", type);
    const size = type === "u32" ? Size.W : Size.DW;
    return this.emit(makeInstruction(InstructionClass.STX | Mode.ATOMIC | size, registerNumber(base, "base"), registerNumber(source, "source"), checkOffset(offset), code));
  }
}

/**
 * Returns a copy of `program.instructions` with map file descriptors filled in.
 * `fds` maps each referenced map name to its fd; a missing name is an error.
 */
export function patchMapReferences(
  program: Pick<AssembledProgram, "instructions" | "references">,
  fds: ReadonlyMap<string, number> | Readonly<Record<string, number>>,
): Instruction[] {
  const lookup = (name: string): number | undefined =>
    fds instanceof Map ? fds.get(name) : Object.hasOwn(fds, name) ? (fds as Record<string, number>)[name] : undefined;
  const instructions = program.instructions.map((instruction) => ({ ...instruction }));
  for (const reference of program.references) {
    const fd = lookup(reference.name);
    if (fd === undefined || !Number.isInteger(fd) || fd < 0) {
      throw new UsageError("patch map references", `no file descriptor for map ${JSON.stringify(reference.name)} (instruction ${reference.instructionIndex})`, "create the map first and pass its fd");
    }
    const instruction = instructions[reference.instructionIndex];
    if (!instruction || instruction.opcode !== Opcode.LDDW) {
      throw new UsageError("patch map references", `instruction ${reference.instructionIndex} is not a 64-bit immediate load`);
    }
    const pseudo = reference.kind === "map-fd" ? PseudoSource.MAP_FD : PseudoSource.MAP_VALUE;
    const high = reference.kind === "map-fd" ? 0n : BigInt(reference.offset);
    Object.assign(instruction, makeWideInstruction(instruction.dst, pseudo, (high << 32n) | BigInt(fd)));
  }
  return instructions;
}
