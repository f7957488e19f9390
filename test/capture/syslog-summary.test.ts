/**
 * Syslog in the summaries, compared with `tcpdump -n -t` line by line in
 * each mode (default, -v, -q, -e, -e -v -x): messages with every facility and
 * severity, priorities past the named facilities, malformed and missing
 * `<PRI>` prefixes, RFC 3164 and RFC 5424 text with control and 8-bit
 * bytes, some cut by the snap length, over IPv4 and IPv6; and which port
 * pairs tcpdump prints as syslog, over every other port both ways.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LinkType } from "../../src/pcap/link-type.js";
import { PacketSummarizer } from "../../src/capture/packet-summary.js";
import { skipUnlessKernel } from "../support/kernel.js";
import type { CapturedPacket } from "../support/pcap-writer.js";
import { concat, ethernet, ipv4, ipv6, udp, type Bytes } from "../support/packet-builder.js";
import { seededRandom } from "../support/seeded-random.js";
import { assertSameAsTcpdump, printerChoicesDiffering, tcpdumpAvailable } from "./tcpdump-comparison.js";

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const integer = (random: Random, below: number) => Math.floor(random() * below);
const randomBytes = (random: Random, count: number) => Uint8Array.from({ length: count }, () => integer(random, 256));
const text = (value: string) => Uint8Array.from(value, (c) => c.charCodeAt(0));

/** `<PRI>`: a usual priority, one past the named facilities, leading zeros, or malformed (four digits, none, a letter, no bracket). */
function prefix(random: Random): string {
  switch (integer(random, 12)) {
    case 0: return `<${200 + integer(random, 800)}>`;
    case 1: return `<0${integer(random, 100)}>`;
    case 2: return pick(random, ["<>", "<1000>", "<0034>", "<3a>", "34>", "<34", "<", "< 34>", "<-1>", "<34]"]);
    default: return `<${integer(random, 192)}>`;
  }
}

function body(random: Random): Bytes {
  switch (integer(random, 5)) {
    case 0: return text(`Oct ${1 + integer(random, 31)} 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/${integer(random, 9)}`);
    case 1: return text(`1 2003-10-11T22:14:15.003Z host.example.com app ${integer(random, 9999)} ID47 [exampleSDID@32473 iut="3"] \u00ef\u00bb\u00bfmessage`);
    case 2: return randomBytes(random, integer(random, 60));
    case 3: return text("line one\r\nline two\ttabbed\u007f");
    default: return new Uint8Array(0);
  }
}

function syslogPackets(seed: number, count: number): CapturedPacket[] {
  const random = seededRandom(seed);
  const packets: CapturedPacket[] = [];
  for (let i = 0; i < count; i++) {
    const message = random() < 0.05 ? randomBytes(random, integer(random, 8)) : concat(text(prefix(random)), body(random));
    // Other ports whose printers tcpdump tries after syslog's, and 2049 with an RPC direction word that is neither call nor reply.
    const other = random() < 0.15 ? pick(random, [7, 80, 1024, 2049, 49153, 60000]) : random() < 0.3 ? 514 : 20000 + integer(random, 29000);
    const [sourcePort, destinationPort] = random() < 0.5 ? [other, 514] : [514, other];
    if (other === 2049 && message.length >= 8) message[4] = 0xff;
    const datagram = udp(sourcePort, destinationPort, message);
    if (random() < 0.04) {
      // A UDP length that disagrees with the IP length: tcpdump gives syslog the smaller.
      const length = 8 + Math.max(0, message.length + integer(random, 21) - 10);
      datagram[4] = length >> 8;
      datagram[5] = length & 0xff;
    }
    const frame = random() < 0.6
      ? ethernet(0x0800, ipv4(17, datagram, { source: "192.0.2.1", destination: "198.51.100.14" }))
      : ethernet(0x86dd, ipv6(17, datagram, { source: "2001:db8::1", destination: "2001:db8::514" }));
    const captured = random() < 0.2 ? frame.subarray(0, Math.max(frame.length - message.length, frame.length - 1 - integer(random, 40))) : frame;
    packets.push({ data: captured, length: frame.length, seconds: 1_700_000_000 + i });
  }
  return packets;
}

test("syslog summaries match tcpdump -n line by line in each mode on generated syslog traffic (IPv4, IPv6, cut, malformed)", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const { text: output, verbose } = assertSameAsTcpdump(syslogPackets(20261209, 1500), "syslog");
  for (const mark of ["SYSLOG auth.", "SYSLOG kernel.emergency", "local7.", ".debug, length: ", "SYSLOG unknown (", " (invalid)", " [|syslog]"]) {
    assert.ok(output.includes(mark), `no tcpdump line with ${JSON.stringify(mark)}`);
  }
  for (const mark of ["SYSLOG, length: ", "\tFacility unknown (", "Severity debug (7)", "\tMsg: Oct ", "^M^J", "M-", " [|syslog]"]) {
    assert.ok(verbose.includes(mark), `no tcpdump -v line with ${JSON.stringify(mark)}`);
  }
  assert.ok(verbose.split("\n").some((line) => line.startsWith("\tMsg: ") && line.endsWith(" [|syslog]")), "no tcpdump -v message text cut by the snap length");
});

