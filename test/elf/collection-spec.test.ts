import assert from "node:assert/strict";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { loadCollectionSpec, type CollectionProgramSpec } from "../../src/elf/collection-spec.js";
import { ElfFormatError } from "../../src/elf/elf-format-error.js";
import { AttachType, MapFlag, MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { UsageError } from "../../src/sys/errors.js";
import { fixturePath, readFixture } from "./fixtures.js";

const spec = loadCollectionSpec(fixturePath("collection.o"));

/** Slots of every bpf-to-bpf call and the slot it lands on. */
function calls(program: CollectionProgramSpec): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  const code = program.instructions;
  for (let slot = 0; slot < code.length / 8; slot++) {
    const opcode = code[slot * 8]!;
    if (opcode === 0x85 && code[slot * 8 + 1]! >> 4 === 1) out.push({ from: slot, to: slot + code.readInt32LE(slot * 8 + 4) + 1 });
    if (opcode === 0x18) slot++;
  }
  return out;
}

test("finds every program, several per section, with the types their sections imply", () => {
  const summary = Object.values(spec.programs).map((p) => [p.name, p.section, p.type, p.expectedAttachType]).sort();
  assert.deepEqual(summary, [
    ["on_state", "tracepoint/sock/inet_sock_set_state", ProgramType.Tracepoint, undefined],
    ["socket_first", "socket", ProgramType.SocketFilter, undefined],
    ["socket_second", "socket", ProgramType.SocketFilter, undefined],
    ["tail_target", "tc", ProgramType.SchedCls, undefined],
    ["tc_entry", "tc", ProgramType.SchedCls, undefined],
    ["xdp_pass", "xdp", ProgramType.Xdp, AttachType.Xdp],
  ].sort());
  assert.deepEqual(spec.programs.on_state!.attachTarget, { kind: "tracepoint", category: "sock", name: "inet_sock_set_state" });
  assert.equal(spec.license, "GPL");
  assert.equal(spec.programs.xdp_pass!.license, "GPL");
  assert.equal(spec.kernelVersion, undefined);
});

test("appends called subprograms to each program and fixes call offsets", () => {
  const second = spec.programs.socket_second!;
  assert.deepEqual(second.functions.map((f) => f.name), ["socket_second", "scale", "global_helper"]);
  const starts = new Map(second.functions.map((f) => [f.slot, f.name]));
  const targets = calls(second).map((call) => starts.get(call.to));
  assert.deepEqual(targets.sort(), ["global_helper", "scale"]);
  // The callee bodies follow the program: the total is the sum of the three functions.
  assert.ok(second.functions[1]!.slot < second.functions[2]!.slot && second.functions[2]!.slot < second.instructions.length / 8);
  assert.deepEqual(spec.programs.socket_first!.functions.map((f) => f.name), ["socket_first", "scale"]);
  assert.deepEqual(spec.programs.xdp_pass!.functions.map((f) => f.name), ["xdp_pass", "global_helper"]);
  assert.deepEqual(spec.programs.tc_entry!.functions.map((f) => f.name), ["tc_entry"]);
  for (const program of Object.values(spec.programs)) {
    for (const call of calls(program)) assert.ok(program.functions.some((f) => f.slot === call.to), `${program.name}: call at ${call.from} lands on ${call.to}`);
  }
});

test("records map and global-data references on lddw instructions", () => {
  const first = spec.programs.socket_first!;
  const byMap = (name: string) => first.mapReferences.filter((r) => r.map === name);
  assert.equal(byMap("results").length, 3);
  assert.ok(byMap("results").every((r) => r.kind === "map" && first.instructions[r.slot * 8] === 0x18 && first.instructions[r.slot * 8 + 1]! >> 4 === 1));
  assert.deepEqual(byMap(".data").map((r) => [r.kind, r.offset]), [["value", 0]]);
  assert.deepEqual(byMap(".rodata").map((r) => r.offset).sort(), [0, 8]);
  for (const reference of first.mapReferences.filter((r) => r.kind === "value")) {
    assert.equal(first.instructions[reference.slot * 8 + 1]! >> 4, 2);
    assert.equal(first.instructions.readInt32LE(reference.slot * 8 + 12), reference.offset);
  }
  assert.deepEqual(spec.programs.socket_second!.mapReferences.filter((r) => r.map === ".rodata.custom").length, 1);
});

