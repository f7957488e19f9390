import { test } from "node:test";
import assert from "node:assert/strict";
import { u32, u64 } from "../../src/core/codec.js";
import { BpfMap } from "../../src/core/map.js";
import { Program } from "../../src/core/program.js";
import { compileCaptureFilter } from "../../src/capture/capture-filter.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { TrafficKeyOffset, trafficCounterProgram, trafficCountsName, trafficKeySize, TrafficStatistic, trafficStatisticKinds, trafficStatisticsName, TrafficValueOffset, trafficValueSize, type TrafficGrouping } from "../../src/programs/traffic-counter.js";
import { AttachType, MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { arp, ethernet, icmp, ipv4, ipv6, ipv6Extension, tcp, udp } from "../support/packet-builder.js";

const payload = (bytes: number) => new Uint8Array(bytes).fill(0x61);

/** Test runs of skb programs take an Ethernet frame; cgroup skb programs then see it from the IP header. */
const packets = {
  tcp: ethernet(0x0800, ipv4(6, tcp(40000, 8080, 0x18, payload(1000)))),
  udp: ethernet(0x0800, ipv4(17, udp(5353, 53, payload(100)))),
  icmp: ethernet(0x0800, ipv4(1, icmp(8, 0))),
  tcp6: ethernet(0x86dd, ipv6(6, tcp(40001, 443, 0x18, payload(500)))),
  udp6HopByHop: ethernet(0x86dd, ipv6(0, concatBytes(ipv6Extension(17), udp(5000, 6000, payload(64))))),
  fragment: ethernet(0x0800, ipv4(17, payload(64), { fragmentOffset: 100 })),
  arp: ethernet(0x0806, arp(1, "10.0.0.1", "10.0.0.2")),
};

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((part) => [...part]));
}

interface Counted {
  key: Buffer;
  packetsIn: bigint;
  bytesIn: bigint;
  payloadIn: bigint;
  packetsOut: bigint;
  bytesOut: bigint;
  payloadOut: bigint;
}

function load(by: TrafficGrouping, direction: "ingress" | "egress", options: { ports?: number[]; filter?: string; times?: boolean } = {}) {
  const counts = BpfMap.create({ type: MapType.LruPercpuHash, keySize: trafficKeySize, valueSize: trafficValueSize, maxEntries: 64, name: trafficCountsName });
  const statistics = BpfMap.create({ type: MapType.PercpuArray, key: u32, value: u64, maxEntries: trafficStatisticKinds, name: trafficStatisticsName });
  const filter = options.filter ? compileCaptureFilter(options.filter, LinkType.RAW, { hook: "cgroup" }).emitter : undefined;
  const program = Program.load(
    { type: ProgramType.CgroupSkb, instructions: trafficCounterProgram({ hook: "cgroup", direction, linkHeaderLength: 0, by, ports: options.ports, processes: true, filter, times: options.times }), name: "test_counter", expectedAttachType: direction === "ingress" ? AttachType.CgroupInetIngress : AttachType.CgroupInetEgress },
    { maps: { [trafficCountsName]: counts, [trafficStatisticsName]: statistics as unknown as BpfMap } },
  );
  const read = (): Counted[] =>
    counts.lookupBatch().map(([key, value]) => {
      const sum = (offset: number) => (value as Buffer[]).reduce((total, cpu) => total + cpu.readBigUInt64LE(offset), 0n);
      return { key, packetsIn: sum(TrafficValueOffset.packetsIn), bytesIn: sum(TrafficValueOffset.bytesIn), payloadIn: sum(TrafficValueOffset.payloadIn), packetsOut: sum(TrafficValueOffset.packetsOut), bytesOut: sum(TrafficValueOffset.bytesOut), payloadOut: sum(TrafficValueOffset.payloadOut) };
    });
  const statistic = (kind: number) => (statistics.getPerCpu(kind) ?? []).reduce((a, b) => a + b, 0n);
  const close = () => {
    program.close();
    counts.close();
    statistics.close();
  };
  return { program, read, statistic, close, counts };
}

test("the traffic counter lets every packet through and counts IP bytes and payload per local port", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load cgroup skb programs")) return;
  for (const direction of ["ingress", "egress"] as const) {
    const counter = load("port", direction);
    try {
      for (const [name, frame] of Object.entries(packets)) {
        const result = counter.program.run({ data: Buffer.from(frame), repeat: 3 });
        assert.equal(result.returnValue, 1, `${direction} ${name}: a cgroup skb program must return 1 (allow)`);
      }
      const rows = counter.read();
      const port = (protocol: number, localPort: number) => rows.find((row) => row.key[TrafficKeyOffset.protocol] === protocol && row.key.readUInt16LE(TrafficKeyOffset.localPort) === localPort);
      const ingress = direction === "ingress";
      const tcpRow = port(6, ingress ? 8080 : 40000);
      assert.ok(tcpRow, `${direction}: TCP keyed by the local port (${ingress ? "destination" : "source"})`);
      const packetsField = ingress ? "packetsIn" : "packetsOut";
      const bytesField = ingress ? "bytesIn" : "bytesOut";
      const payloadField = ingress ? "payloadIn" : "payloadOut";
      assert.equal(tcpRow[packetsField], 3n);
      assert.equal(tcpRow[bytesField], 3n * 1040n, "IP bytes: 20 IP + 20 TCP + 1000");
      assert.equal(tcpRow[payloadField], 3n * 1000n);
      assert.equal(tcpRow[ingress ? "packetsOut" : "packetsIn"], 0n);
      assert.equal(port(17, ingress ? 53 : 5353)?.[payloadField], 300n);
      assert.equal(port(6, ingress ? 443 : 40001)?.[bytesField], 3n * 560n, "IPv6: 40 + 20 + 500");
      assert.equal(port(17, ingress ? 6000 : 5000)?.[payloadField], 3n * 64n, "the hop-by-hop header is skipped");
      assert.equal(port(1, 0)?.[payloadField], 3n * 12n, "ICMP: payload after the IP header (4-byte ICMP header + 8)");
      assert.equal(port(17, 0)?.[packetsField], 3n, "a later fragment has no ports");
      assert.equal(rows.length, 6, "ARP is not IP: not counted");
      assert.equal(counter.statistic(TrafficStatistic.created), 6n);
      assert.equal(counter.statistic(TrafficStatistic.seen), 3n * 7n);
    } finally {
      counter.close();
    }
  }
});

