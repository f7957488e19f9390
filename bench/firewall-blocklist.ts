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
 *    round. Reported per tool (min / median / max over the rounds): packets
 *    dropped per second; the receiving side's CPU — softirq time on the whole
 *    machine (/proc/stat), where veth's receive path, XDP and nftables'
 *    netdev hook run (they run on the sender's CPU when its system call
 *    re-enables bottom halves, and are counted as softirq, not as its system
 *    time) — and dropped packets per softirq CPU-second; and, as before, per
 *    CPU-second of system + irq + softirq (which adds the sender's own cost,
 *    the same for both tools). The machine is shared: other work adds to
 *    both counts, hence alternating rounds and the spread.
 *
 * Run: npm run build && node dist/bench/firewall-blocklist.js [rounds] [seconds] [--sender hping3|xdp-live] [--cost-only] [--prefix NAME]
 * (--prefix names the namespaces, links and pin folder: NAME-…, at most 6 characters.)
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
import { MapFlag, MapType, ProgramType } from "../src/sys/bpf-constants.js";
import { inNetworkNamespace } from "../src/sys/network-namespace.js";
import { Assembler, R1, R2 } from "../src/asm/assembler.js";
import { Program } from "../src/core/program.js";
import { median } from "./support/statistics.js";

const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 4);
const prefixIndex = process.argv.indexOf("--prefix");
const prefix = prefixIndex > 0 ? process.argv[prefixIndex + 1]! : "nbcb";
if (!/^[a-z][a-z0-9]{0,5}$/.test(prefix)) throw new Error(`--prefix must be 1-6 lowercase letters or digits, got ${prefix}`);

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
 * System, irq and softirq seconds of all CPUs (/proc/stat). On veth the
 * receive path runs as softirq work when the sender's system call re-enables
 * bottom halves; /proc/stat counts it as softirq (a tick that lands in it is
 * softirq time, not the sender's system time), so softirq is the receiving
 * side and system mostly the sender.
 */
function cpuSeconds(): { system: number; softirq: number; total: number } {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { system: fields[2]! / ticks, softirq: fields[6]! / ticks, total: (fields[2]! + fields[5]! + fields[6]!) / ticks };
}

/** CPU seconds spent while `work` runs. */
async function measureCpu(work: () => Promise<void>): Promise<{ system: number; softirq: number; total: number }> {
  const before = cpuSeconds();
  await work();
  const after = cpuSeconds();
  return { system: after.system - before.system, softirq: after.softirq - before.softirq, total: after.total - before.total };
}

const senderIndex = process.argv.indexOf("--sender");
const sender = senderIndex > 0 ? process.argv[senderIndex + 1]! : "packet-flood";
if (sender !== "packet-flood" && sender !== "hping3" && sender !== "xdp-live") throw new Error(`--sender must be packet-flood, hping3 or xdp-live, got ${sender}`);
let floodBinary = "";
if (sender === "packet-flood" && !process.argv.includes("--cost-only")) {
  const build = mkdtempSync(join(tmpdir(), "nb-fw-bench-"));
  floodBinary = join(build, "packet-flood");
  execFileSync("clang", ["-O2", "-o", floodBinary, fileURLToPath(new URL("../../bench/c/packet-flood.c", import.meta.url))], { stdio: "inherit" });
  process.on("exit", () => rmSync(build, { recursive: true, force: true }));
}

/** BPF_PROG_TEST_RUN flag: frames the program redirects are really transmitted. */
const testXdpLiveFrames = 1 << 1;

/**
 * The xdp-live sender: BPF_PROG_TEST_RUN in live-frame mode runs an XDP
 * program that redirects one frame out of the sender's veth, 100,000 times
 * per call, for `seconds`. The frames reach the peer as XDP frames, not skbs —
 * as frames from a NIC reach its driver: the receiver's XDP program sees them
 * before any skb exists, while without one veth builds an skb (NAPI, GRO on)
 * for the stack and nftables. With AF_PACKET senders every frame is an skb
 * with little headroom, which veth's XDP path first copies into a page.
 */
function liveFrameFlood(namespace: string, device: string): void {
  const [link] = JSON.parse(run(["ip", "-n", namespace, "-j", "link", "show", "dev", device])) as { ifindex: number }[];
  const instructions = new Assembler().mov64(R1, link!.ifindex).mov64(R2, 0).call("redirect").exit().finish();
  using program = Program.load({ type: ProgramType.Xdp, instructions, license: "GPL", name: `${prefix}_flood` });
  const data = frame([100, 64, 0, 2]);
  const deadline = Date.now() + seconds * 1000;
  inNetworkNamespace(namespace, () => {
    while (Date.now() < deadline) program.run({ data, dataOutSize: 0, repeat: 100_000, flags: testXdpLiveFrames });
  });
}

/** Floods `target` from `namespace` for `seconds`; the sender's source is 100.64.0.2 (listed). */
async function flood(namespace: string, device: string, target: string): Promise<void> {
  if (sender === "xdp-live") {
    liveFrameFlood(namespace, device);
    return;
  }
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
  /** system + irq + softirq, whole machine (sender included). */
  cpuSeconds: number;
  /** softirq only: the receiving side. */
  softirqSeconds: number;
  systemSeconds: number;
}

async function blocklistComparison(): Promise<{ netbpf: Measurement[]; nftables: Measurement[]; xdpMode: string }> {
  const tag = randomBytes(3).toString("hex");
  const senderNamespace = `${prefix}-bench-${tag}-a`;
  const receiver = `${prefix}-bench-${tag}-b`;
  const senderInterface = `${prefix}${tag}a`;
  const receiverInterface = `${prefix}${tag}b`;
  const stateRoot = `/sys/fs/bpf/${prefix}-bench-${tag}`;
  const listFile = join(tmpdir(), `${prefix}-bench-${tag}.txt`);
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
    // XDP frames from the peer need NAPI on the receiving veth when no XDP program is attached (nftables): GRO turns it on.
    if (sender === "xdp-live") run(["nsenter", `--net=/run/netns/${receiver}`, "ethtool", "-K", receiverInterface, "gro", "on"]);
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
        const cpu = await measureCpu(() => flood(senderNamespace, senderInterface, "100.64.0.1"));
        const dropped = Number(firewall.rules().find((r) => r.id === rule.id)!.packets);
        results.netbpf.push({ tool: "netbpf", dropped, cpuSeconds: cpu.total, softirqSeconds: cpu.softirq, systemSeconds: cpu.system });
      } finally {
        firewall.uninstall();
      }
    };
    const runNftables = async () => {
      run(["nsenter", `--net=/run/netns/${receiver}`, "nft", "-f", "-"], nftRules);
      try {
        const cpu = await measureCpu(() => flood(senderNamespace, senderInterface, "100.64.0.1"));
        const counters = run(["nsenter", `--net=/run/netns/${receiver}`, "nft", "list", "chain", "netdev", "nbc_bench", "ingress"]);
        const packets = Number(/counter packets (\d+)/.exec(counters)?.[1] ?? NaN);
        results.nftables.push({ tool: "nftables", dropped: packets, cpuSeconds: cpu.total, softirqSeconds: cpu.softirq, systemSeconds: cpu.system });
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
/** min / median / max of a figure over the rounds. */
const spread = (values: number[]) => ({ min: Math.min(...values), median: median(values), max: Math.max(...values) });
const summary = (list: Measurement[]) => ({
  droppedPerSecond: spread(list.map((m) => m.dropped / seconds)),
  softirqSeconds: spread(list.map((m) => m.softirqSeconds)),
  systemSeconds: spread(list.map((m) => m.systemSeconds)),
  droppedPerSoftirqSecond: spread(list.map((m) => m.dropped / m.softirqSeconds)),
  droppedPerCpuSecond: spread(list.map((m) => m.dropped / m.cpuSeconds)),
});
const ours = summary(comparison.netbpf);
const theirs = summary(comparison.nftables);
const show = (s: { min: number; median: number; max: number }, digits: number, scale = 1) => `${(s.min / scale).toFixed(digits)}/${(s.median / scale).toFixed(digits)}/${(s.max / scale).toFixed(digits)}`;
console.log(`\n10,000-prefix blocklist, UDP flood (${sender}) over veth, ${rounds} rounds × ${seconds} s (order alternating), netbpf XDP ${comparison.xdpMode}; min/median/max`);
console.log("tool      dropped/s (M)      softirq s (receiver)   system s (sender)   drops per softirq s (M)   drops per CPU s (M, sender included)");
for (const [name, s] of [["netbpf", ours], ["nftables", theirs]] as const) {
  console.log(`${name.padEnd(9)} ${show(s.droppedPerSecond, 2, 1e6).padEnd(18)} ${show(s.softirqSeconds, 2).padEnd(22)} ${show(s.systemSeconds, 2).padEnd(19)} ${show(s.droppedPerSoftirqSecond, 2, 1e6).padEnd(25)} ${show(s.droppedPerCpuSecond, 2, 1e6)}`);
}
// Rounds pair up (netbpf and nftables ran back to back): a ratio per pair, then its spread.
const pairs = comparison.netbpf.map((m, i) => [m, comparison.nftables[i]!] as const);
const softirqRatio = spread(pairs.map(([a, b]) => (a.dropped / a.softirqSeconds) / (b.dropped / b.softirqSeconds)));
const machineRatio = spread(pairs.map(([a, b]) => (a.dropped / a.cpuSeconds) / (b.dropped / b.cpuSeconds)));
console.log(`ratio netbpf / nftables, drops per softirq CPU-second (receiving side), per round pair: ${show(softirqRatio, 2)}`);
console.log(`ratio netbpf / nftables, drops per machine CPU-second (sender included): ${show(machineRatio, 2)}`);
console.log(JSON.stringify({ bench: "firewall-blocklist", sender, programCost: cost, netbpf: ours, nftables: theirs, softirqRatio, machineRatio, rounds: comparison, seconds }));
