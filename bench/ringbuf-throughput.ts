/**
 * Ring buffer events per second delivered to JavaScript, against a C
 * consumer (libbpf's ring_buffer__poll, built here with clang and Debian's
 * libbpf-dev) reading the same producer.
 *
 * Design (the same for every consumer): this process creates the ring
 * (1 MiB), a counters map and the producer program (a socket filter that
 * reserves and submits one 64-byte numbered record per run, counting failed
 * reservations in counters[1]), and pins them in bpffs. The consumer runs
 * as a child process opening the pins; once it is ready, a producer child
 * runs the program with BPF_PROG_TEST_RUN until N events are made. The
 * consumer counts records, checks their sequence numbers (gaps = losses,
 * disorder = never), and times first record to last. Loss is "explained"
 * when received + lost counter == produced and the gaps equal the lost
 * count. Trials alternate consumers; medians are reported.
 *
 * usage: node dist/bench/ringbuf-throughput.js [live events per trial] [trials]
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BpfMap } from "../src/core/map.js";
import { MapType } from "../src/sys/bpf-constants.js";
import { createCounters, ringBufferProducer, testPacket } from "../test/support/event-producers.js";

const liveEvents = Number(process.argv[2] ?? 5_000_000);
const trials = Number(process.argv[3] ?? 3);
const liveRingSize = 1 << 20;
const drainRingSize = 1 << 28;
const recordSize = 64;

const here = fileURLToPath(new URL(".", import.meta.url));
const source = fileURLToPath(new URL("../../bench/c/ringbuf-consumer.c", import.meta.url));
const build = mkdtempSync(join(tmpdir(), "nb-ringbuf-bench-"));
const consumerBinary = join(build, "ringbuf-consumer");
execFileSync("clang", ["-O2", "-o", consumerBinary, source, "-lbpf"], { stdio: "inherit" });

interface Outcome {
  received: number;
  gaps: number;
  disorder: number;
  lost: number;
  elapsedNs: number;
  cpuNs: number;
}

function run(command: string, args: string[], onReady?: () => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      const before = output;
      output += chunk;
      if (!before.includes("ready\n") && output.includes("ready\n")) onReady?.();
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(" ")} exited with ${code}`))));
  });
}

const lastJson = (text: string): any => JSON.parse(text.trim().split("\n").pop()!);

type Consumer = "c" | "js-in-place" | "js-batch" | "js-batches" | "js-iterator";
type Scenario = "drain" | "live";

/**
 * drain: the ring (64 MiB) is filled first, then the consumer empties it:
 * the consumer's own capacity, no wakeups involved.
 * live: a producer process runs while the consumer reads a 1 MiB ring:
 * delivery under load, wakeups and (when the consumer falls behind) losses.
 */
async function trial(consumer: Consumer, scenario: Scenario, index: number): Promise<Outcome & { produced: number; producerNs: number }> {
  const pins = `/sys/fs/bpf/nb-ringbuf-bench-${process.pid}-${index}`;
  mkdirSync(pins);
  const size = scenario === "drain" ? drainRingSize : liveRingSize;
  const produced = scenario === "drain" ? Math.floor((size / (recordSize + 8)) * 0.95) : liveEvents;
  const ring = BpfMap.create({ type: MapType.Ringbuf, maxEntries: size, name: "nb_rb_bench" });
  const counters = createCounters();
  const program = ringBufferProducer({ ringBuffer: ring, counters, recordSize });
  try {
    ring.pin(join(pins, "ring"));
    counters.pin(join(pins, "counters"));
    program.pin(join(pins, "producer"));
    const consumerArgs = [join(pins, "ring"), join(pins, "counters"), String(produced)];
    let producer: Promise<string> | undefined;
    let producerNs = 0;
    if (scenario === "drain") {
      const started = process.hrtime.bigint();
      program.run({ data: testPacket, repeat: produced });
      producerNs = Number(process.hrtime.bigint() - started);
    }
    const startProducer = (): void => {
      if (scenario === "live") {
        producer = run(process.execPath, [join(here, "support", "ringbuf-producer-child.js"), join(pins, "producer"), String(produced), "1000000"]);
      }
    };
    const consumed = consumer === "c"
      ? run(consumerBinary, consumerArgs, startProducer)
      : run(process.execPath, [join(here, "support", "ringbuf-consumer-child.js"), consumer.slice(3), ...consumerArgs], startProducer);
    const outcome = lastJson(await consumed) as Outcome;
    if (producer) producerNs = lastJson(await producer).elapsedNs;
    return { ...outcome, produced, producerNs };
  } finally {
    program.close();
    counters.close();
    ring.close();
    rmSync(pins, { recursive: true, force: true });
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const consumers = ["c", "js-in-place", "js-batch", "js-batches", "js-iterator"] as const;
const scenarios = ["drain", "live"] as const;
type Row = Outcome & { produced: number; producerNs: number; rate: number; cpuRate: number };
const results = new Map<string, Row[]>();
try {
  let index = 0;
  for (let t = 0; t < trials; t++) {
    for (const scenario of scenarios) {
      for (const consumer of consumers) {
        const outcome = await trial(consumer, scenario, index++);
        const key = `${scenario} ${consumer}`;
        if (!results.has(key)) results.set(key, []);
        results.get(key)!.push({ ...outcome, rate: outcome.received / (outcome.elapsedNs / 1e9), cpuRate: outcome.received / (outcome.cpuNs / 1e9) });
      }
    }
  }
} finally {
  rmSync(build, { recursive: true, force: true });
}

console.log(`ring buffer throughput: ${recordSize}-byte records, ${trials} trials (medians), ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
console.log(`drain: ${drainRingSize >> 20} MiB ring filled first, then emptied; live: ${liveEvents} events through a ${liveRingSize >> 10} KiB ring while a producer process runs`);
for (const scenario of scenarios) {
  const cRate = median(results.get(`${scenario} c`)!.map((r) => r.rate));
  const cCpuRate = median(results.get(`${scenario} c`)!.map((r) => r.cpuRate));
  for (const consumer of consumers) {
    const rows = results.get(`${scenario} ${consumer}`)!;
    const rate = median(rows.map((r) => r.rate));
    const cpuRate = median(rows.map((r) => r.cpuRate));
    // Every produced event must be either received or counted lost by the program.
    const unexplained = Math.max(...rows.map((r) => Math.abs(r.produced - r.received - r.lost)));
    console.log(
      `${scenario.padEnd(6)} ${consumer.padEnd(12)} ${(rate / 1e6).toFixed(2).padStart(6)} M events/s wall (${(rate / cRate).toFixed(2)} of C)` +
        ` ${(cpuRate / 1e6).toFixed(2).padStart(6)} M events per CPU-second (${(cpuRate / cCpuRate).toFixed(2)} of C)` +
        `  received ${median(rows.map((r) => r.received))} of ${rows[0]!.produced}, lost ${median(rows.map((r) => r.lost))} (medians)` +
        `  unexplained loss ${unexplained}  out of order ${rows.reduce((a, r) => a + r.disorder, 0)}` +
        `  producer ${(median(rows.map((r) => r.produced / (r.producerNs / 1e9))) / 1e6).toFixed(2)} M runs/s`,
    );
  }
}
