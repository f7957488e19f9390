/**
 * Start-up: how soon a capture sees traffic, netbpf against tcpdump, and the
 * CLI's floor against bare Node.
 *
 * - `netbpf --help` and `node -e 0`: CPU (user + system) and wall time.
 * - `capture` on a veth testbed (two namespaces, names nbpf-start-*, or
 *   $NETBPF_BENCH_PREFIX-*): side B pings side A every 2 ms; each trial
 *   spawns the capturer on side A (`-c 1 icmp`, text to a pipe, as
 *   `tcpdump -n -l -c 1 icmp`) and records the wall time from spawning it to
 *   its "listening on" line (ready) and to its first packet line on standard
 *   output (first packet), and the CPU the whole process used.
 *   netbpf runs warm (its V8 code cache written by an earlier run, as on
 *   every start but the first after a boot) and cold (an empty cache
 *   folder): both with cache folders of the bench's own.
 * - Node's own floor depends on its environment: NODE_EXTRA_CA_CERTS makes
 *   every Node process parse those certificates before running anything
 *   (about 40 ms of CPU on the project's machines, which set it). `node -e 0`
 *   and netbpf's warm capture also run without it, to show that share.
 *
 * Runs rotate the variants (A B C, B C A, …); min / median / max.
 * usage: node dist/bench/capture-startup.js [trials]
 */
import { rotatedTrials, spread } from "./support/statistics.js";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const trials = Number(process.argv[2] ?? 7);
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.cjs", import.meta.url));

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
}

const tag = randomBytes(2).toString("hex");
const prefix = process.env.NETBPF_BENCH_PREFIX ?? "nbpf-start";
const sideA = { namespace: `${prefix}-${tag}-a`, interface: `${prefix.slice(0, 7)}${tag}a`, address: "192.0.2.1" };
const sideB = { namespace: `${prefix}-${tag}-b`, interface: `${prefix.slice(0, 7)}${tag}b`, address: "192.0.2.2" };

/** The environment without NODE_EXTRA_CA_CERTS (see the top). */
const { NODE_EXTRA_CA_CERTS: extraCertificates, ...withoutExtraCertificates } = process.env;
/** Code cache folders of the bench's own: one kept (warm), one emptied before each cold trial. */
const warmCache = mkdtempSync(join(tmpdir(), "netbpf-bench-warm-"));
const coldCache = mkdtempSync(join(tmpdir(), "netbpf-bench-cold-"));

/** CPU and wall time of a short command, from /usr/bin/time. */
function timed(command: string, args: string[], environment: NodeJS.ProcessEnv = process.env): { seconds: number; cpuSeconds: number } {
  const result = spawnSync("/usr/bin/time", ["-f", "netbpf-bench-time %e %U %S", command, ...args], { encoding: "utf8", env: environment });
  const times = /netbpf-bench-time ([\d.]+) ([\d.]+) ([\d.]+)/.exec(result.stderr);
  if (result.status !== 0 || !times) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  return { seconds: Number(times[1]), cpuSeconds: Number(times[2]) + Number(times[3]) };
}

interface CaptureTrial {
  readySeconds: number;
  firstPacketSeconds: number;
  cpuSeconds: number;
}

const captureVariants = ["netbpf", "netbpf-cold", "netbpf-no-extra-certs", "tcpdump"] as const;
type CaptureVariant = (typeof captureVariants)[number];

