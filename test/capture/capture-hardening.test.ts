/**
 * What a careless user, a crash, a full disk and a slow reader do to
 * `netbpf capture` (issue 13): it must never harm the host, never lose
 * what it captured, and behave as tcpdump does in the same situation.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCaptureWriter, readCaptureFile } from "../../src/pcap/capture-file.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { probeTcx } from "../../src/features/features.js";
import { AttachType } from "../../src/sys/bpf-constants.js";
import { programQuery } from "../../src/sys/bpf.js";
import { interfaceIndex } from "../../src/sys/socket.js";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { ethernet, etherTypeIpv4, ipv4, udp } from "../support/packets.js";
import { Testbed } from "../support/testbed.js";
import { finished, listening } from "../support/capture-process.js";
import { udpSendScript } from "./udp-send-script.js";

const tcpdumpAvailable = spawnSync("tcpdump", ["--version"]).status === 0;
const liveAvailable = isRoot() && probeTcx();
const fixture = fileURLToPath(new URL("../../../test/capture/fixtures/tcpdump-loopback-mixed.pcap", import.meta.url));

function tcpdump(args: string[]) {
  const result = spawnSync("tcpdump", args, { encoding: "utf8", env: { ...process.env, TZ: "UTC" } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function netbpf(args: string[], input?: string) {
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: "utf8", input, env: { ...process.env, TZ: "UTC" }, timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function scratch(t: TestContext): string {
  const directory = mkdtempSync(join(tmpdir(), "nbh1-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

/** A pcap of `count` UDP packets of `size` payload bytes, one millisecond apart. */
function writeInput(path: string, count: number, size: number): void {
  const writer = createCaptureWriter(path, { linkType: LinkType.ETHERNET });
  for (let i = 0; i < count; i++) {
    writer.writePacket({ data: ethernet(etherTypeIpv4, ipv4(17, udp(1000 + (i % 7), 2000, Buffer.alloc(size, i & 0xff)))), timestamp: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n });
  }
  void writer.close();
}

function tcxLinkCount(bed: Testbed, name: string): number {
  return bed.inNamespace(bed.a, () => {
    const ifindex = interfaceIndex(name);
    return [AttachType.TcxIngress, AttachType.TcxEgress].flatMap((type) => programQuery(ifindex, type).linkIds).length;
  });
}

// ---- 1. Never harm the host ----

test("capture without -i refuses in one line and lists the interfaces; nothing is attached", () => {
  const result = netbpf(["capture", "-c", "1"]);
  assert.notEqual(result.status, 0);
  assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  assert.match(result.stderr, /^netbpf: capture: name the interface to capture on with -i \(.*interfaces: .*\blo\b.*-i any/);
  assert.doesNotMatch(result.stderr, /listening on/);
});

test("-D lists the interfaces with the flags tcpdump -D shows, in its order", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const ours = netbpf(["capture", "-D"]);
  assert.equal(ours.status, 0, ours.stderr);
  const strip = (text: string) => text.trim().split("\n").map((line) => line.replace(/^\d+\./, ""));
  const names = new Set(readdirSync("/sys/class/net"));
  const real = (lines: string[]) => lines.filter((line) => names.has(line.split(" ")[0]!));
  const theirs = real(strip(tcpdump(["-D"]).stdout));
  assert.ok(theirs.length > 0);
  assert.deepEqual(real(strip(ours.stdout)), theirs);
  assert.match(ours.stdout, /^\d+\.any \(.*data path.*\) \[Up, Running\]$/m);
});

