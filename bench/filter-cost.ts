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
import { socketBufferContext, xdpContext, type ContextModel } from "../src/asm/contexts.js";
import { Interpreter } from "../src/asm/interpreter.js";
import { Collection } from "../src/core/collection.js";
import { encodeInstructions, Program } from "../src/core/program.js";
import { loadCollectionSpec } from "../src/elf/collection-spec.js";
import { compileFilter } from "../src/filter/compile-filter.js";
import { generateFilterProgram, type FilterContext } from "../src/filter/generate-filter-program.js";
import { ProgramType } from "../src/sys/bpf-constants.js";
import { filterBenchExpressions } from "./support/filter-bench-expressions.js";
import { filterBenchPackets } from "./support/filter-bench-packets.js";

/** Expression and the C file (bench/c/filters/<name>.c) written for it. */
const filters = filterBenchExpressions;

const contexts: { context: FilterContext; type: ProgramType; clangProgram: string; accept: number; model: ContextModel }[] = [
  { context: "skb", type: ProgramType.SchedCls, clangProgram: "filter_skb", accept: 0x40000, model: socketBufferContext() },
  { context: "xdp", type: ProgramType.Xdp, clangProgram: "filter_xdp", accept: 2, model: xdpContext() },
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

/** Mean instructions executed per frame (before the verifier's rewrites: an LD_ABS counts as one), from the asm interpreter. */
function executedInstructions(instructions: Uint8Array, model: ContextModel): number {
  const interpreter = new Interpreter(instructions);
  return mean(filterBenchPackets().map((packet) => interpreter.run(packet.data, { context: model }).instructionCount));
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

/** skb only: the same filter with LD_ABS/LD_IND loads (the socket-filter code), loaded as tc, for comparison. */
function legacyVariant(compiled: ReturnType<typeof compileFilter>): Variant & { instructions: Uint8Array } {
  const generated = generateFilterProgram(compiled, { context: "skb", skbLoads: "legacy" });
  return { ...describe(Program.load({ type: ProgramType.SchedCls, instructions: generated, license: "GPL", name: "nb_fb_legacy" })), instructions: encodeInstructions(generated) };
}

interface Row {
  name: string;
  expression: string;
  context: FilterContext;
  ours: { instructions: number; jitedBytes: number; executed: number; nanoseconds: number };
  clang: { instructions: number; jitedBytes: number; executed: number; nanoseconds: number };
  /** skb only: the LD_ABS/LD_IND code generation (socket filters), loaded as tc, for comparison. */
  legacy: { instructions: number; jitedBytes: number; executed: number; nanoseconds: number } | undefined;
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
    const spec = loadCollectionSpec(object);
    const collection = Collection.load(spec);
    opened.push(collection);
    const compiled = compileFilter(filter.expression, { linkType: 1 });
    for (const { context, type, clangProgram, accept, model } of contexts) {
      // tc: direct packet access (the default for hook "tc").
      const generated = generateFilterProgram(compiled, context === "skb" ? { context, hook: "tc" } : { context });
      const ours = describe(Program.load({ type, instructions: generated, license: "GPL", name: "nb_fb_ours" }));
      const oursExecuted = executedInstructions(encodeInstructions(generated), model);
      const clangExecuted = executedInstructions(spec.programs[clangProgram]!.instructions, model);
      opened.push(ours.program);
      const clang = describe(collection.programs[clangProgram]!);
      const baseline = baselines.get(type)!;

      // skb only: the LD_ABS/LD_IND code, as before direct packet access.
      const legacy = context === "skb" ? legacyVariant(compiled) : undefined;
      if (legacy) opened.push(legacy.program);
      const legacyExecuted = legacy ? executedInstructions(legacy.instructions, model) : 0;

      const variants: [string, Program][] = [["ours", ours.program], ["clang", clang.program]];
      if (legacy) variants.push(["legacy", legacy.program]);
      const mismatches: string[] = [];
      let matches = 0;
      for (const packet of packets) {
        const expected = compiled.matches(packet.data);
        if (expected) matches++;
        const results = variants.map(([which, program]) => [which, program.run({ data: packet.data }).returnValue === accept] as const);
        if (results.some(([, result]) => result !== expected)) {
          mismatches.push(`${packet.name}: evaluator ${expected}, ${results.map(([which, result]) => `${which} ${result}`).join(", ")}`);
        }
      }

      const samples = packets.map(() => new Map<string, number[]>([...variants.map(([which]) => [which, []] as [string, number[]]), ["empty", []]]));
      const timed: [string, Program][] = [...variants, ["empty", baseline]];
      for (let round = 0; round < rounds; round++) {
        packets.forEach((packet, index) => {
          // Rotate the order so no variant always runs first (cache, frequency).
          for (let step = 0; step < timed.length; step++) {
            const [which, program] = timed[(round + index + step) % timed.length]!;
            samples[index]!.get(which)!.push(program.run({ data: packet.data, repeat }).duration);
          }
        });
      }
      const nanoseconds = (which: string) => mean(samples.map((sample) => median(sample.get(which)!)));
      const ourNanoseconds = nanoseconds("ours");
      const clangNanoseconds = nanoseconds("clang");
      rows.push({
        name: filter.name,
        expression: filter.expression,
        context,
        ours: { instructions: ours.translatedInstructions, jitedBytes: ours.jitedBytes, executed: oursExecuted, nanoseconds: ourNanoseconds },
        clang: { instructions: clang.translatedInstructions, jitedBytes: clang.jitedBytes, executed: clangExecuted, nanoseconds: clangNanoseconds },
        legacy: legacy && { instructions: legacy.translatedInstructions, jitedBytes: legacy.jitedBytes, executed: legacyExecuted, nanoseconds: nanoseconds("legacy") },
        baselineNanoseconds: nanoseconds("empty"),
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
  ["context", "expression".padEnd(44), "match", "ours insn", "clang insn", "ours jit", "clang jit", "ours run", "clang run", "ours ns", "clang ns", "empty ns", "ratio", "LD_ABS insn/run/ns/ratio"].join("  "),
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
      fixed(row.ours.executed, 1).padStart(8),
      fixed(row.clang.executed, 1).padStart(9),
      fixed(row.ours.nanoseconds).padStart(7),
      fixed(row.clang.nanoseconds).padStart(8),
      fixed(row.baselineNanoseconds).padStart(8),
      fixed(row.ratio, 3).padStart(5),
      row.legacy ? `${row.legacy.instructions}/${fixed(row.legacy.executed, 1)}/${fixed(row.legacy.nanoseconds)}/${fixed(row.legacy.nanoseconds / row.clang.nanoseconds, 3)}` : "",
    ].join("  "),
  );
  for (const mismatch of row.mismatches) console.log(`    MISMATCH ${mismatch}`);
}
const summary: Record<string, unknown> = { bench: "filter-cost", frames: packets.length, rounds, repeat };
for (const { context } of contexts) {
  const ofContext = rows.filter((row) => row.context === context);
  const ratio = geometricMean(ofContext.map((row) => row.ratio));
  const instructionRatio = geometricMean(ofContext.map((row) => row.ours.instructions / row.clang.instructions));
  const executedRatio = geometricMean(ofContext.map((row) => row.ours.executed / row.clang.executed));
  const netRows = ofContext.filter((row) => row.ours.nanoseconds > row.baselineNanoseconds && row.clang.nanoseconds > row.baselineNanoseconds);
  const netRatio = geometricMean(netRows.map((row) => (row.ours.nanoseconds - row.baselineNanoseconds) / (row.clang.nanoseconds - row.baselineNanoseconds)));
  console.log(
    `${context}: geometric mean ours/clang: time ${fixed(ratio, 3)}, time above the empty program ${fixed(netRatio, 3)} (${netRows.length} of ${ofContext.length} expressions measurably above it), ` +
      `instructions loaded ${fixed(instructionRatio, 3)}, executed ${fixed(executedRatio, 3)}`,
  );
  summary[context] = {
    geometricMeanRatio: Number(ratio.toFixed(4)),
    geometricMeanNetRatio: Number(netRatio.toFixed(4)),
    netExpressions: netRows.length,
    geometricMeanInstructionRatio: Number(instructionRatio.toFixed(4)),
    geometricMeanExecutedRatio: Number(executedRatio.toFixed(4)),
  };
  const legacyRows = ofContext.filter((row) => row.legacy);
  if (legacyRows.length > 0) {
    const legacyRatio = geometricMean(legacyRows.map((row) => row.legacy!.nanoseconds / row.clang.nanoseconds));
    const legacyExecutedRatio = geometricMean(legacyRows.map((row) => row.legacy!.executed / row.clang.executed));
    console.log(`${context}: with LD_ABS/LD_IND loads (skbLoads "legacy", ${legacyRows.length} expressions): time ${fixed(legacyRatio, 3)}, executed ${fixed(legacyExecutedRatio, 3)}`);
    Object.assign(summary[context] as object, { legacyGeometricMeanRatio: Number(legacyRatio.toFixed(4)), legacyGeometricMeanExecutedRatio: Number(legacyExecutedRatio.toFixed(4)) });
  }
}
summary.rows = rows.map((row) => ({
  name: row.name,
  context: row.context,
  oursInstructions: row.ours.instructions,
  clangInstructions: row.clang.instructions,
  oursJitedBytes: row.ours.jitedBytes,
  clangJitedBytes: row.clang.jitedBytes,
  oursExecuted: Number(row.ours.executed.toFixed(2)),
  clangExecuted: Number(row.clang.executed.toFixed(2)),
  oursNs: Number(row.ours.nanoseconds.toFixed(3)),
  clangNs: Number(row.clang.nanoseconds.toFixed(3)),
  emptyNs: Number(row.baselineNanoseconds.toFixed(3)),
  ratio: Number(row.ratio.toFixed(4)),
  ...(row.legacy && {
    legacyInstructions: row.legacy.instructions,
    legacyExecuted: Number(row.legacy.executed.toFixed(2)),
    legacyNs: Number(row.legacy.nanoseconds.toFixed(3)),
    legacyRatio: Number((row.legacy.nanoseconds / row.clang.nanoseconds).toFixed(4)),
  }),
  mismatches: row.mismatches.length,
}));
console.log(JSON.stringify(summary));
