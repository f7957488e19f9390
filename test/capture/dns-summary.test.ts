/**
 * DNS in the summaries, compared with tcpdump -n line by line in every mode
 * of tcpdump-comparison (default, -v, -q, -q -v, -e, -e -v -x): well-formed
 * queries and responses of many record types, compressed names, several
 * questions and answers, random flags, right and wrong checksums, and random,
 * truncated and garbage messages on port 53 (and mDNS on 5353), over IPv4
 * and IPv6, UDP and TCP, some cut by the snap length; crafted messages for
 * what -v adds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LinkType } from "../../src/pcap/link-type.js";
import { PacketSummarizer } from "../../src/capture/packet-summary.js";
import { assertSameAsTcpdump, tcpdumpAvailable } from "./tcpdump-comparison.js";
import { skipUnlessKernel } from "../support/kernel.js";
import { writePcap, type CapturedPacket } from "../support/pcap-writer.js";
import { concat, ethernet, ipv4, ipv6, tcp, u8, u16, u32, udp, withTransportChecksum, TCP, type Bytes } from "../support/packet-builder.js";
import { seededRandom } from "../support/seeded-random.js";

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const integer = (random: Random, below: number) => Math.floor(random() * below);
const text = (value: string) => new TextEncoder().encode(value);

/** A name as labels, ending in the root label or in a pointer to `pointer`. */
function name(labels: string[], pointer?: number): Bytes {
  const parts = labels.map((label) => concat(u8(text(label).length), text(label)));
  return concat(...parts, pointer === undefined ? u8(0) : u16(0xc000 | pointer));
}

function header(id: number, flags: number, counts: [number, number, number, number]): Bytes {
  return concat(u16(id), u16(flags), ...counts.map((count) => u16(count)));
}

function record(owner: Bytes, type: number, data: Bytes, klass = 1, ttl = 300): Bytes {
  return concat(owner, u16(type), u16(klass), u32(ttl), u16(data.length), data);
}

const labels = ["www", "example", "com", "mail", "ns1", "a-b", "x", "_sip", "_tcp", "local", "in-addr", "arpa", "ünï", "tab\there", "7f\u007f"];

function randomLabels(random: Random): string[] {
  const count = 1 + integer(random, 4);
  return Array.from({ length: count }, () => pick(random, labels));
}

/** Record data of `type` that refers to names in the message through a pointer to offset 12 (the first question). */
function recordData(random: Random, type: number): Bytes {
  switch (type) {
    case 1: return u8(integer(random, 256), integer(random, 256), integer(random, 256), integer(random, 256));
    case 28: return Uint8Array.from({ length: 16 }, () => (random() < 0.5 ? 0 : integer(random, 256)));
    case 2: case 5: case 12: case 39: return random() < 0.5 ? name(randomLabels(random), 12) : name(randomLabels(random));
    case 15: return concat(u16(integer(random, 100)), name(randomLabels(random), random() < 0.5 ? 12 : undefined));
    case 16: return concat(...Array.from({ length: 1 + integer(random, 3) }, () => { const value = randomLabels(random).join(" "); return concat(u8(value.length), text(value)); }));
    case 33: return concat(u16(integer(random, 20)), u16(integer(random, 100)), u16(integer(random, 65536)), name(randomLabels(random), 12));
    case 6: return concat(name(["ns1"], 12), name(["hostmaster"], 12), u32(2024010101), u32(3600), u32(600), u32(86400), u32(300));
    case 256: return concat(u16(10), u16(1), text("https://example.com/"));
    case 38: return concat(u8(64), new Uint8Array(8).fill(0x20), name(["a6"]));
    case 41: return concat(...Array.from({ length: integer(random, 4) }, () => ednsOption(random)));
    case 250: {
      const mac = Uint8Array.from({ length: pick(random, [0, 16, 32]) }, () => integer(random, 256));
      return concat(name(["hmac-sha256"]), u16(0), u32(1700000000), u16(300), u16(mac.length), mac, u16(integer(random, 65536)), u16(pick(random, [0, 16, 17, 18])), u16(0));
    }
    default: return Uint8Array.from({ length: integer(random, 12) }, () => integer(random, 256));
  }
}

