/**
 * Malformed IPv4 and IPv6 headers in the summaries, compared with `tcpdump -n -t` line by line in each mode
 * (default, -v, -q, -q -v, -e, -e -v -x, -x): well-formed generated frames (randomPackets) with their IP
 * header mutated — version, IHL, total / payload length, flags and fragment offset, TTL 0, IPv4 options
 * (EOL, NOP, RR, LSRR, SSRR, timestamp, RA, security, unknown, with bad lengths and pointers), cuts by the snap
 * length and frames shorter on the wire than their IP length — over Ethernet, Linux cooked v1 and v2 and
 * raw IP (DLT_RAW, IPV4, IPV6); and ICMPv6 messages with no payload or cut in their quoted packet or target address.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LinkType } from "../../src/pcap/link-type.js";
import { skipUnlessKernel } from "../support/kernel.js";
import type { CapturedPacket } from "../support/pcap-writer.js";
import { concat, u8, u16, u32, type Bytes } from "../support/packet-builder.js";
import { seededRandom } from "../support/seeded-random.js";
import { randomPackets } from "./summary-packets.js";
import { assertSameAsTcpdump, comparedModes, tcpdumpAvailable } from "./tcpdump-comparison.js";

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const integer = (random: Random, below: number) => Math.floor(random() * below);
const randomBytes = (random: Random, count: number) => Uint8Array.from({ length: count }, () => integer(random, 256));

const modes: typeof comparedModes = [...comparedModes, { flags: ["-x"], options: { hexDump: "hex" } }];

/** One IPv4 option: well-formed or with a bad length, pointer or type. */
function ipv4Option(random: Random): Bytes {
  const length = (usual: number) => (random() < 0.7 ? usual : integer(random, 14));
  switch (integer(random, 9)) {
    case 0: return u8(0);
    case 1: return u8(1);
    case 2:
    case 3: {
      // Record route, loose and strict source route: addresses, the pointer at one of them or past them.
      const count = integer(random, 3);
      const size = length(3 + 4 * count);
      return concat(u8(pick(random, [7, 131, 137]), size, pick(random, [4, 8, 4 + 4 * count, integer(random, 256)])), randomBytes(random, Math.max(0, size - 3)));
    }
    case 4: {
      // Timestamps: only, with addresses, prespecified, or an unknown type; overflow count in the high bits.
      const type = pick(random, [0, 1, 3, integer(random, 16)]);
      const hop = type === 0 ? 4 : 8;
      const count = integer(random, 3);
      const size = length(4 + hop * count);
      const flags = (random() < 0.4 ? integer(random, 16) << 4 : 0) | type;
      return concat(u8(68, size, pick(random, [5, 5 + hop, 5 + hop * count, integer(random, 256)]), flags), randomBytes(random, Math.max(0, size - 4)));
    }
    case 5: return concat(u8(148, length(4)), random() < 0.5 ? u16(0) : u16(integer(random, 65536)));
    case 6: return concat(u8(130, length(11)), randomBytes(random, 9));
    case 7: return concat(u8(pick(random, [82, 99, 200, integer(random, 256)]), length(4)), randomBytes(random, 2));
    default: return u8(pick(random, [7, 68, 148]), integer(random, 2));
  }
}

/** `count` words of IPv4 options. */
function ipv4Options(random: Random, words: number): Bytes {
  const parts: Bytes[] = [];
  let size = 0;
  while (size < 4 * words) {
    const option = ipv4Option(random);
    parts.push(option);
    size += option.length;
  }
  return concat(...parts).subarray(0, 4 * words);
}

