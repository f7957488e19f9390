/**
 * bpf(2): one typed attribute builder per command. Every function returns
 * plain numbers and Buffers; the core objects (Map, Program, Link) own the
 * file descriptors these return.
 */
import { Attribute } from "./attribute.js";
import { Command } from "./bpf-constants.js";
import { permissionHint, SyscallError, VerifierError } from "./errors.js";
import { lastErrno, syscall, syscallNumber } from "./libc.js";

const attributeSize = 160;

function hintFor(command: Command, code: string): string | undefined {
  if ((code === "EPERM" || code === "EACCES") && command !== Command.ObjPin) return permissionHint();
  if (code === "ENOSYS") return "this kernel has no bpf(2) system call (CONFIG_BPF_SYSCALL)";
  if (code === "E2BIG" && command === Command.MapCreate) return "the map is larger than the kernel accepts";
  if (code === "ENOENT" && (command === Command.MapLookupElem || command === Command.MapDeleteElem)) return "no such key";
  if (code === "ENOENT" && command === Command.ObjGet) return "nothing is pinned at that path";
  if (code === "EEXIST" && command === Command.ObjPin) return "something is already pinned at that path; unpin it first";
  if (code === "EPERM" && command === Command.ObjPin) return "the path must be inside a bpffs mount (e.g. /sys/fs/bpf), and you need root";
  if (code === "ENOTSUPP" || code === "EOPNOTSUPP") return "this kernel does not support the operation";
  return undefined;
}

export function bpf(command: Command, operation: string, attribute: Attribute): number {
  return syscall(operation, syscallNumber.bpf, command, attribute.buffer, attribute.buffer.length, 0, 0, (code) => hintFor(command, code));
}

/** Like bpf(), but returns -errno instead of throwing (for expected failures such as ENOENT). */
export function bpfRaw(command: Command, attribute: Attribute): number {
  try {
    return syscall("bpf", syscallNumber.bpf, command, attribute.buffer, attribute.buffer.length);
  } catch (error) {
    if (error instanceof SyscallError) return -error.errno;
    throw error;
  }
}

// ---- maps ------------------------------------------------------------------

export interface MapCreateAttributes {
  mapType: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  innerMapFd?: number;
  numaNode?: number;
  name?: string;
  ifindex?: number;
  btfFd?: number;
  btfKeyTypeId?: number;
  btfValueTypeId?: number;
  btfVmlinuxValueTypeId?: number;
  mapExtra?: bigint;
}

export function mapCreate(a: MapCreateAttributes): number {
  const attr = new Attribute(attributeSize)
    .u32(0, a.mapType).u32(4, a.keySize).u32(8, a.valueSize).u32(12, a.maxEntries)
    .u32(16, a.flags ?? 0).u32(20, a.innerMapFd ?? 0).u32(24, a.numaNode ?? 0)
    .fixedString(28, 16, a.name ?? "")
    .u32(44, a.ifindex ?? 0).u32(48, a.btfFd ?? 0).u32(52, a.btfKeyTypeId ?? 0).u32(56, a.btfValueTypeId ?? 0)
    .u32(60, a.btfVmlinuxValueTypeId ?? 0).u64(64, a.mapExtra ?? 0n);
  return bpf(Command.MapCreate, "map create", attr);
}

function elementAttribute(mapFd: number, key: Buffer | null, value: Buffer | null, flags: number | bigint): Attribute {
  return new Attribute(32).u32(0, mapFd).pointer(8, key).pointer(16, value).u64(24, flags);
}

/** Looks up `key`, filling `value`. Returns false when the key is absent. */
export function mapLookupElement(mapFd: number, key: Buffer | null, value: Buffer, flags = 0): boolean {
  const result = bpfRaw(Command.MapLookupElem, elementAttribute(mapFd, key, value, flags));
  if (result === -2) return false;
  if (result < 0) throw new SyscallError("map lookup", -result, hintFor(Command.MapLookupElem, ""));
  return true;
}

export function mapUpdateElement(mapFd: number, key: Buffer | null, value: Buffer, flags = 0): void {
  bpf(Command.MapUpdateElem, "map update", elementAttribute(mapFd, key, value, flags));
}