test("-w writes through a symbolic link, a FIFO and a character device; keeps an existing file's mode and owner; new files as tcpdump's", async (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable && isRoot(), "needs root (mknod, chown) and tcpdump")) return;
  const directory = scratch(t);
  const reference = readFileSync(fixture);

  // A symbolic link stays a link; the file it points to gets the capture.
  const target = join(directory, "target.pcap");
  writeFileSync(target, "old");
  const link = join(directory, "link.pcap");
  symlinkSync(target, link);
  let result = netbpf(["capture", "-r", fixture, "-w", link]);
  assert.equal(result.status, 0, result.stderr);
  assert.ok(lstatSync(link).isSymbolicLink(), "the link is still a link");
  assert.equal(readCaptureFile(target).packets.length, readCaptureFile(fixture).packets.length);

  // An existing file keeps its mode and owner.
  const existing = join(directory, "existing.pcap");
  writeFileSync(existing, "old");
  chmodSync(existing, 0o640);
  chownSync(existing, 4321, 4321);
  result = netbpf(["capture", "-r", fixture, "-w", existing]);
  assert.equal(result.status, 0, result.stderr);
  const status = statSync(existing);
  assert.deepEqual([status.mode & 0o7777, status.uid, status.gid], [0o640, 4321, 4321]);
  assert.equal(readCaptureFile(existing).packets.length, readCaptureFile(fixture).packets.length);

  // A new file gets the mode tcpdump gives it under the same umask.
  const ourNew = join(directory, "new-ours.pcap");
  const theirNew = join(directory, "new-theirs.pcap");
  assert.equal(netbpf(["capture", "-r", fixture, "-w", ourNew]).status, 0);
  assert.equal(tcpdump(["-r", fixture, "-w", theirNew]).status, 0);
  assert.equal(statSync(ourNew).mode & 0o7777, statSync(theirNew).mode & 0o7777);
  assert.deepEqual(readdirSync(directory).filter((name) => name.endsWith(".tmp")), [], "no temporary file left");

  // A character device (our own null device, in our folder) stays a device.
  const device = join(directory, "null");
  assert.equal(spawnSync("mknod", [device, "c", "1", "3"]).status, 0);
  result = netbpf(["capture", "-r", fixture, "-w", device]);
  assert.equal(result.status, 0, result.stderr);
  assert.ok(lstatSync(device).isCharacterDevice(), "the device is still a device");

  // A FIFO: the reader at its other end gets the whole capture.
  const fifo = join(directory, "fifo");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  const reader = spawn("cat", [fifo]);
  const chunks: Buffer[] = [];
  reader.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  const readerDone = new Promise((resolve) => reader.on("exit", resolve));
  result = netbpf(["capture", "-r", fixture, "-w", fifo]);
  await readerDone;
  assert.equal(result.status, 0, result.stderr);
  assert.ok(lstatSync(fifo).isFIFO(), "the FIFO is still a FIFO");
  const received = Buffer.concat(chunks);
  assert.equal(received.length, readFileSync(target).length);
  assert.ok(reference.length > 0);
});

test("load refuses a device or a huge file before reading it, and a pin path off bpffs before creating anything", (t) => {
  const directory = scratch(t);
  const device = netbpf(["load", "/dev/zero"]);
  assert.notEqual(device.status, 0);
  assert.match(device.stderr, /^netbpf: load: \/dev\/zero is a character device, not an object file/);
  const folder = netbpf(["load", directory]);
  assert.match(folder.stderr, /is a directory, not an object file/);
  const object = join(directory, "object.o");
  writeFileSync(object, "not really an object");
  const pins = join(directory, "pins", "deeper");
  const offBpffs = netbpf(["load", object, "--pin-path", pins]);
  assert.notEqual(offBpffs.status, 0);
  assert.match(offBpffs.stderr, /--pin-path .* is not on a bpffs file system/);
  assert.equal(existsSync(join(directory, "pins")), false, "nothing created");
});

test("pin-path folders are created 0700, and removed again when loading fails", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for bpffs")) return;
  const collection = fileURLToPath(new URL("../../../test/fixtures/c/collection.o", import.meta.url));
  const rejected = fileURLToPath(new URL("../../../test/fixtures/verifier/rejected.o", import.meta.url));
  const pins = `/sys/fs/bpf/netbpf-test-h1-${process.pid}`;
  t.after(() => rmSync(pins, { recursive: true, force: true }));
  const loaded = netbpf(["load", collection, "-p", "socket_second", "--pin-path", `${pins}/inner`, "--duration", "0.2"]);
  assert.equal(loaded.status, 0, loaded.stderr);
  assert.deepEqual([statSync(pins).mode & 0o777, statSync(`${pins}/inner`).mode & 0o777], [0o700, 0o700]);
  assert.ok(existsSync(`${pins}/inner/elf_pinned_counts`));
  rmSync(pins, { recursive: true, force: true });
  const failed = netbpf(["load", rejected, "--pin-path", `${pins}/inner`]);
  assert.notEqual(failed.status, 0);
  assert.equal(existsSync(pins), false, "the folders made for the pins are gone");
});

