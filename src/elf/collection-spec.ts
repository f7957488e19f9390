import { readFileSync } from "node:fs";
import { Btf } from "../btf/btf.js";
import { parseBtfExt, type BtfExt, type BtfExtCoreRelocation } from "../btf/btf-ext.js";
import { sizeOf, skipQualifiers } from "../btf/btf-query.js";
import type { BtfMember } from "../btf/btf-types.js";
import { MapFlag, MapType, ProgramType, type AttachType } from "../sys/bpf-constants.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { DataSection, type DataVariable } from "./data-section.js";
import { ElfFile, SectionFlag, SectionIndex, SectionType, SymbolBinding, SymbolType, type ElfSection, type ElfSymbol } from "./elf-file.js";
import { ElfFormatError } from "./elf-format-error.js";
import { fixDataSections, fixExternTypes } from "./btf-data-sections.js";
import { programKindOfSection, type AttachTarget } from "./section-names.js";
import { argumentError } from "../sys/argument-checks.js";

/** An lddw that must point at a map (or into a map's value) when the program is loaded. */
export interface ProgramMapReference {
  /** Slot index (8-byte units) of the lddw in the program's instructions. */
  slot: number;
  /** Key of the map in CollectionSpec.maps. */
  map: string;
  /** "map": the lddw loads the map (BPF_PSEUDO_MAP_FD); "value": a pointer `offset` bytes into its value (BPF_PSEUDO_MAP_VALUE). */
  kind: "map" | "value";
  offset: number;
}

/** A func_info / line_info record set, with instruction offsets already in this program's slots. */
export interface ProgramLineInfo {
  slot: number;
  fileNameOffset: number;
  lineOffset: number;
  lineNumber: number;
  column: number;
  fileName: string;
  line: string;
}

export interface CollectionProgramSpec {
  /** The function's symbol name. */
  name: string;
  /** The ELF section the program came from, e.g. "tracepoint/sock/inet_sock_set_state". */
  section: string;
  /** ProgramType.Unspec when the section name is not one libbpf knows; set it before loading. */
  type: ProgramType;
  expectedAttachType: AttachType | undefined;
  /** ProgramFlag bits (sleepable, xdp frags) implied by the section name. */
  flags: number;
  attachTarget: AttachTarget | undefined;
  /** tp_btf/fentry/lsm/… programs need an attach BTF id that Collection.load does not resolve. */
  needsAttachBtfId: boolean;
  license: string;
  kernelVersion: number | undefined;
  /** Linked instructions (8-byte slots): the program, then every subprogram it calls, with call offsets fixed. */
  instructions: Buffer;
  /** Lddw instructions to patch with map file descriptors at load time. */
  mapReferences: ProgramMapReference[];
  /** Names of the functions linked into this program, in order, with their first slot. */
  functions: { name: string; slot: number }[];
  /** BTF func_info records (slot, FUNC type id), when the object has BTF.ext. */
  functionInfo: { slot: number; typeId: number }[];
  lineInfo: ProgramLineInfo[];
  /** CO-RE relocations to resolve against kernel BTF at load time. */
  coreRelocations: { slot: number; relocation: BtfExtCoreRelocation }[];
  /**
   * References to symbols the object does not define (`__kconfig`, `__ksym`
   * variables and kfuncs), resolved against the running kernel at load time.
   * A `.kconfig` reference is also a value reference into the ".kconfig" map.
   */
  externReferences: ProgramExternReference[];
  /**
   * Why this program cannot be loaded (e.g. it refers to something the object
   * lacks), or undefined. Only this program is refused; the others load.
   */
  loadError: string | undefined;
}

/** An instruction that refers to an extern symbol: an lddw (variable) or a call (function). */
export interface ProgramExternReference {
  slot: number;
  name: string;
  kind: "variable" | "function";
}

/** A symbol the object declares `extern`: a kconfig value, a kernel variable (ksym) or a kernel function (kfunc). */
export interface ExternSpec {
  name: string;
  /** "kconfig": `.kconfig` (LINUX_KERNEL_VERSION, CONFIG_*); "ksym": `.ksyms` variable; "kfunc": kernel function; "unknown": no BTF says. */
  kind: "kconfig" | "ksym" | "kfunc" | "unknown";
  /** Declared `__weak`: a missing value is 0 / NULL instead of an error. */
  weak: boolean;
  /** The VAR's type (kconfig, ksym; 0 for `void` = untyped ksym) or the FUNC's id (kfunc) in the object's BTF. */
  btfTypeId: number;
  /** Size in bytes of a kconfig value. */
  size: number;
  /** Offset of a kconfig value in the ".kconfig" map. */
  offset: number;
}

export type MapPinning = "none" | "byName";

export interface CollectionMapSpec {
  name: string;
  /** ".maps", "maps" (legacy), or the data section's name. */
  section: string;
  type: MapType;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  numaNode: number | undefined;
  mapExtra: bigint | undefined;
  pinning: MapPinning;
  /** For array/hash of maps: the inner map's shape. */
  innerMap: CollectionMapSpec | undefined;
  /** Initial slot contents of prog arrays and maps of maps (from `.values = { … }`). */
  initialSlots: { index: number; kind: "program" | "map"; name: string }[];
  /** BTF type ids of key and value in the object's BTF (0 when unknown). */
  btfKeyTypeId: number;
  btfValueTypeId: number;
  /** For global data sections: contents and variables (set them before loading). */
  data: DataSection | undefined;
}

