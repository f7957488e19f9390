/**
 * Capture throughput: `netbpf capture -w` against `tcpdump -w` on the same
 * traffic. A veth pair joins two network namespaces (names nb-cap-bench-*);
 * each trial starts one capturer on side A (ingress, `udp dst port P`,
 * 8 MiB buffer for both), sends a fixed burst of UDP datagrams from side B as
 * fast as Node can, waits for the capturer to catch up, stops it with SIGINT
 * and counts the packets in the file it wrote. CPU is the capturer's own
 * user + system time (from /proc/PID/stat just before SIGINT); the kernel
 * work done in the sender's softirq (our tc program, tcpdump's AF_PACKET
 * copy) is not in either number. Start-up CPU (Node, compiling and loading;
 * libpcap's setup) is reported apart from the CPU spent while capturing. Trials alternate the two tools; medians.
 *
 * usage: node dist/bench/capture-throughput.js [packets per trial] [trials]
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readCaptureFile } from "../src/pcap/capture-file.js";

const packets = Number(process.argv[2] ?? 200_000);
const trials = Number(process.argv[3] ?? 3);
const port = 47321;
const payloadSize = 64;
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.js", import.meta.url));
const clockTicks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

const tag = randomBytes(2).toString("hex");
const sideA = { namespace: `nb-cap-bench-${tag}-a`, interface: `nb-cap-bn${tag}a`, address: "192.0.2.1" };
const sideB = { namespace: `nb-cap-bench-${tag}-b`, interface: `nb-cap-bn${tag}b`, address: "192.0.2.2" };

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

const senderScript = `
import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
const payload = Buffer.alloc(${payloadSize}, 0x61);
const deadline = Date.now() + 20000;
let sent = 0;
while (sent < ${packets} && Date.now() < deadline) {
  const batch = Math.min(500, ${packets} - sent);
  await Promise.all(Array.from({ length: batch }, () => new Promise((resolve) => socket.send(payload, ${port}, "${sideA.address}", resolve))));
  sent += batch;
}
socket.close();
console.log(sent);
`;

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

interface Trial {
  sent: number;
  delivered: number;
  /** CPU while the traffic was captured (after "listening on"). */
  cpuSeconds: number;
  /** CPU spent starting up (loading, compiling, attaching). */
  startupCpuSeconds: number;
  reportedDrops?: number;
}

async function trial(tool: "netbpf" | "tcpdump", directory: string, index: number): Promise<Trial> {
  const output = join(directory, `${tool}-${index}.pcap`);
  const args = tool === "netbpf"
    ? [process.execPath, cliPath, "capture", "-i", sideA.interface, "-Q", "in", "-B", "8192", "-w", output, "udp", "dst", "port", String(port)]
    : ["tcpdump", "-i", sideA.interface, "-Q", "in", "-B", "8192", "-n", "-w", output, "udp", "dst", "port", String(port)];
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
  const cpuAtStart = cpuSeconds(child.pid!);
  try {
    const sent = Number(run("ip", ["netns", "exec", sideB.namespace, process.execPath, "--input-type=module", "-e", senderScript]).trim());
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const cpu = cpuSeconds(child.pid!);
    child.kill("SIGINT");
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(killer);
    const delivered = readCaptureFile(output).packets.length;
    const drops = /(\d+) packets dropped by kernel/.exec(stderr);
    return { sent, delivered, cpuSeconds: cpu - cpuAtStart, startupCpuSeconds: cpuAtStart, reportedDrops: drops ? Number(drops[1]) : undefined };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const directory = mkdtempSync(join(tmpdir(), "nb-cap-bench-"));
try {
  createTestbed();
  const results: Record<"netbpf" | "tcpdump", Trial[]> = { netbpf: [], tcpdump: [] };
  for (let i = 0; i < trials; i++) {
    for (const tool of i % 2 === 0 ? (["netbpf", "tcpdump"] as const) : (["tcpdump", "netbpf"] as const)) {
      results[tool].push(await trial(tool, directory, i));
    }
  }
  const summary = (list: Trial[]) => ({
    sentMedian: median(list.map((t) => t.sent)),
    deliveredMedian: median(list.map((t) => t.delivered)),
    deliveredFractionMedian: median(list.map((t) => t.delivered / t.sent)),
    cpuSecondsMedian: median(list.map((t) => t.cpuSeconds)),
    startupCpuSecondsMedian: median(list.map((t) => t.startupCpuSeconds)),
    cpuMicrosecondsPerPacketMedian: median(list.map((t) => (t.cpuSeconds * 1e6) / Math.max(1, t.delivered))),
    reportedDrops: list.map((t) => t.reportedDrops ?? null),
    trials: list,
  });
  const netbpf = summary(results.netbpf);
  const tcpdump = summary(results.tcpdump);
  process.stdout.write(`${JSON.stringify({
    benchmark: "capture-throughput",
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage: loadavg() },
    packetsPerTrial: packets,
    payloadBytes: payloadSize,
    trials,
    netbpf,
    tcpdump,
    ratios: {
      deliveredNetbpfOverTcpdump: netbpf.deliveredMedian / Math.max(1, tcpdump.deliveredMedian),
      cpuNetbpfOverTcpdump: netbpf.cpuSecondsMedian / Math.max(1e-9, tcpdump.cpuSecondsMedian),
      cpuPerPacketNetbpfOverTcpdump: netbpf.cpuMicrosecondsPerPacketMedian / Math.max(1e-9, tcpdump.cpuMicrosecondsPerPacketMedian),
    },
  }, null, 2)}\n`);
} finally {
  destroyTestbed();
  rmSync(directory, { recursive: true, force: true });
}
