/**
 * Is the dashboard's memory bounded? Two `netbpf serve` processes run side by
 * side under the same load: the baseline exports metrics only; the other also
 * serves the dashboard (`--ui`) to one open event stream, as a page does. The
 * load is a churn of short TCP connections over loopback (default 100 per
 * second, each sending 1 KiB and closing). Both processes' resident memory
 * (VmRSS) is sampled every 10 s; the report gives it over time, the growth
 * over the second half of the run, and the ratio of the two.
 *
 * usage: node dist/bench/dashboard-memory.js [seconds] [connections per second]
 *   (default 60 s; NETBPF_BENCH_DASHBOARD_SECONDS=600 for the 10-minute run)
 * Needs root (cgroup programs, tracepoints).
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFileSync } from "node:fs";
import { get } from "node:http";
import net from "node:net";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { stopChild } from "./support/child-process.js";

const seconds = Number(process.argv[2] ?? process.env.NETBPF_BENCH_DASHBOARD_SECONDS ?? 60);
const churn = Number(process.argv[3] ?? 100);
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.cjs", import.meta.url));

function residentKibibytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) : NaN;
}

async function startServe(args: string[]): Promise<{ child: ChildProcessWithoutNullStreams; url: string }> {
  const child = spawn(process.execPath, [cliPath, "serve", "--listen", "127.0.0.1:0", ...args]);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  for (let waited = 0; ; waited += 50) {
    const match = /metrics on (http:\/\/\S+)\/metrics/.exec(stderr);
    if (match) return { child, url: match[1]! };
    if (child.exitCode !== null || waited > 60_000) throw new Error(`serve did not start: ${stderr.trim()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const megabytes = (kibibytes: number) => (kibibytes / 1024).toFixed(1);

async function main(): Promise<void> {
  // The churn's server: reads what comes and lets the client close.
  const sink = net.createServer((socket) => {
    socket.on("data", () => {});
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  const sinkPort = (sink.address() as net.AddressInfo).port;

  const baseline = await startServe([]);
  const dashboard = await startServe(["--ui", "--entries", "16384"]);
  let events = 0;
  let streamBytes = 0;
  const stream = get(`${dashboard.url}/api/events`, (response) => {
    response.on("data", (chunk: Buffer) => {
      streamBytes += chunk.length;
      events += (chunk.toString().match(/^event: update$/gm) ?? []).length;
    });
  });
  stream.on("error", () => {});

  let opened = 0;
  let failed = 0;
  const payload = Buffer.alloc(1024, 120);
  const started = Date.now();
  const churnTimer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) / 1000) * churn);
    for (; opened < due; opened++) {
      const socket = net.connect({ host: "127.0.0.1", port: sinkPort }, () => socket.end(payload));
      socket.on("error", () => failed++);
    }
  }, 10);

  const samples: { second: number; baseline: number; dashboard: number }[] = [];
  const sample = () => samples.push({ second: Math.round((Date.now() - started) / 1000), baseline: residentKibibytes(baseline.child.pid!), dashboard: residentKibibytes(dashboard.child.pid!) });
  sample();
  const sampleTimer = setInterval(sample, 10_000);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  clearInterval(churnTimer);
  clearInterval(sampleTimer);
  sample();
  const load = loadavg()[0]!.toFixed(1);
  stream.destroy();
  await Promise.all([stopChild(baseline.child), stopChild(dashboard.child)]);
  sink.close();

  console.log(`dashboard memory: ${seconds} s, churn ${churn} connections/s (${opened} opened, ${failed} failed), ${events} updates streamed (${megabytes(streamBytes / 1024)} MiB)`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, load average ${load} at the end`);
  console.log("second  serve RSS MiB  serve --ui RSS MiB  ratio");
  for (const s of samples) console.log(`${String(s.second).padStart(6)}  ${megabytes(s.baseline).padStart(13)}  ${megabytes(s.dashboard).padStart(18)}  ${(s.dashboard / s.baseline).toFixed(2)}`);
  // Bounded means no trend once warmed up: compare the peaks of the two halves of the run.
  const peak = (from: number, to: number, pick: (s: (typeof samples)[number]) => number) => Math.max(...samples.filter((s) => s.second >= from && s.second <= to).map(pick));
  const halfway = seconds / 2;
  console.log(`peak RSS, first half / second half: serve ${megabytes(peak(0, halfway, (s) => s.baseline))} / ${megabytes(peak(halfway, seconds, (s) => s.baseline))} MiB, serve --ui ${megabytes(peak(0, halfway, (s) => s.dashboard))} / ${megabytes(peak(halfway, seconds, (s) => s.dashboard))} MiB`);
}

await main();
