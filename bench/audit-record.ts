/**
 * The cost of `netbpf audit`.
 *
 * 1. Recording cost: the rate of short loopback TCP connections (connect,
 *    send a 40-byte request, read a 200-byte reply, close; 16 at a time from
 *    one client process to one server process) with and without
 *    `netbpf audit record` running, in rounds of one trial each, the order
 *    rotated every round; each trial follows one unmeasured second of load
 *    (the recorder's steady state is measured, not its start). Rates and the
 *    round-by-round ratio as min / median / max. The recorder runs as a user
 *    runs it (the CLI, its own process), storing every connection both ways.
 *    Also the CPU time (schedstat) of the recorder and of the client and
 *    server per connection, and what 95 % would allow: on a shared machine
 *    the rate ratio is as noisy as the effect, while CPU per connection says
 *    what the recorder costs.
 * 2. Query time over 1,000,000 stored connections (30 days, 50 commands):
 *    "connections of one command in the last hour" through queryAuditLog, as
 *    `netbpf audit query --since 1h --process NAME` asks; median of 20 runs.
 *
 * usage: node dist/bench/audit-record.js [trials] [seconds per trial] [all|rate|query] ["recorder options"]
 * (e.g. "--no-udp --no-dns": what TCP recording alone costs). With
 * NETBPF_BENCH_PROFILE=DIR the recorder runs under `node --cpu-prof` and
 * writes its CPU profiles (one per trial) to DIR; NETBPF_BENCH_CLI=PATH runs
 * the recorder of another build (dist/src/cli/netbpf.js of a checkout), to
 * compare two versions with the same load.
 * Needs root.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AuditLog, emptyAuditRecord } from "../src/audit/audit-log.js";
import { queryAuditLog } from "../src/audit/audit-query.js";
import type { AuditRecord } from "../src/audit/audit-record.js";
import { stopChild } from "./support/child-process.js";
import { cpuSeconds } from "./support/process-cpu.js";
import { median, rotatedTrials, spread } from "./support/statistics.js";

const trials = Number(process.argv[2] ?? 5);
const seconds = Number(process.argv[3] ?? 4);
const part = process.argv[4] ?? "all";
const recorderOptions = (process.argv[5] ?? "").split(" ").filter((word) => word !== "");
const cliPath = process.env.NETBPF_BENCH_CLI ?? fileURLToPath(new URL("../src/cli/netbpf.cjs", import.meta.url));
const profile = process.env.NETBPF_BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.NETBPF_BENCH_PROFILE}`] : [];
const warmUpMilliseconds = 1000;

function output(child: ChildProcessWithoutNullStreams, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const collect = (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(text)) resolve(seen);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.once("exit", (code) => reject(new Error(`exited (${code}) before "${text}": ${seen}`)));
  });
}

const serverScript = (port: number) => `
import net from "node:net";
const reply = Buffer.alloc(200, 0x62);
net.createServer((socket) => { socket.once("data", () => socket.end(reply)); socket.on("error", () => {}); }).listen(${port}, "127.0.0.1", () => console.log("listening"));`;

const clientScript = (port: number, milliseconds: number) => `
import net from "node:net";
const request = Buffer.alloc(40, 0x61);
const end = Date.now() + ${milliseconds};
let done = 0;
const one = () => new Promise((resolve) => {
  const socket = net.connect(${port}, "127.0.0.1", () => socket.write(request));
  socket.on("data", () => {});
  socket.on("close", () => { done++; resolve(); });
  socket.on("error", () => {});
});
const cpu = process.cpuUsage();
await Promise.all(Array.from({ length: 16 }, async () => { while (Date.now() < end) await one(); }));
const used = process.cpuUsage(cpu);
console.log(done, (used.user + used.system) / 1e6);`;

interface Trial {
  /** Connections per second. */
  rate: number;
  /** CPU seconds of the client (its load loop) and of the server during the trial. */
  loadCpu: number;
  connections: number;
}

async function connectionTrial(port: number, serverPid: number, milliseconds: number): Promise<Trial> {
  const serverCpu = cpuSeconds(serverPid);
  const client = spawn(process.execPath, ["--input-type=module", "-e", clientScript(port, milliseconds)]);
  let stdout = "";
  client.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  await new Promise((resolve) => client.once("exit", resolve));
  const [connections, clientCpu] = stdout.trim().split(" ").map(Number) as [number, number];
  return { rate: connections / (milliseconds / 1000), loadCpu: clientCpu + cpuSeconds(serverPid) - serverCpu, connections };
}