export interface CollectionSpec {
  programs: Record<string, CollectionProgramSpec>;
  maps: Record<string, CollectionMapSpec>;
  /** Data section maps by section name (the same objects as maps[name].data). */
  dataSections: Record<string, DataSection>;
  license: string;
  kernelVersion: number | undefined;
  /** The object's BTF with data sections' sizes and offsets filled in, ready for BPF_BTF_LOAD. */
  btf: Buffer | undefined;
  parsedBtf: Btf | undefined;
  /** The raw .BTF.ext section and its parsed form. */
  btfExt: Buffer | undefined;
  parsedBtfExt: BtfExt | undefined;
  /** The symbols the object declares extern, by name. */
  externs?: Record<string, ExternSpec>;
  /** `.struct_ops` / `.struct_ops.link` sections, which netbpf cannot load (Collection.load refuses them). */
  structOpsSections?: string[];
}

const slotSize = 8;
const opcodeLddw = 0x18;
const opcodeCall = 0x85;
const pseudoMapFd = 1;
const pseudoMapValue = 2;
const pseudoCall = 1;
const pseudoFunction = 4;

/** Reads a clang BPF object (a path or its bytes) into a CollectionSpec. */
export function loadCollectionSpec(source: string | Uint8Array): CollectionSpec {
  if (typeof source !== "string" && !(source instanceof Uint8Array)) throw argumentError("load collection spec", "source", "a file path or the object's bytes", source);
  let bytes: Uint8Array;
  if (typeof source === "string") {
    try {
      bytes = readFileSync(source);
    } catch (error) {
      throw new UsageError("read ELF object", `cannot read ${source}: ${(error as Error).message}`, undefined, { cause: error });
    }
  } else {
    bytes = source;
  }
  try {
    return new SpecReader(ElfFile.parse(bytes)).read();
  } catch (error) {
    if (error instanceof NetbpfError) throw error;
    // Anything else is a gap in our own checks; still report it as a bad object, never as a crash.
    throw new ElfFormatError(`unexpected problem: ${(error as Error).message}`, {}, undefined, { cause: error });
  }
}

interface FunctionRange {
  name: string;
  section: ElfSection;
  /** Slot range within the section. */
  start: number;
  end: number;
  isProgram: boolean;
}

interface MapLocation {
  key: string;
  section: number;
  offset: number;
}

class SpecReader {
  private readonly elf: ElfFile;
  private btf: Btf | undefined;
  private btfExt: BtfExt | undefined;
  private readonly maps: Record<string, CollectionMapSpec> = Object.create(null);
  private readonly mapLocations: MapLocation[] = [];
  private readonly dataMapBySection = new Map<number, string>();
  private readonly functionsBySection = new Map<number, FunctionRange[]>();
  private license = "";
  private kernelVersion: number | undefined;
  private readonly externs: Record<string, ExternSpec> = Object.create(null);
  private kconfigSize = 0;

  constructor(elf: ElfFile) {
    this.elf = elf;
  }

  read(): CollectionSpec {
    const elf = this.elf;
    const licenseSection = elf.section("license");
    if (licenseSection) {
      const data = elf.contents(licenseSection);
      const end = data.indexOf(0);
      this.license = data.toString("latin1", 0, end < 0 ? data.length : end);
    }
    const versionSection = elf.section("version");
    if (versionSection) {
      if (versionSection.size !== 4) throw new ElfFormatError(`version section is ${versionSection.size} bytes, expected 4`, { section: "version" });
      this.kernelVersion = elf.contents(versionSection).readUInt32LE(0);
    }
    const btfSection = elf.section(".BTF");
    if (btfSection) this.btf = Btf.parse(elf.contents(btfSection));
    const btfExtSection = elf.section(".BTF.ext");
    if (btfExtSection && this.btf) this.btfExt = parseBtfExt(elf.contents(btfExtSection), this.btf);

    this.readBtfMaps();
    this.readLegacyMaps();
    this.readDataSections();
    this.readExterns();
    this.readFunctions();

    const programs: Record<string, CollectionProgramSpec> = Object.create(null);
    for (const ranges of this.functionsBySection.values()) {
      for (const range of ranges) {
        if (!range.isProgram) continue;
        if (programs[range.name]) throw new ElfFormatError(`two programs are named "${range.name}"`, { section: range.section.name });
        try {
          programs[range.name] = this.linkProgram(range);
        } catch (error) {
          // Like libbpf, a program that cannot be linked is refused on its own; the others stay loadable.
          if (!(error instanceof NetbpfError)) throw error;
          programs[range.name] = this.programSpec(range, Buffer.alloc(0), [], [], error.message);
        }
      }
    }
    this.resolveInitialSlots(programs);
    const structOpsSections = this.elf.sections.filter((section) => section.name === ".struct_ops" || section.name === ".struct_ops.link").map((section) => section.name);

    const dataSections: Record<string, DataSection> = Object.create(null);
    for (const map of Object.values(this.maps)) if (map.data) dataSections[map.name] = map.data;
    let btfBytes: Buffer | undefined;
    if (this.btf) btfBytes = fixExternTypes(fixDataSections(this.btf, (name) => this.dataSectionLayout(name)), this.btf);
    return {
      programs,
      maps: this.maps,
      dataSections,
      license: this.license,
      kernelVersion: this.kernelVersion,
      btf: btfBytes,
      parsedBtf: this.btf,
      btfExt: btfExtSection ? Buffer.from(elf.contents(btfExtSection)) : undefined,
      parsedBtfExt: this.btfExt,
      externs: this.externs,
      structOpsSections,
    };
  }

