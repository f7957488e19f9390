/**
 * The load balancer's cost, in one run:
 * 1. per packet (BPF_PROG_TEST_RUN, kernel-measured mean over many repeats):
 *    a packet of an established flow, a backend's reply, and a packet for
 *    another service, against an empty tc program as the floor;
 * 2. short TCP connections per second through a balancer namespace on a veth
 *    testbed, with netbpf's balancer and with nftables DNAT + masquerade
 *    (IPVS, the usual reference, is not built into this kernel), interleaved,
 *    with the whole machine's CPU time per connection.
 */
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { LoadBalancer } from "../src/balancer/load-balancer.js";
import { balancerMapNames, balancerProgram, backendEntryCodec, controlCodec } from "../src/balancer/balancer-program.js";
import { maglevTable } from "../src/balancer/maglev.js";
import { BpfMap } from "../src/core/map.js";
import { Program } from "../src/core/program.js";
import { MapType, ProgramType } from "../src/sys/bpf-constants.js";
import { bpffsPath } from "../src/sys/mounts.js";
import { BalancerNetwork, connectionsScript, serverScript, vip4 } from "../test/balancer/balancer-network.js";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function checksum(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) sum += (data[i]! << 8) | (data[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function tcpFrame(source: number[], destination: number[], sourcePort: number, destinationPort: number): Buffer {
  const frame = Buffer.alloc(14 + 20 + 20);
  frame.writeUInt16BE(0x0800, 12);
  const ip = frame.subarray(14, 34);
  ip[0] = 0x45; ip.writeUInt16BE(40, 2); ip[8] = 64; ip[9] = 6;
  Buffer.from(source).copy(ip, 12); Buffer.from(destination).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const tcp = frame.subarray(34);
  tcp.writeUInt16BE(sourcePort, 0); tcp.writeUInt16BE(destinationPort, 2); tcp[12] = 0x50; tcp[13] = 0x10; tcp.writeUInt16BE(65535, 14);
  return frame;
}

function perPacket(): void {
  const tableSize = 4093;
  const maps = {
    [balancerMapNames.backends]: BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: backendEntryCodec.size, maxEntries: 256 }),
    [balancerMapNames.maglev]: BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: 4, maxEntries: 2 * tableSize }),
    [balancerMapNames.control]: BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: controlCodec.size, maxEntries: 1 }),
    [balancerMapNames.conntrack]: BpfMap.create({ type: MapType.LruHash, keySize: 40, valueSize: 8, maxEntries: 65536 }),
    [balancerMapNames.reverse]: BpfMap.create({ type: MapType.LruHash, keySize: 40, valueSize: 32, maxEntries: 65536 }),
    [balancerMapNames.stats]: BpfMap.create({ type: MapType.PercpuArray, keySize: 4, valueSize: 40, maxEntries: 257 }),
  };
  const key = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  for (let i = 0; i < 3; i++) {
    const entry = Buffer.alloc(backendEntryCodec.size);
    Buffer.from([198, 18, i, 2]).copy(entry, 0);
    Buffer.from([198, 18, i, 1]).copy(entry, 16);
    entry.writeUInt16BE(8080, 32); entry.writeUInt16LE(2, 34); entry.writeUInt32LE(1, 36); entry.writeUInt32LE(1, 40);
    maps[balancerMapNames.backends]!.put(key(i), entry);
  }
  const table = maglevTable([0, 1, 2].map((i) => ({ key: String(i), weight: 1 })), tableSize);
  maps[balancerMapNames.maglev]!.updateBatch(Array.from(table, (backend, slot) => [key(slot), key(backend)] as [Buffer, Buffer]));
  maps[balancerMapNames.control]!.put(key(0), Buffer.alloc(8));
  using balancer = Program.load({ type: ProgramType.SchedCls, name: "nb_lb_bench", instructions: balancerProgram({ vip: Buffer.from([203, 0, 113, 10]), port: 80, protocol: "tcp", mode: "nat", tableSize, natPorts: { first: 10000, last: 32767 } }) }, { maps });
  using empty = Program.load({ type: ProgramType.SchedCls, name: "nb_empty", instructions: Buffer.from("b7000000ffffffff9500000000000000", "hex") });
  const toVip = tcpFrame([192, 0, 2, 1], [203, 0, 113, 10], 40000, 80);
  const first = balancer.run({ data: toVip, repeat: 1 });
  const rewritten = first.dataOut!;
  const natPort = rewritten.readUInt16BE(34);
  const backend = [...rewritten.subarray(30, 34)];
  const reply = tcpFrame(backend, [...rewritten.subarray(26, 30)], 8080, natPort);
  const other = tcpFrame([192, 0, 2, 1], [203, 0, 113, 99], 40000, 80);
  const repeat = 200_000;
  const rounds = 7;
  const measure = (program: Program, data: Buffer) => median(Array.from({ length: rounds }, () => program.run({ data, repeat }).duration));
  const floor = measure(empty, toVip);
  const rows = [
    ["established flow to the VIP (conntrack hit, NAT, checksums, redirect)", measure(balancer, toVip)],
    ["backend reply (reverse NAT)", measure(balancer, reply)],
    ["packet for another address (passed on)", measure(balancer, other)],
  ] as const;
  console.log(`balancer per packet (BPF_PROG_TEST_RUN, median of ${rounds} × ${repeat}): empty tc program ${floor.toFixed(1)} ns`);
  for (const [what, ns] of rows) console.log(`  ${what}: ${ns.toFixed(1)} ns (${(ns - floor).toFixed(1)} ns above the empty program)`);
  Object.values(maps).forEach((m) => m.close());
}

