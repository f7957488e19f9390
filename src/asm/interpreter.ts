import { argumentError, describeValue, expectBoolean, expectFunction, expectInteger, expectObject } from "../sys/argument-checks.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { type Instruction, decode, slotIndexes, validateInstructions, wideValue } from "./instruction.js";
import { CallSource, Opcode } from "./opcodes.js";
import type { ContextModel } from "./contexts.js";

/** Why a run failed. */
export type ExecutionFailure =
  | "out-of-bounds"
  | "instruction-limit"
  | "unknown-helper"
  | "unsupported"
  | "call-depth"
  | "end-of-program";

/** A program misbehaved while running in the interpreter. */
export class ExecutionError extends NetbpfError {
  readonly failure: ExecutionFailure;
  /** Index into the instruction list (an lddw counts once). */
  readonly instructionIndex: number;
  readonly slot: number;

  constructor(failure: ExecutionFailure, instructionIndex: number, slot: number, message: string, hint?: string) {
    super("run eBPF program", `instruction ${instructionIndex} (slot ${slot}): ${message}`, hint);
    this.failure = failure;
    this.instructionIndex = instructionIndex;
    this.slot = slot;
  }
}

/** What a helper sees: its arguments (r1-r5) and the program's memory. */
export interface HelperContext {
  /** r1 … r5 as unsigned 64-bit values. */
  readonly arguments: readonly [bigint, bigint, bigint, bigint, bigint];
  /** Reads `length` bytes at a program address (a copy); throws on out-of-bounds. */
  read(address: bigint, length: number): Uint8Array;
  /** Writes bytes at a program address; throws on out-of-bounds. */
  write(address: bigint, bytes: Uint8Array): void;
  /** The input memory (the packet), as given to run(). */
  readonly packet: Uint8Array;
  /** Makes `bytes` addressable for the rest of this run and returns its address (e.g. a map value). */
  map(bytes: Uint8Array): bigint;
  /** Ends the program after this helper returns, with r0 = returnValue. */
  stop(returnValue: bigint | number): void;
  /** Bytes of the packet a context's data_end field lets the program read directly (an skb's linear part). */
  readonly linearLength: number;
  /**
   * Moves data_end to `length` bytes into the packet (at most its size), as bpf_skb_pull_data
   * does when it makes more of an skb linear: data_end loaded afterwards points there.
   */
  setLinearLength(length: number): void;
}

/** A helper function: returns the new r0 (undefined = 0). */
export type Helper = (context: HelperContext) => bigint | number | void;

export interface InterpreterOptions {
  /** Helper functions by id. */
  helpers?: ReadonlyMap<number, Helper> | Readonly<Record<number, Helper>>;
  /** Most instructions one run may execute (default 1,000,000). */
  instructionLimit?: number;
  /** Value of a pseudo 64-bit load (src 1-6: map fd, map value, …); without it, such loads fail. */
  resolvePseudoLoad?: (src: number, value: bigint, instructionIndex: number) => bigint;
  /** Check the program with validateInstructions first (default true). */
  validate?: boolean;
}

export interface InterpreterRunOptions {
  /**
   * Give the program a context in r1 (see xdpContext, socketBufferContext)
   * whose data/data_end fields point into `memory`; r2 is then 0.
   */
  context?: ContextModel;
  /** Initial r1 … r5 instead of (memory address, memory length). Values, not pointers: use `interpreter.map` addresses. */
  registers?: Partial<Record<1 | 2 | 3 | 4 | 5, bigint | number>>;
  /**
   * With a context: how many bytes data_end lets the program read directly (default: all of
   * `memory`). Less models a non-linear skb, whose other bytes only helpers (bpf_skb_load_bytes,
   * LD_ABS) read until bpf_skb_pull_data makes them linear (see packetHelpers).
   */
  linearLength?: number;
}

export interface RunResult {
  /** r0 at exit, unsigned 64-bit. */
  returnValue: bigint;
  /** Instructions executed. */
  instructionCount: number;
}

/** Bytes of stack per frame, as in the kernel. */
export const stackSize = 512;
const maximumCallDepth = 8;
const packetRegion = 1;
const stackRegion = 2;
const contextRegion = 3;
const twoTo32 = 4294967296;

const runOperation = "run eBPF program";
const registerKeys: readonly string[] = ["1", "2", "3", "4", "5"];