test("the traffic counter's key follows the grouping, and ports and filters select what is counted", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load cgroup skb programs")) return;
  const conn = load("conn", "egress");
  try {
    assert.equal(conn.program.run({ data: Buffer.from(packets.tcp) }).returnValue, 1);
    const [row] = conn.read();
    assert.ok(row);
    assert.equal(row.key[TrafficKeyOffset.family], 4);
    assert.equal(row.key.readUInt16LE(TrafficKeyOffset.localPort), 40000);
    assert.equal(row.key.readUInt16LE(TrafficKeyOffset.remotePort), 8080);
    assert.deepEqual([...row.key.subarray(TrafficKeyOffset.localAddress, TrafficKeyOffset.localAddress + 4)], [10, 0, 0, 1]);
    assert.deepEqual([...row.key.subarray(TrafficKeyOffset.remoteAddress, TrafficKeyOffset.remoteAddress + 4)], [10, 0, 0, 2]);
  } finally {
    conn.close();
  }
  const remote = load("remote", "ingress");
  try {
    remote.program.run({ data: Buffer.from(packets.tcp) });
    remote.program.run({ data: Buffer.from(packets.udp) });
    const rows = remote.read();
    assert.equal(rows.length, 1, "one remote host");
    assert.equal(rows[0]!.packetsIn, 2n);
    assert.equal(rows[0]!.key.readUInt16LE(TrafficKeyOffset.localPort), 0);
  } finally {
    remote.close();
  }
  const ports = load("port", "ingress", { ports: [53] });
  try {
    for (const frame of Object.values(packets)) assert.equal(ports.program.run({ data: Buffer.from(frame) }).returnValue, 1);
    assert.deepEqual(ports.read().map((row) => row.key.readUInt16LE(TrafficKeyOffset.localPort)), [53]);
  } finally {
    ports.close();
  }
  const filtered = load("port", "ingress", { filter: "tcp and dst port 443" });
  try {
    for (const frame of Object.values(packets)) assert.equal(filtered.program.run({ data: Buffer.from(frame) }).returnValue, 1);
    const rows = filtered.read();
    assert.deepEqual(rows.map((row) => row.key.readUInt16LE(TrafficKeyOffset.localPort)), [443]);
    assert.equal(rows[0]!.payloadIn, 500n);
  } finally {
    filtered.close();
  }
});

test("with times, the traffic counter records each key's first and last packet (CLOCK_MONOTONIC)", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load cgroup skb programs")) return;
  for (const times of [false, true]) {
    const counter = load("port", "ingress", { times });
    try {
      const before = process.hrtime.bigint();
      counter.program.run({ data: Buffer.from(packets.udp) });
      const middle = process.hrtime.bigint();
      counter.program.run({ data: Buffer.from(packets.udp) });
      const after = process.hrtime.bigint();
      const [[, value]] = counter.counts.lookupBatch() as [Buffer, Buffer[]][];
      const first = value!.map((cpu) => cpu.readBigUInt64LE(TrafficValueOffset.firstSeen)).filter((time) => time !== 0n);
      const last = value!.map((cpu) => cpu.readBigUInt64LE(TrafficValueOffset.lastSeen));
      if (!times) {
        assert.deepEqual(first, [], "no clock read without times");
        continue;
      }
      const firstSeen = first.reduce((a, b) => (a < b ? a : b));
      const lastSeen = last.reduce((a, b) => (a > b ? a : b));
      assert.ok(firstSeen >= before && firstSeen <= middle, `first packet at ${firstSeen}, sent between ${before} and ${middle}`);
      assert.ok(lastSeen >= middle && lastSeen <= after, `last packet at ${lastSeen}, sent between ${middle} and ${after}`);
    } finally {
      counter.close();
    }
  }
});

test("the traffic counter refuses options out of their range, naming the option", () => {
  const base = { hook: "cgroup", direction: "ingress", linkHeaderLength: 0, by: "port" } as const;
  assert.throws(() => trafficCounterProgram({ ...base, hook: "xdp" as never }), /options\.hook must be one of "cgroup", "tc", got "xdp"/);
  assert.throws(() => trafficCounterProgram({ ...base, by: "host" as never }), /options\.by must be one of "port", "conn", "process", "remote"/);
  assert.throws(() => trafficCounterProgram({ ...base, linkHeaderLength: -14 }), /options\.linkHeaderLength must be an integer from 0 to 255/);
  assert.throws(() => trafficCounterProgram({ ...base, ports: [80, 0] }), /options\.ports\[1\] must be an integer from 1 to 65535, got 0/);
  assert.throws(() => trafficCounterProgram({ ...base, times: 1 as never }), /options\.times must be true or false/);
  assert.throws(() => trafficCounterProgram({ ...base, filter: { expression: "tcp" } as never }), /options\.filter must be a CaptureFilterEmitter/);
});
