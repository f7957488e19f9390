/**
 * The cost of watching: TCP throughput over loopback (iperf3, one stream)
 * with nothing attached, with `netbpf top --json` attached (cgroup skb
 * ingress+egress on the root cgroup: every packet of the host is counted),
 * and with `netbpf top` and `netbpf tcp --json` both attached. Trials
 * alternate the three setups in the same run; medians, and each watched
 * median as a ratio of the unwatched one (target ≥ 0.97).
 *
 * On a loaded shared machine the throughput of one iperf3 stream varies far
 * more between trials than any watcher costs, so the run also measures the
 * counter's own per-packet cost in the kernel (BPF_PROG_TEST_RUN, mean of
 * many runs) against a cgroup skb program that only returns 1, in the same
 * run, and what that cost is per byte of a 64 KiB loopback skb.
 *
 * usage: node dist/bench/watch-throughput.js [seconds per trial] [trials]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Assembler } from "../src/asm/assembler.js";
import { compileCaptureFilter } from "../src/capture/capture-filter.js";
import { u32, u64 } from "../src/core/codec.js";
import { BpfMap } from "../src/core/map.js";
import { Program } from "../src/core/program.js";
import { LinkType } from "../src/pcap/link-type.js";
import { trafficCounterProgram, trafficCountsName, trafficKeySize, trafficStatisticKinds, trafficStatisticsName, trafficValueSize, type TrafficGrouping } from "../src/programs/traffic-counter.js";
import { AttachType, MapType, ProgramType } from "../src/sys/bpf-constants.js";
import { median } from "./support/statistics.js";

const seconds = Number(process.argv[2] ?? 3);
const trials = Number(process.argv[3] ?? 3);
const port = 45000 + Math.floor(Math.random() * 5000);
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.cjs", import.meta.url));

type Setup = "none" | "top" | "top+tcp";

/** Starts a watcher and resolves once it has attached (it says so on stderr). */
function startWatcher(args: string[], ready: RegExp): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    const timer = setTimeout(() => resolve(child), 15_000);
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (ready.test(stderr)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(" ")} exited with ${code}: ${stderr}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGINT");
  });
}

function iperf(): number {
  const result = spawnSync("iperf3", ["-c", "127.0.0.1", "-p", String(port), "-t", String(seconds), "-J"], { encoding: "utf8", timeout: (seconds + 20) * 1000 });
  if (result.status !== 0) throw new Error(`iperf3 -c failed: ${result.stderr || result.stdout.slice(0, 500)}`);
  const report = JSON.parse(result.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return report.end.sum_received.bits_per_second;
}

async function trial(setup: Setup): Promise<number> {
  const watchers: ChildProcess[] = [];
  try {
    if (setup !== "none") watchers.push(await startWatcher(["top", "--json", "--interval", "1"], /netbpf: watching/));
    // netbpf tcp prints nothing before the first connection closes: give it a moment to attach.
    if (setup === "top+tcp") {
      watchers.push(spawn(process.execPath, [cliPath, "tcp", "--json"], { stdio: ["ignore", "ignore", "ignore"] }));
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    return iperf();
  } finally {
    for (const watcher of watchers) await stop(watcher);
  }
}

/** An Ethernet frame with an IPv4 TCP segment of `payload` bytes (test runs of cgroup skb programs start at the IP header). */
function tcpFrame(payload: number): Buffer {
  const frame = Buffer.alloc(14 + 20 + 20 + payload);
  frame.writeUInt16BE(0x0800, 12);
  frame[14] = 0x45;
  frame.writeUInt16BE(40 + payload, 16);
  frame[14 + 8] = 64;
  frame[14 + 9] = 6;
  frame.writeUInt32BE(0x7f000001, 14 + 12);
  frame.writeUInt32BE(0x7f000001, 14 + 16);
  frame.writeUInt16BE(40000, 34);
  frame.writeUInt16BE(5201, 36);
  frame[34 + 12] = 0x50;
  frame[34 + 13] = 0x18;
  return frame;
}

function perPacketCost(): void {
  const frame = tcpFrame(1448);
  const repeat = 2_000_000;
  const rounds = 5;
  const measure = (program: Program) => median(Array.from({ length: rounds }, () => program.run({ data: frame, repeat }).duration));
  using empty = Program.load({ type: ProgramType.CgroupSkb, instructions: new Assembler().return(1).finish(), name: "bench_empty", expectedAttachType: AttachType.CgroupInetEgress });
  const baseline = measure(empty);
  console.log(`watch-throughput: counter cost per packet (BPF_PROG_TEST_RUN, 1500-byte TCP packet, ${repeat} runs × ${rounds}, median): empty cgroup skb program ${baseline.toFixed(1)} ns`);
  const setups: [string, TrafficGrouping, string | undefined][] = [["by port", "port", undefined], ["by conn", "conn", undefined], ["by port, filter 'tcp port 5201'", "port", "tcp port 5201"]];
  for (const [label, by, expression] of setups) {
    using counts = BpfMap.create({ type: MapType.LruPercpuHash, keySize: trafficKeySize, valueSize: trafficValueSize, maxEntries: 16384, name: trafficCountsName });
    using statistics = BpfMap.create({ type: MapType.PercpuArray, key: u32, value: u64, maxEntries: trafficStatisticKinds, name: trafficStatisticsName });
    const filter = expression ? compileCaptureFilter(expression, LinkType.RAW, { packetMetadata: false, hook: "cgroup" }).emitter : undefined;
    using program = Program.load(
      { type: ProgramType.CgroupSkb, instructions: trafficCounterProgram({ hook: "cgroup", direction: "egress", linkHeaderLength: 0, by, processes: true, filter }), name: "bench_counter", expectedAttachType: AttachType.CgroupInetEgress },
      { maps: { [trafficCountsName]: counts, [trafficStatisticsName]: statistics as unknown as BpfMap } },
    );
    const cost = measure(program);
    // The counter runs twice per skb (sender's egress, receiver's ingress). Share of one CPU per Gbit/s of traffic:
    // loopback TCP moves 64 KiB skbs (TSO); without GSO a packet is 1500 bytes.
    const share = (bytesPerSkb: number) => ((2 * (cost - baseline)) / (bytesPerSkb * 8)) * 100;
    console.log(`  ${label.padEnd(32)} ${cost.toFixed(1)} ns (+${(cost - baseline).toFixed(1)} ns over empty) = ${share(65536).toFixed(3)} % of one CPU per Gbit/s in 64 KiB skbs, ${share(1500).toFixed(2)} % in 1500-byte packets`);
  }
}

perPacketCost();

const server = spawn("iperf3", ["-s", "-B", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
try {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const results: Record<Setup, number[]> = { none: [], top: [], "top+tcp": [] };
  for (let round = 0; round < trials; round++) {
    for (const setup of ["none", "top", "top+tcp"] as Setup[]) results[setup].push(await trial(setup));
  }
  const baseline = median(results.none);
  console.log(`watch-throughput: iperf3 TCP over loopback, ${seconds} s per trial, ${trials} trials per setup, alternating; ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  for (const setup of ["none", "top", "top+tcp"] as Setup[]) {
    const value = median(results[setup]);
    console.log(`  ${setup.padEnd(8)} median ${(value / 1e9).toFixed(2)} Gbit/s  (${results[setup].map((v) => (v / 1e9).toFixed(2)).join(", ")})  ratio ${(value / baseline).toFixed(3)}`);
  }
} finally {
  server.kill("SIGTERM");
}