/** Checks the memory given to run(): a few typeof tests, as run() is called per packet. */
export function checkRunMemory(memory: unknown): void {
  if (!(memory instanceof Uint8Array)) throw argumentError(runOperation, "memory", "a Uint8Array (or Buffer)", memory);
}

/** Checks run()'s options (without registers' values, see initialRegisterValue) before anything changes. */
export function checkRunOptions(options: InterpreterRunOptions): void {
  if (typeof options !== "object" || options === null) throw argumentError(runOperation, "options", "an object", options);
  const { linearLength, context, registers } = options;
  if (linearLength !== undefined && (typeof linearLength !== "number" || !Number.isInteger(linearLength) || linearLength < 0)) {
    throw argumentError(runOperation, "options.linearLength", "a non-negative integer", linearLength);
  }
  if (context !== undefined && (typeof context !== "object" || context === null || typeof context.writeFields !== "function" || typeof context.size !== "number" || !(context.pointerFields instanceof Map))) {
    throw argumentError(runOperation, "options.context", "a context model (from xdpContext or socketBufferContext)", context);
  }
  if (registers !== undefined && (typeof registers !== "object" || registers === null)) {
    throw argumentError(runOperation, "options.registers", "an object of initial values by register number (1 … 5)", registers);
  }
}

/** Checks the options of an Interpreter or a JavaScriptProgram; gives its helpers by id. */
export function checkInterpreterOptions(operation: string, options: InterpreterOptions): Map<number, Helper> {
  const { helpers = new Map<number, Helper>(), instructionLimit, resolvePseudoLoad, validate } = expectObject<InterpreterOptions>(operation, "options", options);
  if (instructionLimit !== undefined) expectInteger(operation, "options.instructionLimit", instructionLimit, 1);
  if (resolvePseudoLoad !== undefined) expectFunction(operation, "options.resolvePseudoLoad", resolvePseudoLoad);
  expectBoolean(operation, "options.validate", validate, true);
  expectObject(operation, "options.helpers", helpers);
  const byId = new Map<number, Helper>();
  for (const [key, helper] of helpers instanceof Map ? helpers : Object.entries(helpers)) {
    const id = typeof key === "string" && /^\d+$/.test(key) ? Number(key) : key;
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0x7fff_ffff) {
      throw new UsageError(operation, `options.helpers: the key ${describeValue(key)} is not a helper id (an integer from 0 to 2147483647)`);
    }
    byId.set(id, expectFunction<Helper>(operation, `options.helpers[${id}]`, helper));
  }
  return byId;
}

/** An initial value for r1 … r5 from run()'s options.registers, as an unsigned 64-bit value. */
export function initialRegisterValue(register: string, value: unknown): bigint {
  if (!registerKeys.includes(register)) throw new UsageError(runOperation, `options.registers: r${register} cannot be set; only r1 … r5`);
  if (typeof value !== "bigint" && !Number.isInteger(value)) throw argumentError(runOperation, `options.registers[${register}]`, "an integer or a bigint", value);
  return BigInt.asUintN(64, BigInt(value as number | bigint));
}

interface Frame {
  returnSlot: number;
  saved: Uint32Array;
}

/**
 * Executes eBPF in user space. Memory is a set of regions, each addressed as
 * `(region << 32) + offset`: region 1 is the input memory (r1 points at it,
 * r2 holds its length), region 2 the stack (r10 points at its top, 512 bytes
 * per call frame), further regions come from {@link HelperContext.map}.
 * Every access is bounds-checked. Registers are pairs of 32-bit halves, so
 * the common operations need no BigInt.
 */
export class Interpreter {
  private readonly opcodes: Uint8Array;
  private readonly dsts: Uint8Array;
  private readonly srcs: Uint8Array;
  private readonly offsets: Int16Array;
  private readonly immediates: Int32Array;
  /** High word of the lddw constant, at the lddw's slot. */
  private readonly wideHigh: Uint32Array;
  private readonly slotToIndex: Int32Array;
  private readonly instructions: Instruction[];
  private readonly helpers: Map<number, Helper>;
  private readonly instructionLimit: number;
  private readonly resolvePseudoLoad: InterpreterOptions["resolvePseudoLoad"];

