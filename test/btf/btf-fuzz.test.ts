import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder, encodeBtf } from "../../src/btf/btf-builder.js";
import { parseBtfExt } from "../../src/btf/btf-ext.js";
import { BtfFormatError } from "../../src/btf/btf-format-error.js";
import { BtfLookupError } from "../../src/btf/btf-query.js";
import { UsageError } from "../../src/sys/errors.js";
import { allBtfFeatures, sanitizeBtf } from "../../src/btf/btf-sanitize.js";
import { CoreRelocationError, resolveCoreRelocation } from "../../src/btf/core-relocation.js";
import { fixtureDirectory } from "./support/bpftool-raw.js";
import { everyKind } from "./support/every-kind.js";
import { seededRandom } from "../support/seeded-random.js";

const random = seededRandom;

const interesting = [0, 1, 2, 3, 4, 7, 8, 12, 16, 24, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 0x01000000, 0x04000003, 0x84000002, 0x0d000001, 0x13000001];

function mutate(input: Uint8Array, next: () => number): Uint8Array {
  let bytes = new Uint8Array(input);
  const edits = 1 + Math.floor(next() * 4);
  for (let edit = 0; edit < edits; edit++) {
    const choice = next();
    const position = Math.floor(next() * bytes.length);
    if (choice < 0.35) {
      bytes[position] = Math.floor(next() * 256);
    } else if (choice < 0.75 && bytes.length >= 4) {
      const aligned = Math.min(position - (position % 4), bytes.length - 4);
      new DataView(bytes.buffer).setUint32(aligned, interesting[Math.floor(next() * interesting.length)]!, true);
    } else if (choice < 0.85) {
      bytes = bytes.slice(0, position);
    } else if (choice < 0.95 && bytes.length > 0) {
      const length = Math.min(bytes.length - position, 1 + Math.floor(next() * 24));
      const copy = bytes.slice(position, position + length);
      const target = Math.floor(next() * bytes.length);
      bytes.set(copy.subarray(0, Math.max(0, Math.min(copy.length, bytes.length - target))), target);
    } else {
      bytes[position] = bytes[position]! ^ (1 << Math.floor(next() * 8));
    }
  }
  return bytes;
}

/** Run with short stack traces: building them dominates the cost of the thousands of expected errors. */
function withShortStacks(action: () => void): void {
  const saved = Error.stackTraceLimit;
  Error.stackTraceLimit = 3;
  try {
    action();
  } finally {
    Error.stackTraceLimit = saved;
  }
}

function expectOnly(action: () => unknown, allowed: (new (...args: never[]) => Error)[], context: string): void {
  try {
    action();
  } catch (error) {
    if (allowed.some((kind) => error instanceof kind)) return;
    assert.fail(`${context}: unexpected ${(error as Error)?.constructor?.name}: ${(error as Error)?.stack ?? error}`);
  }
}

const queryErrors = [BtfFormatError, BtfLookupError, UsageError];

/** Use a parsed blob every way the API allows; only our own error classes may come out. */
function exercise(btf: Btf, target: Btf, context: string): void {
  for (let id = 0; id < btf.typeCount; id++) {
    expectOnly(() => btf.type(id), queryErrors, context);
    expectOnly(() => btf.describe(id), queryErrors, context);
    expectOnly(() => btf.sizeOf(id), queryErrors, context);
    expectOnly(() => btf.alignmentOf(id), queryErrors, context);
    expectOnly(() => btf.formatC(id, "x"), queryErrors, context);
    expectOnly(() => btf.formatCDefinition(id), queryErrors, context);
    expectOnly(() => btf.resolve(id), queryErrors, context);
    expectOnly(() => btf.member(id, "len"), queryErrors, context);
    expectOnly(() => btf.field(id, "cb[2]"), queryErrors, context);
    const kind = [0, 3, 9, 11, 12][id % 5]!;
    const accessString = kind === 9 || kind === 12 ? "0" : kind === 11 ? "1" : "0:1:2";
    expectOnly(() => resolveCoreRelocation(btf, { typeId: id, accessString, kind }, target), [...queryErrors, CoreRelocationError], context);
    expectOnly(() => resolveCoreRelocation(target, { typeId: id, accessString, kind }, btf), [...queryErrors, CoreRelocationError], context);
  }
  expectOnly(() => btf.findByName("sk_buff"), queryErrors, context);
  expectOnly(() => btf.fieldOffset("sk_buff.cb[2]"), queryErrors, context);
  expectOnly(() => BtfBuilder.from(btf).build(), queryErrors, context);
  expectOnly(() => sanitizeBtf(btf, { ...allBtfFeatures, enum64: false, datasec: false, func: false }), queryErrors, context);
}

