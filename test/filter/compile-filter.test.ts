import { test } from "node:test";
import assert from "node:assert/strict";
import { Interpreter } from "../../src/asm/interpreter.js";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { FilterSyntaxError } from "../../src/filter/filter-syntax-error.js";
import { resolveFilterHostNames, systemFilterNames } from "../../src/filter/filter-names.js";
import { generateFilterProgram } from "../../src/filter/generate-filter-program.js";
import { ethernet, ipv4, TCP, tcp, udp, vxlan } from "../support/packet-builder.js";
import { craftedEthernet } from "./filter-corpus.js";

function selected(expression: string, packets: { data: Uint8Array; length?: number }[]): number[] {
  const filter = compileFilter(expression, { linkType: 1 });
  const result: number[] = [];
  packets.forEach((packet, index) => {
    if (filter.matches({ data: packet.data, length: packet.length ?? packet.data.length })) result.push(index);
  });
  // The generated programs must agree with the evaluator.
  for (const context of ["skb", "xdp"] as const) {
    const interpreter = new Interpreter(generateFilterProgram(filter, { context, prologue: "interpreter", acceptValue: 1, rejectValue: 0 }).instructions);
    const fromProgram = packets.flatMap((packet, index) =>
      interpreter.run(packet.data, { registers: { 3: packet.length ?? packet.data.length } }).returnValue === 1n ? [index] : []);
    assert.deepEqual(fromProgram, result, `${context} program for ${expression}`);
  }
  return result;
}

test("vxlan (libpcap 1.11 semantics): UDP 4789, flags 0x08, VNI, inner Ethernet", () => {
  const inner = ethernet(0x0800, ipv4(17, udp(2, 53), { source: "192.168.9.1" }));
  const packets = [
    { data: ethernet(0x0800, ipv4(17, udp(40003, 4789, vxlan(9, inner)))) },
    { data: ethernet(0x0800, ipv4(17, udp(40003, 4789, vxlan(10, inner)))) },
    { data: ethernet(0x0800, ipv4(17, udp(40003, 4790, vxlan(9, inner)))) },
    { data: ethernet(0x0800, ipv4(6, tcp(1, 4789, TCP.syn))) },
  ];
  assert.deepEqual(selected("vxlan", packets), [0, 1]);
  assert.deepEqual(selected("vxlan 9", packets), [0]);
  assert.deepEqual(selected("vxlan and udp port 53", packets), [0, 1]);
  assert.deepEqual(selected("vxlan and host 192.168.9.1", packets), [0, 1]);
  assert.deepEqual(selected("vxlan 10 and ip and udp", packets), [1]);
  assert.deepEqual(selected("vxlan and tcp", packets), []);
  assert.throws(() => compileFilter("vxlan 16777216", { linkType: 1 }), /VNI 16777216 greater than maximum/);
});

test("crafted corpus sanity: each family selects the packets built for it", () => {
  const packets = craftedEthernet();
  assert.ok(selected("vlan 10", packets).length >= 3);
  assert.ok(selected("mpls 100000 and mpls 1024 and ip6", packets).length === 1);
  assert.ok(selected("pppoes 0x27 and tcp port 80", packets).length === 1);
  assert.ok(selected("ip6 protochain 6", packets).length >= 5);
  assert.ok(selected("geneve 5 and tcp port 80", packets).length === 1);
});

test("inbound/outbound on Ethernet use the packet type when metadata is available", () => {
  const frame = ethernet(0x0800, ipv4(6, tcp(1, 2, TCP.syn)));
  const outbound = compileFilter("outbound", { linkType: 1, packetMetadata: true });
  assert.equal(outbound.matches({ data: frame, packetType: 4 }), true);
  assert.equal(outbound.matches({ data: frame, packetType: 0 }), false);
  const interpreter = new Interpreter(generateFilterProgram(outbound, { context: "skb", prologue: "interpreter", acceptValue: 1 }).instructions);
  assert.equal(interpreter.run(frame, { registers: { 3: frame.length, 4: 4 } }).returnValue, 1n);
  assert.equal(interpreter.run(frame, { registers: { 3: frame.length, 4: 0 } }).returnValue, 0n);
  const xdp = generateFilterProgram(compileFilter("inbound", { linkType: 1, packetMetadata: true }), { context: "xdp", prologue: "interpreter", acceptValue: 1, rejectValue: 0 });
  assert.equal(new Interpreter(xdp.instructions).run(frame, { registers: { 3: frame.length } }).returnValue, 1n);
});

test("host names: /etc/hosts synchronously, anything else resolved beforehand", async () => {
  const localhost = compileFilter("host localhost", { linkType: 1 });
  assert.equal(localhost.matches(ethernet(0x0800, ipv4(6, tcp(1, 2, TCP.syn), { source: "127.0.0.1" }))), true);
  const resolved = await resolveFilterHostNames(["localhost", "nosuchhost.invalid"]);
  assert.ok(resolved.get("localhost")!.ipv4.includes(0x7f000001));
  assert.equal(resolved.has("nosuchhost.invalid"), false);
  const custom = systemFilterNames(new Map([["db-server", { ipv4: [0x0a000063], ipv6: [] }]]));
  const filter = compileFilter("src host db-server", { linkType: 1, names: custom });
  assert.equal(filter.matches(ethernet(0x0800, ipv4(6, tcp(1, 2, TCP.syn), { source: "10.0.0.99" }))), true);
  assert.equal(filter.matches(ethernet(0x0800, ipv4(6, tcp(1, 2, TCP.syn), { source: "10.0.0.98" }))), false);
});

test("gateway: the Ethernet address is the host's, the IP addresses are not", () => {
  const names = {
    ...systemFilterNames(),
    host: (name: string) => (name === "router" ? { ipv4: [0x0a000001], ipv6: [] } : undefined),
    ether: (name: string) => (name === "router" ? Uint8Array.from([2, 0, 0, 0, 0, 1]) : undefined),
    service: () => undefined,
    protocol: () => undefined,
    network: () => undefined,
  };
  const filter = compileFilter("gateway router", { linkType: 1, names });
  // Source MAC is the router's (02:00:00:00:00:01), IP addresses are someone else's: routed through it.
  assert.equal(filter.matches(ethernet(0x0800, ipv4(6, tcp(1, 2, TCP.syn), { source: "192.168.5.5", destination: "10.9.9.9" }))), true);
  // The router itself talking: not a gateway use.
  assert.equal(filter.matches(ethernet(0x0800, ipv4(6, tcp(1, 2, TCP.syn), { source: "10.0.0.1", destination: "10.9.9.9" }))), false);
  assert.throws(() => compileFilter("gateway router", { linkType: 113, names }), /only on Ethernet/);
  assert.throws(() => compileFilter("src gateway router", { linkType: 1, names }), FilterSyntaxError);
});
