/**
 * ARP in the summaries, compared with `tcpdump -n -t` line by line in each
 * mode (default, -v, -q, -e, -e -v -x, -x, -X, -e -q, -A): requests, replies, reverse,
 * inverse and unknown operations and ATM NAKs with random hardware and
 * protocol types and address lengths, Frame Relay (Q.922) and ATM (RFC 2225)
 * addresses, padding, garbage, messages cut by the snap length; over
 * Ethernet (ARP and RARP types, VLAN tags) and Linux cooked captures v1 and v2.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LinkType } from "../../src/pcap/link-type.js";
import { PacketSummarizer, type SummaryOptions } from "../../src/capture/packet-summary.js";
import { skipUnlessKernel } from "../support/kernel.js";
import type { CapturedPacket } from "../support/pcap-writer.js";
import { concat, ethernet, ethernetVlan, u8, u16, u32, type Bytes } from "../support/packet-builder.js";
import { seededRandom } from "../support/seeded-random.js";
import { assertSameAsTcpdump, comparedModes, tcpdumpAvailable } from "./tcpdump-comparison.js";

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const integer = (random: Random, below: number) => Math.floor(random() * below);
const randomBytes = (random: Random, count: number) => Uint8Array.from({ length: count }, () => integer(random, 256));

const modes: typeof comparedModes = [
  ...comparedModes,
  { flags: ["-x"], options: { hexDump: "hex" } },
  { flags: ["-X"], options: { hexDump: "hex-ascii" } },
  { flags: ["-e", "-q"], options: { linkLevel: true, quiet: true } },
  { flags: ["-A"], options: { hexDump: "ascii" } },
];

/** A hardware address: random, zero, or for Frame Relay a Q.922 address whose extension bits end it early, late or never. */
function hardwareAddress(random: Random, hardware: number, length: number): Bytes {
  if (random() < 0.15) return new Uint8Array(length);
  const address = randomBytes(random, length);
  if (hardware === 15) for (let i = 0; i < length; i++) address[i] = (address[i]! & 0xfe) | (random() < 0.4 ? 1 : 0);
  return address;
}

/** An ARP message: one in three of Ethernet and IPv4 addresses, the others of any types and lengths. */
function arpMessage(random: Random): Bytes {
  const usual = random() < 0.33;
  const hardware = usual ? 1 : pick(random, [1, 1, 1, 6, 7, 15, 15, 23, 24, 32, 0, integer(random, 65536)]);
  const protocol = usual ? 0x0800 : pick(random, [0x0800, 0x0800, 0x0800, 0x1000, 0x86dd, 0x0806, integer(random, 65536)]);
  const hardwareLength = usual ? 6 : hardware === 15 ? integer(random, 6) : pick(random, [6, 6, 6, 0, 1, 2, 3, 8, 16, integer(random, 40)]);
  const protocolLength = usual ? 4 : pick(random, [4, 4, 4, 4, 0, 3, 5, 16, integer(random, 20)]);
  const operation = usual ? pick(random, [1, 1, 2, 2, 3, 4, 8, 9]) : pick(random, [1, 1, 2, 2, 3, 4, 8, 9, 10, 0, 5, 11, integer(random, 65536)]);
  const address = () => randomBytes(random, protocolLength);
  return concat(u16(hardware), u16(protocol), u8(hardwareLength, protocolLength), u16(operation),
    hardwareAddress(random, hardware, hardwareLength), address(), hardwareAddress(random, hardware, hardwareLength), address());
}

/** ATM ARP: type-and-length bytes with the E.164 and reserved bits set at times, subaddresses, NAK. */
function atmArpMessage(random: Random): Bytes {
  const protocol = pick(random, [0x0800, 0x0800, 0x1000, 0x86dd, integer(random, 65536)]);
  const typeAndLength = () => (random() < 0.3 ? integer(random, 4) << 6 : 0) | pick(random, [20, 20, 6, 0, 1, integer(random, 64)]);
  const subaddress = () => (random() < 0.3 ? integer(random, 4) << 6 : 0) | (random() < 0.6 ? 0 : pick(random, [20, 1, integer(random, 64)]));
  const protocolLength = () => pick(random, [4, 4, 4, 0, 3, 16]);
  const senderHardware = typeAndLength();
  const senderSubaddress = subaddress();
  const senderProtocol = protocolLength();
  const targetHardware = typeAndLength();
  const targetSubaddress = subaddress();
  const targetProtocol = protocolLength();
  const operation = pick(random, [1, 2, 8, 9, 10, 3, 4, integer(random, 65536)]);
  const size = (senderHardware & 0x3f) + (senderSubaddress & 0x3f) + senderProtocol + (targetHardware & 0x3f) + (targetSubaddress & 0x3f) + targetProtocol;
  return concat(u16(19), u16(protocol), u8(senderHardware, senderSubaddress), u16(operation),
    u8(senderProtocol, targetHardware, targetSubaddress, targetProtocol), random() < 0.1 ? new Uint8Array(size) : randomBytes(random, size));
}