function cpuJiffies(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return fields.reduce((a, b) => a + b, 0) - fields[3]! - fields[4]!; // all but idle and iowait
}

async function throughput(): Promise<void> {
  const net = BalancerNetwork.create(3);
  const root = `${bpffsPath()}/netbpf-test-lbbench-${randomBytes(4).toString("hex")}`;
  try {
    const servers = net.backends.map((b, i) => net.start(b.namespace, [process.execPath, "--input-type=module", "-e", serverScript(`backend-${i}`, 8080)]));
    await Promise.all(servers.map((child) => new Promise<void>((resolve) => child.stdout.once("data", () => resolve()))));
    const connections = 3000;
    const run = () => {
      const cpuBefore = cpuJiffies();
      const start = process.hrtime.bigint();
      const result = JSON.parse(net.node(net.client.namespace, connectionsScript(vip4, 80, connections), 300_000)) as { failed: number };
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const cpu = (cpuJiffies() - cpuBefore) / 100;
      if (result.failed) throw new Error(`${result.failed} connections failed`);
      return { rate: connections / seconds, cpuPerConnection: (cpu / connections) * 1e6 };
    };
    const nftRules = [
      "add table ip nb_lb_bench",
      "add chain ip nb_lb_bench pre { type nat hook prerouting priority -100; }",
      "add chain ip nb_lb_bench post { type nat hook postrouting priority 100; }",
      `add rule ip nb_lb_bench pre ip daddr ${vip4} tcp dport 80 dnat to numgen random mod 3 map { 0 : 198.18.0.2, 1 : 198.18.1.2, 2 : 198.18.2.2 }:8080`,
      "add rule ip nb_lb_bench post ip daddr 198.18.0.0/16 masquerade",
    ].join("; ");
    const results = { netbpf: [] as { rate: number; cpuPerConnection: number }[], nftables: [] as { rate: number; cpuPerConnection: number }[] };
    for (let round = 0; round < 3; round++) {
      const balancer = net.inBalancer(() => LoadBalancer.create({
        service: `${vip4}:80`, interfaces: [net.client.peer, ...net.backends.map((b) => b.peer)],
        backends: net.backends.map((b) => ({ endpoint: `${b.ipv4}:8080` })), healthCheck: false, stateRoot: root,
      }));
      results.netbpf.push(run());
      balancer.delete();
      net.exec(net.balancer, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
      net.exec(net.balancer, ["nft", nftRules]);
      results.nftables.push(run());
      net.exec(net.balancer, ["nft", "delete table ip nb_lb_bench"]);
      net.exec(net.balancer, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"]);
    }
    const summary = (rows: { rate: number; cpuPerConnection: number }[]) => ({ rate: median(rows.map((r) => r.rate)), cpu: median(rows.map((r) => r.cpuPerConnection)) });
    const ours = summary(results.netbpf);
    const theirs = summary(results.nftables);
    console.log(`short TCP connections through the balancer (${connections} per run, 50 at a time, median of 3 interleaved runs):`);
    console.log(`  netbpf lb (tc, NAT): ${ours.rate.toFixed(0)} connections/s, ${ours.cpu.toFixed(0)} µs of machine CPU per connection`);
    console.log(`  nftables DNAT + masquerade: ${theirs.rate.toFixed(0)} connections/s, ${theirs.cpu.toFixed(0)} µs per connection`);
    console.log(`  ratio netbpf / nftables: rate ${(ours.rate / theirs.rate).toFixed(2)}x, CPU per connection ${(ours.cpu / theirs.cpu).toFixed(2)}x`);
    console.log("  (client and servers are Node processes on the same 2 CPUs: the balancer's own share is a small part of the CPU measured)");
  } finally {
    net.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}

perPacket();
await throughput();
