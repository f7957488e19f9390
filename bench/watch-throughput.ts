/**
 * The cost of watching: TCP throughput over loopback (iperf3, one stream)
 * with nothing attached, with `netbpf top --json` attached (cgroup skb
 * ingress+egress on the root cgroup: every packet of the host is counted),
 * and with `netbpf top` and `netbpf tcp --json` both attached. Trials
 * alternate the three setups in the same run; medians, and each watched
 * median as a ratio of the unwatched one (target ≥ 0.97).
 *
 * usage: node dist/bench/watch-throughput.js [seconds per trial] [trials]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";

const seconds = Number(process.argv[2] ?? 3);
const trials = Number(process.argv[3] ?? 3);
const port = 45000 + Math.floor(Math.random() * 5000);
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.js", import.meta.url));

type Setup = "none" | "top" | "top+tcp";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

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
