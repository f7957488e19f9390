/**
 * Offline filtering: `netbpf capture -r FILE EXPR` against `tcpdump -r FILE
 * EXPR` over the same 100,000-packet pcap file (synthetic Ethernet IPv4/IPv6
 * TCP/UDP/ICMP, 60-1514 bytes), for a few filters and two outputs (a pcap on
 * stdout, `-w -`, and tcpdump's one-line text with -n), each sent to
 * /dev/null. CPU time (user + system) and wall time of whole processes
 * (start-up included), the two tools interleaved, min/median/max over the
 * trials. On a loaded machine wall time mostly measures the others: compare CPU.
 *
 * usage: node dist/bench/offline-capture.js [packets] [trials]
 *        node dist/bench/offline-capture.js --write FILE [packets]   (only writes the test file)
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const writeOnly = process.argv[2] === "--write" ? process.argv[3] : undefined;
const packetCount = Number((writeOnly !== undefined ? process.argv[4] : process.argv[2]) ?? 100_000);
const trials = Number(process.argv[3] ?? 3);
const cliPath = fileURLToPath(new URL("../src/cli/netbpf.cjs", import.meta.url));

/** A deterministic pseudo-random sequence (xorshift32). */
function randomSequence(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296;
  };
}

function checksum(bytes: Buffer, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function makePacket(random: () => number): Buffer {
  const ipv6 = random() < 0.2;
  const protocolChoice = random();
  const protocol = protocolChoice < 0.6 ? 6 : protocolChoice < 0.95 ? 17 : ipv6 ? 58 : 1;
  const transportHeader = protocol === 6 ? 20 : 8;
  const payload = random() < 0.5 ? Math.floor(random() * 32) : Math.floor(random() * 1400);
  const networkHeader = ipv6 ? 40 : 20;
  const frame = Buffer.alloc(14 + networkHeader + transportHeader + payload);
  frame.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
  frame.writeUInt16BE(ipv6 ? 0x86dd : 0x0800, 12);
  const ip = 14;
  if (ipv6) {
    frame.writeUInt32BE(0x6000_0000, ip);
    frame.writeUInt16BE(transportHeader + payload, ip + 4);
    frame[ip + 6] = protocol;
    frame[ip + 7] = 64;
    frame.set([0x20, 0x01, 0x0d, 0xb8], ip + 8);
    frame[ip + 23] = 1 + Math.floor(random() * 4);
    frame.set([0x20, 0x01, 0x0d, 0xb8], ip + 24);
    frame[ip + 39] = 1 + Math.floor(random() * 4);
  } else {
    frame[ip] = 0x45;
    frame.writeUInt16BE(networkHeader + transportHeader + payload, ip + 2);
    frame.writeUInt16BE(Math.floor(random() * 65536), ip + 4);
    frame[ip + 8] = 64;
    frame[ip + 9] = protocol;
    frame.set([10, 0, 0, 1 + Math.floor(random() * 4)], ip + 12);
    frame.set([10, 0, 0, 1 + Math.floor(random() * 4)], ip + 16);
    frame.writeUInt16BE(checksum(frame, ip, ip + 20), ip + 10);
  }
  const transport = ip + networkHeader;
  const ports = [22, 53, 80, 443, 8080, 40000 + Math.floor(random() * 1000)];
  if (protocol === 6 || protocol === 17) {
    frame.writeUInt16BE(ports[Math.floor(random() * ports.length)]!, transport);
    frame.writeUInt16BE(ports[Math.floor(random() * ports.length)]!, transport + 2);
  }
  if (protocol === 6) {
    frame.writeUInt32BE(Math.floor(random() * 2 ** 32), transport + 4);
    frame.writeUInt32BE(Math.floor(random() * 2 ** 32), transport + 8);
    frame[transport + 12] = 0x50;
    frame[transport + 13] = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04][Math.floor(random() * 6)]!;
    frame.writeUInt16BE(65535, transport + 14);
  } else if (protocol === 17) {
    frame.writeUInt16BE(8 + payload, transport + 4);
  } else {
    frame[transport] = ipv6 ? 128 : 8;
  }
  return frame;
}

