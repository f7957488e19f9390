import { test } from "node:test";
import assert from "node:assert/strict";
import { BpfMap } from "../../src/core/map.js";
import { Program } from "../../src/core/program.js";
import { MapType, ProgramType, UpdateFlag } from "../../src/sys/bpf-constants.js";
import { possibleCpuCount } from "../../src/sys/cpus.js";
import { NetbpfError, UsageError } from "../../src/sys/errors.js";
import { lpmKey, struct, u16, u32, u64, ipv4, cString } from "../../src/core/codec.js";
import { bpffsFolder } from "../support/bpffs.js";
import { skipUnlessRoot } from "../support/kernel.js";

const returnZero = Buffer.from("b700000000000000" + "9500000000000000", "hex");

test("hash map: put, get, has, delete, iterate with codecs", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  using map = BpfMap.create({ type: MapType.Hash, name: "t_hash", key: u32, value: u64, maxEntries: 16 });
  assert.equal(map.get(1), undefined);
  map.put(1, 10n);
  map.put(2, 20n);
  assert.equal(map.get(1), 10n);
  assert.equal(map.has(2), true);
  assert.throws(() => map.put(1, 5n, UpdateFlag.NoExist), (e: any) => e.code === "EEXIST");
  assert.equal(map.delete(1), true);
  assert.equal(map.delete(1), false);
  assert.deepEqual([...map.entries()], [[2, 20n]]);
  assert.equal(map.info().type, MapType.Hash);
  assert.equal(map.info().name, "t_hash");
});

test("array map: fixed keys, out-of-range key is an error", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  using map = BpfMap.create({ type: MapType.Array, value: u32, key: u32, maxEntries: 4 });
  map.put(3, 33);
  assert.equal(map.get(3), 33);
  assert.equal(map.get(0), 0);
  assert.deepEqual([...map.keys()], [0, 1, 2, 3]);
  assert.throws(() => map.put(4, 1), (e: any) => e.code === "E2BIG");
});

for (const type of [MapType.PercpuHash, MapType.PercpuArray, MapType.LruPercpuHash]) {
  test(`per-CPU map ${MapType[type]}: one value per possible CPU`, (t) => {
    if (skipUnlessRoot(t, "for BPF maps")) return;
    using map = BpfMap.create({ type, key: u32, value: u32, maxEntries: 8 });
    const cpus = possibleCpuCount();
    const values = Array.from({ length: cpus }, (_, i) => 100 + i);
    map.putPerCpu(1, values);
    assert.deepEqual(map.getPerCpu(1), values);
    assert.throws(() => map.get(1), UsageError);
    const [[key, read]] = map.lookupBatch().filter(([k]) => k === 1) as [number, number[]][];
    assert.equal(key, 1);
    assert.deepEqual(read, values);
  });
}

test("LRU hash evicts instead of failing when full", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  using map = BpfMap.create({ type: MapType.LruHash, key: u32, value: u32, maxEntries: 64 });
  for (let i = 0; i < 1000; i++) map.put(i, i);
  const count = [...map.keys()].length;
  assert.ok(count <= 64 + possibleCpuCount() * 8 && count > 0, `LRU holds ${count}`);
  assert.equal(map.get(999), 999);
});

test("LPM trie: longest prefix wins", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  const key = lpmKey(4);
  using map = BpfMap.create({ type: MapType.LpmTrie, key, value: u32, maxEntries: 16 });
  map.put({ prefixLength: 8, address: Buffer.from([10, 0, 0, 0]) }, 8);
  map.put({ prefixLength: 24, address: Buffer.from([10, 1, 2, 0]) }, 24);
  assert.equal(map.get({ prefixLength: 32, address: Buffer.from([10, 1, 2, 3]) }), 24);
  assert.equal(map.get({ prefixLength: 32, address: Buffer.from([10, 9, 9, 9]) }), 8);
  assert.equal(map.get({ prefixLength: 32, address: Buffer.from([11, 0, 0, 1]) }), undefined);
});