/** An EDNS option (an OPT record in the answer section is the only place tcpdump prints them by default). */
function ednsOption(random: Random): Bytes {
  const code = pick(random, [1, 2, 3, 5, 6, 7, 8, 8, 8, 9, 10, 10, 11, 12, 13, 14, 15, 16, 17, 65001]);
  let data: Bytes;
  if (code === 8) {
    const source = pick(random, [0, 8, 24, 32, 33, 56, 64, 128, 129]);
    const bytes = Math.max(0, Math.ceil(source / 8) + (random() < 0.8 ? 0 : integer(random, 3) - 1));
    data = concat(u16(pick(random, [1, 2, 2, 0, 3])), u8(source, integer(random, 65)), Uint8Array.from({ length: bytes }, () => integer(random, 256)));
    if (random() < 0.1) data = data.subarray(0, integer(random, 4));
  } else if (code === 13) {
    data = name(randomLabels(random));
  } else {
    data = Uint8Array.from({ length: pick(random, [0, 1, 2, 3, 4, 8, 16, 24, 40, 41, integer(random, 50)]) }, () => integer(random, 256));
  }
  return concat(u16(code), u16(data.length + (random() < 0.05 ? 1 + integer(random, 4) : 0)), data);
}

const recordTypes = [1, 1, 28, 28, 2, 5, 5, 12, 15, 16, 33, 6, 39, 38, 256, 13, 99, 250, 41, 1234, 65280];

/** A well-formed query or response, with random flags. */
function wellFormed(random: Random): Bytes {
  const response = random() < 0.6;
  const questionCount = random() < 0.85 ? 1 : integer(random, 4);
  let flags = integer(random, 0x10000);
  if (random() < 0.7) flags &= 0x87b0; // mostly ordinary opcodes and rcodes
  flags = response ? flags | 0x8000 : flags & 0x7fff;
  const questions: Bytes[] = [];
  for (let i = 0; i < questionCount; i++) {
    const type = pick(random, [1, 28, 15, 16, 33, 12, 255, 6, 2, 65, 1234]);
    const klass = pick(random, [1, 1, 1, 3, 4, 255, 254, 0x8001]);
    questions.push(concat(i > 0 && random() < 0.5 ? name(["sub"], 12) : name(randomLabels(random)), u16(type), u16(klass)));
  }
  const answers: Bytes[] = [];
  const authority: Bytes[] = [];
  const additional: Bytes[] = [];
  if (response) {
    const answerCount = integer(random, 5);
    for (let i = 0; i < answerCount; i++) {
      const type = pick(random, recordTypes);
      const owner = questionCount > 0 && random() < 0.7 ? u16(0xc00c) : name(randomLabels(random));
      answers.push(record(owner, type, recordData(random, type), type === 41 ? pick(random, [512, 1232, 4096]) : random() < 0.9 ? 1 : pick(random, [3, 255, 0x8001]), type === 41 ? pick(random, [0, 0x8000, 0x01008000]) : integer(random, 100000)));
    }
    if (random() < 0.3) authority.push(record(u8(0), 6, recordData(random, 6)));
    if (random() < 0.4) additional.push(concat(u8(0), u16(41), u16(1232), u8(integer(random, 3), 0), u16(random() < 0.5 ? 0x8000 : 0), u16(0)));
  } else if (random() < 0.3) {
    additional.push(concat(u8(0), u16(41), u16(4096), u32(0), u16(0)));
  }
  return concat(header(integer(random, 65536), flags, [questions.length, answers.length, authority.length, additional.length]), ...questions, ...answers, ...authority, ...additional);
}

/** Broken messages: cut, wrong counts, bad pointers, odd labels, random bytes. */
function malformed(random: Random): Bytes {
  const message = wellFormed(random);
  switch (integer(random, 8)) {
    case 0: return message.subarray(0, integer(random, message.length));
    case 1: { const copy = Uint8Array.from(message); copy[4 + integer(random, 8)] = integer(random, 8); return copy; }
    case 2: return concat(header(integer(random, 65536), integer(random, 65536), [1, 0, 0, 0]), name(["loop"], 12 + integer(random, 16)), u16(1), u16(1));
    case 3: return concat(header(1, 0x0100, [1, 0, 0, 0]), u8(0x41, 8 * integer(random, 5)), Uint8Array.from({ length: integer(random, 6) }, () => integer(random, 256)), u8(0), u16(1), u16(1));
    case 4: return concat(header(2, 0x0100, [1, 0, 0, 0]), u8(0x40 | integer(random, 64)), u8(3, 0), u16(1), u16(1));
    case 5: return Uint8Array.from({ length: integer(random, 64) }, () => integer(random, 256));
    case 6: { const copy = Uint8Array.from(message); for (let i = 0; i < 3; i++) copy[integer(random, copy.length)] = integer(random, 256); return copy; }
    default: return concat(header(3, 0x8180, [1, 1, 0, 0]), name(["x".repeat(63), "y".repeat(63)]), u16(1), u16(1), record(u16(0xc00c), 1, u8(1, 2, 3, 4)), u8(0xc0));
  }
}