  /** Size of an ELF section and the offsets of its symbols, for fixing DATASEC types. */
  private dataSectionLayout(name: string): { size: number; offsets: Map<string, number> } | undefined {
    if (name === ".kconfig") {
      const offsets = new Map<string, number>();
      for (const extern of Object.values(this.externs)) if (extern.kind === "kconfig") offsets.set(extern.name, extern.offset);
      return offsets.size ? { size: this.kconfigSize, offsets } : undefined;
    }
    const section = this.elf.section(name);
    if (!section) return undefined;
    const offsets = new Map<string, number>();
    for (const symbol of this.elf.symbolsIn(section.index)) {
      if (symbol.type === SymbolType.Object || symbol.type === SymbolType.None || symbol.type === SymbolType.Function) offsets.set(symbol.name, symbol.value);
    }
    return { size: section.size, offsets };
  }

  // ---- maps ----------------------------------------------------------------

  private addMap(map: CollectionMapSpec, section: number, offset: number): void {
    if (this.maps[map.name]) throw new ElfFormatError(`two maps are named "${map.name}"`, { section: map.section });
    this.maps[map.name] = map;
    this.mapLocations.push({ key: map.name, section, offset });
  }

  private readBtfMaps(): void {
    const section = this.elf.section(".maps");
    if (!section) return;
    const btf = this.btf;
    if (!btf) throw new ElfFormatError("BTF-defined maps need the object's BTF, and it has no .BTF section", { section: ".maps" }, "build with `clang -g`");
    const dataSectionIds = btf.findByName(".maps", "dataSection");
    if (dataSectionIds.length !== 1) throw new ElfFormatError(`expected one BTF DATASEC ".maps", found ${dataSectionIds.length}`, { section: ".BTF" });
    const dataSection = btf.typeOfKind(dataSectionIds[0]!, "dataSection");
    const symbols = new Map(this.elf.symbolsIn(section.index).filter((s) => s.type !== SymbolType.Section).map((s) => [s.name, s]));
    const relocations = this.elf.relocations(section.index);
    for (const variableEntry of dataSection.variables) {
      const variable = btf.typeOfKind(variableEntry.type, "variable");
      const name = variable.name;
      const symbol = symbols.get(name);
      if (!symbol) throw new ElfFormatError(`map "${name}" has no symbol in .maps`, { section: ".maps" });
      const structId = skipQualifiers(btf, variable.type);
      // Initial values (`.values = {…}`) extend the struct past its BTF size; the symbol covers them.
      const size = Math.max(sizeOf(btf, structId), symbol.size);
      if (symbol.value + size > section.size) throw new ElfFormatError(`map "${name}" (${size} bytes at ${symbol.value}) runs past the end of .maps`, { section: ".maps", offset: symbol.value });
      const map = this.btfMapDefinition(name, structId, false);
      const valuesMember = this.memberNamed(structId, "values");
      if (valuesMember) {
        const start = symbol.value + valuesMember.bitOffset / 8;
        for (const relocation of relocations) {
          if (relocation.offset < start || relocation.offset >= symbol.value + size) continue;
          if ((relocation.offset - start) % 8 !== 0) throw new ElfFormatError(`initial value of map "${name}" at ${relocation.offset} is not pointer-aligned`, { section: ".rel.maps", offset: relocation.offset });
          const index = (relocation.offset - start) / 8;
          const target = relocation.symbol;
          if (map.type === MapType.ProgArray) {
            if (target.type !== SymbolType.Function) throw new ElfFormatError(`prog array "${name}" slot ${index} refers to "${target.name}", which is not a function`, { section: ".maps" });
            map.initialSlots.push({ index, kind: "program", name: target.name });
          } else {
            map.initialSlots.push({ index, kind: "map", name: target.name });
          }
          if (index >= map.maxEntries) throw new ElfFormatError(`map "${name}" has an initial value at slot ${index}, beyond its ${map.maxEntries} entries`, { section: ".maps" });
        }
      }
      this.addMap(map, section.index, symbol.value);
    }
  }

  private memberNamed(structId: number, name: string): BtfMember | undefined {
    const type = this.btf!.type(structId);
    if (type.kind !== "struct" && type.kind !== "union") return undefined;
    return type.members.find((member) => member.name === name);
  }

