/**
 * TCP options in the summaries, compared with `tcpdump -n -t` line by line in each mode (default, -v, -S,
 * -q, -x): seeded random segments over IPv4 and IPv6, SYN and not, with random option lists of every kind
 * (MPTCP of every subtype and length) — well-formed, with lengths too short, too long or past the header — SACK
 * blocks near the conversation's sequence numbers (relative, and absolute with -S), some segments cut by
 * the snap length inside or after their options.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LinkType } from "../../src/pcap/link-type.js";
import { skipUnlessKernel } from "../support/kernel.js";
import type { CapturedPacket } from "../support/pcap-writer.js";
import { concat, ethernet, ipv4, ipv6, u8, u16, u32, type Bytes } from "../support/packet-builder.js";
import { seededRandom } from "../support/seeded-random.js";
import { assertSameAsTcpdump, tcpdumpAvailable } from "./tcpdump-comparison.js";

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const integer = (random: Random, below: number) => Math.floor(random() * below);
const randomBytes = (random: Random, count: number) => Uint8Array.from({ length: count }, () => integer(random, 256));

const modes = [
  { flags: [], options: {} },
  { flags: ["-v"], options: { verbose: true } },
  { flags: ["-S"], options: { absoluteSequence: true } },
  { flags: ["-q"], options: { quiet: true } },
  { flags: ["-x"], options: { hexDump: "hex" as const } },
];

/** Each kind's usual data length (-1: any). */
const usualData = new Map([[2, 2], [3, 1], [4, 0], [6, 4], [7, 4], [8, 8], [11, 4], [12, 4], [13, 4], [19, 16], [20, 2], [28, 2]]);

/** The lengths tcpdump accepts for each MPTCP subtype (some of them for DSS). */
const mptcpLengths = [[4, 12, 20, 22], [12, 16, 24], [4, 8, 12, 16, 20, 22, 24, 28], [8, 10, 16, 18, 20, 22, 28, 30], [4, 5, 8], [3, 4], [12], [12]];

/** One option; `near`: sequence numbers of the conversation for SACK edges. */
function option(random: Random, near: number): Bytes {
  const roll = random();
  if (roll < 0.15) return u8(1);
  if (roll < 0.18) return u8(0);
  const kind = random() < 0.75 ? pick(random, [2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 19, 20, 28, 29, 30, 30, 30, 34, 253, 254]) : integer(random, 256);
  let data: Bytes;
  if (kind === 30) {
    // MPTCP: a subtype (in the high nibble) with one of the lengths tcpdump accepts for some subtype, or any.
    const subtype = random() < 0.9 ? integer(random, 9) : integer(random, 16);
    const size = random() < 0.7 ? pick(random, mptcpLengths[subtype] ?? [4]) : random() < 0.7 ? pick(random, [3, 4, 8, 10, 12, 16, 18, 20, 22, 24, 28, 30]) : integer(random, 38);
    data = concat(u8((subtype << 4) | pick(random, [0, 1, 4, 6, integer(random, 16)])), randomBytes(random, Math.max(0, size - 3)));
    if (data[1] !== undefined && random() < 0.5) data[1] = pick(random, [0x00, 0x01, 0x04, 0x05, 0x0f, 0x10, 0x81, 0xff]);
  } else if (kind === 5) {
    const blocks = integer(random, 4);
    data = concat(...Array.from({ length: blocks }, () => concat(u32((near + integer(random, 5000)) >>> 0), u32((near + integer(random, 9000)) >>> 0))));
  } else if (kind === 34 || kind === 254) {
    const cookie = randomBytes(random, pick(random, [0, 4, 6, 8, 16, integer(random, 18)]));
    data = kind === 254 ? concat(random() < 0.7 ? u16(0xf989) : u16(integer(random, 65536)), cookie) : cookie;
  } else data = randomBytes(random, usualData.get(kind) ?? integer(random, kind === 29 ? 8 : 12));
  // A length that disagrees with the data now and then: shorter, longer, below 2.
  const length = random() < 0.8 ? data.length + 2 : pick(random, [0, 1, integer(random, data.length + 2), data.length + 3 + integer(random, 6), integer(random, 41)]);
  return concat(u8(kind, length), data);
}

/** Up to 40 bytes of options, padded to whole words (the header length covers them). */
function options(random: Random, near: number): Bytes {
  const parts: Bytes[] = [];
  let size = 0;
  for (let count = integer(random, 5); count > 0 && size < 40; count--) {
    const next = option(random, near);
    parts.push(next);
    size += next.length;
  }
  const all = concat(...parts).subarray(0, 40);
  return concat(all, new Uint8Array((4 - (all.length % 4)) % 4));
}