/** Deletes `key`. Returns false when the key was absent. */
export function mapDeleteElement(mapFd: number, key: Buffer): boolean {
  const result = bpfRaw(Command.MapDeleteElem, elementAttribute(mapFd, key, null, 0));
  if (result === -2) return false;
  if (result < 0) throw new SyscallError("map delete", -result);
  return true;
}

/** Pops from a queue/stack, or looks up and deletes a hash element. False when empty/absent. */
export function mapLookupAndDeleteElement(mapFd: number, key: Buffer | null, value: Buffer): boolean {
  const result = bpfRaw(Command.MapLookupAndDeleteElem, elementAttribute(mapFd, key, value, 0));
  if (result === -2) return false;
  if (result < 0) throw new SyscallError("map lookup and delete", -result);
  return true;
}

/** Writes the key after `key` (or the first key when `key` is null) into `nextKey`. False at the end. */
export function mapGetNextKey(mapFd: number, key: Buffer | null, nextKey: Buffer): boolean {
  const result = bpfRaw(Command.MapGetNextKey, elementAttribute(mapFd, key, nextKey, 0));
  if (result === -2) return false;
  if (result < 0) throw new SyscallError("map get next key", -result);
  return true;
}

export function mapFreeze(mapFd: number): void {
  bpf(Command.MapFreeze, "map freeze", new Attribute(8).u32(0, mapFd));
}

export interface BatchResult {
  /** Number of elements processed. */
  count: number;
  /** True when the map has no more elements after this batch. */
  done: boolean;
}

/**
 * One BPF_MAP_*_BATCH call. `inBatch`/`outBatch` are opaque cursors of the
 * key size (null in `inBatch` starts from the beginning).
 */
export function mapBatch(
  command: Command.MapLookupBatch | Command.MapLookupAndDeleteBatch | Command.MapUpdateBatch | Command.MapDeleteBatch,
  mapFd: number,
  options: { inBatch?: Buffer | null; outBatch?: Buffer | null; keys: Buffer | null; values: Buffer | null; count: number; elementFlags?: number },
): BatchResult {
  const attr = new Attribute(56)
    .pointer(0, options.inBatch ?? null).pointer(8, options.outBatch ?? null)
    .pointer(16, options.keys).pointer(24, options.values)
    .u32(32, options.count).u32(36, mapFd).u64(40, options.elementFlags ?? 0);
  const result = bpfRaw(command, attr);
  const count = attr.readU32(32);
  if (result === -2) return { count, done: true };
  if (result < 0) {
    const name = Command[command].replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
    throw new SyscallError(name, -result, -result === 22 || -result === 95 || -result === 524 ? "this map type or kernel has no batch operations" : undefined);
  }
  return { count, done: false };
}

// ---- programs --------------------------------------------------------------

export interface ProgramLoadAttributes {
  programType: number;
  instructions: Buffer;
  license: string;
  name?: string;
  expectedAttachType?: number;
  flags?: number;
  kernelVersion?: number;
  ifindex?: number;
  btfFd?: number;
  funcInfo?: { recordSize: number; data: Buffer; count: number };
  lineInfo?: { recordSize: number; data: Buffer; count: number };
  attachBtfId?: number;
  attachBtfObjectFd?: number;
  attachProgramFd?: number;
  fdArray?: Buffer;
  /** 0 = only fetch a log on failure, 1 = verifier log, 2 = verbose log. */
  logLevel?: number;
  /** Initial log buffer size in bytes when a log is fetched. */
  logSize?: number;
}

