import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/btf-builder.js";
import { BtfFormatError } from "../../src/btf/btf-format-error.js";
import { BtfLookupError } from "../../src/btf/btf-query.js";
import { NetbpfError, UsageError } from "../../src/sys/errors.js";
import { skipUnlessKernel } from "../support/kernel.js";
import { bpftoolAvailable, bpftoolRawDump, fixtureDirectory } from "./support/bpftool-raw.js";
import { assertMatchesRaw } from "./support/compare-raw.js";

const fixture = (name: string) => readFileSync(fixtureDirectory + name);

test("clang fixture decodes exactly as bpftool prints it", (t) => {
  if (skipUnlessKernel(t, bpftoolAvailable(), "bpftool is not installed")) return;
  const btf = Btf.parse(fixture("core-sample.btf"));
  const raw = bpftoolRawDump(fixtureDirectory + "core-sample.btf");
  assert.equal(btf.typeCount - 1, raw.size);
  for (const type of raw.values()) assertMatchesRaw(btf, type);
});

test("big-endian clang output decodes to the same types as little-endian", () => {
  const little = Btf.parse(fixture("core-sample.btf"));
  const big = Btf.parse(fixture("core-sample-be.btf"));
  assert.equal(little.byteOrder, "little");
  assert.equal(big.byteOrder, "big");
  assert.deepEqual([...big.entries()], [...little.entries()]);
});

test("kind, name and lookups by name and kind", () => {
  const btf = Btf.parse(fixture("core-sample.btf"));
  const [skb] = btf.findByName("sk_buff", "struct");
  assert.ok(skb !== undefined);
  assert.equal(btf.kindOf(skb), "struct");
  assert.equal(btf.nameOf(skb), "sk_buff");
  assert.deepEqual(btf.findByName("sk_buff", "union"), []);
  assert.deepEqual(btf.findByName("no_such_type"), []);
  // the same answers before and after the full name index exists
  const fresh = Btf.parse(fixture("core-sample.btf"));
  const names = ["sk_buff", "int", "__u32", "bits", "task_struct___flavor", "nope", "sk_buf", "k_buff"];
  const before = names.map((name) => fresh.findByName(name));
  fresh.names();
  assert.deepEqual(names.map((name) => fresh.findByName(name)), before);
  assert.deepEqual(before.slice(5), [[], [], []]);
  assert.throws(() => btf.findType("no_such_type", "struct"), (error: unknown) => error instanceof BtfLookupError && error instanceof NetbpfError && /no STRUCT named "no_such_type"/.test(error.message));
  assert.equal(btf.type(0).kind, "void");
  assert.throws(() => btf.type(btf.typeCount), BtfFormatError);
  assert.match(btf.describe(skb), /^STRUCT 'sk_buff' \[\d+\]$/);
});

test("split BTF: ids and strings continue after the base", () => {
  const base = Btf.parse(fixture("core-sample.btf"));
  const builder = new BtfBuilder({ base });
  const int = base.findType("int", "int");
  const structId = builder.add({ kind: "struct", name: "module_struct", size: 8, kindFlag: false, members: [{ name: "pid", type: int, bitOffset: 0, bitfieldSize: 0 }, { name: "len", type: int, bitOffset: 32, bitfieldSize: 0 }] });
  const pointer = builder.add({ kind: "pointer", name: "", type: structId });
  assert.equal(structId, base.typeCount);
  const split = Btf.parse(builder.encode(), { base });
  assert.equal(split.firstTypeId, base.typeCount);
  assert.equal(split.typeCount, base.typeCount + 2);
  assert.equal(split.type(pointer).kind, "pointer");
  assert.equal(split.nameOf(int), "int");
  assert.deepEqual(split.findByName("module_struct"), [structId]);
  assert.deepEqual(split.findByName("int", "int"), [int]);
  assert.equal(split.fieldOffset("module_struct", "len"), 4);
  assert.throws(() => Btf.parse(builder.encode()), BtfFormatError, "split BTF without its base refers to missing types");
  // names shared with the base point into the base's strings; lookups find them either way
  const shared = builder.add({ kind: "typedef", name: "sk_buff", type: structId });
  const withShared = builder.build();
  assert.ok(new DataView(builder.encode().buffer).getUint32(20, true) < "\0module_struct\0".length + 1, "no own copy of base strings");
  assert.deepEqual(withShared.findByName("sk_buff"), [base.findType("sk_buff"), shared]);
  assert.deepEqual(withShared.findByName("sk_buff", "typedef"), [shared]);
  assert.equal(withShared.nameOf(shared), "sk_buff");
  assert.equal(withShared.findString("module_struct"), base.stringsLength);
  assert.equal(withShared.findString("sk_buff"), base.findString("sk_buff"));
  assert.equal(withShared.findString("not there"), undefined);
});

