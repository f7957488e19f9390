import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decode, type Instruction } from "../../src/asm/instruction.js";
import { disassemble, disassembleInstruction, labelSymbols, type DisassemblyOptions } from "../../src/asm/disassembler.js";
import { Assembler, R0, R1, R2 } from "../../src/asm/assembler.js";
import { executableSections, objdumpHeadings, objdumpListing } from "./elf-sections.js";
import { skipUnlessTool } from "../support/kernel.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "test", "fixtures", "asm");
const names = readdirSync(fixtures).filter((name) => name.endsWith(".c")).map((name) => name.slice(0, -2)).sort();

const modes: { suffix: string; options: DisassemblyOptions }[] = [
  { suffix: "default", options: {} },
  { suffix: "alu32", options: { alu32: true } },
  { suffix: "decimal", options: { immediates: "decimal" } },
];

/**
 * Lines where we knowingly print something else than llvm-objdump 19:
 * - without +alu32 it cannot print 32-bit or/and/xor atomics and 32-bit fetching atomics (`<unknown>`, or a fetch-add shown as a plain add);
 * - it drops the immediate of a legacy indirect packet load and the second-slot immediate of a pseudo 64-bit load.
 */
function knownDifference(instruction: Instruction, suffix: string): boolean {
  if (suffix !== "alu32" && instruction.opcode === 0xc3) return true;
  if ((instruction.opcode & 0xe7) === 0x40 && instruction.imm !== 0) return true;
  if (instruction.opcode === 0x18 && instruction.src !== 0 && (instruction.imm64 ?? 0n) >> 32n !== 0n) return true;
  return false;
}

function compare(objectBytes: Uint8Array, expectedText: string, suffix: string, options: DisassemblyOptions, label: string): number {
  const expected = objdumpListing(expectedText);
  let compared = 0;
  for (const section of executableSections(objectBytes)) {
    const listing = expected.get(section.name);
    assert.ok(listing, `${label}: objdump shows section ${section.name}`);
    const instructions = decode(section.bytes);
    const ours = disassemble(instructions, { ...options, symbols: section.symbols })
      .split("\n")
      .map((line) => /^\s*(\d+):\t(.*)$/.exec(line)!)
      .map((match) => [Number(match[1]), match[2]!] as [number, string]);
    assert.deepEqual(ours.map(([slot]) => slot), listing.map(([slot]) => slot), `${label} ${section.name}: instruction count and slots`);
    const headings = disassemble(instructions, { ...options, symbols: section.symbols, headings: true })
      .split("\n")
      .filter((line) => /^[0-9a-f]{16} </.test(line));
    assert.deepEqual(headings, objdumpHeadings(expectedText).get(section.name), `${label} ${section.name}: function headings`);
    ours.forEach(([slot, text], index) => {
      const [, expectedLine] = listing[index]!;
      if (knownDifference(instructions[index]!, suffix)) return;
      assert.equal(text, expectedLine, `${label} ${section.name} slot ${slot}`);
      compared++;
    });
  }
  return compared;
}

for (const name of names) {
  test(`disassembly of ${name}.o matches llvm-objdump`, () => {
    const objectBytes = readFileSync(join(fixtures, `${name}.o`));
    for (const { suffix, options } of modes) {
      const compared = compare(objectBytes, readFileSync(join(fixtures, `${name}.${suffix}.txt`), "utf8"), suffix, options, `${name} (${suffix})`);
      assert.ok(compared > 10, `${name} (${suffix}): compared ${compared} lines`);
    }
  });
}

