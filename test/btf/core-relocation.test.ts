import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/btf-builder.js";
import { parseBtfExt, type BtfExtCoreRelocation } from "../../src/btf/btf-ext.js";
import type { BtfEncodableType } from "../../src/btf/btf-types.js";
import {
  CoreRelocationError,
  CoreRelocationKind,
  essentialName,
  resolveCoreRelocation,
  type CoreRelocationResult,
} from "../../src/btf/core-relocation.js";
import { applyCoreRelocation, corePoisonImmediate } from "../../src/btf/apply-core-relocation.js";
import { kernelBtfPath, loadKernelBtf } from "../../src/btf/kernel-btf.js";
import { encode, makeInstruction, makeWideInstruction } from "../../src/asm/instruction.js";
import { skipUnlessKernel } from "../support/kernel.js";
import { bpftoolAvailable, bpftoolRawDump, fixtureDirectory, type RawType } from "./support/bpftool-raw.js";

const local = Btf.parse(readFileSync(fixtureDirectory + "core-sample.btf"));
const ext = parseBtfExt(readFileSync(fixtureDirectory + "core-sample.btf.ext"), local);
const sections: Record<string, Uint8Array> = {
  socket: readFileSync(fixtureDirectory + "core-sample.socket.bin"),
  ".text": readFileSync(fixtureDirectory + "core-sample.text.bin"),
};

function relocation(section: string, typeName: string, accessString: string, kind: number): BtfExtCoreRelocation {
  const found = ext.coreRelocations.get(section)!.find((candidate) => local.nameOf(candidate.typeId) === typeName && candidate.accessString === accessString && candidate.kind === kind);
  assert.ok(found, `fixture has ${typeName} ${accessString} kind ${kind}`);
  return found;
}

/** The value clang put into the relocated instruction (what libbpf validates against). */
function instructionValue(section: string, instructionOffset: number): bigint {
  const bytes = sections[section]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const code = bytes[instructionOffset]!;
  const instructionClass = code & 7;
  if (code === 0x18) return BigInt(view.getUint32(instructionOffset + 4, true)) | (BigInt(view.getUint32(instructionOffset + 12, true)) << 32n);
  if (instructionClass === 1 || instructionClass === 2 || instructionClass === 3) return BigInt(view.getInt16(instructionOffset + 2, true));
  return BigInt(view.getUint32(instructionOffset + 4, true));
}

/** Bit offset of a member by name from bpftool's dump, through anonymous members (independent of our code). */
function rawMemberBits(types: Map<number, RawType>, id: number, path: string[]): number | undefined {
  let total = 0;
  let current = id;
  for (const name of path) {
    const found = searchRaw(types, current, name);
    if (!found) return undefined;
    total += found.bits;
    current = found.type;
  }
  return total;
}

function searchRaw(types: Map<number, RawType>, id: number, name: string): { bits: number; type: number } | undefined {
  let type = types.get(id)!;
  while (["TYPEDEF", "CONST", "VOLATILE"].includes(type.kind)) type = types.get(Number(type.fields.type_id))!;
  for (const entry of type.entries) {
    const bits = Number(entry.fields.bits_offset);
    if (entry.name === name) return { bits, type: Number(entry.fields.type_id) };
    if (entry.name === "" && ["STRUCT", "UNION"].includes(types.get(Number(entry.fields.type_id))?.kind ?? "")) {
      const inner = searchRaw(types, Number(entry.fields.type_id), name);
      if (inner) return { bits: bits + inner.bits, type: inner.type };
    }
  }
  return undefined;
}

test("local values agree with the immediates and offsets clang emitted", () => {
  let checked = 0;
  for (const [section, relocations] of ext.coreRelocations) {
    for (const record of relocations) {
      if (record.kind === CoreRelocationKind.typeIdLocal || record.kind === CoreRelocationKind.typeIdTarget) continue;
      const result = resolveCoreRelocation(local, record, local);
      // like libbpf, bitfield offsets and sizes are not validated: clang may pick a wider load than libbpf's rule
      if (result.validate) assert.equal(result.localValue, instructionValue(section, record.instructionOffset), `${section}+${record.instructionOffset}: ${result.localSpec}`);
      // resolving against itself changes nothing
      assert.equal(result.poison, false, result.localSpec);
      assert.equal(result.targetValue, result.localValue, result.localSpec);
      checked++;
    }
  }
  assert.ok(checked >= 15, `checked ${checked} relocations`);
});