test("queue and stack: push, peek, pop order", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  using queue = BpfMap.create({ type: MapType.Queue, value: u32, maxEntries: 4 });
  using stack = BpfMap.create({ type: MapType.Stack, value: u32, maxEntries: 4 });
  for (const v of [1, 2, 3]) {
    queue.push(v);
    stack.push(v);
  }
  assert.equal(queue.peek(), 1);
  assert.deepEqual([queue.pop(), queue.pop(), queue.pop(), queue.pop()], [1, 2, 3, undefined]);
  assert.deepEqual([stack.pop(), stack.pop(), stack.pop(), stack.pop()], [3, 2, 1, undefined]);
});

test("ring buffer and perf event array maps are created; element access is refused clearly", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  using ring = BpfMap.create({ type: MapType.Ringbuf, maxEntries: 4096 });
  assert.equal(ring.info().type, MapType.Ringbuf);
  assert.throws(() => ring.get(Buffer.alloc(0)), /RingBufferReader/);
  assert.throws(() => BpfMap.create({ type: MapType.Ringbuf, maxEntries: 1000 }), /power of two/);
  using perf = BpfMap.create({ type: MapType.PerfEventArray, maxEntries: possibleCpuCount(), key: u32, value: u32 });
  assert.equal(perf.info().type, MapType.PerfEventArray);
});

test("program array holds a program; map-of-maps holds a map", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  using program = Program.load({ type: ProgramType.SocketFilter, instructions: returnZero, name: "t_tail" });
  using progs = BpfMap.create({ type: MapType.ProgArray, key: u32, value: u32, maxEntries: 4 });
  progs.putFd(0, program);
  assert.equal(progs.get(0), program.id);
  using outer = BpfMap.create({ type: MapType.ArrayOfMaps, key: u32, value: u32, maxEntries: 2, innerMap: { type: MapType.Array, key: u32, value: u32, maxEntries: 1 } });
  using inner = BpfMap.create({ type: MapType.Array, key: u32, value: u32, maxEntries: 1 });
  outer.putFd(1, inner);
  assert.equal(outer.get(1), inner.id);
  using hashOfMaps = BpfMap.create({ type: MapType.HashOfMaps, key: u32, value: u32, maxEntries: 2, innerMap: { type: MapType.Array, key: u32, value: u32, maxEntries: 1 } });
  hashOfMaps.putFd(7, inner);
  assert.equal(hashOfMaps.get(7), inner.id);
});

test("batch update, lookup and delete over many entries", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  using map = BpfMap.create({ type: MapType.Hash, key: u32, value: u64, maxEntries: 20000 });
  const entries: [number, bigint][] = Array.from({ length: 10000 }, (_, i) => [i, BigInt(i) * 3n]);
  assert.equal(map.updateBatch(entries, { chunkSize: 1000 }), 10000);
  const read = map.lookupBatch({ chunkSize: 777 });
  assert.equal(read.length, 10000);
  const seen = new Map(read as [number, bigint][]);
  for (const [k, v] of entries) assert.equal(seen.get(k), v);
  assert.equal(map.deleteBatch(entries.slice(0, 5000).map(([k]) => k)), 5000);
  assert.equal([...map.keys()].length, 5000);
  const drained = map.lookupAndDeleteBatch();
  assert.equal(drained.length, 5000);
  assert.equal([...map.keys()].length, 0);
});

test("keys, values, flags and descriptors the map cannot take are UsageErrors naming them; a bad batch entry writes nothing", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  const names = (name: string) => (e: unknown) => e instanceof UsageError && e.message.includes(`${name} must be`);
  using map = BpfMap.create({ type: MapType.Hash, key: u32, value: u64, maxEntries: 8 });
  // A number codec used to write NaN as 0: "x" looked up key 0.
  map.put(0, 1n);
  assert.throws(() => map.get("x" as unknown as number), names("key"));
  assert.throws(() => map.put(1, "x" as unknown as bigint), names("value"));
  assert.throws(() => map.put(1, 1n, -1), names("flags"));
  assert.throws(() => map.updateBatch([[1, 1n], [2, "x" as unknown as bigint]]), names("entries[1][1]"));
  assert.throws(() => map.updateBatch([[3, 3n], 4 as unknown as [number, bigint]]), names("entries[1]"));
  assert.deepEqual([...map.keys()], [0], "nothing of a refused batch is written");
  assert.throws(() => map.deleteBatch([0, "y" as unknown as number]), names("keys[1]"));
  assert.equal(map.get(0), 1n);
  using raw = BpfMap.create({ type: MapType.Hash, keySize: 4, valueSize: 4, maxEntries: 2 });
  assert.throws(() => raw.get(Buffer.alloc(3)), (e: unknown) => e instanceof UsageError && /key must be a Buffer of 4 bytes \(this one has 3\)/.test(e.message));
  using progs = BpfMap.create({ type: MapType.ProgArray, key: u32, value: u32, maxEntries: 1 });
  assert.throws(() => progs.putFd(0, 0x7fff_fff0), names("fd"), "a closed descriptor is the caller's mistake, not a failed system call");
  assert.throws(() => progs.putFd(0, {} as unknown as number), names("fd"));
  assert.throws(() => map.pin("/tmp/not-bpffs"), names("path"));
});

