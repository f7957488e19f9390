/**
 * BOOTP/DHCP in the summaries, compared with `tcpdump -n -t` line by line in
 * each mode (default, -v, -q, -e, -e -v -x): requests and replies with random
 * header fields, sname and file, DHCP options of every format tcpdump knows
 * (message type, client ID, requested IP, parameter list, hostname, lease
 * time, server ID, subnet mask, router, DNS servers, relay agent, classless
 * routes, user class, FQDN, unknown ones, pad and end), CMU and unknown
 * vendor areas, short and garbage messages, some cut by the snap length.
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
const text = (value: string) => Uint8Array.from(value, (c) => c.charCodeAt(0));
const option = (tag: number, data: Bytes) => concat(u8(tag, data.length), data);

/** A NUL-padded field of `size` bytes: empty, a name, a name filling it (no NUL), or bytes with control and 8-bit characters. */
function nameField(random: Random, size: number): Bytes {
  const field = new Uint8Array(size);
  switch (integer(random, 5)) {
    case 0: case 1: return field;
    case 2: field.set(text(pick(random, ["server.example", "pxelinux.0", "boot/x86_64/grub.efi"]))); return field;
    case 3: return field.fill(0x41);
    default: field.set(randomBytes(random, integer(random, 20))); return field;
  }
}

function dhcpOption(random: Random): Bytes {
  const tag = pick(random, [53, 53, 61, 61, 50, 55, 55, 12, 51, 54, 1, 3, 6, 15, 57, 58, 59, 60, 81, 82, 121, 249, 77, 46, 52, 19, 21, 33, 2, 13, 0, 0,
    integer(random, 255), integer(random, 255)]);
  if (tag === 0) return u8(0);
  switch (tag) {
    case 53: return option(53, random() < 0.9 ? u8(pick(random, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 200])) : randomBytes(random, integer(random, 3)));
    case 61: return option(61, random() < 0.6 ? concat(u8(1), randomBytes(random, 6)) : concat(u8(pick(random, [0, 6, 7, 15, 23, 24, 99])), randomBytes(random, integer(random, 10))));
    case 55: return option(55, Uint8Array.from({ length: integer(random, 14) }, () => pick(random, [1, 3, 6, 12, 15, 28, 42, 51, 54, 119, 121, 249, 252, integer(random, 256)])));
    case 12: case 15: case 60: return option(tag, text(pick(random, ["host", "example.com", "MSFT 5.0", "udhcp 1.36.1", "x\u0001y\u00ff"])));
    case 82: {
      const parts: Bytes[] = [];
      for (let i = integer(random, 4); i > 0; i--) {
        const data = randomBytes(random, integer(random, 20));
        parts.push(concat(u8(pick(random, [1, 2, 6, 9, integer(random, 256)]), data.length + (random() < 0.1 ? 5 : 0)), data));
      }
      return option(82, concat(...parts, random() < 0.2 ? u8(1) : new Uint8Array(0)));
    }
    case 121: case 249: {
      const parts: Bytes[] = [];
      for (let i = 1 + integer(random, 3); i > 0; i--) {
        const width = pick(random, [0, 8, 16, 24, 25, 32, 33]);
        parts.push(concat(u8(width), randomBytes(random, Math.min(4, (width + 7) >> 3)), randomBytes(random, 4)));
      }
      const data = concat(...parts);
      return option(tag, random() < 0.8 ? data : data.subarray(0, integer(random, data.length)));
    }
    case 77: {
      const parts: Bytes[] = [];
      for (let i = integer(random, 3); i > 0; i--) {
        const data = randomBytes(random, integer(random, 8));
        parts.push(concat(u8(data.length + (random() < 0.1 ? 3 : 0)), data));
      }
      return option(77, concat(...parts));
    }
    case 81: return option(81, concat(u8(pick(random, [0, 1, 5, 0x0f, 0x31])), u8(integer(random, 2), integer(random, 2)), text("client.example"))).subarray(0, random() < 0.1 ? 4 : undefined);
    default: return option(tag, randomBytes(random, pick(random, [0, 1, 2, 3, 4, 4, 5, 6, 8, 9, 12, integer(random, 30)])));
  }
}

