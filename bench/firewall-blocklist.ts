/**
 * Firewall benchmarks, in one run:
 *
 * 1. Per-packet cost of the firewall's XDP program with 1, 1,000 and
 *    100,000 prefixes in its LPM trie (BPF_PROG_TEST_RUN, the kernel's mean
 *    per run), for a packet whose source is listed and one that is not. The
 *    cost must not grow with the number of prefixes.
 * 2. A 10,000-prefix blocklist on a veth testbed (two namespaces): netbpf's
 *    XDP program against nftables with the same prefixes in an interval set
 *    at the netdev ingress hook (the earliest nftables hook), both dropping
 *    a UDP flood. The sender is bench/c/packet-flood.c (AF_PACKET, sendmmsg,
 *    qdisc bypass: no IP stack on the sending side), or hping3 with
 *    `--sender hping3`. The order of the two tools alternates from round to
 *    round. Reported: packets dropped per second, CPU
 *    seconds of system, irq and softirq time on the whole machine
 *    (/proc/stat) while flooding — which includes the sender's system time, and dropped packets per CPU-second. The
 *    machine is shared: the CPU figure includes other work; medians of
 *    several alternating rounds are reported.
 *
 * Run: npm run build && node dist/bench/firewall-blocklist.js [rounds] [seconds] [--sender hping3] [--cost-only]
 * Needs root, clang (or hping3) and nft. Prints a table and one JSON line.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { u32 } from "../src/core/codec.js";
import { BpfMap } from "../src/core/map.js";
import { formatAddressPrefix, ipv4PrefixKey, ipv6PrefixKey, type AddressPrefix } from "../src/firewall/address-prefix.js";
import { Firewall } from "../src/firewall/firewall.js";
import { firewallProgram, ruleCounter, TrieAction, trieValue } from "../src/firewall/firewall-program.js";
import { loadGenerated } from "../src/firewall/hook-attachment.js";
import { StateStore } from "../src/state/state-store.js";
import { MapFlag, MapType } from "../src/sys/bpf-constants.js";
import { inNetworkNamespace } from "../src/sys/network-namespace.js";
import { median } from "./support/statistics.js";

const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 4);

function prefixes(count: number, seed: number): AddressPrefix[] {
  // Distinct /24s in 100.64.0.0/10 and beyond (never the testbed's addresses).
  const out: AddressPrefix[] = [];
  for (let i = 0; i < count; i++) {
    const n = (seed + i) >>> 0;
    out.push({ family: 4, address: Buffer.from([100 + ((n >> 16) & 0x1f), (n >> 8) & 0xff, n & 0xff, 0]), prefixLength: 24 });
  }
  return out;
}

function frame(source: number[]): Buffer {
  const packet = Buffer.alloc(14 + 20 + 8 + 18);
  packet.writeUInt16BE(0x0800, 12);
  packet[14] = 0x45;
  packet.writeUInt16BE(20 + 8 + 18, 16);
  packet[22] = 64;
  packet[23] = 17;
  Buffer.from(source).copy(packet, 26);
  Buffer.from([198, 51, 100, 2]).copy(packet, 30);
  packet.writeUInt16BE(40000, 34);
  packet.writeUInt16BE(9, 36);
  packet.writeUInt16BE(26, 38);
  return packet;
}

type Lookup = "hash" | "trie";

/**
 * Per-packet cost for `count` /24 prefixes, with the prefixes in the map the
 * firewall installs (hash of exact keys, one probe per length in use) or in
 * an LPM trie (earlier installs). `extraLengths` adds one prefix of each of
 * those lengths too (more lengths → more probes for the hash).
 */
function programCost(lookup: Lookup, counts: number[], extraLengths: number[] = []): { prefixes: number; lengths: number; listedNs: number; unlistedNs: number }[] {
  const results: { prefixes: number; lengths: number; listedNs: number; unlistedNs: number }[] = [];
  for (const count of counts) {
    const type = lookup === "hash" ? MapType.Hash : MapType.LpmTrie;
    using v4 = BpfMap.create({ type, flags: MapFlag.NoPrealloc, key: ipv4PrefixKey, value: trieValue, maxEntries: 200_000 });
    using v6 = BpfMap.create({ type, flags: MapFlag.NoPrealloc, key: ipv6PrefixKey, value: trieValue, maxEntries: 16 });
    using counters = BpfMap.create({ type: MapType.PercpuArray, key: u32, value: ruleCounter, maxEntries: 4 });
    const list = [...prefixes(count, 0x1234), ...extraLengths.map((length) => ({ family: 4 as const, address: Buffer.from([192, 0, 2, 0].map((byte, i) => (i * 8 < length ? byte : 0))), prefixLength: length }))];
    v4.updateBatch(list.map((prefix) => [{ prefixLength: prefix.prefixLength, address: prefix.address }, { slot: 1, action: TrieAction.block, prefixLength: prefix.prefixLength, reserved: 0 }]));
    const lengths = [...new Set(list.map((prefix) => prefix.prefixLength))];
    const program = firewallProgram({
      hook: "xdp", rules: [{ slot: 1, action: "block", hasAddresses: true, match: {} }], defaultAction: "allow",
      ...(lookup === "hash" ? { prefixLengths: { ipv4: lengths, ipv6: [] } } : {}),
    });
    using loaded = loadGenerated("nb_fw_bench", "xdp", program, { ipv4: v4, ipv6: v6, counters });
    const listed = frame([...list[Math.floor(count / 2)]!.address.subarray(0, 3), 7]);
    const unlisted = frame([203, 0, 113, 9]);
    const listedRuns: number[] = [];
    const unlistedRuns: number[] = [];
    for (let round = 0; round < 5; round++) {
      listedRuns.push(loaded.run({ data: listed, repeat: 200_000 }).duration);
      unlistedRuns.push(loaded.run({ data: unlisted, repeat: 200_000 }).duration);
    }
    if (loaded.run({ data: listed }).returnValue !== 1) throw new Error("the listed packet was not dropped");
    if (loaded.run({ data: unlisted }).returnValue !== 2) throw new Error("the unlisted packet was dropped");
    results.push({ prefixes: list.length, lengths: lengths.length, listedNs: median(listedRuns), unlistedNs: median(unlistedRuns) });
  }
  return results;
}

