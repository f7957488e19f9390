/**
 * Packets saved under heavy loopback TCP: `netbpf capture -i lo -w` against
 * `tcpdump -i lo -w` while iperf3 pushes two parallel streams (-P 2) over the
 * loopback of a network namespace made for the run (name nbpf-lotcp-*), full
 * snap length and each tool's default buffer. Per trial: start one capturer,
 * wait for its "listening on" line, run the iperf3 client, wait a second,
 * stop the capturer with SIGINT and count the records of the file it wrote
 * (read header by header: the files are gigabytes) and the drops it reported.
 * Also the capturer's CPU while capturing (schedstat) and iperf3's throughput
 * while captured, with trials of no capture for reference. Tools rotate per
 * round; min / median / max per figure. The machine is shared: expect noise.
 *
 * usage: node dist/bench/capture-loopback-tcp.js [seconds of traffic per trial] [trials]
 * NETBPF_BENCH_PREFIX names the namespace (default "nbpf"; at most 6 characters).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuSeconds } from "./support/process-cpu.js";
import { median, rotatedTrials, spread } from "./support/statistics.js";

const seconds = Number(process.argv[2] ?? 3);
const trials = Number(process.argv[3] ?? 5);
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.cjs", import.meta.url));
const prefix = (process.env.NETBPF_BENCH_PREFIX ?? "nbpf").slice(0, 6);
const namespace = `${prefix}-lotcp-${randomBytes(2).toString("hex")}`;
const port = 5201;

type Tool = "netbpf" | "tcpdump" | "none";

interface Trial {
  saved: number;
  dropped: number;
  /** The capturer's CPU from its "listening on" line to just before SIGINT. */
  cpuSeconds: number;
  /** iperf3's throughput while captured (receiver side, bits per second). */
  bitsPerSecond: number;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 30_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
}

/** Records in a pcap file, read 16-byte header by header (the payloads are skipped). */
function countPcapRecords(path: string): number {
  const fd = openSync(path, "r");
  try {
    const header = Buffer.alloc(24);
    if (readSync(fd, header, 0, 24, 0) < 24) return 0;
    const little = header.readUInt32LE(0) === 0xa1b2c3d4 || header.readUInt32LE(0) === 0xa1b23c4d;
    if (!little && header.readUInt32BE(0) !== 0xa1b2c3d4 && header.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`${path} is not a pcap file`);
    let offset = 24;
    let records = 0;
    const record = Buffer.alloc(16);
    while (readSync(fd, record, 0, 16, offset) === 16) {
      const length = little ? record.readUInt32LE(8) : record.readUInt32BE(8);
      offset += 16 + length;
      records++;
    }
    return records;
  } finally {
    closeSync(fd);
  }
}

