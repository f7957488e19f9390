import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/btf-builder.js";
import { BtfLookupError, enumValue, fieldLocation, fieldOffset, findEnumValue, findMember, sizeOf, skipQualifiers } from "../../src/btf/btf-query.js";
import { isCompositeKind, isEnumKind } from "../../src/btf/btf-types.js";
import { UsageError } from "../../src/sys/errors.js";
import { kernelBtfPath, loadKernelBtf } from "../../src/btf/kernel-btf.js";
import { skipUnlessKernel } from "../support/kernel.js";
import { bpftoolAvailable, bpftoolRawDump, fixtureDirectory, type RawType } from "./support/bpftool-raw.js";

const haveKernel = existsSync(kernelBtfPath) && bpftoolAvailable();
let rawCache: Map<number, RawType> | undefined;
const raw = () => (rawCache ??= bpftoolRawDump(kernelBtfPath));

/** Independent reference: find a member's bit offset from bpftool's dump (through anonymous members). */
function rawMember(types: Map<number, RawType>, id: number, name: string): { bits: number; type: number; bitfield: number } | undefined {
  let type = types.get(id)!;
  while (["TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"].includes(type.kind)) type = types.get(Number(type.fields.type_id))!;
  for (const entry of type.entries) {
    const bits = Number(entry.fields.bits_offset);
    if (entry.name === name) return { bits, type: Number(entry.fields.type_id), bitfield: Number(entry.fields.bitfield_size ?? 0) };
    if (entry.name === "") {
      const inner = types.get(Number(entry.fields.type_id))!;
      if (inner.kind === "STRUCT" || inner.kind === "UNION") {
        const found = rawMember(types, inner.id, name);
        if (found) return { ...found, bits: found.bits + bits };
      }
    }
  }
  return undefined;
}

function rawStruct(types: Map<number, RawType>, name: string): RawType {
  return [...types.values()].find((type) => type.kind === "STRUCT" && type.name === name)!;
}

test("field offsets in kernel BTF agree with bpftool", (t) => {
  if (skipUnlessKernel(t, haveKernel, "needs kernel BTF and bpftool")) return;
  const btf = loadKernelBtf();
  const types = raw();
  const skb = rawStruct(types, "sk_buff");
  const len = rawMember(types, skb.id, "len")!;
  assert.equal(btf.fieldOffset("sk_buff", "len"), len.bits / 8);
  assert.equal(btf.fieldOffset("sk_buff.len"), len.bits / 8);
  assert.equal(btf.fieldOffset(skb.id, "len"), len.bits / 8);

  const cb = rawMember(types, skb.id, "cb")!;
  const cbArray = types.get(cb.type)!;
  const elementSize = Number(types.get(Number(cbArray.fields.type_id))!.fields.size);
  const location = btf.field("sk_buff.cb[2]");
  assert.equal(location.byteOffset, cb.bits / 8 + 2 * elementSize);
  assert.equal(location.size, elementSize);

  const sock = rawStruct(types, "sock");
  const common = rawMember(types, sock.id, "__sk_common")!;
  const dport = rawMember(types, common.type, "skc_dport")!;
  assert.equal(btf.fieldOffset("sock.__sk_common.skc_dport"), (common.bits + dport.bits) / 8);
  assert.equal(btf.fieldOffset("struct sock", "__sk_common.skc_dport"), (common.bits + dport.bits) / 8);
  // skc_dport sits in an anonymous union inside sock_common; member() reports the path through it
  const member = btf.member("sock_common", "skc_dport")!;
  assert.equal(member.bitOffset, dport.bits);
  assert.ok(member.path.length >= 2, "found through an anonymous member");

  const task = rawStruct(types, "task_struct");
  assert.equal(btf.fieldOffset("task_struct", "pid"), rawMember(types, task.id, "pid")!.bits / 8);
  assert.equal(btf.sizeOf(btf.findType("task_struct", "struct")), Number(task.fields.size));

  // a bitfield
  const bitfield = [...types.values()].flatMap((type) => (type.kind === "STRUCT" && type.name !== "" ? type.entries.filter((entry) => entry.fields.bitfield_size && entry.name !== "").map((entry) => ({ type, entry })) : []))[0]!;
  const found = btf.field(bitfield.type.name, bitfield.entry.name);
  assert.equal(found.bitfieldSize, Number(bitfield.entry.fields.bitfield_size));
  assert.equal(found.bitOffset, Number(bitfield.entry.fields.bits_offset));
  assert.throws(() => btf.fieldOffset(bitfield.type.name, bitfield.entry.name), /is a bitfield/);

  assert.throws(() => btf.fieldOffset("sk_buff", "no_such_field"), (error: unknown) => error instanceof BtfLookupError && /STRUCT 'sk_buff' \[\d+\] has no member "no_such_field"/.test(error.message));
  assert.throws(() => btf.fieldOffset("sk_buff", "cb[9999]"), /out of bounds/);
  assert.throws(() => btf.fieldOffset("sk_buff", "len[1]"), /is not an array/);
  assert.throws(() => btf.fieldOffset("sk_buff", "len..x"), (error: unknown) => error instanceof UsageError && /cannot parse field path/.test(error.message));
  assert.throws(() => btf.fieldOffset("no_such_struct_xyz.len"), /no type named "no_such_struct_xyz"/);
});