/** The capture: Ethernet frames, some cut by the snap length (`length` larger than the data). */
function dnsPackets(seed: number, count: number): CapturedPacket[] {
  const random = seededRandom(seed);
  const packets: CapturedPacket[] = [];
  for (let i = 0; i < count; i++) {
    const message = random() < 0.6 ? wellFormed(random) : malformed(random);
    const overTcpLikely = random() < 0.3;
    // UDP port 53 wins over every other port's printer in tcpdump; on TCP some come first (not generated here).
    const client = !overTcpLikely && random() < 0.1 ? pick(random, [67, 123, 161, 500, 4789, 7000, 5353]) : 32768 + integer(random, 28000);
    const server = random() < 0.9 ? 53 : 5353;
    const toServer = random() < 0.5;
    const overTcp = server === 53 && overTcpLikely;
    const [sourcePort, destinationPort] = toServer ? [client, server] : [server, client];
    const transport = overTcp
      ? tcp(sourcePort, destinationPort, TCP.ack | TCP.push, random() < 0.9 ? concat(u16(message.length + (random() < 0.1 ? 1 : 0)), message) : message.subarray(0, integer(random, 3)))
      : udp(sourcePort, destinationPort, message);
    if (!overTcp && random() < 0.05) {
      // A UDP length that disagrees with the IP length (tcpdump takes the smaller), or is below 8 (truncated-udplength).
      const length = random() < 0.2 ? integer(random, 8) : 8 + Math.max(0, message.length + integer(random, 21) - 10);
      transport[4] = length >> 8;
      transport[5] = length & 0xff;
    }
    const version4 = random() < 0.5;
    const network = version4
      ? ipv4(overTcp ? 6 : 17, transport, { source: "192.0.2.1", destination: "198.51.100.7" })
      : ipv6(overTcp ? 6 : 17, transport, { source: "2001:db8::53", destination: "fe80::1" });
    // Right and wrong transport checksums for -v.
    if (random() < 0.5) withTransportChecksum(network);
    const ip = ethernet(version4 ? 0x0800 : 0x86dd, network);
    const captured = random() < 0.15 ? ip.subarray(0, Math.max(14, ip.length - 1 - integer(random, 40))) : ip;
    packets.push({ data: captured, length: ip.length, seconds: 1700000000 + i, microseconds: 1000 * (i % 1000) });
  }
  return packets;
}

test("DNS summaries match tcpdump line by line in every compared mode on generated DNS traffic (UDP, TCP, IPv4, IPv6, mDNS)", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const { text, verbose } = assertSameAsTcpdump(dnsPackets(20261206, 1200), "dns");
  // The generated traffic reaches the DNS printer's paths.
  for (const mark of ["[|domain]", "(invalid)", " A? ", "(QM)?", "/", " CNAME ", " AAAA ", " MX ", " TXT ", " SRV ", " SOA", "<BAD PTR>", "length 23 ", "ECS ", "(invalid)]", "COOKIE ", "OPT UDPsize="]) {
    assert.ok(text.includes(mark), `no tcpdump line with ${JSON.stringify(mark)}`);
  }
  for (const mark of ["[|domain]", "[udp sum ok] ", "[bad udp cksum", ", cksum 0x", "[1au]", " SOA ns1.", " TSIG hmac-sha256. fudge=300 maclen=", "(correct)", "(incorrect", "(Cache flush)", " CNAME "]) {
    assert.ok(verbose.includes(mark), `no tcpdump -v text with ${JSON.stringify(mark)}`);
  }
});

test("DNS summaries match tcpdump in every compared mode on a second seed of generated DNS traffic", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  assertSameAsTcpdump(dnsPackets(20261207, 1200), "dns");
});

