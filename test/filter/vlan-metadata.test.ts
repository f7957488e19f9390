import { test } from "node:test";
import assert from "node:assert/strict";
import { Interpreter } from "../../src/asm/interpreter.js";
import { packetHelpers, socketBufferContext } from "../../src/asm/contexts.js";
import { Program } from "../../src/core/program.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { evaluatePredicate, type FilterPacket } from "../../src/filter/evaluate-predicate.js";
import { generateFilterProgram, type GenerateFilterOptions } from "../../src/filter/generate-filter-program.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { ethernet, ethernetVlan, ipv4, ipv6, tcp, udp } from "../support/packet-builder.js";

const tcp80 = ipv4(6, tcp(40000, 80, 0x02));
const udp53 = ipv6(17, udp(5353, 53));

/** Frames as a live skb shows them: data, plus the TCI of a tag the kernel stripped (if any). */
const packets: { name: string; packet: FilterPacket }[] = [
  { name: "untagged ipv4", packet: { data: ethernet(0x0800, tcp80) } },
  { name: "stripped 10, ipv4", packet: { data: ethernet(0x0800, tcp80), vlanTci: 10 } },
  { name: "stripped 10 priority 5, ipv4", packet: { data: ethernet(0x0800, tcp80), vlanTci: (5 << 13) | 10 } },
  { name: "stripped 20, ipv6", packet: { data: ethernet(0x86dd, udp53), vlanTci: 20 } },
  { name: "in data 10, ipv4", packet: { data: ethernetVlan([[0x8100, 10]], 0x0800, tcp80) } },
  { name: "in data 802.1ad 20, ipv6", packet: { data: ethernetVlan([[0x88a8, 20]], 0x86dd, udp53) } },
  { name: "stripped 10, inner 20 in data, ipv4", packet: { data: ethernetVlan([[0x8100, 20]], 0x0800, tcp80), vlanTci: 10 } },
  { name: "in data 10 then 20, ipv4", packet: { data: ethernetVlan([[0x88a8, 10], [0x8100, 20]], 0x0800, tcp80) } },
  { name: "stripped 30, arp", packet: { data: ethernet(0x0806, new Uint8Array(28)), vlanTci: 30 } },
  { name: "in data 10, truncated after the tag", packet: { data: ethernetVlan([[0x8100, 10]], 0x0800, new Uint8Array(0)).subarray(0, 16) } },
  { name: "stripped 10, truncated ethernet header", packet: { data: ethernet(0x0800, tcp80).subarray(0, 13), vlanTci: 10 } },
];

const expressions = [
  "vlan", "vlan 10", "vlan 20", "not vlan", "not vlan 10", "vlan and ip", "vlan and ip6", "vlan 10 and tcp port 80",
  "vlan and udp port 53", "vlan 10 and vlan 20", "vlan and vlan and ip", "vlan or ip", "ip or vlan 10", "tcp and vlan",
  "vlan 10 or vlan 20", "vlan and arp", "(vlan 10 or vlan 20) and ip", "ether[12:2] = 0x0800 and vlan 10",
];

function matching(expression: string, packetMetadata: boolean): string[] {
  const filter = compileFilter(expression, { linkType: 1, packetMetadata });
  return packets.filter(({ packet }) => filter.matches(packet)).map(({ name }) => name);
}

test("live filters (packetMetadata) match a VLAN tag stripped into the skb or still in the data, as libpcap on Linux", () => {
  assert.deepEqual(matching("vlan", true), [
    "stripped 10, ipv4", "stripped 10 priority 5, ipv4", "stripped 20, ipv6", "in data 10, ipv4", "in data 802.1ad 20, ipv6",
    "stripped 10, inner 20 in data, ipv4", "in data 10 then 20, ipv4", "stripped 30, arp", "in data 10, truncated after the tag",
    "stripped 10, truncated ethernet header",
  ]);
  assert.deepEqual(matching("vlan 10", true), [
    "stripped 10, ipv4", "stripped 10 priority 5, ipv4", "in data 10, ipv4", "stripped 10, inner 20 in data, ipv4", "in data 10 then 20, ipv4",
    "in data 10, truncated after the tag", "stripped 10, truncated ethernet header",
  ]);
  // Offsets after `vlan` move by 4 only when the tag is in the data.
  assert.deepEqual(matching("vlan and ip", true), ["stripped 10, ipv4", "stripped 10 priority 5, ipv4", "in data 10, ipv4"]);
  assert.deepEqual(matching("vlan 10 and vlan 20 and ip", true), ["stripped 10, inner 20 in data, ipv4", "in data 10 then 20, ipv4"]);
  assert.deepEqual(matching("vlan and ip6", true), ["stripped 20, ipv6", "in data 802.1ad 20, ipv6"]);
  assert.deepEqual(matching("not vlan", true), ["untagged ipv4"]);
});

