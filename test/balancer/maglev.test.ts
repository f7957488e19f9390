import assert from "node:assert/strict";
import { test } from "node:test";
import { maglevDisruption, maglevTable } from "../../src/balancer/maglev.js";

const backends = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `10.0.${i}.2:8080`, weight: 1 }));

function shares(table: Int32Array, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (const slot of table) counts[slot]!++;
  return counts.map((c) => c / table.length);
}

test("every slot gets a backend and shares are even within 2% for 3..20 backends", () => {
  for (const n of [1, 3, 5, 7, 20]) {
    const table = maglevTable(backends(n), 16381);
    assert.ok(table.every((slot) => slot >= 0 && slot < n));
    for (const share of shares(table, n)) assert.ok(Math.abs(share - 1 / n) < 0.02, `n=${n}: share ${share}`);
  }
});

test("weights give proportional shares", () => {
  const table = maglevTable([{ key: "a", weight: 1 }, { key: "b", weight: 2 }, { key: "c", weight: 3 }], 16381);
  const [a, b, c] = shares(table, 3);
  assert.ok(Math.abs(a! - 1 / 6) < 0.01 && Math.abs(b! - 2 / 6) < 0.01 && Math.abs(c! - 3 / 6) < 0.01, `${a} ${b} ${c}`);
});

test("removing one of N backends moves at most ~1/N of the slots (plus Maglev's small churn), adding one likewise", () => {
  for (const n of [3, 5, 10]) {
    const all = backends(n);
    const keys = all.map((b) => b.key);
    const before = maglevTable(all, 16381);
    const fewer = all.filter((_, i) => i !== 1);
    const after = maglevTable(fewer, 16381);
    const moved = maglevDisruption(before, keys, after, fewer.map((b) => b.key));
    // Slots owned by the removed backend must move; others should mostly stay.
    assert.ok(moved >= 1 / n - 0.02, `n=${n}: moved ${moved}`);
    assert.ok(moved <= (1 / n) * 1.25 + 0.01, `n=${n}: moved ${moved} > ~1/${n}`);
    let strayed = 0;
    for (let i = 0; i < before.length; i++) if (keys[before[i]!] !== all[1]!.key && keys[before[i]!] !== fewer[after[i]!]!.key) strayed++;
    assert.ok(strayed / before.length < 0.05, `n=${n}: ${strayed} slots of surviving backends moved`);
    const more = [...all, { key: "10.9.9.9:80", weight: 1 }];
    const grown = maglevTable(more, 16381);
    const movedAdding = maglevDisruption(before, keys, grown, more.map((b) => b.key));
    assert.ok(movedAdding <= (1 / (n + 1)) * 1.25 + 0.01, `n=${n}: adding moved ${movedAdding}`);
  }
});

test("the table depends only on the backends' keys, not their order; bad input is refused", () => {
  const a = maglevTable(backends(4), 251);
  const reversed = backends(4).reverse();
  const b = maglevTable(reversed, 251);
  const keysA = backends(4).map((x) => x.key);
  const keysB = reversed.map((x) => x.key);
  assert.ok(maglevDisruption(a, keysA, b, keysB) < 0.05);
  assert.throws(() => maglevTable(backends(2), 250), /prime/);
  assert.throws(() => maglevTable([{ key: "a", weight: 0 }], 251), /weight/);
  assert.ok(maglevTable([], 251).every((slot) => slot === -1));
});