/** Crafted messages for -v: owner names, SOA and TSIG data, EDNS, checksums, DNS over TCP, mDNS, broken and cut records. */
function craftedPackets(): CapturedPacket[] {
  const q = name(["www", "example", "com"]);
  const query = (id: number, additional: Bytes[]) => concat(header(id, 0x0100, [1, 0, 0, additional.length]), q, u16(1), u16(1), ...additional);
  const opt = (options: Bytes, flags = 0x8000, size = 1232) => concat(u8(0), u16(41), u16(size), u32(flags), u16(options.length), options);
  const option = (code: number, data: Bytes) => concat(u16(code), u16(data.length), data);
  const soa = concat(name(["ns1"], 12), name(["hostmaster"], 12), u32(2024010101), u32(3600), u32(600), u32(86400), u32(300));
  const tsig = concat(name(["hmac-sha256"]), u16(0), u32(1700000000), u16(300), u16(4), u8(1, 2, 3, 4), u16(4242), u16(0), u16(0));
  const response = (id: number, flags: number, answers: Bytes[], counts?: [number, number, number, number]) =>
    concat(header(id, flags, counts ?? [1, answers.length, 0, 0]), counts?.[0] === 0 ? new Uint8Array(0) : concat(q, u16(1), u16(1)), ...answers);
  const messages: { message: Bytes; overTcp?: boolean; ports?: [number, number]; version?: 4 | 6; checksum?: boolean; cut?: number; udpLength?: number }[] = [
    { message: query(1, []) },
    { message: query(2, [opt(new Uint8Array(0))]) },
    { message: query(3, [opt(concat(option(10, u8(1, 2, 3, 4, 5, 6, 7, 8)), option(8, concat(u16(1), u8(24, 0, 192, 0, 2)))))]), version: 6, checksum: true },
    { message: response(4, 0x8180, [record(u16(0xc00c), 1, u8(192, 0, 2, 1)), record(name(["alias"], 12), 5, u16(0xc00c), 1, 7200)]) },
    { message: response(5, 0x8183, [record(u16(0xc00c), 6, soa)]), version: 6, checksum: true },
    { message: response(6, 0x8180, [record(u16(0xc00c), 6, soa), record(name(["key"]), 250, tsig, 255, 0)]), version: 6 },
    { message: response(7, 0x8180, [record(u16(0xc00c), 6, soa)]), cut: 8 },
    { message: response(8, 0x8180, [record(u16(0xc00c), 250, tsig)]), cut: 5 },
    { message: response(9, 0x8180, [opt(concat(option(13, u16(0xc004)), option(3, concat(u8(3), text("foo"), u8(0)))), 0x8000, 4096)], [0, 1, 0, 0]) },
    { message: response(10, 0x8180, [record(u16(0xc0ff), 1, u8(192, 0, 2, 1))]) },
    { message: response(11, 0x8180, [record(u16(0xc00c), 104, text("long\u0001string"))]) },
    { message: response(12, 0x8400, [record(name(["printer", "local"]), 12, name(["x"], 12), 0x8001, 120)], [0, 1, 0, 0]), ports: [5353, 5353] },
    { message: query(13, [opt(new Uint8Array(0))]), overTcp: true },
    { message: response(14, 0x8180, [record(u16(0xc00c), 28, Uint8Array.from({ length: 16 }, (_, i) => i))]), overTcp: true, version: 6, checksum: true },
    { message: concat(u16(99), query(15, [])), overTcp: true },
    // Six bytes of UDP header captured: tcpdump reads the length field.
    { message: query(16, []), udpLength: 1, cut: 35 },
    { message: query(17, []), udpLength: 9, cut: 35 },
    // Cuts where tcpdump unwinds its printer (-x then dumps the whole frame): the TCP length prefix, an A6 address,
    // a bit label of an owner name (read only with -v), a URI's priority and weight.
    { message: query(18, []), overTcp: true, cut: 34 },
    { message: response(19, 0x8180, [record(u16(0xc00c), 38, u8(0))]) },
    { message: response(20, 0x8180, [concat(u8(0x41, 64), u8(1, 2, 3))]) },
    { message: response(21, 0x8180, [record(u16(0xc00c), 256, u16(10))]) },
  ];
  return messages.map(({ message, overTcp, ports, version, checksum, cut, udpLength }, index) => {
    const [sourcePort, destinationPort] = ports ?? (index % 2 ? [53, 40000 + index] : [40000 + index, 53]);
    const transport = overTcp
      ? tcp(sourcePort, destinationPort, TCP.ack | TCP.push, message[0] === 0 && message[1] === 99 ? message : concat(u16(message.length), message))
      : udp(sourcePort, destinationPort, message);
    if (udpLength !== undefined) transport.set(u16(udpLength), 4);
    const network = version === 6 ? ipv6(overTcp ? 6 : 17, transport) : ipv4(overTcp ? 6 : 17, transport);
    if (checksum) withTransportChecksum(network);
    const frame = ethernet(version === 6 ? 0x86dd : 0x0800, network);
    return { data: frame.subarray(0, frame.length - (cut ?? 0)), length: frame.length, seconds: 1700000000 + index, microseconds: 0 };
  });
}

