/**
 * Differential tests against tcpdump/libpcap: files we write must read
 * cleanly in tcpdump with the same packets and timestamps, and files tcpdump
 * captures on loopback must read the same in our reader.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../../src/pcap/capture-file.js";
import { BufferSink } from "../../src/pcap/capture-sink.js";
import type { ByteOrder } from "../../src/pcap/capture-record.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { PcapngWriter } from "../../src/pcap/pcapng-writer.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { samplePackets, samplePcap, udpFrame } from "./capture-samples.js";

const tcpdumpAvailable = spawnSync("tcpdump", ["--version"]).status === 0;

interface TcpdumpPacket {
  time: string;
  hex: string;
}

/** Runs `tcpdump -r` and returns each packet's printed time and bytes. */
function tcpdumpRead(path: string, precision: "micro" | "nano"): { packets: TcpdumpPacket[]; stderr: string; status: number | null } {
  const result = spawnSync("tcpdump", ["-r", path, "-nn", "-tt", "-xx", `--time-stamp-precision=${precision}`], { encoding: "utf8" });
  const packets: TcpdumpPacket[] = [];
  for (const line of result.stdout.split("\n")) {
    const hexLine = /^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4} ?)+)/.exec(line);
    if (hexLine && packets.length > 0) packets[packets.length - 1]!.hex += hexLine[1]!.replace(/\s+/g, "");
    else if (/^\d+\.\d+ /.test(line)) packets.push({ time: line.split(" ")[0]!, hex: "" });
  }
  return { packets, stderr: result.stderr, status: result.status };
}

function timeText(timestamp: bigint, digits: 6 | 9): string {
  const seconds = timestamp / 1_000_000_000n;
  const nanoseconds = timestamp % 1_000_000_000n;
  const fraction = digits === 9 ? nanoseconds : nanoseconds / 1000n;
  return `${seconds}.${fraction.toString().padStart(digits, "0")}`;
}

/** tcpdump reads the file without complaint and sees exactly what our reader sees. */
function assertTcpdumpAgrees(path: string): void {
  const ours = readCaptureFile(path).packets;
  assert.ok(ours.length > 0);
  for (const precision of ["micro", "nano"] as const) {
    const theirs = tcpdumpRead(path, precision);
    assert.equal(theirs.status, 0, theirs.stderr);
    const complaints = theirs.stderr.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("reading from file"));
    assert.deepEqual(complaints, [], "tcpdump printed warnings");
    assert.equal(theirs.packets.length, ours.length, "packet count");
    ours.forEach((packet, i) => {
      const expected = precision === "nano" ? timeText(packet.timestamp, 9) : timeText(packet.timestamp, 6);
      assert.equal(theirs.packets[i]!.time, expected, `packet ${i} time (${precision})`);
      assert.equal(theirs.packets[i]!.hex, packet.data.toString("hex"), `packet ${i} bytes`);
    });
  }
}

