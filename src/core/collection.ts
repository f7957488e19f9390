import { existsSync, mkdirSync, rmdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { Btf } from "../btf/btf.js";
import { resolveCoreRelocation } from "../btf/core-relocation.js";
import { applyCoreRelocation } from "../btf/apply-core-relocation.js";
import { loadKernelBtf } from "../btf/kernel-btf.js";
import { encodeKconfigValue, findAttachBtfId, findKernelFunction, findKernelVariable, kernelSymbolAddress, kernelVersionCode, readKernelConfig, type AttachBtfKind } from "../btf/kernel-symbols.js";
import { pageSize } from "../sys/memory-mapping.js";
import { possibleCpuCount } from "../sys/cpus.js";
import type { CollectionMapSpec, CollectionProgramSpec, CollectionSpec } from "../elf/collection-spec.js";
import { AttachType, MapFlag, MapType, ProgramType } from "../sys/bpf-constants.js";
import { btfLoad, objectGet } from "../sys/bpf.js";
import { btfForKernel } from "./btf-support.js";
import { VerifierError, NetbpfError, UsageError } from "../sys/errors.js";
import { argumentError, expectArray, expectInstance, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { FileDescriptor } from "../sys/file-descriptor.js";
import { BpfMap, type MapSpec } from "./map.js";
import { Program, type ProgramLoadOptions } from "./program.js";

export interface CollectionOptions extends Pick<ProgramLoadOptions, "logLevel" | "logSize"> {
  /**
   * bpffs folder for maps declared with `__uint(pinning, LIBBPF_PIN_BY_NAME)`
   * (default /sys/fs/bpf). A compatible map pinned there is reused; an
   * incompatible one is an error.
   */
  pinPath?: string;
  /**
   * Load the object's BTF and give it to maps and programs (func_info,
   * line_info). "auto" (default): use it when the kernel accepts it,
   * otherwise load without it; true: fail when it cannot be loaded; false: never.
   */
  btf?: boolean | "auto";
  /** Target BTF for CO-RE relocations (default: the running kernel's). */
  kernelBtf?: Btf;
  /** Load only these programs (default: all). Maps are always all created. */
  programs?: string[];
  /** Use these already-open maps instead of creating the maps of the same name. */
  replaceMaps?: Record<string, BpfMap<any, any>>;
}

/** How the collection was loaded, for diagnostics. */
export interface CollectionLoadReport {
  /** True when the object's BTF was loaded into the kernel. */
  btfLoaded: boolean;
  /** True when kinds this kernel lacks were rewritten first (see kernelBtfFeatures). */
  btfSanitized: boolean;
  /** Why BTF was not used, when it was not. */
  btfProblem: string | undefined;
  /** Maps reused from pins (name → path). */
  reusedPins: Record<string, string>;
  /** Maps pinned by this load (name → path). */
  createdPins: Record<string, string>;
  /** The first folder this load created for pins (removed again if the load fails). */
  createdPinFolder?: string;
  /** Where `.kconfig` values came from (the kernel config file), when the object has any. */
  kconfigSource?: string;
}

const operation = "load collection";

/**
 * The live kernel objects of a CollectionSpec: its maps and programs, each
 * owning a file descriptor. `close()` (or `using`) closes them all.
 */
export class Collection {
  readonly programs: Readonly<Record<string, Program>>;
  readonly maps: Readonly<Record<string, BpfMap>>;
  readonly report: CollectionLoadReport;
  readonly #btf: FileDescriptor | undefined;

  private constructor(programs: Record<string, Program>, maps: Record<string, BpfMap>, btf: FileDescriptor | undefined, report: CollectionLoadReport) {
    // Not for users: Collection.load constructs collections.
    expectObject("construct Collection", "programs", programs);
    expectObject("construct Collection", "maps", maps);
    expectObject("construct Collection", "report", report);
    this.programs = programs;
    this.maps = maps;
    this.#btf = btf;
    this.report = report;
  }

  /**
   * Creates the maps (reusing pinned ones), writes global data and freezes
   * .rodata, fills prog arrays and maps of maps, and loads the programs with
   * map references patched in. On any failure everything created so far is
   * closed (and pins made by this call removed) before the error is thrown.
   */
  static load(spec: CollectionSpec, options: CollectionOptions = {}): Collection {
    checkLoadArguments(spec, options);
    const programs: Record<string, Program> = Object.create(null);
    const maps: Record<string, BpfMap> = Object.create(null);
    const report: CollectionLoadReport = { btfLoaded: false, btfSanitized: false, btfProblem: undefined, reusedPins: {}, createdPins: {} };
    let btf: FileDescriptor | undefined;
    const replaced = new Set(Object.values(options.replaceMaps ?? {}));
    if (spec.structOpsSections?.length) {
      throw new UsageError(operation, `the object has ${spec.structOpsSections.join(" and ")} (struct_ops maps), which netbpf cannot load`, "struct_ops need kernel struct_ops type registration that netbpf does not do; load this object with libbpf");
    }
    const unresolvedKconfig = fillKconfig(spec, report);
    try {
      btf = loadBtf(spec, options, report);
      for (const [name, mapSpec] of Object.entries(spec.maps)) {
        const replacement = options.replaceMaps?.[name];
        maps[name] = replacement ? checkReplacement(name, replacement, mapSpec) : createMap(mapSpec, btf, options, report);
      }
      for (const [name, mapSpec] of Object.entries(spec.maps)) {
        if (report.reusedPins[name] || replaced.has(maps[name]!)) continue;
        writeInitialData(maps[name]!, mapSpec);
      }
      const wanted = options.programs ?? Object.keys(spec.programs);
      for (const name of wanted) {
        const programSpec = spec.programs[name];
        if (!programSpec) throw new UsageError(operation, `the object has no program "${name}"`, `programs: ${Object.keys(spec.programs).join(", ")}`);
        programs[name] = loadProgram(programSpec, spec, maps, btf, options, unresolvedKconfig);
      }
      for (const [name, mapSpec] of Object.entries(spec.maps)) {
        if (report.reusedPins[name] || replaced.has(maps[name]!)) continue;
        fillSlots(maps[name]!, mapSpec, programs, maps);
      }
      return new Collection(programs, maps, btf, report);
    } catch (error) {
      for (const program of Object.values(programs)) program.close();
      for (const map of Object.values(maps)) if (!replaced.has(map)) map.close();
      btf?.close();
      for (const path of Object.values(report.createdPins)) {
        try {
          unlinkSync(path);
        } catch {
          // Already gone: nothing to undo.
        }
      }
      if (report.createdPinFolder) removeCreatedFolders(report.createdPinFolder, options.pinPath ?? "/sys/fs/bpf");
      throw error;
    }
  }

  /** The loaded object's BTF file descriptor, when BTF was loaded. */
  get btfFd(): number | undefined {
    return this.#btf?.value;
  }

  close(): void {
    for (const program of Object.values(this.programs)) program.close();
    for (const map of Object.values(this.maps)) map.close();
    this.#btf?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function loadBtf(spec: CollectionSpec, options: CollectionOptions, report: CollectionLoadReport): FileDescriptor | undefined {
  const mode = options.btf ?? "auto";
  if (mode === false) {
    report.btfProblem = "disabled by the btf option";
    return undefined;
  }
  if (!spec.btf) {
    if (mode === true) throw new UsageError(operation, "the object has no BTF", "build with `clang -g`, or load with btf: false");
    report.btfProblem = "the object has no BTF";
    return undefined;
  }
  try {
    const { bytes, sanitized } = btfForKernel(spec.btf);
    const fd = new FileDescriptor(btfLoad(bytes));
    report.btfLoaded = true;
    report.btfSanitized = sanitized;
    return fd;
  } catch (error) {
    if (mode === true || !(error instanceof NetbpfError)) throw error;
    report.btfProblem = error.message;
    return undefined;
  }
}

/** Flags the kernel reports for a map created from this spec. */
function effectiveFlags(spec: CollectionMapSpec): number {
  return spec.type === MapType.LpmTrie ? spec.flags | MapFlag.NoPrealloc : spec.flags;
}

/**
 * The size the kernel gets for a map, adjusted as libbpf adjusts it: a perf
 * event array left at 0 entries gets one per possible CPU; ring buffer sizes
 * are rounded up to a power-of-2 number of pages.
 */
export function kernelMaxEntries(spec: Pick<CollectionMapSpec, "type" | "maxEntries">): number {
  expectObject("kernel max entries", "spec", spec);
  expectInteger("kernel max entries", "spec.type", spec.type, 0);
  expectInteger("kernel max entries", "spec.maxEntries", spec.maxEntries, 0);
  if (spec.type === MapType.PerfEventArray && spec.maxEntries === 0) return possibleCpuCount();
  if ((spec.type === MapType.Ringbuf || spec.type === MapType.UserRingbuf) && spec.maxEntries > 0) {
    const page = pageSize();
    const size = spec.maxEntries;
    if (size % page === 0 && isPowerOfTwo(size / page)) return size;
    for (let pages = 1; pages * page <= 0xffffffff; pages *= 2) if (pages * page > size) return pages * page;
  }
  return spec.maxEntries;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function toMapSpec(spec: CollectionMapSpec, btf: FileDescriptor | undefined): MapSpec {
  const mapSpec: MapSpec = {
    name: spec.name.slice(0, 15),
    type: spec.type,
    keySize: spec.keySize,
    valueSize: spec.valueSize,
    maxEntries: kernelMaxEntries(spec),
    flags: spec.flags,
    numaNode: spec.numaNode,
    mapExtra: spec.mapExtra,
  };
  if (spec.innerMap) mapSpec.innerMap = toMapSpec(spec.innerMap, undefined);
  if (btf && spec.btfValueTypeId !== 0 && !spec.innerMap && !spec.initialSlots.length && spec.type !== MapType.ProgArray) {
    mapSpec.btf = { fd: btf.value, keyTypeId: spec.btfKeyTypeId, valueTypeId: spec.btfValueTypeId };
  }
  return mapSpec;
}

function createMap(spec: CollectionMapSpec, btf: FileDescriptor | undefined, options: CollectionOptions, report: CollectionLoadReport): BpfMap {
  if (spec.pinning === "byName") {
    const folder = options.pinPath ?? "/sys/fs/bpf";
    const path = join(folder, spec.name);
    if (existsSync(path)) {
      const pinned = BpfMap.fromFd(objectGet(path));
      const problems = incompatibilities(pinned, spec);
      if (problems.length > 0) {
        pinned.close();
        throw new NetbpfError(operation, `map "${spec.name}" is pinned at ${path} with a different shape: ${problems.join(", ")}`,
          `remove the old pin (rm ${path}) or choose another pinPath`);
      }
      report.reusedPins[spec.name] = path;
      return pinned;
    }
    const map = createWithBtfFallback(spec, btf);
    try {
      // Private like bpftool's and the state store's folders: pins grant access to the objects.
      const created = mkdirSync(folder, { recursive: true, mode: 0o700 });
      if (created && !report.createdPinFolder) report.createdPinFolder = created;
      map.pin(path);
    } catch (error) {
      map.close();
      throw error;
    }
    report.createdPins[spec.name] = path;
    return map;
  }
  return createWithBtfFallback(spec, btf);
}

/** Creates a map with its BTF types; if the kernel refuses the BTF for it, without. */
function createWithBtfFallback(spec: CollectionMapSpec, btf: FileDescriptor | undefined): BpfMap {
  const mapSpec = toMapSpec(spec, btf);
  if (!mapSpec.btf) return BpfMap.create(mapSpec);
  try {
    return BpfMap.create(mapSpec);
  } catch (error) {
    if (!(error instanceof NetbpfError)) throw error;
    return BpfMap.create({ ...mapSpec, btf: undefined });
  }
}

function incompatibilities(map: BpfMap, spec: CollectionMapSpec): string[] {
  const problems: string[] = [];
  const compare = (what: string, actual: number, expected: number, show: (n: number) => string = String) => {
    if (actual !== expected) problems.push(`${what} ${show(actual)} (the object wants ${show(expected)})`);
  };
  compare("type", map.type, spec.type, (n) => MapType[n] ?? String(n));
  compare("key size", map.keySize, spec.keySize);
  compare("value size", map.valueSize, spec.valueSize);
  compare("max entries", map.maxEntries, kernelMaxEntries(spec));
  compare("flags", map.flags, effectiveFlags(spec), (n) => `0x${n.toString(16)}`);
  return problems;
}

/** The spec comes from loadCollectionSpec; the options' fields have their documented types. */
function checkLoadArguments(spec: CollectionSpec, options: CollectionOptions): void {
  expectObject(operation, "spec", spec);
  expectObject(operation, "spec.programs", spec.programs);
  expectObject(operation, "spec.maps", spec.maps);
  expectObject(operation, "options", options);
  if (options.pinPath !== undefined) expectString(operation, "options.pinPath", options.pinPath);
  if (options.btf !== undefined && typeof options.btf !== "boolean" && options.btf !== "auto") throw argumentError(operation, "options.btf", 'true, false or "auto"', options.btf);
  if (options.kernelBtf !== undefined) expectInstance(operation, "options.kernelBtf", options.kernelBtf, Btf, "a Btf (from loadKernelBtf)");
  if (options.programs !== undefined) {
    for (const name of expectArray(operation, "options.programs", options.programs)) {
      if (typeof name !== "string") throw argumentError(operation, "options.programs", "an array of program names", options.programs);
    }
  }
  if (options.replaceMaps !== undefined) {
    for (const [name, map] of Object.entries(expectObject(operation, "options.replaceMaps", options.replaceMaps))) {
      expectInstance(operation, `options.replaceMaps.${name}`, map, BpfMap, "a BpfMap");
    }
  }
}

function checkReplacement(name: string, map: BpfMap, spec: CollectionMapSpec): BpfMap {
  const problems = incompatibilities(map, spec);
  if (problems.length > 0) throw new UsageError(operation, `replacement for map "${name}" does not match: ${problems.join(", ")}`);
  return map;
}

function writeInitialData(map: BpfMap, spec: CollectionMapSpec): void {
  if (!spec.data) return;
  const contents = spec.data.contents;
  if (contents.length !== spec.valueSize) throw new UsageError(operation, `contents of ${spec.name} are ${contents.length} bytes, the section is ${spec.valueSize}`);
  map.put(Buffer.alloc(4), contents);
  if (spec.data.readOnly) map.freeze();
}

function fillSlots(map: BpfMap, spec: CollectionMapSpec, programs: Record<string, Program>, maps: Record<string, BpfMap>): void {
  for (const slot of spec.initialSlots) {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(slot.index);
    const target = slot.kind === "program" ? programs[slot.name] : maps[slot.name];
    // A program left out with the `programs` option leaves its slot empty.
    if (!target) continue;
    map.putFd(key, target);
  }
}

function loadProgram(spec: CollectionProgramSpec, collection: CollectionSpec, maps: Record<string, BpfMap>, btf: FileDescriptor | undefined, options: CollectionOptions,
  unresolvedKconfig: Map<string, string>): Program {
  if (spec.loadError) throw new UsageError(operation, `program "${spec.name}" (section "${spec.section}") cannot be loaded: ${spec.loadError}`, "the object's other programs can still be loaded (choose them with the programs option / --program)");
  if (spec.type === ProgramType.Unspec) {
    throw new UsageError(operation, `program "${spec.name}" is in section "${spec.section}", which does not say its program type`, "use a libbpf section name (see docs/elf.md) or set spec.programs[name].type");
  }
  const attachBtfId = spec.needsAttachBtfId ? resolveAttachBtfId(spec, options) : undefined;
  const instructions = Buffer.from(spec.instructions);
  resolveExterns(spec, collection, instructions, options, unresolvedKconfig);
  for (const reference of spec.mapReferences) {
    const map = maps[reference.map];
    if (!map) throw new UsageError(operation, `program "${spec.name}" refers to map "${reference.map}", which the collection does not have`);
    const at = reference.slot * 8;
    if (at + 16 > instructions.length || instructions[at] !== 0x18) {
      throw new UsageError(operation, `program "${spec.name}": map reference at slot ${reference.slot} is not a 64-bit load`);
    }
    instructions[at + 1] = ((reference.kind === "map" ? 1 : 2) << 4) | (instructions[at + 1]! & 0x0f);
    instructions.writeInt32LE(map.fd.value, at + 4);
    instructions.writeInt32LE(reference.kind === "value" ? reference.offset : 0, at + 12);
  }
  if (spec.coreRelocations.length > 0) {
    const local = collection.parsedBtf;
    if (!local) throw new UsageError(operation, `program "${spec.name}" has CO-RE relocations but the object has no BTF`);
    const target = options.kernelBtf ?? loadKernelBtf();
    for (const { slot, relocation } of spec.coreRelocations) {
      applyCoreRelocation(instructions, slot, resolveCoreRelocation(local, relocation, target));
    }
  }
  let btfInfo: NonNullable<Parameters<typeof Program.load>[0]["btf"]> | undefined;
  if (btf && spec.functionInfo.length > 0) {
    const functionInfo = Buffer.alloc(spec.functionInfo.length * 8);
    spec.functionInfo.forEach((record, i) => {
      functionInfo.writeUInt32LE(record.slot, i * 8);
      functionInfo.writeUInt32LE(record.typeId, i * 8 + 4);
    });
    btfInfo = { fd: btf.value, funcInfo: { recordSize: 8, data: functionInfo, count: spec.functionInfo.length } };
    if (spec.lineInfo.length > 0) {
      const lineInfo = Buffer.alloc(spec.lineInfo.length * 16);
      spec.lineInfo.forEach((record, i) => {
        lineInfo.writeUInt32LE(record.slot, i * 16);
        lineInfo.writeUInt32LE(record.fileNameOffset, i * 16 + 4);
        lineInfo.writeUInt32LE(record.lineOffset, i * 16 + 8);
        lineInfo.writeUInt32LE(((record.lineNumber << 10) | (record.column & 0x3ff)) >>> 0, i * 16 + 12);
      });
      btfInfo.lineInfo = { recordSize: 16, data: lineInfo, count: spec.lineInfo.length };
    }
  }
  try {
    return Program.load({
      name: spec.name.slice(0, 15),
      type: spec.type,
      instructions,
      license: spec.license || collection.license || "GPL",
      expectedAttachType: spec.expectedAttachType,
      flags: spec.flags,
      kernelVersion: spec.kernelVersion,
      btf: btfInfo,
      attachBtfId,
    }, { logLevel: options.logLevel, logSize: options.logSize });
  } catch (error) {
    // Keep the error's class (a VerifierError carries the log) and say which program it was.
    if (error instanceof NetbpfError) error.message = `program "${spec.name}" (section "${spec.section}"): ${error.message}`;
    if (error instanceof VerifierError && spec.lineInfo.length > 0) error.lineInfo = spec.lineInfo;
    throw error;
  }
}

/** Removes the empty folders a failed load created for its pins, from the deepest up to `created`. */
function removeCreatedFolders(created: string, folder: string): void {
  for (let path = folder; path.length >= created.length && path.startsWith(created); path = path.slice(0, path.lastIndexOf("/"))) {
    try {
      rmdirSync(path);
    } catch {
      return; // Not empty (someone else's pins) or already gone.
    }
    if (path === created) return;
  }
}

/** Writes the `.kconfig` values of the running kernel into the ".kconfig" map's data; returns the externs that could not be resolved, with why. */
function fillKconfig(spec: CollectionSpec, report: CollectionLoadReport): Map<string, string> {
  const unresolved = new Map<string, string>();
  const data = spec.maps[".kconfig"]?.data;
  if (!data) return unresolved;
  const local = spec.parsedBtf!;
  let config: ReturnType<typeof readKernelConfig> | null = null;
  for (const extern of Object.values(spec.externs ?? {})) {
    if (extern.kind !== "kconfig") continue;
    let raw: string | undefined;
    if (extern.name === "LINUX_KERNEL_VERSION") {
      raw = String(kernelVersionCode());
    } else if (extern.name.startsWith("CONFIG_")) {
      if (config === null) config = readKernelConfig();
      if (config) report.kconfigSource = config.path;
      raw = config?.values.get(extern.name);
      if (raw === undefined && !config && !extern.weak) {
        unresolved.set(extern.name, "the kernel's config is not readable (no /proc/config.gz or /boot/config-<release>)");
        continue;
      }
    }
    if (raw === undefined) {
      // libbpf leaves weak externs it cannot resolve at 0.
      if (!extern.weak) unresolved.set(extern.name, extern.name.startsWith("CONFIG_") ? "the kernel's config does not set it (declare it __weak to read 0)" : "libbpf knows no such kconfig value");
      continue;
    }
    const bytes = encodeKconfigValue(local, extern.btfTypeId, extern.size, raw);
    if (typeof bytes === "string") unresolved.set(extern.name, bytes);
    else data.contents.set(bytes, extern.offset);
  }
  return unresolved;
}

/** Resolves the program's ksym and kfunc references against the running kernel's BTF and kallsyms (libbpf's rules). */
function resolveExterns(spec: CollectionProgramSpec, collection: CollectionSpec, instructions: Buffer, options: CollectionOptions, unresolvedKconfig: Map<string, string>): void {
  const fail = (name: string, why: string): never => {
    throw new UsageError(operation, `program "${spec.name}" (section "${spec.section}") refers to "${name}": ${why}`, "the object's other programs can still be loaded (choose them with the programs option / --program)");
  };
  for (const reference of spec.externReferences) {
    const extern = collection.externs?.[reference.name];
    const at = reference.slot * 8;
    if (!extern || extern.kind === "unknown") fail(reference.name, "it is not defined in this object, nor declared __ksym or __kconfig");
    if (extern!.kind === "kconfig") {
      const why = unresolvedKconfig.get(reference.name);
      if (why !== undefined) fail(reference.name, `kconfig value not resolved: ${why}`);
      continue;
    }
    const kernel = options.kernelBtf ?? loadKernelBtf();
    if (reference.kind === "function") {
      if (extern!.kind !== "kfunc") fail(reference.name, "it is called but declared as a variable");
      const id = findKernelFunction(kernel, reference.name);
      if (id === undefined && !extern!.weak) fail(reference.name, "the kernel's BTF has no such kernel function (kfunc)");
      // BPF_PSEUDO_KFUNC_CALL; a missing __weak kfunc gets id 0, which the verifier accepts only in dead code (libbpf's rule).
      instructions[at + 1] = (2 << 4) | (instructions[at + 1]! & 0x0f);
      instructions.writeInt16LE(0, at + 2);
      instructions.writeInt32LE(id ?? 0, at + 4);
      continue;
    }
    if (extern!.btfTypeId !== 0) {
      // A typed ksym, or a kfunc's address (`if (&kfunc)`, bpf_ksym_exists): its BTF id (BPF_PSEUDO_BTF_ID).
      const id = extern!.kind === "kfunc" ? findKernelFunction(kernel, reference.name) : findKernelVariable(kernel, reference.name);
      if (id === undefined) {
        if (!extern!.weak) fail(reference.name, `the kernel's BTF has no such ${extern!.kind === "kfunc" ? "kernel function" : "variable"}`);
        writeAddress(instructions, at, 0n);
        continue;
      }
      instructions[at + 1] = (3 << 4) | (instructions[at + 1]! & 0x0f);
      instructions.writeInt32LE(id, at + 4);
      instructions.writeInt32LE(0, at + 12);
      continue;
    }
    let address: bigint | undefined;
    try {
      address = kernelSymbolAddress(reference.name);
    } catch (error) {
      fail(reference.name, `cannot read /proc/kallsyms: ${(error as Error).message}`);
    }
    if (address === undefined && !extern!.weak) fail(reference.name, "/proc/kallsyms has no such symbol");
    writeAddress(instructions, at, address ?? 0n);
  }
}

function writeAddress(instructions: Buffer, at: number, address: bigint): void {
  instructions[at + 1] = instructions[at + 1]! & 0x0f;
  instructions.writeUInt32LE(Number(address & 0xffffffffn), at + 4);
  instructions.writeUInt32LE(Number(address >> 32n), at + 12);
}

/** The kernel BTF id a tp_btf/fentry/fexit/fmod_ret/lsm/iter program attaches to. */
function resolveAttachBtfId(spec: CollectionProgramSpec, options: CollectionOptions): number {
  const where = `program "${spec.name}" (section "${spec.section}")`;
  let kind: AttachBtfKind | undefined;
  if (spec.type === ProgramType.Tracing) {
    kind = spec.expectedAttachType === AttachType.TraceRawTp ? "rawTracepoint" : spec.expectedAttachType === AttachType.TraceIter ? "iterator" : "function";
  } else if (spec.type === ProgramType.Lsm) {
    kind = "lsm";
  }
  if (!kind) {
    throw new UsageError(operation, `${where} needs an attach target netbpf does not resolve (${ProgramType[spec.type] ?? spec.type})`,
      spec.type === ProgramType.Ext ? "freplace programs replace a function of another loaded program; load them with libbpf" : "struct_ops programs need struct_ops maps; load them with libbpf");
  }
  const target = spec.attachTarget?.kind === "btf" ? spec.attachTarget.name : undefined;
  if (!target) throw new UsageError(operation, `${where} does not name what it attaches to`, "e.g. SEC(\"tp_btf/inet_sock_set_state\")");
  const kernel = options.kernelBtf ?? loadKernelBtf();
  const found = findAttachBtfId(kernel, kind, target);
  if (!found) {
    const what = kind === "rawTracepoint" ? `tracepoint "${target}" (no btf_trace_${target} type)` : kind === "lsm" ? `LSM hook "${target}"` : kind === "iterator" ? `iterator "${target}"` : `function "${target}"`;
    throw new UsageError(operation, `${where}: the kernel's BTF has no ${what}`, "check the name against /sys/kernel/btf/vmlinux (bpftool btf dump file /sys/kernel/btf/vmlinux)");
  }
  return found.id;
}
