/**
 * Regenerates the differential-test fixtures: crafted captures, real loopback
 * captures, and what tcpdump selects from each for every expression.
 * Run as root: NETBPF_GENERATE_FIXTURES=1 node dist/test/filter/generate-filter-fixtures.js
 * (does nothing otherwise, so the test runner can load it harmlessly).
 */
import { spawn, execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { readFileSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { readPcap, writePcap, type CapturedPacket } from "../support/pcap-writer.js";
import { craftedEthernet, craftedLinuxSll, craftedLinuxSll2, craftedRaw } from "./filter-corpus.js";
import { differentialExpressions } from "./filter-expressions.js";
import { mapLimit, tcpdumpSelect, type TcpdumpResult } from "./tcpdump-oracle.js";

export const fixtureDirectory = new URL("../../../test/filter/fixtures/", import.meta.url);

export interface FixtureFile {
  name: string;
  linkType: number;
}

export const craftedFixtures: { file: FixtureFile; packets: () => CapturedPacket[] }[] = [
  { file: { name: "crafted-ethernet.pcap", linkType: 1 }, packets: craftedEthernet },
  { file: { name: "crafted-sll.pcap", linkType: 113 }, packets: craftedLinuxSll },
  { file: { name: "crafted-sll2.pcap", linkType: 276 }, packets: craftedLinuxSll2 },
  { file: { name: "crafted-raw.pcap", linkType: 101 }, packets: craftedRaw },
];

export const capturedFixtures: FixtureFile[] = [
  { name: "loopback-ethernet.pcap", linkType: 1 },
  { name: "loopback-any-sll2.pcap", linkType: 276 },
  { name: "loopback-any-sll-snap96.pcap", linkType: 113 },
];

export interface ExpectedResults {
  tcpdump: string;
  files: FixtureFile[];
  cases: { expression: string; results: Record<string, TcpdumpResult> }[];
}

/** Numbers packets by their timestamp (packet i at i seconds) so tcpdump output identifies them. */
export function numbered(packets: CapturedPacket[]): CapturedPacket[] {
  return packets.map((packet, i) => ({ ...packet, seconds: i, microseconds: 0 }));
}

async function loopbackTraffic(): Promise<void> {
  const server = createServer((socket) => {
    socket.on("data", (data) => socket.end(Buffer.concat([Buffer.from("echo:"), data])));
  });
  await new Promise<void>((resolve) => server.listen(0, "::", resolve));
  const port = (server.address() as { port: number }).port;
  for (const host of ["127.0.0.1", "::1"]) {
    await new Promise<void>((resolve, reject) => {
      const client = createConnection({ host, port }, () => client.write("x".repeat(300)));
      client.on("data", () => undefined);
      client.on("end", () => resolve());
      client.on("error", reject);
    });
  }
  server.close();
  for (const [type, host] of [["udp4", "127.0.0.1"], ["udp6", "::1"]] as const) {
    const socket = createSocket(type);
    await new Promise<void>((resolve) => socket.send(Buffer.alloc(40, 7), 53, host, () => resolve()));
    await new Promise<void>((resolve) => socket.send(Buffer.alloc(1200, 9), 9999, host, () => resolve()));
    socket.close();
  }
  try {
    execFileSync("ping", ["-c", "2", "-i", "0.2", "127.0.0.1"], { stdio: "ignore" });
    execFileSync("ping", ["-c", "2", "-i", "0.2", "-s", "3000", "127.0.0.1"], { stdio: "ignore" });
    execFileSync("ping", ["-6", "-c", "2", "-i", "0.2", "::1"], { stdio: "ignore" });
  } catch {
    // ping may be missing; TCP and UDP traffic is enough
  }
}

async function captureLoopback(): Promise<void> {
  const directory = fixtureDirectory.pathname;
  const captures = [
    spawn("tcpdump", ["-i", "lo", "-U", "-w", directory + "raw-lo.pcap"], { stdio: "ignore" }),
    spawn("tcpdump", ["-i", "any", "-U", "-w", directory + "raw-any.pcap", "host 127.0.0.1 or host ::1"], { stdio: "ignore" }),
    spawn("tcpdump", ["-i", "any", "-y", "LINUX_SLL", "-s", "96", "-U", "-w", directory + "raw-any-sll.pcap", "host 127.0.0.1 or host ::1"], { stdio: "ignore" }),
  ];
  try {
    await sleep(1500);
    await loopbackTraffic();
    await sleep(1000);
  } finally {
    for (const capture of captures) capture.kill("SIGINT");
    await Promise.all(captures.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on("exit", resolve)))));
  }
  const renumber = (from: string, to: string, limit: number) => {
    const { linkType, packets } = readPcap(readFileSync(directory + from));
    writeFileSync(directory + to, writePcap(linkType, numbered(packets.slice(0, limit))));
    execFileSync("rm", ["-f", directory + from]);
  };
  renumber("raw-lo.pcap", "loopback-ethernet.pcap", 200);
  renumber("raw-any.pcap", "loopback-any-sll2.pcap", 200);
  renumber("raw-any-sll.pcap", "loopback-any-sll-snap96.pcap", 200);
}

async function main(): Promise<void> {
  const directory = fixtureDirectory.pathname;
  for (const fixture of craftedFixtures) {
    writeFileSync(directory + fixture.file.name, writePcap(fixture.file.linkType, numbered(fixture.packets())));
  }
  if (!process.argv.includes("--keep-captures")) await captureLoopback();
  const files = [...craftedFixtures.map((f) => f.file), ...capturedFixtures];
  const cases = await mapLimit(differentialExpressions, 4, async (expression) => {
    const results: Record<string, TcpdumpResult> = {};
    for (const file of files) results[file.name] = await tcpdumpSelect(directory + file.name, expression);
    return { expression, results };
  });
  const version = execFileSync("tcpdump", ["--version"]).toString().split("\n").slice(0, 2).join("; ");
  const expected: ExpectedResults = { tcpdump: version, files, cases };
  writeFileSync(directory + "expected.json", JSON.stringify(expected, null, 0).replace(/\{"expression"/g, '\n{"expression"') + "\n");
  console.log(`wrote ${cases.length} expressions x ${files.length} files`);
}

if (process.env.NETBPF_GENERATE_FIXTURES === "1") await main();