function vendorArea(random: Random): Bytes {
  switch (integer(random, 10)) {
    case 0: return concat(text("CMU\0"), u8(integer(random, 4), 0, 0, 0), ...Array.from({ length: 8 }, () => (random() < 0.5 ? u32(0) : randomBytes(random, 4))), new Uint8Array(24));
    case 1: return random() < 0.5 ? new Uint8Array(64) : randomBytes(random, integer(random, 64));
    default: {
      const options = Array.from({ length: integer(random, 12) }, () => dhcpOption(random));
      return concat(u8(99, 130, 83, 99), ...options, random() < 0.8 ? u8(255) : new Uint8Array(0), random() < 0.5 ? new Uint8Array(integer(random, 20)) : new Uint8Array(0));
    }
  }
}

function bootpMessage(random: Random): Bytes {
  const operation = random() < 0.9 ? pick(random, [1, 2]) : integer(random, 256);
  const ethernetAddress = random() < 0.85;
  const address = () => (random() < 0.5 ? u32(0) : randomBytes(random, 4));
  return concat(
    u8(operation, ethernetAddress ? 1 : pick(random, [6, 1, 32]), ethernetAddress ? 6 : pick(random, [6, 8, 16, 20]), random() < 0.8 ? 0 : integer(random, 256)),
    random() < 0.9 ? randomBytes(random, 4) : u32(0), u16(random() < 0.7 ? 0 : integer(random, 65536)), u16(pick(random, [0, 0x8000, integer(random, 65536)])),
    address(), address(), address(), address(), randomBytes(random, 16), nameField(random, 64), nameField(random, 128), vendorArea(random),
  );
}

function message(random: Random): Bytes {
  switch (integer(random, 10)) {
    case 0: return bootpMessage(random).subarray(0, integer(random, 300));
    case 1: return randomBytes(random, integer(random, 60));
    default: return bootpMessage(random);
  }
}

function bootpPackets(seed: number, count: number): CapturedPacket[] {
  const random = seededRandom(seed);
  const packets: CapturedPacket[] = [];
  for (let i = 0; i < count; i++) {
    const body = message(random);
    const [client, server] = random() < 0.15 ? [pick(random, [123, 161, 520, 2049, 40000]), pick(random, [67, 68])] : [68, 67];
    const [sourcePort, destinationPort] = random() < 0.5 ? [client, server] : [server, client];
    if ((sourcePort === 2049 || destinationPort === 2049) && body.length >= 8) body[4] = 0xff; // not an RPC call or reply: BOOTP for tcpdump
    const datagram = udp(sourcePort, destinationPort, body);
    if (random() < 0.04) {
      const length = 8 + Math.max(0, body.length + integer(random, 21) - 10);
      datagram[4] = length >> 8;
      datagram[5] = length & 0xff;
    }
    const frame = random() < 0.85
      ? ethernet(0x0800, ipv4(17, datagram, { source: "0.0.0.0", destination: "255.255.255.255" }))
      : ethernet(0x86dd, ipv6(17, datagram, { source: "fe80::1", destination: "ff02::1:2" }));
    const captured = random() < 0.25 ? frame.subarray(0, Math.max(frame.length - body.length, frame.length - 1 - integer(random, 300))) : frame;
    packets.push({ data: captured, length: frame.length, seconds: 1_700_000_000 + i });
  }
  return packets;
}

