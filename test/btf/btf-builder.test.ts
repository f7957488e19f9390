import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder, encodeBtf } from "../../src/btf/btf-builder.js";
import { BtfFormatError } from "../../src/btf/btf-format-error.js";
import type { BtfEncodableType } from "../../src/btf/btf-types.js";
import { kernelBtfPath, loadKernelBtf } from "../../src/btf/kernel-btf.js";
import { skipUnlessKernel } from "../support/kernel.js";
import { bpftoolAvailable, bpftoolRawDump, fixtureDirectory } from "./support/bpftool-raw.js";
import { assertMatchesRaw } from "./support/compare-raw.js";
import { kernelBtfLoadAvailable, loadBtfIntoKernel } from "./support/kernel-btf-load.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One type of every kind, with the flags and edge values each kind can carry. */
export function everyKind(): BtfEncodableType[] {
  return [
    /* 1 */ { kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
    /* 2 */ { kind: "int", name: "_Bool", size: 1, signed: false, char: false, bool: true, bitOffset: 0, bits: 1 },
    /* 3 */ { kind: "pointer", name: "", type: 4 },
    /* 4 */ { kind: "struct", name: "node", size: 16, kindFlag: false, members: [{ name: "next", type: 3, bitOffset: 0, bitfieldSize: 0 }, { name: "value", type: 1, bitOffset: 64, bitfieldSize: 0 }] },
    /* 5 */ { kind: "struct", name: "flags", size: 4, kindFlag: true, members: [{ name: "a", type: 1, bitOffset: 0, bitfieldSize: 3 }, { name: "b", type: 1, bitOffset: 3, bitfieldSize: 29 }] },
    /* 6 */ { kind: "union", name: "", size: 8, kindFlag: false, members: [{ name: "x", type: 1, bitOffset: 0, bitfieldSize: 0 }, { name: "p", type: 3, bitOffset: 0, bitfieldSize: 0 }] },
    /* 7 */ { kind: "array", name: "", type: 1, indexType: 1, length: 4 },
    /* 8 */ { kind: "enum", name: "color", size: 4, signed: true, values: [{ name: "RED", value: -1 }, { name: "GREEN", value: 2147483647 }] },
    /* 9 */ { kind: "enum", name: "big", size: 4, signed: false, values: [{ name: "MAX", value: 4294967295 }] },
    /* 10 */ { kind: "enum64", name: "wide", size: 8, signed: false, values: [{ name: "W_MAX", value: 18446744073709551615n }, { name: "W_SMALL", value: 3n }] },
    /* 11 */ { kind: "enum64", name: "wide_signed", size: 8, signed: true, values: [{ name: "W_NEG", value: -9223372036854775808n }] },
    /* 12 */ { kind: "forward", name: "opaque", union: false },
    /* 13 */ { kind: "forward", name: "opaque_union", union: true },
    /* 14 */ { kind: "typedef", name: "node_t", type: 4 },
    /* 15 */ { kind: "volatile", name: "", type: 1 },
    /* 16 */ { kind: "const", name: "", type: 15 },
    /* 17 */ { kind: "restrict", name: "", type: 3 },
    /* 18 */ { kind: "functionProto", name: "", returnType: 1, parameters: [{ name: "n", type: 3 }, { name: "", type: 0 }] },
    /* 19 */ { kind: "function", name: "walk", type: 18, linkage: "global" },
    /* 20 */ { kind: "function", name: "helper", type: 18, linkage: "static" },
    /* 21 */ { kind: "variable", name: "counter", type: 1, linkage: "global" },
    /* 22 */ { kind: "variable", name: "hidden", type: 1, linkage: "static" },
    /* 23 */ { kind: "dataSection", name: ".data", size: 8, variables: [{ type: 21, offset: 0, size: 4 }, { type: 22, offset: 4, size: 4 }] },
    /* 24 */ { kind: "float", name: "double", size: 8 },
    /* 25 */ { kind: "declTag", name: "tag", type: 4, componentIndex: 1, attribute: false },
    /* 26 */ { kind: "declTag", name: "whole", type: 19, componentIndex: -1, attribute: true },
    /* 27 */ { kind: "typeTag", name: "user", type: 1, attribute: false },
    /* 28 */ { kind: "function", name: "imported", type: 18, linkage: "extern" },
    /* 29 */ { kind: "variable", name: "external", type: 1, linkage: "extern" },
  ];
}

test("parse(encode(types)) gives back every kind, in both byte orders", () => {
  const types = everyKind();
  for (const byteOrder of ["little", "big"] as const) {
    const btf = Btf.parse(encodeBtf(types, { byteOrder }));
    assert.equal(btf.byteOrder, byteOrder);
    assert.deepEqual([...btf.entries()].map(([, type]) => type), types);
  }
});

test("encoded blobs are accepted by bpftool and print the same", (t) => {
  if (skipUnlessKernel(t, bpftoolAvailable(), "bpftool is not installed")) return;
  const directory = mkdtempSync(join(tmpdir(), "netbpf-btf-"));
  try {
    const path = join(directory, "every-kind.btf");
    writeFileSync(path, encodeBtf(everyKind()));
    const btf = Btf.parse(readFileSync(path));
    const raw = bpftoolRawDump(path);
    assert.equal(raw.size, everyKind().length);
    for (const type of raw.values()) assertMatchesRaw(btf, type);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("strings are deduplicated", () => {
  const builder = new BtfBuilder();
  const int = builder.add({ kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 });
  builder.add({ kind: "typedef", name: "int", type: int });
  builder.add({ kind: "struct", name: "s", size: 8, kindFlag: false, members: [{ name: "int", type: int, bitOffset: 0, bitfieldSize: 0 }, { name: "s", type: int, bitOffset: 32, bitfieldSize: 0 }] });
  const bytes = builder.encode();
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(20, true), "\0int\0s\0".length);
  assert.equal(builder.addString("int"), 1);
});

test("clang fixture and kernel BTF survive a rebuild through the builder", (t) => {
  const fixture = Btf.parse(readFileSync(fixtureDirectory + "core-sample.btf"));
  const rebuilt = BtfBuilder.from(fixture).build();
  assert.deepEqual([...rebuilt.entries()], [...fixture.entries()]);
  if (skipUnlessKernel(t, existsSync(kernelBtfPath), "no kernel BTF")) return;
  const kernel = loadKernelBtf();
  const kernelRebuilt = BtfBuilder.from(kernel).build();
  assert.equal(kernelRebuilt.typeCount, kernel.typeCount);
  for (let id = 1; id < kernel.typeCount; id += 7) assert.deepEqual(kernelRebuilt.type(id), kernel.type(id));
});

test("the kernel's BTF verifier accepts what the builder encodes (map key/value, func_info)", (t) => {
  if (skipUnlessKernel(t, kernelBtfLoadAvailable(), "BPF_BTF_LOAD needs root on x86_64")) return;
  const builder = new BtfBuilder();
  const u32 = builder.add({ kind: "int", name: "unsigned int", size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 32 });
  const u64 = builder.add({ kind: "int", name: "long long unsigned int", size: 8, signed: false, char: false, bool: false, bitOffset: 0, bits: 64 });
  const key = builder.add({ kind: "struct", name: "flow_key", size: 12, kindFlag: false, members: [{ name: "saddr", type: u32, bitOffset: 0, bitfieldSize: 0 }, { name: "daddr", type: u32, bitOffset: 32, bitfieldSize: 0 }, { name: "ports", type: u32, bitOffset: 64, bitfieldSize: 0 }] });
  const pointer = builder.add({ kind: "pointer", name: "", type: 0 });
  const proto = builder.add({ kind: "functionProto", name: "", returnType: u32, parameters: [{ name: "context", type: pointer }] });
  builder.add({ kind: "function", name: "count_flows", type: proto, linkage: "global" });
  const btf = builder.build();
  assert.equal(btf.sizeOf(key), 12);
  assert.equal(btf.sizeOf(u64), 8);
  assert.equal(btf.formatC(btf.findType("count_flows")), "unsigned int count_flows(void *context)");
  assert.deepEqual(loadBtfIntoKernel(builder.encode()), { ok: true });
  // and rejects a broken one, so the check above means something
  const broken = new BtfBuilder();
  broken.add({ kind: "struct", name: "bad", size: 2, kindFlag: false, members: [{ name: "x", type: 0, bitOffset: 0, bitfieldSize: 0 }] });
  const result = loadBtfIntoKernel(broken.encode());
  assert.equal(result.ok, false);
});

test("the kernel accepts every kind the builder writes", (t) => {
  if (skipUnlessKernel(t, kernelBtfLoadAvailable(), "BPF_BTF_LOAD needs root on x86_64")) return;
  // extern linkage is for objects before linking; the kernel refuses it
  const withoutExtern = everyKind().map((type) => ((type.kind === "variable" || type.kind === "function") && type.linkage === "extern" ? { ...type, linkage: "global" as const } : type));
  const everything = loadBtfIntoKernel(encodeBtf(withoutExtern));
  assert.ok(everything.ok, everything.ok ? "" : `${everything.error}: ${everything.log}`);
});

test("the builder rejects types it cannot encode", () => {
  const cases: [BtfEncodableType[], RegExp][] = [
    [[{ kind: "pointer", name: "", type: 5 }], /type refers to type id 5, which does not exist.*type \[1\]/],
    [[{ kind: "enum", name: "e", size: 4, signed: false, values: [{ name: "A", value: 2 ** 33 }] }], /does not fit in 32 bits/],
    [[{ kind: "struct", name: "s", size: 4, kindFlag: true, members: [{ name: "m", type: 0, bitOffset: 2 ** 25, bitfieldSize: 1 }] }], /does not fit in 24 bits/],
    [[{ kind: "int", name: "i", size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 300 }], /out of range/],
  ];
  for (const [types, message] of cases) assert.throws(() => encodeBtf(types), (error: unknown) => error instanceof BtfFormatError && message.test(error.message));
  assert.throws(() => new BtfBuilder().addString("a\0b"), /NUL/);
});
