/**
 * Capture throughput: `netbpf capture -w` against `tcpdump -w` on the same
 * traffic. A veth pair joins two network namespaces (names nbpf-cap-bench-*);
 * each trial starts one capturer on side A (ingress, `udp dst port P`,
 * 8 MiB buffer for both), sends a fixed burst of 64-byte UDP datagrams from
 * side B as fast as one thread can (bench/c/udp-flood.c, sendmmsg, built
 * with clang in the run), waits for the capturer to catch up, stops it with
 * SIGINT and counts the packets in the file it wrote. CPU is the capturer's own
 * run time (all threads' schedstat, ns resolution, just before SIGINT); the kernel
 * work done in the sender's softirq (our tc program, tcpdump's AF_PACKET
 * copy) is not in either number; it shows in the sender's CPU instead
 * (veth delivers in the sender's context, and this kernel has no separate
 * IRQ time accounting), measured against trials with no capturer at all
 * ("none"): the sender's CPU per packet over none's is the kernel-side cost
 * of capturing a packet; with the sender's rate. Start-up CPU (Node,
 * compiling and loading; libpcap's setup) is reported apart from the CPU
 * spent while capturing, and start-to-ready is the wall time from spawning
 * the capturer to its "listening on" line. Trials rotate the tools;
 * min / median / max per figure. The machine is shared: expect noise.
 *
 * usage: node dist/bench/capture-throughput.js [packets per trial] [trials]
 * Set NETBPF_BENCH_NODE_ARGS to pass options to the netbpf capturer's Node.js
 * (e.g. "--cpu-prof --cpu-prof-dir=/tmp/profiles" to profile it), and
 * NETBPF_BENCH_PREFIX to name the namespaces and veths (default "nbpf"; at most 6 characters).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readCaptureFile } from "../src/pcap/capture-file.js";
import { cpuSeconds, userAndSystemSeconds } from "./support/process-cpu.js";
import { median, rotatedTrials, spread } from "./support/statistics.js";

const packets = Number(process.argv[2] ?? 500_000);
const trials = Number(process.argv[3] ?? 5);
const port = 47321;
const payloadSize = 64;
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.cjs", import.meta.url));
/** Extra Node.js options for the netbpf capturer, e.g. NETBPF_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const nodeArguments = (process.env.NETBPF_BENCH_NODE_ARGS ?? "").split(" ").filter((word) => word !== "");

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

const tag = randomBytes(2).toString("hex");
/** Namespaces and veths are named after this (interface names have at most 15 characters). */
const prefix = (process.env.NETBPF_BENCH_PREFIX ?? "nbpf").slice(0, 6);
const sideA = { namespace: `${prefix}-cap-bench-${tag}-a`, interface: `${prefix}-cb${tag}a`, address: "192.0.2.1" };
const sideB = { namespace: `${prefix}-cap-bench-${tag}-b`, interface: `${prefix}-cb${tag}b`, address: "192.0.2.2" };

function createTestbed(): void {
  for (const side of [sideA, sideB]) run("ip", ["netns", "add", side.namespace]);
  run("ip", ["link", "add", sideA.interface, "netns", sideA.namespace, "type", "veth", "peer", "name", sideB.interface, "netns", sideB.namespace]);
  for (const side of [sideA, sideB]) {
    run("ip", ["-n", side.namespace, "addr", "add", `${side.address}/24`, "dev", side.interface]);
    run("ip", ["-n", side.namespace, "link", "set", side.interface, "up"]);
  }
}

function destroyTestbed(): void {
  for (const side of [sideA, sideB]) spawnSync("ip", ["netns", "del", side.namespace], { timeout: 20_000 });
}

const floodSource = fileURLToPath(new URL("../../bench/c/udp-flood.c", import.meta.url));

interface Trial {
  sent: number;
  /** Wall seconds from spawning the capturer to its "listening on" line. */
  readySeconds: number;
  /** The sender's wall time and CPU (user + system, its softirq work included). */
  senderSeconds: number;
  senderCpuSeconds: number;
  delivered: number;
  /** CPU while the traffic was captured (after "listening on"). */
  cpuSeconds: number;
  /** CPU spent starting up (loading, compiling, attaching). */
  startupCpuSeconds: number;
  /** The CPU while capturing split into user and system time (10 ms steps). */
  userSeconds: number;
  systemSeconds: number;
  reportedDrops?: number;
}

