/**
 * Per-packet cost of netbpf's generated filter programs against the same
 * filters written in C (bench/c/filters/*.c) and built with clang -O2, in one
 * run: BPF_PROG_TEST_RUN with many repeats over the same crafted frames, in
 * the skb (tc) and XDP contexts, ours and clang's alternating.
 *
 * Run: npm run build && node dist/bench/filter-cost.js [rounds] [repeat]
 * Prints a table and one JSON line. Needs root, BPF and clang.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Collection } from "../src/core/collection.js";
import { Program } from "../src/core/program.js";
import { loadCollectionSpec } from "../src/elf/collection-spec.js";
import { compileFilter } from "../src/filter/compileFilter.js";
import { generateFilterProgram, type FilterContext } from "../src/filter/generateFilterProgram.js";
import { ProgramType } from "../src/sys/bpf-constants.js";
import { filterBenchPackets } from "./support/filter-bench-packets.js";

/** Expression and the C file (bench/c/filters/<name>.c) written for it. */
const filters: { name: string; expression: string }[] = [
  { name: "tcp-port-80", expression: "tcp port 80" },
  { name: "udp-dst-port-53", expression: "udp and dst port 53" },
  { name: "host", expression: "host 192.0.2.1" },
  { name: "net-not-port-22", expression: "net 10.0.0.0/8 and not port 22" },
  { name: "ip6-and-tcp", expression: "ip6 and tcp" },
  { name: "tcp-syn", expression: "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn" },
  { name: "icmp-echo", expression: "icmp[icmptype] = icmp-echo" },
  { name: "vlan-and-tcp", expression: "vlan and tcp" },
  { name: "portrange", expression: "portrange 1000-2000" },
  { name: "ether-src", expression: "ether src 02:00:00:00:00:01" },
  { name: "greater-100", expression: "greater 100" },
  { name: "gre", expression: "ip proto 47 or ip6 proto 47" },
];

const contexts: { context: FilterContext; type: ProgramType; clangProgram: string; accept: number }[] = [
  { context: "skb", type: ProgramType.SchedCls, clangProgram: "filter_skb", accept: 0x40000 },
  { context: "xdp", type: ProgramType.Xdp, clangProgram: "filter_xdp", accept: 2 },
];

const rounds = Number(process.argv[2] ?? 7);
const repeat = Number(process.argv[3] ?? 100_000);
const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/bench: the C sources stay in the source tree.
const sourceFolder = [join(here, "c", "filters"), join(here, "..", "..", "bench", "c", "filters")].find((folder) => {
  try {
    return readdirSync(folder).includes("filter.h");
  } catch {
    return false;
  }
});
if (!sourceFolder) throw new Error("bench/c/filters not found");

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

function geometricMean(values: number[]): number {
  return Math.exp(mean(values.map((value) => Math.log(value))));
}

function multiarchInclude(): string[] {
  try {
    const triple = execFileSync("gcc", ["-print-multiarch"], { encoding: "utf8" }).trim();
    return triple ? [`-I/usr/include/${triple}`] : [];
  } catch {
    return ["-I/usr/include/x86_64-linux-gnu"];
  }
}

interface Variant {
  program: Program;
  translatedInstructions: number;
  jitedBytes: number;
}

function describe(program: Program): Variant {
  const info = program.info();
  return { program, translatedInstructions: info.translatedSize / 8, jitedBytes: info.jitedSize };
}

interface Row {
  name: string;
  expression: string;
  context: FilterContext;
  ours: { instructions: number; jitedBytes: number; nanoseconds: number };
  clang: { instructions: number; jitedBytes: number; nanoseconds: number };
  baselineNanoseconds: number;
  ratio: number;
  matches: number;
  mismatches: string[];
}

