import type { Btf } from "../btf/btf.js";
import { ElfFormatError } from "./elf-format-error.js";

const typeHeaderLength = 12;
const kindDataSection = 15;

/** Bytes after the 12-byte header of a type record, per kind number (the BTF format's layout). */
function extraLength(kind: number, vlen: number): number {
  switch (kind) {
    case 1: case 14: case 17: return 4;
    case 3: return 12;
    case 4: case 5: case 15: case 19: return 12 * vlen;
    case 6: case 13: return 8 * vlen;
    default: return 0;
  }
}

export type DataSectionLayout = (section: string) => { size: number; offsets: Map<string, number> } | undefined;

/**
 * clang leaves DATASEC sizes and variable offsets at 0; the kernel needs
 * them. Returns a copy of the BTF with each DATASEC's size set from its ELF
 * section and its variables' offsets from their symbols, sorted by offset
 * (what libbpf does before loading BTF). Everything else is byte-identical,
 * so string offsets used by BTF.ext stay valid.
 */
export function fixDataSections(btf: Btf, layout: DataSectionLayout): Buffer {
  const bytes = Buffer.from(btf.bytes);
  if (btf.byteOrder !== "little") throw new ElfFormatError("the object's BTF is big-endian in a little-endian object", { section: ".BTF" });
  const headerLength = bytes.readUInt32LE(4);
  const typesStart = headerLength + bytes.readUInt32LE(8);
  const typesEnd = typesStart + bytes.readUInt32LE(12);
  let position = typesStart;
  for (let id = btf.firstTypeId; id < btf.typeCount && position < typesEnd; id++) {
    const info = bytes.readUInt32LE(position + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    if (kind === kindDataSection) fixOne(btf, bytes, id, position, vlen, layout);
    position += typeHeaderLength + extraLength(kind, vlen);
  }
  return bytes;
}

function fixOne(btf: Btf, bytes: Buffer, id: number, position: number, vlen: number, layout: DataSectionLayout): void {
  const name = btf.nameOf(id);
  const found = layout(name);
  if (!found) return;
  bytes.writeUInt32LE(found.size, position + 8);
  const entries: { type: number; offset: number; size: number }[] = [];
  for (let i = 0; i < vlen; i++) {
    const at = position + typeHeaderLength + i * 12;
    const type = bytes.readUInt32LE(at);
    const variableName = btf.nameOf(type);
    const offset = found.offsets.get(variableName) ?? bytes.readUInt32LE(at + 4);
    const size = bytes.readUInt32LE(at + 8);
    if (offset + size > found.size) {
      throw new ElfFormatError(`BTF variable "${variableName}" (${size} bytes at ${offset}) lies outside section ${name} (${found.size} bytes)`, { section: ".BTF" });
    }
    entries.push({ type, offset, size });
  }
  entries.sort((a, b) => a.offset - b.offset);
  entries.forEach((entry, i) => {
    const at = position + typeHeaderLength + i * 12;
    bytes.writeUInt32LE(entry.type, at);
    bytes.writeUInt32LE(entry.offset, at + 4);
    bytes.writeUInt32LE(entry.size, at + 8);
  });
}

const kindInt = 1;
const kindTypedef = 8;
const kindFunction = 12;
const kindVariable = 14;
const linkageExtern = 2;
const linkageGlobalAllocated = 1;

/**
 * The kernel refuses BTF with extern FUNCs and VARs and with a `.ksyms`
 * DATASEC of functions; libbpf rewrites them before BPF_BTF_LOAD, and so does
 * this (type ids stay the same, so func_info and map types hold): extern VARs
 * become allocated globals, extern FUNCs typedefs of their prototypes, and
 * each `.ksyms` entry a 4-byte int VAR (new VARs are appended for functions).
 * `.kconfig` gets its size and offsets from fixDataSections like any section.
 */
export function fixExternTypes(input: Buffer, btf: Btf): Buffer {
  let bytes = Buffer.from(input);
  const headerLength = bytes.readUInt32LE(4);
  const typeOffset = bytes.readUInt32LE(8);
  const typeLength = bytes.readUInt32LE(12);
  const stringOffset = bytes.readUInt32LE(16);
  const typesStart = headerLength + typeOffset;
  const typesEnd = typesStart + typeLength;
  const positions = new Map<number, number>();
  let position = typesStart;
  let hasExterns = false;
  for (let id = btf.firstTypeId; id < btf.typeCount && position < typesEnd; id++) {
    positions.set(id, position);
    const info = bytes.readUInt32LE(position + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    if ((kind === kindFunction && vlen === linkageExtern) || (kind === kindVariable && bytes.readUInt32LE(position + 12) === linkageExtern)) hasExterns = true;
    position += typeHeaderLength + extraLength(kind, vlen);
  }
  if (!hasExterns) return bytes;
  const appended: Buffer[] = [];
  let nextId = btf.typeCount;
  const append = (record: Buffer): number => {
    appended.push(record);
    return nextId++;
  };
  let intId = 0;
  for (const [id, at] of positions) {
    if (((bytes.readUInt32LE(at + 4) >>> 24) & 0x1f) === kindInt && bytes.readUInt32LE(at + 8) === 4) {
      intId = id;
      if (btf.nameOf(id) === "int") break;
    }
  }
  if (intId === 0) {
    // An unnamed 4-byte signed int (BTF_INT_SIGNED, 32 bits).
    const record = Buffer.alloc(16);
    record.writeUInt32LE(kindInt << 24, 4);
    record.writeUInt32LE(4, 8);
    record.writeUInt32LE((1 << 24) | 32, 12);
    intId = append(record);
  }
  for (const [id, at] of positions) {
    const info = bytes.readUInt32LE(at + 4);
    const kind = (info >>> 24) & 0x1f;
    if (kind === kindFunction && (info & 0xffff) === linkageExtern) bytes.writeUInt32LE(kindTypedef << 24, at + 4);
    if (kind === kindVariable && bytes.readUInt32LE(at + 12) === linkageExtern) bytes.writeUInt32LE(linkageGlobalAllocated, at + 12);
    if (kind !== kindDataSection || btf.nameOf(id) !== ".ksyms") continue;
    const vlen = info & 0xffff;
    for (let i = 0; i < vlen; i++) {
      const entry = at + typeHeaderLength + i * 12;
      const target = bytes.readUInt32LE(entry);
      const targetAt = positions.get(target);
      let variable = target;
      if (targetAt !== undefined && ((bytes.readUInt32LE(targetAt + 4) >>> 24) & 0x1f) === kindVariable) {
        bytes.writeUInt32LE(intId, targetAt + 8);
      } else {
        const record = Buffer.alloc(16);
        record.writeUInt32LE(targetAt !== undefined ? bytes.readUInt32LE(targetAt) : 0, 0);
        record.writeUInt32LE(kindVariable << 24, 4);
        record.writeUInt32LE(intId, 8);
        record.writeUInt32LE(linkageGlobalAllocated, 12);
        variable = append(record);
      }
      bytes.writeUInt32LE(variable, entry);
      bytes.writeUInt32LE(i * 4, entry + 4);
      bytes.writeUInt32LE(4, entry + 8);
    }
    bytes.writeUInt32LE(vlen * 4, at + 8);
  }
  if (appended.length === 0) return bytes;
  if (stringOffset < typeOffset + typeLength) return bytes; // Unusual layout (strings first): leave the types as they are.
  const extra = Buffer.concat(appended);
  bytes = Buffer.concat([bytes.subarray(0, typesEnd), extra, bytes.subarray(typesEnd)]);
  bytes.writeUInt32LE(typeLength + extra.length, 12);
  bytes.writeUInt32LE(stringOffset + extra.length, 16);
  return bytes;
}
