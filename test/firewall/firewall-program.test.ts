/**
 * The generated firewall program in the kernel (BPF_PROG_TEST_RUN) over
 * crafted frames, for both hooks: verdicts, rule order, counters.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BpfMap } from "../../src/core/map.js";
import { Program } from "../../src/core/program.js";
import { u32 } from "../../src/core/codec.js";
import { MapFlag, MapType } from "../../src/sys/bpf-constants.js";
import { formatAddressPrefix, ipv4PrefixKey, ipv6PrefixKey, parseAddressList, parseAddressPrefix, prefixKey } from "../../src/firewall/address-prefix.js";
import { firewallProgram, ruleCounter, TrieAction, trieValue, verdicts, type ProgramRule } from "../../src/firewall/firewall-program.js";
import { loadGenerated } from "../../src/firewall/hook-attachment.js";
import { UsageError } from "../../src/sys/errors.js";
import { arp, ethernet, icmp, ipv4, ipv6, tcp, udp, TCP } from "../support/packet-builder.js";
import { skipUnlessRoot } from "../support/kernel.js";

test("addresses and prefixes parse to canonical form; bad ones are usage errors naming the line", () => {
  assert.equal(formatAddressPrefix(parseAddressPrefix("10.0.0.0/8")), "10.0.0.0/8");
  assert.equal(formatAddressPrefix(parseAddressPrefix("192.0.2.7")), "192.0.2.7");
  assert.equal(formatAddressPrefix(parseAddressPrefix("2001:DB8::/32")), "2001:db8::/32");
  assert.equal(formatAddressPrefix(parseAddressPrefix("::ffff:192.0.2.1")), "::ffff:192.0.2.1", "RFC 5952 §5");
  assert.equal(formatAddressPrefix(parseAddressPrefix("2001:db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");
  assert.deepEqual([...parseAddressPrefix("2001:db8::1").address], [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  for (const bad of ["10.0.0.0/33", "10.1.0.0/8", "300.1.1.1", "example.com", "2001:db8::/129", "", "10.0.0.0/", "1.2.3.4/-1"]) {
    assert.throws(() => parseAddressPrefix(bad), UsageError, bad);
  }
  const list = parseAddressList("# a list\n10.0.0.0/8\n\n192.0.2.1 # one host\n2001:db8::/48\n", "list");
  assert.deepEqual(list.map(formatAddressPrefix), ["10.0.0.0/8", "192.0.2.1", "2001:db8::/48"]);
  assert.throws(() => parseAddressList("10.0.0.0/8\n192.0.2.1\nnot-an-address\n", "list"), /list line 3/);
});

const client = "192.0.2.2";
const server = "198.51.100.2";

function frameV4(protocol: "tcp" | "udp" | "icmp", options: { source?: string; destination?: string; sourcePort?: number; destinationPort?: number } = {}): Buffer {
  const payload = protocol === "tcp" ? tcp(options.sourcePort ?? 40000, options.destinationPort ?? 80, TCP.syn)
    : protocol === "udp" ? udp(options.sourcePort ?? 40000, options.destinationPort ?? 53) : icmp(8, 0);
  const number = protocol === "tcp" ? 6 : protocol === "udp" ? 17 : 1;
  return Buffer.from(ethernet(0x0800, ipv4(number, payload, { source: options.source ?? client, destination: options.destination ?? server })));
}

function frameV6(source: string, destination: string, destinationPort = 443): Buffer {
  return Buffer.from(ethernet(0x86dd, ipv6(6, tcp(40000, destinationPort, TCP.syn), { source, destination })));
}

interface Harness {
  run(frame: Buffer): "block" | "allow";
  counter(slot: number): bigint;
  close(): void;
}

type Lookup = "hash" | "trie";

/**
 * Loads the program for `hook` with fresh maps holding `prefixes` (prefix →
 * rule slot and action): exact-key hashes probed per prefix length (what
 * the firewall installs) or LPM tries (what older installs have).
 */
