import { argumentError, expectBytes, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { ElfFormatError } from "./elf-format-error.js";

export const elfMachineBpf = 247;

export const SectionType = {
  Null: 0,
  ProgramBits: 1,
  SymbolTable: 2,
  StringTable: 3,
  RelocationsWithAddend: 4,
  NoBits: 8,
  Relocations: 9,
} as const;

export const SectionFlag = { Write: 0x1, Alloc: 0x2, Executable: 0x4 } as const;

export const SymbolType = { None: 0, Object: 1, Function: 2, Section: 3, File: 4 } as const;
export const SymbolBinding = { Local: 0, Global: 1, Weak: 2 } as const;

/** Special section indexes a symbol can carry. */
export const SectionIndex = { Undefined: 0, Absolute: 0xfff1, Common: 0xfff2, Extended: 0xffff } as const;

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  /** File offset of the contents. */
  offset: number;
  size: number;
  link: number;
  info: number;
  alignment: number;
  entrySize: number;
}

export interface ElfSymbol {
  index: number;
  name: string;
  value: number;
  size: number;
  /** SymbolType. */
  type: number;
  /** SymbolBinding. */
  binding: number;
  visibility: number;
  sectionIndex: number;
}

export interface ElfRelocation {
  /** Offset in the target section. */
  offset: number;
  /** Relocation type (R_BPF_*). */
  type: number;
  symbol: ElfSymbol;
}

const headerSize = 64;
const sectionHeaderSize = 64;
const symbolSize = 24;
const relocationSize = 16;
/** Largest zero-filled (NOBITS) section we accept; a larger one is certainly corrupt for BPF. */
const maximumNoBitsSize = 1 << 26;

/**
 * A parsed ELF64 little-endian relocatable object for the BPF machine.
 * Every offset and length read from the file is checked against the file
 * size; anything out of bounds is an ElfFormatError naming where.
 */
export class ElfFile {
  readonly bytes: Buffer;
  readonly sections: readonly ElfSection[];
  /** Symbols of the symbol table (index 0, the null symbol, included); empty when there is none. */
  readonly symbols: readonly ElfSymbol[];
  readonly #relocations = new Map<number, ElfRelocation[]>();
  readonly #byName = new Map<string, ElfSection>();