test("reads BTF-defined maps: __uint, __type, __array, pinning and initial values", () => {
  const results = spec.maps.results!;
  assert.deepEqual([results.type, results.keySize, results.valueSize, results.maxEntries, results.pinning], [MapType.Array, 4, 8, 8, "none"]);
  assert.ok(results.btfKeyTypeId > 0 && results.btfValueTypeId > 0);
  const pinned = spec.maps.elf_pinned_counts!;
  assert.deepEqual([pinned.type, pinned.keySize, pinned.valueSize, pinned.maxEntries, pinned.pinning], [MapType.Hash, 4, 8, 64, "byName"]);
  const outer = spec.maps.outer!;
  assert.equal(outer.type, MapType.ArrayOfMaps);
  assert.deepEqual([outer.innerMap?.type, outer.innerMap?.keySize, outer.innerMap?.valueSize, outer.innerMap?.maxEntries], [MapType.Array, 4, 4, 4]);
  assert.deepEqual(outer.initialSlots, [{ index: 1, kind: "map", name: "inner_b" }]);
  const jumps = spec.maps.jump_table!;
  assert.deepEqual([jumps.type, jumps.keySize, jumps.valueSize, jumps.maxEntries], [MapType.ProgArray, 4, 4, 4]);
  assert.deepEqual(jumps.initialSlots, [{ index: 2, kind: "program", name: "tail_target" }]);
});

test("turns global data sections into array maps with named variables", () => {
  const rodata = spec.maps[".rodata"]!;
  assert.deepEqual([rodata.type, rodata.keySize, rodata.valueSize, rodata.maxEntries, rodata.flags], [MapType.Array, 4, 16, 1, MapFlag.Mmapable | MapFlag.ReadOnlyProgram]);
  assert.equal(spec.dataSections[".rodata"], rodata.data);
  assert.deepEqual(Object.values(rodata.data!.variables).map((v) => [v.name, v.offset, v.size]).sort(), [["multiplier", 0, 4], ["offset_value", 8, 8]]);
  assert.equal(rodata.data!.get("multiplier").readUInt32LE(0), 3);
  assert.equal(rodata.data!.get("offset_value").readBigUInt64LE(0), 1000n);
  assert.equal(spec.maps[".data"]!.data!.get("data_counter").readBigUInt64LE(0), 5n);
  assert.equal(spec.maps[".bss"]!.data!.get("bss_counter").readBigUInt64LE(0), 0n);
  assert.equal(spec.maps[".rodata.custom"]!.data!.get("custom_value").readUInt32LE(0), 7);
  assert.equal(spec.maps[".data.custom"]!.data!.get("custom_data").readUInt32LE(0), 11);
  assert.equal(spec.maps[".data"]!.data!.readOnly, false);
  assert.equal(spec.maps[".data"]!.flags, MapFlag.Mmapable);
});

test("data section variables can be set before load, with checks", () => {
  const local = loadCollectionSpec(readFixture("collection.o"));
  const rodata = local.dataSections[".rodata"]!;
  rodata.set("multiplier", 0xfffffffe);
  assert.equal(rodata.contents.readUInt32LE(0), 0xfffffffe);
  rodata.set("offset_value", -1n);
  assert.equal(rodata.contents.readBigUInt64LE(8), 0xffffffffffffffffn);
  rodata.set("multiplier", Buffer.from([1, 0, 0, 0]));
  assert.equal(rodata.get("multiplier").readUInt32LE(0), 1);
  assert.throws(() => rodata.set("nope", 1), (e: unknown) => e instanceof UsageError && /name must be .*multiplier.*got "nope"/.test(e.message));
  assert.throws(() => rodata.set("multiplier", 2 ** 32), (e: unknown) => e instanceof UsageError && /does not fit/.test(e.message));
  assert.throws(() => rodata.set("multiplier", Buffer.alloc(8)), (e: unknown) => e instanceof UsageError && /4 bytes, got 8/.test(e.message));
  // The shared spec is untouched: each load reads fresh contents.
  assert.equal(spec.dataSections[".rodata"]!.get("multiplier").readUInt32LE(0), 3);
});

