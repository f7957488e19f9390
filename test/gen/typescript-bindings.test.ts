import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BtfBuilder } from "../../src/btf/btf-builder.js";
import type { Btf } from "../../src/btf/btf.js";
import { loadCollectionSpec, type CollectionSpec } from "../../src/elf/collection-spec.js";
import { MapType } from "../../src/sys/bpf-constants.js";
import { generateTypeScriptBindings, identifierName, pascalName } from "../../src/gen/typescript-bindings.js";
import { decodeWithLayout, readBitfield, valueLayout, writeBitfield } from "../../src/btf/value-layout.js";
import { UsageError } from "../../src/sys/errors.js";
import net from "node:net";
import { attachTracepoint } from "../../src/link/tracepoint.js";
import { RingBufferReader } from "../../src/ringbuf/ring-buffer-reader.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { fixtureDirectory as elfFixtureDirectory } from "../elf/fixtures.js";
import { genObject, libraryEntry, makeWorkspace, typeCheck } from "./fixture.js";

function kernelAvailable(t: TestContext): boolean {
  return !skipUnlessKernel(t, isRoot() && existsSync("/sys/fs/bpf"), "needs root and bpffs for bpf(2)");
}

test("names become valid TypeScript identifiers", () => {
  assert.equal(pascalName("flow_stats"), "FlowStats");
  assert.equal(pascalName(".rodata.str1"), "RodataStr1");
  assert.equal(pascalName("4tuple"), "T4tuple");
  assert.equal(identifierName(".rodata"), "rodata");
  assert.equal(identifierName(".data.my-section"), "data_my_section");
  assert.equal(identifierName("9lives"), "_9lives");
});

test("layouts follow the BTF: offsets, bitfields, unions, enums", () => {
  const spec = loadCollectionSpec(genObject);
  const btf = spec.parsedBtf!;
  const layout = valueLayout(btf, spec.maps.flows!.btfValueTypeId);
  assert.ok(layout.kind === "record", `the flows value is a record, not ${layout.kind}`);
  assert.equal(layout.size, 56);
  const byName = Object.fromEntries(layout.fields.map((f) => [f.name, f]));
  assert.equal(byName.color!.layout.kind, "enum");
  assert.equal(byName.label!.layout.kind, "string");
  assert.deepEqual(byName.level!.bitfield, { shift: 1, bits: 3, signed: false });
  assert.deepEqual(byName.signed_bits!.bitfield, { shift: 4, bits: 5, signed: true });
  const bytes = Buffer.alloc(56);
  writeBitfield(bytes, 50, 4, 5, -3);
  writeBitfield(bytes, 50, 1, 3, 6);
  assert.equal(readBitfield(bytes, 50, 4, 5, true), -3);
  assert.equal(readBitfield(bytes, 50, 1, 3, false), 6);
  bytes.write("hi", 36);
  const decoded = decodeWithLayout(layout, bytes, 0) as Record<string, unknown>;
  assert.equal(decoded.label, "hi");
  assert.equal(decoded.level, 6);
  assert.equal(decoded.signed_bits, -3);
});

test("gen refuses objects without BTF and unknown --type names", () => {
  const spec = loadCollectionSpec(genObject);
  assert.throws(() => generateTypeScriptBindings({ ...spec, parsedBtf: undefined }), (e: unknown) => e instanceof UsageError && /no BTF/.test((e as Error).message));
  assert.throws(() => generateTypeScriptBindings(spec, { types: ["no_such_event"] }),
    (e: unknown) => e instanceof UsageError && /no struct, union or typedef named "no_such_event"/.test((e as Error).message) && /flow_stats/.test((e as Error).message));
});

const usage = (bindings: string) => `
import { load, decodeStateEvent, Color, type FlowKey, type FlowStats, type StateEvent } from "./${bindings}.js";
export function use(): void {
  using objects = load({ constants: { multiplier: 7, bias: 3n }, programs: ["scale"] });
  const key: FlowKey = { addr: 1, port: 2, proto: 3, pad: 0 };
  const stats: FlowStats | undefined = objects.maps.flows.get(key);
  const packets: bigint | undefined = stats?.packets;
  const color: Color = Color.COLOR_BLUE;
  const event: StateEvent = decodeStateEvent(Buffer.alloc(48));
  const counter: bigint | undefined = objects.maps.counters.get(0);
  void objects.programs.scale.run;
  void [packets, color, event, counter];
}
`;