function iperfClient(): number {
  const result = spawnSync("ip", ["netns", "exec", namespace, "iperf3", "-c", "127.0.0.1", "-p", String(port), "-P", "2", "-t", String(seconds), "-J"], { encoding: "utf8", timeout: (seconds + 30) * 1000 });
  if (result.status !== 0) throw new Error(`iperf3 client failed: ${result.stderr || result.stdout.slice(0, 500)}`);
  return (JSON.parse(result.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
}

async function startCapturer(tool: Exclude<Tool, "none">, output: string): Promise<{ child: ChildProcess; stderr: () => string; exited: Promise<void> }> {
  const args = tool === "netbpf"
    ? [process.execPath, cliPath, "capture", "-i", "lo", "-w", output, "tcp", "port", String(port)]
    : ["tcpdump", "-i", "lo", "-n", "-w", output, "tcp", "port", String(port)];
  const child = spawn("ip", ["netns", "exec", namespace, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  child.stderr!.on("data", (chunk: Buffer) => { stderr += chunk.toString(); });
  const deadline = Date.now() + 20_000;
  while (!stderr.includes("listening on")) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${tool} did not start: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { child, stderr: () => stderr, exited };
}

async function trial(tool: Tool, directory: string, round: number): Promise<Trial> {
  if (tool === "none") return { saved: 0, dropped: 0, cpuSeconds: 0, bitsPerSecond: iperfClient() };
  const output = join(directory, `${tool}-${round}.pcap`);
  const capturer = await startCapturer(tool, output);
  try {
    const cpuAtStart = cpuSeconds(capturer.child.pid!);
    const bitsPerSecond = iperfClient();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const cpu = cpuSeconds(capturer.child.pid!) - cpuAtStart;
    capturer.child.kill("SIGINT");
    const killer = setTimeout(() => capturer.child.kill("SIGKILL"), 30_000);
    await capturer.exited;
    clearTimeout(killer);
    const drops = /(\d+) packets? dropped by kernel/.exec(capturer.stderr());
    return { saved: countPcapRecords(output), dropped: drops ? Number(drops[1]) : Number.NaN, cpuSeconds: cpu, bitsPerSecond };
  } finally {
    if (capturer.child.exitCode === null && capturer.child.signalCode === null) capturer.child.kill("SIGKILL");
    rmSync(output, { force: true });
  }
}

const directory = mkdtempSync(join(tmpdir(), `${prefix}-lotcp-`));
let server: ChildProcess | undefined;
try {
  run("ip", ["netns", "add", namespace]);
  run("ip", ["-n", namespace, "link", "set", "lo", "up"]);
  server = spawn("ip", ["netns", "exec", namespace, "iperf3", "-s", "-p", String(port)], { stdio: "ignore" });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const results = await rotatedTrials<Tool, Trial>(["netbpf", "tcpdump", "none"], trials, (tool, round) => trial(tool, directory, round));
  const summary = (list: Trial[]) => ({
    saved: spread(list.map((t) => t.saved)),
    dropped: spread(list.map((t) => t.dropped)),
    savedFraction: spread(list.map((t) => t.saved / Math.max(1, t.saved + t.dropped))),
    cpuSeconds: spread(list.map((t) => t.cpuSeconds)),
    cpuMicrosecondsPerSavedPacket: spread(list.map((t) => (t.cpuSeconds * 1e6) / Math.max(1, t.saved))),
    gigabitsPerSecond: spread(list.map((t) => t.bitsPerSecond / 1e9)),
    trials: list,
  });
  const netbpf = summary(results.netbpf);
  const tcpdump = summary(results.tcpdump);
  const none = summary(results.none);
  const line = (name: string, values: { min: number; median: number; max: number }, digits = 0) =>
    `  ${name.padEnd(34)} ${values.min.toFixed(digits)} / ${values.median.toFixed(digits)} / ${values.max.toFixed(digits)}`;
  process.stderr.write(`capture-loopback-tcp: iperf3 -P 2 for ${seconds} s over a namespace's lo, full snap length, default buffers, ${trials} trials, min / median / max; ${cpus().length} CPUs (${cpus()[0]?.model}), load ${loadavg()[0]!.toFixed(1)}\n`);
  for (const [name, result] of [["netbpf", netbpf], ["tcpdump", tcpdump]] as const) {
    process.stderr.write(`${name}:\n${line("packets saved", result.saved)}\n${line("packets dropped (reported)", result.dropped)}\n${line("saved fraction", result.savedFraction, 3)}\n`);
    process.stderr.write(`${line("capturer CPU (s)", result.cpuSeconds, 3)}\n${line("CPU per saved packet (µs)", result.cpuMicrosecondsPerSavedPacket, 2)}\n${line("iperf3 Gbit/s while captured", result.gigabitsPerSecond, 2)}\n`);
  }
  process.stderr.write(`no capture:\n${line("iperf3 Gbit/s", none.gigabitsPerSecond, 2)}\n`);
  const ratios = {
    savedNetbpfOverTcpdump: netbpf.saved.median / Math.max(1, tcpdump.saved.median),
    savedFractionNetbpfOverTcpdump: netbpf.savedFraction.median / Math.max(1e-9, tcpdump.savedFraction.median),
    cpuPerSavedPacketNetbpfOverTcpdump: netbpf.cpuMicrosecondsPerSavedPacket.median / Math.max(1e-9, tcpdump.cpuMicrosecondsPerSavedPacket.median),
  };
  process.stderr.write(`packets saved (medians): netbpf ${ratios.savedNetbpfOverTcpdump.toFixed(2)}x tcpdump's; saved fraction ${ratios.savedFractionNetbpfOverTcpdump.toFixed(2)}x; CPU per saved packet ${ratios.cpuPerSavedPacketNetbpfOverTcpdump.toFixed(2)}x\n`);
  process.stdout.write(`${JSON.stringify({ benchmark: "capture-loopback-tcp", machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage: loadavg() }, seconds, trials, netbpf, tcpdump, none, ratios }, null, 2)}\n`);
} finally {
  if (server !== undefined && server.exitCode === null) server.kill("SIGTERM");
  spawnSync("ip", ["netns", "del", namespace], { timeout: 20_000 });
  rmSync(directory, { recursive: true, force: true });
}