/** The IPv4 datagram `ip` (a copy) with one or two of its header fields mutated. */
function mutateIpv4(random: Random, ip: Uint8Array): Uint8Array {
  let data: Uint8Array = Uint8Array.from(ip);
  for (let i = 1 + integer(random, 2); i > 0; i--) {
    switch (integer(random, 6)) {
      case 0: data[0] = (integer(random, 16) << 4) | (data[0]! & 0x0f); break;
      // Longer than 20 without options inserted: the transport header read as options (not ICMP's: see docs/capture.md).
      case 1: data[0] = (data[0]! & 0xf0) | integer(random, data[9] === 1 ? 5 : 16); break;
      case 2: {
        // Options inserted: the header length and total length follow, or not.
        const headerWords = Math.max(5, data[0]! & 0x0f);
        if (headerWords === 15) break;
        const words = 1 + integer(random, 15 - headerWords);
        data = concat(data.subarray(0, 4 * headerWords), ipv4Options(random, words), data.subarray(4 * headerWords));
        data[0] = (data[0]! & 0xf0) | (headerWords + words);
        if (random() < 0.8 || data[9] === 1) {
          const total = ((data[2]! << 8) | data[3]!) + 4 * words;
          data[2] = total >> 8;
          data[3] = total & 0xff;
        }
        break;
      }
      case 3: {
        // (ICMP messages keep their length: see docs/capture.md)
        if (data[9] === 1) break;
        const total = pick(random, [0, integer(random, 20), 20 + integer(random, 40), data.length - 1 - integer(random, 8), data.length + 1 + integer(random, 30), integer(random, 65536)]);
        data[2] = (total >> 8) & 0xff;
        data[3] = total & 0xff;
        break;
      }
      case 4: {
        const word = pick(random, [0x2000, 0x4000, 0x8000, integer(random, 65536), 0x2000 | integer(random, 0x2000)]);
        data[6] = word >> 8;
        data[7] = word & 0xff;
        break;
      }
      default: data[8] = 0;
    }
  }
  return data;
}

/** The IPv6 packet `ip` (a copy) with its version or payload length mutated. */
function mutateIpv6(random: Random, ip: Uint8Array): Uint8Array {
  const data = Uint8Array.from(ip);
  // (ICMPv6 messages keep their length: see docs/capture.md)
  if (random() < 0.35 || data[6] === 58) data[0] = (pick(random, [0, 4, 5, 7, integer(random, 16)]) << 4) | (data[0]! & 0x0f);
  else {
    const payload = data.length - 40;
    const length = pick(random, [0, integer(random, payload + 1), payload + 1 + integer(random, 30), integer(random, 65536)]);
    data[4] = length >> 8;
    data[5] = length & 0xff;
  }
  return data;
}

/** The IP packet behind the link header of `linkType`. */
function frame(random: Random, linkType: number, ip: Uint8Array, etherType: number): Bytes {
  switch (linkType) {
    case LinkType.LINUX_SLL:
      return concat(u16(integer(random, 5)), u16(1), u16(6), randomBytes(random, 6), u8(0, 0), u16(etherType), ip);
    case LinkType.LINUX_SLL2:
      // ifindex 1 is lo in every namespace: tcpdump and the summarizer name it alike.
      return concat(u16(etherType), u16(0), u32(1), u16(1), u8(integer(random, 5), 6), randomBytes(random, 6), u8(0, 0), ip);
    case LinkType.ETHERNET:
      return concat(u8(2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1), u16(etherType), ip);
    default:
      return ip;
  }
}

const raw = (linkType: number) => linkType === LinkType.RAW || linkType === LinkType.IPV4 || linkType === LinkType.IPV6;