  /** Reads a `struct { __uint(type, …); __type(key, …); … }` map definition. */
  private btfMapDefinition(name: string, structId: number, inner: boolean): CollectionMapSpec {
    const btf = this.btf!;
    const struct = btf.type(structId);
    const where = { section: ".maps" };
    if (struct.kind !== "struct") throw new ElfFormatError(`map "${name}" is a BTF ${struct.kind}, expected a struct`, where);
    const map: CollectionMapSpec = {
      name, section: ".maps", type: MapType.Unspec, keySize: 0, valueSize: 0, maxEntries: 0, flags: 0, numaNode: undefined, mapExtra: undefined,
      pinning: "none", innerMap: undefined, initialSlots: [], btfKeyTypeId: 0, btfValueTypeId: 0, data: undefined,
    };
    let keySize: number | undefined;
    let valueSize: number | undefined;
    /** `__uint(name, value)` (a pointer to an array of `value` elements) or `__ulong(name, value)` (an enum holding it). */
    const attribute = (member: BtfMember): bigint => {
      const pointer = btf.type(skipQualifiers(btf, member.type));
      if (pointer.kind === "enum" || pointer.kind === "enum64") {
        // libbpf's __ulong(name, value): an enum whose only constant is the value (for values past 32 bits).
        if (pointer.values.length !== 1) throw new ElfFormatError(`map "${name}" field ${member.name} is an enum with ${pointer.values.length} constants, expected one (__ulong)`, where);
        let value = BigInt(pointer.values[0]!.value);
        if (value < 0n && !pointer.signed) value += 1n << BigInt(pointer.size * 8);
        if (value < 0n) throw new ElfFormatError(`map "${name}" field ${member.name} is ${value}, which is negative`, where);
        return value;
      }
      if (pointer.kind !== "pointer") throw new ElfFormatError(`map "${name}" field ${member.name} is not __uint(…)`, where);
      const array = btf.type(skipQualifiers(btf, pointer.type));
      if (array.kind !== "array") throw new ElfFormatError(`map "${name}" field ${member.name} is not __uint(…)`, where);
      return BigInt(array.length);
    };
    const uint = (member: BtfMember): number => {
      const value = attribute(member);
      if (value > 0xffffffffn) throw new ElfFormatError(`map "${name}" field ${member.name} is ${value}, more than 32 bits`, where);
      return Number(value);
    };
    const typed = (member: BtfMember): number => {
      const pointer = btf.type(skipQualifiers(btf, member.type));
      if (pointer.kind !== "pointer") throw new ElfFormatError(`map "${name}" field ${member.name} is not __type(…)`, where);
      return pointer.type;
    };
    let valuesMember: BtfMember | undefined;
    for (const member of struct.members) {
      switch (member.name) {
        case "type": map.type = uint(member); break;
        case "max_entries": map.maxEntries = uint(member); break;
        case "map_flags": map.flags = uint(member); break;
        case "numa_node": map.numaNode = uint(member); break;
        case "map_extra": map.mapExtra = BigInt.asUintN(64, attribute(member)); break;
        case "key_size": keySize = uint(member); break;
        case "value_size": valueSize = uint(member); break;
        case "key": map.btfKeyTypeId = typed(member); keySize = sizeOf(btf, map.btfKeyTypeId); break;
        case "value": map.btfValueTypeId = typed(member); valueSize = sizeOf(btf, map.btfValueTypeId); break;
        case "values": valuesMember = member; break;
        case "pinning": {
          const pinning = uint(member);
          if (pinning > 1) throw new ElfFormatError(`map "${name}" has unknown pinning ${pinning} (0: none, 1: by name)`, where);
          map.pinning = pinning === 1 ? "byName" : "none";
          break;
        }
        default:
          throw new ElfFormatError(`map "${name}" has unknown field "${member.name}"`, where, "map definitions may use type, key, value, key_size, value_size, max_entries, map_flags, numa_node, map_extra, pinning and values");
      }
    }
    if (valuesMember) {
      const array = btf.type(skipQualifiers(btf, valuesMember.type));
      if (array.kind !== "array") throw new ElfFormatError(`map "${name}" field values is not __array(…)`, where);
      const pointer = btf.type(skipQualifiers(btf, array.type));
      if (pointer.kind !== "pointer") throw new ElfFormatError(`map "${name}" field values is not __array(…)`, where);
      const element = skipQualifiers(btf, pointer.type);
      if (map.type === MapType.ArrayOfMaps || map.type === MapType.HashOfMaps) {
        if (inner) throw new ElfFormatError(`map "${name}": maps of maps cannot nest further`, where);
        map.innerMap = this.btfMapDefinition(`${name}.inner`, element, true);
      } else if (map.type !== MapType.ProgArray) {
        throw new ElfFormatError(`map "${name}" has values, but only prog arrays and maps of maps can`, where);
      }
      if (valueSize !== undefined && valueSize !== 4) throw new ElfFormatError(`map "${name}" holds ${valueSize}-byte values, but file descriptors are 4 bytes`, where);
      valueSize = 4;
      keySize ??= 4;
    }
    if (map.type === MapType.Unspec) throw new ElfFormatError(`map "${name}" has no type`, where, "add __uint(type, BPF_MAP_TYPE_…)");
    if (!(map.type in MapType)) throw new ElfFormatError(`map "${name}" has unknown type ${map.type}`, where);
    map.keySize = keySize ?? 0;
    map.valueSize = valueSize ?? 0;
    fixPerfEventArrayShape(map);
    return map;
  }