test("DNS -v on crafted messages matches tcpdump -n -v (owner names, SOA, TSIG, EDNS, checksums, TCP, mDNS, cut)", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const { verbose } = assertSameAsTcpdump(craftedPackets(), "dns-crafted");
  for (const text of ["    10.0.0.1.53 > 10.0.0.2.40003: 4 2/0/0 www.example.com. A 192.0.2.1, alias.www.example.com. CNAME www.example.com. (69)",
    "[udp sum ok] 5 NXDomain 1/0/0 www.example.com. SOA ns1.www.example.com. hostmaster.www.example.com. 2024010101 3600 600 86400 300 (84)",
    "key. ANY TSIG hmac-sha256. fudge=300 maclen=4 origid=4242 error=0 otherlen=0 (132)", "CHAIN foo.,NSID", "UNSPECAlong^Astring", "printer.local. (Cache flush) PTR",
    ", cksum 0x3abc (correct), seq 1000:1063, ack 2000, win 65535, length 63 14 1/0/0 www.example.com. AAAA", "truncated-udplength 1", "<BAD PTR> [|domain]"]) {
    assert.ok(verbose.includes(text), `no tcpdump -v text with ${JSON.stringify(text)}`);
  }
});

test("DNS: -q as tcpdump, -v after the IP header line with owner names, EDNS options of an OPT answer", () => {
  const query = concat(header(7, 0x0100, [1, 0, 0, 0]), name(["www"]), u16(1), u16(1));
  const packet = { data: ipv4(17, udp(40000, 53, query)), timestamp: 0n, linkType: LinkType.RAW };
  assert.equal(new PacketSummarizer({ timestampFormat: "none" }).summarize(packet), "IP 10.0.0.1.40000 > 10.0.0.2.53: 7+ A? www. (21)");
  assert.equal(new PacketSummarizer({ timestampFormat: "none", quiet: true }).summarize(packet), "IP 10.0.0.1.40000 > 10.0.0.2.53: UDP, length 21");
  assert.equal(new PacketSummarizer({ timestampFormat: "none", verbose: true }).summarize(packet),
    "IP (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto UDP (17), length 49)\n    10.0.0.1.40000 > 10.0.0.2.53: 7+ A? www. (21)");
  assert.equal(new PacketSummarizer({ timestampFormat: "none", verbose: true, quiet: true }).summarize(packet),
    "IP (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto UDP (17), length 49)\n    10.0.0.1.40000 > 10.0.0.2.53: UDP, length 21");
  const response = concat(header(7, 0x8180, [0, 1, 0, 0]), u8(0), u16(41), u16(1232), u32(0x8000), u16(6), u16(3), u16(2), u8(0x41, 0x42));
  assert.equal(new PacketSummarizer({ timestampFormat: "none" }).summarize({ data: ipv4(17, udp(53, 40000, response)), timestamp: 0n, linkType: LinkType.RAW }),
    "IP 10.0.0.1.53 > 10.0.0.2.40000: 7 [0q] 1/0/0 OPT UDPsize=1232 DO [NSID 4142] (29)");
  const answer = concat(header(8, 0x8180, [0, 1, 0, 0]), record(name(["www"]), 1, u8(192, 0, 2, 1), 1, 60));
  assert.equal(new PacketSummarizer({ timestampFormat: "none", verbose: true }).summarize({ data: withTransportChecksum(ipv6(17, udp(53, 40000, answer))), timestamp: 0n, linkType: LinkType.RAW }),
    "IP6 (hlim 64, next-header UDP (17) payload length: 39) 2001:db8::1.53 > 2001:db8::2.40000: [udp sum ok] 8 [0q] 1/0/0 www. A 192.0.2.1 (31)");
});