// ---- 2. Never lose captured data ----

test("a bad output path fails at start, before reading or capturing anything", (t) => {
  const directory = scratch(t);
  for (const output of [join(directory, "missing", "out.pcap"), directory]) {
    // No packet matches: the output must still be checked (tcpdump opens it at start).
    const result = netbpf(["capture", "-r", fixture, "-w", output, "port", "1"]);
    assert.notEqual(result.status, 0, `${output}: ${result.stderr}`);
    assert.match(result.stderr, /^netbpf: write capture: cannot write /m);
    assert.doesNotMatch(result.stderr, /reading from file/);
  }
  // Nothing matching still gives a valid, empty capture, as tcpdump's.
  const empty = join(directory, "empty.pcap");
  assert.equal(netbpf(["capture", "-r", fixture, "-w", empty, "port", "1"]).status, 0);
  assert.equal(readCaptureFile(empty).packets.length, 0);
});

test("an interrupted -r … -w leaves a valid partial file and no temporary file", async (t) => {
  const directory = scratch(t);
  const output = join(directory, "partial.pcap");
  const child = spawn(process.execPath, [cliPath, "capture", "-r", "-", "-w", output]);
  const result = finished(child);
  // Half a capture on standard input, which stays open: the command waits for more.
  const bytes = readFileSync(fixture);
  child.stdin.write(bytes.subarray(0, 24 + 16 + 53 + 16 + 81));
  // Once it has read the first packet, the command is ready for signals.
  await new Promise<void>((resolve) => {
    let text = "";
    child.stderr.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes("reading from file")) resolve();
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  child.kill("SIGINT");
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  assert.deepEqual(readdirSync(directory), ["partial.pcap"], "no temporary file");
  assert.equal(readCaptureFile(output).packets.length, 2);
});

test("-C and -W rotate files by size with tcpdump's names and contents", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = scratch(t);
  const input = join(directory, "input.pcap");
  writeInput(input, 2600, 1000);
  for (const extra of [[], ["-W", "2"], ["-W", "12"]]) {
    const ours = join(directory, "ours");
    const theirs = join(directory, "theirs");
    mkdirSync(ours);
    mkdirSync(theirs);
    assert.equal(netbpf(["capture", "-r", input, "-w", join(ours, "out"), "-C", "1", ...extra]).status, 0);
    // -Z root: tcpdump would otherwise write its rotated files as the user "tcpdump".
    assert.equal(tcpdump(["-Z", "root", "-r", input, "-w", join(theirs, "out"), "-C", "1", ...extra]).status, 0);
    const files = readdirSync(theirs).sort();
    assert.ok(files.length >= 2, `tcpdump rotated: ${files}`);
    assert.deepEqual(readdirSync(ours).sort(), files, `names with ${extra.join(" ")}`);
    for (const file of files) {
      assert.equal(readCaptureFile(join(ours, file)).packets.length, readCaptureFile(join(theirs, file)).packets.length, `${file} with ${extra.join(" ")}`);
    }
    rmSync(ours, { recursive: true });
    rmSync(theirs, { recursive: true });
  }
});

// ---- 5. tcpdump's everyday options ----

test("-t/-tt/-ttt/-tttt/-ttttt, -q, -S, -A, -l and -e print what tcpdump prints", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  for (const options of [["-t"], ["-tt"], ["-ttt"], ["-tttt"], ["-ttttt"], ["-q"], ["-q", "-e"], ["-S"], ["-S", "-v"], ["-A"], ["-A", "-t"], ["-l"]]) {
    const ours = netbpf(["capture", ...options, "-r", fixture]);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, tcpdump(["-n", ...options, "-r", fixture]).stdout, options.join(" "));
  }
});

test("-F reads the expression from a file, comments and all, as tcpdump does", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = scratch(t);
  const file = join(directory, "filter");
  writeFileSync(file, "# only the connection\ntcp and\n  port 47002 # the server\n");
  const ours = netbpf(["capture", "-F", file, "-r", fixture]);
  assert.equal(ours.status, 0, ours.stderr);
  const theirs = tcpdump(["-n", "-F", file, "-r", fixture]);
  assert.ok(theirs.stdout.length > 0);
  assert.equal(ours.stdout, theirs.stdout);
  assert.notEqual(netbpf(["capture", "-F", join(directory, "missing"), "-r", fixture]).status, 0);
});