function harness(hook: "xdp" | "tc", rules: ProgramRule[], prefixes: [string, number, number][], defaultAction: "allow" | "block" = "allow", lookup: Lookup = "hash"): Harness {
  const type = lookup === "hash" ? MapType.Hash : MapType.LpmTrie;
  const flags = MapFlag.NoPrealloc;
  const v4 = BpfMap.create({ type, flags, key: ipv4PrefixKey, value: trieValue, maxEntries: 1 << 16 });
  const v6 = BpfMap.create({ type, flags, key: ipv6PrefixKey, value: trieValue, maxEntries: 1 << 16 });
  const counters = BpfMap.create({ type: MapType.PercpuArray, key: u32, value: ruleCounter, maxEntries: 64 });
  const lengths = { ipv4: new Set<number>(), ipv6: new Set<number>() };
  for (const [text, slot, action] of prefixes) {
    const prefix = parseAddressPrefix(text);
    (prefix.family === 4 ? v4 : v6).put(prefixKey(prefix), { slot, action, prefixLength: prefix.prefixLength, reserved: 0 });
    lengths[prefix.family === 4 ? "ipv4" : "ipv6"].add(prefix.prefixLength);
  }
  const prefixLengths = lookup === "hash" ? { prefixLengths: { ipv4: [...lengths.ipv4], ipv6: [...lengths.ipv6] } } : {};
  const program = loadGenerated("nbc_fw_test", hook === "xdp" ? "xdp" : "tc egress", firewallProgram({ hook, rules, defaultAction, ...prefixLengths }), { ipv4: v4, ipv6: v6, counters });
  return {
    run(frame) {
      const value = program.run({ data: frame }).returnValue | 0;
      if (value === verdicts[hook].block) return "block";
      assert.equal(value, verdicts[hook].allow, `unexpected verdict ${value}`);
      return "allow";
    },
    counter(slot) {
      return (counters.getPerCpu(slot) ?? []).reduce((sum, value) => sum + value.packets, 0n);
    },
    close() {
      program.close();
      v4.close();
      v6.close();
      counters.close();
    },
  };
}

for (const hook of ["xdp", "tc"] as const) {
  // At XDP (ingress) the peer is the source; at tc egress the destination.
  const peerV4 = (address: string) => (hook === "xdp" ? { source: address, destination: server } : { source: server, destination: address });
  const peerV6 = (address: string) => (hook === "xdp" ? frameV6(address, "2001:db8:2::2") : frameV6("2001:db8:2::2", address));

  for (const lookup of ["hash", "trie"] as const) test(`${hook}: address rules decide by longest prefix, IPv4 and IPv6, and count (${lookup})`, (t) => {
    if (skipUnlessRoot(t, "to create BPF maps and test-run programs")) return;
    const rules: ProgramRule[] = [
      { slot: 1, action: "block", hasAddresses: true, match: {} },
      { slot: 2, action: "allow", hasAddresses: true, match: {} },
      { slot: 3, action: "block", hasAddresses: true, match: {} },
    ];
    const fw = harness(hook, rules, [["10.0.0.0/8", 1, TrieAction.block], ["10.1.2.3", 2, TrieAction.allow], ["2001:db8:3::/48", 3, TrieAction.block]], "allow", lookup);
    try {
      assert.equal(fw.run(frameV4("tcp", peerV4("10.9.9.9"))), "block");
      assert.equal(fw.run(frameV4("udp", peerV4("10.1.2.3"))), "allow");
      assert.equal(fw.run(frameV4("icmp", peerV4("11.0.0.1"))), "allow");
      assert.equal(fw.run(peerV6("2001:db8:3::99")), "block");
      assert.equal(fw.run(peerV6("2001:db8:4::1")), "allow");
      assert.equal(fw.counter(1), 1n);
      assert.equal(fw.counter(2), 1n);
      assert.equal(fw.counter(3), 1n);
      assert.equal(fw.counter(0), 2n, "default policy decided the rest");
    } finally {
      fw.close();
    }
  });

  test(`${hook}: protocol, port range, expression and conditional address rules; first match wins`, (t) => {
    if (skipUnlessRoot(t, "to create BPF maps and test-run programs")) return;
    const rules: ProgramRule[] = [
      { slot: 1, action: "block", hasAddresses: true, match: { protocol: 17 } },
      { slot: 2, action: "allow", hasAddresses: false, match: { protocol: 6, ports: { first: 8000, last: 8100 } } },
      { slot: 3, action: "block", hasAddresses: false, match: { protocol: 6 } },
      { slot: 4, action: "block", hasAddresses: false, match: { expression: "icmp and host 203.0.113.9" } },
    ];
    const fw = harness(hook, rules, [["192.0.2.0/24", 1, TrieAction.conditional]]);
    try {
      assert.equal(fw.run(frameV4("udp", peerV4("192.0.2.5"))), "block", "conditional address rule: udp from the prefix");
      assert.equal(fw.run(frameV4("icmp", peerV4("192.0.2.5"))), "allow", "conditional address rule does not match icmp");
      assert.equal(fw.run(frameV4("tcp", { ...peerV4("198.18.0.1"), destinationPort: 8050 })), "allow", "port range (destination)");
      assert.equal(fw.run(frameV4("tcp", { ...peerV4("198.18.0.1"), sourcePort: 8100, destinationPort: 22 })), "allow", "port range (source, inclusive)");
      assert.equal(fw.run(frameV4("tcp", { ...peerV4("198.18.0.1"), sourcePort: 9000, destinationPort: 8101 })), "block", "outside the range: tcp rule");
      assert.equal(fw.run(frameV4("icmp", { source: "203.0.113.9", destination: "198.18.0.1" })), "block", "expression");
      assert.equal(fw.run(frameV4("icmp", { source: "203.0.113.8", destination: "198.18.0.1" })), "allow");
      assert.equal(fw.run(Buffer.from(ethernet(0x0806, arp(1, "192.0.2.1", "192.0.2.2")))), "allow", "ARP");
      assert.deepEqual([1, 2, 3, 4].map((slot) => fw.counter(slot)), [1n, 2n, 1n, 1n]);
    } finally {
      fw.close();
    }
  });

  test(`${hook}: drop by default keeps allow-listed peers and non-IP traffic`, (t) => {
    if (skipUnlessRoot(t, "to create BPF maps and test-run programs")) return;
    const rules: ProgramRule[] = [{ slot: 1, action: "allow", hasAddresses: true, match: {} }];
    const fw = harness(hook, rules, [["192.0.2.0/24", 1, TrieAction.allow]], "block");
    try {
      assert.equal(fw.run(frameV4("tcp", peerV4("192.0.2.9"))), "allow");
      assert.equal(fw.run(frameV4("tcp", peerV4("192.0.3.9"))), "block");
      assert.equal(fw.run(peerV6("2001:db8:9::1")), "block");
      assert.equal(fw.run(Buffer.from(ethernet(0x0806, arp(1, "192.0.2.1", "192.0.2.2")))), "allow");
      assert.equal(fw.counter(0), 2n);
    } finally {
      fw.close();
    }
  });
}