const microseconds = (value: number) => (value * 1e6).toFixed(0);
const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
/** "min / median / max" of values, each formatted. */
const range = (values: readonly number[], format: (value: number) => string) => {
  const { min, median: middle, max } = spread(values);
  return `${format(min)} / ${format(middle)} / ${format(max)}`;
};

async function recordingCost(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), "nbau-bench-"));
  const port = 41000 + Math.floor(Math.random() * 1000);
  const server = spawn(process.execPath, ["--input-type=module", "-e", serverScript(port)]);
  try {
    await output(server, "listening");
    /** Recorder CPU seconds per connection (both of its ends recorded), trial by trial. */
    const recorderCpu: number[] = [];
    /** Recorder CPU seconds per record it stored during the trial: every TCP connection end on the host is recorded, the bench's and any other work's. */
    const recorderCpuPerRecord: number[] = [];
    /** Of the records stored during a trial, the share that were not the bench's connections. */
    const otherRecords: number[] = [];
    const database = join(directory, "audit.db");
    const storedCounts = (): { all: number; bench: number } => {
      const log = AuditLog.open(database, { readOnly: true });
      try {
        const all = (log.database.prepare("SELECT count(*) AS n FROM records").get() as { n: number }).n;
        const bench = (log.database.prepare("SELECT count(*) AS n FROM records WHERE kind = 'connection' AND (local_port = ? OR remote_port = ?)").get(port, port) as { n: number }).n;
        return { all, bench };
      } finally {
        log.close();
      }
    };
    const results = await rotatedTrials(["without", "with"] as const, trials, async (variant) => {
      const recorder = variant === "with"
        ? spawn(process.execPath, [...profile, cliPath, "audit", "record", "--db", join(directory, "audit.db"), ...recorderOptions])
        : undefined;
      try {
        if (recorder !== undefined) await output(recorder, "recording to");
        // A second of load first, not measured (both variants): a recorder runs for days, so its
        // steady state is what counts, not the first batch's compiling.
        await connectionTrial(port, server.pid!, warmUpMilliseconds);
        if (recorder !== undefined) await new Promise((resolve) => setTimeout(resolve, 1200));
        const before = recorder !== undefined ? cpuSeconds(recorder.pid!) : 0;
        const countsBefore = recorder !== undefined ? storedCounts() : undefined;
        const measured = await connectionTrial(port, server.pid!, seconds * 1000);
        if (recorder !== undefined) {
          // Its last batch (up to a second of records) is stored after this: counted by waiting one interval more.
          await new Promise((resolve) => setTimeout(resolve, 1200));
          const used = cpuSeconds(recorder.pid!) - before;
          recorderCpu.push(used / measured.connections);
          const countsAfter = storedCounts();
          const all = countsAfter.all - countsBefore!.all;
          recorderCpuPerRecord.push(used / all);
          otherRecords.push(1 - (countsAfter.bench - countsBefore!.bench) / all);
        }
        return measured;
      } finally {
        if (recorder !== undefined) await stopChild(recorder);
      }
    });
    const stored = storedCounts().bench;
    const without = results.without.map((trial) => trial.rate);
    const withRecorder = results.with.map((trial) => trial.rate);
    // Each round's two trials ran back to back: their ratio is less exposed to the machine's other work than a ratio of medians.
    const roundRatios = withRecorder.map((rate, round) => rate / without[round]!);
    const loadPerConnection = (list: Trial[]) => list.map((trial) => trial.loadCpu / trial.connections);
    const loadWithout = median(loadPerConnection(results.without));
    const loadWith = median(loadPerConnection(results.with));
    const recorderMedian = median(recorderCpu);
    const kernel = loadWith - loadWithout;
    console.log(`short loopback TCP connections per second (16 concurrent, ${seconds} s trials after 1 s of load, ${trials} rounds, order rotated)${recorderOptions.length > 0 ? `, recorder with ${recorderOptions.join(" ")}` : ""}:`);
    console.log(`  without recorder: ${range(without, (v) => v.toFixed(0))}/s (min / median / max)  [${without.map((v) => v.toFixed(0)).join(", ")}]`);
    console.log(`  with recorder:    ${range(withRecorder, (v) => v.toFixed(0))}/s  [${withRecorder.map((v) => v.toFixed(0)).join(", ")}]`);
    console.log(`  ratio with/without, round by round: ${range(roundRatios, percent)}; of the medians: ${percent(median(withRecorder) / median(without))} (target >= 95%)`);
    console.log(`  CPU per connection, µs (min / median / max):`);
    console.log(`    client + server, without recorder: ${range(loadPerConnection(results.without), microseconds)}`);
    console.log(`    client + server, with recorder:    ${range(loadPerConnection(results.with), microseconds)} (the difference: in-kernel programs, and contention)`);
    console.log(`    recorder (both ends stored):       ${range(recorderCpu, microseconds)}`);
    console.log(`  recorder CPU per stored record, µs: ${range(recorderCpuPerRecord, microseconds)} (records of other work on the host during the trials: ${range(otherRecords, percent)})`);
    const busy = results.without.map((trial) => trial.loadCpu / seconds / cpus().length);
    console.log(`  the load alone keeps ${range(busy, percent)} of the ${cpus().length} CPUs busy`);
    // CPU-bound, the rate falls as the CPU per connection grows: by the recorder's own and by its programs' (in the client's and server's system time).
    console.log(`  if CPU were the only limit: rate ratio ${percent(loadWithout / (loadWith + recorderMedian))} (in-kernel ${microseconds(kernel)} µs + recorder ${microseconds(recorderMedian)} µs on ${microseconds(loadWithout)} µs);`);
    console.log(`    95% would allow ${microseconds(loadWithout * (1 / 0.95 - 1))} µs per connection for recorder and programs together`);
    const expected = withRecorder.reduce((a, b) => a + b, 0) * seconds;
    console.log(`  connection records stored for the bench port: ${stored} (both ends of ~${expected.toFixed(0)} measured connections, plus the warm-up ones)`);
  } finally {
    await stopChild(server);
    rmSync(directory, { recursive: true, force: true });
  }
}