test("generated bindings type-check, and wrong uses do not", (t) => {
  const workspace = makeWorkspace();
  t.after(() => workspace.remove());
  const spec = loadCollectionSpec(genObject);
  const source = generateTypeScriptBindings(spec, { objectPath: "./gen.o", types: ["state_event"], importFrom: libraryEntry, sourceName: "gen.o" });
  writeFileSync(join(workspace.directory, "gen.ts"), source);
  writeFileSync(join(workspace.directory, "use.ts"), usage("gen"));
  assert.deepEqual(typeCheck([join(workspace.directory, "use.ts")]), []);

  // The types are real: mistakes are compile errors.
  writeFileSync(join(workspace.directory, "wrong.ts"), `
import { load } from "./gen.js";
const objects = load({ constants: { multiplier: 1n } });
objects.maps.flows.put({ addr: "1", port: 2, proto: 3, pad: 0 }, undefined as never);
export const n: number | undefined = objects.maps.counters.get(0);
load({ programs: ["no_such_program"] });
const p = load({ programs: ["scale"] });
p.programs.on_state;
`);
  const errors = typeCheck([join(workspace.directory, "wrong.ts")]);
  assert.equal(errors.length, 5, errors.join("\n"));
  assert.match(errors.join("\n"), /bigint.*not assignable to type 'number'/);
  assert.match(errors.join("\n"), /on_state/);
});