  private readLegacyMaps(): void {
    const section = this.elf.section("maps");
    if (!section) return;
    const symbols = this.elf.symbolsIn(section.index).filter((s) => s.type !== SymbolType.Section && s.type !== SymbolType.File).sort((a, b) => a.value - b.value);
    if (symbols.length === 0) return;
    const data = this.elf.contents(section);
    // clang gives each definition's symbol its size. Without sizes, the records are as long as the
    // smallest gap between definitions: `bpftool gen object` keeps the records of discarded weak
    // definitions, so the section may hold more records than symbols.
    let recordSize = symbols[0]!.size;
    if (recordSize === 0 || symbols.some((symbol) => symbol.size !== recordSize)) {
      const gaps = symbols.map((symbol, i) => (symbols[i + 1]?.value ?? section.size) - symbol.value).filter((gap) => gap > 0);
      recordSize = gaps.length ? Math.min(...gaps) : 0;
    }
    if (recordSize < 16) throw new ElfFormatError(`legacy map definitions of ${recordSize} bytes are too short (at least type, key_size, value_size, max_entries)`, { section: "maps" });
    for (const symbol of symbols) {
      const at = symbol.value;
      if (at + recordSize > data.length) throw new ElfFormatError(`legacy map "${symbol.name}" at ${at} runs past the end of the section`, { section: "maps", offset: at });
      const type = data.readUInt32LE(at);
      if (!(type in MapType) || type === MapType.Unspec) throw new ElfFormatError(`legacy map "${symbol.name}" has unknown type ${type}`, { section: "maps", offset: at });
      // Fields past libbpf's struct bpf_map_def (type, key_size, value_size, max_entries, map_flags)
      // would change what the map is (iproute2's struct bpf_elf_map has id, pinning, inner_id,
      // inner_idx there): refuse them rather than ignore them, as libbpf did.
      for (let field = 20; field + 4 <= recordSize; field += 4) {
        const value = data.readUInt32LE(at + field);
        if (value === 0) continue;
        const iproute2 = recordSize === 36 ? ["id", "pinning", "inner_id", "inner_idx"][(field - 20) / 4] : undefined;
        throw new ElfFormatError(`legacy map "${symbol.name}" sets ${iproute2 ? `iproute2's "${iproute2}" field` : `an unknown field at byte ${field} of its definition`} to ${value}, which netbpf does not support`,
          { section: "maps", offset: at + field },
          iproute2 === "pinning" ? "declare the map in SEC(\".maps\") with __uint(pinning, LIBBPF_PIN_BY_NAME) and load with --pin-path" : "declare the map in SEC(\".maps\") (BTF-defined maps)");
      }
      const map: CollectionMapSpec = {
        name: symbol.name, section: "maps", type, keySize: data.readUInt32LE(at + 4), valueSize: data.readUInt32LE(at + 8), maxEntries: data.readUInt32LE(at + 12),
        flags: recordSize >= 20 ? data.readUInt32LE(at + 16) : 0, numaNode: undefined, mapExtra: undefined, pinning: "none",
        innerMap: undefined, initialSlots: [], btfKeyTypeId: 0, btfValueTypeId: 0, data: undefined,
      };
      fixPerfEventArrayShape(map);
      this.addMap(map, section.index, at);
    }
  }

  private readDataSections(): void {
    for (const section of this.elf.sections) {
      if (!isDataSection(section)) continue;
      if (section.size === 0) continue;
      const readOnly = section.name.startsWith(".rodata");
      const contents = Buffer.from(this.elf.contents(section));
      const variables = this.dataVariables(section);
      let valueTypeId = 0;
      if (this.btf) {
        const ids = this.btf.findByName(section.name, "dataSection");
        if (ids.length === 1) valueTypeId = ids[0]!;
      }
      const map: CollectionMapSpec = {
        name: section.name, section: section.name, type: MapType.Array, keySize: 4, valueSize: section.size, maxEntries: 1,
        // Like libbpf: data maps can be mmap()ed, and .rodata is read-only to programs.
        flags: MapFlag.Mmapable | (readOnly ? MapFlag.ReadOnlyProgram : 0), numaNode: undefined, mapExtra: undefined, pinning: "none", innerMap: undefined,
        initialSlots: [], btfKeyTypeId: 0, btfValueTypeId: valueTypeId, data: new DataSection(section.name, contents, variables, readOnly),
      };
      this.addMap(map, section.index, 0);
      this.dataMapBySection.set(section.index, section.name);
    }
  }