function withDirectory(run: (directory: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const directory = mkdtempSync(join(tmpdir(), "nb-pcap-tcpdump-"));
    try {
      await run(directory);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  };
}

function requireTcpdump(t: TestContext): boolean {
  return skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed");
}

for (const byteOrder of ["little", "big"] as const) {
  for (const resolution of ["microsecond", "nanosecond"] as const) {
    test(`tcpdump reads our ${byteOrder}-endian ${resolution} pcap`, async (t) => {
      if (requireTcpdump(t)) return;
      await withDirectory((directory) => {
        const path = join(directory, "ours.pcap");
        writeFileSync(path, samplePcap(byteOrder, resolution, 25));
        assertTcpdumpAgrees(path);
      })();
    });
  }
}

function richPcapng(byteOrder: ByteOrder): Buffer {
  const sink = new BufferSink();
  const writer = new PcapngWriter(sink, { byteOrder, userApplication: "netbpf", os: "Linux", comments: ["section"] });
  writer.addInterface({ linkType: LinkType.ETHERNET, name: "lo", filter: "udp", comments: ["first"] });
  writer.addInterface({ linkType: LinkType.ETHERNET, name: "veth0", timestampResolution: { base: 10, exponent: 6 }, timestampOffset: 100n });
  writer.addInterface({ linkType: LinkType.ETHERNET, name: "veth1", timestampResolution: { base: 10, exponent: 3 } });
  writer.addInterface({ linkType: LinkType.ETHERNET, name: "binary", timestampResolution: { base: 2, exponent: 30 } });
  writer.addInterface({ linkType: LinkType.ETHERNET, name: "tenth-ns", timestampResolution: { base: 10, exponent: 10 } });
  writer.writeNameResolution({ records: [{ type: "ipv4", address: "10.0.0.2", names: ["server"] }] });
  samplePackets(30, 3).forEach((packet, i) => {
    writer.writePacket({
      ...packet,
      interfaceIndex: i % 5,
      direction: i % 2 ? "inbound" : "outbound",
      comments: i % 5 === 0 ? [`packet ${i}`] : [],
      process: i % 4 === 0 ? { pid: 1000 + i, command: "curl" } : undefined,
      packetId: BigInt(i),
      dropCount: 0n,
      queue: 1,
      hashes: [{ algorithm: 2, value: Buffer.alloc(4, i) }],
      verdicts: [{ type: 2, value: Buffer.alloc(8) }],
      customOptions: [{ code: 19372, privateEnterpriseNumber: 32473, data: Buffer.from("x") }],
    });
    if (i === 10) writer.writeRawBlock(0x80000042, Buffer.from("skip me"));
    if (i === 20) writer.writeInterfaceStatistics({ interfaceIndex: 0, interfaceReceived: 20n, interfaceDropped: 0n, osDropped: 0n, userDelivered: 20n, startTime: packet.timestamp, endTime: packet.timestamp });
  });
  writer.writeSimplePacket(udpFrame(1, 2, Buffer.from("simple")));
  return sink.toBuffer();
}

for (const byteOrder of ["little", "big"] as const) {
  test(`tcpdump reads our ${byteOrder}-endian pcapng with every block kind`, async (t) => {
    if (requireTcpdump(t)) return;
    await withDirectory((directory) => {
      const path = join(directory, "ours.pcapng");
      writeFileSync(path, richPcapng(byteOrder));
      assertTcpdumpAgrees(path);
      const capture = readCaptureFile(path);
      assert.equal(capture.packets.length, 31);
      assert.equal(capture.statistics.length, 1);
      assert.equal(capture.nameResolutions.length, 1);
    })();
  });
}

/** Captures `count` UDP datagrams we send to 127.0.0.1 with tcpdump -w. */
async function captureLoopback(path: string, count: number, precision: "micro" | "nano"): Promise<string[]> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const receiver = createSocket("udp4");
  await new Promise<void>((resolve) => receiver.bind(0, "127.0.0.1", resolve));
  const port = receiver.address().port;
  const tcpdump = spawn(
    "tcpdump",
    ["-i", "lo", "-w", path, "-c", String(count), "-U", "-nn", `--time-stamp-precision=${precision}`, "udp", "and", "dst", "port", String(port)],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const payloads: string[] = [];
  let sender: NodeJS.Timeout | undefined;
  let killer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let stderr = "";
      tcpdump.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes("listening on")) resolve();
      });
      tcpdump.on("exit", (code) => reject(new Error(`tcpdump exited with ${code}: ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => tcpdump.on("exit", (code) => resolve(code)));
    let sequence = 0;
    sender = setInterval(() => {
      const payload = `netbpf-pcap-test ${precision} ${sequence++} ${"x".repeat(sequence * 7)}`;
      payloads.push(payload);
      socket.send(payload, port, "127.0.0.1");
    }, 15);
    killer = setTimeout(() => tcpdump.kill("SIGTERM"), 20000);
    const code = await exited;
    assert.equal(code, 0, "tcpdump capture");
  } finally {
    clearInterval(sender);
    clearTimeout(killer);
    if (tcpdump.exitCode === null) tcpdump.kill("SIGTERM");
    socket.close();
    receiver.close();
  }
  return payloads;
}

for (const precision of ["micro", "nano"] as const) {
  test(`we read what tcpdump -w captures on loopback (${precision}second timestamps)`, async (t) => {
    if (requireTcpdump(t) || skipUnlessKernel(t, isRoot(), "capturing on lo needs root")) return;
    await withDirectory(async (directory) => {
      const path = join(directory, "tcpdump.pcap");
      const count = 6;
      const payloads = await captureLoopback(path, count, precision);
      const capture = readCaptureFile(path);
      assert.equal(capture.format, "pcap");
      assert.equal(capture.interfaces[0]!.linkType, LinkType.ETHERNET);
      assert.equal(capture.interfaces[0]!.timestampResolution.exponent, precision === "nano" ? 9 : 6);
      assert.equal(capture.packets.length, count);
      capture.packets.forEach((packet, i) => {
        // Ethernet (14) + IPv4 (20) + UDP (8) headers, then our payload.
        assert.equal(packet.data.subarray(42).toString(), payloads[i], `packet ${i} payload`);
        assert.equal(packet.originalLength, packet.data.length);
      });
      const now = BigInt(Date.now()) * 1_000_000n;
      assert.ok(capture.packets.every((packet) => packet.timestamp <= now && now - packet.timestamp < 120_000_000_000n), "timestamps are recent");
      assertTcpdumpAgrees(path);
    })();
  });
}

for (const format of ["pcap", "pcapng"] as const) {
  test(`writing ${format} to standard output ("-") pipes straight into tcpdump -r -`, async (t) => {
    if (requireTcpdump(t)) return;
    const fileModule = new URL("../../src/pcap/capture-file.js", import.meta.url).href;
    const samplesModule = new URL("./capture-samples.js", import.meta.url).href;
    const script = `
      import { createCaptureWriter } from ${JSON.stringify(fileModule)};
      import { samplePackets } from ${JSON.stringify(samplesModule)};
      const writer = createCaptureWriter("-", { linkType: 1, format: ${JSON.stringify(format)}, resolution: "nanosecond" });
      for (const packet of samplePackets(40, 9)) writer.writePacket({ ...packet, process: { pid: 5, command: "node" } });
      await writer.close();
    `;
    const result = spawnSync("sh", ["-c", `"${process.execPath}" --input-type=module -e "$SCRIPT" | tcpdump -r - -tt -nn --time-stamp-precision=nano`], {
      encoding: "utf8",
      env: { ...process.env, SCRIPT: script },
    });
    assert.equal(result.status, 0, result.stderr);
    const times = result.stdout.trim().split("\n").map((line) => line.split(" ")[0]);
    assert.deepEqual(times, samplePackets(40, 9).map((packet) => timeText(packet.timestamp, 9)));
  });
}