// ---- live ----

function liveBed(t: TestContext): { bed: Testbed; directory: string } {
  const bed = Testbed.create("h1x", { disableIpv6: true });
  t.after(() => bed.destroy());
  return { bed, directory: scratch(t) };
}

test("an interface that is down is refused, as tcpdump refuses it", async (t) => {
  if (skipUnlessKernel(t, liveAvailable, "needs root and tcx")) return;
  const { bed } = liveBed(t);
  bed.exec(bed.a, ["ip", "link", "set", bed.a.interface, "down"]);
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-c", "1"]);
  const { code, stderr } = await finished(child, 15_000);
  assert.equal(code, 1, stderr);
  assert.match(stderr, new RegExp(`^netbpf: capture: ${bed.a.interface} is not up \\(`, "m"));
  assert.equal(tcxLinkCount(bed, bed.a.interface), 0);
});

test("an interface that disappears ends the capture with an error naming it; what was captured is kept", async (t) => {
  if (skipUnlessKernel(t, liveAvailable, "needs root and tcx")) return;
  const { bed, directory } = liveBed(t);
  const output = join(directory, "gone.pcap");
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-Q", "in", "-w", output, "udp"]);
  const result = finished(child, 15_000);
  await listening(child);
  bed.node(bed.b, udpSendScript(bed.a.address, 47999, ["one", "two"]));
  bed.exec(bed.a, ["ip", "link", "del", bed.a.interface]);
  const { code, stderr } = await result;
  assert.equal(code, 1, stderr);
  assert.match(stderr, new RegExp(`^netbpf: capture: interface ${bed.a.interface} disappeared`, "m"));
  assert.equal(readCaptureFile(output).packets.length, 2);
});

test("after kill -9 the file holds what was captured (flushed every second); -U writes each packet at once", async (t) => {
  if (skipUnlessKernel(t, liveAvailable, "needs root and tcx")) return;
  const { bed, directory } = liveBed(t);
  for (const buffered of [false, true]) {
    const output = join(directory, buffered ? "buffered.pcap" : "packet-buffered.pcap");
    const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-Q", "in", "-w", output, ...(buffered ? [] : ["-U"]), "udp"]);
    const result = finished(child, 15_000);
    await listening(child);
    bed.node(bed.b, udpSendScript(bed.a.address, 47999, ["one", "two", "three"]));
    await new Promise((resolve) => setTimeout(resolve, buffered ? 2500 : 500));
    child.kill("SIGKILL");
    await result;
    assert.equal(readCaptureFile(output).packets.length, 3, buffered ? "periodic flush" : "-U");
  }
  assert.deepEqual(readdirSync(directory).filter((name) => name.endsWith(".tmp")), []);
});

test("SIGHUP stops a capture like SIGINT, keeping a complete file whose statistics count ifdrop and osdrop apart", async (t) => {
  if (skipUnlessKernel(t, liveAvailable, "needs root and tcx")) return;
  const { bed, directory } = liveBed(t);
  const output = join(directory, "hangup.pcapng");
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-Q", "in", "-w", output, "--no-process", "udp"]);
  const result = finished(child, 15_000);
  await listening(child);
  bed.node(bed.b, udpSendScript(bed.a.address, 47999, ["one", "two"]));
  // A frame of an EtherType no protocol handles passes tc ingress (seen, not matched), then the
  // kernel drops it and counts it in the interface's rx_dropped: what libpcap reports as ifdrop.
  const unhandled = ethernet(0x88b5, Buffer.from("no protocol takes this".padEnd(46)));
  bed.sendFrames(bed.b, [unhandled, unhandled, unhandled]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  child.kill("SIGHUP");
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  const capture = readCaptureFile(output);
  assert.equal(capture.packets.length, 2);
  assert.equal(capture.statistics.length, 1, "statistics written at the end");
  const [statistics] = capture.statistics;
  // ifdrop is the interface's own drop counter; osdrop the ring's loss (none at this rate).
  assert.equal(statistics!.interfaceDropped, 3n, "ifdrop: the three unhandled frames");
  assert.equal(statistics!.osDropped, 0n, "osdrop");
  // ifrecv: every frame tc ingress saw, the ARP exchange before the datagrams included.
  assert.ok(statistics!.interfaceReceived! >= 5n, `ifrecv ${statistics!.interfaceReceived}`);
  assert.equal(statistics!.filterAccepted, 2n, "filteraccept: the two UDP datagrams");
  assert.equal(statistics!.userDelivered, 2n, "usrdeliv");
});

test("a full disk ends the capture with an error and keeps every complete packet written before", async (t) => {
  if (skipUnlessKernel(t, liveAvailable, "needs root and tcx")) return;
  const { bed, directory } = liveBed(t);
  const mount = join(directory, "small");
  mkdirSync(mount);
  assert.equal(spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "nbh1-full", mount]).status, 0, "mount a small tmpfs");
  try {
    await fillDisk(bed, join(mount, "full.pcap"));
  } finally {
    // Lazily if something still holds it: the mount never outlives the test.
    if (spawnSync("umount", [mount]).status !== 0) spawnSync("umount", ["-l", mount]);
  }
});

