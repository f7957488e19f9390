import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { test, type TestContext } from "node:test";
import { Collection } from "../../src/core/collection.js";
import { BpfMap } from "../../src/core/map.js";
import { loadCollectionSpec } from "../../src/elf/collection-spec.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { NetbpfError, SyscallError, UsageError, VerifierError } from "../../src/sys/errors.js";
import { fixturePath } from "../elf/fixtures.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

/** An Ethernet + IPv4 + UDP frame of `size` bytes. */
function frame(size: number): Buffer {
  const packet = Buffer.alloc(size);
  packet.writeUInt16BE(0x0800, 12);
  packet[14] = 0x45;
  packet.writeUInt16BE(size - 14, 16);
  packet[22] = 64;
  packet[23] = 17;
  packet.writeUInt32BE(0x7f000001, 26);
  packet.writeUInt32BE(0x7f000001, 30);
  return packet;
}

function key(index: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(index);
  return buffer;
}

function result(collection: Collection, index: number): bigint {
  const value = collection.maps.results!.get(key(index));
  assert.ok(value, `results[${index}] exists`);
  return value.readBigUInt64LE(0);
}

function withPinFolder(t: TestContext): string {
  const folder = `/sys/fs/bpf/nb-elf-${randomBytes(4).toString("hex")}`;
  t.after(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

function kernelAvailable(t: TestContext): boolean {
  return !skipUnlessKernel(t, isRoot() && existsSync("/sys/fs/bpf"), "needs root and bpffs for bpf(2)");
}

test("loads the fixture and runs its programs: global data, subprograms, rodata set before load", (t) => {
  if (!kernelAvailable(t)) return;
  const spec = loadCollectionSpec(fixturePath("collection.o"));
  spec.dataSections[".rodata"]!.set("multiplier", 5);
  spec.dataSections[".rodata"]!.set("offset_value", 20000n);
  spec.dataSections[".data"]!.set("data_counter", 40n);
  using collection = Collection.load(spec, { pinPath: withPinFolder(t) });
  assert.equal(collection.report.btfLoaded, true, collection.report.btfProblem);
  assert.deepEqual(Object.keys(collection.programs).sort(), ["on_state", "socket_first", "socket_second", "tail_target", "tc_entry", "xdp_pass"]);
  assert.equal(collection.programs.on_state!.type, ProgramType.Tracepoint);
  const resultsInfo = collection.maps.results!.info();
  assert.ok(resultsInfo.btfId > 0 && resultsInfo.btfValueTypeId === spec.maps.results!.btfValueTypeId, "maps carry BTF key/value types");
  assert.ok(collection.maps[".rodata"]!.info().btfId > 0, "data maps carry their DATASEC type");
  assert.ok(collection.programs.socket_second!.info().btfId > 0, "programs are loaded with BTF func_info");

  const packet = frame(80);
  // socket_second returns skb->len, which is what socket_first scales.
  const length = collection.programs.socket_second!.run({ data: packet }).returnValue;
  assert.ok(length > 0 && length <= 80, `skb length ${length}`);
  assert.equal(result(collection, 1), 2n * 5n + 20000n + 1n + 7n, "scale(2) + global_helper(1)");
  assert.equal(result(collection, 4), 11n, ".data.custom");

  collection.programs.socket_first!.run({ data: packet });
  assert.equal(result(collection, 0), BigInt(length) * 5n + 20000n);
  assert.equal(result(collection, 2), 41n, ".data written before load, incremented by the program");
  assert.equal(result(collection, 3), 1n, ".bss starts at zero");
  collection.programs.socket_first!.run({ data: packet });
  assert.equal(result(collection, 2), 42n);
  assert.equal(result(collection, 3), 2n);
  assert.equal(collection.maps[".data"]!.get(key(0))!.readBigUInt64LE(0), 42n, "the .data map shows the program's writes");
  assert.equal(collection.maps[".rodata"]!.get(key(0))!.readUInt32LE(0), 5);
  assert.throws(() => collection.maps[".rodata"]!.put(key(0), Buffer.alloc(16)), (e: unknown) => e instanceof SyscallError && e.code === "EPERM", ".rodata is frozen");

  const xdp = collection.programs.xdp_pass!.run({ data: frame(100) });
  assert.equal(xdp.returnValue, 2, "XDP_PASS");
  assert.equal(result(collection, 6), 100n + 7n);
});

test("prog array and map-of-maps initial values are filled in", (t) => {
  if (!kernelAvailable(t)) return;
  using collection = Collection.load(loadCollectionSpec(fixturePath("collection.o")), { pinPath: withPinFolder(t) });
  const run = collection.programs.tc_entry!.run({ data: frame(64) });
  assert.equal(run.returnValue, 7, "tc_entry tail-called tail_target through jump_table[2]");
  assert.equal(result(collection, 5), 42n);
  const innerId = collection.maps.outer!.get(key(1));
  assert.ok(innerId, "outer[1] holds inner_b");
  assert.equal(collection.maps.outer!.get(key(0)), undefined, "outer[0] is empty");
  assert.equal(innerId.readUInt32LE(0), collection.maps.inner_b!.id);
  assert.equal(collection.maps.inner_b!.get(key(0))!.readUInt32LE(0), 99, "tc_entry wrote through the inner map");
  assert.equal(collection.maps.inner_a!.get(key(0))!.readUInt32LE(0), 0);
});

test("maps pinned by name are reused by the next load and survive it", (t) => {
  if (!kernelAvailable(t)) return;
  const pinPath = withPinFolder(t);
  const spec = loadCollectionSpec(fixturePath("collection.o"));
  {
    using first = Collection.load(spec, { pinPath });
    assert.deepEqual(Object.keys(first.report.createdPins), ["elf_pinned_counts"]);
    first.programs.socket_second!.run({ data: frame(64) });
    assert.equal(first.maps.elf_pinned_counts!.get(key(7))!.readBigUInt64LE(0), 1n);
  }
  assert.ok(existsSync(`${pinPath}/elf_pinned_counts`));
  assert.equal(statSync(pinPath).mode & 0o777, 0o700, "the pin folder it created is private");
  using second = Collection.load(spec, { pinPath });
  assert.deepEqual(second.report.reusedPins, { elf_pinned_counts: `${pinPath}/elf_pinned_counts` });
  assert.deepEqual(second.report.createdPins, {});
  second.programs.socket_second!.run({ data: frame(64) });
  assert.equal(second.maps.elf_pinned_counts!.get(key(7))!.readBigUInt64LE(0), 2n, "the count continued in the pinned map");
});

test("an incompatible pinned map is refused with a clear error and nothing is left behind", (t) => {
  if (!kernelAvailable(t)) return;
  const pinPath = withPinFolder(t);
  mkdirSync(pinPath, { recursive: true });
  // Pin a map of the wrong value size where the object's map would go.
  {
    using wrong = BpfMap.create({ name: "elf_pinned_counts", type: MapType.Hash, keySize: 4, valueSize: 4, maxEntries: 64 });
    wrong.pin(`${pinPath}/elf_pinned_counts`);
  }
  const spec = loadCollectionSpec(fixturePath("collection.o"));
  assert.throws(() => Collection.load(spec, { pinPath }), (e: unknown) =>
    e instanceof NetbpfError && /elf_pinned_counts" is pinned at .* value size 4 \(the object wants 8\)/.test(e.message) && /rm /.test(e.message));
  assert.ok(existsSync(`${pinPath}/elf_pinned_counts`), "the user's pin is left alone");
});

test("loads legacy maps and static data reached through section symbols, and runs the program", (t) => {
  if (!kernelAvailable(t)) return;
  const spec = loadCollectionSpec(fixturePath("legacy.o"));
  const weights = Buffer.alloc(16);
  [5, 6, 7, 8].forEach((weight, i) => weights.writeUInt32LE(weight, i * 4));
  spec.dataSections[".rodata"]!.set("weights", weights);
  using collection = Collection.load(spec);
  const length = 90;
  collection.programs.legacy_count!.run({ data: frame(length) });
  collection.programs.legacy_count!.run({ data: frame(length) });
  const total = collection.maps.legacy_counts!.get(key(1))!.readBigUInt64LE(0);
  const keys = [...collection.maps.legacy_hash!.keys()].map((k) => k.readUInt32LE(0));
  assert.equal(keys.length, 1);
  const skbLength = keys[0]!;
  assert.equal(total, BigInt(skbLength * 2), "the counter added skb->len twice");
  const weighted = collection.maps.legacy_counts!.get(key(2))!.readBigUInt64LE(0);
  assert.equal(weighted, BigInt([5, 6, 7, 8][skbLength & 3]! + 2 * 1000), "static .rodata table and static .bss counter");
});

test("loads without BTF when asked to", (t) => {
  if (!kernelAvailable(t)) return;
  using collection = Collection.load(loadCollectionSpec(fixturePath("collection.o")), { btf: false, pinPath: withPinFolder(t), programs: ["socket_first"], logLevel: 1 });
  assert.equal(collection.report.btfLoaded, false);
  assert.deepEqual(Object.keys(collection.programs), ["socket_first"]);
  assert.match(collection.programs.socket_first!.verifierLog, /processed \d+ insns/, "logLevel reaches the verifier");
  collection.programs.socket_first!.run({ data: frame(64) });
  assert.equal(result(collection, 3), 1n);
});

test("load errors name the program, keep the verifier log, and close what was created", (t) => {
  if (!kernelAvailable(t)) return;
  const spec = loadCollectionSpec(fixturePath("collection.o"));
  const program = spec.programs.socket_first!;
  // Drop the final exit: the verifier rejects falling off the end.
  program.instructions = program.instructions.subarray(0, program.functions[1]!.slot * 8 - 8);
  program.functions = [program.functions[0]!];
  program.functionInfo = program.functionInfo.slice(0, 1);
  program.lineInfo = [];
  program.mapReferences = program.mapReferences.filter((r) => r.slot * 8 < program.instructions.length);
  const pinPath = withPinFolder(t);
  const openDescriptors = () => readdirSync("/proc/self/fd").length;
  const before = openDescriptors();
  assert.throws(() => Collection.load(spec, { pinPath, programs: ["socket_first"] }), (e: unknown) =>
    e instanceof VerifierError && /program "socket_first"/.test(e.message) && e.log.length > 0);
  assert.equal(openDescriptors(), before, "every map and the BTF object were closed");
  assert.equal(existsSync(`${pinPath}/elf_pinned_counts`), false, "the pin made by the failed load was removed");
  assert.throws(() => Collection.load(spec, { programs: ["missing"], pinPath }), (e: unknown) => e instanceof UsageError && /no program "missing"/.test(e.message));
});

test("CO-RE relocations are resolved against the kernel's BTF", (t) => {
  if (!kernelAvailable(t)) return;
  if (skipUnlessKernel(t, existsSync("/sys/kernel/btf/vmlinux"), "needs kernel BTF at /sys/kernel/btf/vmlinux")) return;
  const spec = loadCollectionSpec(fixturePath("core.o"));
  const program = spec.programs.read_task!;
  assert.equal(program.type, ProgramType.RawTracepoint);
  assert.ok(program.coreRelocations.length >= 4, `${program.coreRelocations.length} CO-RE relocations`);
  using collection = Collection.load(spec);
  // A raw tracepoint test run executes in this thread: current is this process.
  // Raw tracepoint test runs refuse repeat counts and output buffers.
  collection.programs.read_task!.run({ context: Buffer.alloc(16), contextOutSize: 0, repeat: 0 });
  const value = (index: number) => collection.maps.core_results!.get(key(index))!.readBigUInt64LE(0);
  assert.equal(value(0), BigInt(process.pid), "task->tgid at the kernel's offset");
  assert.ok(value(1) >= BigInt(process.pid), "task->pid is this thread's id");
  assert.equal(value(2), 0n, "a field the kernel lacks does not exist");
  assert.equal(value(3), 1n, "tgid exists");
});

test("the kernel accepts the program and attach types implied by common section names", (t) => {
  if (!kernelAvailable(t)) return;
  const spec = loadCollectionSpec(fixturePath("sections.o"));
  assert.equal(Object.keys(spec.programs).length, 26);
  using collection = Collection.load(spec);
  for (const [name, program] of Object.entries(collection.programs)) {
    assert.equal(program.info().type, spec.programs[name]!.type, `${name} (${spec.programs[name]!.section})`);
  }
});

test("callbacks passed by address and subprograms calling subprograms", (t) => {
  if (!kernelAvailable(t)) return;
  const spec = loadCollectionSpec(fixturePath("callbacks.o"));
  const program = spec.programs.loop_sum!;
  assert.deepEqual(program.functions.map((f) => f.name).sort(), ["add_index", "loop_sum", "square", "sum_of_squares"]);
  const callback = program.functions.find((f) => f.name === "add_index")!;
  // The callback's lddw became BPF_PSEUDO_FUNC pointing at add_index.
  let found = false;
  for (let slot = 0; slot < program.instructions.length / 8; slot++) {
    if (program.instructions[slot * 8] === 0x18 && program.instructions[slot * 8 + 1]! >> 4 === 4) {
      assert.equal(slot + program.instructions.readInt32LE(slot * 8 + 4) + 1, callback.slot);
      found = true;
    }
  }
  assert.ok(found, "a BPF_PSEUDO_FUNC load");
  using collection = Collection.load(spec);
  const length = collection.programs.loop_sum!.run({ data: frame(77) }).returnValue;
  const value = (index: number) => collection.maps.callback_results!.get(key(index))!.readBigUInt64LE(0);
  assert.equal(value(0), 45n, "bpf_loop called add_index for 0..9");
  assert.equal(value(1), BigInt((length & 7) ** 2 + 16), "sum_of_squares called square twice");
});

test("a loaded socket filter sees real loopback traffic", async (t) => {
  if (!kernelAvailable(t)) return;
  const { attachSocketFilter } = await import("../../src/link/socket-filter.js");
  const dgram = await import("node:dgram");
  using collection = Collection.load(loadCollectionSpec(fixturePath("collection.o")), { pinPath: withPinFolder(t) });
  const receiver = dgram.createSocket("udp4");
  const sender = dgram.createSocket("udp4");
  try {
    await new Promise<void>((resolve) => receiver.bind(0, "127.0.0.1", resolve));
    using link = attachSocketFilter(collection.programs.socket_second!, receiver);
    const received: Buffer[] = [];
    const allArrived = new Promise<void>((resolve) => receiver.on("message", (message) => {
      received.push(message);
      if (received.length === 5) resolve();
    }));
    for (let i = 0; i < 5; i++) sender.send(Buffer.from(`packet ${i}`), receiver.address().port, "127.0.0.1");
    await Promise.race([allArrived, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${received.length} of 5 datagrams arrived`)), 5000))]);
    assert.equal(collection.maps.elf_pinned_counts!.get(key(7))!.readBigUInt64LE(0), 5n, "the filter ran once per datagram");
    assert.equal(result(collection, 4), 11n);
  } finally {
    receiver.close();
    sender.close();
  }
});

test("Collection.load checks its spec and options before loading anything", () => {
  const spec = loadCollectionSpec(fixturePath("collection.o"));
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  assert.throws(() => Collection.load({ maps: {} } as never), refused(/spec\.programs must be an object, got undefined/));
  assert.throws(() => Collection.load(spec, { btf: "yes" as never }), refused(/options\.btf must be true, false or "auto", got "yes"/));
  assert.throws(() => Collection.load(spec, { programs: "main" as never }), refused(/options\.programs must be an array/));
  assert.throws(() => Collection.load(spec, { programs: [1] as never }), refused(/options\.programs must be an array of program names/));
  assert.throws(() => Collection.load(spec, { replaceMaps: { counts: 3 as never } }), refused(/options\.replaceMaps\.counts must be a BpfMap, got 3/));
  assert.throws(() => Collection.load(spec, { pinPath: 7 as never }), refused(/options\.pinPath must be a string/));
  assert.throws(() => BpfMap.fromFd("3" as never), refused(/open map: fd must be an integer ≥ 0, got "3"/));
});
