import { test } from "node:test";
import assert from "node:assert/strict";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { generateFilterProgram } from "../../src/filter/generate-filter-program.js";

/** CPU time (user + system) of this process in milliseconds: less disturbed by other load than wall time. */
function cpuMilliseconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/**
 * CPU milliseconds to parse, lower, optimise and generate code for `expression`: the best of three
 * averages over enough runs to take 40 ms (a single short compile is too brief to time on a busy machine).
 */
function compileCost(expression: string): number {
  let best = Infinity;
  for (let trial = 0; trial < 3; trial++) {
    const start = cpuMilliseconds();
    let runs = 0;
    do {
      generateFilterProgram(compileFilter(expression), { context: "skb" });
      runs++;
    } while (cpuMilliseconds() - start < 40);
    best = Math.min(best, (cpuMilliseconds() - start) / runs);
  }
  return best;
}

// Long chains of `and` terms must compile in about linear time. Each case compiles a chain and one
// four times as long, in the same test, and compares: linear work gives a ratio near 4, quadratic
// near 16 (the optimiser used to walk the rest of the graph from every test: 1,500 `tcp` terms took
// 4.7 s). The bound, 10, is generous for a loaded machine and still well below quadratic. Lengths stay under maximumExpressionLength.
const cases: { name: string; term: (index: number) => string; terms: number }[] = [
  { name: "tcp and tcp and …", term: () => "tcp", terms: 500 },
  { name: "not port N and …", term: (index) => `not port ${index % 9}`, terms: 200 },
  { name: "(port N or udp) and …", term: (index) => `(port ${index % 90} or udp)`, terms: 180 },
  { name: "not host A and …", term: (index) => `not host 10.0.${index % 7}.${index % 200}`, terms: 150 },
];

for (const { name, term, terms } of cases) {
  test(`compiling ${name} grows about linearly with the number of terms`, () => {
    const chain = (count: number) => Array.from({ length: count }, (_, index) => term(index)).join(" and ");
    const short = chain(terms);
    const long = chain(4 * terms);
    // Warm up the compiler (its first runs are interpreted, and a long chain takes other paths).
    generateFilterProgram(compileFilter(short), { context: "skb" });
    generateFilterProgram(compileFilter(long), { context: "skb" });
    const shortCost = compileCost(short);
    const longCost = compileCost(long);
    assert.ok(longCost < 10 * shortCost, `${4 * terms} terms took ${longCost.toFixed(0)} ms of CPU, ${terms} terms ${shortCost.toFixed(0)} ms: ratio ${(longCost / shortCost).toFixed(1)}, expected < 10`);
  });
}
