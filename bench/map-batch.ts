/**
 * Single-element lookups vs BPF_MAP_LOOKUP_BATCH over a 100,000-entry hash
 * map, measured in the same run. Target: batch reads >= 10x the per-key rate.
 */
import { BpfMap } from "../src/core/map.js";
import { u32, u64 } from "../src/core/codec.js";
import { MapType } from "../src/sys/bpf-constants.js";
import { mapGetNextKey, mapLookupElement } from "../src/sys/bpf.js";
import { median } from "./support/statistics.js";

const entries = 100_000;
const rounds = 5;

using map = BpfMap.create({ type: MapType.Hash, key: u32, value: u64, maxEntries: entries });
map.updateBatch(Array.from({ length: entries }, (_, i) => [i, BigInt(i)] as [number, bigint]));

const singleRates: number[] = [];
const iterateRates: number[] = [];
const batchRates: number[] = [];
const visitRates: number[] = [];
const collect = () => (globalThis as { gc?: () => void }).gc?.();
for (let round = 0; round < rounds; round++) {
  collect();
  // Known keys, one lookup syscall each (the best case for single reads).
  let start = process.hrtime.bigint();
  let sum = 0n;
  for (let i = 0; i < entries; i++) sum += map.get(i) ?? 0n;
  let seconds = Number(process.hrtime.bigint() - start) / 1e9;
  singleRates.push(entries / seconds);

  // Full dump the classic way: get-next-key + lookup per element (two syscalls each).
  collect();
  start = process.hrtime.bigint();
  const key = Buffer.alloc(4);
  const value = Buffer.alloc(8);
  let current: Buffer | null = null;
  let count = 0;
  while (mapGetNextKey(map.fd.value, current, key)) {
    mapLookupElement(map.fd.value, key, value);
    current = Buffer.from(key);
    count++;
  }
  seconds = Number(process.hrtime.bigint() - start) / 1e9;
  iterateRates.push(count / seconds);

  collect();
  start = process.hrtime.bigint();
  const read = map.lookupBatch({ chunkSize: 8192 });
  seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (read.length !== entries) throw new Error(`batch read ${read.length} of ${entries}`);
  batchRates.push(entries / seconds);

  collect();
  start = process.hrtime.bigint();
  let visited = 0;
  map.forEachBatch((_k, v) => {
    sum += v as bigint;
    visited++;
  });
  seconds = Number(process.hrtime.bigint() - start) / 1e9;
  visitRates.push(visited / seconds);
  if (sum === -1n) console.log(sum);
}

const single = median(singleRates);
const iterate = median(iterateRates);
const batch = median(batchRates);
const visit = median(visitRates);
console.log(JSON.stringify({
  bench: "map-batch",
  entries,
  singleLookupsPerSecond: Math.round(single),
  iterateLookupsPerSecond: Math.round(iterate),
  batchLookupsPerSecond: Math.round(batch),
  batchVisitLookupsPerSecond: Math.round(visit),
  batchOverSingle: +(batch / single).toFixed(1),
  batchVisitOverSingle: +(visit / single).toFixed(1),
  batchOverIterate: +(batch / iterate).toFixed(1),
  target: "batchOverSingle >= 10",
}));
