import { test } from "node:test";
import assert from "node:assert/strict";
import { filterBenchExpressions } from "../../bench/support/filter-bench-expressions.js";
import { Program } from "../../src/core/program.js";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { generateFilterProgram, type GeneratedFilter } from "../../src/filter/generate-filter-program.js";
import { formatFilterProgram } from "../../src/filter/format-filter-program.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

/**
 * Instructions of the generated programs for the filter-cost set (bench/filter-cost.ts), Ethernet:
 * at most these (the kernel translates them one to one, see the second test). clang -O2's programs
 * for the same filters (bench/c/filters) have 41, 35, 37, 45, 17, 26, 25, 34, 47, 12, 6 and 24
 * translated instructions in tc. Until tc code handled non-linear skbs with a bounded pull instead
 * of a second, bpf_skb_load_bytes-based copy of the filter, tc needed 151, 118, 93, 177, 59, 89, 87,
 * 94, 175, 42, 6 and 78, and XDP 44, 34, 31, 53, 19, 26, 25, 30, 56, 13, 9 and 26. With the first
 * bounded pull (an 11-instruction stub, before JSET tests and moving pointers) tc needed 51, 43, 38, 57,
 * 28, 36, 35, 38, 64, 12, 6 and 34 (geometric mean 1.244x clang's); now 1.137x (an 8-instruction stub).
 */
const limits: Record<string, { tc: number; xdp: number }> = {
  "tcp-port-80": { tc: 46, xdp: 38 },
  "udp-dst-port-53": { tc: 38, xdp: 30 },
  host: { tc: 35, xdp: 27 },
  "net-not-port-22": { tc: 52, xdp: 44 },
  "ip6-and-tcp": { tc: 25, xdp: 17 },
  "tcp-syn": { tc: 31, xdp: 23 },
  "icmp-echo": { tc: 30, xdp: 22 },
  "vlan-and-tcp": { tc: 35, xdp: 27 },
  portrange: { tc: 59, xdp: 51 },
  "ether-src": { tc: 12, xdp: 12 },
  "greater-100": { tc: 6, xdp: 9 },
  gre: { tc: 31, xdp: 23 },
};

const callOpcode = 0x85;
const skbLoadBytes = 26;

function generate(expression: string, context: "tc" | "xdp"): GeneratedFilter {
  const filter = compileFilter(expression, { linkType: 1 });
  return generateFilterProgram(filter, context === "tc" ? { context: "skb", hook: "tc" } : { context: "xdp" });
}

test("tc and XDP programs of the filter-cost set stay within their sizes; tc holds the filter once", () => {
  assert.deepEqual(Object.keys(limits).sort(), filterBenchExpressions.map(({ name }) => name).sort());
  const over: string[] = [];
  for (const { name, expression } of filterBenchExpressions) {
    for (const context of ["tc", "xdp"] as const) {
      const program = generate(expression, context);
      const limit = limits[name]![context];
      if (program.instructions.length > limit) over.push(`${context} ${expression}: ${program.instructions.length} instructions, at most ${limit}\n${formatFilterProgram(program)}`);
      // No second copy: no bpf_skb_load_bytes call, no label of the helper-based copy, every test emitted once.
      assert.ok(!program.instructions.some((instruction) => instruction.opcode === callOpcode && instruction.imm === skbLoadBytes), `${context} ${expression}: calls bpf_skb_load_bytes`);
      assert.ok(![...program.labels.keys()].some((label) => label.startsWith("slow_")), `${context} ${expression}: a second copy of the filter`);
      const tests = [...program.annotations.values()];
      assert.equal(new Set(tests).size, tests.length, `${context} ${expression}: a test emitted twice`);
    }
  }
  assert.deepEqual(over, []);
});

test("the kernel's translated size of the filter-cost set's tc programs is the generated size", (t) => {
  if (skipUnlessKernel(t, isRoot(), "loading BPF programs needs root")) return;
  for (const { expression } of filterBenchExpressions) {
    const generated = generate(expression, "tc");
    using program = Program.load({ type: ProgramType.SchedCls, instructions: generated, license: "GPL", name: "nb_filter_size" });
    assert.equal(program.info().translatedSize / 8, generated.instructions.length, expression);
  }
});