function message(random: Random): Bytes {
  const roll = random();
  if (roll < 0.65) return arpMessage(random);
  if (roll < 0.9) return atmArpMessage(random);
  return randomBytes(random, integer(random, 80));
}

/** The message after the link header of `linkType`, Ethernet frames as ARP or RARP, at times VLAN-tagged. */
function frame(random: Random, linkType: number, body: Bytes): Bytes {
  const type = random() < 0.85 ? 0x0806 : 0x8035;
  switch (linkType) {
    case LinkType.LINUX_SLL:
      return concat(u16(integer(random, 5)), u16(pick(random, [1, 1, 772, integer(random, 65536)])), u16(6), randomBytes(random, 6), u8(0, 0), u16(type), body);
    case LinkType.LINUX_SLL2:
      // ifindex 1 is lo in every namespace: tcpdump and the summarizer name it alike.
      return concat(u16(type), u16(0), u32(1), u16(1), u8(integer(random, 5), 6), randomBytes(random, 6), u8(0, 0), body);
    default:
      return random() < 0.1 ? ethernetVlan([[0x8100, integer(random, 4096)]], type, body) : ethernet(type, body);
  }
}

function arpPackets(seed: number, count: number, linkType: number): CapturedPacket[] {
  const random = seededRandom(seed);
  const packets: CapturedPacket[] = [];
  for (let i = 0; i < count; i++) {
    let body = message(random);
    // Padding after the message: Ethernet's minimum frame, or random bytes.
    if (random() < 0.3) body = concat(body, random() < 0.5 ? new Uint8Array(Math.max(0, 46 - body.length)) : randomBytes(random, integer(random, 30)));
    const whole = frame(random, linkType, body);
    const header = whole.length - body.length;
    // Cut by the snap length: in the link header now and then, mostly in the message or its padding.
    const data = random() < 0.2 ? whole.subarray(0, random() < 0.1 ? integer(random, header + 1) : header + integer(random, body.length + 1)) : whole;
    packets.push({ data, length: whole.length, seconds: 1_700_000_000 + i });
  }
  return packets;
}

for (const [linkType, name, seed] of [[LinkType.ETHERNET, "Ethernet", 20261206], [LinkType.LINUX_SLL, "SLL", 20261207], [LinkType.LINUX_SLL2, "SLL2", 20261208]] as const) {
  test(`ARP summaries match tcpdump -n line by line in each mode on generated ARP traffic over ${name}`, (t) => {
    if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
    const { text, verbose } = assertSameAsTcpdump(arpPackets(seed, 1000, linkType), `arp-${name.toLowerCase()}`, linkType, modes);
    // The generated traffic reaches the ARP printer's paths.
    for (const mark of ["ARP, Request who-has ", ") tell ", "ARP, Reply ", "Reverse Request who-is ", "Reverse Reply ", "Inverse Request who-is ", "Inverse Reply ",
      "NACK Reply for ", "ARP, Unknown (", " [|arp]", "DLCI ", "<Invalid DLCI>", "<Truncated>", "ARP, ATM, ", "(len 4/", "Unknown Hardware (", "Unknown Protocol (0x"]) {
      assert.ok(text.includes(mark), `no tcpdump line with ${JSON.stringify(mark)}`);
    }
    for (const mark of ["Ethernet (len 6), IPv4 (len 4), Request", "<wrong proto type>", "<wrong len>", "<wrong splen>", "<wrong tplen>", "<empty>", "<No address>", "Trail (len 4)",
      "FrameRelay (len ", "InfiniBand", "IEEE 1394"]) {
      assert.ok(verbose.includes(mark), `no tcpdump -v line with ${JSON.stringify(mark)}`);
    }
  });
}

