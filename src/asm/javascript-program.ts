/**
 * A just-in-time compiler from eBPF to JavaScript: the program becomes one
 * JavaScript function (built once with `new Function`) that V8 then compiles
 * to machine code. Same memory model, results and failures as the
 * {@link Interpreter}, which stays the reference it is tested against
 * (bpf_conformance, differential tests); it runs filters many times faster.
 *
 * Registers are pairs of int32 locals (high and low word), so the common
 * operations need neither BigInt nor a register array. Control flow is a
 * `switch` over basic blocks inside a loop; straight-line code between jumps
 * is plain JavaScript.
 */
import { UsageError } from "../sys/errors.js";
import { type Instruction, decode, jumpTargetSlot, slotIndexes, validateInstructions, wideValue } from "./instruction.js";
import { argumentError, isUint32 } from "../sys/argument-checks.js";
import {
  checkInterpreterOptions,
  checkRunMemory,
  checkRunOptions,
  ExecutionError,
  type ExecutionFailure,
  type Helper,
  type HelperContext,
  initialRegisterValue,
  type InterpreterOptions,
  type InterpreterRunOptions,
  stackSize,
} from "./interpreter.js";
import { CallSource, Opcode } from "./opcodes.js";

export type JavaScriptProgramOptions = InterpreterOptions;

export interface JavaScriptRunResult {
  /** r0 at exit, unsigned 64-bit. */
  returnValue: bigint;
}

/** The generated function: returns r0's low word, its high word in scratch[1]. */
type GeneratedRun = (memory: Uint8Array, view: DataView, registers: Int32Array | undefined, packetStart: number, packetLength: number) => number;

const maximumCallDepth = 8;
const packetRegion = 1;
const stackRegion = 2;
const twoTo32 = 4294967296;

/** What the generated code reaches outside itself. */
interface Environment {
  /** Memory regions by the high word of an address: 1 = input, 2 = stack, 4… = mapped by helpers. */
  regions: (Uint8Array | undefined)[];
  views: (DataView | undefined)[];
  stack: Uint8Array;
  /** Scratch: a second result word from helper functions. */
  scratch: Int32Array;
  /** The input memory is regions[1] bytes [packetStart, packetStart + packetLength). */
  packetStart: number;
  packetLength: number;
  fail(kind: ExecutionFailure, slot: number, message: string, hint?: string): never;
  multiplyHigh(a: number, b: number): number;
  divide(operation: number, signed: boolean, al: number, ah: number, bl: number, bh: number): number;
  shift(operation: number, al: number, ah: number, n: number): number;
  swap32(value: number): number;
  atomic(slot: number, size: number, code: number, region: number, at: number, sl: number, sh: number, r0l: number, r0h: number): number;
  callHelper(slot: number, id: bigint, registers: Int32Array): number;
  pseudo(slot: number): bigint;
  stopped(): boolean;
}

// The per-packet checks are written out where they run (as a call, the window check
// measurably slows a 20 ns filter run); the error is built apart, once one failed.

/**
 * The UsageError for the first wrong one of a window ([start, start + length) of `memory`,
 * a Uint8Array; start and length words) and 32-bit values (see isUint32), named as the caller names them.
 */
export function windowError(operation: string, memoryName: string, memory: unknown, start: unknown, length: unknown, words: Record<string, unknown> = {}): UsageError {
  if (!(memory instanceof Uint8Array)) return argumentError(operation, memoryName, "a Uint8Array (or Buffer)", memory);
  const word = "an integer from 0 to 4294967295";
  if (!isUint32(start as number)) return argumentError(operation, "start", word, start);
  if (!isUint32(length as number)) return argumentError(operation, "length", word, length);
  if ((start as number) + (length as number) > memory.length) {
    return new UsageError(operation, `window [${start}, ${(start as number) + (length as number)}) is outside the ${memory.length}-byte ${memoryName}`);
  }
  for (const [name, value] of Object.entries(words)) if (!isUint32(value as number)) return argumentError(operation, name, word, value);
  return new UsageError(operation, "the window's arguments are inconsistent");
}

/**
 * testWindow() without its argument checks, for callers that have checked them
 * (OfflineFilter, once per packet); not exported from the package.
 */
export let testWindowUnchecked: (program: JavaScriptProgram, memory: Uint8Array, start: number, length: number, r3: number, r4: number) => boolean;

/**
 * An eBPF program compiled to a JavaScript function. `run` has the
 * Interpreter's signature; `test` is the fast path for filters.
 */
