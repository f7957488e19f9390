import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCaptureWriter, readCaptureFile } from "../../src/pcap/capture-file.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { asciiDump, hexDump, ipv4AddressText, ipv6AddressText, macAddressText, PacketSummarizer, type SummaryOptions } from "../../src/capture/packet-summary.js";
import { UsageError } from "../../src/sys/errors.js";
import { skipUnlessKernel } from "../support/kernel.js";
import { craftedCookedPackets, craftedCookedV2Packets, craftedEthernetPackets, craftedRawPackets, randomPackets, type CraftedPacket } from "./summary-packets.js";

const tcpdumpAvailable = spawnSync("tcpdump", ["--version"]).status === 0;
const loopbackFixture = fileURLToPath(new URL("../../../test/capture/fixtures/tcpdump-loopback-mixed.pcap", import.meta.url));

const modes: { flags: string[]; options: SummaryOptions }[] = [
  { flags: [], options: {} },
  { flags: ["-e"], options: { linkLevel: true } },
  { flags: ["-v"], options: { verbose: true } },
  { flags: ["-e", "-v"], options: { linkLevel: true, verbose: true } },
  { flags: ["-x"], options: { hexDump: "hex" } },
  { flags: ["-X"], options: { hexDump: "hex-ascii" } },
  { flags: ["-e", "-X"], options: { linkLevel: true, hexDump: "hex-ascii" } },
  { flags: ["-q"], options: { quiet: true } },
  { flags: ["-q", "-v"], options: { quiet: true, verbose: true } },
];

/** tcpdump's output split into one block of lines per packet. */
function tcpdumpBlocks(path: string, flags: string[]): string[] {
  const result = spawnSync("tcpdump", ["-n", ...flags, "-r", path], { encoding: "utf8", env: { ...process.env, TZ: "UTC" } });
  assert.equal(result.status, 0, result.stderr);
  const blocks: string[] = [];
  for (const line of result.stdout.replace(/\n$/, "").split("\n")) {
    if (/^\d\d:\d\d:\d\d\.\d{6} /.test(line) || blocks.length === 0) blocks.push(line);
    else blocks[blocks.length - 1] += `\n${line}`;
  }
  return blocks;
}

function compareWithTcpdump(path: string, crafted: (CraftedPacket | undefined)[]): number {
  let compared = 0;
  for (const mode of modes) {
    const theirs = tcpdumpBlocks(path, mode.flags);
    const summarizer = new PacketSummarizer({ ...mode.options, timeZone: "utc" });
    const ours = readCaptureFile(path).packets.map((packet) => summarizer.summarize(packet));
    assert.equal(ours.length, theirs.length, `packet count with ${mode.flags.join(" ")}`);
    ours.forEach((line, index) => {
      const differs = crafted[index]?.differs;
      if (differs && (!differs.verboseOnly || mode.options.verbose)) {
        return; // a documented difference

      }
      assert.equal(line, theirs[index], `packet ${index} with tcpdump ${mode.flags.join(" ")}`);
      compared++;
    });
  }
  return compared;
}

function writeCapture(path: string, linkType: number, packets: Buffer[]): void {
  const writer = createCaptureWriter(path, { linkType, format: "pcap" });
  packets.forEach((data, index) => writer.writePacket({ data, timestamp: BigInt(1700000000 + index) * 1_000_000_000n + BigInt(123456000 + index * 1000) }));
  void writer.close();
}

