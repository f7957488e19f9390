import { ProgramType, type AttachType } from "../sys/bpf-constants.js";
import { getFdById, objectGet, programLoad, programTestRun, type TestRunResult } from "../sys/bpf.js";
import { NetbpfError, SyscallError, UnsupportedFeatureError, UsageError, VerifierError } from "../sys/errors.js";
import { FileDescriptor } from "../sys/file-descriptor.js";
import { FdOwner } from "./fd-owner.js";
import { programInfo, type ProgramInfo } from "../sys/object-info.js";
import { encode, type Instruction } from "../asm/instruction.js";
import { patchMapReferences, type AssembledProgram } from "../asm/assembler.js";
// Gives every VerifierError its report() (the sys layer cannot import core).
import "./verifier-report.js";
// The program-type probe is features' (which uses only the sys layer): one probe answers both `netbpf features` and a failed load.
import { probeMayGoto, probeProgramType, probeSupport } from "../features/features.js";
import { argumentError, describeValue, expectBoolean, expectInstance, expectInteger, expectObject } from "../sys/argument-checks.js";

/** Where a program's instructions come from: raw bytes, a list, or the Assembler's output with map references. */
export type InstructionSource = Buffer | readonly Instruction[] | Pick<AssembledProgram, "instructions" | "references">;

/** A map as a loader may receive it: an object with an fd, or a raw fd number. */
export type MapHandle = number | { fd: { value: number } };

/** Everything needed to load a program: plain data, safe to build and change. */
export interface ProgramSpec {
  /** Up to 15 characters are kept by the kernel. */
  name?: string;
  type: ProgramType;
  /** Encoded instructions (8 bytes each, little-endian), an Instruction list, or an assembled program. */
  instructions: InstructionSource;
  /** "GPL" (or a GPL-compatible licence) is needed for GPL-only helpers. */
  license?: string;
  expectedAttachType?: AttachType;
  flags?: number;
  kernelVersion?: number;
  /** BTF and its func_info/line_info for this program, when it has any. */
  btf?: {
    fd: number;
    funcInfo?: { recordSize: number; data: Buffer; count: number };
    lineInfo?: { recordSize: number; data: Buffer; count: number };
  };
  attachBtfId?: number;
  attachBtfObjectFd?: number;
  fdArray?: number[];
}

export interface ProgramLoadOptions {
  /** 0: a log only on failure (default); 1: keep the verifier log; 2: verbose. */
  logLevel?: number;
  /** Initial log buffer size; grown automatically when too small. */
  logSize?: number;
  /** The maps an assembled program refers to by name (loadMapFd/loadMapValue). */
  maps?: Readonly<Record<string, MapHandle>> | ReadonlyMap<string, MapHandle>;
}

/** Encodes any instruction source, patching symbolic map references with the given maps. */
export function encodeInstructions(source: InstructionSource, maps: ProgramLoadOptions["maps"] = {}): Buffer {
  if (Buffer.isBuffer(source)) return source;
  if (Array.isArray(source)) return encode(source as readonly Instruction[]);
  const program = source as Pick<AssembledProgram, "instructions" | "references">;
  if (!Array.isArray(program?.instructions) || !Array.isArray(program.references)) {
    throw new UsageError("encode instructions", `source must be encoded instructions (a Buffer), an array of instructions or an assembled program, got ${describeValue(source)}`);
  }
  expectObject("encode instructions", "maps", maps);
  if (program.references.length === 0) return encode(program.instructions);
  const fds: Record<string, number> = {};
  const entries = maps instanceof Map ? [...maps.entries()] : Object.entries(maps as Record<string, MapHandle>);
  for (const [name, handle] of entries) fds[name] = typeof handle === "number" ? handle : handle.fd.value;
  return encode(patchMapReferences(program, fds));
}

export interface RunOptions {
  /** Packet or input data (e.g. an Ethernet frame for tc/XDP/socket filters). */
  data?: Buffer;
  /** Size of the output data buffer; defaults to the input size plus headroom for XDP/tc rewrites. */
  dataOutSize?: number;
  /** Program context (e.g. a struct __sk_buff or xdp_md). */
  context?: Buffer;
  contextOutSize?: number;
  /** Run this many times; the duration is the mean per run. */
  repeat?: number;
  flags?: number;
  cpu?: number;
}

export type { TestRunResult };

/** Whether encoded instructions hold a may_goto (opcode 0xe5). */
function usesMayGoto(instructions: Buffer): boolean {
  for (let offset = 0; offset < instructions.length; offset += 8) if (instructions[offset] === 0xe5) return true;
  return false;
}

/** Checks that `program` is a loaded Program (for the functions that attach or run one). */
export function expectProgram(operation: string, program: unknown, name = "program"): Program {
  return expectInstance(operation, name, program, Program, "a Program (from Program.load or a Collection)");
}

function optionalBuffer(name: string, value: unknown): void {
  if (value !== undefined && !Buffer.isBuffer(value)) throw argumentError("program test run", name, "a Buffer", value);
}

function optionalInteger(name: string, value: unknown, maximum: number): void {
  if (value !== undefined) expectInteger("program test run", name, value, 0, maximum);
}

function checkRunOptions(options: RunOptions): void {
  expectObject("program test run", "options", options, true);
  optionalBuffer("options.data", options.data);
  optionalBuffer("options.context", options.context);
  optionalInteger("options.dataOutSize", options.dataOutSize, 0xffff_ffff);
  optionalInteger("options.contextOutSize", options.contextOutSize, 0xffff_ffff);
  optionalInteger("options.repeat", options.repeat, 0xffff_ffff);
  optionalInteger("options.flags", options.flags, 0xffff_ffff);
  optionalInteger("options.cpu", options.cpu, 0xffff_ffff);
}

