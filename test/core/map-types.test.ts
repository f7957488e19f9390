/**
 * Typed maps return precise types: this file does not compile when a hash
 * map's entries() yields `V | V[]` instead of `V`, or a per-CPU map's yields
 * anything but `V[]`. The runtime assertions check the values match the types.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BpfMap } from "../../src/core/map.js";
import { MapType } from "../../src/sys/bpf-constants.js";
import { possibleCpuCount } from "../../src/sys/cpus.js";
import { u32, u64 } from "../../src/core/codec.js";

/** True only when A and B are the same type (not merely assignable). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
const sameType = <A, B>(_value: Same<A, B>): void => {};

test("a hash map yields [K, V]; a per-CPU map yields [K, V[]]", () => {
  using hash = BpfMap.create({ type: MapType.Hash, name: "t_types", key: u32, value: u64, maxEntries: 4 });
  using perCpu = BpfMap.create({ type: MapType.PercpuArray, name: "t_types_pcpu", key: u32, value: u64, maxEntries: 1 });
  hash.put(1, 10n);
  perCpu.putPerCpu(0, 7n);

  const hashEntries = [...hash.entries()];
  sameType<typeof hashEntries, [number, bigint][]>(true);
  const hashBatch = hash.lookupBatch();
  sameType<typeof hashBatch, [number, bigint][]>(true);
  for (const [key, value] of hash) {
    const sum: bigint = value + 1n; // V, not V | V[]
    assert.equal(key, 1);
    assert.equal(sum, 11n);
  }

  const perCpuEntries = [...perCpu.entries()];
  sameType<typeof perCpuEntries, [number, bigint[]][]>(true);
  let visited = 0;
  perCpu.forEachBatch((key, values) => {
    sameType<typeof values, bigint[]>(true);
    assert.equal(key, 0);
    assert.equal(values.length, possibleCpuCount());
    assert.ok(values.every((value) => value === 7n));
    visited++;
  });
  assert.equal(visited, 1);
  assert.deepEqual(hashEntries, [[1, 10n]]);
  assert.equal(typeof hashBatch[0]![1], "bigint");
  assert.ok(Array.isArray(perCpuEntries[0]![1]));

  // A map whose type is not known at compile time (opened by id, path or fd) yields either.
  using opened = BpfMap.fromId(hash.id, { key: u32, value: u64 });
  const openedEntries = [...opened.entries()];
  sameType<typeof openedEntries, [number, bigint | bigint[]][]>(true);
  assert.deepEqual(openedEntries, [[1, 10n]]);
});