test("fixture relocations against kernel BTF agree with bpftool's layout", (t) => {
  if (skipUnlessKernel(t, existsSync(kernelBtfPath) && bpftoolAvailable(), "needs kernel BTF and bpftool")) return;
  const kernel = loadKernelBtf();
  const raw = bpftoolRawDump(kernelBtfPath);
  const rawByName = (kind: string, name: string) => [...raw.values()].find((type) => type.kind === kind && type.name === name)!;
  const skb = rawByName("STRUCT", "sk_buff");
  const sock = rawByName("STRUCT", "sock");
  const task = rawByName("STRUCT", "task_struct");
  const resolve = (typeName: string, access: string, kind: number) => resolveCoreRelocation(local, relocation("socket", typeName, access, kind), kernel);

  assert.equal(resolve("sk_buff", "0:0", 0).targetValue, BigInt(rawMemberBits(raw, skb.id, ["len"])! / 8));
  const cbBits = rawMemberBits(raw, skb.id, ["cb"])!;
  const cb = resolve("sk_buff", "0:1:2", 0);
  // as in libbpf, the index is scaled by the target's element size (the kernel's cb is char[48])
  const cbElement = raw.get(Number(raw.get(searchRaw(raw, skb.id, "cb")!.type)!.fields.type_id))!;
  assert.equal(cb.targetValue, BigInt(cbBits / 8 + 2 * Number(cbElement.fields.size)));
  assert.equal(resolve("sock", "0:0:0", 0).targetValue, BigInt(rawMemberBits(raw, sock.id, ["__sk_common", "skc_dport"])! / 8));
  assert.equal(resolve("task_struct", "0:0", 0).targetValue, BigInt(rawMemberBits(raw, task.id, ["pid"])! / 8));
  const flavored = resolve("task_struct___flavor", "0:0", 0);
  assert.equal(flavored.targetValue, BigInt(rawMemberBits(raw, task.id, ["tgid"])! / 8));
  assert.equal(flavored.target?.typeId, task.id);

  const exists = resolve("task_struct", "0:1", CoreRelocationKind.fieldExists);
  assert.equal(exists.poison, false);
  assert.equal(exists.targetValue, 0n);
  const missing = resolve("task_struct", "0:1", CoreRelocationKind.fieldByteOffset);
  assert.equal(missing.poison, true);
  assert.match(missing.reason!, /STRUCT task_struct \[\d+\] \.field_that_does_not_exist_in_the_kernel .*has no match.*candidates tried: STRUCT task_struct/);

  assert.equal(resolve("sk_buff", "0", CoreRelocationKind.typeExists).targetValue, 1n);
  assert.equal(resolve("sk_buff", "0", CoreRelocationKind.typeSize).targetValue, BigInt(skb.fields.size!));
  assert.equal(resolve("sk_buff", "0", CoreRelocationKind.typeIdTarget).targetValue, BigInt(skb.id));
  assert.equal(resolve("sk_buff", "0", CoreRelocationKind.typeIdLocal).targetValue, BigInt(local.findType("sk_buff")));

  const mapType = rawByName("ENUM", "bpf_map_type");
  const arrayValue = mapType.entries.find((entry) => entry.name === "BPF_MAP_TYPE_ARRAY")!;
  assert.equal(resolve("bpf_map_type", "2", CoreRelocationKind.enumValueExists).targetValue, 1n);
  assert.equal(resolve("bpf_map_type", "2", CoreRelocationKind.enumValueValue).targetValue, BigInt(arrayValue.fields.val!));
  const notInKernel = resolve("bpf_map_type", "3", CoreRelocationKind.enumValueValue);
  assert.equal(notInKernel.poison, true);
  assert.match(notInKernel.reason!, /bpf_map_type.*BPF_MAP_TYPE_NOT_IN_KERNEL has no match/);

  // the relocated program: patch each instruction the way libbpf does, with validation on
  const program = new Uint8Array(sections.socket!);
  for (const record of ext.coreRelocations.get("socket")!) {
    applyCoreRelocation(program, record.instructionOffset / 8, resolveCoreRelocation(local, record, kernel));
  }
  const view = new DataView(program.buffer);
  const lenRecord = relocation("socket", "sk_buff", "0:0", 0);
  assert.equal(view.getInt16(lenRecord.instructionOffset + 2, true), rawMemberBits(raw, skb.id, ["len"])! / 8);
  const poisoned = relocation("socket", "task_struct", "0:1", 0);
  assert.equal(program[poisoned.instructionOffset], 0x85);
  assert.equal(view.getInt32(poisoned.instructionOffset + 4, true), corePoisonImmediate);
});