async function fillDisk(bed: Testbed, output: string): Promise<void> {
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-Q", "in", "-w", output, "-U", "udp"], "nsenter");
  const result = finished(child, 20_000);
  await listening(child);
  bed.node(bed.b, udpSendScript(bed.a.address, 47999, Array.from({ length: 120 }, (_, i) => `${i} ${"x".repeat(1000)}`), 1));
  const { code, stderr } = await result;
  assert.equal(code, 1, stderr);
  assert.match(stderr, /ENOSPC/);
  assert.match(stderr, /keeps the \d+ bytes written before, every packet in them complete/);
  const kept = readCaptureFile(output);
  assert.ok(kept.packets.length > 20 && kept.packets.length < 120, `${kept.packets.length} packets kept`);
  for (const packet of kept.packets) assert.equal(packet.data.length, packet.originalLength);
}

test("printing to a slow reader applies backpressure: memory stays bounded and what was not printed counts as dropped", async (t) => {
  if (skipUnlessKernel(t, liveAvailable, "needs root and tcx")) return;
  const { bed } = liveBed(t);
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-Q", "in", "-X", "-B", "256", "udp"]);
  const result = finished(child, 60_000);
  await listening(child);
  // Nobody reads our output for a while.
  child.stdout.pause();
  bed.node(bed.b, `
import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
const payload = Buffer.alloc(1400, "y");
for (let i = 0; i < 20000; i++) await new Promise((resolve, reject) => socket.send(payload, 47999, ${JSON.stringify(bed.a.address)}, (e) => e ? reject(e) : resolve()));
socket.close();
`);
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  const residentKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  child.stdout.resume();
  await new Promise((resolve) => setTimeout(resolve, 500));
  child.kill("SIGINT");
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  // 20000 hex dumps of 1.4 KB packets are about 130 MB of text: held in memory, they would show.
  assert.ok(residentKiB < 200 * 1024, `resident ${residentKiB} KiB while the reader was stalled`);
  const dropped = Number(/^(\d+) packets? dropped by kernel/m.exec(stderr)?.[1]);
  const captured = Number(/^(\d+) packets? captured/m.exec(stderr)?.[1]);
  assert.ok(dropped > 0, stderr);
  assert.equal(captured + dropped, Number(/^(\d+) packets? received by filter/m.exec(stderr)?.[1]), stderr);
});

// ---- 4. Right output for what was captured ----