function run(args: string[], input?: string): string {
  const result = spawnSync(args[0]!, args.slice(1), { encoding: "utf8", input, maxBuffer: 64 << 20 });
  if (result.status !== 0) throw new Error(`${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

const ticks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/**
 * system, irq and softirq seconds of all CPUs (/proc/stat). On veth the
 * receive path mostly runs inside the sender's sendto() and is accounted as
 * system time, so the sender's own system time is included in both figures.
 */
function cpuSeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (fields[2]! + fields[5]! + fields[6]!) / ticks;
}

const senderIndex = process.argv.indexOf("--sender");
const sender = senderIndex > 0 ? process.argv[senderIndex + 1]! : "packet-flood";
if (sender !== "packet-flood" && sender !== "hping3") throw new Error(`--sender must be packet-flood or hping3, got ${sender}`);
let floodBinary = "";
if (sender === "packet-flood") {
  const build = mkdtempSync(join(tmpdir(), "nb-fw-bench-"));
  floodBinary = join(build, "packet-flood");
  execFileSync("clang", ["-O2", "-o", floodBinary, fileURLToPath(new URL("../../bench/c/packet-flood.c", import.meta.url))], { stdio: "inherit" });
  process.on("exit", () => rmSync(build, { recursive: true, force: true }));
}

/** Floods `target` from `namespace` for `seconds`; the sender's source is 100.64.0.2 (listed). */
async function flood(namespace: string, device: string, target: string): Promise<void> {
  const command = sender === "hping3"
    ? ["hping3", "-q", "-2", "-p", "9", "-d", "18", "--flood", target]
    : [floodBinary, device, "100.64.0.2", target, String(seconds)];
  const child = spawn("nsenter", [`--net=/run/netns/${namespace}`, ...command], { stdio: "ignore" });
  const timer = setTimeout(() => child.kill("SIGKILL"), (sender === "hping3" ? seconds : seconds + 5) * 1000);
  await new Promise((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
}

interface Measurement {
  tool: string;
  dropped: number;
  cpuSeconds: number;
}

async function blocklistComparison(): Promise<{ netbpf: Measurement[]; nftables: Measurement[]; xdpMode: string }> {
  const tag = randomBytes(3).toString("hex");
  const senderNamespace = `nb-cbench-${tag}-a`;
  const receiver = `nb-cbench-${tag}-b`;
  const senderInterface = `nbcb${tag}a`;
  const receiverInterface = `nbcb${tag}b`;
  const stateRoot = `/sys/fs/bpf/netbpf-test-c-bench-${tag}`;
  const listFile = join(tmpdir(), `nbc-bench-${tag}.txt`);
  const results = { netbpf: [] as Measurement[], nftables: [] as Measurement[], xdpMode: "" };
  try {
    run(["ip", "netns", "add", senderNamespace]);
    run(["ip", "netns", "add", receiver]);
    run(["ip", "link", "add", senderInterface, "netns", senderNamespace, "type", "veth", "peer", "name", receiverInterface, "netns", receiver]);
    run(["ip", "-n", senderNamespace, "addr", "add", "100.64.0.2/24", "dev", senderInterface]);
    run(["ip", "-n", receiver, "addr", "add", "100.64.0.1/24", "dev", receiverInterface]);
    for (const [ns, device] of [[senderNamespace, senderInterface], [receiver, receiverInterface]] as const) {
      run(["ip", "-n", ns, "link", "set", device, "up"]);
      run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    // The sender's own /24 is one of the 10,000 prefixes.
    const list = [...prefixes(9_999, 0x2000), { family: 4 as const, address: Buffer.from([100, 64, 0, 0]), prefixLength: 24 }];
    writeFileSync(listFile, list.map(formatAddressPrefix).join("\n") + "\n");
    const nftRules = `table netdev nbc_bench {
  set blocklist { type ipv4_addr; flags interval; elements = { ${list.map(formatAddressPrefix).join(", ")} } }
  chain ingress { type filter hook ingress device ${receiverInterface} priority 0; ip saddr @blocklist counter drop; }
}`;
    const store = StateStore.open({ root: stateRoot });
    const runNetbpf = async () => {
      const firewall = inNetworkNamespace(receiver, () => Firewall.open(receiverInterface, { store }));
      const rule = inNetworkNamespace(receiver, () => firewall.block({ addresses: list, direction: "ingress" }));
      results.xdpMode = firewall.component.readManifest()?.attachments.find((a) => a.hook === "xdp")?.mechanism ?? "";
      try {
        let cpu = cpuSeconds();
        await flood(senderNamespace, senderInterface, "100.64.0.1");
        cpu = cpuSeconds() - cpu;
        const dropped = Number(firewall.rules().find((r) => r.id === rule.id)!.packets);
        results.netbpf.push({ tool: "netbpf", dropped, cpuSeconds: cpu });
      } finally {
        firewall.uninstall();
      }
    };
    const runNftables = async () => {
      run(["nsenter", `--net=/run/netns/${receiver}`, "nft", "-f", "-"], nftRules);
      try {
        let cpu = cpuSeconds();
        await flood(senderNamespace, senderInterface, "100.64.0.1");
        cpu = cpuSeconds() - cpu;
        const counters = run(["nsenter", `--net=/run/netns/${receiver}`, "nft", "list", "chain", "netdev", "nbc_bench", "ingress"]);
        const packets = Number(/counter packets (\d+)/.exec(counters)?.[1] ?? NaN);
        results.nftables.push({ tool: "nftables", dropped: packets, cpuSeconds: cpu });
      } finally {
        run(["nsenter", `--net=/run/netns/${receiver}`, "nft", "delete", "table", "netdev", "nbc_bench"]);
      }
    };
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        await runNetbpf();
        await runNftables();
      } else {
        await runNftables();
        await runNetbpf();
      }
    }
  } finally {
    spawnSync("ip", ["netns", "del", senderNamespace]);
    spawnSync("ip", ["netns", "del", receiver]);
    try {
      StateStore.open({ root: stateRoot }).reset();
    } catch {
      // nothing installed
    }
    rmSync(stateRoot, { recursive: true, force: true });
    rmSync(listFile, { force: true });
  }
  return results;
}

const onlyCost = process.argv.includes("--cost-only");
const counts = [1, 1_000, 100_000];
const cost = {
  hash: programCost("hash", counts),
  trie: programCost("trie", counts),
  hashFourLengths: programCost("hash", counts, [8, 16, 32]),
};
console.log("firewall XDP program, BPF_PROG_TEST_RUN (median of 5 × 200,000 runs)");
console.log("map                              prefixes  lengths   listed source (drop)   unlisted source (pass)");
for (const [name, rows] of [["hash, probed per length", cost.hash], ["LPM trie", cost.trie], ["hash, probed per length", cost.hashFourLengths]] as const) {
  for (const row of rows) console.log(`${name.padEnd(32)} ${String(row.prefixes).padStart(8)}  ${String(row.lengths).padStart(7)}   ${row.listedNs.toFixed(1).padStart(15)} ns   ${row.unlistedNs.toFixed(1).padStart(17)} ns`);
}
if (onlyCost) {
  console.log(JSON.stringify({ bench: "firewall-blocklist", programCost: cost }));
  process.exit(0);
}

const comparison = await blocklistComparison();
const summary = (list: Measurement[]) => {
  const perCpu = list.map((m) => m.dropped / m.cpuSeconds);
  return { droppedPerSecond: median(list.map((m) => m.dropped / seconds)), cpuSeconds: median(list.map((m) => m.cpuSeconds)), droppedPerCpuSecond: median(perCpu) };
};
const ours = summary(comparison.netbpf);
const theirs = summary(comparison.nftables);
console.log(`\n10,000-prefix blocklist, UDP flood (${sender}) over veth, ${rounds} rounds × ${seconds} s (order alternating), netbpf XDP ${comparison.xdpMode}`);
console.log("tool       dropped/s    CPU s (machine)   dropped per CPU-second");
for (const [name, s] of [["netbpf", ours], ["nftables", theirs]] as const) {
  console.log(`${name.padEnd(9)} ${s.droppedPerSecond.toFixed(0).padStart(10)}   ${s.cpuSeconds.toFixed(2).padStart(15)}   ${s.droppedPerCpuSecond.toFixed(0).padStart(22)}`);
}
const ratio = ours.droppedPerCpuSecond / theirs.droppedPerCpuSecond;
console.log(`ratio (netbpf / nftables, dropped per CPU-second): ${ratio.toFixed(2)}`);
console.log(JSON.stringify({ bench: "firewall-blocklist", sender, programCost: cost, netbpf: ours, nftables: theirs, ratio, rounds: comparison, seconds }));
