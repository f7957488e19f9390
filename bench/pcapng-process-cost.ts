/**
 * What process attribution costs in a pcapng file: `netbpf capture -w`
 * writing the same UDP flood three ways, interleaved in one run:
 * `x.pcap`, `x.pcapng --no-process` and `x.pcapng` with each packet's
 * process (comment and custom option). The capturer and the sender
 * (bench/c/udp-flood.c, built with clang in the run) share a network
 * namespace of their own (loopback only; named PREFIX-pn-TAG); the capture
 * is on lo, outbound, `udp dst port P`, so every packet belongs to the
 * sender's socket, created after the capture started: its process is known.
 * The capturer is started with `nsenter --net` (which keeps the cgroup v2
 * mount the process attribution needs). CPU is the capturer's own run time
 * while capturing (all threads' schedstat) per packet written; min / median /
 * max per way, and the ratio of medians pcapng with process / pcap.
 *
 * usage: node dist/bench/pcapng-process-cost.js [packets per trial] [trials]
 * NETBPF_BENCH_NODE_ARGS passes options to the capturer's Node.js (e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof"); NETBPF_BENCH_PREFIX names the
 * namespace (default "nbpf").
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readCaptureFile } from "../src/pcap/capture-file.js";
import { cpuSeconds } from "./support/process-cpu.js";
import { median, rotatedTrials, spread } from "./support/statistics.js";

const packets = Number(process.argv[2] ?? 200_000);
const trials = Number(process.argv[3] ?? 5);
const port = 47322;
const payloadSize = 64;
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.cjs", import.meta.url));
const floodSource = fileURLToPath(new URL("../../bench/c/udp-flood.c", import.meta.url));
const nodeArguments = (process.env.NETBPF_BENCH_NODE_ARGS ?? "").split(" ").filter((word) => word !== "");
const prefix = (process.env.NETBPF_BENCH_PREFIX ?? "nbpf").slice(0, 6);
const namespace = `${prefix}-pn-${randomBytes(2).toString("hex")}`;

const ways = {
  pcap: { file: "pcap", arguments: [] as string[] },
  pcapng: { file: "pcapng", arguments: ["--no-process"] },
  "pcapng+process": { file: "pcapng", arguments: [] as string[] },
} as const;
type Way = keyof typeof ways;

interface Trial {
  sent: number;
  written: number;
  withProcess: number;
  cpuSeconds: number;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
}

async function trial(way: Way, directory: string, index: number, flood: string): Promise<Trial> {
  const output = join(directory, `${way}-${index}.${ways[way].file}`);
  const child = spawn("nsenter", [
    `--net=/run/netns/${namespace}`, process.execPath, ...nodeArguments, cliPath, "capture", "-i", "lo", "-Q", "out", "-B", "8192",
    ...ways[way].arguments, "-w", output, "udp", "dst", "port", String(port),
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${way} did not start: ${stderr}`)), 30_000);
      child.stderr!.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes("listening on")) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    if (way === "pcapng+process" && stderr.includes("process information unavailable")) throw new Error(`no process information: ${stderr}`);
    // nsenter execs the capturer: the child's pid is the capturer's.
    const cpuAtStart = cpuSeconds(child.pid!);
    const result = spawnSync("nsenter", [`--net=/run/netns/${namespace}`, flood, "127.0.0.1", String(port), String(packets), String(payloadSize)], { encoding: "utf8", timeout: 120_000 });
    if (result.status !== 0) throw new Error(`sender failed: ${result.stderr}`);
    const sent = (JSON.parse(result.stdout) as { sent: number }).sent;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const cpu = cpuSeconds(child.pid!) - cpuAtStart;
    child.kill("SIGINT");
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(killer);
    const written = readCaptureFile(output).packets;
    return { sent, written: written.length, withProcess: written.filter((packet) => packet.process !== undefined).length, cpuSeconds: cpu };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(output, { force: true });
  }
}

const range = spread;

const directory = mkdtempSync(join(tmpdir(), `${prefix}-pn-bench-`));
try {
  const flood = join(directory, "udp-flood");
  execFileSync("clang", ["-O2", "-o", flood, floodSource], { stdio: "inherit" });
  run("ip", ["netns", "add", namespace]);
  run("ip", ["-n", namespace, "link", "set", "lo", "up"]);
  const order = Object.keys(ways) as Way[];
  const results = await rotatedTrials<Way, Trial>(order, trials, (way, round) => trial(way, directory, round, flood));
  const summary = (list: Trial[]) => ({
    written: range(list.map((t) => t.written)),
    withProcess: range(list.map((t) => t.withProcess)),
    cpuSeconds: range(list.map((t) => t.cpuSeconds)),
    cpuMicrosecondsPerPacket: range(list.map((t) => (t.cpuSeconds * 1e6) / Math.max(1, t.written))),
    trials: list,
  });
  const summaries = Object.fromEntries(order.map((way) => [way, summary(results[way])])) as Record<Way, ReturnType<typeof summary>>;
  const perPacket = (way: Way) => summaries[way].cpuMicrosecondsPerPacket.median;
  const ratios = {
    pcapngProcessOverPcap: perPacket("pcapng+process") / perPacket("pcap"),
    pcapngOverPcap: perPacket("pcapng") / perPacket("pcap"),
  };
  const line = (name: string, values: { min: number; median: number; max: number }, digits: number) =>
    `  ${name.padEnd(30)} ${values.min.toFixed(digits)} / ${values.median.toFixed(digits)} / ${values.max.toFixed(digits)}`;
  process.stderr.write(`pcapng-process-cost: ${packets} UDP packets of ${payloadSize} bytes per trial on lo, ${trials} trials, min / median / max; ${cpus().length} CPUs (${cpus()[0]?.model}), load ${loadavg()[0]!.toFixed(1)}\n`);
  for (const way of order) {
    const result = summaries[way];
    process.stderr.write(`${way}:\n${line("packets written", result.written, 0)}\n${line("packets with a process", result.withProcess, 0)}\n${line("capturer CPU per packet (µs)", result.cpuMicrosecondsPerPacket, 3)}\n`);
  }
  process.stderr.write(`capturer CPU per packet, medians: pcapng with process ${ratios.pcapngProcessOverPcap.toFixed(2)}x pcap, pcapng without ${ratios.pcapngOverPcap.toFixed(2)}x pcap\n`);
  process.stdout.write(`${JSON.stringify({
    benchmark: "pcapng-process-cost",
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage: loadavg() },
    packetsPerTrial: packets,
    payloadBytes: payloadSize,
    trials,
    ...summaries,
    ratios,
  }, null, 2)}\n`);
} finally {
  spawnSync("ip", ["netns", "del", namespace], { timeout: 20_000 });
  rmSync(directory, { recursive: true, force: true });
}