test("generated bindings work: typed map values, .rodata constants seen by BPF_PROG_TEST_RUN", async (t) => {
  if (!kernelAvailable(t)) return;
  const workspace = makeWorkspace();
  t.after(() => workspace.remove());
  const spec = loadCollectionSpec(genObject);
  const variants = [["by-path", false], ["embedded", true]] as const;
  for (const [name, embed] of variants) {
    writeFileSync(join(workspace.directory, `${name}.ts`), generateTypeScriptBindings(spec, {
      objectPath: "./gen.o", types: ["state_event"], importFrom: libraryEntry, sourceName: "gen.o",
      embed: embed ? readFileSync(genObject) : undefined,
    }));
  }
  // One compiler run for both variants (type-checking costs seconds).
  assert.deepEqual(typeCheck(variants.map(([name]) => join(workspace.directory, `${name}.ts`)), true), []);
  for (const [name] of variants) {
    const bindings = await import(pathToFileURL(join(workspace.directory, `${name}.js`)).href);

    const objects = bindings.load({ constants: { multiplier: 7, bias: 3n, watched_port: 8080 }, programs: ["scale"] });
    try {
      assert.deepEqual(Object.keys(objects.programs), ["scale"]);
      const key = { addr: 1, port: 2, proto: 3, pad: 0 };
      const before = {
        packets: 100n, bytes: 1000n, delta: -5n, color: bindings.Color.COLOR_BLUE,
        range: { low: 10, high: 20 }, tag: { as_int: 0xaabbccdd }, label: "web", history: [1, 2, 65535],
        urgent: 1, level: 2, signed_bits: -3,
      };
      objects.maps.flows.put(key, before);
      const result = objects.programs.scale.run({ data: Buffer.alloc(64) });
      assert.equal(result.returnValue, 10, "multiplier 7 + bias 3");
      const after = objects.maps.flows.get(key);
      assert.equal(after.packets, 107n);
      assert.equal(after.bytes, 1050n, "skb->len: 64 bytes less the 14-byte Ethernet header");
      assert.equal(after.level, 5, "the program wrote the bitfield");
      assert.deepEqual({ ...after, packets: 0n, bytes: 0n, level: 0, tag: after.tag.as_int },
        { ...before, packets: 0n, bytes: 0n, level: 0, tag: 0xaabbccdd });
      assert.deepEqual([...after.tag.as_bytes], [0xdd, 0xcc, 0xbb, 0xaa]);
      assert.equal(objects.maps.counters.get(0), 7n);
      assert.deepEqual(objects.maps.rodata.get(0), { multiplier: 7, bias: 3n, watched_port: 8080 });
      assert.deepEqual(objects.constants, { multiplier: 7, bias: 3n, watched_port: 8080 });
      assert.equal(objects.maps.bss.get(0).runs, 1n);
      const event = bindings.decodeStateEvent(Buffer.concat([Buffer.from("0100000000000000" + "2a000000" + "01000000" + "07000000" + "5000" + "9000" + "7f000001" + "7f000002", "hex"), Buffer.from("curl\0\0\0\0\0\0\0\0\0\0\0\0")]));
      assert.deepEqual({ ...event, saddr: [...event.saddr] }, { timestamp: 1n, pid: 42, old_state: 1, new_state: 7, sport: 0x50, dport: 0x90, saddr: [127, 0, 0, 1], daddr: event.daddr, comm: "curl" });
      assert.throws(() => bindings.decodeStateEvent(Buffer.alloc(10)), /48 bytes; the record has 10/);
    } finally {
      objects.close();
    }
    assert.throws(() => bindings.load({ constants: { no_such_constant: 1 } }), (e: unknown) => e instanceof UsageError && /no constant "no_such_constant"/.test((e as Error).message));
    assert.throws(() => bindings.load({ constants: { multiplier: 2 ** 40 } }), /does not fit/);
  }

  // Real events: the generated event codec decodes what the tracepoint program writes to the ring buffer.
  const bindings = await import(pathToFileURL(join(workspace.directory, "by-path.js")).href);
  const server = net.createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  using objects = bindings.load({ constants: { watched_port: port }, programs: ["on_state"] });
  using link = attachTracepoint(objects.programs.on_state, "sock", "inet_sock_set_state");
  using reader = new RingBufferReader(objects.maps.events);
  await new Promise<void>((resolve, reject) => {
    const client = net.connect(port, "127.0.0.1", () => client.end());
    client.on("error", reject);
    client.on("close", () => resolve());
  });
  const events: { old_state: number; new_state: number; sport: number; dport: number; comm: string; saddr: Buffer }[] = [];
  const deadline = Date.now() + 5000;
  while (!events.some((e) => e.new_state === 1 && e.dport === port) && Date.now() < deadline) {
    reader.readAvailable((record) => void events.push(bindings.decodeStateEvent(record)));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const established = events.find((e) => e.new_state === 1 && e.dport === port);
  assert.ok(established, `no SYN_SENT → ESTABLISHED event for port ${port}: ${JSON.stringify(events, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`);
  assert.equal(established.old_state, 2);
  assert.deepEqual([...established.saddr], [127, 0, 0, 1]);
  const connecting = events.find((e) => e.old_state === 7 && e.new_state === 2);
  assert.ok(connecting, "CLOSE → SYN_SENT, in connect()");
  assert.equal(connecting.comm, readFileSync("/proc/self/comm", "utf8").trim(), "comm: the char[16] decoded as a string");
  assert.ok(events.every((e) => e.sport === port || e.dport === port), "the watched_port constant filtered the events");
  assert.ok(link);
});

/** BTF with the shapes the fixture lacks: anonymous members, enum64, floats, pointers, big and nested arrays, a clashing name. */
function edgeCaseSpec(): { spec: CollectionSpec; btf: Btf; bitfield64: number } {
  const builder = new BtfBuilder();
  const int = (name: string, size: number, signed: boolean, extra: Partial<{ bool: boolean; char: boolean }> = {}) =>
    builder.add({ kind: "int", name, size, signed, char: extra.char ?? false, bool: extra.bool ?? false, bitOffset: 0, bits: size * 8 });
  const u16 = int("unsigned short", 2, false);
  const u32 = int("unsigned int", 4, false);
  const u64 = int("unsigned long long", 8, false);
  const bool = int("_Bool", 1, false, { bool: true });
  const float = builder.add({ kind: "float", name: "float", size: 4 });
  const double = builder.add({ kind: "float", name: "double", size: 8 });
  const pointer = builder.add({ kind: "pointer", name: "", type: u32 });
  const big = builder.add({ kind: "enum64", name: "big_values", size: 8, signed: false, values: [{ name: "BIG_ONE", value: 1n << 40n }] });
  const list = builder.add({ kind: "array", name: "", type: u32, indexType: u32, length: 20 });
  const row = builder.add({ kind: "array", name: "", type: u16, indexType: u32, length: 3 });
  const grid = builder.add({ kind: "array", name: "", type: row, indexType: u32, length: 2 });
  const pair = builder.add({ kind: "struct", name: "", size: 8, kindFlag: false, members: [
    { name: "a", type: u32, bitOffset: 0, bitfieldSize: 0 }, { name: "b", type: u32, bitOffset: 32, bitfieldSize: 0 }] });
  const either = builder.add({ kind: "union", name: "", size: 4, kindFlag: false, members: [
    { name: "x", type: u32, bitOffset: 0, bitfieldSize: 0 }, { name: "y", type: float, bitOffset: 0, bitfieldSize: 0 }] });
  const value = builder.add({ kind: "struct", name: "Maps", size: 136, kindFlag: false, members: [
    { name: "", type: pair, bitOffset: 0, bitfieldSize: 0 },
    { name: "", type: either, bitOffset: 64, bitfieldSize: 0 },
    { name: "flag", type: bool, bitOffset: 96, bitfieldSize: 0 },
    { name: "p", type: pointer, bitOffset: 128, bitfieldSize: 0 },
    { name: "e", type: big, bitOffset: 192, bitfieldSize: 0 },
    { name: "list", type: list, bitOffset: 256, bitfieldSize: 0 },
    { name: "grid", type: grid, bitOffset: 896, bitfieldSize: 0 },
    { name: "d", type: double, bitOffset: 1024, bitfieldSize: 0 },
  ] });
  const bitfield64 = builder.add({ kind: "struct", name: "wide", size: 8, kindFlag: true, members: [{ name: "huge", type: u64, bitOffset: 0, bitfieldSize: 40 }] });
  const btf = builder.build();
  const map = {
    name: "things", section: ".maps", type: MapType.Hash, keySize: 4, valueSize: 136, maxEntries: 1, flags: 0, numaNode: undefined,
    mapExtra: undefined, pinning: "none" as const, innerMap: undefined, initialSlots: [], btfKeyTypeId: u32, btfValueTypeId: value, data: undefined,
  };
  const spec: CollectionSpec = { programs: {}, maps: { things: map }, dataSections: {}, license: "GPL", kernelVersion: undefined, btf: undefined, parsedBtf: btf, btfExt: undefined, parsedBtfExt: undefined };
  return { spec, btf, bitfield64 };
}

test("edge-case BTF: generated codecs type-check and round-trip", async (t) => {
  const { spec, btf, bitfield64 } = edgeCaseSpec();
  assert.throws(() => valueLayout(btf, bitfield64), (e: unknown) => e instanceof UsageError && /wide.*huge is 40 bits wide/.test((e as Error).message));
  const workspace = makeWorkspace();
  t.after(() => workspace.remove());
  const file = join(workspace.directory, "edge.ts");
  const source = generateTypeScriptBindings(spec, { importFrom: libraryEntry });
  writeFileSync(file, source);
  assert.match(source, /export interface Maps2 \{/, "a struct named like a generated interface gets a number");
  assert.match(source, /list: number\[\];/, "arrays longer than 16 are plain arrays");
  assert.match(source, /grid: \[\[number, number, number\], \[number, number, number\]\];/);
  assert.match(source, /x\?: number;\n  y\?: number;/, "anonymous union members are flattened and optional");
  assert.match(source, /export type ProgramName = never;/);
  // A module with nothing typed (one ring buffer, no programs) must compile under the strict flags too.
  const ringOnly = join(workspace.directory, "ring-only.ts");
  const ring = { ...spec.maps.things!, name: "events", type: MapType.Ringbuf, keySize: 0, valueSize: 0, maxEntries: 4096, btfKeyTypeId: 0, btfValueTypeId: 0 };
  writeFileSync(ringOnly, generateTypeScriptBindings({ ...spec, maps: { events: ring } }, { importFrom: libraryEntry, embed: Buffer.alloc(1) }));
  assert.deepEqual(typeCheck([file, ringOnly], true), []);
  const bindings = await import(pathToFileURL(join(workspace.directory, "edge.js")).href);
  const codec = bindings.maps2Codec;
  assert.equal(codec.size, 136);
  const value = { a: 1, b: 2, y: 1.5, flag: true, p: 0xffff_0000_1234n, e: bindings.BigValues.BIG_ONE, list: Array.from({ length: 20 }, (_, i) => i * 3), grid: [[1, 2, 3], [4, 5, 6]], d: -2.25 };
  const buffer = Buffer.alloc(140, 0xee);
  codec.encode(value, buffer, 2);
  assert.equal(buffer[0], 0xee, "nothing written before the offset");
  assert.equal(buffer[138], 0xee, "nothing written after the value");
  assert.equal(buffer.readFloatLE(2 + 8), 1.5, "the union member that was set");
  const decoded = codec.decode(buffer, 2);
  assert.deepEqual({ ...decoded, x: undefined }, { ...value, x: undefined });
  assert.equal(decoded.x, buffer.readUInt32LE(10), "every union member is decoded");
  assert.equal(decoded.e, 1n << 40n);
  assert.throws(() => codec.encode({ ...value, list: [1, 2] }, buffer, 0), /expected 20 elements, got 2/);
});

test("bindings for every clang fixture of the elf loader type-check", (t) => {
  const workspace = makeWorkspace();
  t.after(() => workspace.remove());
  const objects = readdirSync(elfFixtureDirectory).filter((name) => name.endsWith(".o"));
  assert.ok(objects.length >= 3);
  const files = objects.map((name) => {
    const file = join(workspace.directory, name.replace(/\.o$/, ".ts"));
    writeFileSync(file, generateTypeScriptBindings(loadCollectionSpec(join(elfFixtureDirectory, name)), { objectPath: `./${name}`, importFrom: libraryEntry }));
    return file;
  });
  assert.deepEqual(typeCheck(files), []);
});

test("bindings and bitfield helpers refuse wrong arguments with a UsageError naming them", () => {
  const untyped = (f: Function, ...args: unknown[]): unknown => f(...args);
  const cases: [() => unknown, RegExp][] = [
    [() => untyped(generateTypeScriptBindings, undefined), /spec must be an object, got undefined/],
    [() => untyped(generateTypeScriptBindings, { parsedBtf: 42, programs: {} }), /spec must be a CollectionSpec \(from loadCollectionSpec\)/],
    [() => untyped(pascalName, 42), /name must be a string, got 42/],
    [() => untyped(identifierName, null), /name must be a string, got null/],
    [() => untyped(readBitfield, Buffer.alloc(4), 0, 8, 4, false), /shift must be an integer from 0 to 7, got 8/],
    [() => untyped(readBitfield, Buffer.alloc(4), 0, 0, 33, false), /bits must be an integer from 1 to 32, got 33/],
    [() => untyped(readBitfield, Buffer.alloc(4), 3, 4, 8, false), /offset must be an integer from 0 to 2, got 3/],
    [() => untyped(writeBitfield, Buffer.alloc(4), 0, 0, 4, "1"), /value must be a number, got "1"/],
    [() => untyped(decodeWithLayout, { kind: "integer", size: 4, signed: false }, Buffer.alloc(4), 1), /offset must be an integer from 0 to 0, got 1/],
    [() => untyped(decodeWithLayout, {}, Buffer.alloc(4), 0), /layout must be a ValueLayout \(from valueLayout\)/],
  ];
  for (const [call, pattern] of cases) assert.throws(call, (error: unknown) => error instanceof UsageError && pattern.test(error.message), pattern.source);
  const bytes = Buffer.alloc(2);
  writeBitfield(bytes, 0, 6, 4, 9);
  assert.equal(readBitfield(bytes, 0, 6, 4, false), 9);
  assert.equal(decodeWithLayout({ kind: "integer", size: 2, signed: false }, bytes, 0), bytes.readUInt16LE(0));
});