async function queryTime(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), "nbau-bench-"));
  try {
    const path = join(directory, "audit.db");
    const log = AuditLog.open(path);
    const total = 1_000_000;
    const now = Date.now();
    const span = 30 * 86_400_000;
    const started = performance.now();
    for (let first = 0; first < total; first += 10_000) {
      const batch: AuditRecord[] = [];
      for (let index = first; index < first + 10_000; index++) {
        const end = now - span + Math.floor((index / total) * span);
        const record = emptyAuditRecord("connection", new Date(end - 200), new Date(end));
        record.process = { pid: 1000 + (index % 997), parentPid: 1, uid: index % 5, command: `command${index % 50}`, executable: `/usr/bin/command${index % 50}`, cgroupId: "1", cgroupPath: "/", containerId: null };
        record.flow = { protocol: "tcp", family: "ipv4", direction: "outbound", localAddress: "10.0.0.1", localPort: 32768 + (index % 28000), remoteAddress: `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`, remotePort: 443, remoteName: null };
        record.bytesSent = index % 5000;
        record.bytesReceived = index % 70000;
        record.closeReason = "fin";
        batch.push(record);
      }
      log.append(batch);
    }
    const insertSeconds = (performance.now() - started) / 1000;
    const times: number[] = [];
    let found = 0;
    for (let run = 0; run < 20; run++) {
      const begin = performance.now();
      found = queryAuditLog(log, { since: new Date(now - 3_600_000), process: `command${run % 50}` }).length;
      times.push(performance.now() - begin);
    }
    const dayTimes: number[] = [];
    let dayFound = 0;
    for (let run = 0; run < 10; run++) {
      const begin = performance.now();
      dayFound = queryAuditLog(log, { since: new Date(now - 86_400_000), process: `command${run % 50}` }).length;
      dayTimes.push(performance.now() - begin);
    }
    console.log(`query over ${total} stored connections (${(statSync(path).size / 1e6).toFixed(0)} MB; written in ${insertSeconds.toFixed(1)} s, ${(total / insertSeconds).toFixed(0)} records/s):`);
    console.log(`  last hour + one command: median ${median(times).toFixed(2)} ms (${found} records) (target < 100 ms)`);
    console.log(`  last day + one command:  median ${median(dayTimes).toFixed(2)} ms (${dayFound} records)`);
    log.close();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, load average ${loadavg().map((v) => v.toFixed(2)).join(" ")}`);
if (part === "all" || part === "rate") await recordingCost();
if (part === "all" || part === "query") await queryTime();
console.log(`load average after: ${loadavg().map((v) => v.toFixed(2)).join(" ")}`);
