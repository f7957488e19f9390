import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decode, encode, validateInstructions } from "../../src/asm/instruction.js";
import { disassemble } from "../../src/asm/disassembler.js";
import { ExecutionError, Interpreter } from "../../src/asm/interpreter.js";
import { assembleText } from "../../src/asm/text-assembler.js";
import { assembleLlvm } from "../../src/asm/llvm-assembler.js";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../../src/sys/errors.js";
import { findConformanceDirectory, parseConformanceFile } from "./conformance-file.js";
import { seededRandom } from "../support/seeded-random.js";

/** Only our typed errors may escape; anything else (TypeError, RangeError…) fails the test. */
function expectCleanFailure(error: unknown, allowed: (new (...args: never[]) => Error)[], context: string): void {
  if (!allowed.some((kind) => error instanceof kind)) {
    throw new Error(`${context}: unexpected ${(error as Error)?.name}: ${(error as Error)?.message}`, { cause: error });
  }
  assert.ok((error as Error).message.length > 10, context);
}

/** Random slots biased towards real opcodes, so some programs validate and run. */
function randomProgramBytes(random: () => number): Uint8Array {
  const opcodes = [0x07, 0x0f, 0x04, 0x0c, 0xb7, 0xbf, 0xb4, 0x18, 0x61, 0x69, 0x71, 0x79, 0x91, 0x62, 0x63, 0x7b, 0xdb, 0xc3, 0x05, 0x06, 0x15, 0x1d, 0x25, 0xa6, 0x85, 0x95, 0xdc, 0xd7, 0x87, 0x3f, 0x9f, 0x30, 0x50];
  const length = Math.floor(random() * 12) * 8 + (random() < 0.1 ? Math.floor(random() * 8) : 0);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
  for (let slot = 0; slot * 8 < length - 7; slot++) {
    if (random() < 0.85) bytes[slot * 8] = opcodes[Math.floor(random() * opcodes.length)]!;
    if (random() < 0.7) bytes[slot * 8 + 1]! &= random() < 0.5 ? 0x0f : 0x3f;
    if (random() < 0.6) {
      bytes[slot * 8 + 2] = Math.floor(random() * 4);
      bytes[slot * 8 + 3] = 0;
    }
    if (random() < 0.5) bytes.fill(0, slot * 8 + 4, slot * 8 + 8);
  }
  if (length >= 8 && random() < 0.5) bytes.set([0x95, 0, 0, 0, 0, 0, 0, 0], length - (length % 8) - 8);
  return bytes;
}

test("random bytes: decode, validate, disassemble and run fail only with clear errors (seeded)", () => {
  const random = seededRandom(1234);
  let ran = 0;
  for (let round = 0; round < 20000; round++) {
    const bytes = randomProgramBytes(random);
    let instructions;
    try {
      instructions = decode(bytes);
    } catch (error) {
      expectCleanFailure(error, [UsageError], `decode round ${round}`);
      continue;
    }
    assert.deepEqual(encode(instructions), Buffer.from(bytes), `round ${round}: re-encoding gives the same bytes`);
    assert.equal(typeof disassemble(instructions), "string");
    try {
      validateInstructions(instructions);
    } catch (error) {
      expectCleanFailure(error, [UsageError], `validate round ${round}`);
      continue;
    }
    try {
      new Interpreter(instructions, { instructionLimit: 5000, helpers: { 1: () => 0, 5: () => 1 } }).run(new Uint8Array(32));
      ran++;
    } catch (error) {
      expectCleanFailure(error, [ExecutionError, UsageError], `run round ${round}`);
    }
  }
  assert.ok(ran > 50, `only ${ran} random programs ran to completion`);
});

test("mutated conformance sources assemble or fail with a UsageError (seeded)", (t) => {
  const directory = findConformanceDirectory();
  assert.ok(directory, "bpf_conformance data not found (expected test/fixtures/bpf_conformance)");
  const sources = readdirSync(join(directory, "tests"))
    .map((name) => parseConformanceFile(readFileSync(join(directory, "tests", name), "utf8")).asm)
    .filter((source): source is string => source !== undefined);
  const random = seededRandom(99);
  const alphabet = "%r0123456789abcdefx[]+-,: #\nlockfetchexitjajne";
  for (let round = 0; round < 10000; round++) {
    const characters = [...sources[Math.floor(random() * sources.length)]!];
    const edits = 1 + Math.floor(random() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(random() * characters.length);
      const kind = random();
      if (kind < 0.33) characters.splice(at, 1);
      else if (kind < 0.66) characters.splice(at, 0, alphabet[Math.floor(random() * alphabet.length)]!);
      else characters[at] = alphabet[Math.floor(random() * alphabet.length)]!;
    }
    try {
      const instructions = assembleText(characters.join(""));
      assert.deepEqual(decode(encode(instructions)), instructions);
    } catch (error) {
      expectCleanFailure(error, [UsageError], `round ${round}`);
    }
  }
});

test("mutated llvm-objdump listings assemble or fail with a UsageError (seeded)", () => {
  const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "test", "fixtures", "asm");
  const lines = readdirSync(fixtures)
    .filter((name) => name.endsWith(".txt"))
    .flatMap((name) => readFileSync(join(fixtures, name), "utf8").split("\n"));
  const random = seededRandom(7);
  const alphabet = "rw0123456789x*()[]+-=<>&|^%s:; \tlgotifcalexuskb";
  for (let round = 0; round < 20000; round++) {
    const characters = [...lines[Math.floor(random() * lines.length)]!];
    const edits = 1 + Math.floor(random() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(random() * (characters.length + 1));
      const kind = random();
      if (kind < 0.33) characters.splice(at, 1);
      else if (kind < 0.66) characters.splice(at, 0, alphabet[Math.floor(random() * alphabet.length)]!);
      else characters[at] = alphabet[Math.floor(random() * alphabet.length)]!;
    }
    try {
      const instructions = assembleLlvm(characters.join(""));
      assert.deepEqual(decode(encode(instructions)), instructions);
    } catch (error) {
      expectCleanFailure(error, [UsageError], `round ${round}: ${JSON.stringify(characters.join(""))}`);
    }
  }
});
