/**
 * NTP in the summaries, compared with `tcpdump -n -t` line by line in each
 * mode (default, -v, -q, -e, -e -v -x): time messages of every version and
 * mode with random fields, key IDs and digests, extra bytes, control
 * messages, short and garbage messages, some cut by the snap length, over
 * IPv4 and IPv6; port 123 against the ports whose printers tcpdump tries first.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LinkType } from "../../src/pcap/link-type.js";
import { PacketSummarizer } from "../../src/capture/packet-summary.js";
import { skipUnlessKernel } from "../support/kernel.js";
import type { CapturedPacket } from "../support/pcap-writer.js";
import { concat, ethernet, ipv4, ipv6, u8, u16, u32, udp, type Bytes } from "../support/packet-builder.js";
import { seededRandom } from "../support/seeded-random.js";
import { assertSameAsTcpdump, tcpdumpAvailable } from "./tcpdump-comparison.js";

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const integer = (random: Random, below: number) => Math.floor(random() * below);
const randomBytes = (random: Random, count: number) => Uint8Array.from({ length: count }, () => integer(random, 256));

/** A timestamp: zero, in either NTP era half, near another one, or random. */
function timestamp(random: Random, near: number): Bytes {
  switch (integer(random, 5)) {
    case 0: return new Uint8Array(8);
    case 1: return concat(u32(near), u32(integer(random, 2 ** 32)));
    case 2: return concat(u32(near + integer(random, 3) - 1), u32(pick(random, [0, 1, 5, 0x80000000, 0xffffffff])));
    case 3: return concat(u32(integer(random, 2 ** 31)), u32(integer(random, 2 ** 32)));
    default: return concat(u32(integer(random, 2 ** 32)), u32(integer(random, 2 ** 32)));
  }
}

function timeMessage(random: Random): Bytes {
  const mode = random() < 0.8 ? pick(random, [1, 2, 3, 4, 4, 5]) : pick(random, [0, 7]);
  const status = (integer(random, 4) << 6) | ((random() < 0.8 ? pick(random, [3, 4]) : integer(random, 8)) << 3) | mode;
  const stratum = pick(random, [0, 1, 1, 2, 3, 15, 16, 62, 63, 200, integer(random, 256)]);
  const poll = pick(random, [4, 6, 10, 17, -1, -6, 31, 32, -31, -32, integer(random, 256)]);
  const precision = pick(random, [-20, -23, -6, 0, 127, integer(random, 256)]);
  const referenceId = random() < 0.5 ? Uint8Array.from("GPS\0PPS\0", (c) => c.charCodeAt(0)).subarray(4 * integer(random, 2), 4 * integer(random, 2) + 4) : randomBytes(random, 4);
  const near = 3_900_000_000 + integer(random, 1000);
  const message = concat(u8(status, stratum, poll, precision), randomBytes(random, 8), referenceId,
    timestamp(random, near), timestamp(random, near), timestamp(random, near), timestamp(random, near));
  const tail = pick(random, [0, 0, 0, 4, 20, 24, 1, 5, 16, 52, integer(random, 80)]);
  return concat(message, tail === 4 || tail === 20 || tail === 24 ? concat(u32(integer(random, 2 ** 32)), randomBytes(random, tail - 4)) : randomBytes(random, tail));
}

function controlMessage(random: Random): Bytes {
  const status = (integer(random, 4) << 6) | (integer(random, 8) << 3) | 6;
  const count = random() < 0.4 ? 0 : integer(random, 40);
  const data = randomBytes(random, random() < 0.7 ? count : integer(random, 40));
  return concat(u8(status, integer(random, 256)), u16(integer(random, 65536)), u16(pick(random, [0, 0x0615, integer(random, 65536)])),
    u16(integer(random, 4)), u16(integer(random, 100)), u16(count), data);
}

function message(random: Random): Bytes {
  switch (integer(random, 10)) {
    case 0: case 1: case 2: case 3: case 4: return timeMessage(random);
    case 5: case 6: return controlMessage(random);
    case 7: return timeMessage(random).subarray(0, integer(random, 48));
    case 8: return controlMessage(random).subarray(0, integer(random, 12));
    default: return randomBytes(random, integer(random, 100));
  }
}

/** Ports whose printers tcpdump tries after NTP's (NTP wins), and 2049, where NTP wins unless the RPC direction word says call (to 2049) or reply (from it). */
const otherPorts = [88, 1701, 514, 7, 80, 2049];

function ntpPackets(seed: number, count: number): CapturedPacket[] {
  const random = seededRandom(seed);
  const packets: CapturedPacket[] = [];
  for (let i = 0; i < count; i++) {
    const body = message(random);
    const other = random() < 0.15 ? pick(random, otherPorts) : random() < 0.3 ? 123 : 1024 + integer(random, 60000);
    const [sourcePort, destinationPort] = random() < 0.5 ? [other, 123] : [123, other];
    if (other === 2049 && body.length >= 8) {
      // An RPC call to NFS or a reply from it is printed as NFS (not decoded by netbpf): keep the direction word off 0 and 1.
      body[4] = 0xff;
    }
    const datagram = udp(sourcePort, destinationPort, body);
    if (random() < 0.04) {
      // A UDP length that disagrees with the IP length: tcpdump gives NTP the smaller.
      const length = 8 + Math.max(0, body.length + integer(random, 21) - 10);
      datagram[4] = length >> 8;
      datagram[5] = length & 0xff;
    }
    const frame = random() < 0.6
      ? ethernet(0x0800, ipv4(17, datagram, { source: "192.0.2.1", destination: "198.51.100.123" }))
      : ethernet(0x86dd, ipv6(17, datagram, { source: "2001:db8::1", destination: "2001:db8::123" }));
    // Cut by the snap length inside the NTP message (cuts inside the headers are packet-summary.test.ts's).
    const captured = random() < 0.2 ? frame.subarray(0, Math.max(frame.length - body.length, frame.length - 1 - integer(random, 60))) : frame;
    packets.push({ data: captured, length: frame.length, seconds: 1_700_000_000 + i });
  }
  return packets;
}