  private readonly regions: (Uint8Array | undefined)[] = [];
  private readonly views: (DataView | undefined)[] = [];
  private lastMemory: Uint8Array | undefined;
  private lastMemoryView: DataView = new DataView(new ArrayBuffer(0));
  private readonly stack = new Uint8Array(stackSize * maximumCallDepth);
  private readonly stackView = new DataView(this.stack.buffer);
  private readonly high = new Uint32Array(11);
  private readonly low = new Uint32Array(11);
  private stopValue: bigint | undefined;
  private currentSlot = 0;
  private resolvedOffset = 0;
  private resolvedRegion = 0;
  private contextPointers: ContextModel["pointerFields"] | undefined;
  private contextBytes = new Uint8Array(0);
  private contextView = new DataView(this.contextBytes.buffer);
  private packetEnd = 0;

  constructor(program: readonly Instruction[] | Uint8Array, options: InterpreterOptions = {}) {
    if (!(program instanceof Uint8Array) && !Array.isArray(program)) {
      throw new UsageError("run eBPF program", "the program must be an Instruction[] or the encoded bytes (Uint8Array)");
    }
    this.helpers = checkInterpreterOptions("run eBPF program", options);
    this.instructions = program instanceof Uint8Array ? decode(program) : program.map((instruction) => ({ ...instruction }));
    if (options.validate ?? true) validateInstructions(this.instructions);
    const slots = slotIndexes(this.instructions);
    const total = slots[this.instructions.length]!;
    this.opcodes = new Uint8Array(total);
    this.dsts = new Uint8Array(total);
    this.srcs = new Uint8Array(total);
    this.offsets = new Int16Array(total);
    this.immediates = new Int32Array(total);
    this.wideHigh = new Uint32Array(total);
    this.slotToIndex = new Int32Array(total);
    this.instructions.forEach((instruction, index) => {
      const slot = slots[index]!;
      this.opcodes[slot] = instruction.opcode;
      this.dsts[slot] = instruction.dst;
      this.srcs[slot] = instruction.src;
      this.offsets[slot] = instruction.offset;
      this.immediates[slot] = instruction.imm;
      this.slotToIndex[slot] = index;
      if (instruction.opcode === Opcode.LDDW) {
        const value = wideValue(instruction);
        this.immediates[slot] = Number(BigInt.asIntN(32, value));
        this.wideHigh[slot] = Number(value >> 32n);
        this.slotToIndex[slot + 1] = index;
      }
    });
    this.instructionLimit = options.instructionLimit ?? 1_000_000;
    this.resolvePseudoLoad = options.resolvePseudoLoad;
  }

  /** Runs the program over `memory` (which it may modify) and returns r0. */
  run(memory: Uint8Array = new Uint8Array(0), options: InterpreterRunOptions = {}): RunResult {
    checkRunMemory(memory);
    checkRunOptions(options);
    const stack = this.stack;
    // Zero the first frame now, each further frame when a call enters it.
    stack.fill(0, stack.length - stackSize);
    if (memory !== this.lastMemory) {
      this.lastMemory = memory;
      this.lastMemoryView = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
    }
    // Reuse the region tables; helpers may have appended mapped regions in the last run.
    const regions = this.regions;
    const views = this.views;
    if (regions.length !== 4) {
      regions.length = 4;
      views.length = 4;
    }
    regions[packetRegion] = memory;
    views[packetRegion] = this.lastMemoryView;
    regions[stackRegion] = stack;
    views[stackRegion] = this.stackView;
    regions[contextRegion] = undefined;
    views[contextRegion] = undefined;
    const high = this.high;
    const low = this.low;
    high.fill(0);
    low.fill(0);
    high[1] = packetRegion;
    low[1] = 0;
    low[2] = memory.length;
    high[10] = stackRegion;
    low[10] = stack.length;
    this.contextPointers = undefined;
    this.packetEnd = memory.length;
    if (options.linearLength !== undefined) {
      this.packetEnd = Math.min(memory.length, options.linearLength);
    }
    if (options.context) {
      const size = options.context.size;
      if (this.contextBytes.length !== size) {
        this.contextBytes = new Uint8Array(size);
        this.contextView = new DataView(this.contextBytes.buffer);
      } else {
        this.contextBytes.fill(0);
      }
      options.context.writeFields(this.contextView, memory);
      this.regions[contextRegion] = this.contextBytes;
      this.views[contextRegion] = this.contextView;
      this.contextPointers = options.context.pointerFields;
      high[1] = contextRegion;
      low[2] = 0;
    }
    if (options.registers) this.setRegisters(options.registers);
    this.stopValue = undefined;
    return this.execute();
  }