test("BOOTP/DHCP summaries match tcpdump -n line by line in each mode on generated traffic (options, vendor areas, cut, odd ports)", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const { text: lines, verbose } = assertSameAsTcpdump(bootpPackets(20261207, 1500), "bootp");
  for (const mark of ["BOOTP/DHCP, Request from ", "BOOTP/DHCP, Reply, length", "unknown (0x", "[|bootp]"]) {
    assert.ok(lines.includes(mark), `no tcpdump line with ${JSON.stringify(mark)}`);
  }
  for (const mark of ["DHCP-Message (53), length 1: Discover", "Client-ID (61), length 7: ether ", "Parameter-Request (55)", "Hostname (12)", "Lease-Time (51)",
    "Server-ID (54)", "Subnet-Mask (1)", "Default-Gateway (3)", "Domain-Name-Server (6)", "Requested-IP (50)", "Unknown (", "trailing data length", "Agent-Information (82)",
    "SubOption", "Classless-Static-Route (121)", "instance#1", "FQDN (81)", " vend-cmu", "Vendor-#0x", "sname \"", "file \"", "Flags [Broadcast]", "Your-IP ", "[ERROR: "]) {
    assert.ok(verbose.includes(mark), `no tcpdump -v line with ${JSON.stringify(mark)}`);
  }
});

test("BOOTP/DHCP: a DHCP discover, its -v detail, -q, and port precedence", () => {
  const discover = concat(u8(1, 1, 6, 0), u32(0x3903f326), u16(0), u16(0x8000), new Uint8Array(16), u8(2, 0, 0, 0, 0, 1), new Uint8Array(10 + 192),
    u8(99, 130, 83, 99), option(53, u8(1)), option(61, u8(1, 2, 0, 0, 0, 0, 1)), option(55, u8(1, 3, 6, 15, 51)), option(12, text("pc")), u8(0, 255));
  const packet = (sourcePort: number, destinationPort: number) => ({ data: ipv4(17, udp(sourcePort, destinationPort, discover)), timestamp: 0n, linkType: LinkType.RAW });
  const line = (options: object, sourcePort = 68, destinationPort = 67) => new PacketSummarizer({ timestampFormat: "none", ...options }).summarize(packet(sourcePort, destinationPort));
  assert.equal(line({}), "IP 10.0.0.1.68 > 10.0.0.2.67: BOOTP/DHCP, Request from 02:00:00:00:00:01, length 265");
  assert.equal(line({ quiet: true }), "IP 10.0.0.1.68 > 10.0.0.2.67: UDP, length 265");
  assert.equal(line({ verbose: true }).split("\n").slice(1).join("\n"), [
    "    10.0.0.1.68 > 10.0.0.2.67: BOOTP/DHCP, Request from 02:00:00:00:00:01, length 265, xid 0x3903f326, Flags [Broadcast]",
    "\t  Client-Ethernet-Address 02:00:00:00:00:01",
    "\t  Vendor-rfc1048 Extensions",
    "\t    Magic Cookie 0x63825363",
    "\t    DHCP-Message (53), length 1: Discover",
    "\t    Client-ID (61), length 7: ether 02:00:00:00:00:01",
    "\t    Parameter-Request (55), length 5: ",
    "\t      Subnet-Mask (1), Default-Gateway (3), Domain-Name-Server (6), Domain-Name (15)",
    "\t      Lease-Time (51)",
    "\t    Hostname (12), length 2: \"pc\"",
  ].join("\n"));
  // tcpdump prints DNS, mDNS, TFTP and timed before BOOTP; netbpf decodes DNS and prints UDP, length for the others.
  assert.match(line({}, 68, 53), /^IP 10\.0\.0\.1\.68 > 10\.0\.0\.2\.53: 257 /);
  for (const port of [69, 525]) assert.equal(line({}, 67, port), `IP 10.0.0.1.67 > 10.0.0.2.${port}: UDP, length 265`);
  // BOOTP wins over NTP.
  assert.match(line({}, 123, 67), /BOOTP\/DHCP, Request from/);
  // Nothing of the message captured: only the mark.
  assert.equal(new PacketSummarizer({ timestampFormat: "none" }).summarize({ data: ipv4(17, udp(68, 67, new Uint8Array(0))), timestamp: 0n, linkType: LinkType.RAW }),
    "IP 10.0.0.1.68 > 10.0.0.2.67:  [|bootp]");
});