/** Target BTF: `bits` laid out differently, plus flavors and enums. */
function targetTypes(): BtfEncodableType[] {
  return [
    /* 1 */ { kind: "int", name: "unsigned int", size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 32 },
    /* 2 */ { kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
    /* 3 */ { kind: "int", name: "long long unsigned int", size: 8, signed: false, char: false, bool: false, bitOffset: 0, bits: 64 },
    /* 4 */ { kind: "union", name: "", size: 4, kindFlag: false, members: [{ name: "anonymous_member", type: 2, bitOffset: 0, bitfieldSize: 0 }] },
    /* 5 */ {
      kind: "struct", name: "bits", size: 24, kindFlag: true, members: [
        { name: "padding", type: 3, bitOffset: 0, bitfieldSize: 0 },
        { name: "", type: 4, bitOffset: 64, bitfieldSize: 0 },
        { name: "signed_middle", type: 2, bitOffset: 100, bitfieldSize: 9 },
        { name: "low", type: 1, bitOffset: 128, bitfieldSize: 3 },
        { name: "high", type: 3, bitOffset: 131, bitfieldSize: 40 },
      ],
    },
  ];
}

test("bitfields and anonymous members relocate to a different layout", () => {
  const target = new BtfBuilder();
  for (const type of targetTypes()) target.add(type);
  const targetBtf = target.build();
  const resolve = (access: string, kind: number) => resolveCoreRelocation(local, relocation("socket", "bits", access, kind), targetBtf);
  // signed_middle: int bitfield of 9 bits at bit 100 → loaded from the 4-byte word at byte 12
  assert.equal(resolve("0:1", CoreRelocationKind.fieldByteOffset).targetValue, 12n);
  assert.equal(resolve("0:1", CoreRelocationKind.fieldByteSize).targetValue, 4n);
  assert.equal(resolve("0:1", CoreRelocationKind.fieldSigned).targetValue, 1n);
  assert.equal(resolve("0:1", CoreRelocationKind.fieldLeftShiftU64).targetValue, BigInt(64 - (100 + 9 - 12 * 8)));
  assert.equal(resolve("0:1", CoreRelocationKind.fieldRightShiftU64).targetValue, 64n - 9n);
  assert.equal(resolve("0:3:0", CoreRelocationKind.fieldByteOffset).targetValue, 8n);
  const low = resolveCoreRelocation(local, relocation(".text", "bits", "0:0", 0), targetBtf);
  assert.equal(low.targetValue, 16n);
});

test("a bitfield that straddles 8 bytes cannot be relocated", () => {
  const builder = new BtfBuilder();
  const long = builder.add({ kind: "int", name: "long long unsigned int", size: 8, signed: false, char: false, bool: false, bitOffset: 0, bits: 64 });
  builder.add({ kind: "struct", name: "bits", size: 16, kindFlag: true, members: [{ name: "signed_middle", type: long, bitOffset: 60, bitfieldSize: 9 }] });
  assert.throws(() => resolveCoreRelocation(local, relocation("socket", "bits", "0:1", CoreRelocationKind.fieldByteOffset), builder.build()), (error: unknown) => error instanceof CoreRelocationError && /bitfield signed_middle cannot be read with a 64-bit load/.test(error.message));
});

test("flavors: essential names, ambiguity between candidates", () => {
  assert.equal(essentialName("task_struct___flavor"), "task_struct");
  assert.equal(essentialName("task_struct___"), "task_struct___");
  assert.equal(essentialName("a____b"), "a____b");
  assert.equal(essentialName("x___y___z"), "x___y");
  const int = { kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 } as const;
  const agreeing = new BtfBuilder();
  const intId = agreeing.add(int);
  agreeing.add({ kind: "struct", name: "task_struct", size: 8, kindFlag: false, members: [{ name: "tgid", type: intId, bitOffset: 32, bitfieldSize: 0 }] });
  agreeing.add({ kind: "struct", name: "task_struct___2", size: 8, kindFlag: false, members: [{ name: "tgid", type: intId, bitOffset: 32, bitfieldSize: 0 }] });
  const record = relocation("socket", "task_struct___flavor", "0:0", 0);
  assert.equal(resolveCoreRelocation(local, record, agreeing.build()).targetValue, 4n);
  const disagreeing = new BtfBuilder();
  disagreeing.add(int);
  disagreeing.add({ kind: "struct", name: "task_struct", size: 8, kindFlag: false, members: [{ name: "tgid", type: intId, bitOffset: 32, bitfieldSize: 0 }] });
  disagreeing.add({ kind: "struct", name: "task_struct___2", size: 8, kindFlag: false, members: [{ name: "tgid", type: intId, bitOffset: 0, bitfieldSize: 0 }] });
  assert.throws(() => resolveCoreRelocation(local, record, disagreeing.build()), (error: unknown) => error instanceof CoreRelocationError && /ambiguity/.test(error.message));
  // a field of incompatible kind does not match: the relocation is poisoned
  const incompatible = new BtfBuilder();
  incompatible.add(int);
  const pointer = incompatible.add({ kind: "pointer", name: "", type: 1 });
  incompatible.add({ kind: "struct", name: "task_struct", size: 8, kindFlag: false, members: [{ name: "tgid", type: pointer, bitOffset: 0, bitfieldSize: 0 }] });
  assert.equal(resolveCoreRelocation(local, record, incompatible.build()).poison, true);
});

test("candidates in vmlinux win over module candidates, as in libbpf", () => {
  const int = { kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 } as const;
  const kernel = new BtfBuilder();
  const kernelInt = kernel.add(int);
  kernel.add({ kind: "struct", name: "task_struct", size: 8, kindFlag: false, members: [{ name: "tgid", type: kernelInt, bitOffset: 32, bitfieldSize: 0 }] });
  const vmlinux = kernel.build();
  const module = new BtfBuilder({ base: vmlinux });
  module.add({ kind: "struct", name: "task_struct", size: 8, kindFlag: false, members: [{ name: "tgid", type: kernelInt, bitOffset: 0, bitfieldSize: 0 }] });
  module.add({ kind: "struct", name: "module_only", size: 4, kindFlag: false, members: [{ name: "tgid", type: kernelInt, bitOffset: 0, bitfieldSize: 0 }] });
  const moduleBtf = module.build();
  const record = relocation("socket", "task_struct___flavor", "0:0", 0);
  const result = resolveCoreRelocation(local, record, [vmlinux, moduleBtf]);
  assert.equal(result.targetValue, 4n);
  assert.equal(result.target?.btf, vmlinux);
  // with only the module's own types it would be offset 0: the module BTF alone (which includes its base) still prefers vmlinux
  assert.equal(resolveCoreRelocation(local, record, moduleBtf).targetValue, 4n);
});

test("TYPE_MATCHES, enum64 values, and malformed records", () => {
  const builder = new BtfBuilder();
  const int = builder.add({ kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 });
  const structId = builder.add({ kind: "struct", name: "pair", size: 8, kindFlag: false, members: [{ name: "a", type: int, bitOffset: 0, bitfieldSize: 0 }, { name: "b", type: int, bitOffset: 32, bitfieldSize: 0 }] });
  const wide = builder.add({ kind: "enum64", name: "wide", size: 8, signed: false, values: [{ name: "W_ONE", value: 1n }, { name: "W_BIG", value: 0x100000000n }] });
  const localBtf = builder.build();

  const target = new BtfBuilder();
  const targetInt = target.add({ kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 });
  target.add({ kind: "struct", name: "pair", size: 12, kindFlag: false, members: [{ name: "b", type: targetInt, bitOffset: 0, bitfieldSize: 0 }, { name: "c", type: targetInt, bitOffset: 32, bitfieldSize: 0 }, { name: "a", type: targetInt, bitOffset: 64, bitfieldSize: 0 }] });
  target.add({ kind: "enum64", name: "wide___v2", size: 8, signed: false, values: [{ name: "W_BIG", value: 0x500000000n }] });
  const targetBtf = target.build();

  const matches = (btf: Btf) => resolveCoreRelocation(localBtf, { typeId: structId, accessString: "0", kind: CoreRelocationKind.typeMatches }, btf);
  assert.equal(matches(targetBtf).targetValue, 1n);
  const other = new BtfBuilder();
  const otherInt = other.add({ kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 });
  other.add({ kind: "struct", name: "pair", size: 4, kindFlag: false, members: [{ name: "a", type: otherInt, bitOffset: 0, bitfieldSize: 0 }] });
  assert.equal(matches(other.build()).targetValue, 0n, "a local member missing from the target: no match");

  const big = resolveCoreRelocation(localBtf, { typeId: wide, accessString: "1", kind: CoreRelocationKind.enumValueValue }, targetBtf);
  assert.equal(big.localValue, 0x100000000n);
  assert.equal(big.targetValue, 0x500000000n);
  const one = resolveCoreRelocation(localBtf, { typeId: wide, accessString: "0", kind: CoreRelocationKind.enumValueExists }, targetBtf);
  assert.equal(one.targetValue, 0n);

  const bad: [string, number, RegExp][] = [
    ["", 0, /empty access string/],
    ["0:x", 0, /"x" is not an index/],
    ["0:5", 0, /member index 5 is out of range/],
    ["1", CoreRelocationKind.typeSize, /type relocations need the access string "0"/],
    ["0", 99, /unknown relocation kind/],
  ];
  for (const [accessString, kind, message] of bad) {
    assert.throws(() => resolveCoreRelocation(localBtf, { typeId: structId, accessString, kind }, targetBtf), (error: unknown) => error instanceof CoreRelocationError && message.test(error.message), accessString);
  }
  assert.throws(() => resolveCoreRelocation(localBtf, { typeId: 99, accessString: "0", kind: 0 }, targetBtf), /root type does not exist/);
});

/** One encoded instruction; `registers` is the byte as encoded (src << 4 | dst); an lddw takes two slots. */
function instruction(code: number, registers: number, offset: number, immediate: number): Uint8Array {
  const [dst, src] = [registers & 0x0f, registers >> 4];
  return new Uint8Array(encode([code === 0x18 ? makeWideInstruction(dst, src, immediate) : makeInstruction(code, dst, src, offset, immediate)]));
}

function result(overrides: Partial<CoreRelocationResult>): CoreRelocationResult {
  return { poison: false, reason: undefined, localValue: 0n, targetValue: 0n, validate: true, localSize: 0, targetSize: 0, failMemorySizeAdjust: false, target: undefined, localSpec: "test", targetSpec: undefined, ...overrides };
}

test("applyCoreRelocation patches ALU, load/store and 64-bit immediates, and poisons", () => {
  const alu = instruction(0x07, 0x01, 0, 4); // r1 += 4
  applyCoreRelocation(alu, 0, result({ localValue: 4n, targetValue: 112n }));
  assert.equal(new DataView(alu.buffer).getInt32(4, true), 112);
  assert.throws(() => applyCoreRelocation(instruction(0x07, 0x01, 0, 5), 0, result({ localValue: 4n, targetValue: 8n })), /immediate 5 is not the expected 4/);

  const load = instruction(0x61, 0x21, 8, 0); // r1 = *(u32 *)(r2 + 8)
  applyCoreRelocation(load, 0, result({ localValue: 8n, targetValue: 40n, localSize: 4, targetSize: 2 }));
  assert.equal(new DataView(load.buffer).getInt16(2, true), 40);
  assert.equal(load[0], 0x69, "access size changed to u16");
  const badAdjust = instruction(0x61, 0x21, 8, 0);
  applyCoreRelocation(badAdjust, 0, result({ localValue: 8n, targetValue: 40n, localSize: 4, targetSize: 8, failMemorySizeAdjust: true }));
  assert.equal(badAdjust[0], 0x85);
  assert.throws(() => applyCoreRelocation(instruction(0x61, 0x21, 8, 0), 0, result({ localValue: 8n, targetValue: 40000n })), /does not fit in 16 bits/);

  const wide = new Uint8Array(16);
  wide.set(instruction(0x18, 0x01, 0, 7));
  applyCoreRelocation(wide, 0, result({ localValue: 7n, targetValue: 0x500000003n }));
  const view = new DataView(wide.buffer);
  assert.equal(view.getUint32(4, true), 3);
  assert.equal(view.getUint32(12, true), 5);

  const poisoned = new Uint8Array(16);
  poisoned.set(instruction(0x18, 0x01, 0, 7));
  applyCoreRelocation(poisoned, 0, result({ poison: true }));
  assert.deepEqual([poisoned[0], poisoned[8]], [0x85, 0x85]);
  assert.equal(new DataView(poisoned.buffer).getInt32(12, true), 0xbad2310);
  assert.throws(() => applyCoreRelocation(instruction(0x95, 0, 0, 0), 0, result({})), /cannot relocate instruction with opcode 0x95/);
  assert.throws(() => applyCoreRelocation(alu, 3, result({})), /outside the program/);
});