/** Runs the C sender in side B: its own wall time and CPU (CLOCK_PROCESS_CPUTIME_ID, ns resolution). */
function send(flood: string): { sent: number; seconds: number; cpuSeconds: number } {
  const result = spawnSync("ip", ["netns", "exec", sideB.namespace, flood, sideA.address, String(port), String(packets), String(payloadSize)], { encoding: "utf8", timeout: 120_000 });
  if (result.status !== 0) throw new Error(`sender failed: ${result.stderr}`);
  const outcome = JSON.parse(result.stdout) as { sent: number; elapsed_ns: number; cpu_ns: number };
  return { sent: outcome.sent, seconds: outcome.elapsed_ns / 1e9, cpuSeconds: outcome.cpu_ns / 1e9 };
}

async function trial(tool: Tool, directory: string, index: number, flood: string): Promise<Trial> {
  if (tool === "none") {
    const sender = send(flood);
    return { sent: sender.sent, readySeconds: 0, senderSeconds: sender.seconds, senderCpuSeconds: sender.cpuSeconds, delivered: 0, cpuSeconds: 0, startupCpuSeconds: 0, userSeconds: 0, systemSeconds: 0 };
  }
  const output = join(directory, `${tool}-${index}.pcap`);
  const args = tool === "netbpf"
    ? [process.execPath, ...nodeArguments, cliPath, "capture", "-i", sideA.interface, "-Q", "in", "-B", "8192", "-w", output, "udp", "dst", "port", String(port)]
    : ["tcpdump", "-i", sideA.interface, "-Q", "in", "-B", "8192", "-n", "-w", output, "udp", "dst", "port", String(port)];
  const spawned = process.hrtime.bigint();
  const child = spawn("ip", ["netns", "exec", sideA.namespace, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${tool} did not start: ${stderr}`)), 20_000);
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const readySeconds = Number(process.hrtime.bigint() - spawned) / 1e9;
  // `ip netns exec` execs the capturer: the child's pid is the capturer's.
  const cpuAtStart = cpuSeconds(child.pid!);
  const splitAtStart = userAndSystemSeconds(child.pid!);
  try {
    const sender = send(flood);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const cpu = cpuSeconds(child.pid!);
    const split = userAndSystemSeconds(child.pid!);
    child.kill("SIGINT");
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(killer);
    const delivered = readCaptureFile(output).packets.length;
    const drops = /(\d+) packets? dropped by kernel/.exec(stderr);
    return {
      sent: sender.sent, readySeconds, senderSeconds: sender.seconds, senderCpuSeconds: sender.cpuSeconds,
      delivered, cpuSeconds: cpu - cpuAtStart, startupCpuSeconds: cpuAtStart,
      userSeconds: split.user - splitAtStart.user, systemSeconds: split.system - splitAtStart.system, reportedDrops: drops ? Number(drops[1]) : undefined,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

type Tool = "netbpf" | "tcpdump" | "none";
const range = spread;

const directory = mkdtempSync(join(tmpdir(), `${prefix}-cap-bench-`));
try {
  const flood = join(directory, "udp-flood");
  execFileSync("clang", ["-O2", "-o", flood, floodSource], { stdio: "inherit" });
  createTestbed();
  const results = await rotatedTrials<Tool, Trial>(["netbpf", "tcpdump", "none"], trials, (tool, round) => trial(tool, directory, round, flood));
  const summary = (list: Trial[]) => ({
    sentMedian: median(list.map((t) => t.sent)),
    deliveredMedian: median(list.map((t) => t.delivered)),
    deliveredFractionMedian: median(list.map((t) => t.delivered / t.sent)),
    cpuSecondsMedian: median(list.map((t) => t.cpuSeconds)),
    startupCpuSecondsMedian: median(list.map((t) => t.startupCpuSeconds)),
    cpuMicrosecondsPerPacketMedian: median(list.map((t) => (t.cpuSeconds * 1e6) / Math.max(1, t.delivered))),
    reportedDrops: list.map((t) => t.reportedDrops ?? null),
    ranges: {
      delivered: range(list.map((t) => t.delivered)),
      dropped: range(list.map((t) => t.reportedDrops ?? t.sent - t.delivered)),
      captureCpuSeconds: range(list.map((t) => t.cpuSeconds)),
      startupCpuSeconds: range(list.map((t) => t.startupCpuSeconds)),
      readySeconds: range(list.map((t) => t.readySeconds)),
      senderCpuSeconds: range(list.map((t) => t.senderCpuSeconds)),
      senderCpuNanosecondsPerPacket: range(list.map((t) => (t.senderCpuSeconds * 1e9) / t.sent)),
      senderPacketsPerSecond: range(list.map((t) => t.sent / t.senderSeconds)),
    },
    trials: list,
  });
  const netbpf = summary(results.netbpf);
  const tcpdump = summary(results.tcpdump);
  const none = summary(results.none);
  const line = (name: string, values: { min: number; median: number; max: number }, digits = 3) =>
    `  ${name.padEnd(34)} ${values.min.toFixed(digits)} / ${values.median.toFixed(digits)} / ${values.max.toFixed(digits)}`;
  process.stderr.write(`capture-throughput: ${packets} UDP packets of ${payloadSize} bytes per trial, ${trials} trials, min / median / max; ${cpus().length} CPUs (${cpus()[0]?.model}), load ${loadavg()[0]!.toFixed(1)}\n`);
  for (const [name, result] of [["netbpf", netbpf], ["tcpdump", tcpdump], ["no capture", none]] as const) {
    process.stderr.write(`${name}:\n`);
    if (name !== "no capture") {
      process.stderr.write(`${line("packets saved", result.ranges.delivered, 0)}\n${line("packets dropped", result.ranges.dropped, 0)}\n`);
      process.stderr.write(`${line("capturer CPU while capturing (s)", result.ranges.captureCpuSeconds)}\n${line("capturer start-up CPU (s)", result.ranges.startupCpuSeconds)}\n${line("start to ready (s)", result.ranges.readySeconds)}\n`);
    }
    process.stderr.write(`${line("sender CPU (s)", result.ranges.senderCpuSeconds)}\n${line("sender CPU per packet (ns)", result.ranges.senderCpuNanosecondsPerPacket, 0)}\n${line("sender rate (packets/s)", result.ranges.senderPacketsPerSecond, 0)}\n`);
  }
  const extra = (result: typeof netbpf) => result.ranges.senderCpuNanosecondsPerPacket.median - none.ranges.senderCpuNanosecondsPerPacket.median;
  process.stderr.write(`kernel-side cost per captured packet (sender CPU per packet over no capture, medians): netbpf ${extra(netbpf).toFixed(0)} ns, tcpdump ${extra(tcpdump).toFixed(0)} ns\n`);
  process.stderr.write(`sender rate while captured (medians): netbpf ${(netbpf.ranges.senderPacketsPerSecond.median / tcpdump.ranges.senderPacketsPerSecond.median).toFixed(2)}x tcpdump's, ${(netbpf.ranges.senderPacketsPerSecond.median / none.ranges.senderPacketsPerSecond.median).toFixed(2)}x no capture's\n`);
  process.stdout.write(`${JSON.stringify({
    benchmark: "capture-throughput",
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage: loadavg() },
    packetsPerTrial: packets,
    payloadBytes: payloadSize,
    trials,
    netbpf,
    tcpdump,
    none,
    ratios: {
      senderExtraCpuNetbpfOverTcpdump: (netbpf.ranges.senderCpuNanosecondsPerPacket.median - none.ranges.senderCpuNanosecondsPerPacket.median) / Math.max(1e-9, tcpdump.ranges.senderCpuNanosecondsPerPacket.median - none.ranges.senderCpuNanosecondsPerPacket.median),
      senderRateNetbpfOverTcpdump: netbpf.ranges.senderPacketsPerSecond.median / tcpdump.ranges.senderPacketsPerSecond.median,
      readyNetbpfOverTcpdump: netbpf.ranges.readySeconds.median / Math.max(1e-9, tcpdump.ranges.readySeconds.median),
      deliveredNetbpfOverTcpdump: netbpf.deliveredMedian / Math.max(1, tcpdump.deliveredMedian),
      cpuNetbpfOverTcpdump: netbpf.cpuSecondsMedian / Math.max(1e-9, tcpdump.cpuSecondsMedian),
      cpuPerPacketNetbpfOverTcpdump: netbpf.cpuMicrosecondsPerPacketMedian / Math.max(1e-9, tcpdump.cpuMicrosecondsPerPacketMedian),
    },
  }, null, 2)}\n`);
} finally {
  destroyTestbed();
  rmSync(directory, { recursive: true, force: true });
}