test("mutated BTF blobs only ever raise BtfFormatError", () => {
  const fixture = readFileSync(fixtureDirectory + "core-sample.btf");
  const target = Btf.parse(fixture);
  const seeds = [fixture, readFileSync(fixtureDirectory + "core-sample-be.btf"), encodeBtf(everyKind())];
  const next = random(0x5eed);
  // A fixed number of mutants (not a time budget), so a busy machine runs the same test.
  let parsed = 0;
  let iterations = 0;
  withShortStacks(() => {
    for (; iterations < 300; iterations++) {
      const input = mutate(seeds[iterations % seeds.length]!, next);
      const validate = iterations % 3 !== 0;
      let btf: Btf | undefined;
      expectOnly(() => {
        btf = Btf.parse(input, { validate });
      }, [BtfFormatError], `iteration ${iterations}`);
      if (btf) {
        parsed++;
        exercise(btf, target, `iteration ${iterations}`);
      }
    }
  });
  if (process.env.NETBPF_FUZZ_VERBOSE) console.log({ iterations, parsed });
  assert.ok(parsed > iterations / 10, `some mutants parse (${parsed} of ${iterations}), so the queries are exercised too`);
});

test("mutated .BTF.ext sections only ever raise BtfFormatError", () => {
  const btf = Btf.parse(readFileSync(fixtureDirectory + "core-sample.btf"));
  const ext = readFileSync(fixtureDirectory + "core-sample.btf.ext");
  const next = random(0xe47);
  let parsed = 0;
  withShortStacks(() => {
    for (let iteration = 0; iteration < 3000; iteration++) {
      const input = mutate(ext, next);
      expectOnly(() => {
        const result = parseBtfExt(input, btf);
        parsed++;
        for (const records of result.coreRelocations.values()) {
          for (const record of records) expectOnly(() => resolveCoreRelocation(btf, record, btf), [BtfFormatError, CoreRelocationError], `iteration ${iteration}`);
        }
      }, [BtfFormatError], `iteration ${iteration}`);
    }
  });
  assert.ok(parsed > 100, `some mutants parse (${parsed})`);
});

test("pathological but valid BTF does not hang: self-containing and exponentially shared anonymous types", () => {
  const builder = new BtfBuilder();
  const int = builder.add({ kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 });
  // anonymous struct whose members point back at it
  const selfId = builder.nextTypeId;
  const pointer = builder.add({ kind: "pointer", name: "", type: selfId + 1 });
  builder.add({ kind: "struct", name: "", size: 16, kindFlag: false, members: [{ name: "a", type: pointer, bitOffset: 0, bitfieldSize: 0 }, { name: "b", type: pointer, bitOffset: 64, bitfieldSize: 0 }] });
  // 40 levels of anonymous structs, each holding the previous twice: 2^40 paths if not shared
  let previous = int;
  for (let level = 0; level < 40; level++) {
    previous = builder.add({ kind: "struct", name: "", size: 8, kindFlag: false, members: [{ name: "", type: previous, bitOffset: 0, bitfieldSize: 0 }, { name: "", type: previous, bitOffset: 0, bitfieldSize: 0 }] });
  }
  const top = builder.add({ kind: "struct", name: "deep", size: 8, kindFlag: false, members: [{ name: "", type: previous, bitOffset: 0, bitfieldSize: 0 }] });
  const btf = builder.build();
  const started = Date.now();
  assert.match(btf.formatC(pointer, "p"), /struct \/\* anonymous \[\d+\] \*\//);
  assert.equal(btf.member(top, "missing"), undefined);
  assert.equal(btf.alignmentOf(top), 4);
  assert.throws(() => btf.formatCDefinition(top), BtfFormatError);
  assert.throws(() => resolveCoreRelocation(btf, { typeId: top, accessString: "0", kind: 12 }, btf), CoreRelocationError);
  assert.ok(Date.now() - started < 5000);
});