export class JavaScriptProgram {
  /** The generated JavaScript (for inspection and debugging). */
  readonly source: string;
  readonly #instructions: Instruction[];
  readonly #slotToIndex: Int32Array;
  readonly #environment: Environment;
  readonly #run: GeneratedRun;
  readonly #helpers: Map<number, Helper>;
  readonly #resolvePseudoLoad: InterpreterOptions["resolvePseudoLoad"];
  readonly #wide: Map<number, bigint> = new Map();
  readonly #initial = new Int32Array(12);
  #stopValue: bigint | undefined;
  #lastMemory: Uint8Array | undefined;
  #lastView: DataView = new DataView(new ArrayBuffer(0));

  constructor(program: readonly Instruction[] | Uint8Array, options: JavaScriptProgramOptions = {}) {
    if (!(program instanceof Uint8Array) && !Array.isArray(program)) {
      throw new UsageError("compile eBPF program", "the program must be an Instruction[] or the encoded bytes (Uint8Array)");
    }
    this.#helpers = checkInterpreterOptions("compile eBPF program", options);
    this.#instructions = program instanceof Uint8Array ? decode(program) : program.map((instruction) => ({ ...instruction }));
    if (options.validate ?? true) validateInstructions(this.#instructions);
    this.#resolvePseudoLoad = options.resolvePseudoLoad;
    const slots = slotIndexes(this.#instructions);
    this.#slotToIndex = new Int32Array(slots[this.#instructions.length]!);
    this.#instructions.forEach((instruction, index) => {
      this.#slotToIndex[slots[index]!] = index;
      if (instruction.opcode === Opcode.LDDW) {
        this.#slotToIndex[slots[index]! + 1] = index;
        this.#wide.set(slots[index]!, wideValue(instruction));
      }
    });
    this.#environment = this.#makeEnvironment();
    this.source = generate(this.#instructions, slots, options.instructionLimit ?? 1_000_000);
    const factory = new Function("environment", this.source) as (environment: Environment) => unknown;
    this.#run = factory(this.#environment) as unknown as GeneratedRun;
  }

  /** Runs the program over `memory` (which it may modify) and returns r0. */
  run(memory: Uint8Array = new Uint8Array(0), options: Omit<InterpreterRunOptions, "context"> & { context?: never } = {}): JavaScriptRunResult {
    checkRunMemory(memory);
    checkRunOptions(options);
    if (options.context !== undefined) throw new UsageError("run eBPF program", "a context model is not supported by the JavaScript compiler", "use the Interpreter");
    if (options.linearLength !== undefined) throw new UsageError("run eBPF program", "a linear length needs a context model, which the JavaScript compiler does not support", "use the Interpreter");
    let initial: Int32Array | undefined;
    if (options.registers) {
      initial = this.#initial;
      initial.fill(0);
      initial[2] = packetRegion;
      initial[5] = memory.length;
      for (const [register, value] of Object.entries(options.registers)) {
        const big = initialRegisterValue(register, value);
        initial[Number(register) * 2] = Number(big >> 32n);
        initial[Number(register) * 2 + 1] = Number(big & 0xffff_ffffn);
      }
    }
    const low = this.#execute(memory, initial, 0, memory.length);
    return { returnValue: (BigInt(this.#environment.scratch[1]! >>> 0) << 32n) | BigInt(low >>> 0) };
  }

  /**
   * The fast path for filters: runs with r1 = memory, r2 = its length and
   * r3, r4 as given (small non-negative integers), and says whether r0 ≠ 0.
   */
  test(memory: Uint8Array, r3 = 0, r4 = 0): boolean {
    if (!(memory instanceof Uint8Array) || !isUint32(r3) || !isUint32(r4)) throw windowError("run eBPF program", "memory", memory, 0, 0, { r3, r4 });
    return this.#testWindow(memory, 0, memory.length, r3, r4);
  }

  /**
   * test() over the bytes [start, start + length) of `memory`, which are the
   * program's whole input (r1 points at `start`, r2 = length): filters run
   * over packets inside a large read buffer without a view per packet.
   */
  testWindow(memory: Uint8Array, start: number, length: number, r3 = 0, r4 = 0): boolean {
    if (!(memory instanceof Uint8Array) || start >>> 0 !== start || length >>> 0 !== length || start + length > memory.length || !isUint32(r3) || !isUint32(r4)) throw windowError("run eBPF program", "memory", memory, start, length, { r3, r4 });
    return this.#testWindow(memory, start, length, r3, r4);
  }

  static {
    testWindowUnchecked = (program, memory, start, length, r3, r4) => program.#testWindow(memory, start, length, r3, r4);
  }

  #testWindow(memory: Uint8Array, start: number, length: number, r3: number, r4: number): boolean {
    const initial = this.#initial;
    initial[0] = 0;
    initial[1] = 0;
    initial[2] = packetRegion;
    initial[3] = 0;
    initial[4] = 0;
    initial[5] = length;
    initial[6] = 0;
    initial[7] = r3 | 0;
    initial[8] = 0;
    initial[9] = r4 | 0;
    initial[10] = 0;
    initial[11] = 0;
    const low = this.#execute(memory, initial, start, length);
    return (low | this.#environment.scratch[1]!) !== 0;
  }

  #execute(memory: Uint8Array, initial: Int32Array | undefined, start: number, length: number): number {
    if (memory !== this.#lastMemory) {
      this.#lastMemory = memory;
      this.#lastView = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
    }
    const environment = this.#environment;
    const regions = environment.regions;
    if (regions.length !== 4) {
      regions.length = 4;
      environment.views.length = 4;
    }
    regions[packetRegion] = memory;
    environment.views[packetRegion] = this.#lastView;
    environment.packetStart = start;
    environment.packetLength = length;
    this.#stopValue = undefined;
    return this.#run(memory, this.#lastView, initial, start, length);
  }

  #makeEnvironment(): Environment {
    const stack = new Uint8Array(stackSize * maximumCallDepth);
    const scratch = new Int32Array(2);
    const regions: (Uint8Array | undefined)[] = [undefined, undefined, stack, undefined];
    const views: (DataView | undefined)[] = [undefined, undefined, new DataView(stack.buffer), undefined];
    const fail = (kind: ExecutionFailure, slot: number, message: string, hint?: string): never => {
      throw new ExecutionError(kind, this.#slotToIndex[slot] ?? slot, slot, message, hint);
    };
    const resolve = (address: bigint, length: number, slot: number): [Uint8Array, number] => {
      const region = Number(address >> 32n);
      const offset = Number(address & 0xffff_ffffn);
      const memory = regions[region];
      const limit = region === packetRegion ? environment.packetLength : memory?.length ?? -1;
      if (memory === undefined || offset + length > limit) {
        return fail("out-of-bounds", slot, `${length}-byte access at 0x${address.toString(16)} is outside memory`, "check bounds before the access");
      }
      return [memory, region === packetRegion ? offset + environment.packetStart : offset];
    };
    const environment: Environment = {
      regions,
      views,
      stack,
      scratch,
      packetStart: 0,
      packetLength: 0,
      fail,
      multiplyHigh,
      divide: (operation, signed, al, ah, bl, bh) => {
        const a = (BigInt(ah >>> 0) << 32n) | BigInt(al >>> 0);
        const b = (BigInt(bh >>> 0) << 32n) | BigInt(bl >>> 0);
        let result: bigint;
        if (b === 0n) result = operation === 0x30 ? 0n : a;
        else if (signed) result = operation === 0x30 ? BigInt.asIntN(64, a) / BigInt.asIntN(64, b) : BigInt.asIntN(64, a) % BigInt.asIntN(64, b);
        else result = operation === 0x30 ? a / b : a % b;
        result = BigInt.asUintN(64, result);
        scratch[0] = Number(result >> 32n);
        return Number(result & 0xffff_ffffn) | 0;
      },
      shift: (operation, al, ah, n) => {
        al >>>= 0;
        ah >>>= 0;
        if (n === 0) {
          scratch[0] = ah;
          return al | 0;
        }
        if (operation === 0x60) {
          if (n < 32) {
            scratch[0] = (ah << n) | (al >>> (32 - n));
            return al << n;
          }
          scratch[0] = al << (n - 32);
          return 0;
        }
        if (operation === 0x70) {
          if (n < 32) {
            scratch[0] = ah >>> n;
            return (al >>> n) | (ah << (32 - n));
          }
          scratch[0] = 0;
          return ah >>> (n - 32);
        }
        if (n < 32) {
          scratch[0] = (ah | 0) >> n;
          return (al >>> n) | (ah << (32 - n));
        }
        scratch[0] = (ah | 0) >> 31;
        return (ah | 0) >> (n - 32);
      },
      swap32,
      atomic: (slot, size, code, region, at, sl, sh, r0l, r0h) => {
        const view = views[region]!;
        const oldLow = view.getInt32(at, true);
        const oldHigh = size === 8 ? view.getInt32(at + 4, true) : 0;
        if (size !== 8) sh = 0;
        let newLow: number;
        let newHigh: number;
        const operation = code & 0xf0;
        switch (operation) {
          case 0x00: {
            const sum = (oldLow >>> 0) + (sl >>> 0);
            newLow = sum | 0;
            newHigh = (oldHigh + sh + (sum >= twoTo32 ? 1 : 0)) | 0;
            break;
          }
          case 0x40: newLow = oldLow | sl; newHigh = oldHigh | sh; break;
          case 0x50: newLow = oldLow & sl; newHigh = oldHigh & sh; break;
          case 0xa0: newLow = oldLow ^ sl; newHigh = oldHigh ^ sh; break;
          case 0xe0: newLow = sl; newHigh = sh; break;
          case 0xf0: {
            const expectedHigh = size === 8 ? r0h : 0;
            if (r0l === oldLow && expectedHigh === oldHigh) {
              newLow = sl;
              newHigh = sh;
            } else {
              newLow = oldLow;
              newHigh = oldHigh;
            }
            break;
          }
          default:
            return fail("unsupported", slot, `unknown atomic operation 0x${code.toString(16)}`);
        }
        view.setInt32(at, newLow, true);
        if (size === 8) view.setInt32(at + 4, newHigh, true);
        scratch[0] = oldHigh;
        return oldLow;
      },
      callHelper: (slot, id, registers) => {
        const helper = id <= 0x7fff_ffffn ? this.#helpers.get(Number(id)) : undefined;
        if (helper === undefined) return fail("unknown-helper", slot, `helper ${id} is not provided to the interpreter`, "pass it in the helpers option");
        const value = (register: number) => (BigInt(registers[register * 2]! >>> 0) << 32n) | BigInt(registers[register * 2 + 1]! >>> 0);
        const context: HelperContext = {
          arguments: [value(1), value(2), value(3), value(4), value(5)],
          packet: regions[packetRegion]!.subarray(environment.packetStart, environment.packetStart + environment.packetLength),
          read: (address, length) => {
            const [memory, offset] = resolve(address, length, slot);
            return memory.slice(offset, offset + length);
          },
          write: (address, bytes) => {
            const [memory, offset] = resolve(address, bytes.length, slot);
            memory.set(bytes, offset);
          },
          map: (bytes) => {
            regions.push(bytes);
            views.push(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
            return BigInt(regions.length - 1) << 32n;
          },
          stop: (value) => {
            this.#stopValue = BigInt.asUintN(64, BigInt(value));
          },
          // No context model here, so no data_end field to move: the packet is all linear.
          linearLength: environment.packetLength,
          setLinearLength: () => {},
        };
        const result = helper(context);
        let r0 = BigInt.asUintN(64, result === undefined ? 0n : BigInt(result));
        if (this.#stopValue !== undefined) r0 = this.#stopValue;
        scratch[0] = Number(r0 >> 32n);
        return Number(r0 & 0xffff_ffffn) | 0;
      },
      pseudo: (slot) => {
        if (!this.#resolvePseudoLoad) {
          return fail("unsupported", slot, `64-bit load with pseudo source ${this.#instructions[this.#slotToIndex[slot]!]!.src} (map or function reference) needs a resolvePseudoLoad option`);
        }
        const index = this.#slotToIndex[slot]!;
        return BigInt.asUintN(64, this.#resolvePseudoLoad(this.#instructions[index]!.src, this.#wide.get(slot)!, index));
      },
      stopped: () => this.#stopValue !== undefined,
    };
    return environment;
  }
}

/** High word of the unsigned 64-bit product of two 32-bit words (as int32). */
function multiplyHigh(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const t = a0 * b0;
  const m1 = a1 * b0;
  const m2 = a0 * b1;
  const middle = (t >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  return (a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + Math.floor(middle / 65536)) | 0;
}

function swap32(value: number): number {
  return ((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24);
}

const sizeOf = (opcode: number): number => ((opcode & 0x18) === 0 ? 4 : (opcode & 0x18) === 8 ? 2 : (opcode & 0x18) === 0x10 ? 1 : 8);

/** Generates the body of `function (environment) { … return run; }`. */
function generate(instructions: readonly Instruction[], slots: readonly number[], instructionLimit: number): string {
  const total = slots[instructions.length]!;
  // Basic blocks start at 0, at jump targets, after jumps and calls (return points) and after exits.
  const leaders = new Set<number>([0]);
  let loops = false;
  let localCalls = false;
  let usesStack = false;
  instructions.forEach((instruction, index) => {
    const slot = slots[index]!;
    const cls = instruction.opcode & 7;
    if (instruction.dst === 10 || instruction.src === 10) usesStack = true;
    if (cls === 5 || cls === 6) {
      const target = jumpTargetSlot(instruction, slot);
      if (target !== undefined) {
        leaders.add(target);
        if (target <= slot) loops = true;
      }
      if ((instruction.opcode & 0xf0) === 0x80 && instruction.src === CallSource.LOCAL && (instruction.opcode & 8) === 0) localCalls = true;
      if (slot + 1 < total) leaders.add(slot + 1);
    }
  });
  // A program without loops or calls executes each slot at most once: it needs no instruction count.
  const counting = loops || localCalls || total > instructionLimit;
  const blockLength = new Map<number, number>();
  {
    let start = 0;
    for (let index = 0; index < instructions.length; index++) {
      const slot = slots[index]!;
      if (leaders.has(slot)) start = slot;
      blockLength.set(start, (blockLength.get(start) ?? 0) + 1);
    }
  }

  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);
  const L = (r: number) => `l${r}`;
  const H = (r: number) => `h${r}`;

  for (let index = 0; index < instructions.length; index++) {
    const instruction = instructions[index]!;
    const slot = slots[index]!;
    const { opcode, dst, src, offset, imm } = instruction;
    const next = slot + (opcode === Opcode.LDDW ? 2 : 1);
    if (leaders.has(slot)) {
      emit(`case ${slot}:`);
      // The interpreter stops at the instruction that goes over the limit: name the same one.
      if (counting) emit(`if ((count += ${blockLength.get(slot)}) > ${instructionLimit}) overLimit(${index}, count - ${blockLength.get(slot)});`);
    }
    const cls = opcode & 7;
    const fromRegister = (opcode & 8) !== 0;
    // Second operand: low and high words (expressions).
    const bl = fromRegister ? L(src) : String(imm | 0);
    const bh = fromRegister ? H(src) : imm < 0 ? "-1" : "0";
    if (cls === 4 || cls === 7) {
      emitAlu(emit, cls === 7, opcode & 0xf0, dst, fromRegister, offset, imm, bl, bh, slot);
      continue;
    }
    if (cls === 5 || cls === 6) {
      const operation = opcode & 0xf0;
      if (operation === 0x90) {
        if (localCalls) {
          emit(`if (depth === 0) { scratch[1] = h0; return l0; }`);
          emit(`depth--; pc = returns[depth]; h6 = saved[depth * 8]; l6 = saved[depth * 8 + 1]; h7 = saved[depth * 8 + 2]; l7 = saved[depth * 8 + 3]; h8 = saved[depth * 8 + 4]; l8 = saved[depth * 8 + 5]; h9 = saved[depth * 8 + 6]; l9 = saved[depth * 8 + 7]; l10 = (l10 + ${stackSize}) | 0; continue;`);
        } else {
          emit(`scratch[1] = h0; return l0;`);
        }
        continue;
      }
      if (operation === 0x80) {
        if (src === CallSource.LOCAL && !fromRegister) {
          emit(`if (depth + 1 >= ${maximumCallDepth}) fail("call-depth", ${slot}, "local calls nest deeper than ${maximumCallDepth} frames");`);
          emit(`returns[depth] = ${next}; saved[depth * 8] = h6; saved[depth * 8 + 1] = l6; saved[depth * 8 + 2] = h7; saved[depth * 8 + 3] = l7; saved[depth * 8 + 4] = h8; saved[depth * 8 + 5] = l8; saved[depth * 8 + 6] = h9; saved[depth * 8 + 7] = l9; depth++;`);
          emit(`l10 = (l10 - ${stackSize}) | 0; stack.fill(0, (l10 >>> 0) - ${stackSize}, l10 >>> 0); pc = ${next + imm}; continue;`);
          continue;
        }
        if (src === CallSource.KFUNC && !fromRegister) {
          emit(`fail("unsupported", ${slot}, "kernel function calls (BTF id ${imm}) cannot run in user space");`);
          continue;
        }
        const id = fromRegister ? `((BigInt(${H(dst)} >>> 0) << 32n) | BigInt(${L(dst)} >>> 0))` : `${imm}n`;
        emit(`registers[2] = h1; registers[3] = l1; registers[4] = h2; registers[5] = l2; registers[6] = h3; registers[7] = l3; registers[8] = h4; registers[9] = l4; registers[10] = h5; registers[11] = l5;`);
        emit(`l0 = callHelper(${slot}, ${id}, registers); h0 = scratch[0];`);
        emit(`if (stopped()) { scratch[1] = h0; return l0; }`);
        // The kernel clobbers r1-r5 across a helper call; the interpreter keeps them. So do we.
        continue;
      }
      if (operation === 0x00) {
        const target = cls === 6 ? next + imm : next + offset;
        emit(`pc = ${target}; continue;`);
        continue;
      }
      const condition = jumpCondition(operation, cls === 6, L(dst), H(dst), bl, bh, fromRegister, imm);
      emit(`if (${condition}) { pc = ${next + offset}; continue; }`);
      continue;
    }
    if (cls === 0) {
      if (opcode === Opcode.LDDW) {
        if (src === 0) {
          const value = wideValue(instruction);
          emit(`${H(dst)} = ${Number(BigInt.asIntN(32, value >> 32n))}; ${L(dst)} = ${Number(BigInt.asIntN(32, value))};`);
        } else {
          emit(`{ const value = pseudo(${slot}); ${H(dst)} = Number(value >> 32n) | 0; ${L(dst)} = Number(value & 0xffffffffn) | 0; }`);
        }
        continue;
      }
      // Legacy packet load: big-endian from the input memory; out of bounds ends the program with 0.
      const size = sizeOf(opcode);
      const position = (opcode & 0xe0) === 0x40 ? `(${imm} + ${L(src)})` : String(imm);
      emit(`{ const at = ${position}; if (at < 0 || at + ${size} > packetLength) { scratch[1] = 0; return 0; }`);
      emit(`l0 = ${size === 1 ? "memoryView.getUint8(packetStart + at)" : size === 2 ? "memoryView.getUint16(packetStart + at)" : "memoryView.getInt32(packetStart + at)"}; h0 = 0; }`);
      continue;
    }
    const size = sizeOf(opcode);
    if (cls === 1) {
      const signed = (opcode & 0xe0) === 0x80;
      emit(`{ ${access(src, offset, size, slot)}`);
      if (size === 8) emit(`${L(dst)} = view.getInt32(at, true); ${H(dst)} = view.getInt32(at + 4, true); }`);
      else {
        const read = size === 1 ? (signed ? "getInt8" : "getUint8") : size === 2 ? (signed ? "getInt16" : "getUint16") : "getInt32";
        const high = signed ? `${L(dst)} >> 31` : "0";
        emit(`${L(dst)} = view.${read}(at${size > 1 ? ", true" : ""}); ${H(dst)} = ${high}; }`);
      }
      continue;
    }
    if (cls === 2 || (opcode & 0xe0) === 0x60) {
      const lo = cls === 2 ? String(imm | 0) : L(src);
      const hi = cls === 2 ? (imm < 0 ? "-1" : "0") : H(src);
      emit(`{ ${access(dst, offset, size, slot)}`);
      if (size === 1) emit(`view.setUint8(at, ${lo} & 255); }`);
      else if (size === 2) emit(`view.setUint16(at, ${lo} & 65535, true); }`);
      else if (size === 4) emit(`view.setInt32(at, ${lo}, true); }`);
      else emit(`view.setInt32(at, ${lo}, true); view.setInt32(at + 4, ${hi}, true); }`);
      continue;
    }
    // atomic
    emit(`{ ${access(dst, offset, size, slot)}`);
    emit(`const old = atomic(${slot}, ${size}, ${imm}, ${H(dst)}, at, ${L(src)}, ${H(src)}, l0, h0);`);
    if ((imm & 0xf0) === 0xf0) emit(`l0 = old; h0 = scratch[0]; }`);
    else if ((imm & 1) !== 0) emit(`${L(src)} = old; ${H(src)} = scratch[0]; }`);
    else emit(`}`);
  }

  const registerNames = Array.from({ length: 11 }, (_, r) => `h${r} = 0, l${r} = 0`).join(", ");
  return `"use strict";
const { regions, views, stack, scratch, fail, multiplyHigh, divide, shift, swap32, atomic, callHelper, pseudo, stopped } = environment;
const registers = new Int32Array(12);
const returns = new Int32Array(${maximumCallDepth});
const saved = new Int32Array(${maximumCallDepth * 8});
const stackTop = ${stackSize * maximumCallDepth};
const slots = [${slots.join(",")}];
function overLimit(blockStart, before) {
  const index = blockStart + ${instructionLimit} - before;
  fail("instruction-limit", slots[index], "executed more than ${instructionLimit} instructions", "the program may loop forever; raise instructionLimit if it is just long");
}
function outOfBounds(slot, region, at, size, l10, limit) {
  const where = limit < 0 ? "not in any memory region" : region === ${stackRegion} && at >= 0 && at < (l10 >>> 0) - ${stackSize} ? "below the current 512-byte frame" : "beyond the end of the " + (region === ${packetRegion} ? "input memory" : region === ${stackRegion} ? "stack" : "mapped memory") + " (" + limit + " bytes)";
  fail("out-of-bounds", slot, size + "-byte access at region " + region + " offset " + at + " is " + where, "check bounds before the access");
}
return function run(memory, memoryView, initial, packetStart, packetLength) {
  let ${registerNames};
  let pc = 0, count = 0, depth = 0;
  ${usesStack ? `stack.fill(0, stackTop - ${stackSize});` : ""}
  if (initial === undefined) { h1 = ${packetRegion}; l2 = packetLength; }
  else { h1 = initial[2]; l1 = initial[3]; h2 = initial[4]; l2 = initial[5]; h3 = initial[6]; l3 = initial[7]; h4 = initial[8]; l4 = initial[9]; h5 = initial[10]; l5 = initial[11]; }
  h10 = ${stackRegion}; l10 = stackTop;
  for (;;) {
    switch (pc) {
${lines.join("\n")}
    default:
      fail("end-of-program", pc < 0 ? 0 : ${total - 1}, pc < 0 ? "a jump went before the first instruction" : "execution ran past the last instruction", "end every path with exit");
    }
    fail("end-of-program", ${total - 1}, "execution ran past the last instruction", "end every path with exit");
  }
};`;
}

/**
 * Code that checks a `size`-byte access at register + offset and sets `view`
 * and `at` (the input memory is the window [packetStart, packetStart + packetLength)).
 */
function access(register: number, offset: number, size: number, slot: number): string {
  const stackCheck = `(h${register} === ${stackRegion} && offset < (l10 >>> 0) - ${stackSize})`;
  return `const offset = (l${register} >>> 0) + ${offset}; const region = h${register}; const bytes = regions[region]; const limit = region === ${packetRegion} ? packetLength : bytes === undefined ? -1 : bytes.length; if (offset < 0 || offset + ${size} > limit || ${stackCheck}) outOfBounds(${slot}, region, offset, ${size}, l10, limit); const view = views[region]; const at = region === ${packetRegion} ? offset + packetStart : offset;`;
}

function jumpCondition(operation: number, narrow: boolean, al: string, ah: string, bl: string, bh: string, fromRegister: boolean, imm: number): string {
  const unsignedB = fromRegister ? `(${bl} >>> 0)` : String(imm >>> 0);
  const ua = `(${al} >>> 0)`;
  const unsignedLow = (relation: string) => `${ua} ${relation} ${unsignedB}`;
  const unsignedHighB = fromRegister ? `(${bh} >>> 0)` : imm < 0 ? "4294967295" : "0";
  const unsignedCompare = (strict: string, relation: string) =>
    narrow ? unsignedLow(relation) : `((${ah} >>> 0) ${strict} ${unsignedHighB} || (${ah} === ${bh} && ${unsignedLow(relation)}))`;
  const signedCompare = (strict: string, relation: string) =>
    narrow ? `${al} ${relation} ${bl}` : `(${ah} ${strict} ${bh} || (${ah} === ${bh} && ${unsignedLow(relation)}))`;
  switch (operation) {
    case 0x10: return narrow ? `${al} === ${bl}` : `${al} === ${bl} && ${ah} === ${bh}`;
    case 0x50: return narrow ? `${al} !== ${bl}` : `(${al} !== ${bl} || ${ah} !== ${bh})`;
    case 0x40: return narrow ? `(${al} & ${bl}) !== 0` : `((${al} & ${bl}) !== 0 || (${ah} & ${bh}) !== 0)`;
    case 0x20: return unsignedCompare(">", ">");
    case 0x30: return unsignedCompare(">", ">=");
    case 0xa0: return unsignedCompare("<", "<");
    case 0xb0: return unsignedCompare("<", "<=");
    case 0x60: return signedCompare(">", ">");
    case 0x70: return signedCompare(">", ">=");
    case 0xc0: return signedCompare("<", "<");
    case 0xd0: return signedCompare("<", "<=");
    // may_goto: no loop budget here, so it never jumps.
    case 0xe0: return "false";
  }
  throw new UsageError("compile eBPF program", `unknown jump operation 0x${operation.toString(16)}`);
}

function emitAlu(emit: (line: string) => void, wide: boolean, operation: number, dst: number, fromRegister: boolean, offset: number, imm: number, bl: string, bh: string, slot: number): void {
  const l = `l${dst}`;
  const h = `h${dst}`;
  if (operation === 0xd0) {
    const swap = wide || fromRegister;
    if (imm === 16) emit(swap ? `${l} = ((${l} & 255) << 8) | ((${l} >>> 8) & 255); ${h} = 0;` : `${l} &= 65535; ${h} = 0;`);
    else if (imm === 32) emit(swap ? `${l} = swap32(${l}); ${h} = 0;` : `${h} = 0;`);
    else if (swap) emit(`{ const low = ${l}; ${l} = swap32(${h}); ${h} = swap32(low); }`);
    return;
  }
  if (!wide) {
    let expression: string;
    switch (operation) {
      case 0x00: expression = `(${l} + ${bl}) | 0`; break;
      case 0x10: expression = `(${l} - ${bl}) | 0`; break;
      case 0x20: expression = `Math.imul(${l}, ${bl})`; break;
      case 0x30:
        expression = offset === 1 ? `(${bl} === 0 ? 0 : (${l} / ${bl}) | 0)` : `(${bl} === 0 ? 0 : ((${l} >>> 0) / (${bl} >>> 0)) | 0)`;
        break;
      case 0x40: expression = `${l} | ${bl}`; break;
      case 0x50: expression = `${l} & ${bl}`; break;
      case 0x60: expression = `${l} << (${bl} & 31)`; break;
      case 0x70: expression = `(${l} >>> (${bl} & 31)) | 0`; break;
      case 0x80: expression = `(-${l}) | 0`; break;
      case 0x90:
        expression = offset === 1 ? `(${bl} === 0 ? ${l} : (${l} % ${bl}) | 0)` : `(${bl} === 0 ? ${l} : ((${l} >>> 0) % (${bl} >>> 0)) | 0)`;
        break;
      case 0xa0: expression = `${l} ^ ${bl}`; break;
      case 0xb0: expression = offset === 8 ? `(${bl} << 24) >> 24` : offset === 16 ? `(${bl} << 16) >> 16` : bl; break;
      case 0xc0: expression = `${l} >> (${bl} & 31)`; break;
      default:
        emit(`fail("unsupported", ${slot}, "unknown ALU operation 0x${operation.toString(16)}");`);
        return;
    }
    emit(`${l} = ${expression}; ${h} = 0;`);
    return;
  }
  switch (operation) {
    case 0x00:
      emit(`{ const sum = (${l} >>> 0) + (${bl} >>> 0); ${h} = (${h} + ${bh} + (sum > 4294967295 ? 1 : 0)) | 0; ${l} = sum | 0; }`);
      return;
    case 0x10:
      emit(`{ const difference = (${l} >>> 0) - (${bl} >>> 0); ${h} = (${h} - ${bh} - (difference < 0 ? 1 : 0)) | 0; ${l} = difference | 0; }`);
      return;
    case 0x20:
      emit(`{ const b = ${bl}; ${h} = (multiplyHigh(${l}, b) + Math.imul(${h}, b) + Math.imul(${l}, ${bh})) | 0; ${l} = Math.imul(${l}, b); }`);
      return;
    case 0x30:
    case 0x90:
      if (offset !== 1) {
        // Fast path: both operands fit in 32 bits.
        const fast = operation === 0x30 ? `((${l} >>> 0) / (${bl} >>> 0)) | 0` : `((${l} >>> 0) % (${bl} >>> 0)) | 0`;
        emit(`if (${h} === 0 && ${bh} === 0 && ${bl} !== 0) { ${l} = ${fast}; } else { ${l} = divide(${operation}, false, ${l}, ${h}, ${bl}, ${bh}); ${h} = scratch[0]; }`);
      } else {
        emit(`${l} = divide(${operation}, true, ${l}, ${h}, ${bl}, ${bh}); ${h} = scratch[0];`);
      }
      return;
    case 0x40: emit(`${l} |= ${bl}; ${h} |= ${bh};`); return;
    case 0x50: emit(`${l} &= ${bl}; ${h} &= ${bh};`); return;
    case 0xa0: emit(`${l} ^= ${bl}; ${h} ^= ${bh};`); return;
    case 0x60:
    case 0x70:
    case 0xc0:
      emit(`${l} = shift(${operation}, ${l}, ${h}, ${bl} & 63); ${h} = scratch[0];`);
      return;
    case 0x80:
      emit(`${h} = (~${h} + (${l} === 0 ? 1 : 0)) | 0; ${l} = (-${l}) | 0;`);
      return;
    case 0xb0:
      if (offset === 0) emit(`${l} = ${bl}; ${h} = ${bh};`);
      else {
        const extended = offset === 8 ? `(${bl} << 24) >> 24` : offset === 16 ? `(${bl} << 16) >> 16` : `${bl} | 0`;
        emit(`${l} = ${extended}; ${h} = ${l} >> 31;`);
      }
      return;
  }
  emit(`fail("unsupported", ${slot}, "unknown ALU operation 0x${operation.toString(16)}");`);
}
