/**
 * Runs a capture filter over saved packets (`capture -r`). The default
 * engine compiles the filter's eBPF to JavaScript (JavaScriptProgram): tens
 * of nanoseconds per packet, against a system call of several microseconds
 * per packet for a BPF_PROG_TEST_RUN in the kernel and a few hundred
 * nanoseconds for the interpreter (bench/offline-capture.ts, bench/interpreter.ts).
 * The kernel and the interpreter stay available as references.
 */
import { Interpreter } from "../asm/interpreter.js";
import { JavaScriptProgram, testWindowUnchecked, windowError } from "../asm/javascript-program.js";
import type { Program } from "../core/program.js";
import type { CapturePacket } from "../pcap/capture-record.js";
import { LinkType, linkTypeName } from "../pcap/link-type.js";
import { argumentError, expectObject, expectOneOf, isUint32 } from "../sys/argument-checks.js";
import { ProgramType } from "../sys/bpf-constants.js";
import { SyscallError } from "../sys/errors.js";
import { offlineTestRunContext, offlineUndecided, type CaptureFilter } from "./capture-filter.js";

/** Where the filter runs: compiled to JavaScript, in the kernel (BPF_PROG_TEST_RUN), or in the interpreter. */
export type OfflineFilterEngine = "javascript" | "kernel" | "interpreter";

export interface OfflineFilterOptions {
  /** Default "javascript" (falls back to the interpreter where code generation is disabled). */
  engine?: OfflineFilterEngine;
}

const operation = "offline filter";

/** What is wrong with a packet given to matches() (once a check failed). */
function packetError(packet: unknown): Error {
  if (typeof packet !== "object" || packet === null) return argumentError(operation, "packet", "a packet (data and originalLength)", packet);
  const { data, originalLength } = packet as Partial<CapturePacket>;
  if (!(data instanceof Uint8Array)) return argumentError(operation, "packet.data", "a Buffer or Uint8Array", data);
  return argumentError(operation, "packet.originalLength", "an integer from 0 to 4294967295", originalLength);
}

/** core/program (and with it the FFI), loaded by OfflineFilter.create() only for the kernel engine: offline filtering starts without it. */
let programModule: typeof import("../core/program.js") | undefined;

export class OfflineFilter {
  /**
   * A filter on the requested engine. Use this for `{ engine: "kernel" }`:
   * it loads what the kernel engine needs (the constructor alone runs the
   * kernel engine only once that is loaded, and falls back otherwise).
   */
  static async create(filter: CaptureFilter, options: OfflineFilterOptions = {}): Promise<OfflineFilter> {
    if (options.engine === "kernel") programModule ??= await import("../core/program.js");
    return new OfflineFilter(filter, options);
  }

  readonly filter: CaptureFilter;
  /** The engine that runs the filter (kernel packets it refuses go to the interpreter). */
  readonly engine: OfflineFilterEngine;
  #kernel: Program | undefined;
  #compiled: JavaScriptProgram | undefined;
  #interpreter: Interpreter | undefined;
  /** Why the requested engine is not used, if it is not. */
  readonly unavailable: string | undefined;
  /** Packets the kernel refused (too large for an skb test run, or too short), run in the interpreter instead. */
  refusedByKernel = 0;

  constructor(filter: CaptureFilter, options: OfflineFilterOptions = {}) {
    if (!Array.isArray((filter as Partial<CaptureFilter> | null)?.interpreterProgram?.instructions)) {
      throw argumentError(operation, "filter", "a CaptureFilter (from compileCaptureFilter)", filter);
    }
    expectObject(operation, "options", options, true);
    if (options.engine !== undefined) expectOneOf(operation, "options.engine", options.engine, ["javascript", "kernel", "interpreter"]);
    this.filter = filter;
    const requested = options.engine ?? "javascript";
    let engine: OfflineFilterEngine = requested;
    let unavailable: string | undefined;
    if (requested === "kernel") {
      if (filter.linkType !== LinkType.ETHERNET) {
        unavailable = `link type ${linkTypeName(filter.linkType)}: a tc test run needs Ethernet frames`;
      } else if (programModule === undefined) {
        unavailable = "the kernel engine is loaded by OfflineFilter.create()";
      } else {
        try {
          this.#kernel = programModule.Program.load({ type: ProgramType.SchedCls, instructions: filter.offlineProgram, name: "capture_filter" });
        } catch (error) {
          unavailable = error instanceof Error ? error.message : String(error);
        }
      }
      if (unavailable !== undefined) engine = "javascript";
    }
    if (engine === "javascript") {
      try {
        this.#compiled = new JavaScriptProgram(filter.interpreterProgram.instructions);
      } catch (error) {
        // e.g. node --disallow-code-generation-from-strings
        unavailable ??= `compiling to JavaScript failed: ${error instanceof Error ? error.message : String(error)}`;
        engine = "interpreter";
      }
    }
    this.engine = engine;
    this.unavailable = unavailable;
  }

  /** Whether the packet passes the filter (its `data` and `originalLength` are what the filter reads). */
  matches(packet: CapturePacket): boolean {
    if (typeof packet !== "object" || packet === null || !(packet.data instanceof Uint8Array) || !isUint32(packet.originalLength)) throw packetError(packet);
    return this.#matches(packet.data, 0, packet.data.length, packet.originalLength);
  }

  /** matches() for a packet that is the bytes [start, start + length) of `buffer` (see PcapScanner). */
  matchesBytes(buffer: Buffer, start: number, length: number, originalLength: number): boolean {
    if (!(buffer instanceof Uint8Array) || start >>> 0 !== start || length >>> 0 !== length || start + length > buffer.length || !isUint32(originalLength)) throw windowError(operation, "buffer", buffer, start, length, { originalLength });
    return this.#matches(buffer, start, length, originalLength);
  }

  #matches(buffer: Uint8Array, start: number, length: number, originalLength: number): boolean {
    const compiled = this.#compiled;
    if (compiled !== undefined) return testWindowUnchecked(compiled, buffer, start, length, originalLength, 0);
    const data = start === 0 && length === buffer.length ? buffer : buffer.subarray(start, start + length);
    // The kernel program reads `len` from the test run's wire_len (the record's original length); it answers
    // "undecided" if its loop budget ever stopped a protochain walk short, and the interpreter decides.
    const context = this.#kernel !== undefined ? offlineTestRunContext(data.length, originalLength) : undefined;
    if (this.#kernel !== undefined && context !== undefined) {
      try {
        const result = this.#kernel.run({ data: Buffer.from(data), context });
        if (result.returnValue !== offlineUndecided) return result.returnValue !== 0;
      } catch (error) {
        if (!(error instanceof SyscallError && error.code === "EINVAL")) throw error;
        this.refusedByKernel++;
      }
    }
    this.#interpreter ??= new Interpreter(this.filter.interpreterProgram.instructions);
    return this.#interpreter.run(data, { registers: { 3: originalLength, 4: 0 } }).returnValue !== 0n;
  }

  close(): void {
    this.#kernel?.close();
    this.#kernel = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