/** A loaded program. Owns its file descriptor (pin, close and `using` come from FdOwner). */
export class Program extends FdOwner {
  readonly fd: FileDescriptor;
  readonly type: ProgramType;
  readonly name: string;
  /** The verifier log when one was requested with logLevel > 0. */
  readonly verifierLog: string;

  private constructor(fd: number, type: ProgramType, name: string, verifierLog = "") {
    // Not for users: Program.load, openPinned, fromId and fromFd construct programs.
    expectInteger("construct Program", "fd", fd, 0);
    expectInteger("construct Program", "type", type, 0);
    super();
    this.fd = new FileDescriptor(fd);
    this.type = type;
    this.name = name;
    this.verifierLog = verifierLog;
  }

  /**
   * Loads and verifies a program. A rejection throws a VerifierError whose
   * `log` holds the whole verifier log and whose message points at the
   * failing instruction.
   */
  static load(spec: ProgramSpec, options: ProgramLoadOptions = {}): Program {
    expectObject("program load", "the program spec", spec);
    expectObject("program load", "the options", options, true);
    expectInteger("program load", "spec.type", spec.type, 0, 0xffffffff);
    const instructions = encodeInstructions(spec.instructions, options.maps);
    if (instructions.length === 0 || instructions.length % 8 !== 0) {
      throw new UsageError("program load", `instructions must be a non-empty multiple of 8 bytes, got ${instructions.length}`);
    }
    if (spec.name && !/^[A-Za-z0-9_.]*$/.test(spec.name)) {
      throw new UsageError("program load", `program name "${spec.name}" may only contain letters, digits, '_' and '.'`);
    }
    let fdArray: Buffer | undefined;
    if (spec.fdArray?.length) {
      fdArray = Buffer.alloc(spec.fdArray.length * 4);
      spec.fdArray.forEach((fd, i) => fdArray!.writeInt32LE(fd, i * 4));
    }
    const name = (spec.name ?? "").slice(0, 15);
    let result: ReturnType<typeof programLoad>;
    try {
      result = programLoad({
        programType: spec.type,
        instructions,
        license: spec.license ?? "GPL",
        name,
        expectedAttachType: spec.expectedAttachType,
        flags: spec.flags,
        kernelVersion: spec.kernelVersion,
        btfFd: spec.btf?.fd,
        funcInfo: spec.btf?.funcInfo,
        lineInfo: spec.btf?.lineInfo,
        attachBtfId: spec.attachBtfId,
        attachBtfObjectFd: spec.attachBtfObjectFd,
        fdArray,
        logLevel: options.logLevel,
        logSize: options.logSize,
      });
    } catch (error) {
      if (error instanceof VerifierError && usesMayGoto(instructions) && probeSupport(probeMayGoto).support === "no") {
        throw new UnsupportedFeatureError("program load", "the may_goto instruction (Linux 6.9 or later), which netbpf's code for `protochain` loops over IPv6 extension headers with",
          "filter saved packets instead (`capture -r`, whose user-space filter has no such limit), or run on Linux 6.9 or later");
      }
      if (error instanceof SyscallError && !(error instanceof VerifierError) && error.code === "EINVAL" && probeSupport(() => probeProgramType(spec.type)).support === "no") {
        throw new UnsupportedFeatureError("program load", `${ProgramType[spec.type] ?? `program type ${spec.type}`} programs`, "run `netbpf features` to see the program types this kernel has");
      }
      throw error;
    }
    return new Program(result.fd, spec.type, name, result.log);
  }

  /** Opens a program pinned in bpffs. */
  static openPinned(path: string): Program {
    const fd = objectGet(path);
    return Program.fromFd(fd);
  }

  /** Opens a loaded program by its id (as `netbpf prog list` shows). */
  static fromId(id: number): Program {
    const fd = getFdById("program", id);
    if (fd === undefined) throw new NetbpfError("open program", `no program with id ${id}`, "list programs with `netbpf prog list`");
    return Program.fromFd(fd);
  }

  /** Takes ownership of an existing program file descriptor. */
  static fromFd(fd: number): Program {
    expectInteger("open program", "fd", fd, 0);
    try {
      const info = programInfo(fd);
      return new Program(fd, info.type, info.name);
    } catch (error) {
      new FileDescriptor(fd).close();
      throw error;
    }
  }

  info(options: { instructions?: boolean } = {}): ProgramInfo {
    expectObject("program info", "options", options, true);
    expectBoolean("program info", "options.instructions", options.instructions, true);
    return programInfo(this.fd.value, options);
  }

  get id(): number {
    return this.info().id;
  }

  /**
   * BPF_PROG_TEST_RUN: runs the program in the kernel over `data` and/or
   * `context`, returning its return value and the kernel-measured mean
   * duration per run in nanoseconds.
   */
  run(options: RunOptions = {}): TestRunResult {
    checkRunOptions(options);
    // Raw tracepoint test runs take only a context: the kernel refuses a repeat count and output buffers.
    if (this.type === ProgramType.RawTracepoint || this.type === ProgramType.RawTracepointWritable) {
      return programTestRun({ programFd: this.fd.value, contextIn: options.context ?? null, repeat: options.repeat ?? 0, flags: options.flags, cpu: options.cpu });
    }
    const dataOutSize = options.dataOutSize ?? (options.data ? options.data.length + 256 : 0);
    return programTestRun({
      programFd: this.fd.value,
      dataIn: options.data ?? null,
      dataOutSize,
      contextIn: options.context ?? null,
      contextOutSize: options.contextOutSize ?? (options.context ? options.context.length : 0),
      repeat: options.repeat,
      flags: options.flags,
      cpu: options.cpu,
    });
  }
}
