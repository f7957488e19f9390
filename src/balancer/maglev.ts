/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of
 * prime size M in which each backend owns about M × weight / Σweights slots,
 * filled from per-backend permutations so that removing one of N backends
 * changes little more than the 1/N of slots it owned.
 */
import { createHash } from "node:crypto";
import { expectArray, expectInstance, expectObject, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";

export interface MaglevBackend {
  /** Stable identity of the backend (its address and port): the permutation depends on it alone. */
  key: string;
  /** Relative share of the table, a positive integer. */
  weight: number;
}

/** Table sizes must be prime; these are the sizes netbpf offers. */
export const maglevTableSizes = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521] as const;
export const defaultMaglevTableSize = 16381;

function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function hashes(key: string): [number, number] {
  const digest = createHash("sha256").update(key).digest();
  return [digest.readUInt32LE(0), digest.readUInt32LE(4)];
}

/**
 * Fills a table of `size` slots with indexes into `backends` (-1 where there
 * is no backend at all). Weighted: in each round a backend claims as many
 * slots as its weight, so its share is proportional to the weight.
 */
export function maglevTable(backends: readonly MaglevBackend[], size = defaultMaglevTableSize): Int32Array {
  const operation = "build Maglev table";
  expectArray(operation, "backends", backends);
  if (!isPrime(size)) throw new UsageError(operation, `the Maglev table size must be prime, got ${size}`);
  backends.forEach((backend, index) => {
    expectObject(operation, `backends[${index}]`, backend);
    expectString(operation, `backends[${index}].key`, backend.key);
    if (!Number.isInteger(backend.weight) || backend.weight < 1) throw new UsageError(operation, `backends[${index}] (${backend.key}): weight must be a positive integer, got ${backend.weight}`);
  });
  const table = new Int32Array(size).fill(-1);
  if (backends.length === 0) return table;
  const offsets: number[] = [];
  const skips: number[] = [];
  for (const backend of backends) {
    const [h1, h2] = hashes(backend.key);
    offsets.push(h1 % size);
    skips.push((h2 % (size - 1)) + 1);
  }
  const next = new Array<number>(backends.length).fill(0);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < backends.length; i++) {
      for (let turn = 0; turn < backends[i]!.weight; turn++) {
        let slot = (offsets[i]! + next[i]! * skips[i]!) % size;
        while (table[slot] !== -1) {
          next[i]!++;
          slot = (offsets[i]! + next[i]! * skips[i]!) % size;
        }
        table[slot] = i;
        next[i]!++;
        if (++filled === size) return table;
      }
    }
  }
}

/** Fraction of slots whose backend differs between two tables of one size (by backend key). */
export function maglevDisruption(before: Int32Array, beforeKeys: readonly string[], after: Int32Array, afterKeys: readonly string[]): number {
  const operation = "measure Maglev disruption";
  expectInstance(operation, "before", before, Int32Array, "a Maglev table (an Int32Array from maglevTable)");
  expectArray(operation, "beforeKeys", beforeKeys);
  expectInstance(operation, "after", after, Int32Array, "a Maglev table (an Int32Array from maglevTable)");
  expectArray(operation, "afterKeys", afterKeys);
  if (before.length !== after.length) throw new UsageError(operation, `before and after must be tables of one size, got ${before.length} and ${after.length} slots`);
  let moved = 0;
  for (let i = 0; i < before.length; i++) {
    if (beforeKeys[before[i]!] !== afterKeys[after[i]!]) moved++;
  }
  return moved / before.length;
}
