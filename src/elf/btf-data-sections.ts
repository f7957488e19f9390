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
