import type { Btf } from "./btf.js";
import { btfMagic } from "./btf.js";
import { BtfFormatError } from "./btf-format-error.js";
import type { CoreRelocation } from "./core-relocation.js";
import { expectBtf } from "./expect-btf.js";
import { expectBytes } from "../sys/argument-checks.js";

/** A FUNC record: the function whose code starts at `instructionOffset`. */
export interface BtfExtFunctionInfo {
  /** Byte offset of the instruction in its ELF section (as stored; divide by 8 for an index). */
  instructionOffset: number;
  /** The FUNC type in the object's BTF. */
  typeId: number;
}

/** A source line record. */
export interface BtfExtLineInfo {
  instructionOffset: number;
  fileNameOffset: number;
  lineOffset: number;
  fileName: string;
  /** The source text of the line. */
  line: string;
  lineNumber: number;
  column: number;
}

/** A CO-RE relocation record, with its access string read from the BTF. */
export interface BtfExtCoreRelocation extends CoreRelocation {
  instructionOffset: number;
  accessStringOffset: number;
}

export interface BtfExt {
  byteOrder: "little" | "big";
  /** Record sizes as stored: the kernel needs them with func_info / line_info. */
  functionInfoRecordSize: number;
  lineInfoRecordSize: number;
  coreRelocationRecordSize: number;
  /** Records per ELF section name (e.g. "xdp", ".text"). */
  functionInfo: Map<string, BtfExtFunctionInfo[]>;
  lineInfo: Map<string, BtfExtLineInfo[]>;
  coreRelocations: Map<string, BtfExtCoreRelocation[]>;
}

const operation = "parse BTF.ext";

function error(message: string, offset: number): BtfFormatError {
  return new BtfFormatError(message, { offset }, operation, "the .BTF.ext section is corrupt or from an unsupported compiler version");
}

/** Parse a .BTF.ext section; strings (section names, file names, access strings) come from `btf`. */
export function parseBtfExt(bytes: Uint8Array, btf: Btf): BtfExt {
  expectBytes("parse BTF.ext", "bytes", bytes);
  expectBtf("parse BTF.ext", btf);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 24) throw error(`${bytes.byteLength} bytes is shorter than the 24-byte BTF.ext header`, 0);
  let littleEndian: boolean;
  if (view.getUint16(0, true) === btfMagic) littleEndian = true;
  else if (view.getUint16(0, false) === btfMagic) littleEndian = false;
  else throw error(`bad magic 0x${view.getUint16(0, true).toString(16)}, expected 0xeb9f`, 0);
  if (bytes[2] !== 1) throw error(`unsupported BTF.ext version ${bytes[2]}`, 2);
  const u32 = (offset: number) => view.getUint32(offset, littleEndian);
  const headerLength = u32(4);
  if (headerLength < 24 || headerLength > bytes.byteLength) throw error(`header length ${headerLength} out of range 24..${bytes.byteLength}`, 4);
  const string = (offset: number, at: number): string => {
    try {
      return btf.string(offset);
    } catch (cause) {
      if (cause instanceof BtfFormatError) throw error(`string offset ${offset} is outside the BTF string section`, at);
      throw cause;
    }
  };

  function readBlock<T>(
    headerField: number,
    minimumRecordSize: number,
    what: string,
    read: (at: number, section: string) => T,
  ): { recordSize: number; sections: Map<string, T[]> } {
    const sections = new Map<string, T[]>();
    if (headerField + 8 > headerLength) return { recordSize: 0, sections };
    const offset = u32(headerField);
    const length = u32(headerField + 4);
    if (length === 0) return { recordSize: 0, sections };
    const start = headerLength + offset;
    const end = start + length;
    if (offset % 4 !== 0) throw error(`${what} offset ${offset} is not 4-byte aligned`, headerField);
    if (end > bytes.byteLength || length < 4) throw error(`${what} section ${offset}+${length} runs past the end (${bytes.byteLength - headerLength} bytes of data)`, headerField);
    const recordSize = u32(start);
    if (recordSize < minimumRecordSize || recordSize % 4 !== 0) throw error(`${what} record size ${recordSize} is invalid (minimum ${minimumRecordSize}, multiple of 4)`, start);
    let position = start + 4;
    while (position < end) {
      if (position + 8 > end) throw error(`${what} section header runs past the end of the block`, position);
      const name = string(u32(position), position);
      const count = u32(position + 4);
      position += 8;
      if (count === 0) throw error(`${what} for section "${name}" has no records`, position - 4);
      if (count > (end - position) / recordSize) throw error(`${what} for section "${name}": ${count} records of ${recordSize} bytes run past the end of the block`, position - 4);
      const records = sections.get(name) ?? [];
      for (let index = 0; index < count; index++, position += recordSize) records.push(read(position, name));
      sections.set(name, records);
    }
    return { recordSize, sections };
  }

  const functions = readBlock(8, 8, "func_info", (at) => ({ instructionOffset: u32(at), typeId: u32(at + 4) }));
  const lines = readBlock(16, 16, "line_info", (at) => {
    const fileNameOffset = u32(at + 4);
    const lineOffset = u32(at + 8);
    const lineColumn = u32(at + 12);
    return {
      instructionOffset: u32(at),
      fileNameOffset,
      lineOffset,
      fileName: string(fileNameOffset, at + 4),
      line: string(lineOffset, at + 8),
      lineNumber: lineColumn >>> 10,
      column: lineColumn & 0x3ff,
    };
  });
  const relocations = readBlock(24, 16, "core_relo", (at) => {
    const accessStringOffset = u32(at + 8);
    return { instructionOffset: u32(at), typeId: u32(at + 4), accessStringOffset, accessString: string(accessStringOffset, at + 8), kind: u32(at + 12) };
  });
  return {
    byteOrder: littleEndian ? "little" : "big",
    functionInfoRecordSize: functions.recordSize,
    lineInfoRecordSize: lines.recordSize,
    coreRelocationRecordSize: relocations.recordSize,
    functionInfo: functions.sections,
    lineInfo: lines.sections,
    coreRelocations: relocations.sections,
  };
}