  private setRegisters(registers: NonNullable<InterpreterRunOptions["registers"]>): void {
    const high = this.high;
    const low = this.low;
    for (const [register, value] of Object.entries(registers)) {
      const big = initialRegisterValue(register, value);
      high[Number(register)] = Number(big >> 32n);
      low[Number(register)] = Number(big & 0xffff_ffffn);
    }
  }

  private execute(): RunResult {
    const { opcodes, dsts, srcs, offsets, immediates, high, low } = this;
    const total = opcodes.length;
    const limit = this.instructionLimit;
    const frames: Frame[] = [];
    let pc = 0;
    let count = 0;
    for (;;) {
      if (!(pc >= 0 && pc < total)) {
        this.currentSlot = Math.max(0, Math.min(pc, total - 1));
        throw this.failure("end-of-program", pc < 0 ? "a jump went before the first instruction" : "execution ran past the last instruction", "end every path with exit");
      }
      if (++count > limit) {
        this.currentSlot = pc;
        throw this.failure("instruction-limit", `executed more than ${limit} instructions`, "the program may loop forever; raise instructionLimit if it is just long");
      }
      const slot = pc;
      const opcode = opcodes[pc]!;
      const dst = dsts[pc]!;
      const src = srcs[pc]!;
      const immediate = immediates[pc]!;
      pc++;
      const cls = opcode & 7;
      if (cls === 4 || cls === 7) {
        this.alu(opcode, dst, src, offsets[slot]!, immediate, slot);
        continue;
      }
      if (cls === 5 || cls === 6) {
        const operation = opcode & 0xf0;
        if (operation === 0x90) {
          // exit
          const frame = frames.pop();
          if (frame === undefined) return { returnValue: this.value(0), instructionCount: count };
          for (let r = 0; r < 4; r++) {
            high[6 + r] = frame.saved[r]!;
            low[6 + r] = frame.saved[4 + r]!;
          }
          low[10] += stackSize;
          pc = frame.returnSlot;
          continue;
        }
        if (operation === 0x80) {
          if (src === CallSource.LOCAL && (opcode & 8) === 0) {
            if (frames.length + 1 >= maximumCallDepth) {
              this.currentSlot = slot;
              throw this.failure("call-depth", `local calls nest deeper than ${maximumCallDepth} frames`);
            }
            const saved = new Uint32Array(8);
            for (let r = 0; r < 4; r++) {
              saved[r] = high[6 + r]!;
              saved[4 + r] = low[6 + r]!;
            }
            frames.push({ returnSlot: pc, saved });
            low[10] -= stackSize;
            this.stack.fill(0, low[10]! - stackSize, low[10]);
            pc = pc + immediate;
            continue;
          }
          this.currentSlot = slot;
          const helperId = (opcode & 8) !== 0 ? this.value(dst) : BigInt(immediate);
          if (src === CallSource.KFUNC && (opcode & 8) === 0) throw this.failure("unsupported", `kernel function calls (BTF id ${immediate}) cannot run in user space`);
          this.callHelper(helperId);
          if (this.stopValue !== undefined) return { returnValue: this.stopValue, instructionCount: count };
          continue;
        }
        if (operation === 0) {
          // ja / gotol
          pc += cls === 6 ? immediate : offsets[slot]!;
          continue;
        }
        if (this.condition(operation, cls === 6, dst, src, (opcode & 8) !== 0, immediate)) pc += offsets[slot]!;
        continue;
      }
      this.currentSlot = slot;
      if (cls === 0) {
        if (opcode === Opcode.LDDW) {
          pc++;
          if (src === 0) {
            high[dst] = this.wideHigh[slot]!;
            low[dst] = immediate >>> 0;
          } else {
            this.setValue(dst, this.pseudoLoad(src, slot));
          }
          continue;
        }
        const mode = opcode & 0xe0;
        if (mode !== 0x20 && mode !== 0x40) throw this.failure("unsupported", `unknown load opcode 0x${opcode.toString(16)}`);
        if (!this.packetLoad(opcode, src, immediate)) return { returnValue: 0n, instructionCount: count };
        continue;
      }
      const size = (opcode & 0x18) === 0 ? 4 : (opcode & 0x18) === 8 ? 2 : (opcode & 0x18) === 0x10 ? 1 : 8;
      if (cls === 1) {
        // ldx
        const view = this.resolve(src, offsets[slot]!, size);
        const at = this.resolvedOffset;
        if (this.resolvedRegion === contextRegion && this.contextPointers?.has(at)) {
          this.loadContextPointer(dst, at, size);
          continue;
        }
        const signed = (opcode & 0xe0) === 0x80;
        let lo: number;
        let hi = 0;
        if (size === 1) lo = signed ? view.getInt8(at) : view.getUint8(at);
        else if (size === 2) lo = signed ? view.getInt16(at, true) : view.getUint16(at, true);
        else if (size === 4) lo = signed ? view.getInt32(at, true) : view.getUint32(at, true);
        else {
          lo = view.getUint32(at, true);
          hi = view.getUint32(at + 4, true);
        }
        if (signed && lo < 0) hi = 0xffff_ffff;
        low[dst] = lo >>> 0;
        high[dst] = hi;
        continue;
      }
      if (cls === 2 || (opcode & 0xe0) === 0x60) {
        // st (immediate) or stx (register)
        const view = this.resolve(dst, offsets[slot]!, size);
        const at = this.resolvedOffset;
        if (this.resolvedRegion === contextRegion) this.checkContextStore(at, size);
        const lo = cls === 2 ? immediate >>> 0 : low[src]!;
        const hi = cls === 2 ? (immediate < 0 ? 0xffff_ffff : 0) : high[src]!;
        if (size === 1) view.setUint8(at, lo & 0xff);
        else if (size === 2) view.setUint16(at, lo & 0xffff, true);
        else if (size === 4) view.setUint32(at, lo, true);
        else {
          view.setUint32(at, lo, true);
          view.setUint32(at + 4, hi, true);
        }
        continue;
      }
      this.atomic(size, dst, src, offsets[slot]!, immediate);
    }
  }