function programLoadAttribute(a: ProgramLoadAttributes, log: Buffer | null, logLevel: number): Attribute {
  const attr = new Attribute(attributeSize)
    .u32(0, a.programType).u32(4, a.instructions.length / 8).pointer(8, a.instructions)
    .string(16, a.license)
    .u32(24, log ? logLevel : 0).u32(28, log ? log.length : 0).pointer(32, log)
    .u32(40, a.kernelVersion ?? 0).u32(44, a.flags ?? 0)
    .fixedString(48, 16, a.name ?? "")
    .u32(64, a.ifindex ?? 0).u32(68, a.expectedAttachType ?? 0).u32(72, a.btfFd ?? 0);
  if (a.funcInfo) attr.u32(76, a.funcInfo.recordSize).pointer(80, a.funcInfo.data).u32(88, a.funcInfo.count);
  if (a.lineInfo) attr.u32(92, a.lineInfo.recordSize).pointer(96, a.lineInfo.data).u32(104, a.lineInfo.count);
  attr.u32(108, a.attachBtfId ?? 0).u32(112, a.attachProgramFd ?? a.attachBtfObjectFd ?? 0);
  if (a.fdArray) attr.pointer(120, a.fdArray);
  return attr;
}

export interface ProgramLoadResult {
  fd: number;
  /** The verifier log, when one was requested. */
  log: string;
}

const maxLogSize = 1 << 30;

/**
 * BPF_PROG_LOAD. Without a requested log the load runs silently; on a
 * rejection it is repeated with a verifier log (grown until the whole log
 * fits) and a VerifierError carries that log.
 */
export function programLoad(a: ProgramLoadAttributes): ProgramLoadResult {
  const requested = a.logLevel ?? 0;
  let logSize = Math.max(a.logSize ?? (requested > 0 ? 1 << 20 : 0), requested > 0 ? 4096 : 0);
  let log: Buffer | null = requested > 0 ? Buffer.alloc(logSize) : null;
  for (;;) {
    const attr = programLoadAttribute(a, log, Math.max(requested, 1));
    let fd = bpfRaw(Command.ProgLoad, attr);
    // EAGAIN: the verifier was interrupted by a signal; libbpf retries too.
    for (let retry = 0; fd === -11 && retry < 5; retry++) fd = bpfRaw(Command.ProgLoad, attr);
    if (fd >= 0) return { fd, log: log ? cString(log) : "" };
    const errno = -fd;
    const code = new SyscallError("program load", errno).code;
    // ENOSPC: the log did not fit. log_true_size (offset 140) says how much it needs.
    if (code === "ENOSPC" && log && log.length < maxLogSize) {
      const needed = attr.readU32(140);
      logSize = Math.min(maxLogSize, Math.max(needed + 1, log.length * 4));
      log = Buffer.alloc(logSize);
      continue;
    }
    if (!log && (code === "EACCES" || code === "EINVAL" || code === "E2BIG" || code === "EFAULT" || code === "ERANGE")) {
      logSize = 1 << 20;
      log = Buffer.alloc(logSize);
      continue;
    }
    const text = log ? cString(log) : "";
    if (text.trim().length > 0 && code !== "EPERM") {
      throw new VerifierError("program load", errno, code, text);
    }
    throw new SyscallError("program load", errno, hintFor(Command.ProgLoad, code));
  }
}

function cString(buffer: Buffer): string {
  const end = buffer.indexOf(0);
  return buffer.toString("utf8", 0, end < 0 ? buffer.length : end);
}

export interface TestRunAttributes {
  programFd: number;
  dataIn?: Buffer | null;
  dataOutSize?: number;
  contextIn?: Buffer | null;
  contextOutSize?: number;
  repeat?: number;
  flags?: number;
  cpu?: number;
  batchSize?: number;
}

export interface TestRunResult {
  returnValue: number;
  /** Mean duration of one run, in nanoseconds, as measured by the kernel. */
  duration: number;
  dataOut: Buffer | null;
  contextOut: Buffer | null;
}