test("per-length exact lookups agree with an LPM trie on random mixed-length prefixes (IPv4 and IPv6)", (t) => {
  if (skipUnlessRoot(t, "to create BPF maps and test-run programs")) return;
  // A seeded generator: the same prefixes every run.
  let seed = 0x5eed;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const rules: ProgramRule[] = Array.from({ length: 8 }, (_, i) => ({ slot: i + 1, action: i % 2 ? "allow" : "block", hasAddresses: true, match: {} }));
  const masked = (bytes: number[], length: number) => bytes.map((byte, i) => (i * 8 >= length ? 0 : i * 8 + 8 <= length ? byte : byte & (0xff << (8 - (length - i * 8))) & 0xff));
  const v4Text = (bytes: number[]) => bytes.join(".");
  const v6Text = (bytes: number[]) => Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16)).join(":");
  const prefixes = new Map<string, [string, number, number]>();
  const hosts: { v4: number[][]; v6: number[][] } = { v4: [], v6: [] };
  for (let i = 0; i < 600; i++) {
    const slot = 1 + Math.floor(random() * 8);
    const action = slot % 2 ? TrieAction.block : TrieAction.allow;
    if (i % 3 === 2) {
      const bytes = [0x20, 0x01, 0x0d, 0xb8, ...Array.from({ length: 12 }, () => Math.floor(random() * 4))];
      const length = 32 + Math.floor(random() * 97);
      const text = `${v6Text(masked(bytes, length))}/${length}`;
      prefixes.set(text, [text, slot, action]);
      hosts.v6.push(bytes);
    } else {
      const bytes = [10, Math.floor(random() * 4), Math.floor(random() * 8), Math.floor(random() * 256)];
      const length = 8 + Math.floor(random() * 25);
      const text = `${v4Text(masked(bytes, length))}/${length}`;
      prefixes.set(text, [text, slot, action]);
      hosts.v4.push(bytes);
    }
  }
  const list = [...prefixes.values()];
  const hash = harness("xdp", rules, list, "allow", "hash");
  const trie = harness("xdp", rules, list, "allow", "trie");
  try {
    const frames: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const v4 = hosts.v4[i % hosts.v4.length]!.map((byte, j) => (j === 3 && random() < 0.5 ? Math.floor(random() * 256) : byte));
      frames.push(frameV4("udp", { source: v4Text(v4), destination: server }));
      const v6 = hosts.v6[i % hosts.v6.length]!.map((byte, j) => (j >= 12 && random() < 0.5 ? Math.floor(random() * 4) : byte));
      frames.push(frameV6(v6Text(v6), "2001:db8:2::2"));
    }
    // Peers no prefix covers.
    for (let i = 0; i < 20; i++) {
      frames.push(frameV4("udp", { source: `192.0.2.${i}`, destination: server }));
      frames.push(frameV6(`2001:db9::${i}`, "2001:db8:2::2"));
    }
    for (const frame of frames) assert.equal(hash.run(frame), trie.run(frame));
    for (let slot = 0; slot <= 8; slot++) assert.equal(hash.counter(slot), trie.counter(slot), `slot ${slot}`);
    assert.ok(hash.counter(0) > 0n && hash.counter(0) < BigInt(frames.length), "some frames matched no prefix, some did");
  } finally {
    hash.close();
    trie.close();
  }
});