test("ARP: padding, unknown types, reverse and inverse operations, Frame Relay and ATM addresses, cuts, -e and -x", () => {
  const line = (body: Bytes, options: SummaryOptions = {}, captured = Infinity, type = 0x0806) => {
    const data = ethernet(type, body);
    return new PacketSummarizer({ timestampFormat: "none", ...options }).summarize({ data: data.subarray(0, Math.min(captured, data.length)), originalLength: data.length, timestamp: 0n, linkType: LinkType.ETHERNET });
  };
  const sender = concat(u8(2, 0, 0, 0, 0, 1), u8(10, 0, 0, 1));
  const arp = (operation: number, target = concat(new Uint8Array(6), u8(10, 0, 0, 2)), hardware = 1, addresses = concat(sender, target), lengths = u8(6, 4)) =>
    concat(u16(hardware), u16(0x0800), lengths, u16(operation), addresses);
  // The length is what follows the link header on the wire, padding included.
  assert.equal(line(concat(arp(1), new Uint8Array(18))), "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 46");
  assert.equal(line(concat(arp(1), new Uint8Array(18)), { verbose: true }), "ARP, Ethernet (len 6), IPv4 (len 4), Request who-has 10.0.0.2 tell 10.0.0.1, length 46");
  assert.equal(line(arp(1, concat(u8(0, 0, 0, 0, 0, 0xff), u8(10, 0, 0, 2)))), "ARP, Request who-has 10.0.0.2 (00:00:00:00:00:ff) tell 10.0.0.1, length 28");
  assert.equal(line(new Uint8Array(110)), "ARP, Unknown Hardware (0) (len 0), Unknown Protocol (0x0000) (len 0), length 110");
  assert.equal(line(arp(3)), "ARP, Reverse Request who-is 00:00:00:00:00:00 tell 02:00:00:00:00:01, length 28");
  assert.equal(line(arp(4)), "ARP, Reverse Reply 00:00:00:00:00:00 at 10.0.0.2, length 28");
  assert.equal(line(arp(8)), "ARP, Inverse Request who-is 00:00:00:00:00:00 tell 02:00:00:00:00:01, length 28");
  assert.equal(line(arp(9)), "ARP, Inverse Reply 02:00:00:00:00:01 at 10.0.0.1, length 28");
  // RARP's own Ethernet type, with -e: no "ARP, " in front.
  assert.equal(line(arp(3), { linkLevel: true }, Infinity, 0x8035),
    "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype Reverse ARP (0x8035), length 42: Reverse Request who-is 00:00:00:00:00:00 tell 02:00:00:00:00:01, length 28");
  // Unknown operations (and NAK outside ATM) are dumped, with a space before the dump.
  assert.equal(line(arp(77)), "ARP, Unknown (77) \n\t0x0000:  0001 0800 0604 004d 0200 0000 0001 0a00  .......M........\n\t0x0010:  0001 0000 0000 0000 0a00 0002            ............");
  // Cut before the end of the last address: only the mark, and -x dumps the frame from its first byte.
  assert.equal(line(arp(1), {}, 14 + 27), " [|arp]");
  assert.equal(line(arp(1), { hexDump: "hex" }, 14 + 5), " [|arp]\n\t0x0000:  0200 0000 0002 0200 0000 0001 0806 0001\n\t0x0010:  0800 06");
  assert.equal(line(arp(1), { linkLevel: true }, 14 + 20), "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype ARP (0x0806), length 42:  [|arp]");
  // Frame Relay: hardware addresses are Q.922 addresses.
  const frameRelay = (address: number[]) => arp(2, undefined, 15, concat(u8(...address), u8(10, 0, 0, 1), u8(...address), u8(10, 0, 0, 2)), u8(address.length, 4));
  assert.equal(line(frameRelay([0x10, 0x01])), "ARP, Reply 10.0.0.1 is-at DLCI 64, length 20");
  assert.equal(line(frameRelay([0x10, 0x00, 0x02, 0x05])), "ARP, Reply 10.0.0.1 is-at DLCI 524353, length 24");
  assert.equal(line(frameRelay([0x10, 0x00, 0x02, 0x04])), "ARP, Reply 10.0.0.1 is-at <Invalid DLCI>, length 24");
  assert.equal(line(frameRelay([0x10, 0x00])), "ARP, Reply 10.0.0.1 is-at <Truncated>, length 20");
  // ATM ARP: addresses with subaddresses; tcpdump prints an inverse reply without a space before "at".
  const atm = (operation: number) => concat(u16(19), u16(0x0800), u8(2, 1), u16(operation), u8(4, 0, 0, 4), u8(0xaa, 0xbb, 0xcc), u8(10, 0, 0, 1), u8(10, 0, 0, 2));
  assert.equal(line(atm(2)), "ARP, Reply 10.0.0.1 is-at aa:bb,cc, length 23");
  assert.equal(line(atm(9)), "ARP, Inverse Reply aa:bb,ccat 10.0.0.1, length 23");
  assert.equal(line(atm(8), { verbose: true }), "ARP, ATM, IPv4 (len 4/4), Inverse Request who-is <No address> tell aa:bb,cc, length 23");
  assert.equal(line(atm(10)), "ARP, NACK Reply for 10.0.0.1, length 23");
});