  /**
   * Reads the object's extern declarations: `.kconfig` values (laid out in a
   * read-only ".kconfig" map, filled from the running kernel at load time),
   * `.ksyms` variables and kernel functions (kfuncs).
   */
  private readExterns(): void {
    const btf = this.btf;
    const declared = new Map<string, { kind: ExternSpec["kind"]; typeId: number }>();
    if (btf) {
      for (const sectionName of [".kconfig", ".ksyms"]) {
        for (const id of btf.findByName(sectionName, "dataSection")) {
          for (const entry of btf.typeOfKind(id, "dataSection").variables) {
            const type = btf.type(entry.type);
            if (type.kind === "function") declared.set(type.name, { kind: "kfunc", typeId: entry.type });
            else if (type.kind === "variable") declared.set(type.name, { kind: sectionName === ".kconfig" ? "kconfig" : "ksym", typeId: type.type });
          }
        }
      }
    }
    for (const symbol of this.elf.symbols) {
      if (symbol.index === 0 || symbol.sectionIndex !== SectionIndex.Undefined || symbol.name === "" || symbol.type === SymbolType.File) continue;
      const found = declared.get(symbol.name);
      let size = 0;
      if (found?.kind === "kconfig") {
        size = sizeOf(btf!, found.typeId);
        if (size <= 0) throw new ElfFormatError(`kconfig extern "${symbol.name}" has no size`, { section: ".BTF" });
      }
      this.externs[symbol.name] = {
        name: symbol.name, kind: found?.kind ?? "unknown", weak: symbol.binding === SymbolBinding.Weak, btfTypeId: found ? skipQualifiers(btf!, found.typeId) : 0, size, offset: 0,
      };
    }
    const kconfig = Object.values(this.externs).filter((extern) => extern.kind === "kconfig");
    if (kconfig.length === 0) return;
    const alignment = (extern: ExternSpec) => Math.min(8, extern.size & -extern.size);
    kconfig.sort((a, b) => alignment(b) - alignment(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    let offset = 0;
    for (const extern of kconfig) {
      offset = Math.ceil(offset / alignment(extern)) * alignment(extern);
      extern.offset = offset;
      offset += extern.size;
    }
    this.kconfigSize = offset;
    const variables = kconfig.map((extern) => ({ name: extern.name, offset: extern.offset, size: extern.size, typeId: extern.btfTypeId }));
    const sectionIds = btf!.findByName(".kconfig", "dataSection");
    this.addMap({
      name: ".kconfig", section: ".kconfig", type: MapType.Array, keySize: 4, valueSize: this.kconfigSize, maxEntries: 1,
      flags: MapFlag.Mmapable | MapFlag.ReadOnlyProgram, numaNode: undefined, mapExtra: undefined, pinning: "none", innerMap: undefined, initialSlots: [],
      btfKeyTypeId: 0, btfValueTypeId: sectionIds.length === 1 ? sectionIds[0]! : 0,
      data: new DataSection(".kconfig", Buffer.alloc(this.kconfigSize), variables, true),
    }, -1, 0);
  }

  private dataVariables(section: ElfSection): DataVariable[] {
    const variables: DataVariable[] = [];
    const typeIds = new Map<string, number>();
    if (this.btf) {
      for (const id of this.btf.findByName(section.name, "dataSection")) {
        for (const entry of this.btf.typeOfKind(id, "dataSection").variables) {
          const name = this.btf.nameOf(entry.type);
          if (this.btf.kindOf(entry.type) === "variable") typeIds.set(name, (this.btf.type(entry.type) as { type: number }).type);
        }
      }
    }
    for (const symbol of this.elf.symbolsIn(section.index)) {
      if (symbol.type !== SymbolType.Object || symbol.name === "") continue;
      if (symbol.value + symbol.size > section.size) throw new ElfFormatError(`variable "${symbol.name}" (${symbol.size} bytes at ${symbol.value}) runs past the end of the section`, { section: section.name });
      variables.push({ name: symbol.name, offset: symbol.value, size: symbol.size, typeId: typeIds.get(symbol.name) });
    }
    return variables;
  }

  // ---- programs ------------------------------------------------------------

  private readFunctions(): void {
    for (const section of this.elf.sections) {
      if (section.type !== SectionType.ProgramBits || (section.flags & SectionFlag.Executable) === 0 || section.size === 0) continue;
      if (section.size % slotSize !== 0) throw new ElfFormatError(`code size ${section.size} is not a multiple of 8`, { section: section.name });
      const slots = section.size / slotSize;
      const symbols = this.elf.symbolsIn(section.index).filter((s) => s.type === SymbolType.Function).sort((a, b) => a.value - b.value);
      // Functions in .text, or in .text.<name> (clang -ffunction-sections), are subprograms.
      const isText = section.name === ".text" || (section.name.startsWith(".text.") && !programKindOfSection(section.name));
      const ranges: FunctionRange[] = [];
      symbols.forEach((symbol, i) => {
        if (symbol.value % slotSize !== 0 || symbol.value >= section.size) throw new ElfFormatError(`function "${symbol.name}" starts at ${symbol.value}, not an instruction in the section`, { section: section.name });
        const start = symbol.value / slotSize;
        const next = symbols[i + 1];
        let end = next ? next.value / slotSize : slots;
        if (symbol.size > 0) end = Math.min(end, start + Math.ceil(symbol.size / slotSize));
        if (end <= start) throw new ElfFormatError(`function "${symbol.name}" overlaps another function or is empty`, { section: section.name, offset: symbol.value });
        ranges.push({ name: symbol.name, section, start, end, isProgram: !isText });
      });
      this.functionsBySection.set(section.index, ranges);
    }
  }

  private functionAt(sectionIndex: number, slot: number, from: string): FunctionRange {
    const found = this.functionsBySection.get(sectionIndex)?.find((range) => range.start === slot);
    if (!found) {
      const section = this.elf.sections[sectionIndex];
      throw new ElfFormatError(`${from} targets instruction ${slot} of ${section?.name ?? "section " + sectionIndex}, which is not the start of a function`, { section: section?.name });
    }
    return found;
  }

  /** Copies a program and, recursively, every function it calls (the way libbpf appends subprograms). */
  private linkProgram(entry: FunctionRange): CollectionProgramSpec {
    const pieces: { range: FunctionRange; base: number }[] = [];
    const placed = new Map<FunctionRange, number>();
    const chunks: Buffer[] = [];
    let total = 0;
    const place = (range: FunctionRange): number => {
      const existing = placed.get(range);
      if (existing !== undefined) return existing;
      const base = total;
      placed.set(range, base);
      pieces.push({ range, base });
      const data = this.elf.contents(range.section);
      chunks.push(Buffer.from(data.subarray(range.start * slotSize, range.end * slotSize)));
      total += range.end - range.start;
      return base;
    };
    place(entry);
    const mapReferences: ProgramMapReference[] = [];
    const externReferences: ProgramExternReference[] = [];
    for (let p = 0; p < pieces.length; p++) {
      const { range, base } = pieces[p]!;
      const code = chunks[p]!;
      const relocations = new Map(this.elf.relocations(range.section.index)
        .filter((r) => r.offset >= range.start * slotSize && r.offset < range.end * slotSize)
        .map((r) => [r.offset, r]));
      for (const relocation of relocations.values()) {
        if (relocation.offset % slotSize !== 0) throw new ElfFormatError(`relocation at ${relocation.offset} is not on an instruction boundary`, { section: range.section.name, offset: relocation.offset });
      }
      const count = range.end - range.start;
      for (let i = 0; i < count; i++) {
        const at = i * slotSize;
        const opcode = code[at]!;
        const sectionSlot = range.start + i;
        const relocation = relocations.get(sectionSlot * slotSize);
        const where = `instruction ${sectionSlot} of ${range.section.name} (in ${range.name})`;
        if (opcode === opcodeLddw) {
          if (i + 1 >= count) throw new ElfFormatError(`${where} is a 64-bit load whose second half is missing`, { section: range.section.name, offset: at });
          if (relocation) this.relocateLoad(code, at, base + i, relocation.symbol, where, mapReferences, externReferences, (target) => place(target));
          else if (code[at + 1]! >> 4 === pseudoFunction) throw new ElfFormatError(`${where} loads a function address without a relocation`, { section: range.section.name });
          i++;
          continue;
        }
        if (opcode === opcodeCall && code[at + 1]! >> 4 === pseudoCall) {
          const imm = code.readInt32LE(at + 4);
          let target: FunctionRange;
          let targetSlot: number;
          if (relocation) {
            const symbol = relocation.symbol;
            if (symbol.sectionIndex === SectionIndex.Undefined) {
              // A kernel function (kfunc): resolved against kernel BTF when the program is loaded.
              externReferences.push({ slot: base + i, name: symbol.name, kind: "function" });
              continue;
            }
            if (symbol.value % slotSize !== 0) throw new ElfFormatError(`${where} calls symbol "${symbol.name}" at unaligned offset ${symbol.value}`, { section: range.section.name });
            targetSlot = symbol.value / slotSize + imm + 1;
            target = this.functionAt(symbol.sectionIndex, targetSlot, where);
          } else {
            targetSlot = sectionSlot + imm + 1;
            target = this.functionAt(range.section.index, targetSlot, where);
          }
          const targetBase = place(target) + (targetSlot - target.start);
          code.writeInt32LE(targetBase - (base + i) - 1, at + 4);
          continue;
        }
        if (relocation) throw new ElfFormatError(`relocation against "${relocation.symbol.name}" at ${where}, which is neither a 64-bit load nor a call`, { section: range.section.name, offset: relocation.offset });
      }
    }
    const spec = this.programSpec(entry, Buffer.concat(chunks), mapReferences, pieces.map((piece) => ({ name: piece.range.name, slot: piece.base })), undefined);
    spec.externReferences = externReferences;
    this.attachBtfExt(spec, pieces);
    return spec;
  }

  private programSpec(entry: FunctionRange, instructions: Buffer, mapReferences: ProgramMapReference[], functions: { name: string; slot: number }[], loadError: string | undefined): CollectionProgramSpec {
    const kind = programKindOfSection(entry.section.name);
    return {
      name: entry.name,
      section: entry.section.name,
      type: kind?.programType ?? ProgramType.Unspec,
      expectedAttachType: kind?.expectedAttachType,
      flags: kind?.flags ?? 0,
      attachTarget: kind?.attachTarget,
      needsAttachBtfId: kind?.needsAttachBtfId ?? false,
      license: this.license,
      kernelVersion: this.kernelVersion,
      instructions,
      mapReferences,
      functions,
      functionInfo: [],
      lineInfo: [],
      coreRelocations: [],
      externReferences: [],
      loadError,
    };
  }

  /** Applies one R_BPF_64_64 relocation on an lddw: a map, a data section, or a function address. */
  private relocateLoad(code: Buffer, at: number, slot: number, symbol: ElfSymbol, where: string, references: ProgramMapReference[], externReferences: ProgramExternReference[], place: (target: FunctionRange) => number): void {
    const sectionIndex = symbol.sectionIndex;
    if (sectionIndex === SectionIndex.Undefined) {
      // An extern variable: a .kconfig value lives in the ".kconfig" map; a ksym is resolved at load time.
      externReferences.push({ slot, name: symbol.name, kind: "variable" });
      const extern = this.externs[symbol.name];
      if (extern?.kind === "kconfig") {
        const offset = extern.offset + code.readInt32LE(at + 4);
        code[at + 1] = (pseudoMapValue << 4) | (code[at + 1]! & 0x0f);
        code.writeInt32LE(0, at + 4);
        code.writeInt32LE(offset, at + 12);
        references.push({ slot, map: ".kconfig", kind: "value", offset });
      }
      return;
    }
    const section = this.elf.sections[sectionIndex];
    if (!section) throw new ElfFormatError(`${where} refers to a symbol in section ${sectionIndex}, which does not exist`);
    const imm = code.readInt32LE(at + 4);
    if ((section.flags & SectionFlag.Executable) !== 0) {
      const targetOffset = symbol.value + imm;
      if (targetOffset % slotSize !== 0) throw new ElfFormatError(`${where} loads the address of unaligned code offset ${targetOffset}`, { section: section.name });
      const targetSlot = targetOffset / slotSize;
      const target = this.functionAt(sectionIndex, targetSlot, where);
      const targetBase = place(target) + (targetSlot - target.start);
      code[at + 1] = (pseudoFunction << 4) | (code[at + 1]! & 0x0f);
      code.writeInt32LE(targetBase - slot - 1, at + 4);
      return;
    }
    const dataMap = this.dataMapBySection.get(sectionIndex);
    if (dataMap !== undefined) {
      const offset = (symbol.type === SymbolType.Section ? 0 : symbol.value) + imm;
      if (offset < 0 || offset >= section.size) throw new ElfFormatError(`${where} points ${offset} bytes into ${section.name}, outside its ${section.size} bytes`, { section: section.name });
      code[at + 1] = (pseudoMapValue << 4) | (code[at + 1]! & 0x0f);
      code.writeInt32LE(0, at + 4);
      code.writeInt32LE(offset, at + 12);
      references.push({ slot, map: dataMap, kind: "value", offset });
      return;
    }
    const offset = (symbol.type === SymbolType.Section ? 0 : symbol.value) + (symbol.type === SymbolType.Section ? imm : 0);
    const map = this.mapLocations.find((location) => location.section === sectionIndex && location.offset === offset);
    if (!map) throw new ElfFormatError(`${where} refers to "${symbol.name}" in ${section.name || "section " + sectionIndex}, which is neither a map, a data section nor code`, { section: section.name });
    code[at + 1] = (pseudoMapFd << 4) | (code[at + 1]! & 0x0f);
    code.writeInt32LE(0, at + 4);
    references.push({ slot, map: map.key, kind: "map", offset: 0 });
  }

  /** Copies func_info, line_info and CO-RE records of each linked function, renumbered to the program's slots. */
  private attachBtfExt(spec: CollectionProgramSpec, pieces: { range: FunctionRange; base: number }[]): void {
    const ext = this.btfExt;
    if (!ext) return;
    for (const { range, base } of pieces) {
      const inRange = (offset: number) => offset % slotSize === 0 && offset >= range.start * slotSize && offset < range.end * slotSize;
      const toSlot = (offset: number) => base + offset / slotSize - range.start;
      for (const record of ext.functionInfo.get(range.section.name) ?? []) {
        if (inRange(record.instructionOffset)) spec.functionInfo.push({ slot: toSlot(record.instructionOffset), typeId: record.typeId });
      }
      for (const record of ext.lineInfo.get(range.section.name) ?? []) {
        if (!inRange(record.instructionOffset)) continue;
        spec.lineInfo.push({
          slot: toSlot(record.instructionOffset), fileNameOffset: record.fileNameOffset, lineOffset: record.lineOffset,
          lineNumber: record.lineNumber, column: record.column, fileName: record.fileName, line: record.line,
        });
      }
      for (const record of ext.coreRelocations.get(range.section.name) ?? []) {
        if (inRange(record.instructionOffset)) spec.coreRelocations.push({ slot: toSlot(record.instructionOffset), relocation: record });
      }
    }
  }

  private resolveInitialSlots(programs: Record<string, CollectionProgramSpec>): void {
    for (const map of Object.values(this.maps)) {
      for (const slot of map.initialSlots) {
        if (slot.kind === "program" && !programs[slot.name]) throw new ElfFormatError(`prog array "${map.name}" refers to "${slot.name}", which is not a program`, { section: ".maps" });
        if (slot.kind === "map") {
          const inner = this.maps[slot.name];
          if (!inner || inner.section !== ".maps") throw new ElfFormatError(`map of maps "${map.name}" refers to "${slot.name}", which is not a map`, { section: ".maps" });
        }
      }
    }
  }
}

function isDataSection(section: ElfSection): boolean {
  if (section.type !== SectionType.ProgramBits && section.type !== SectionType.NoBits) return false;
  if ((section.flags & SectionFlag.Alloc) === 0 || (section.flags & SectionFlag.Executable) !== 0) return false;
  const name = section.name;
  return name === ".rodata" || name === ".data" || name === ".bss" || name.startsWith(".rodata.") || name.startsWith(".data.") || name.startsWith(".bss.");
}

/**
 * The kernel wants 4-byte keys and values (CPU index → perf event fd) in a
 * perf event array: like libbpf and cilium/ebpf, sizes the object leaves out
 * or gives as BTF types become 4, and the BTF types are dropped. (An unset
 * max_entries becomes the number of possible CPUs when the map is created.)
 */
function fixPerfEventArrayShape(map: CollectionMapSpec): void {
  if (map.type !== MapType.PerfEventArray) return;
  if (map.keySize === 0 || map.btfKeyTypeId !== 0) map.keySize = 4;
  if (map.valueSize === 0 || map.btfValueTypeId !== 0) map.valueSize = 4;
  map.btfKeyTypeId = 0;
  map.btfValueTypeId = 0;
}