test("syslog: tcpdump's choice of printer by port, for every other port on either side", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const message = text("<34>Oct 11 22:14:15 mymachine su: 'su root' failed");
  // Port 2049 with RPC direction words 0 (call) and 1 (reply) in the message's place.
  const rpc = (word: number) => concat(text("<34>"), new Uint8Array([0, 0, 0, word]), text(" mymachine su"));
  const pairs: [number, number, Bytes][] = [];
  for (let port = 0; port < 65536; port++) pairs.push([port, 514, message], [514, port, message]);
  for (const word of [0, 1]) pairs.push([2049, 514, rpc(word)], [514, 2049, rpc(word)]);
  const directory = mkdtempSync(join(tmpdir(), "nb-syslog-ports-"));
  try {
    const path = join(directory, "ports.pcap");
    const packets = pairs.map(([source, destination, payload]) => ({ data: ethernet(0x0800, ipv4(17, udp(source, destination, payload))) }));
    const { theirs, differing } = printerChoicesDiffering(packets, path, (line) => (line.includes("SYSLOG") ? "SYSLOG" : ""));
    assert.deepEqual(differing.map((index) => `${pairs[index]![0]} > ${pairs[index]![1]}: ${theirs[index]}`), []);
    // The sweep reaches ports tried first on either side, as destination only, as source only, and NFS.
    for (const mark of [".514 > 10.0.0.2.161: ", ".1985: HSRP", ".49152 > 10.0.0.2.514: BCM-LI-SHIM", ".514 > 10.0.0.2.2049: NFS"]) {
      assert.ok(theirs.some((line) => line.includes(mark)), `no tcpdump line with ${JSON.stringify(mark)}`);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("syslog: a message at default and -v verbosity, -q, malformed prefixes, a cut, and port precedence", () => {
  const packet = (message: string, sourcePort = 40000, destinationPort = 514) => ({ data: ipv4(17, udp(sourcePort, destinationPort, text(message))), timestamp: 0n, linkType: LinkType.RAW });
  const line = (message: string, options: object = {}, sourcePort?: number, destinationPort?: number) =>
    new PacketSummarizer({ timestampFormat: "none", ...options }).summarize(packet(message, sourcePort, destinationPort));
  assert.equal(line("<34>Oct 11 22:14:15 mymachine su: 'su root' failed"), "IP 10.0.0.1.40000 > 10.0.0.2.514: SYSLOG auth.critical, length: 50");
  assert.equal(line("<34>hi", { quiet: true }), "IP 10.0.0.1.40000 > 10.0.0.2.514: UDP, length 6");
  assert.equal(line("<999>x\tz", { verbose: true }).split("\n").slice(1).join("\n"),
    "    10.0.0.1.40000 > 10.0.0.2.514: SYSLOG, length: 8\n\tFacility unknown (124) (124), Severity debug (7)\n\tMsg: x^Iz");
  assert.equal(line("<>x"), "IP 10.0.0.1.40000 > 10.0.0.2.514: SYSLOG kernel.emergency, length: 3");
  for (const malformed of ["<1000>x", "34>x", "<3a>x"]) assert.equal(line(malformed), "IP 10.0.0.1.40000 > 10.0.0.2.514:  (invalid)");
  assert.equal(line("<34"), "IP 10.0.0.1.40000 > 10.0.0.2.514:  [|syslog]");
  // A cut in the text: -v prints what was captured, then the mark, and -x dumps the frame from its start.
  const frame = ethernet(0x0800, ipv4(17, udp(40000, 514, text("<34>hello world"))));
  assert.equal(new PacketSummarizer({ timestampFormat: "none", verbose: true, hexDump: "hex" }).summarize({ data: frame.subarray(0, 14 + 28 + 8), originalLength: frame.length, timestamp: 0n, linkType: LinkType.ETHERNET })
    .split("\n").slice(3).join("\n"), "\tMsg: hell [|syslog]\n\t0x0000:  0200 0000 0002 0200 0000 0001 0800 4500\n\t0x0010:  002b 0001 0000 4011 66bf 0a00 0001 0a00\n\t0x0020:  0002 9c40 0202 0017 0000 3c33 343e 6865\n\t0x0030:  6c6c");
  // BOOTP and NTP, then SNMP, RADIUS, SIP …, are tried before syslog; 2049 as the destination of an RPC call is NFS.
  assert.equal(line("<34>hi", {}, 123, 514), "IP 10.0.0.1.123 > 10.0.0.2.514: NTPv7, Server, length 6");
  for (const port of [161, 1812, 6696]) assert.equal(line("<34>hi", {}, 514, port), `IP 10.0.0.1.514 > 10.0.0.2.${port}: UDP, length 6`);
  assert.equal(line("<34>hi", {}, 514, 5060), "IP 10.0.0.1.514 > 10.0.0.2.5060: SIP");
  assert.equal(line("<34>hi", {}, 514, 1985), "IP 10.0.0.1.514 > 10.0.0.2.1985: UDP, length 6");
  assert.equal(line("<34>hi", {}, 1985, 514), "IP 10.0.0.1.1985 > 10.0.0.2.514: SYSLOG auth.critical, length: 6");
});