test("enum values in kernel BTF agree with bpftool", (t) => {
  if (skipUnlessKernel(t, haveKernel, "needs kernel BTF and bpftool")) return;
  const btf = loadKernelBtf();
  const types = raw();
  const mapType = [...types.values()].find((type) => type.kind === "ENUM" && type.name === "bpf_map_type")!;
  for (const entry of mapType.entries) assert.equal(btf.enumValue("bpf_map_type", entry.name), Number(entry.fields.val));
  const found = findEnumValue(btf, "BPF_PROG_TYPE_XDP")!;
  assert.equal(btf.nameOf(found.enumId), "bpf_prog_type");
  assert.throws(() => btf.enumValue("bpf_map_type", "NOPE"), /has no value "NOPE"/);
  const enum64 = [...types.values()].find((type) => type.kind === "ENUM64" && type.name !== "");
  if (enum64) assert.equal(btf.enumValue(enum64.name, enum64.entries[0]!.name), BigInt(enum64.entries[0]!.fields.val!.replace(/U?LL$/, "")));
});

test("sizes and alignments of kernel structs agree with bpftool sizes", (t) => {
  if (skipUnlessKernel(t, haveKernel, "needs kernel BTF and bpftool")) return;
  const btf = loadKernelBtf();
  let checked = 0;
  for (const type of raw().values()) {
    if (type.kind !== "STRUCT" && type.kind !== "UNION") continue;
    const size = Number(type.fields.size);
    assert.equal(btf.sizeOf(type.id), size);
    const alignment = btf.alignmentOf(type.id);
    assert.ok([1, 2, 4, 8].includes(alignment), `${type.name} alignment ${alignment}`);
    assert.equal(size % alignment, 0, `${type.name} size is a multiple of its alignment`);
    checked++;
  }
  assert.ok(checked > 100);
});

