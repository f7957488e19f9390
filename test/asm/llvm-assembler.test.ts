import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { assembleLlvm } from "../../src/asm/llvm-assembler.js";
import { disassemble } from "../../src/asm/disassembler.js";
import { decode, encode, instructionProblem, type Instruction } from "../../src/asm/instruction.js";
import { Opcode } from "../../src/asm/opcodes.js";
import { UsageError } from "../../src/sys/errors.js";
import { executableSections, objdumpListing } from "./elf-sections.js";
import { seededRandom } from "../support/seeded-random.js";
import { randomCase } from "./reference-semantics.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "test", "fixtures", "asm");

/** llvm-objdump prints local and kfunc calls like helper calls, so the call kind does not survive text. */
function withoutCallKind(instructions: Instruction[]): Instruction[] {
  return instructions.map((instruction) => (instruction.opcode === Opcode.CALL ? { ...instruction, src: 0 } : instruction));
}

test("llvm-objdump's own text of every fixture (+alu32) assembles back to the object's bytes", () => {
  for (const name of readdirSync(fixtures).filter((file) => file.endsWith(".o") && file !== "encodings.o")) {
    const sections = executableSections(readFileSync(join(fixtures, name)));
    const text = readFileSync(join(fixtures, name.replace(/\.o$/, ".alu32.txt")), "utf8");
    // The listing holds all sections one after the other.
    const expected = sections.flatMap((section) => withoutCallKind(decode(section.bytes)));
    const listingsBySection = text.split(/^Disassembly of section .*:$/m).slice(1);
    const assembled = listingsBySection.flatMap((listing) => assembleLlvm(listing));
    assert.deepEqual(assembled, expected, name);
  }
});

test("each line of llvm-objdump's default and decimal text assembles to its instruction", () => {
  let compared = 0;
  for (const name of readdirSync(fixtures).filter((file) => file.endsWith(".o"))) {
    const sections = executableSections(readFileSync(join(fixtures, name)));
    for (const suffix of ["default", "decimal"]) {
      const listings = objdumpListing(readFileSync(join(fixtures, name.replace(/\.o$/, `.${suffix}.txt`)), "utf8"));
      for (const section of sections) {
        const instructions = decode(section.bytes);
        listings.get(section.name)!.forEach(([slot, text], index) => {
          const instruction = instructions[index]!;
          // llvm-objdump cannot print these without +alu32, some encodings are invalid on purpose,
          // and it drops the immediate of an indirect packet load and the second half of an ld_pseudo
          if (text === "<unknown>" || instruction.opcode === 0xc3) return;
          if ((instruction.opcode & 0xe7) === 0x40 && instruction.imm !== 0) return;
          if (instruction.opcode === 0x18 && instruction.src !== 0 && (instruction.imm64 ?? 0n) >> 32n !== 0n) return;
          assert.deepEqual(assembleLlvm(text), withoutCallKind([instruction]), `${name} ${suffix} slot ${slot}: ${text}`);
          compared++;
        });
      }
    }
  }
  assert.ok(compared > 500, `compared ${compared}`);
});

test("disassemble → assembleLlvm is the identity on 5,000 seeded random valid instructions", () => {
  const random = seededRandom(42);
  const all: Instruction[] = [];
  for (let i = 0; i < 5000; i++) all.push(randomCase(random, false).instruction);
  for (const options of [{}, { alu32: true }, { immediates: "decimal" as const }]) {
    const text = disassemble(all, options);
    assert.deepEqual(assembleLlvm(text), all, JSON.stringify(options));
  }
});

test("every instruction of every fixture survives disassemble → assembleLlvm", () => {
  for (const name of readdirSync(fixtures).filter((file) => file.endsWith(".o"))) {
    for (const section of executableSections(readFileSync(join(fixtures, name)))) {
      const instructions = decode(section.bytes).filter((instruction) => instructionProblem(instruction) === undefined);
      for (const options of [{ alu32: true }, { immediates: "decimal" as const }]) {
        assert.deepEqual(encode(assembleLlvm(disassemble(instructions, options))), encode(withoutCallKind(instructions)), `${name} ${section.name}`);
      }
    }
  }
});

test("labels, clang-style", () => {
  const instructions = assembleLlvm(`
    r2 = *(u16 *)(r1 + 12)
    if r2 != 0x8 goto drop
    r0 = 1 ll
    call helper_function
    exit
  drop:
    w0 = 0
    exit
  helper_function:
    gotol drop
  `);
  assert.equal(instructions[1]!.offset, 4);
  assert.equal(instructions[3]!.src, 1);
  assert.equal(instructions[3]!.imm, 3);
  assert.equal(instructions[7]!.opcode, 0x06);
  assert.equal(instructions[7]!.imm, -3);
});

test("bad LLVM text is a UsageError naming the line", () => {
  assert.throws(() => assembleLlvm("r0 = 1\nr0 +== 2"), (error: unknown) => error instanceof UsageError && /line 2: cannot read "r0 \+== 2"/.test(error.message));
  assert.throws(() => assembleLlvm("w0 += r1"), /mixes 32-bit \(w\) and 64-bit \(r\)/);
  assert.throws(() => assembleLlvm("r11 = 1"), /not a register/);
  assert.throws(() => assembleLlvm("r0 = 0x80000000"), /out of range/);
  assert.doesNotThrow(() => assembleLlvm("w0 = 0x80000000"));
  assert.throws(() => assembleLlvm("goto nowhere"), /label "nowhere" is never defined/);
  assert.throws(() => assembleLlvm("r0 = *(u8 *)(r1 + 0x8000)"), /does not fit in 16 bits/);
  assert.throws(() => assembleLlvm("r1 = bswap16 r2"), /works in place/);
  assert.throws(() => assembleLlvm("w1 = (s32)w2"), /cannot sign-extend from 32 bits/);
});