test("NTP summaries match tcpdump -n line by line in each mode on generated NTP traffic (IPv4, IPv6, cut, odd ports)", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const { text, verbose } = assertSameAsTcpdump(ntpPackets(20261206, 1500), "ntp");
  // The generated traffic reaches the NTP printer's paths.
  for (const mark of ["NTPv4, Client, length 48", "NTPv3, Server", "Control Message", "Reserved", "NTPv0", "[|ntp]"]) {
    assert.ok(text.includes(mark), `no tcpdump line with ${JSON.stringify(mark)}`);
  }
  for (const mark of ["Stratum 1 (primary reference)", "INFO_QUERY", "(unspec)", "Key id:", "Authentication: ", "more bytes after the header",
    "Originator - Transmit Timestamp: -", "Originator - Receive Timestamp:  +", "(1900-", "(invalid)", "TO-BE-DONE", "Status=0,", " [|ntp]", "poll -31 (1/2147483648s)"]) {
    assert.ok(verbose.includes(mark), `no tcpdump -v line with ${JSON.stringify(mark)}`);
  }
});

test("NTP: a client request, its -v detail, -q, and port precedence", () => {
  const request = concat(u8(0x23, 0, 6, 0xec), new Uint8Array(36), u32(3_900_000_000), u32(0x80000000));
  const packet = (sourcePort: number, destinationPort: number) => ({ data: ipv4(17, udp(sourcePort, destinationPort, request)), timestamp: 0n, linkType: LinkType.RAW });
  const line = (options: object, sourcePort = 40000, destinationPort = 123) => new PacketSummarizer({ timestampFormat: "none", ...options }).summarize(packet(sourcePort, destinationPort));
  assert.equal(line({}), "IP 10.0.0.1.40000 > 10.0.0.2.123: NTPv4, Client, length 48");
  assert.equal(line({ quiet: true }), "IP 10.0.0.1.40000 > 10.0.0.2.123: UDP, length 48");
  assert.equal(line({ verbose: true }).split("\n").slice(1).join("\n"), [
    "    10.0.0.1.40000 > 10.0.0.2.123: NTPv4, Client, length 48",
    "\tLeap indicator:  (0), Stratum 0 (unspecified), poll 6 (64s), precision -20",
    "\tRoot Delay: 0.000000, Root dispersion: 0.000000, Reference-ID: (unspec)",
    "\t  Reference Timestamp:  0.000000000",
    "\t  Originator Timestamp: 0.000000000",
    "\t  Receive Timestamp:    0.000000000",
    "\t  Transmit Timestamp:   3900000000.500000000 (2023-08-02T21:20:00Z)",
    "\t    Originator - Receive Timestamp:  0.000000000",
    "\t    Originator - Transmit Timestamp: 3900000000.500000000 (2023-08-02T21:20:00Z)",
  ].join("\n"));
  // tcpdump prints BOOTP (and TFTP, SNMP …) before NTP, DNS before both.
  assert.equal(line({}, 68, 123), "IP 10.0.0.1.68 > 10.0.0.2.123: BOOTP/DHCP, unknown (0x23), length 48");
  assert.match(line({}, 123, 53), /: 8960 \[b2&3=0x6ec\]/);
  // Ports whose printers tcpdump tries before NTP's (TFTP, SNMP, ISAKMP, RIP, timed, AODV, NAT-T …) and that netbpf does not decode: UDP, length.
  for (const port of [69, 161, 162, 500, 520, 525, 654, 4500, 7500, 8500]) {
    assert.equal(line({}, port, 123), `IP 10.0.0.1.${port} > 10.0.0.2.123: UDP, length 48`);
    assert.equal(line({}, 123, port), `IP 10.0.0.1.123 > 10.0.0.2.${port}: UDP, length 48`);
  }
  // An RPC call to port 2049 (direction word 0) is NFS for tcpdump; other words leave it NTP.
  assert.equal(line({}, 123, 2049), "IP 10.0.0.1.123 > 10.0.0.2.2049: UDP, length 48");
  assert.equal(line({}, 2049, 123), "IP 10.0.0.1.2049 > 10.0.0.2.123: NTPv4, Client, length 48");
  // Cut inside the first byte's header: only the mark.
  assert.equal(new PacketSummarizer({ timestampFormat: "none" }).summarize({ data: ipv4(17, udp(123, 123, new Uint8Array(0))), timestamp: 0n, linkType: LinkType.RAW }),
    "IP 10.0.0.1.123 > 10.0.0.2.123:  [|ntp]");
});