export function programTestRun(a: TestRunAttributes): TestRunResult {
  const dataOut = a.dataOutSize ? Buffer.alloc(a.dataOutSize) : null;
  const contextOut = a.contextOutSize ? Buffer.alloc(a.contextOutSize) : null;
  const attr = new Attribute(80)
    .u32(0, a.programFd)
    .u32(8, a.dataIn?.length ?? 0).u32(12, dataOut?.length ?? 0).pointer(16, a.dataIn ?? null).pointer(24, dataOut)
    .u32(32, a.repeat ?? 1)
    .u32(40, a.contextIn?.length ?? 0).u32(44, contextOut?.length ?? 0).pointer(48, a.contextIn ?? null).pointer(56, contextOut)
    .u32(64, a.flags ?? 0).u32(68, a.cpu ?? 0).u32(72, a.batchSize ?? 0);
  bpf(Command.ProgTestRun, "program test run", attr);
  const dataOutSize = attr.readU32(12);
  const contextOutSize = attr.readU32(44);
  return {
    returnValue: attr.buffer.readInt32LE(4) >>> 0,
    duration: attr.readU32(36),
    dataOut: dataOut ? dataOut.subarray(0, Math.min(dataOutSize, dataOut.length)) : null,
    contextOut: contextOut ? contextOut.subarray(0, Math.min(contextOutSize, contextOut.length)) : null,
  };
}

export function programBindMap(programFd: number, mapFd: number): void {
  bpf(Command.ProgBindMap, "program bind map", new Attribute(12).u32(0, programFd).u32(4, mapFd));
}

// ---- objects: pins, ids, info ------------------------------------------------

export function objectPin(fd: number, path: string): void {
  bpf(Command.ObjPin, `pin ${path}`, new Attribute(24).string(0, path).u32(8, fd));
}

export function objectGet(path: string, fileFlags = 0): number {
  return bpf(Command.ObjGet, `open pinned ${path}`, new Attribute(24).string(0, path).u32(12, fileFlags));
}

export type ObjectKind = "program" | "map" | "link" | "btf";

const nextIdCommand = {
  program: Command.ProgGetNextId,
  map: Command.MapGetNextId,
  link: Command.LinkGetNextId,
  btf: Command.BtfGetNextId,
} as const;

const fdByIdCommand = {
  program: Command.ProgGetFdById,
  map: Command.MapGetFdById,
  link: Command.LinkGetFdById,
  btf: Command.BtfGetFdById,
} as const;

/** The id after `start` of a loaded object of `kind`, or undefined at the end. */
export function getNextId(kind: ObjectKind, start: number): number | undefined {
  const attr = new Attribute(12).u32(0, start);
  const result = bpfRaw(nextIdCommand[kind], attr);
  if (result === -2) return undefined;
  if (result < 0) throw new SyscallError(`${kind} get next id`, -result);
  return attr.readU32(4);
}

/** Opens a file descriptor to a loaded object by id. Undefined when it went away meanwhile. */
export function getFdById(kind: ObjectKind, id: number): number | undefined {
  const attr = new Attribute(12).u32(0, id);
  const result = bpfRaw(fdByIdCommand[kind], attr);
  if (result === -2) return undefined;
  if (result < 0) throw new SyscallError(`${kind} get fd by id ${id}`, -result);
  return result;
}

/** BPF_OBJ_GET_INFO_BY_FD into `info` (pointers inside `info` must already be set). Returns the length filled. */
export function objectGetInfo(fd: number, info: Buffer | Attribute, operation = "object info"): number {
  const buffer = info instanceof Attribute ? info.buffer : info;
  const attr = new Attribute(16).u32(0, fd).u32(4, buffer.length).pointer(8, buffer);
  bpf(Command.ObjGetInfoByFd, operation, attr);
  return attr.readU32(4);
}

export interface ProgramQueryResult {
  programIds: number[];
  linkIds: number[];
  attachFlags: number;
  revision: bigint;
}

/** BPF_PROG_QUERY: what is attached to a cgroup, tcx hook, netns … */
export function programQuery(targetFd: number, attachType: number, capacity = 64): ProgramQueryResult {
  const programIds = Buffer.alloc(capacity * 4);
  const linkIds = Buffer.alloc(capacity * 4);
  const attr = new Attribute(64).u32(0, targetFd).u32(4, attachType).pointer(16, programIds).u32(24, capacity).pointer(40, linkIds);
  bpf(Command.ProgQuery, "program query", attr);
  const count = Math.min(attr.readU32(24), capacity);
  const read = (b: Buffer) => Array.from({ length: count }, (_, i) => b.readUInt32LE(i * 4));
  return { programIds: read(programIds), linkIds: read(linkIds), attachFlags: attr.readU32(12), revision: attr.readU64(56) };
}