test("array batch lookup works (array maps use index cursors)", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  using map = BpfMap.create({ type: MapType.Array, key: u32, value: u32, maxEntries: 100 });
  map.updateBatch(Array.from({ length: 100 }, (_, i) => [i, i * i] as [number, number]));
  const read = map.lookupBatch({ chunkSize: 30 });
  assert.equal(read.length, 100);
  assert.deepEqual(read[99], [99, 9801]);
});

test("struct codecs round-trip through the kernel", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  const key = struct({ address: ipv4, port: u16 });
  const value = struct({ packets: u64, bytes: u64, comm: cString(16) });
  using map = BpfMap.create({ type: MapType.Hash, key, value, maxEntries: 4 });
  assert.equal(key.size, 8);
  map.put({ address: "127.0.0.1", port: 8080 }, { packets: 3n, bytes: 300n, comm: "curl" });
  assert.deepEqual(map.get({ address: "127.0.0.1", port: 8080 }), { packets: 3n, bytes: 300n, comm: "curl" });
});

test("pin and open pinned; a pinned map outlives its first fd", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  const folder = bpffsFolder("map");
  try {
    const path = `${folder.path}/counts`;
    const map = BpfMap.create({ type: MapType.Hash, key: u32, value: u32, maxEntries: 4, name: "pinned" });
    map.put(1, 42);
    map.pin(path);
    map.close();
    using again = BpfMap.openPinned(path, { key: u32, value: u32 });
    assert.equal(again.get(1), 42);
    assert.equal(again.name, "pinned");
    using byId = BpfMap.fromId(again.id, { key: u32, value: u32 });
    assert.equal(byId.get(1), 42);
    assert.throws(() => BpfMap.openPinned(`${folder.path}/missing`), (e: any) => e.code === "ENOENT" && /nothing is pinned/.test(e.message));
  } finally {
    folder.remove();
  }
});

test("bad specs give clear errors", (t) => {
  if (skipUnlessRoot(t, "for BPF maps")) return;
  assert.throws(() => BpfMap.create({ type: MapType.Hash, maxEntries: 4 }), /needs keySize and valueSize/);
  assert.throws(() => BpfMap.create({ type: MapType.Hash, keySize: 4, valueSize: 4, maxEntries: 0 }), /maxEntries must be a positive integer/);
  assert.throws(() => BpfMap.create({ type: MapType.Hash, keySize: 4, valueSize: 4, maxEntries: 1, name: "bad name!" }), /may only contain/);
  assert.throws(() => BpfMap.create({ type: MapType.Hash, keySize: 0, valueSize: 4, maxEntries: 1 }), (e: unknown) => e instanceof NetbpfError && /EINVAL/.test(e.message));
  const map = BpfMap.create({ type: MapType.Hash, keySize: 4, valueSize: 4, maxEntries: 1 });
  map.close();
  assert.throws(() => map.get(Buffer.alloc(4)), /already closed/);
});

test("maps and programs close once, by close() or `using`, and say so (FdOwner)", () => {
  const map = BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: 4, maxEntries: 1, name: "t_owner" });
  const program = Program.load({ type: ProgramType.SocketFilter, instructions: returnZero, name: "t_owner" });
  assert.deepEqual([map.closed, program.closed], [false, false]);
  {
    using disposed = map;
    assert.equal(disposed.get(Buffer.alloc(4))?.length, 4);
  }
  program.close();
  program.close();
  assert.deepEqual([map.closed, program.closed], [true, true]);
  assert.throws(() => map.get(Buffer.alloc(4)), /already closed/);
  assert.throws(() => program.pin("/sys/fs/bpf/nbhx-never"), /already closed/);
});
