/**
 * Kernel BTF parse cost: time and memory of loadKernelBtf() plus a first name
 * lookup, each measured in a fresh child process; prints medians and the targets.
 * Run: npm run build && node dist/bench/btf-parse.js [runs]
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { median } from "./support/statistics.js";

const timeTargetMilliseconds = 150;
const memoryTargetMegabytes = 60;

interface Sample {
  /** Baseline in the same process: just reading the file. */
  readMilliseconds: number;
  parseMilliseconds: number;
  firstLookupMilliseconds: number;
  fieldQueryMilliseconds: number;
  rssMegabytes: number;
  heapAndExternalMegabytes: number;
  types: number;
  bytes: number;
}

async function measureOnce(): Promise<Sample> {
  const { loadKernelBtf, kernelBtfPath } = await import("../src/btf/kernel-btf.js");
  const { readFileSync } = await import("node:fs");
  const readStart = performance.now();
  readFileSync(kernelBtfPath);
  const readMilliseconds = performance.now() - readStart;
  globalThis.gc?.();
  const before = process.memoryUsage();
  const start = performance.now();
  const btf = loadKernelBtf();
  const parsed = performance.now();
  btf.findByName("sk_buff", "struct");
  const looked = performance.now();
  btf.fieldOffset("sk_buff", "len");
  btf.field("sock.__sk_common.skc_dport");
  const queried = performance.now();
  const after = process.memoryUsage();
  return {
    readMilliseconds,
    parseMilliseconds: parsed - start,
    firstLookupMilliseconds: looked - parsed,
    fieldQueryMilliseconds: queried - looked,
    rssMegabytes: (after.rss - before.rss) / 1e6,
    heapAndExternalMegabytes: (after.heapUsed + after.external + after.arrayBuffers - before.heapUsed - before.external - before.arrayBuffers) / 1e6,
    types: btf.typeCount - 1,
    bytes: btf.bytes.byteLength,
  };
}

if (process.argv[2] === "--child") {
  process.stdout.write(JSON.stringify(await measureOnce()));
} else {
  const runs = Number(process.argv[2] ?? 7);
  const samples: Sample[] = [];
  for (let run = 0; run < runs; run++) {
    const output = execFileSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "--child"], { encoding: "utf8" });
    samples.push(JSON.parse(output) as Sample);
  }
  const pick = (key: keyof Sample) => median(samples.map((sample) => sample[key]));
  const total = pick("parseMilliseconds") + pick("firstLookupMilliseconds");
  console.log(`kernel BTF: ${samples[0]!.bytes} bytes, ${samples[0]!.types} types; median of ${runs} fresh processes`);
  console.log(`  baseline, readFileSync of the file alone: ${pick("readMilliseconds").toFixed(1)} ms`);
  console.log(`  parse (read + index): ${pick("parseMilliseconds").toFixed(1)} ms (${(pick("parseMilliseconds") / pick("readMilliseconds")).toFixed(1)}x the baseline)`);
  console.log(`  first lookup by name (builds the name-offset index): ${pick("firstLookupMilliseconds").toFixed(1)} ms`);
  console.log(`  two field queries: ${pick("fieldQueryMilliseconds").toFixed(2)} ms`);
  console.log(`  parse + first lookup: ${total.toFixed(1)} ms (target < ${timeTargetMilliseconds} ms) ${total < timeTargetMilliseconds ? "OK" : "OVER"}`);
  console.log(`  rss delta: ${pick("rssMegabytes").toFixed(1)} MB; heap+external delta: ${pick("heapAndExternalMegabytes").toFixed(1)} MB (target < ${memoryTargetMegabytes} MB) ${pick("rssMegabytes") < memoryTargetMegabytes ? "OK" : "OVER"}`);
}