// ---- attach and links ------------------------------------------------------

export function programAttach(targetFd: number, programFd: number, attachType: number, flags = 0, replaceProgramFd = 0): void {
  bpf(Command.ProgAttach, "program attach", new Attribute(32).u32(0, targetFd).u32(4, programFd).u32(8, attachType).u32(12, flags).u32(16, replaceProgramFd));
}

export function programDetach(targetFd: number, programFd: number, attachType: number): void {
  bpf(Command.ProgDetach, "program detach", new Attribute(32).u32(0, targetFd).u32(4, programFd).u32(8, attachType));
}

export interface LinkCreateAttributes {
  programFd: number;
  targetFd: number;
  attachType: number;
  flags?: number;
  /** tcx/netkit ordering: a program or link fd/id to insert relative to. */
  relativeFdOrId?: number;
  expectedRevision?: bigint;
  /** perf_event links: a cookie readable with bpf_get_attach_cookie. */
  cookie?: bigint;
  targetBtfId?: number;
}

export function linkCreate(a: LinkCreateAttributes, operation = "link create"): number {
  const attr = new Attribute(64).u32(0, a.programFd).u32(4, a.targetFd).u32(8, a.attachType).u32(12, a.flags ?? 0);
  if (a.relativeFdOrId !== undefined || a.expectedRevision !== undefined) {
    attr.u32(16, a.relativeFdOrId ?? 0).u64(24, a.expectedRevision ?? 0n);
  } else if (a.cookie !== undefined) {
    attr.u64(16, a.cookie);
  } else if (a.targetBtfId !== undefined) {
    attr.u32(16, a.targetBtfId);
  }
  return bpf(Command.LinkCreate, operation, attr);
}

export function linkUpdate(linkFd: number, newProgramFd: number, oldProgramFd = 0): void {
  const flags = oldProgramFd ? 4 : 0;
  bpf(Command.LinkUpdate, "link update", new Attribute(16).u32(0, linkFd).u32(4, newProgramFd).u32(8, flags).u32(12, oldProgramFd));
}

export function linkDetach(linkFd: number): void {
  bpf(Command.LinkDetach, "link detach", new Attribute(8).u32(0, linkFd));
}

export function rawTracepointOpen(name: string | null, programFd: number): number {
  const attr = new Attribute(24).u32(8, programFd);
  if (name) attr.string(0, name);
  return bpf(Command.RawTracepointOpen, `attach raw tracepoint ${name ?? ""}`.trim(), attr);
}

export function enableStats(type = 0): number {
  return bpf(Command.EnableStats, "enable stats", new Attribute(4).u32(0, type));
}

// ---- BTF -------------------------------------------------------------------

export function btfLoad(data: Buffer, logLevel = 0): number {
  const attempt = (log: Buffer | null) =>
    bpfRaw(Command.BtfLoad, new Attribute(40).pointer(0, data).pointer(8, log).u32(16, data.length).u32(20, log?.length ?? 0).u32(24, log ? Math.max(1, logLevel) : 0));
  let fd = attempt(logLevel > 0 ? Buffer.alloc(1 << 20) : null);
  if (fd >= 0) return fd;
  const errno = -fd;
  if (errno === 1 || errno === 13 && logLevel === 0) {
    // Permission problems are not BTF problems; say so plainly.
    if (errno === 1) throw new SyscallError("BTF load", errno);
  }
  const log = Buffer.alloc(1 << 20);
  fd = bpfRaw(Command.BtfLoad, new Attribute(40).pointer(0, data).pointer(8, log).u32(16, data.length).u32(20, log.length).u32(24, 1));
  if (fd >= 0) return fd;
  const text = cString(log).trim();
  throw new SyscallError("BTF load", -fd, undefined, text ? `the kernel rejected the BTF: ${text.split("\n").slice(-3).join(" | ")}` : undefined);
}

/** For diagnostics: errno of the last failed call on this thread. */
export { lastErrno };
