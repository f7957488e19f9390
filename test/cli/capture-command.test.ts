import { test, type TestContext } from "node:test";
import { AttachType } from "../../src/sys/bpf-constants.js";
import { programQuery } from "../../src/sys/bpf.js";
import { interfaceIndex } from "../../src/sys/socket.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCaptureWriter, readCaptureFile } from "../../src/pcap/capture-file.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { PacketSummarizer } from "../../src/capture/packet-summary.js";
import { probeTcx } from "../../src/features/features.js";
import { cliPath, runCli } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { ethernet, etherTypeIpv4, ipv4, udp } from "../support/packets.js";
import { Testbed } from "../support/testbed.js";
import { finished, listening } from "../support/capture-process.js";
import { udpSendScript } from "../capture/udp-send-script.js";

const tcpdumpAvailable = spawnSync("tcpdump", ["--version"]).status === 0;
const loopbackFixture = fileURLToPath(new URL("../../../test/capture/fixtures/tcpdump-loopback-mixed.pcap", import.meta.url));

function tcpdump(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync("tcpdump", args, { encoding: "utf8", env: { ...process.env, TZ: "UTC" } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function netbpf(args: string[]) {
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: "utf8", env: { ...process.env, TZ: "UTC" }, timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const liveAvailable = isRoot() && probeTcx();


/** A testbed and a scratch folder for one live test, both removed when the test ends. */
function liveSetUp(t: TestContext): { bed: Testbed; directory: string } {
  const bed = Testbed.create("cap", { disableIpv6: true });
  const directory = mkdtempSync(join(tmpdir(), "nb-cap-live-"));
  t.after(() => {
    bed.destroy();
    rmSync(directory, { recursive: true, force: true });
  });
  return { bed, directory };
}

test("live capture on a veth testbed: pcapng that tcpdump reads, counts and bytes as sent, summaries as tcpdump's", async (t) => {
  if (skipUnlessKernel(t, liveAvailable && tcpdumpAvailable, "needs root, tcx and tcpdump")) return;
  const { bed, directory } = liveSetUp(t);
  const output = join(directory, "out.pcapng");
  const payloads = Array.from({ length: 5 }, (_, i) => `netbpf live capture ${i} ${"x".repeat(i * 37)}`);
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-w", output, "-c", String(2 * payloads.length), "udp", "or", "icmp"]);
  const result = finished(child);
  await listening(child);
  // Asked of our interface only: captures in other tests run at the same time.
  const tcxLinks = () => bed.inNamespace(bed.a, () => {
    const ifindex = interfaceIndex(bed.a.interface);
    return [AttachType.TcxIngress, AttachType.TcxEgress].flatMap((type) => programQuery(ifindex, type).linkIds);
  });
  assert.equal(tcxLinks().length, 2, "tcx ingress and egress links while capturing");
  // UDP to a closed port: each datagram comes in and an ICMP port unreachable goes out.
  const sendingFrom = BigInt(Date.now() - 1) * 1_000_000n;
  bed.node(bed.b, udpSendScript(bed.a.address, 47999, payloads));
  const { code, stderr } = await result;
  const sendingTo = BigInt(Date.now() + 1) * 1_000_000n;
  assert.equal(code, 0, stderr);
  assert.deepEqual(tcxLinks(), [], "every link is gone after the capture");
  assert.match(stderr, /^10 packets captured$/m);
  assert.match(stderr, /^0 packets dropped by kernel \(ring full\)$/m);

  const read = tcpdump(["-n", "-r", output]);
  assert.equal(read.status, 0, read.stderr);
  assert.deepEqual(read.stderr.trim().split("\n").filter((line) => !line.startsWith("reading from file")), [], "tcpdump complained");
  const theirLines = read.stdout.trim().split("\n");
  assert.equal(theirLines.length, 10);

  const capture = readCaptureFile(output);
  assert.equal(capture.format, "pcapng");
  assert.equal(capture.interfaces.length, 1);
  assert.equal(capture.interfaces[0]!.name, bed.a.interface);
  const inbound = capture.packets.filter((p) => p.direction === "inbound");
  const outbound = capture.packets.filter((p) => p.direction === "outbound");
  assert.equal(inbound.length, payloads.length);
  assert.equal(outbound.length, payloads.length);
  for (const packet of capture.packets) assert.ok(packet.timestamp >= sendingFrom && packet.timestamp <= sendingTo, `wall-clock time ${packet.timestamp} while sending`);
  inbound.forEach((packet, index) => {
    assert.equal(packet.receptionType, "unicast");
    const payload = Buffer.from(payloads[index]!);
    assert.equal(packet.originalLength, 14 + 20 + 8 + payload.length, "wire length of the datagram");
    assert.equal(packet.data.length, packet.originalLength);
    assert.deepEqual(Buffer.from(packet.data.subarray(42)), payload, "the bytes sent");
    assert.equal(packet.data[23], 17);
  });
  outbound.forEach((packet, index) => {
    assert.equal(packet.receptionType, undefined);
    assert.equal(packet.data[23], 1, "ICMP");
    assert.equal(packet.data[34], 3, "destination unreachable");
    assert.ok(Buffer.from(packet.data).includes(Buffer.from(payloads[index]!)), "quotes the datagram");
  });
  const statistics = capture.statistics;
  assert.equal(statistics.length, 1);
  assert.equal(statistics[0]!.userDelivered, 10n);
  assert.ok(statistics[0]!.filterAccepted! >= 10n && statistics[0]!.interfaceReceived! >= statistics[0]!.filterAccepted!);
  assert.equal(statistics[0]!.osDropped, 0n);

  const summarizer = new PacketSummarizer({ timeZone: "utc" });
  assert.deepEqual(capture.packets.map((p) => summarizer.summarize(p)), theirLines);
});

test("live capture: Ctrl-C keeps what was captured; pcapng records the sending process", async (t) => {
  if (skipUnlessKernel(t, liveAvailable, "needs root and tcx")) return;
  const { bed, directory } = liveSetUp(t);
  const output = join(directory, "sent.pcapng");
  // nsenter: only the network namespace changes, so the cgroup v2 mount (for process information) stays visible.
  const child = bed.start(bed.b, [process.execPath, cliPath, "capture", "-i", bed.b.interface, "-Q", "out", "-w", output, "udp"], "nsenter");
  const result = finished(child);
  await listening(child);
  const payloads = ["one", "two", "three"];
  const pid = Number(bed.node(bed.b, `console.log(process.pid);${udpSendScript(bed.a.address, 47999, payloads)}`).trim());
  await new Promise((resolve) => setTimeout(resolve, 200));
  child.kill("SIGINT");
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  assert.match(stderr, /^3 packets captured$/m);
  const capture = readCaptureFile(output);
  assert.equal(capture.packets.length, 3);
  for (const [index, packet] of capture.packets.entries()) {
    assert.equal(packet.direction, "outbound");
    assert.deepEqual(Buffer.from(packet.data.subarray(42)), Buffer.from(payloads[index]!));
    assert.deepEqual(packet.process, { pid, command: "node" });
  }
});

test("live capture: an inbound packet from a socket of another network namespace names no process", async (t) => {
  if (skipUnlessKernel(t, liveAvailable, "needs root and tcx")) return;
  const { bed, directory } = liveSetUp(t);
  const output = join(directory, "received.pcapng");
  const child = bed.start(bed.b, [process.execPath, cliPath, "capture", "-i", bed.b.interface, "-Q", "in", "-w", output, "-c", "3", "udp"], "nsenter");
  const result = finished(child);
  await listening(child);
  // The sender lives in namespace a; over the veth the kernel keeps its socket on the packet (skb->sk).
  const pid = Number(bed.node(bed.a, `console.log(process.pid);${udpSendScript(bed.b.address, 47998, ["one", "two", "three"])}`).trim());
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  const capture = readCaptureFile(output);
  assert.equal(capture.packets.length, 3);
  for (const packet of capture.packets) {
    assert.equal(packet.direction, "inbound");
    assert.equal(packet.process, undefined, `packet attributed to ${JSON.stringify(packet.process)} (the sender ${pid} lives in another namespace)`);
  }
});

test("-i any attaches to every interface that is up and says which; loopback packets once, as tcpdump shows them", async (t) => {
  if (skipUnlessKernel(t, liveAvailable && tcpdumpAvailable, "needs root, tcx and tcpdump")) return;
  const { bed, directory } = liveSetUp(t);
  const output = join(directory, "any.pcapng");
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", "any", "-w", output, "-c", "5", "udp"]);
  const result = finished(child);
  await listening(child);
  bed.node(bed.a, udpSendScript(bed.b.address, 47100, ["to b 1", "to b 2"]));
  bed.node(bed.a, udpSendScript("127.0.0.1", 47101, ["lo 1", "lo 2", "lo 3"]));
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  assert.match(stderr, new RegExp(`^netbpf: -i any: capturing on lo, ${bed.a.interface} \\(a capture program in the data path of each\\)$`, "m"));
  assert.match(stderr, new RegExp(`listening on lo, ${bed.a.interface} \\(lo: tcx ingress \\(loopback: each packet once\\); ${bed.a.interface}: tcx ingress\\+egress\\)`));
  const capture = readCaptureFile(output);
  assert.deepEqual(capture.interfaces.map((i) => i.name), ["lo", bed.a.interface]);
  const byInterface = (index: number) => capture.packets.filter((p) => p.interfaceIndex === index);
  // libpcap drops loopback's outgoing copy: each datagram once, as it comes in.
  assert.deepEqual(byInterface(0).map((p) => p.direction), ["inbound", "inbound", "inbound"], "loopback: each datagram once");
  assert.deepEqual(byInterface(1).map((p) => p.direction), ["outbound", "outbound"], "veth: each datagram out");
  assert.deepEqual(capture.statistics.map((s) => [s.interfaceIndex, s.userDelivered]), [[0, 3n], [1, 2n]]);
  const read = tcpdump(["-n", "-r", output]);
  assert.equal(read.status, 0, read.stderr);
  assert.equal(read.stdout.trim().split("\n").length, 5);
});

test("live capture prints tcpdump's summaries and JSON lines", async (t) => {
  if (skipUnlessKernel(t, liveAvailable, "needs root and tcx")) return;
  const bed = Testbed.create("cap", { disableIpv6: true });
  t.after(() => bed.destroy());
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-Q", "in", "-c", "2", "--json", "udp"]);
  const result = finished(child);
  await listening(child);
  bed.node(bed.b, udpSendScript(bed.a.address, 47000, ["a", "bb"]));
  const { code, stdout, stderr } = await result;
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  assert.deepEqual(lines.map((l) => l.length), [43, 44]);
  for (const line of lines) {
    assert.equal(line.interface, bed.a.interface);
    assert.equal(line.direction, "inbound");
    assert.equal(line.linkType, "ETHERNET");
    assert.match(line.summary as string, /^IP 192\.0\.2\.2\.\d+ > 192\.0\.2\.1\.47000: UDP, length [12]$/);
    assert.match(line.timestamp as string, /^\d{10}\.\d{9}$/);
  }
});

test("offline -r: the filter program selects what tcpdump selects, printed as tcpdump prints it", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  for (const expression of ["", "tcp", "udp", "icmp or icmp6", "tcp[tcpflags] & tcp-syn != 0", "port 47001", "ip6", "greater 100"]) {
    const ours = netbpf(["capture", "-r", loopbackFixture, ...(expression ? [expression] : [])]);
    const theirs = tcpdump(["-n", "-r", loopbackFixture, ...(expression ? [expression] : [])]);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, theirs.stdout, `expression ${JSON.stringify(expression)}`);
    if (expression) assert.doesNotMatch(ours.stderr, /interpreter/, "the filter runs compiled to JavaScript");
  }
  // -vv: tcpdump's -v detail, and a note that the extra -vv detail is not decoded.
  const verbose = netbpf(["capture", "-r", loopbackFixture, "-v"]);
  assert.equal(verbose.stdout, tcpdump(["-n", "-v", "-r", loopbackFixture]).stdout);
  const doubly = netbpf(["capture", "-r", loopbackFixture, "-vv"]);
  assert.equal(doubly.status, 0, doubly.stderr);
  assert.equal(doubly.stdout, verbose.stdout);
  assert.match(doubly.stderr, /^netbpf: -vv prints what -v prints/m);
  assert.doesNotMatch(verbose.stderr, /prints what -v prints/);
  const counted = netbpf(["capture", "-r", loopbackFixture, "-c", "2", "tcp"]);
  assert.equal(counted.stdout.trim().split("\n").length, 2);
});

test("offline -r -w writes the selected packets, those too large for a kernel test run included", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = mkdtempSync(join(tmpdir(), "nb-cap-offline-"));
  try {
    const input = join(directory, "in.pcap");
    const writer = createCaptureWriter(input, { linkType: LinkType.ETHERNET });
    const packets = [
      ethernet(etherTypeIpv4, ipv4(17, udp(1000, 2000, Buffer.alloc(10)))),
      ethernet(etherTypeIpv4, ipv4(17, udp(1000, 2000, Buffer.alloc(6000)))),
      ethernet(etherTypeIpv4, ipv4(17, udp(1000, 3000, Buffer.alloc(6000)))),
      ethernet(etherTypeIpv4, ipv4(6, Buffer.alloc(20))),
    ];
    packets.forEach((data, i) => writer.writePacket({ data, timestamp: BigInt(1_700_000_000 + i) * 1_000_000_000n }));
    void writer.close();
    const output = join(directory, "out.pcap");
    const result = netbpf(["capture", "-r", input, "-w", output, "udp port 2000"]);
    assert.equal(result.status, 0, result.stderr);
    const read = tcpdump(["-n", "-r", output]);
    assert.equal(read.status, 0, read.stderr);
    assert.equal(read.stdout, tcpdump(["-n", "-r", input, "udp port 2000"]).stdout);
    assert.equal(readCaptureFile(output).packets.length, 2);
    assert.doesNotMatch(result.stderr, /interpreter|refuse/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("-d prints the capture program with the filter's tests as comments", () => {
  const result = runCli(["capture", "-d", "udp", "port", "53"]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /filter "udp port 53"/);
  assert.match(result.stdout, /; pkt\[0x17:1\] == 0x11/);
  assert.match(result.stdout, /call ringbuf_reserve$/m);
  assert.match(result.stdout, /call ringbuf_submit$/m);
  assert.match(result.stdout, /call skb_load_bytes$/m);
  const plain = runCli(["capture", "-d"]);
  assert.match(plain.stdout, /no filter: every packet matches/);
});

test("bad options and expressions get clear errors", () => {
  const cases: [string[], RegExp][] = [
    [["capture", "-r", loopbackFixture, "-c", "0"], /-c needs a positive packet count, got "0"/],
    [["capture", "-i", "lo", "-Q", "sideways"], /-Q takes in, out or inout, got "sideways"/],
    [["capture", "-r", loopbackFixture, "-Q", "in"], /-Q and -B apply to live captures/],
    [["capture", "-i", "lo", "-s", "-5"], /-s needs a snapshot length/],
    [["capture", "-r", loopbackFixture, "tcp and"], /compile filter: unexpected end of expression[^]*tcp and\n *\^/],
    [["capture", "-r", "/nonexistent/file.pcap"], /nonexistent/],
    [["capture", "-i", "nb-cap-missing0", "-c", "1"], /nb-cap-missing0/],
  ];
  for (const [args, pattern] of cases) {
    const result = runCli(args);
    assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, pattern);
    assert.doesNotMatch(result.stderr, /TypeError|at .*\.js:\d+/);
  }
});