  private alu(opcode: number, dst: number, src: number, offset: number, immediate: number, slot: number): void {
    const high = this.high;
    const low = this.low;
    const wide = (opcode & 7) === 7;
    const operation = opcode & 0xf0;
    const fromRegister = (opcode & 8) !== 0;
    if (operation === 0xd0) {
      this.byteOrder(dst, wide || fromRegister, immediate);
      return;
    }
    const bl = fromRegister ? low[src]! : immediate >>> 0;
    const bh = fromRegister ? high[src]! : immediate < 0 ? 0xffff_ffff : 0;
    const al = low[dst]!;
    if (!wide) {
      let result: number;
      switch (operation) {
        case 0x00: result = al + bl; break;
        case 0x10: result = al - bl; break;
        case 0x20: result = Math.imul(al, bl); break;
        case 0x30:
          if (bl === 0) result = 0;
          else if (offset === 1) result = Math.trunc((al | 0) / (bl | 0));
          else result = Math.floor(al / bl);
          break;
        case 0x40: result = al | bl; break;
        case 0x50: result = al & bl; break;
        case 0x60: result = al << (bl & 31); break;
        case 0x70: result = al >>> (bl & 31); break;
        case 0x80: result = -al; break;
        case 0x90:
          if (bl === 0) result = al;
          else if (offset === 1) result = (al | 0) % (bl | 0);
          else result = al % bl;
          break;
        case 0xa0: result = al ^ bl; break;
        case 0xb0:
          result = offset === 8 ? (bl << 24) >> 24 : offset === 16 ? (bl << 16) >> 16 : bl;
          break;
        case 0xc0: result = (al | 0) >> (bl & 31); break;
        default:
          this.currentSlot = slot;
          throw this.failure("unsupported", `unknown ALU operation 0x${operation.toString(16)}`);
      }
      low[dst] = result >>> 0;
      high[dst] = 0;
      return;
    }
    const ah = high[dst]!;
    switch (operation) {
      case 0x00: {
        const sum = al + bl;
        low[dst] = sum >>> 0;
        high[dst] = (ah + bh + (sum >= twoTo32 ? 1 : 0)) >>> 0;
        return;
      }
      case 0x10: {
        const difference = al - bl;
        low[dst] = difference >>> 0;
        high[dst] = (ah - bh - (difference < 0 ? 1 : 0)) >>> 0;
        return;
      }
      case 0x20: {
        const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
        const t = a0 * b0;
        const m1 = a1 * b0;
        const m2 = a0 * b1;
        const middle = (t >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
        low[dst] = (((middle & 0xffff) << 16) | (t & 0xffff)) >>> 0;
        const carry = a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + Math.floor(middle / 65536);
        high[dst] = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
        return;
      }
      case 0x30:
      case 0x90: {
        if (bh === 0 && bl === 0) {
          if (operation === 0x30) {
            low[dst] = 0;
            high[dst] = 0;
          }
          return;
        }
        if (offset !== 1 && ah === 0 && bh === 0) {
          low[dst] = operation === 0x30 ? Math.floor(al / bl) : al % bl;
          return;
        }
        const a = offset === 1 ? BigInt.asIntN(64, this.value(dst)) : this.value(dst);
        const b = offset === 1 ? BigInt.asIntN(64, (BigInt(bh) << 32n) | BigInt(bl)) : (BigInt(bh) << 32n) | BigInt(bl);
        this.setValue(dst, operation === 0x30 ? a / b : a % b);
        return;
      }
      case 0x40: low[dst] = (al | bl) >>> 0; high[dst] = (ah | bh) >>> 0; return;
      case 0x50: low[dst] = (al & bl) >>> 0; high[dst] = (ah & bh) >>> 0; return;
      case 0xa0: low[dst] = (al ^ bl) >>> 0; high[dst] = (ah ^ bh) >>> 0; return;
      case 0x60: {
        const n = bl & 63;
        if (n === 0) return;
        if (n < 32) {
          high[dst] = ((ah << n) | (al >>> (32 - n))) >>> 0;
          low[dst] = (al << n) >>> 0;
        } else {
          high[dst] = (al << (n - 32)) >>> 0;
          low[dst] = 0;
        }
        return;
      }
      case 0x70: {
        const n = bl & 63;
        if (n === 0) return;
        if (n < 32) {
          low[dst] = ((al >>> n) | (ah << (32 - n))) >>> 0;
          high[dst] = ah >>> n;
        } else {
          low[dst] = ah >>> (n - 32);
          high[dst] = 0;
        }
        return;
      }
      case 0xc0: {
        const n = bl & 63;
        if (n === 0) return;
        if (n < 32) {
          low[dst] = ((al >>> n) | (ah << (32 - n))) >>> 0;
          high[dst] = ((ah | 0) >> n) >>> 0;
        } else {
          low[dst] = ((ah | 0) >> (n - 32)) >>> 0;
          high[dst] = ((ah | 0) >> 31) >>> 0;
        }
        return;
      }
      case 0x80: {
        low[dst] = -al >>> 0;
        high[dst] = (-ah - (al !== 0 ? 1 : 0)) >>> 0;
        return;
      }
      case 0xb0: {
        if (offset === 0) {
          low[dst] = bl;
          high[dst] = bh;
          return;
        }
        const extended = offset === 8 ? (bl << 24) >> 24 : offset === 16 ? (bl << 16) >> 16 : bl | 0;
        low[dst] = extended >>> 0;
        high[dst] = extended < 0 ? 0xffff_ffff : 0;
        return;
      }
    }
    this.currentSlot = slot;
    throw this.failure("unsupported", `unknown ALU operation 0x${operation.toString(16)}`);
  }

  private byteOrder(dst: number, swap: boolean, bits: number): void {
    const high = this.high;
    const low = this.low;
    const lo = low[dst]!;
    if (bits === 16) {
      low[dst] = swap ? ((lo & 0xff) << 8) | ((lo >>> 8) & 0xff) : lo & 0xffff;
      high[dst] = 0;
    } else if (bits === 32) {
      low[dst] = swap ? swap32(lo) : lo;
      high[dst] = 0;
    } else if (swap) {
      low[dst] = swap32(high[dst]!);
      high[dst] = swap32(lo);
    }
  }

  private condition(operation: number, narrow: boolean, dst: number, src: number, fromRegister: boolean, immediate: number): boolean {
    const al = this.low[dst]!;
    const bl = fromRegister ? this.low[src]! : immediate >>> 0;
    let ah = 0;
    let bh = 0;
    if (!narrow) {
      ah = this.high[dst]!;
      bh = fromRegister ? this.high[src]! : immediate < 0 ? 0xffff_ffff : 0;
    }
    switch (operation) {
      case 0x10: return al === bl && ah === bh;
      case 0x50: return al !== bl || ah !== bh;
      case 0x40: return (al & bl) !== 0 || (ah & bh) !== 0;
      case 0x20: return ah > bh || (ah === bh && al > bl);
      case 0x30: return ah > bh || (ah === bh && al >= bl);
      case 0xa0: return ah < bh || (ah === bh && al < bl);
      case 0xb0: return ah < bh || (ah === bh && al <= bl);
      // may_goto: no loop budget here (the interpreter has its own instruction limit), so it never jumps.
      case 0xe0: return false;
    }
    // signed: compare the high words signed (or the low words, for 32-bit jumps)
    let sa: number, sb: number, ua: number, ub: number;
    if (narrow) {
      sa = al | 0; sb = bl | 0; ua = 0; ub = 0;
    } else {
      sa = ah | 0; sb = bh | 0; ua = al; ub = bl;
    }
    switch (operation) {
      case 0x60: return sa > sb || (sa === sb && ua > ub);
      case 0x70: return sa > sb || (sa === sb && ua >= ub);
      case 0xc0: return sa < sb || (sa === sb && ua < ub);
      case 0xd0: return sa < sb || (sa === sb && ua <= ub);
    }
    throw this.failure("unsupported", `unknown jump operation 0x${operation.toString(16)}`);
  }

  private atomic(size: number, dst: number, src: number, offset: number, code: number): void {
    const view = this.resolve(dst, offset, size);
    const at = this.resolvedOffset;
    const oldLow = view.getUint32(at, true);
    const oldHigh = size === 8 ? view.getUint32(at + 4, true) : 0;
    const srcLow = this.low[src]!;
    const srcHigh = size === 8 ? this.high[src]! : 0;
    let newLow: number;
    let newHigh: number;
    const operation = code & 0xf0;
    switch (operation) {
      case 0x00: {
        const sum = oldLow + srcLow;
        newLow = sum >>> 0;
        newHigh = (oldHigh + srcHigh + (sum >= twoTo32 ? 1 : 0)) >>> 0;
        break;
      }
      case 0x40: newLow = (oldLow | srcLow) >>> 0; newHigh = (oldHigh | srcHigh) >>> 0; break;
      case 0x50: newLow = (oldLow & srcLow) >>> 0; newHigh = (oldHigh & srcHigh) >>> 0; break;
      case 0xa0: newLow = (oldLow ^ srcLow) >>> 0; newHigh = (oldHigh ^ srcHigh) >>> 0; break;
      case 0xe0: newLow = srcLow; newHigh = srcHigh; break;
      case 0xf0: {
        const expectedLow = this.low[0]!;
        const expectedHigh = size === 8 ? this.high[0]! : 0;
        if (expectedLow === oldLow && expectedHigh === oldHigh) {
          newLow = srcLow;
          newHigh = srcHigh;
        } else {
          newLow = oldLow;
          newHigh = oldHigh;
        }
        this.low[0] = oldLow;
        this.high[0] = oldHigh;
        break;
      }
      default:
        throw this.failure("unsupported", `unknown atomic operation 0x${code.toString(16)}`);
    }
    view.setUint32(at, newLow, true);
    if (size === 8) view.setUint32(at + 4, newHigh, true);
    if ((code & 1) !== 0 && operation !== 0xf0) {
      this.low[src] = oldLow;
      this.high[src] = oldHigh;
    }
  }

  /** Legacy LD_ABS/LD_IND: big-endian read from the input memory; false when out of bounds (program ends with 0). */
  private packetLoad(opcode: number, src: number, immediate: number): boolean {
    const size = (opcode & 0x18) === 0 ? 4 : (opcode & 0x18) === 8 ? 2 : 1;
    let position = immediate;
    if ((opcode & 0xe0) === 0x40) position += this.low[src]! | 0;
    const memory = this.regions[packetRegion]!;
    if (position < 0 || position + size > memory.length) return false;
    const view = this.views[packetRegion]!;
    this.low[0] = size === 1 ? view.getUint8(position) : size === 2 ? view.getUint16(position) : view.getUint32(position);
    this.high[0] = 0;
    return true;
  }

  private pseudoLoad(src: number, slot: number): bigint {
    const index = this.slotToIndex[slot]!;
    const value = (BigInt(this.wideHigh[slot]!) << 32n) | BigInt(this.immediates[slot]! >>> 0);
    if (!this.resolvePseudoLoad) {
      throw this.failure("unsupported", `64-bit load with pseudo source ${src} (map or function reference) needs a resolvePseudoLoad option`);
    }
    return BigInt.asUintN(64, this.resolvePseudoLoad(src, value, index));
  }

  /** Checks an access of `size` bytes at register + offset; returns the region's view and sets resolvedOffset. */
  private resolve(register: number, offset: number, size: number): DataView {
    let hi = this.high[register]!;
    let lo = this.low[register]! + offset;
    if (lo < 0) {
      lo += twoTo32;
      hi = (hi - 1) >>> 0;
    } else if (lo >= twoTo32) {
      lo -= twoTo32;
      hi = (hi + 1) >>> 0;
    }
    const region = this.regions[hi];
    if (region === undefined || lo + size > region.length) {
      const address = ((BigInt(hi) << 32n) | BigInt(lo)).toString(16);
      const where = region === undefined ? "not in any memory region" : `beyond the end of the ${hi === packetRegion ? "input memory" : hi === stackRegion ? "stack" : "mapped memory"} (${region.length} bytes)`;
      throw this.failure("out-of-bounds", `${size}-byte access at 0x${address} is ${where}`, "check bounds before the access");
    }
    if (hi === stackRegion && lo < this.low[10]! - stackSize) {
      throw this.failure("out-of-bounds", `${size}-byte stack access at r10${lo - this.low[10]!} is below the current 512-byte frame`, "a frame has 512 bytes of stack");
    }
    this.resolvedOffset = lo;
    this.resolvedRegion = hi;
    return this.views[hi]!;
  }

  private loadContextPointer(dst: number, offset: number, size: number): void {
    if (size !== 4 && size !== 8) throw this.failure("unsupported", `a ${size}-byte load of the context pointer field at offset ${offset}; load it whole`);
    this.high[dst] = packetRegion;
    this.low[dst] = this.contextPointers!.get(offset) === "packet-end" ? this.packetEnd : 0;
  }

  private checkContextStore(offset: number, size: number): void {
    for (const field of this.contextPointers?.keys() ?? []) {
      if (offset < field + 4 && field < offset + size) throw this.failure("unsupported", `store into the context pointer field at offset ${field}`);
    }
  }

  private callHelper(id: bigint): void {
    const helper = id <= 0x7fff_ffffn ? this.helpers.get(Number(id)) : undefined;
    if (helper === undefined) {
      throw this.failure("unknown-helper", `helper ${id} is not provided to the interpreter`, "pass it in the helpers option");
    }
    const context: HelperContext = {
      arguments: [this.value(1), this.value(2), this.value(3), this.value(4), this.value(5)],
      packet: this.regions[packetRegion]!,
      read: (address, length) => {
        const view = this.resolveAddress(address, length);
        return new Uint8Array(view.buffer, view.byteOffset + this.resolvedOffset, length).slice();
      },
      write: (address, bytes) => {
        const view = this.resolveAddress(address, bytes.length);
        new Uint8Array(view.buffer, view.byteOffset + this.resolvedOffset, bytes.length).set(bytes);
      },
      map: (bytes) => {
        this.regions.push(bytes);
        this.views.push(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        return BigInt(this.regions.length - 1) << 32n;
      },
      stop: (value) => {
        this.stopValue = BigInt.asUintN(64, BigInt(value));
      },
      linearLength: this.packetEnd,
      setLinearLength: (length) => {
        this.packetEnd = Math.max(0, Math.min(this.regions[packetRegion]!.length, length));
      },
    };
    const result = helper(context);
    this.setValue(0, result === undefined ? 0n : BigInt(result));
    if (this.stopValue !== undefined) this.setValue(0, this.stopValue);
  }

  private resolveAddress(address: bigint, length: number): DataView {
    const saveHigh = this.high[0]!;
    const saveLow = this.low[0]!;
    this.setValue(0, address);
    try {
      return this.resolve(0, 0, length);
    } finally {
      this.high[0] = saveHigh;
      this.low[0] = saveLow;
    }
  }

  private value(register: number): bigint {
    return (BigInt(this.high[register]!) << 32n) | BigInt(this.low[register]!);
  }

  private setValue(register: number, value: bigint): void {
    const unsigned = BigInt.asUintN(64, value);
    this.high[register] = Number(unsigned >> 32n);
    this.low[register] = Number(unsigned & 0xffff_ffffn);
  }

  private failure(kind: ExecutionFailure, message: string, hint?: string): ExecutionError {
    const slot = this.currentSlot;
    return new ExecutionError(kind, this.slotToIndex[slot] ?? slot, slot, message, hint);
  }
}

function swap32(value: number): number {
  return (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;
}

/** Runs a program once over `memory`; see {@link Interpreter}. */
export function runProgram(program: readonly Instruction[] | Uint8Array, memory?: Uint8Array, options: InterpreterOptions & InterpreterRunOptions = {}): RunResult {
  return new Interpreter(program, options).run(memory, options);
}