async function captureTrial(variant: CaptureVariant): Promise<CaptureTrial> {
  const tool = variant === "tcpdump" ? "tcpdump" : "netbpf";
  const args = tool === "netbpf"
    ? [process.execPath, cliPath, "capture", "-i", sideA.interface, "-c", "1", "icmp"]
    : ["tcpdump", "-i", sideA.interface, "-n", "-l", "-c", "1", "icmp"];
  if (variant === "netbpf-cold") {
    rmSync(coldCache, { recursive: true, force: true });
  }
  const environment = {
    ...(variant === "netbpf-no-extra-certs" ? withoutExtraCertificates : process.env),
    NETBPF_CACHE_DIR: variant === "netbpf-cold" ? coldCache : warmCache,
  };
  const started = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - started) / 1e9;
  // /usr/bin/time reports the capturer's CPU when it exits; `ip netns exec` execs the capturer.
  const child = spawn("/usr/bin/time", ["-f", "netbpf-bench-time %e %U %S", "ip", "netns", "exec", sideA.namespace, ...args], { stdio: ["ignore", "pipe", "pipe"], env: environment });
  let stderr = "";
  let readySeconds: number | undefined;
  let firstPacketSeconds: number | undefined;
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    if (readySeconds === undefined && stderr.includes("listening on")) readySeconds = since();
  });
  child.stdout!.on("data", () => {
    firstPacketSeconds ??= since();
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  clearTimeout(killer);
  const times = /netbpf-bench-time ([\d.]+) ([\d.]+) ([\d.]+)/.exec(stderr);
  if (code !== 0 || !times || readySeconds === undefined || firstPacketSeconds === undefined) throw new Error(`${variant} failed (${code}): ${stderr}`);
  return { readySeconds, firstPacketSeconds, cpuSeconds: Number(times[2]) + Number(times[3]) };
}

const range = spread;
const text = (values: number[]) => {
  const { min, median, max } = range(values);
  return `${(min * 1000).toFixed(0)} / ${(median * 1000).toFixed(0)} / ${(max * 1000).toFixed(0)} ms`;
};

const helpVariants = ["netbpf", "node", "node-no-extra-certs"] as const;
const help = await rotatedTrials(helpVariants, trials, async (variant) => {
  if (variant === "netbpf") return timed(process.execPath, [cliPath, "--help"], { ...process.env, NETBPF_CACHE_DIR: warmCache });
  return timed(process.execPath, ["-e", "0"], variant === "node" ? process.env : withoutExtraCertificates);
});

let captures: Record<CaptureVariant, CaptureTrial[]>;
let pinger: ReturnType<typeof spawn> | undefined;
try {
  for (const side of [sideA, sideB]) run("ip", ["netns", "add", side.namespace]);
  run("ip", ["link", "add", sideA.interface, "netns", sideA.namespace, "type", "veth", "peer", "name", sideB.interface, "netns", sideB.namespace]);
  for (const side of [sideA, sideB]) {
    run("ip", ["-n", side.namespace, "addr", "add", `${side.address}/24`, "dev", side.interface]);
    run("ip", ["-n", side.namespace, "link", "set", side.interface, "up"]);
  }
  pinger = spawn("ip", ["netns", "exec", sideB.namespace, "ping", "-q", "-i", "0.002", sideA.address], { stdio: "ignore" });
  await new Promise((resolve) => setTimeout(resolve, 500));
  // The warm cache is written by a first, untimed run.
  await captureTrial("netbpf");
  captures = await rotatedTrials(captureVariants, trials, captureTrial);
} finally {
  pinger?.kill("SIGKILL");
  for (const side of [sideA, sideB]) spawnSync("ip", ["netns", "del", side.namespace], { timeout: 20_000 });
  for (const folder of [warmCache, coldCache]) rmSync(folder, { recursive: true, force: true });
}

const median = (values: number[]) => range(values).median;
process.stderr.write(`capture-startup: ${trials} alternating trials, min / median / max; ${cpus().length} CPUs (${cpus()[0]?.model}), load ${loadavg()[0]!.toFixed(1)}\n`);
process.stderr.write(`  NODE_EXTRA_CA_CERTS ${extraCertificates === undefined ? "not set" : "set"} in this environment\n`);
process.stderr.write(`  netbpf --help     CPU ${text(help.netbpf.map((t) => t.cpuSeconds))}, wall ${text(help.netbpf.map((t) => t.seconds))}\n`);
process.stderr.write(`  node -e 0         CPU ${text(help.node.map((t) => t.cpuSeconds))}, wall ${text(help.node.map((t) => t.seconds))}\n`);
process.stderr.write(`  node -e 0 without NODE_EXTRA_CA_CERTS: CPU ${text(help["node-no-extra-certs"].map((t) => t.cpuSeconds))}, wall ${text(help["node-no-extra-certs"].map((t) => t.seconds))}\n`);
for (const variant of captureVariants) {
  const list = captures[variant];
  process.stderr.write(`  ${variant} capture: ready ${text(list.map((t) => t.readySeconds))}, first packet ${text(list.map((t) => t.firstPacketSeconds))}, CPU ${text(list.map((t) => t.cpuSeconds))}\n`);
}
const ratios = {
  helpCpuOverNode: median(help.netbpf.map((t) => t.cpuSeconds)) / Math.max(1e-3, median(help.node.map((t) => t.cpuSeconds))),
  readyNetbpfOverTcpdump: median(captures.netbpf.map((t) => t.readySeconds)) / median(captures.tcpdump.map((t) => t.readySeconds)),
  readyNetbpfUnder150Milliseconds: median(captures.netbpf.map((t) => t.readySeconds)) <= 0.150,
  firstPacketNetbpfOverTcpdump: median(captures.netbpf.map((t) => t.firstPacketSeconds)) / median(captures.tcpdump.map((t) => t.firstPacketSeconds)),
};
process.stderr.write(`  ratios (medians): --help CPU / node's ${ratios.helpCpuOverNode.toFixed(2)}x (target < 1.5); capture ready / tcpdump's ${ratios.readyNetbpfOverTcpdump.toFixed(2)}x, first packet ${ratios.firstPacketNetbpfOverTcpdump.toFixed(2)}x; netbpf ready within 150 ms: ${ratios.readyNetbpfUnder150Milliseconds ? "yes" : "no"}\n`);
process.stdout.write(`${JSON.stringify({ benchmark: "capture-startup", machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage: loadavg() }, trials, help, captures, ratios }, null, 2)}\n`);
