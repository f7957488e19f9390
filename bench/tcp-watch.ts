/**
 * The cost of watching TCP connections with `netbpf tcp`.
 *
 * 1. Start to ready: from spawning the tool to the first event it prints,
 *    against the equivalent bpftrace one-liner on sock:inet_sock_set_state.
 *    "Ready" is measured the same way for both from outside: this process
 *    tries to connect to a closed loopback port every 10 ms (each refused
 *    attempt is CLOSE -> SYN_SENT -> CLOSE), and the time is when the tool
 *    prints its first line about that port. Trials alternate the tools; medians.
 *    netbpf runs three times per trial: warm (kernel struct offsets and its
 *    V8 code cache from the cache folder, /run/netbpf/cache, as on every
 *    start after the first on a boot; a first untimed run fills it), cold
 *    (an empty cache folder: kernel BTF read and parsed, every function
 *    compiled), and warm without NODE_EXTRA_CA_CERTS (which the project's
 *    machines set: every Node process then parses those certificates first,
 *    about 40 ms of CPU that a user's machine without it does not spend).
 * 2. Throughput: iperf3 over loopback with and without `netbpf tcp` attached
 *    (every TCP state change, retransmit and reset on the host followed),
 *    in alternating order; medians and their ratio.
 *
 * usage: node dist/bench/tcp-watch.js [trials] [iperf3 seconds] [all|ready|throughput]
 * Needs root, bpftrace and iperf3 (Debian packages).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { median } from "./support/statistics.js";
import { stopChild } from "./support/child-process.js";

const trials = Number(process.argv[2] ?? 5);
const iperfSeconds = Number(process.argv[3] ?? 4);
const part = process.argv[4] ?? "all";
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.cjs", import.meta.url));

function available(command: string, args: string[]): boolean {
  return spawnSync(command, args, { encoding: "utf8" }).status === 0;
}

/** Milliseconds from spawn to the tool's first line on stdout while a refused connection to `port` is tried every 10 ms. */
async function timeToReady(command: string, args: string[], port: number, environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  const started = performance.now();
  const child = spawn(command, args, { env: environment });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const prober = setInterval(() => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => socket.destroy());
  }, 10);
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${command} printed nothing within 60 s: ${stderr}`)), 60_000);
      child.stdout.once("data", () => {
        clearTimeout(timer);
        resolve(performance.now() - started);
      });
      child.once("exit", (code) => reject(new Error(`${command} exited with ${code}: ${stderr}`)));
    });
  } finally {
    clearInterval(prober);
    await stopChild(child);
  }
}

/** Loopback TCP throughput in Gbit/s (iperf3 receiver side). */
function iperf(port: number): number {
  const server = spawn("iperf3", ["-s", "-1", "-p", String(port), "-B", "127.0.0.1"]);
  try {
    spawnSync("sleep", ["0.3"]);
    const client = spawnSync("iperf3", ["-c", "127.0.0.1", "-p", String(port), "-t", String(iperfSeconds), "-J"], { encoding: "utf8", timeout: (iperfSeconds + 30) * 1000 });
    if (client.status !== 0) throw new Error(`iperf3 failed: ${client.stderr || client.stdout.slice(0, 500)}`);
    const report = JSON.parse(client.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return report.end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill("SIGKILL");
  }
}

async function main(): Promise<void> {
  process.stdout.write(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, load ${loadavg().map((value) => value.toFixed(2)).join(" ")}\n`);
  const basePort = 41000 + Math.floor(Math.random() * 10000);

  if (part === "throughput") {
    // only the throughput part
  } else if (available("bpftrace", ["--version"])) {
    const netbpfTimes: number[] = [];
    const coldTimes: number[] = [];
    const bpftraceTimes: number[] = [];
    const plainTimes: number[] = [];
    const { NODE_EXTRA_CA_CERTS: _extraCertificates, ...withoutExtraCertificates } = process.env;
    const coldCache = mkdtempSync(join(tmpdir(), "netbpf-bench-cache-"));
    try {
      // Fills the cache folder (offsets and code cache) as any earlier start on this boot would have.
      await timeToReady(process.execPath, [cliPath, "tcp", "--json", "--events", "-D", String(basePort - 1)], basePort - 1);
      for (let trial = 0; trial < trials; trial++) {
        const port = basePort + trial * 4;
        // Warm: the kernel struct offsets come from /run/netbpf/cache (every start after the first on a boot).
        netbpfTimes.push(await timeToReady(process.execPath, [cliPath, "tcp", "--json", "--events", "-D", String(port)], port));
        bpftraceTimes.push(await timeToReady("bpftrace", ["-B", "line", "-e", `tracepoint:sock:inet_sock_set_state /args->dport == ${port + 1}/ { printf("%d %d\\n", args->oldstate, args->newstate); }`], port + 1));
        // Cold: an empty cache folder, so the kernel's BTF is read and parsed (the first start after a boot).
        rmSync(coldCache, { recursive: true, force: true });
        coldTimes.push(await timeToReady(process.execPath, [cliPath, "tcp", "--json", "--events", "-D", String(port + 2)], port + 2, { ...process.env, NETBPF_CACHE_DIR: coldCache }));
        plainTimes.push(await timeToReady(process.execPath, [cliPath, "tcp", "--json", "--events", "-D", String(port + 3)], port + 3, withoutExtraCertificates));
      }
    } finally {
      rmSync(coldCache, { recursive: true, force: true });
    }
    const ours = median(netbpfTimes);
    const cold = median(coldTimes);
    const theirs = median(bpftraceTimes);
    const plain = median(plainTimes);
    process.stdout.write(`start to ready (median of ${trials}): netbpf tcp ${ours.toFixed(0)} ms (cold cache ${cold.toFixed(0)} ms; without NODE_EXTRA_CA_CERTS ${plain.toFixed(0)} ms), bpftrace ${theirs.toFixed(0)} ms, ratio ${(ours / theirs).toFixed(2)} (cold ${(cold / theirs).toFixed(2)}, without NODE_EXTRA_CA_CERTS ${(plain / theirs).toFixed(2)}; target ≤ 0.5)\n`);
    const list = (values: number[]) => `${values.map((value) => value.toFixed(0)).join(" ")} ms (min / median / max ${Math.min(...values).toFixed(0)} / ${median(values).toFixed(0)} / ${Math.max(...values).toFixed(0)})`;
    process.stdout.write(`  netbpf: ${list(netbpfTimes)}; cold: ${list(coldTimes)}; without NODE_EXTRA_CA_CERTS: ${list(plainTimes)}; bpftrace: ${list(bpftraceTimes)}\n`);
  } else {
    process.stdout.write("start to ready: skipped (bpftrace not installed: apt-get install bpftrace)\n");
  }

  if (part === "ready") {
    // only the start-to-ready part
  } else if (available("iperf3", ["--version"])) {
    const without: number[] = [];
    const watched: number[] = [];
    for (let trial = 0; trial < trials; trial++) {
      const port = basePort + 100 + trial;
      // Alternate which run comes first: on a shared machine the order itself can matter.
      if (trial % 2 === 0) without.push(iperf(port));
      const tool = spawn(process.execPath, [cliPath, "tcp"]);
      await new Promise<void>((resolve, reject) => {
        let stderr = "";
        tool.stderr.on("data", (chunk: Buffer) => {
          stderr += chunk.toString();
          if (stderr.includes("netbpf: tracing")) resolve();
        });
        tool.once("exit", (code) => reject(new Error(`netbpf tcp exited with ${code}: ${stderr}`)));
      });
      tool.stdout.resume();
      try {
        watched.push(iperf(port + 50));
      } finally {
        await stopChild(tool);
      }
      if (trial % 2 === 1) without.push(iperf(port));
    }
    const base = median(without);
    const withTool = median(watched);
    process.stdout.write(`iperf3 loopback (median of ${trials} × ${iperfSeconds} s): ${base.toFixed(2)} Gbit/s unwatched, ${withTool.toFixed(2)} Gbit/s with netbpf tcp, ratio ${(withTool / base * 100).toFixed(1)}% (target ≥ 97%)\n`);
    process.stdout.write(`  unwatched: ${without.map((value) => value.toFixed(2)).join(" ")}; watched: ${watched.map((value) => value.toFixed(2)).join(" ")} Gbit/s\n`);
  } else {
    process.stdout.write("throughput: skipped (iperf3 not installed: apt-get install iperf3)\n");
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`tcp-watch bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
