/**
 * Resident memory and CPU use of a process that holds an idle ring buffer
 * reader (waiting in a for-await loop), next to a bare Node process that
 * only loads the same modules. Target: under 80 MB resident, ~0 CPU.
 *
 * usage: node dist/bench/ringbuf-idle-memory.js [ring size in bytes]
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ringSize = Number(process.argv[2] ?? 1 << 20);
const here = fileURLToPath(new URL(".", import.meta.url));
const ticksPerSecond = 100; // USER_HZ on Linux

function status(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : NaN;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

async function measure(mode: "reader" | "bare"): Promise<{ rss: number; anonymous: number; shared: number; peak: number; cpuPercent: number }> {
  const child = spawn(process.execPath, [join(here, "support", "ringbuf-idle-child.js"), mode, String(ringSize)], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (text: string) => text.includes("ready") && resolve());
      child.on("exit", (code) => reject(new Error(`idle child exited early with ${code}`)));
    });
    await new Promise((r) => setTimeout(r, 500));
    const pid = child.pid!;
    const before = cpuTicks(pid);
    const seconds = 3;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpuPercent = ((cpuTicks(pid) - before) / ticksPerSecond / seconds) * 100;
    return {
      rss: status(pid, "VmRSS"), anonymous: status(pid, "RssAnon"), shared: status(pid, "RssFile") + status(pid, "RssShmem"),
      peak: status(pid, "VmHWM"), cpuPercent,
    };
  } finally {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
}

const bare = await measure("bare");
const reader = await measure("reader");
const line = (label: string, m: Awaited<ReturnType<typeof measure>>): string =>
  `${label}: resident ${m.rss.toFixed(1)} MB (process memory ${m.anonymous.toFixed(1)} MB, mapped files and kernel rings ${m.shared.toFixed(1)} MB; peak ${m.peak.toFixed(1)} MB), CPU ${m.cpuPercent.toFixed(2)}% over 3 s`;
console.log(line(`idle ring buffer reader, ${ringSize >> 10} KiB ring with every page touched (mapped twice)`, reader) + "; target < 80 MB");
console.log(line("bare node process with the same modules loaded", bare));