  private constructor(bytes: Uint8Array) {
    expectBytes("read ELF object", "bytes", bytes);
    this.bytes = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.checkHeader();
    this.sections = this.readSectionHeaders();
    for (const section of this.sections) if (!this.#byName.has(section.name)) this.#byName.set(section.name, section);
    this.symbols = this.readSymbols();
    this.readRelocations();
  }

  /** Parses an object; throws ElfFormatError when it is malformed or not a BPF object. */
  static parse(bytes: Uint8Array): ElfFile {
    return new ElfFile(bytes);
  }

  section(name: string): ElfSection | undefined {
    return this.#byName.get(expectString("read ELF object", "name", name));
  }

  /** The contents of a section of this file (from `sections` or `section(name)`); NOBITS sections (.bss) read as zeros. */
  contents(section: ElfSection): Buffer {
    const { index, type, offset, size } = expectObject<Partial<ElfSection>>("read ELF section", "section", section);
    const own = typeof index === "number" ? this.sections[index] : undefined;
    if (own === undefined || own.type !== type || own.offset !== offset || own.size !== size) {
      throw argumentError("read ELF section", "section", "a section of this file (from sections or section(name))", section);
    }
    return this.read(own);
  }

  private read(section: ElfSection): Buffer {
    if (section.type === SectionType.NoBits) return Buffer.alloc(section.size);
    return this.bytes.subarray(section.offset, section.offset + section.size);
  }

  /** The relocations that apply to the section with this index, sorted by offset. */
  relocations(sectionIndex: number): readonly ElfRelocation[] {
    expectInteger("read ELF relocations", "sectionIndex", sectionIndex, 0, this.sections.length - 1);
    return this.#relocations.get(sectionIndex) ?? [];
  }

  /** Symbols defined in a section (or with one of the reserved indexes, SectionIndex.Absolute …). */
  symbolsIn(sectionIndex: number): ElfSymbol[] {
    if (typeof sectionIndex !== "number" || !Number.isInteger(sectionIndex) || sectionIndex < 0 || sectionIndex > 0xffff || (sectionIndex >= this.sections.length && sectionIndex < 0xff00)) {
      throw argumentError("read ELF symbols", "sectionIndex", `a section index of this file (0 to ${this.sections.length - 1}) or a reserved index (0xff00 to 0xffff)`, sectionIndex);
    }
    return this.symbols.filter((symbol) => symbol.index !== 0 && symbol.sectionIndex === sectionIndex);
  }

  private checkHeader(): void {
    const b = this.bytes;
    if (b.length < 16 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46) {
      throw new ElfFormatError(b.length < 4 ? `file of ${b.length} bytes is too short to be an ELF object` : "not an ELF object (bad magic)", { offset: 0 }, "pass an object built with `clang -target bpf -c`");
    }
    if (b[4] !== 2) throw new ElfFormatError(`32-bit ELF (class ${b[4]}) is not supported; BPF objects are ELF64`, { offset: 4 }, "build with `clang -target bpf` (not bpfeb/32-bit targets)");
    if (b[5] !== 1) throw new ElfFormatError(b[5] === 2 ? "big-endian object; only little-endian BPF objects can be loaded here" : `unknown data encoding ${b[5]}`, { offset: 5 }, "build with `clang -target bpfel` or `-target bpf` on a little-endian host");
    if (b.length < headerSize) throw new ElfFormatError(`file of ${b.length} bytes is shorter than the ${headerSize}-byte ELF64 header`, { offset: 0 });
    const type = b.readUInt16LE(16);
    const machine = b.readUInt16LE(18);
    if (machine !== elfMachineBpf) {
      throw new ElfFormatError(`machine ${machine} is not BPF (${elfMachineBpf})`, { offset: 18 }, "this is an object for another processor; build with `clang -target bpf -c`");
    }
    if (type !== 1) throw new ElfFormatError(`ELF type ${type} is not a relocatable object (1)`, { offset: 16 }, "pass the .o file from `clang -c`, not a linked file");
  }

  private readSectionHeaders(): ElfSection[] {
    const b = this.bytes;
    const headerOffset = this.u64(40, "section header table offset");
    const entrySize = b.readUInt16LE(58);
    let count = b.readUInt16LE(60);
    let namesIndex = b.readUInt16LE(62);
    if (headerOffset === 0) throw new ElfFormatError("the object has no section headers", { offset: 40 });
    if (entrySize !== sectionHeaderSize) throw new ElfFormatError(`section header size ${entrySize}, expected ${sectionHeaderSize}`, { offset: 58 });
    if (headerOffset + sectionHeaderSize > b.length) throw new ElfFormatError(`section header table at ${headerOffset} lies past the end of the ${b.length}-byte file`, { offset: 40 });
    // Large section counts and string table indexes spill into section 0.
    if (count === 0) count = this.u64(headerOffset + 32, "extended section count");
    if (namesIndex === SectionIndex.Extended) namesIndex = b.readUInt32LE(headerOffset + 40);
    if (count === 0 || headerOffset + count * sectionHeaderSize > b.length) {
      throw new ElfFormatError(`section header table (${count} entries at ${headerOffset}) does not fit in the ${b.length}-byte file`, { offset: 60 }, "the file is truncated or corrupt");
    }
    const raw: Omit<ElfSection, "name">[] = [];
    const nameOffsets: number[] = [];
    for (let index = 0; index < count; index++) {
      const at = headerOffset + index * sectionHeaderSize;
      const section = {
        index,
        type: b.readUInt32LE(at + 4),
        flags: this.u64(at + 8, `flags of section ${index}`),
        offset: this.u64(at + 24, `offset of section ${index}`),
        size: this.u64(at + 32, `size of section ${index}`),
        link: b.readUInt32LE(at + 40),
        info: b.readUInt32LE(at + 44),
        alignment: this.u64(at + 48, `alignment of section ${index}`),
        entrySize: this.u64(at + 56, `entry size of section ${index}`),
      };
      nameOffsets.push(b.readUInt32LE(at));
      if (section.type === SectionType.NoBits) {
        if (section.size > maximumNoBitsSize) throw new ElfFormatError(`zero-filled section ${index} of ${section.size} bytes is implausibly large`, { section: String(index), offset: at + 32 });
      } else if (section.type !== SectionType.Null && section.offset + section.size > b.length) {
        throw new ElfFormatError(`section ${index} (${section.size} bytes at ${section.offset}) runs past the end of the ${b.length}-byte file`, { section: String(index), offset: at + 24 }, "the file is truncated or corrupt");
      }
      raw.push(section);
    }
    if (namesIndex >= count) throw new ElfFormatError(`section name table index ${namesIndex} is not below the section count ${count}`, { offset: 62 });
    const namesSection = raw[namesIndex]!;
    if (namesSection.type !== SectionType.StringTable) throw new ElfFormatError(`section name table (section ${namesIndex}) is not a string table`, { section: String(namesIndex) });
    const names = b.subarray(namesSection.offset, namesSection.offset + namesSection.size);
    return raw.map((section, index) => ({
      ...section,
      name: index === 0 ? "" : readString(names, nameOffsets[index]!, `name of section ${index}`, ".shstrtab"),
    }));
  }

  private readSymbols(): ElfSymbol[] {
    const tables = this.sections.filter((section) => section.type === SectionType.SymbolTable);
    if (tables.length === 0) return [];
    if (tables.length > 1) throw new ElfFormatError(`${tables.length} symbol tables; an object has at most one`, { section: tables[1]!.name });
    const table = tables[0]!;
    if (table.entrySize !== symbolSize || table.size % symbolSize !== 0) {
      throw new ElfFormatError(`symbol table entry size ${table.entrySize} / size ${table.size} do not describe ${symbolSize}-byte entries`, { section: table.name });
    }
    const strings = this.sections[table.link];
    if (!strings || strings.type !== SectionType.StringTable) {
      throw new ElfFormatError(`symbol table links to section ${table.link}, which is not a string table`, { section: table.name });
    }
    const names = this.read(strings);
    const data = this.read(table);
    const symbols: ElfSymbol[] = [];
    for (let index = 0; index * symbolSize < data.length; index++) {
      const at = index * symbolSize;
      const info = data[at + 4]!;
      const sectionIndex = data.readUInt16LE(at + 6);
      const symbol: ElfSymbol = {
        index,
        name: readString(names, data.readUInt32LE(at), `name of symbol ${index}`, strings.name),
        type: info & 0xf,
        binding: info >> 4,
        visibility: data[at + 5]! & 0x3,
        sectionIndex,
        value: safeNumber(data.readBigUInt64LE(at + 8), `value of symbol ${index}`, table.name, at + 8),
        size: safeNumber(data.readBigUInt64LE(at + 16), `size of symbol ${index}`, table.name, at + 16),
      };
      if (sectionIndex !== SectionIndex.Undefined && sectionIndex < 0xff00 && sectionIndex >= this.sections.length) {
        throw new ElfFormatError(`symbol ${index} "${symbol.name}" is in section ${sectionIndex}, which does not exist`, { section: table.name, offset: at + 6 });
      }
      symbols.push(symbol);
    }
    return symbols;
  }

  private readRelocations(): void {
    for (const section of this.sections) {
      if (section.type === SectionType.RelocationsWithAddend) {
        throw new ElfFormatError("RELA relocations are not used by BPF objects", { section: section.name });
      }
      if (section.type !== SectionType.Relocations) continue;
      const target = this.sections[section.info];
      if (!target || section.info === 0) throw new ElfFormatError(`relocations apply to section ${section.info}, which does not exist`, { section: section.name });
      if (section.size % relocationSize !== 0) throw new ElfFormatError(`size ${section.size} is not a multiple of the ${relocationSize}-byte relocation entry`, { section: section.name });
      const data = this.read(section);
      const list: ElfRelocation[] = this.#relocations.get(section.info) ?? [];
      for (let at = 0; at < data.length; at += relocationSize) {
        const offset = safeNumber(data.readBigUInt64LE(at), "relocation offset", section.name, at);
        const type = data.readUInt32LE(at + 8);
        const symbolIndex = data.readUInt32LE(at + 12);
        const symbol = this.symbols[symbolIndex];
        if (!symbol || symbolIndex === 0) {
          throw new ElfFormatError(`relocation ${at / relocationSize} refers to symbol ${symbolIndex}, which does not exist`, { section: section.name, offset: at + 12 });
        }
        if (target.type !== SectionType.NoBits && offset >= target.size) {
          throw new ElfFormatError(`relocation ${at / relocationSize} at offset ${offset} lies outside ${target.name || "section " + target.index} (${target.size} bytes)`, { section: section.name, offset: at });
        }
        list.push({ offset, type, symbol });
      }
      list.sort((a, b) => a.offset - b.offset);
      this.#relocations.set(section.info, list);
    }
  }

  private u64(at: number, what: string): number {
    return safeNumber(this.bytes.readBigUInt64LE(at), what, undefined, at);
  }
}

function safeNumber(value: bigint, what: string, section: string | undefined, offset: number): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfFormatError(`${what} ${value} is out of range`, { section, offset });
  return Number(value);
}

/** A NUL-terminated string at `offset` in a string table. */
function readString(table: Buffer, offset: number, what: string, section: string): string {
  if (offset >= table.length) {
    if (offset === 0 && table.length === 0) return "";
    throw new ElfFormatError(`${what} at string offset ${offset} lies outside the ${table.length}-byte string table`, { section, offset });
  }
  const end = table.indexOf(0, offset);
  if (end < 0) throw new ElfFormatError(`${what} at string offset ${offset} is not NUL-terminated`, { section, offset });
  return table.toString("latin1", offset, end);
}
