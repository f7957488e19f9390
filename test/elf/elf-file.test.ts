import assert from "node:assert/strict";
import { test } from "node:test";
import { ElfFile, SectionFlag, SectionIndex, SymbolType } from "../../src/elf/elf-file.js";
import { ElfFormatError } from "../../src/elf/elf-format-error.js";
import { UsageError } from "../../src/sys/errors.js";
import { readFixture } from "./fixtures.js";

const object = readFixture("collection.o");

function mutated(change: (bytes: Buffer) => void): Buffer {
  const copy = Buffer.from(object);
  change(copy);
  return copy;
}

function expectFormatError(bytes: Uint8Array, pattern: RegExp): ElfFormatError {
  try {
    ElfFile.parse(bytes);
  } catch (error) {
    assert.ok(error instanceof ElfFormatError, `expected ElfFormatError, got ${error}`);
    assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected an error matching ${pattern}`);
}

function sectionHeaderOffset(bytes: Buffer, index: number): number {
  return Number(bytes.readBigUInt64LE(40)) + index * 64;
}

test("reads sections, symbols and relocations of a clang object", () => {
  const elf = ElfFile.parse(object);
  const socket = elf.section("socket");
  assert.ok(socket);
  assert.ok(socket.flags & SectionFlag.Executable);
  assert.equal(socket.size % 8, 0);
  const functions = elf.symbolsIn(socket.index).filter((s) => s.type === SymbolType.Function).map((s) => s.name).sort();
  assert.deepEqual(functions, ["socket_first", "socket_second"]);
  const relocations = elf.relocations(socket.index);
  assert.ok(relocations.length > 0);
  assert.ok(relocations.every((r, i) => i === 0 || relocations[i - 1]!.offset <= r.offset));
  assert.ok(relocations.some((r) => r.symbol.name === "results"));
  assert.equal(elf.section(".bss")!.type, 8);
  assert.deepEqual([...elf.contents(elf.section(".bss")!)], new Array(elf.section(".bss")!.size).fill(0));
  assert.equal(elf.contents(elf.section("license")!).toString("latin1"), "GPL\0");
});

test("rejects files that are not little-endian ELF64 BPF objects", () => {
  expectFormatError(Buffer.alloc(0), /too short/);
  expectFormatError(Buffer.from("not an elf file at all, really not"), /bad magic/);
  expectFormatError(mutated((b) => (b[4] = 1)), /32-bit/);
  expectFormatError(mutated((b) => (b[5] = 2)), /big-endian/);
  const machine = expectFormatError(mutated((b) => b.writeUInt16LE(62, 18)), /machine 62 is not BPF \(247\)/);
  assert.equal(machine.offset, 18);
  expectFormatError(mutated((b) => b.writeUInt16LE(2, 16)), /not a relocatable object/);
  expectFormatError(object.subarray(0, 40), /shorter than the 64-byte ELF64 header/);
});

test("rejects truncated files and bad section headers, naming where", () => {
  expectFormatError(object.subarray(0, object.length - 100), /section header table .* does not fit/);
  expectFormatError(mutated((b) => b.writeUInt16LE(60, 58)), /section header size 60/);
  expectFormatError(mutated((b) => b.writeUInt16LE(500, 62)), /section name table index 500/);
  const elf = ElfFile.parse(object);
  const socket = elf.section("socket")!;
  const error = expectFormatError(mutated((b) => b.writeBigUInt64LE(BigInt(object.length), sectionHeaderOffset(b, socket.index) + 24)), /runs past the end/);
  assert.equal(error.section, String(socket.index));
  expectFormatError(mutated((b) => b.writeUInt32LE(0xfffff, sectionHeaderOffset(b, socket.index))), /name of section .* outside/);
});

test("rejects relocations that point outside their section or at missing symbols", () => {
  const elf = ElfFile.parse(object);
  const relocationSection = elf.section(".relsocket")!;
  const outside = mutated((b) => b.writeBigUInt64LE(BigInt(elf.section("socket")!.size + 8), relocationSection.offset));
  const error = expectFormatError(outside, /lies outside socket/);
  assert.equal(error.section, ".relsocket");
  expectFormatError(mutated((b) => b.writeUInt32LE(99999, relocationSection.offset + 12)), /symbol 99999, which does not exist/);
  expectFormatError(mutated((b) => b.writeUInt32LE(999, sectionHeaderOffset(b, relocationSection.index) + 44)), /apply to section 999/);
});

test("rejects a symbol table with a bad string table link or entry size", () => {
  const elf = ElfFile.parse(object);
  const symtab = elf.sections.find((s) => s.type === 2)!;
  expectFormatError(mutated((b) => b.writeUInt32LE(symtab.index, sectionHeaderOffset(b, symtab.index) + 40)), /not a string table/);
  expectFormatError(mutated((b) => b.writeBigUInt64LE(20n, sectionHeaderOffset(b, symtab.index) + 56)), /entry size 20/);
});

test("parse takes bytes only", () => {
  assert.throws(() => ElfFile.parse("prog.o" as never), (error: Error) => error instanceof UsageError && /bytes must be a Buffer or Uint8Array, got "prog\.o"/.test(error.message));
});

test("ElfFile methods refuse arguments of the wrong type, and sections of another file, naming the parameter", () => {
  const elf = ElfFile.parse(readFixture("collection.o"));
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  assert.throws(() => elf.section(42 as never), refused(/name must be a string, got 42/));
  assert.throws(() => elf.contents(undefined as never), refused(/section must be an object, got undefined/));
  assert.throws(() => elf.contents({ ...elf.sections[1]!, size: elf.bytes.length * 2 }), refused(/section must be a section of this file/));
  assert.throws(() => elf.relocations(elf.sections.length), refused(/sectionIndex must be an integer from 0 to/));
  assert.throws(() => elf.symbolsIn("1" as never), refused(/sectionIndex must be a section index of this file/));
  assert.throws(() => elf.symbolsIn(elf.sections.length), refused(/sectionIndex must be a section index of this file/));
  const text = elf.sections.find((section) => elf.symbolsIn(section.index).length > 0)!;
  assert.deepEqual(elf.contents({ ...text }), elf.contents(text));
  assert.ok(Array.isArray(elf.symbolsIn(SectionIndex.Absolute)));
});
