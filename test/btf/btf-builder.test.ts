import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder, encodeBtf } from "../../src/btf/btf-builder.js";
import { BtfFormatError } from "../../src/btf/btf-format-error.js";
import { UsageError } from "../../src/sys/errors.js";
import type { BtfEncodableType } from "../../src/btf/btf-types.js";
import { everyKind } from "./support/every-kind.js";
import { kernelBtfPath, loadKernelBtf } from "../../src/btf/kernel-btf.js";
import { skipUnlessKernel } from "../support/kernel.js";
import { bpftoolAvailable, bpftoolRawDump, fixtureDirectory } from "./support/bpftool-raw.js";
import { assertMatchesRaw } from "./support/compare-raw.js";
import { kernelBtfLoadAvailable, loadBtfIntoKernel } from "./support/kernel-btf-load.js";

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

test("BtfBuilder refuses a type without a known kind or a name, and bad options, naming them", () => {
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  const builder = new BtfBuilder();
  assert.throws(() => builder.add(42 as never), refused(/type must be an object, got 42/));
  assert.throws(() => builder.add({} as never), refused(/type\.kind must be one of "int", /));
  assert.throws(() => builder.add({ kind: "int" } as never), refused(/type\.name must be a string, got undefined/));
  const int = builder.add({ kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 });
  assert.throws(() => builder.replace(int, { kind: "struct" } as never), refused(/type\.name must be a string/));
  assert.throws(() => builder.addString(7 as never), refused(/value must be a string, got 7/));
  assert.throws(() => builder.encode("big" as never), refused(/options must be an object, got "big"/));
  assert.throws(() => builder.build({ byteOrder: "middle" } as never), refused(/options\.byteOrder must be one of "little", "big"/));
  assert.equal(builder.build({ byteOrder: "big" }).byteOrder, "big");
});