function findTool(candidates: string[]): string | undefined {
  for (const candidate of candidates) {
    try {
      const version = execFileSync(candidate, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
      const major = Number(/version (\d+)/.exec(version)?.[1] ?? 0);
      if (major >= 17) return candidate;
    } catch {
      // not installed
    }
  }
  return undefined;
}

test("fresh clang build matches fresh llvm-objdump (when clang ≥ 17 is installed)", (t) => {
  const clang = findTool(["clang-19", "clang-18", "clang-17", "clang"]);
  const objdump = findTool(["llvm-objdump-19", "llvm-objdump-18", "llvm-objdump-17", "llvm-objdump"]);
  // CI installs clang-19 and llvm-19 (.ci/run); elsewhere the committed fixtures are still checked by the other tests.
  if (skipUnlessTool(t, clang !== undefined && objdump !== undefined, "no clang/llvm-objdump 17 or newer (cpu v4)") || !clang || !objdump) return;
  const directory = mkdtempSync(join(tmpdir(), "netbpf-asm-"));
  try {
    for (const name of ["instructions", "filter", "subprograms"]) {
      const object = join(directory, `${name}.o`);
      execFileSync(clang, ["-target", "bpf", "-O2", "-mcpu=v4", `-I/usr/include/${process.arch === "x64" ? "x86_64" : "aarch64"}-linux-gnu`, "-c", join(fixtures, `${name}.c`), "-o", object]);
      const text = execFileSync(objdump, ["-d", "--no-show-raw-insn", "--mattr=+alu32", object], { encoding: "utf8" });
      compare(readFileSync(object), text, "alu32", { alu32: true }, `fresh ${name}`);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("single instructions in llvm-objdump syntax", () => {
  const { instructions } = new Assembler()
    .mov64(R0, 1)
    .add32(R1, R2)
    .load("u32", R1, R1, 4)
    .store("u64", "r10", -8, R1)
    .jumpIf(R1, ">", 2, "x")
    .atomic("u32", "add", R1, 0, R2)
    .atomic("u64", "add", R1, 0, R0, { fetch: true })
    .byteSwap(R1, 16)
    .toBigEndian(R1, 16)
    .movSignExtend64(R1, R2, 8)
    .signedDiv64(R1, R2)
    .loadImmediate64(R1, 0x1122334455667788n)
    .call("map_lookup_elem")
    .label("x")
    .exit()
    .finish();
  assert.deepEqual(
    instructions.map((instruction) => disassembleInstruction(instruction, { immediates: "decimal" })),
    [
      "r0 = 1",
      "w1 += w2",
      "r1 = *(u32 *)(r1 + 4)",
      "*(u64 *)(r10 - 8) = r1",
      "if r1 > 2 goto +9", // the lddw below takes two slots
      "lock *(u32 *)(r1 + 0) += r2",
      "r0 = atomic_fetch_add((u64 *)(r1 + 0), r0)",
      "r1 = bswap16 r1",
      "r1 = be16 r1",
      "r1 = (s8)r2",
      "r1 s/= r2",
      "r1 = 1234605616436508552 ll",
      "call 1",
      "exit",
    ],
  );
  assert.equal(disassembleInstruction({ opcode: 0xff, dst: 0, src: 0, offset: 0, imm: 0 }), "<unknown>");
});

test("labels of an assembled program become symbols and headings", () => {
  const program = new Assembler()
    .label("main")
    .jumpIf(R1, "==", 0, "drop")
    .loadImmediate64(R0, 1)
    .exit()
    .label("drop")
    .mov64(R0, 0)
    .exit()
    .finish();
  assert.equal(
    disassemble(program.instructions, { symbols: labelSymbols(program), headings: true }),
    [
      "0000000000000000 <main>:",
      "       0:\tif r1 == 0x0 goto +0x3 <drop>",
      "       1:\tr0 = 0x1 ll",
      "       3:\texit",
      "",
      "0000000000000020 <drop>:",
      "       4:\tr0 = 0x0",
      "       5:\texit",
    ].join("\n"),
  );
});

test("disassembly options and instructions are checked", () => {
  const exit: Instruction = { opcode: 0x95, dst: 0, src: 0, offset: 0, imm: 0 };
  assert.throws(() => disassemble([exit], { immediates: "octal" as never }), /options\.immediates must be one of "hex", "decimal", got "octal"/);
  assert.throws(() => disassemble([exit], { symbols: { 0: "main" } as never }), /options\.symbols must be a Map of slot to name/);
  assert.throws(() => disassemble("exit" as never), /instructions must be an array/);
  assert.throws(() => disassembleInstruction(exit, { slot: -1 }), /options\.slot must be an integer ≥ 0, got -1/);
  assert.throws(() => disassembleInstruction({ opcode: 0x95 } as never), /instruction must be an instruction \(dst undefined/);
  assert.throws(() => labelSymbols({ instructions: [exit], labels: { main: 0 } } as never), /program\.labels must be a Map/);
  assert.equal(disassembleInstruction(exit), "exit");
});