test("packets cut by the snap length are printed as tcpdump prints them, not as truncated-ip", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = scratch(t);
  // Every snap length from the bare link header (14) to 96, on loopback TCP (options cut at every byte), UDP, ICMP and IPv6.
  const snapLengths = Array.from({ length: 96 - 14 + 1 }, (_, i) => String(14 + i));
  // The other loopback captures (Ethernet, Linux cooked v1 and v2) at the cuts inside each header.
  // Not compared: DNS (port 53), which netbpf prints as UDP and tcpdump decodes, cut or not; and the crafted
  // captures of test/filter/fixtures, which differ even uncut (protocols netbpf does not decode). Cut, they also
  // differ where tcpdump's own decoders stop: ARP/RARP, LLDP, STP, PPPoE, MPLS, IPX, DECnet, IGMP, SCTP ("IP  [|sctp]",
  // no addresses), AH, GRE, Geneve, VXLAN, BOOTP, RX, SSH ("length 8 [|ssh]"), IPv6 routing/fragment headers, neighbor solicitation.
  const fixtures = fileURLToPath(new URL("../../../test/filter/fixtures/", import.meta.url));
  const captures: [string, string[], string[]][] = [
    [fixture, [...snapLengths, "100"], []],
    ...["loopback-ethernet.pcap", "loopback-any-sll-snap96.pcap", "loopback-any-sll2.pcap"].map(
      (name): [string, string[], string[]] => [join(fixtures, name), ["14", "15", "19", "20", "30", "40", "47", "50", "55", "60", "64", "70", "75", "80", "90", "96"], ["not", "port", "53"]],
    ),
  ];
  for (const [path, lengths, filter] of captures) {
    for (const snapLength of lengths) {
      const cut = join(directory, `cut-${snapLength}.pcap`);
      assert.equal(netbpf(["capture", "-r", path, "-s", snapLength, "-w", cut, ...filter]).status, 0);
      const ours = netbpf(["capture", "-r", cut]);
      assert.equal(ours.status, 0, ours.stderr);
      assert.doesNotMatch(ours.stdout, /truncated-ip/);
      assert.equal(ours.stdout, tcpdump(["-n", "-r", cut]).stdout, `${path} -s ${snapLength}`);
    }
  }
});

test("IPv6 hop-by-hop (MLD), destination options and fragment headers are decoded as tcpdump decodes them", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = scratch(t);
  const path = join(directory, "extensions.pcap");
  const ip6 = (next: number, payload: Buffer) => {
    const header = Buffer.alloc(40);
    header[0] = 0x60;
    header.writeUInt16BE(payload.length, 4);
    header[6] = next;
    header[7] = 1;
    Buffer.from("fe800000000000000000000000000001ff020000000000000000000000000016", "hex").copy(header, 8);
    return Buffer.concat([Buffer.from("33330000001602000000000186dd", "hex"), header, payload]);
  };
  const hopByHop = (next: number) => Buffer.from([next, 0, 5, 2, 0, 0, 1, 0]);
  const mld = (type: number) => Buffer.concat([Buffer.from([type, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("ff020000000000000000000000000001", "hex")]);
  const datagram = Buffer.from("04d2162e000c000061626364", "hex");
  const fragment = (next: number, offset: number, more: boolean) => Buffer.from([next, 0, offset >> 5, ((offset << 3) & 0xf8) | (more ? 1 : 0), 0, 0, 0x12, 0x34]);
  const packets = [
    ip6(0, Buffer.concat([hopByHop(58), mld(131)])),
    ip6(0, Buffer.concat([hopByHop(58), mld(130)])),
    ip6(0, Buffer.concat([hopByHop(58), mld(132)])),
    ip6(60, Buffer.concat([Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]), datagram])),
    ip6(44, Buffer.concat([fragment(17, 0, true), datagram])),
    ip6(44, Buffer.concat([fragment(17, 2, false), Buffer.alloc(8, 0x61)])),
    ip6(0, Buffer.concat([hopByHop(17), datagram])),
    ip6(0, Buffer.concat([hopByHop(58), Buffer.from("8f00000000000001", "hex"), Buffer.from("04000000ff020000000000000000000000000001", "hex")])),
  ];
  const writer = createCaptureWriter(path, { linkType: LinkType.ETHERNET });
  packets.forEach((data, i) => writer.writePacket({ data, timestamp: 1_700_000_000_000_000_000n + BigInt(i) * 1000n }));
  void writer.close();
  const ours = netbpf(["capture", "-r", path]);
  assert.equal(ours.status, 0, ours.stderr);
  assert.doesNotMatch(ours.stdout, /ip-proto/);
  assert.equal(ours.stdout, tcpdump(["-n", "-r", path]).stdout);
  // -v as well (the MLDv2 group records that tcpdump -v lists are left out).
  const verbose = (text: string) => text.split("\n").slice(0, 7).join("\n");
  assert.equal(verbose(netbpf(["capture", "-v", "-r", path]).stdout), verbose(tcpdump(["-n", "-v", "-r", path]).stdout));
});