test("summaries match tcpdump -n line by line on crafted packets (Ethernet, SLL, SLL2, raw) in every mode", async (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = mkdtempSync(join(tmpdir(), "nb-capture-summary-"));
  try {
    const ethernet = craftedEthernetPackets();
    const files: [string, number, Buffer[], (CraftedPacket | undefined)[]][] = [
      ["ethernet.pcap", LinkType.ETHERNET, ethernet.map((packet) => packet.data), ethernet],
      ["sll.pcap", LinkType.LINUX_SLL, craftedCookedPackets(), []],
      ["sll2.pcap", LinkType.LINUX_SLL2, craftedCookedV2Packets(), []],
      ["raw.pcap", LinkType.RAW, craftedRawPackets(), []],
    ];
    let compared = 0;
    for (const [name, linkType, packets, crafted] of files) {
      const path = join(directory, name);
      writeCapture(path, linkType, packets);
      compared += compareWithTcpdump(path, crafted);
    }
    assert.ok(compared > 300, `compared ${compared} packet summaries`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("summaries match tcpdump -n on 600 seeded random TCP/UDP/ICMP frames over IPv4 and IPv6, in every mode", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = mkdtempSync(join(tmpdir(), "nb-capture-summary-"));
  try {
    const path = join(directory, "random.pcap");
    writeCapture(path, LinkType.ETHERNET, randomPackets(20261125, 600));
    assert.equal(compareWithTcpdump(path, []), 600 * modes.length);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("summaries match tcpdump -n on a tcpdump loopback capture (TCP handshake, data, UDP, ICMP/ICMPv6 unreachable, echo)", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const compared = compareWithTcpdump(loopbackFixture, []);
  assert.equal(compared, 18 * modes.length);
});

test("TCP sequence numbers are relative per conversation, as tcpdump prints them", () => {
  const summarizer = new PacketSummarizer({ timeZone: "utc" });
  const lines = readCaptureFile(loopbackFixture).packets.map((packet) => summarizer.describe(packet));
  assert.match(lines[2]!, /Flags \[S\], seq 3038634372,/);
  assert.match(lines[5]!, /Flags \[P\.\], seq 1:101, ack 1,/);
  // A new summarizer has no history: the same packet shows absolute numbers.
  const fresh = new PacketSummarizer().describe(readCaptureFile(loopbackFixture).packets[5]!);
  assert.match(fresh, /seq 3038634373:3038634473, ack 4099369790,/);
});

test("timestamps: local or UTC time of day, micro- or nanoseconds", () => {
  const packet = { data: Buffer.alloc(0), linkType: LinkType.RAW, timestamp: 1700000000123456789n };
  assert.equal(new PacketSummarizer({ timeZone: "utc" }).formatTimestamp(packet.timestamp), "22:13:20.123456");
  assert.equal(new PacketSummarizer({ timeZone: "utc", timestampPrecision: "nanosecond" }).formatTimestamp(packet.timestamp), "22:13:20.123456789");
  // No bytes: tcpdump's text for an invalid record.
  assert.equal(new PacketSummarizer({ timeZone: "utc" }).summarize(packet), "22:13:20.123456 [Invalid header: caplen==0, len==0]");
});

test("IPv6 text follows RFC 5952", () => {
  const address = (hex: string) => ipv6AddressText(Buffer.from(hex, "hex"), 0);
  assert.equal(address("00000000000000000000000000000001"), "::1");
  assert.equal(address("20010db8000000000001000000000001"), "2001:db8::1:0:0:1");
  assert.equal(address("20010db8000100000000000000000000"), "2001:db8:1::");
  assert.equal(address("00000000000000000000ffff0a000001"), "::ffff:10.0.0.1");
  assert.equal(address("20010db8000100010001000100010001"), "2001:db8:1:1:1:1:1:1");
});

test("hex dumps: 16 bytes a line, odd tails, ASCII column", () => {
  assert.equal(hexDump(Buffer.from("hello world!!"), false), "\n\t0x0000:  6865 6c6c 6f20 776f 726c 6421 21");
  assert.equal(hexDump(Buffer.from("ab"), true), `\n\t0x0000:  6162${" ".repeat(35)}  ab`);
  assert.equal(hexDump(Buffer.alloc(0), true), "");
  // -A: a carriage return before a newline or among the last two bytes is left out, as tcpdump does (checked against it).
  for (const [bytes, text] of [["ab\rc", "abc"], ["ab\r", "ab"], ["a\r\nb", "a\nb"], ["a\rbc", "a.bc"], ["x\r\r", "x"], ["\x01é", ".."]]) {
    assert.equal(asciiDump(Buffer.from(bytes!, "latin1")), `\n${text}`);
  }
});

test("unsupported link types and garbage never throw", () => {
  const summarizer = new PacketSummarizer({ verbose: true, linkLevel: true, hexDump: "hex-ascii" });
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 3000; i++) {
    const data = Buffer.from(Array.from({ length: Math.floor(random() * 90) }, () => Math.floor(random() * 256)));
    const linkType = [LinkType.ETHERNET, LinkType.LINUX_SLL, LinkType.LINUX_SLL2, LinkType.RAW, 147][i % 5]!;
    if (linkType === LinkType.ETHERNET && data.length > 14) data.writeUInt16BE([0x800, 0x86dd, 0x806, 0x8100][i % 4]!, 12);
    if (linkType === LinkType.RAW && data.length > 0) data[0] = (data[0]! & 0x0f) | (i % 2 ? 0x40 : 0x60);
    assert.equal(typeof summarizer.summarize({ data, linkType, timestamp: 0n }), "string");
  }
  assert.match(new PacketSummarizer().describe({ data: Buffer.alloc(4), linkType: 147, timestamp: 0n }), /unsupported link type 147/);
});

test("packet summary: options and the text helpers' arguments are checked, naming them", () => {
  const refused = (field: string) => (error: unknown) => error instanceof UsageError && error.message.includes(field);
  assert.throws(() => new PacketSummarizer({ timestampFormat: "tttt" as "date" }), refused("options.timestampFormat"));
  assert.throws(() => new PacketSummarizer({ hexDump: "x" as "hex" }), refused("options.hexDump"));
  assert.throws(() => new PacketSummarizer({ verbose: "yes" as unknown as boolean }), refused("options.verbose"));
  assert.throws(() => new PacketSummarizer({ interfaceName: "lo" as never }), refused("options.interfaceName"));
  assert.throws(() => new PacketSummarizer("x" as SummaryOptions), refused("options"));
  assert.throws(() => hexDump([1, 2] as unknown as Uint8Array, false), refused("data"));
  assert.throws(() => hexDump(Buffer.of(1), undefined as unknown as boolean), refused("ascii"));
  assert.throws(() => ipv6AddressText(Buffer.alloc(16), 1), refused("offset"));
  assert.throws(() => ipv4AddressText(Buffer.alloc(4), -1), refused("offset"));
  assert.throws(() => macAddressText(Buffer.alloc(6), 0, 0), refused("length"));
  assert.equal(macAddressText(Buffer.of(0, 0x11, 0x22, 0x33, 0x44, 0xff)), "00:11:22:33:44:ff");
  assert.equal(ipv4AddressText(Buffer.of(9, 10, 0, 0, 1), 1), "10.0.0.1");
});