function mutatedPackets(seed: number, count: number, linkType: number): CapturedPacket[] {
  const random = seededRandom(seed);
  const packets: CapturedPacket[] = [];
  for (const [index, ethernetFrame] of randomPackets(seed, count).entries()) {
    const etherType = (ethernetFrame[12]! << 8) | ethernetFrame[13]!;
    let ip: Uint8Array = ethernetFrame.subarray(14);
    const roll = random();
    if (roll < 0.8) ip = etherType === 0x0800 ? mutateIpv4(random, ip) : mutateIpv6(random, ip);
    // Raw IP is printed by its version: not the other version's (tcpdump would decode the other header's bytes as such).
    const other = etherType === 0x0800 ? 6 : 4;
    if (raw(linkType) && ip[0]! >> 4 === other) ip[0] = (5 << 4) | (ip[0]! & 0x0f);
    const whole = frame(random, linkType, ip, etherType);
    const header = whole.length - ip.length;
    // Cut by the snap length (the wire had all of it), or shorter on the wire than the IP header says.
    let cut = random() < 0.3 ? header + integer(random, Math.min(ip.length, 80) + 1) : whole.length;
    // (ICMP and ICMPv6 messages are not cut, nor shortened on the wire: see docs/capture.md)
    const version = ip[0]! >> 4;
    const icmp = (version === 4 && ip[9] === 1) || (version === 6 && ip[6] === 58);
    const transport = header + (version === 4 ? Math.max(20, (ip[0]! & 0x0f) * 4) : 40);
    if (icmp && cut >= transport) cut = whole.length;
    const data = whole.subarray(0, Math.max(1, cut));
    packets.push({ data, length: random() < 0.5 || icmp ? whole.length : data.length, seconds: 1_700_000_000 + index });
  }
  return packets;
}

const linkTypes = [
  [LinkType.ETHERNET, "Ethernet", 20261210],
  [LinkType.LINUX_SLL, "SLL", 20261211],
  [LinkType.LINUX_SLL2, "SLL2", 20261214],
  [LinkType.RAW, "RAW", 20261213],
  [LinkType.IPV4, "IPV4", 20261216],
  [LinkType.IPV6, "IPV6", 20261215],
] as const;

for (const [linkType, name, seed] of linkTypes) {
  test(`malformed IP headers: summaries match tcpdump -n line by line in each mode over ${name}`, (t) => {
    if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
    const { text, verbose } = assertSameAsTcpdump(mutatedPackets(seed, 1500, linkType), `ip-header-${name.toLowerCase()}`, linkType, modes);
    // The mutations reach the IP printers' checks.
    // (raw IP goes to the printer of its version: no version errors there)
    const versionMarks = raw(linkType) ? ["unknown ip "] : [" (invalid)", "IP6 version error: "];
    for (const mark of ["IP bad-hlen ", "IP bad-len ", "truncated-ip - ", "truncated-ip6 - ", " [remaining caplen(", ...versionMarks]) {
      assert.ok(text.includes(mark), `no tcpdump line with ${JSON.stringify(mark)}`);
    }
    for (const mark of [", options (", "EOL", "NOP", "RR ", "LSRR", "SSRR", "timestamp TS{", "TS+ADDR", "TSONLY", "[bad ts type", "RA", "security", "unknown ", "[bad length ", "[bad ptr ", " [truncated-option]", "hops not recorded"]) {
      assert.ok(verbose.includes(mark), `no tcpdump -v line with ${JSON.stringify(mark)}`);
    }
  });
}

test("ICMP and ICMPv6 messages cut by the snap length or with no payload match tcpdump -n in each mode", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const v6 = (payloadLength: number, message: Bytes) =>
    concat(u8(2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1), u16(0x86dd), u8(0x60, 0, 0, 0), u16(payloadLength), u8(58, 64), new Uint8Array(15), u8(1), new Uint8Array(15), u8(2), message);
  const quoted = concat(u8(0x60, 0, 0, 0, 0, 8, 17, 64), new Uint8Array(32), u16(1), u16(2), u16(8), u16(0));
  const messages = [
    v6(0, new Uint8Array(0)),
    ...[[1, 0], [1, 1], [1, 2], [1, 3], [3, 0], [135, 0], [136, 0]].map(([type, code]) => v6(56, concat(u8(type!, code!, 0, 0), new Uint8Array(4), quoted))),
  ];
  const packets: CapturedPacket[] = [];
  for (const data of messages) {
    // (whole neighbor messages are left out: their options follow the target address)
    if (data[54] !== 135 && data[54] !== 136) packets.push({ data, seconds: 1_700_000_000 });
    // Cut in the quoted packet or target address.
    if (data.length > 64) packets.push({ data: data.subarray(0, 14 + 40 + 8 + 10), length: data.length, seconds: 1_700_000_000 });
  }
  assertSameAsTcpdump(packets, "ip-header-icmp6-cuts", LinkType.ETHERNET, modes);
});