test("saved captures (no packetMetadata) ignore skb VLAN metadata: tags are read from the data only", () => {
  assert.deepEqual(matching("vlan", false), ["in data 10, ipv4", "in data 802.1ad 20, ipv6", "stripped 10, inner 20 in data, ipv4", "in data 10 then 20, ipv4", "in data 10, truncated after the tag"]);
  assert.deepEqual(matching("vlan 10", false), ["in data 10, ipv4", "in data 10 then 20, ipv4", "in data 10, truncated after the tag"]);
  assert.deepEqual(
    compileFilter("vlan 10 and ip", { linkType: 1 }).predicate,
    compileFilter("vlan 10 and ip", { linkType: 1, packetMetadata: false }).predicate,
  );
});

const skbVariants: { name: string; options: GenerateFilterOptions }[] = [
  { name: "tc direct", options: { context: "skb", hook: "tc" } },
  { name: "tc helper", options: { context: "skb", hook: "tc", skbLoads: "helper" } },
  { name: "socket legacy", options: { context: "skb", hook: "socket" } },
  { name: "socket helper", options: { context: "skb", hook: "socket", skbLoads: "helper" } },
];

test("generated skb programs read vlan_present/vlan_tci from __sk_buff and agree with the evaluator (asm interpreter)", () => {
  const mismatches: string[] = [];
  let runs = 0;
  for (const expression of expressions) {
    const filter = compileFilter(expression, { linkType: 1, packetMetadata: true });
    for (const { name, options } of skbVariants) {
      const interpreter = new Interpreter(generateFilterProgram(filter, { ...options, acceptValue: 1, rejectValue: 0 }).instructions, { helpers: packetHelpers });
      for (const { name: packetName, packet } of packets) {
        const context = socketBufferContext(packet.vlanTci === undefined ? {} : { vlanTci: packet.vlanTci });
        const got = interpreter.run(packet.data, { context }).returnValue === 1n;
        const want = filter.matches(packet);
        runs++;
        if (got !== want) mismatches.push(`${name} ${expression} on ${packetName}: evaluator ${want}, program ${got}`);
        if (evaluatePredicate(filter.predicate, packet) !== want) mismatches.push(`unoptimised predicate ${expression} on ${packetName}`);
      }
    }
  }
  assert.deepEqual(mismatches, []);
  assert.equal(runs, expressions.length * skbVariants.length * packets.length);
});

test("XDP and the interpreter prologue have no VLAN metadata: the live filter reads tags from the data", () => {
  for (const expression of ["vlan", "vlan 10 and ip", "not vlan"]) {
    const filter = compileFilter(expression, { linkType: 1, packetMetadata: true });
    const xdp = new Interpreter(generateFilterProgram(filter, { context: "xdp", acceptValue: 1, rejectValue: 0, prologue: "interpreter" }).instructions);
    const offline = new Interpreter(generateFilterProgram(filter, { context: "skb", acceptValue: 1, rejectValue: 0, prologue: "interpreter" }).instructions);
    for (const { name, packet } of packets) {
      const dataOnly = filter.matches({ data: packet.data });
      const registers = { 3: packet.data.length, 4: 0 };
      assert.equal(xdp.run(packet.data, { registers }).returnValue === 1n, dataOnly, `xdp ${expression} on ${name}`);
      assert.equal(offline.run(packet.data, { registers: { ...registers, 5: packet.data.length } }).returnValue === 1n, dataOnly, `interpreter prologue ${expression} on ${name}`);
    }
  }
});

test("the kernel verifies the live VLAN filters (tc and socket hooks) and runs them on tagged frames like the evaluator", (t) => {
  if (skipUnlessKernel(t, isRoot(), "loading BPF programs needs root")) return;
  // BPF_PROG_TEST_RUN cannot set vlan_* in ctx_in: these runs cover the tag-in-data path; the live test covers the stripped one.
  const mismatches: string[] = [];
  for (const expression of expressions) {
    const filter = compileFilter(expression, { linkType: 1, packetMetadata: true });
    for (const { name, options } of skbVariants) {
      const socket = options.hook === "socket";
      const generated = generateFilterProgram(filter, { ...options, acceptValue: 7, rejectValue: socket ? 0 : 3 });
      const program = Program.load({ type: socket ? ProgramType.SocketFilter : ProgramType.SchedCls, instructions: generated, license: "GPL", name: "nb_vlan" });
      try {
        if (socket) continue;
        for (const { name: packetName, packet } of packets) {
          if (packet.vlanTci !== undefined || packet.data.length < 34) continue;
          const got = program.run({ data: Buffer.from(packet.data) }).returnValue === 7;
          if (got !== filter.matches({ data: packet.data })) mismatches.push(`${name} ${expression} on ${packetName}: kernel ${got}`);
        }
      } finally {
        program.close();
      }
    }
  }
  assert.deepEqual(mismatches, []);
});