const packets = filterBenchPackets();
const workFolder = mkdtempSync(join(tmpdir(), "nb-filterbench-"));
const opened: { close(): void }[] = [];
const rows: Row[] = [];
try {
  const baselines = new Map<ProgramType, Program>();
  for (const { type } of contexts) {
    const baseline = Program.load({ type, instructions: Buffer.from("b7000000000000009500000000000000", "hex"), license: "GPL", name: "nb_fb_base" });
    opened.push(baseline);
    baselines.set(type, baseline);
  }
  const include = multiarchInclude();
  for (const filter of filters) {
    const object = join(workFolder, `${filter.name}.o`);
    execFileSync("clang", ["-O2", "-target", "bpf", "-g", ...include, "-c", join(sourceFolder, `${filter.name}.c`), "-o", object], { stdio: "inherit" });
    const collection = Collection.load(loadCollectionSpec(object));
    opened.push(collection);
    const compiled = compileFilter(filter.expression, { linkType: 1 });
    for (const { context, type, clangProgram, accept } of contexts) {
      const ours = describe(Program.load({ type, instructions: generateFilterProgram(compiled, { context }), license: "GPL", name: "nb_fb_ours" }));
      opened.push(ours.program);
      const clang = describe(collection.programs[clangProgram]!);
      const baseline = baselines.get(type)!;

      const mismatches: string[] = [];
      let matches = 0;
      for (const packet of packets) {
        const expected = compiled.matches(packet.data);
        const ourResult = ours.program.run({ data: packet.data }).returnValue === accept;
        const clangResult = clang.program.run({ data: packet.data }).returnValue === accept;
        if (expected) matches++;
        if (ourResult !== expected || clangResult !== expected) {
          mismatches.push(`${packet.name}: evaluator ${expected}, ours ${ourResult}, clang ${clangResult}`);
        }
      }

      const samples = packets.map(() => ({ ours: [] as number[], clang: [] as number[], baseline: [] as number[] }));
      for (let round = 0; round < rounds; round++) {
        packets.forEach((packet, index) => {
          const order = (round + index) % 2 === 0 ? (["ours", "clang"] as const) : (["clang", "ours"] as const);
          for (const which of order) {
            const program = which === "ours" ? ours.program : clang.program;
            samples[index]![which].push(program.run({ data: packet.data, repeat }).duration);
          }
          samples[index]!.baseline.push(baseline.run({ data: packet.data, repeat }).duration);
        });
      }
      const ourNanoseconds = mean(samples.map((sample) => median(sample.ours)));
      const clangNanoseconds = mean(samples.map((sample) => median(sample.clang)));
      rows.push({
        name: filter.name,
        expression: filter.expression,
        context,
        ours: { instructions: ours.translatedInstructions, jitedBytes: ours.jitedBytes, nanoseconds: ourNanoseconds },
        clang: { instructions: clang.translatedInstructions, jitedBytes: clang.jitedBytes, nanoseconds: clangNanoseconds },
        baselineNanoseconds: mean(samples.map((sample) => median(sample.baseline))),
        ratio: ourNanoseconds / clangNanoseconds,
        matches,
        mismatches,
      });
    }
  }
} finally {
  for (const object of opened.reverse()) object.close();
  rmSync(workFolder, { recursive: true, force: true });
}

const fixed = (value: number, digits = 2) => value.toFixed(digits);
console.log(`filter cost: ${packets.length} frames, ${rounds} rounds x ${repeat} repeats, median per frame, mean over frames (ns/packet)`);
console.log(
  ["context", "expression".padEnd(44), "match", "ours insn", "clang insn", "ours jit", "clang jit", "ours ns", "clang ns", "empty ns", "ratio"].join("  "),
);
for (const row of rows) {
  console.log(
    [
      row.context.padEnd(7),
      row.expression.padEnd(44),
      `${row.matches}/${packets.length}`.padStart(5),
      String(row.ours.instructions).padStart(9),
      String(row.clang.instructions).padStart(10),
      String(row.ours.jitedBytes).padStart(8),
      String(row.clang.jitedBytes).padStart(9),
      fixed(row.ours.nanoseconds).padStart(7),
      fixed(row.clang.nanoseconds).padStart(8),
      fixed(row.baselineNanoseconds).padStart(8),
      fixed(row.ratio, 3).padStart(5),
    ].join("  "),
  );
  for (const mismatch of row.mismatches) console.log(`    MISMATCH ${mismatch}`);
}
const summary: Record<string, unknown> = { bench: "filter-cost", frames: packets.length, rounds, repeat };
for (const { context } of contexts) {
  const ofContext = rows.filter((row) => row.context === context);
  const ratio = geometricMean(ofContext.map((row) => row.ratio));
  const instructionRatio = geometricMean(ofContext.map((row) => row.ours.instructions / row.clang.instructions));
  console.log(`${context}: geometric mean ours/clang time ${fixed(ratio, 3)}, instructions ${fixed(instructionRatio, 3)}`);
  summary[context] = { geometricMeanRatio: Number(ratio.toFixed(4)), geometricMeanInstructionRatio: Number(instructionRatio.toFixed(4)) };
}
summary.rows = rows.map((row) => ({
  name: row.name,
  context: row.context,
  oursInstructions: row.ours.instructions,
  clangInstructions: row.clang.instructions,
  oursJitedBytes: row.ours.jitedBytes,
  clangJitedBytes: row.clang.jitedBytes,
  oursNs: Number(row.ours.nanoseconds.toFixed(3)),
  clangNs: Number(row.clang.nanoseconds.toFixed(3)),
  emptyNs: Number(row.baselineNanoseconds.toFixed(3)),
  ratio: Number(row.ratio.toFixed(4)),
  mismatches: row.mismatches.length,
}));
console.log(JSON.stringify(summary));