function segments(seed: number, count: number): CapturedPacket[] {
  const random = seededRandom(seed);
  const hosts4 = ["10.0.0.1", "10.0.0.2", "192.168.1.9"];
  const hosts6 = ["2001:db8::1", "2001:db8::2", "fe80::9"];
  // Each host's initial sequence number, for SACK edges near the numbers of its conversations.
  const initial = [integer(random, 2 ** 32), integer(random, 2 ** 32), integer(random, 2 ** 32)];
  const packets: CapturedPacket[] = [];
  for (let i = 0; i < count; i++) {
    const from = integer(random, 3);
    const to = (from + 1 + integer(random, 2)) % 3;
    const ports = [pick(random, [40000, 40001]), pick(random, [40002, 40003])];
    const seq = (initial[from]! + integer(random, 3000)) >>> 0;
    const ack = (initial[to]! + integer(random, 3000)) >>> 0;
    const flags = pick(random, [0x02, 0x12, 0x10, 0x18, 0x11, 0x14, integer(random, 256)]);
    const list = options(random, random() < 0.5 ? initial[from]! : initial[to]!);
    const payload = randomBytes(random, random() < 0.7 ? 0 : integer(random, 30));
    const segment = concat(u16(ports[0]!), u16(ports[1]!), u32(seq), u32(ack), u8(((20 + list.length) / 4) << 4, flags), u16(integer(random, 65536)), u16(0), u16(0), list, payload);
    const ip = random() < 0.5 ? ipv4(6, segment, { source: hosts4[from], destination: hosts4[to] }) : ipv6(6, segment, { source: hosts6[from], destination: hosts6[to] });
    const frame = ethernet(ip[0]! >> 4 === 4 ? 0x0800 : 0x86dd, ip);
    const optionsStart = frame.length - payload.length - list.length;
    // Cut by the snap length: in the options or in the data behind them.
    const cut = random() < 0.25 ? Math.min(frame.length, optionsStart + integer(random, list.length + 4)) : frame.length;
    packets.push({ data: frame.subarray(0, cut), length: frame.length, seconds: 1_700_000_000 + i });
  }
  return packets;
}

for (const seed of [20261206, 20261207, 20261208]) {
  test(`TCP options: summaries match tcpdump -n line by line in default, -v, -S, -q and -x modes (seed ${seed})`, (t) => {
    if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
    const { text, verbose } = assertSameAsTcpdump(segments(seed, 3000), `tcp-options-${seed}`, LinkType.ETHERNET, modes);
    // The generated options reach tcpdump's decoders of every kind and its checks.
    for (const mark of ["mss ", "wscale ", "sackOK", "sack ", "echo ", "echoreply ", "TS val ", "cc ", "ccnew ", "md5 ", "scps cap ", "uto 0x", "tcp-ao ",
      "tfo ", "mptcp ", " capable v", "Unknown Version", " join ", " dss", " add-addr ", " rem-addr ", " prio ", " fail ", " fast-close ", " unknown", "exp-tfo", "exp-", "unknown-", "eol", "nop", "[len ", "[bad opt]", " [|tcp]", "invalid sack", " (invalid)", "cookiereq", " cookie "]) {
      assert.ok(text.includes(mark), `no tcpdump line with ${JSON.stringify(mark)}`);
    }
    assert.ok(verbose.includes("shared secret not supplied with -M") && verbose.includes("snaplen too short"), "md5 checks not reached");
  });
}

test("TCP options: every kind with every length 0–40, first and after a nop, matches tcpdump -n in each mode", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const random = seededRandom(20261209);
  const packets: CapturedPacket[] = [];
  for (let kind = 0; kind < 256; kind++) {
    for (let length = 0; length <= 40; length++) {
      const afterNop = length % 2 === 1;
      const list = concat(afterNop ? u8(1) : new Uint8Array(0), u8(kind, length), randomBytes(random, 38)).subarray(0, 40);
      const flags = pick(random, [0x02, 0x12, 0x10]);
      const segment = concat(u16(40000), u16(40002), u32(integer(random, 2 ** 32)), u32(integer(random, 2 ** 32)), u8(0xf0, flags), u16(512), u16(0), u16(0), list);
      packets.push({ data: ethernet(0x0800, ipv4(6, segment)), seconds: 1_700_000_000 });
    }
  }
  assertSameAsTcpdump(packets, "tcp-options-sweep", LinkType.ETHERNET, modes);
});