test("C formatting compiles with clang and reproduces clang's layout", (t) => {
  let clang = true;
  try {
    execFileSync("clang", ["--version"], { stdio: "ignore" });
  } catch {
    clang = false;
  }
  if (skipUnlessKernel(t, clang, "clang is not installed")) return;
  const btf = Btf.parse(readFileSync(fixtureDirectory + "core-sample.btf"));
  const names = ["__u32", "__u64", "sk_buff", "sock_common", "sock", "bits", "tagged", "bpf_map_type"];
  const definitions = names.map((name) => btf.formatCDefinition(btf.findType(name)));
  const checks: string[] = [];
  for (const [root, path] of [["sk_buff", "cb[2]"], ["sock", "__sk_common.skc_num"], ["bits", "anonymous_member"], ["tagged", "precise"]] as const) {
    const location = btf.field(root, path);
    checks.push(`_Static_assert(__builtin_offsetof(struct ${root}, ${path}) == ${location.byteOffset}, "${root}.${path}");`);
  }
  for (const name of ["sk_buff", "sock", "bits", "tagged"]) {
    const id = btf.findType(name, "struct");
    checks.push(`_Static_assert(sizeof(struct ${name}) == ${btf.sizeOf(id)}, "size ${name}");`);
    checks.push(`_Static_assert(_Alignof(struct ${name}) == ${btf.alignmentOf(id)}, "alignment ${name}");`);
  }
  const prototype = btf.formatC(btf.findType("helper_function", "function"));
  assert.equal(prototype, "int helper_function(struct bits *b, int extra, ...)");
  const directory = mkdtempSync(join(tmpdir(), "netbpf-btf-"));
  try {
    const source = join(directory, "generated.c");
    writeFileSync(source, [...definitions, `${prototype};`, ...checks, ""].join("\n"));
    execFileSync("clang", ["-target", "bpf", "-fsyntax-only", "-Werror", source], { stdio: "pipe" });
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("C type expressions for pointers, arrays, function pointers and qualifiers", () => {
  const builder = new BtfBuilder();
  const char = builder.add({ kind: "int", name: "char", size: 1, signed: true, char: false, bool: false, bitOffset: 0, bits: 8 });
  const constChar = builder.add({ kind: "const", name: "", type: char });
  const pointerToConst = builder.add({ kind: "pointer", name: "", type: constChar });
  const constPointer = builder.add({ kind: "const", name: "", type: pointerToConst });
  const array = builder.add({ kind: "array", name: "", type: char, indexType: char, length: 16 });
  const pointerToArray = builder.add({ kind: "pointer", name: "", type: array });
  const proto = builder.add({ kind: "functionProto", name: "", returnType: 0, parameters: [{ name: "", type: pointerToConst }] });
  const functionPointer = builder.add({ kind: "pointer", name: "", type: proto });
  const arrayOfFunctionPointers = builder.add({ kind: "array", name: "", type: functionPointer, indexType: char, length: 4 });
  const btf = builder.build();
  assert.equal(btf.formatC(pointerToConst, "p"), "const char *p");
  assert.equal(btf.formatC(constPointer, "p"), "const char *const p");
  assert.equal(btf.formatC(array, "name"), "char name[16]");
  assert.equal(btf.formatC(array), "char[16]");
  assert.equal(btf.formatC(pointerToArray, "p"), "char (*p)[16]");
  assert.equal(btf.formatC(functionPointer, "callback"), "void (*callback)(const char *)");
  assert.equal(btf.formatC(arrayOfFunctionPointers, "table"), "void (*table[4])(const char *)");
  assert.equal(btf.formatC(proto), "void (const char *)");
});

test("queries refuse a wrong BTF, type id, kind or option with a UsageError naming it", () => {
  const builder = new BtfBuilder();
  const int = builder.add({ kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 });
  builder.add({ kind: "struct", name: "pair", size: 8, kindFlag: false, members: [{ name: "a", type: int, bitOffset: 0, bitfieldSize: 0 }, { name: "b", type: int, bitOffset: 32, bitfieldSize: 0 }] });
  const btf = Btf.parse(builder.encode());
  const untyped = (f: Function, ...args: unknown[]): unknown => f(...args);
  const cases: [() => unknown, RegExp][] = [
    [() => untyped(sizeOf, {}, 1), /^size of BTF type: btf must be a Btf \(from Btf\.parse or loadKernelBtf\), got an object/],
    [() => untyped(sizeOf, btf, 3), /id must be a type id of this BTF \(0 to 2\), got 3/],
    [() => untyped(sizeOf, btf, 1.5), /id must be a type id of this BTF/],
    [() => untyped(skipQualifiers, btf, 1, "keep"), /options must be an object, got "keep"/],
    [() => untyped(findMember, btf, 2, 7), /name must be a string, got 7/],
    [() => untyped(fieldLocation, btf, 9), /root must be a type id of this BTF \(0 to 2\), got 9/],
    [() => untyped(fieldLocation, btf, "pair", 1), /path must be a string, got 1/],
    [() => untyped(enumValue, btf, [], "A"), /enumName must be a type name or a type id, got an array/],
    [() => untyped(isCompositeKind, "record"), /kind must be one of "void", "int", .*got "record"/],
    [() => untyped(isEnumKind, undefined), /kind must be one of .*got undefined/],
    [() => untyped(Btf.parse, builder.encode(), { validate: "yes" }), /options\.validate must be a boolean, got "yes"/],
    [() => untyped(Btf.parse, builder.encode(), { base: {} }), /options\.base must be a Btf/],
  ];
  for (const [call, pattern] of cases) assert.throws(call, (error: unknown) => error instanceof UsageError && pattern.test(error.message), pattern.source);
  // Valid calls are unchanged, through the checked entry points and the Btf methods.
  assert.equal(sizeOf(btf, 2), 8);
  assert.equal(fieldOffset(btf, "pair", "b"), 4);
  assert.equal(btf.member(2, "b")?.byteOffset, 4);
  assert.equal(isCompositeKind("struct"), true);
  assert.equal(isCompositeKind("int"), false);
});
