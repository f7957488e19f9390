/**
 * Marks: the DSCP rewrite checked byte for byte in the kernel (test run),
 * then live on a routed testbed — priority and fwmark seen by an htb qdisc's
 * classes (`tc -s class`), DSCP seen in the IP header by tcpdump at the
 * receiver, with a valid checksum (the receiver's kernel drops bad ones).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { BpfMap } from "../../src/core/map.js";
import { u32 } from "../../src/core/codec.js";
import { MapType } from "../../src/sys/bpf-constants.js";
import { ruleCounter } from "../../src/firewall/firewall-program.js";
import { loadGenerated } from "../../src/firewall/hook-attachment.js";
import { markerProgram } from "../../src/firewall/marker-program.js";
import { parseDscp, parsePriority } from "../../src/firewall/marker.js";
import { UsageError } from "../../src/sys/errors.js";
import { CounterServer, udpSenderScript } from "../support/control-traffic.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { checksum, ethernet, ipv4, ipv6, udp } from "../support/packet-builder.js";
import { RoutedTestbed } from "../support/routed-testbed.js";
import { removeStateRoot, stateEnvironment, testStateRoot } from "../support/state-root.js";

test("priorities, DSCP names and numbers parse; bad ones are usage errors", () => {
  assert.equal(parsePriority("1:2"), 0x10002);
  assert.equal(parsePriority("7"), 7);
  assert.equal(parseDscp("ef"), 46);
  assert.equal(parseDscp("AF41"), 34);
  assert.equal(parseDscp("63"), 63);
  for (const bad of ["64", "-1", "gold"]) assert.throws(() => parseDscp(bad), UsageError);
  for (const bad of ["1:2:3", "x", "99999999999"]) assert.throws(() => parsePriority(bad), UsageError);
});

test("DSCP rewrite keeps ECN and the IPv4 header checksum valid; IPv6 traffic class too", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  using counters = BpfMap.create({ type: MapType.PercpuArray, key: u32, value: ruleCounter, maxEntries: 4 });
  using program = loadGenerated("nbc_mark_test", "tc egress", markerProgram([{ slot: 1, match: { protocol: 17 }, actions: { dscp: 46 } }]), { counters });
  for (const ecn of [0, 1, 3]) {
    const frame = Buffer.from(ethernet(0x0800, ipv4(17, udp(1000, 2000))));
    frame[15] = (0x28 << 2) | ecn;
    frame.writeUInt16BE(0, 24);
    frame.writeUInt16BE(checksum(frame.subarray(14, 34)), 24);
    const result = program.run({ data: frame });
    const out = result.dataOut!;
    assert.equal(out[15], (46 << 2) | ecn, `tos with ecn ${ecn}`);
    assert.equal(checksum(out.subarray(14, 34)), 0, "the header checksums to zero");
  }
  const v6 = Buffer.from(ethernet(0x86dd, ipv6(17, udp(1000, 2000))));
  v6.writeUInt32BE(0x6000_0000 | (0x01 << 20) | 0xabcde, 14);
  const out6 = program.run({ data: v6 }).dataOut!;
  const word = out6.readUInt32BE(14);
  assert.equal((word >>> 20) & 0xff, (46 << 2) | 1, "traffic class = DSCP + ECN");
  assert.equal(word & 0xfffff, 0xabcde, "flow label kept");
  assert.equal(word >>> 28, 6);
  assert.equal((counters.getPerCpu(1) ?? []).reduce((sum, v) => sum + v.packets, 0n), 4n);
});

const stateRoot = testStateRoot("c");
const env = stateEnvironment(stateRoot);
let bed: RoutedTestbed | undefined;
let server: CounterServer | undefined;

before(async () => {
  if (!isRoot()) return;
  bed = RoutedTestbed.create("c");
  server = await CounterServer.start(bed, bed.server, [5001, 5002, 5003], []);
});

after(async () => {
  await server?.stop();
  bed?.destroy();
  removeStateRoot(stateRoot);
});

function netbpf(...args: string[]) {
  return bed!.netbpf(bed!.router, env, ...args);
}

function classPackets(text: string, classId: string): number {
  const match = new RegExp(`class htb ${classId} [^\\n]*\\n\\s*Sent \\d+ bytes (\\d+) pkt`).exec(text);
  assert.ok(match, `class ${classId} in\n${text}`);
  return Number(match[1]);
}

test("marks are visible to an htb qdisc (priority, fwmark) and to the receiver (DSCP)", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const b = bed!;
  const device = b.routerServerSide;
  // htb puts a packet whose priority is one of its class ids straight into that class; a classic-BPF cls_bpf filter classifies by fwmark.
  b.exec(b.router, ["tc", "qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "default", "3"]);
  for (const id of ["1:1", "1:2", "1:3"]) b.exec(b.router, ["tc", "class", "add", "dev", device, "parent", "1:", "classid", id, "htb", "rate", "100mbit"]);
  // The fwmark classifier: classic BPF reading the skb mark (SKF_AD_OFF + SKF_AD_MARK), run by cls_bpf — the kernel's
  // own interpreter, independent of netbpf's code. (fw, basic and u32's mark match are not built into every kernel.)
  b.exec(b.router, ["tc", "filter", "add", "dev", device, "parent", "1:", "protocol", "ip", "prio", "1", "bpf", "bytecode", "4,32 0 0 4294963220,21 0 1 42,6 0 0 4294967295,6 0 0 0", "flowid", "1:1"]);
  for (const args of [
    ["-f", "udp dst port 5001", "--fwmark", "42"],
    ["-p", "udp", "--port", "5002", "--priority", "1:2"],
    ["-f", "udp dst port 5003", "--dscp", "ef"],
  ]) {
    const result = netbpf("mark", "-i", device, ...args);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /tc egress: tcx/);
  }
  const capture = b.start(b.server, ["tcpdump", "-i", b.serverInterface, "-nn", "-v", "-l", "-c", "50", "udp dst port 5003"]);
  let captured = "";
  capture.stdout.on("data", (chunk) => (captured += chunk));
  const captureDone = new Promise((resolve) => capture.once("exit", resolve));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const beforeCounts = await server!.counts();
  const sent = b.tryExec(b.client, [process.execPath, "--input-type=module", "-e", udpSenderScript([5001, 5002, 5003].map((port) => ({ host: b.serverAddress, port })), 50)]);
  assert.equal(sent.status, 0, sent.stderr);
  const timer = setTimeout(() => capture.kill("SIGKILL"), 10_000);
  await captureDone;
  clearTimeout(timer);
  const afterCounts = await server!.counts();
  for (const port of [5001, 5002, 5003]) assert.equal(afterCounts[port]! - beforeCounts[port]!, 50, `port ${port} received everything`);

  const classes = b.exec(b.router, ["tc", "-s", "class", "show", "dev", device]).stdout;
  assert.equal(classPackets(classes, "1:1"), 50, "fwmark 42 → mark classifier → class 1:1");
  assert.equal(classPackets(classes, "1:2"), 50, "priority 1:2 → class 1:2");
  const headers = captured.split("\n").filter((line) => line.startsWith("") && /IP \(tos/.test(line));
  assert.equal(headers.length, 50, captured);
  for (const line of headers) {
    assert.match(line, /tos 0xb8/, line);
    assert.doesNotMatch(line, /bad cksum/, line);
  }
  const list = netbpf("mark", "list", "--json");
  const rules = list.stdout.trim().split("\n").map((line) => JSON.parse(line) as { id: number; packets: number });
  assert.deepEqual(rules.map((rule) => rule.packets), [50, 50, 50]);
  assert.equal(netbpf("mark", "delete", String(rules[0]!.id), "-i", device).status, 0);
  assert.equal(netbpf("mark", "-i", device, "--dscp", "99").status, 2);
  assert.equal(netbpf("mark", "-i", device).status, 2);
});
