/**
 * Just enough ELF64 reading for the disassembler tests: executable sections
 * and the function symbols in them. (The real ELF reader lives in src/elf.)
 */
export interface ExecutableSection {
  name: string;
  bytes: Uint8Array;
  /** Function symbols by slot (byte offset / 8). */
  symbols: Map<number, string>;
}

export function executableSections(file: Uint8Array): ExecutableSection[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (view.getUint32(0) !== 0x7f454c46 || file[4] !== 2 || file[5] !== 1) throw new Error("not a little-endian ELF64 file");
  const sectionHeaders = Number(view.getBigUint64(0x28, true));
  const entrySize = view.getUint16(0x3a, true);
  const count = view.getUint16(0x3c, true);
  const namesIndex = view.getUint16(0x3e, true);
  const headers = Array.from({ length: count }, (_, index) => {
    const at = sectionHeaders + index * entrySize;
    return {
      nameOffset: view.getUint32(at, true),
      type: view.getUint32(at + 4, true),
      flags: Number(view.getBigUint64(at + 8, true)),
      offset: Number(view.getBigUint64(at + 24, true)),
      size: Number(view.getBigUint64(at + 32, true)),
      link: view.getUint32(at + 40, true),
    };
  });
  const stringAt = (table: number, offset: number): string => {
    const start = headers[table]!.offset + offset;
    let end = start;
    while (file[end] !== 0) end++;
    return new TextDecoder().decode(file.subarray(start, end));
  };
  const sections = headers.map((header, index) => ({
    index,
    name: stringAt(namesIndex, header.nameOffset),
    header,
    symbols: new Map<number, string>(),
  }));
  for (const symbolTable of headers.filter((header) => header.type === 2)) {
    for (let at = symbolTable.offset; at < symbolTable.offset + symbolTable.size; at += 24) {
      const type = file[at + 4]! & 0x0f;
      const section = view.getUint16(at + 6, true);
      if (type !== 2 || section === 0 || section >= count) continue;
      const value = Number(view.getBigUint64(at + 8, true));
      sections[section]!.symbols.set(value / 8, stringAt(symbolTable.link, view.getUint32(at, true)));
    }
  }
  return sections
    .filter((section) => (section.header.flags & 0x4) !== 0 && section.header.size > 0)
    .map((section) => ({
      name: section.name,
      bytes: file.slice(section.header.offset, section.header.offset + section.header.size),
      symbols: section.symbols,
    }));
}

/** Function headings (`0000000000000088 <scale>:`) per section of llvm-objdump -d text. */
export function objdumpHeadings(text: string): Map<string, string[]> {
  const result = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split("\n")) {
    const header = /^Disassembly of section (.*):$/.exec(line);
    if (header) {
      current = [];
      result.set(header[1]!, current);
    } else if (/^[0-9a-f]{16} <.*>:$/.test(line)) {
      current?.push(line);
    }
  }
  return result;
}

/** llvm-objdump -d text → section name → [slot, instruction text] lines. */
export function objdumpListing(text: string): Map<string, [number, string][]> {
  const result = new Map<string, [number, string][]>();
  let current: [number, string][] | undefined;
  for (const line of text.split("\n")) {
    const header = /^Disassembly of section (.*):$/.exec(line);
    if (header) {
      current = [];
      result.set(header[1]!, current);
      continue;
    }
    const instruction = /^\s*(\d+):\t(.*)$/.exec(line);
    if (instruction && current) current.push([Number(instruction[1]), instruction[2]!]);
  }
  return result;
}