/** Writes the test file in one pass (pcap, microsecond timestamps). */
function writeTestFile(path: string): void {
  const random = randomSequence(0x0ff1);
  const fd = openSync(path, "w");
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(1, 20);
  writeSync(fd, header);
  const chunks: Buffer[] = [];
  let size = 0;
  for (let i = 0; i < packetCount; i++) {
    const frame = makePacket(random);
    const record = Buffer.alloc(16);
    record.writeUInt32LE(1_700_000_000 + Math.floor(i / 1000), 0);
    record.writeUInt32LE((i % 1000) * 1000, 4);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    chunks.push(record, frame);
    size += 16 + frame.length;
    if (size > 1 << 22) {
      writeSync(fd, Buffer.concat(chunks));
      chunks.length = 0;
      size = 0;
    }
  }
  writeSync(fd, Buffer.concat(chunks));
  closeSync(fd);
}

/** Runs a command under /usr/bin/time: its wall time and CPU time (user + system; what load from other processes inflates least). */
function timed(command: string, args: string[]): { seconds: number; cpuSeconds: number; stdoutBytes: number } {
  const result = spawnSync("/usr/bin/time", ["-f", "netbpf-bench-time %e %U %S", command, ...args], { maxBuffer: 1 << 30, encoding: "buffer" });
  const stderr = result.stderr.toString();
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${stderr}`);
  const times = /netbpf-bench-time ([\d.]+) ([\d.]+) ([\d.]+)/.exec(stderr);
  if (!times) throw new Error(`no timing from /usr/bin/time: ${stderr}`);
  return { seconds: Number(times[1]), cpuSeconds: Number(times[2]) + Number(times[3]), stdoutBytes: result.stdout.length };
}

function statistics(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const format = (value: number) => value.toFixed(3);
  return `${format(sorted[0]!)} / ${format(sorted[Math.floor(sorted.length / 2)]!)} / ${format(sorted[sorted.length - 1]!)} s`;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

if (writeOnly !== undefined) {
  writeTestFile(writeOnly);
  process.exit(0);
}

const folder = mkdtempSync(join(tmpdir(), "netbpf-bench-offline-"));
const file = join(folder, "packets.pcap");
try {
  writeTestFile(file);
  const tcpdumpAvailable = spawnSync("tcpdump", ["--version"]).status === 0;
  console.log(`offline capture -r: ${packetCount} packets, ${trials} trials per case (min / median / max), ${cpus().length} CPUs (${cpus()[0]?.model}), load ${loadavg()[0]!.toFixed(1)}`);
  const filters = ["", "tcp port 80", "tcp[13] = 0x10", "udp and (port 53 or port 443) and ip6"];
  for (const output of ["pcap", "text"] as const) {
    for (const filter of filters) {
      const words = filter === "" ? [] : [filter];
      const outputArguments = output === "pcap" ? ["-w", "-"] : ["-n"];
      const ours: number[] = [];
      const theirs: number[] = [];
      const oursWall: number[] = [];
      const theirsWall: number[] = [];
      let sizes = "";
      for (let trial = 0; trial < trials; trial++) {
        const netbpf = timed(process.execPath, [cliPath, "capture", "-r", file, ...outputArguments, ...words]);
        ours.push(netbpf.cpuSeconds);
        oursWall.push(netbpf.seconds);
        if (tcpdumpAvailable) {
          const tcpdump = timed("tcpdump", ["-r", file, ...outputArguments, ...words]);
          theirs.push(tcpdump.cpuSeconds);
          theirsWall.push(tcpdump.seconds);
          sizes = `output ${netbpf.stdoutBytes} vs ${tcpdump.stdoutBytes} bytes`;
        }
      }
      const name = `${output.padEnd(4)} ${filter === "" ? "(no filter)" : `"${filter}"`}`;
      console.log(`  ${name}`);
      console.log(`    netbpf:  CPU ${statistics(ours)}, wall ${statistics(oursWall)}`);
      if (theirs.length > 0) {
        console.log(`    tcpdump: CPU ${statistics(theirs)}, wall ${statistics(theirsWall)}`);
        console.log(`    ratio netbpf/tcpdump (medians): CPU ${(median(ours) / Math.max(0.005, median(theirs))).toFixed(2)}x, wall ${(median(oursWall) / median(theirsWall)).toFixed(2)}x; ${sizes}`);
      }
    }
  }
} finally {
  rmSync(folder, { recursive: true, force: true });
}