test("split BTF decodes as bpftool prints it with --base-btf", (t) => {
  if (skipUnlessKernel(t, bpftoolAvailable(), "bpftool is not installed")) return;
  const base = Btf.parse(fixture("core-sample.btf"));
  const builder = new BtfBuilder({ base });
  const int = base.findType("int", "int");
  const skb = base.findType("sk_buff", "struct");
  const pointer = builder.add({ kind: "pointer", name: "", type: skb });
  builder.add({ kind: "struct", name: "module_state", size: 16, kindFlag: true, members: [{ name: "skb", type: pointer, bitOffset: 0, bitfieldSize: 0 }, { name: "flag", type: int, bitOffset: 64, bitfieldSize: 1 }] });
  builder.add({ kind: "typedef", name: "sk_buff_t", type: skb });
  const directory = mkdtempSync(join(tmpdir(), "netbpf-btf-"));
  try {
    const path = join(directory, "split.btf");
    writeFileSync(path, builder.encode());
    const split = Btf.parse(readFileSync(path), { base });
    const raw = bpftoolRawDump(path, fixtureDirectory + "core-sample.btf");
    const own = [...raw.values()].filter((type) => type.id >= split.firstTypeId);
    assert.equal(own.length, 3);
    for (const type of raw.values()) assertMatchesRaw(split, type);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

function header(overrides: Partial<Record<"magic" | "version" | "headerLength" | "typeOffset" | "typeLength" | "stringOffset" | "stringLength", number>>, body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(24 + body.length);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, overrides.magic ?? 0xeb9f, true);
  bytes[2] = overrides.version ?? 1;
  view.setUint32(4, overrides.headerLength ?? 24, true);
  view.setUint32(8, overrides.typeOffset ?? 0, true);
  view.setUint32(12, overrides.typeLength ?? 0, true);
  view.setUint32(16, overrides.stringOffset ?? 0, true);
  view.setUint32(20, overrides.stringLength ?? body.length, true);
  bytes.set(body, 24);
  return bytes;
}

test("malformed blobs give BtfFormatError naming what and where", () => {
  const strings = new Uint8Array([0, 0x61, 0]);
  const cases: [string, Uint8Array, RegExp][] = [
    ["short", new Uint8Array(10), /shorter than the 24-byte BTF header.*byte offset 0/],
    ["magic", header({ magic: 0x1234 }, strings), /bad magic 0x1234.*byte offset 0/],
    ["version", header({ version: 2 }, strings), /version 2/],
    ["header length", header({ headerLength: 4096 }, strings), /header length 4096 out of range.*byte offset 4/],
    ["type overrun", header({ typeLength: 100, stringOffset: 0 }, strings), /type section 0\+100 runs past/],
    ["string overrun", header({ stringLength: 50 }, strings), /string section 0\+50 runs past/],
    ["no NUL", header({}, new Uint8Array([0, 0x61])), /does not end with a NUL/],
    ["no empty string", header({}, new Uint8Array([0x61, 0])), /must start with the empty string/],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(() => Btf.parse(bytes), (error: unknown) => {
      assert.ok(error instanceof BtfFormatError, what);
      assert.ok(error instanceof NetbpfError, what);
      assert.match(error.message, message, what);
      return true;
    });
  }
});

function blob(words: number[], strings = "\0a\0"): Uint8Array {
  const typeBytes = new Uint8Array(words.length * 4);
  const view = new DataView(typeBytes.buffer);
  words.forEach((word, index) => view.setUint32(index * 4, word >>> 0, true));
  const stringBytes = Buffer.from(strings, "latin1");
  const body = new Uint8Array(typeBytes.length + stringBytes.length);
  body.set(typeBytes);
  body.set(stringBytes, typeBytes.length);
  return header({ typeLength: typeBytes.length, stringOffset: typeBytes.length, stringLength: stringBytes.length }, body);
}

test("bad type records: unknown kind, overrun, bad references, string offsets, loops", () => {
  const info = (kind: number, vlen = 0, flag = false) => ((flag ? 0x80000000 : 0) | (kind << 24) | vlen) >>> 0;
  assert.throws(() => Btf.parse(blob([1, info(25), 0])), /unknown kind 25 \(at type \[1\], byte offset 24\)/);
  assert.throws(() => Btf.parse(blob([1, info(4, 3), 8, 0, 0])), /STRUCT runs past the end of the type section \(at type \[1\]/);
  assert.throws(() => Btf.parse(blob([1, info(2), 7])), /type id 7 does not exist.*referenced by type \[1\]/);
  assert.throws(() => Btf.parse(blob([99, info(2), 0])), /string offset 99 is outside the string section.*type \[1\]/);
  assert.throws(() => Btf.parse(blob([0, info(1), 3, 32])), /INT size 3/);
  assert.throws(() => Btf.parse(blob([0, info(1), 4, 40])), /INT bits 40/);
  assert.throws(() => Btf.parse(blob([0, info(13), 0, 1, info(12, 3), 1])), /FUNC linkage 3 is not 0, 1 or 2 \(at type \[2\]/);
  // typedef 1 -> const 2 -> typedef 1: a loop is reported when the chain is followed.
  const loop = Btf.parse(blob([1, info(8), 2, 0, info(10), 1]));
  assert.throws(() => loop.resolve(1), /chain starting at TYPEDEF 'a' \[1\] is longer than 256 \(a loop\?\)/);
  assert.throws(() => loop.sizeOf(1), /a loop\?/);
  // array of itself
  const arrayLoop = Btf.parse(blob([0, info(3), 0, 1, 1, 4]));
  assert.throws(() => arrayLoop.sizeOf(1), BtfFormatError);
  // without validation, bad references surface (as BtfFormatError) when the type is used
  const lazy = Btf.parse(blob([1, info(2), 7]), { validate: false });
  assert.throws(() => lazy.type(1), /type id 7 does not exist/);
});

test("Btf methods refuse arguments of the wrong type with a UsageError naming the parameter", () => {
  const btf = new BtfBuilder().build();
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  assert.throws(() => btf.has("1" as never), refused(/id must be a type id \(an integer\), got "1"/));
  assert.throws(() => btf.describe(undefined as never), refused(/id must be an integer, got undefined/));
  assert.throws(() => btf.string(1.5), refused(/offset must be an integer offset into the string section, got 1\.5/));
  assert.throws(() => btf.findByName(42 as never), refused(/name must be a string, got 42/));
  assert.throws(() => btf.findByName("sk_buff", "structure" as never), refused(/kind must be one of/));
  assert.throws(() => btf.findType({} as never), refused(/name must be a string/));
  assert.throws(() => btf.findString(undefined as never), refused(/value must be a string/));
  const int = new BtfBuilder();
  const intId = int.add({ kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 });
  const withInt = int.build();
  assert.throws(() => withInt.typeOfKind(intId, "integer" as never), refused(/kind must be one of/));
  assert.throws(() => withInt.resolve(intId, { keepTypedefs: 1 } as never), refused(/options\.keepTypedefs must be true or false, got 1/));
  assert.throws(() => withInt.formatC(intId, "x", { offsets: "yes" } as never), refused(/options\.offsets must be true or false/));
  assert.throws(() => withInt.formatCDefinition(intId, { indent: 2 } as never), refused(/options\.indent must be a string, got 2/));
  assert.equal(btf.has(7), false);
  assert.deepEqual(btf.findByName("missing"), []);
});