test("fills in DATASEC sizes and variable offsets in the BTF it hands to the kernel", () => {
  const btf = Btf.parse(spec.btf!);
  const rodata = btf.typeOfKind(btf.findType(".rodata", "dataSection"), "dataSection");
  assert.equal(rodata.size, 16);
  assert.deepEqual(rodata.variables.map((v) => [btf.nameOf(v.type), v.offset, v.size]), [["multiplier", 0, 4], ["offset_value", 8, 8]]);
  const maps = btf.typeOfKind(btf.findType(".maps", "dataSection"), "dataSection");
  const offsets = maps.variables.map((v) => v.offset);
  assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));
  assert.equal(new Set(offsets).size, offsets.length);
});

test("carries func_info and line_info renumbered for linked subprograms", () => {
  const second = spec.programs.socket_second!;
  assert.deepEqual(second.functionInfo.map((f) => f.slot), second.functions.map((f) => f.slot));
  const btf = spec.parsedBtf!;
  assert.deepEqual(second.functionInfo.map((f) => btf.nameOf(f.typeId)), ["socket_second", "scale", "global_helper"]);
  assert.ok(second.lineInfo.length > 3);
  assert.equal(second.lineInfo[0]!.slot, 0);
  assert.ok(second.lineInfo.some((l) => /custom_value/.test(l.line)), "global_helper's source line is present");
});

test("reads legacy maps and the version section", () => {
  const legacy = loadCollectionSpec(fixturePath("legacy.o"));
  assert.deepEqual(Object.keys(legacy.programs), ["legacy_count"]);
  assert.equal(legacy.programs.legacy_count!.type, ProgramType.SocketFilter);
  const counts = legacy.maps.legacy_counts!;
  assert.deepEqual([counts.section, counts.type, counts.keySize, counts.valueSize, counts.maxEntries], ["maps", MapType.Array, 4, 8, 4]);
  const hash = legacy.maps.legacy_hash!;
  assert.deepEqual([hash.type, hash.keySize, hash.valueSize, hash.maxEntries], [MapType.Hash, 4, 4, 16]);
  assert.equal(legacy.license, "Dual MIT/GPL");
  assert.equal(legacy.kernelVersion, 0x060000);
});

test("a missing file is a UsageError; a non-ELF is an ElfFormatError", () => {
  assert.throws(() => loadCollectionSpec("/nonexistent/netbpf-elf.o"), (e: unknown) => e instanceof UsageError && /cannot read/.test(e.message));
  assert.throws(() => loadCollectionSpec(Buffer.from("hello")), ElfFormatError);
});

test("a data section and its layout check what they are given", async () => {
  const { DataSection, dataSectionLayout } = await import("../../src/elf/data-section.js");
  const section = new DataSection(".data", Buffer.alloc(8), [{ name: "limit", offset: 0, size: 4, typeId: undefined }], false);
  assert.deepEqual(dataSectionLayout(undefined, section, 8).fields.map((field) => field.name), ["limit"]);
  assert.throws(() => new DataSection(".data", Buffer.alloc(8), [{ name: "limit", offset: -4, size: 4, typeId: undefined }], false), /variables\[0\]\.offset must be an integer ≥ 0, got -4/);
  assert.throws(() => new DataSection(".data", Buffer.alloc(8), [], "yes" as never), /readOnly must be a boolean/);
  assert.throws(() => dataSectionLayout(undefined, { variables: {} } as never, 8), /section must be a DataSection/);
  assert.throws(() => dataSectionLayout(undefined, section, -1), /size must be an integer ≥ 0, got -1/);
  assert.throws(() => dataSectionLayout({} as never, section, 8), /btf must be a Btf/);
  assert.throws(() => loadCollectionSpec(42 as never), (error: Error) => error instanceof UsageError && /source must be a file path or the object's bytes, got 42/.test(error.message));
});
