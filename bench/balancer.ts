/**
 * The load balancer's cost, in one run:
 * 1. per packet (BPF_PROG_TEST_RUN, kernel-measured mean over many repeats):
 *    a packet of an established flow, a backend's reply, and a packet for
 *    another service, against an empty tc program as the floor;
 * 2. short TCP connections per second through a balancer namespace on a veth
 *    testbed, with netbpf's balancer and with nftables DNAT + masquerade
 *    (IPVS, the usual reference, is not built into this kernel), interleaved
 *    with the order alternated each round and conntrack flushed between
 *    runs, with the whole machine's CPU time per connection.
 *
 * Run: npm run build && node dist/bench/balancer.js [rounds]   (needs root, nft, conntrack)
 */
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { LoadBalancer } from "../src/balancer/load-balancer.js";
import { Program } from "../src/core/program.js";
import { ProgramType } from "../src/sys/bpf-constants.js";
import { bpffsPath } from "../src/sys/mounts.js";
import { BalancerNetwork, connectionsScript, serverScript, vip4 } from "../test/balancer/balancer-network.js";
import { balancerProgramFixture, fixturePort, fixtureVip, tcpFrame } from "../test/balancer/balancer-program-fixture.js";
import { median } from "./support/statistics.js";

function perPacket(): void {
  const fixture = balancerProgramFixture();
  using empty = Program.load({ type: ProgramType.SchedCls, name: "nb_empty", instructions: Buffer.from("b7000000ffffffff9500000000000000", "hex") });
  const balancer = fixture.program;
  const toVip = tcpFrame([192, 0, 2, 1], fixtureVip, 40000, fixturePort);
  const first = balancer.run({ data: toVip, repeat: 1 });
  const rewritten = first.dataOut!;
  const natPort = rewritten.readUInt16BE(34);
  const backend = [...rewritten.subarray(30, 34)];
  const reply = tcpFrame(backend, [...rewritten.subarray(26, 30)], 8080, natPort);
  const other = tcpFrame([192, 0, 2, 1], [203, 0, 113, 99], 40000, 80);
  // One run per call: with repeat > 1 the kernel runs the program again on
  // the packet it has just rewritten (the VIP packet becomes a packet to the
  // backend), so only single runs measure the translation. Each figure
  // includes the kernel's timer reads; the empty program shows that floor.
  const runs = 5001;
  const measure = (program: Program, data: Buffer) => median(Array.from({ length: runs }, () => program.run({ data, repeat: 1 }).duration));
  const floor = measure(empty, toVip);
  const rows = [
    ["established flow to the VIP (conntrack hit, NAT, TTL, checksums, redirect)", measure(balancer, toVip)],
    ["backend reply (reverse NAT)", measure(balancer, reply)],
    ["packet for another address (passed on)", measure(balancer, other)],
  ] as const;
  console.log(`balancer per packet (BPF_PROG_TEST_RUN, median of ${runs} single runs): empty tc program ${floor.toFixed(1)} ns`);
  for (const [what, ns] of rows) console.log(`  ${what}: ${ns.toFixed(1)} ns (${(ns - floor).toFixed(1)} ns above the empty program)`);
  fixture.close();
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
    const rounds = Number(process.argv[2] ?? 4);
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
    // Alternate which tool goes first in a round (A B, B A, …), and start each
    // run with empty connection tables: nftables' conntrack is flushed
    // (conntrack -F), netbpf's maps are new with each install. The client
    // reuses TIME_WAIT ports so that earlier runs cannot slow later ones.
    net.exec(net.client.namespace, ["sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1"]);
    const runNetbpf = () => {
      const balancer = net.inBalancer(() => LoadBalancer.create({
        service: `${vip4}:80`, interfaces: [net.client.peer, ...net.backends.map((b) => b.peer)],
        backends: net.backends.map((b) => ({ endpoint: `${b.ipv4}:8080` })), healthCheck: false, stateRoot: root,
      }));
      try {
        results.netbpf.push(run());
      } finally {
        balancer.delete();
      }
    };
    const runNftables = () => {
      net.exec(net.balancer, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
      net.exec(net.balancer, ["nft", nftRules]);
      net.exec(net.balancer, ["conntrack", "-F"]);
      try {
        results.nftables.push(run());
      } finally {
        net.exec(net.balancer, ["nft", "delete table ip nb_lb_bench"]);
        net.exec(net.balancer, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"]);
        net.exec(net.balancer, ["conntrack", "-F"]);
      }
    };
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        runNetbpf();
        runNftables();
      } else {
        runNftables();
        runNetbpf();
      }
    }
    const summary = (rows: { rate: number; cpuPerConnection: number }[]) => ({ rate: median(rows.map((r) => r.rate)), cpu: median(rows.map((r) => r.cpuPerConnection)) });
    const ours = summary(results.netbpf);
    const theirs = summary(results.nftables);
    console.log(`short TCP connections through the balancer (${connections} per run, 50 at a time, median of ${rounds} rounds, order alternated):`);
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
if (Number(process.argv[2] ?? 4) > 0) await throughput();
