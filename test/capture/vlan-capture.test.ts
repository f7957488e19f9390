import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Assembler, R0, R1, R2, R3, R6 } from "../../src/asm/assembler.js";
import { Program } from "../../src/core/program.js";
import { attachTcx } from "../../src/link/tcx.js";
import { readCaptureFile } from "../../src/pcap/capture-file.js";
import { probeTcx } from "../../src/features/features.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { ethernet, ipv4, udp } from "../support/packet-builder.js";
import { Testbed, udpSenderScript } from "../support/testbed.js";
import { finished, listening } from "../support/capture-process.js";

// Frames whose 802.1Q/802.1ad tag the kernel holds in skb metadata, so that neither tc nor a packet
// socket sees it in the frame: tcpdump (libpcap) puts it back from the packet's aux data, and netbpf
// must save the same frames. This kernel has no 8021q module (no VLAN sub-interfaces), so the tags
// come from the two places that need none:
// - ingress: B sends raw frames with tags in the data; A's kernel moves the outer tag into metadata
//   (skb_vlan_untag) before its packet taps and tc ingress see the frame;
// - egress: a tcx egress program on A (attached before the capture's) pushes tag 100 into metadata
//   (bpf_skb_vlan_push; veth offloads VLAN insertion, so it stays there) on A's UDP datagrams.
const tcpdumpAvailable = spawnSync("tcpdump", ["--version"]).status === 0;
const vlanId = 100;

/** An Ethernet frame from B to A with the given tags (protocol, TCI) after the MAC addresses. */
function taggedFrame(tags: [number, number][], etherType: number, payload: Uint8Array, source: string, destination: string): Buffer {
  const untagged = Buffer.from(ethernet(etherType, payload, { source, destination }));
  const tagBytes = Buffer.concat(tags.map(([protocol, tci]) => {
    const tag = Buffer.alloc(4);
    tag.writeUInt16BE(protocol, 0);
    tag.writeUInt16BE(tci, 2);
    return tag;
  }));
  return Buffer.concat([untagged.subarray(0, 12), tagBytes, untagged.subarray(12)]);
}

/** A tc program that pushes VLAN tag `id` (802.1Q) into the skb's metadata and lets the packet go on. */
function vlanPushProgram(id: number): Program {
  const instructions = new Assembler()
    .mov64(R6, R1)
    .mov64(R2, 0x0081) // htons(ETH_P_8021Q) on this little-endian machine
    .mov64(R3, id)
    .call("skb_vlan_push")
    .mov64(R0, -1)
    .exit()
    .finish();
  return Program.load({ type: ProgramType.SchedCls, instructions, name: "nbvl_push" });
}

/** The text lines of a capture without their timestamps, sorted (the two tools may order in/out packets differently). */
function linesWithoutTimes(text: string): string[] {
  return text.split("\n").filter((line) => line !== "").map((line) => line.replace(/^\d\d:\d\d:\d\d\.\d{6} /, "")).sort();
}

test("live capture on a veth saves the VLAN tag the kernel holds in skb metadata, in both directions, as tcpdump does", async (t) => {
  if (skipUnlessKernel(t, isRoot() && probeTcx(), "needs root and tcx")) return;
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  if (skipUnlessKernel(t, process.arch === "x64" || process.arch === "arm64", "the tag push program assumes a little-endian machine")) return;
  const bed = Testbed.create("vl", { disableIpv6: true });
  const directory = mkdtempSync(join(tmpdir(), "nbvl-capture-"));
  const children: { kill(signal: NodeJS.Signals): boolean; exitCode: number | null }[] = [];
  const owned: { close(): void }[] = [];
  t.after(() => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    for (const resource of owned.reverse()) resource.close();
    bed.destroy();
    rmSync(directory, { recursive: true, force: true });
  });
  const macOf = (side: typeof bed.a) => JSON.parse(bed.exec(side, ["ip", "-j", "link", "show", side.interface]).stdout)[0].address as string;
  const macA = macOf(bed.a);
  const macB = macOf(bed.b);
  // A's datagrams go to B's MAC without ARP (B drops them: it has no VLAN 100).
  bed.exec(bed.a, ["ip", "neigh", "replace", bed.b.address, "lladdr", macB, "dev", bed.a.interface, "nud", "permanent"]);
  const push = vlanPushProgram(vlanId);
  owned.push(push);
  owned.push(bed.inNamespace(bed.a, () => attachTcx(push, { interface: bed.a.interface, direction: "egress" })));

  const ours = join(directory, "netbpf.pcap");
  const theirs = join(directory, "tcpdump.pcap");
  const netbpf = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-w", ours], "nsenter");
  const tcpdump = bed.start(bed.a, ["tcpdump", "-i", bed.a.interface, "-w", theirs, "-U", "--immediate-mode"]);
  children.push(netbpf, tcpdump);
  const netbpfResult = finished(netbpf);
  const tcpdumpResult = finished(tcpdump);
  await Promise.all([listening(netbpf), listening(tcpdump)]);

  const datagram = (text: string) => ipv4(17, udp(40000, 47000, new TextEncoder().encode(text)), { source: bed.b.address, destination: bed.a.address });
  bed.sendFrames(bed.b, [
    taggedFrame([[0x8100, vlanId]], 0x0800, datagram("802.1Q vlan 100"), macB, macA),
    taggedFrame([[0x8100, 0x6000 | vlanId]], 0x0800, datagram("802.1Q vlan 100 priority 3"), macB, macA),
    taggedFrame([[0x8100, 0x1000 | 7]], 0x0806, new TextEncoder().encode("arp-sized payload, vlan 7..."), macB, macA),
    taggedFrame([[0x88a8, 200]], 0x0800, datagram("802.1ad vlan 200"), macB, macA),
    taggedFrame([[0x88a8, 200], [0x8100, vlanId]], 0x0800, datagram("QinQ 200 / 100"), macB, macA),
  ]);
  bed.node(bed.a, udpSenderScript(bed.b.address, 47100, 3, "netbpf vlan datagram"));
  await new Promise((resolve) => setTimeout(resolve, 300));
  netbpf.kill("SIGINT");
  tcpdump.kill("SIGINT");
  const [netbpfEnd, tcpdumpEnd] = await Promise.all([netbpfResult, tcpdumpResult]);
  assert.equal(netbpfEnd.code, 0, netbpfEnd.stderr);
  assert.equal(tcpdumpEnd.code, 0, tcpdumpEnd.stderr);

  t.diagnostic(`netbpf: ${netbpfEnd.stderr.trim()} / tcpdump: ${tcpdumpEnd.stderr.trim()}`);
  const ourPackets = readCaptureFile(ours).packets;
  const theirPackets = readCaptureFile(theirs).packets;
  assert.equal(theirPackets.length, 8, "tcpdump saw the 5 frames from B and A's 3 datagrams");
  for (const packet of theirPackets) assert.ok([0x8100, 0x88a8].includes(Buffer.from(packet.data).readUInt16BE(12)), "tcpdump saved every frame with its tag");
  // The same frames, byte for byte, with the same lengths (timestamps aside).
  const describe = (packets: typeof ourPackets) => packets.map((packet) => `${packet.originalLength} ${Buffer.from(packet.data).toString("hex")}`).sort();
  assert.deepEqual(describe(ourPackets), describe(theirPackets));

  // The text output shows the tag as tcpdump -e does.
  const ourText = spawnSync(process.execPath, [cliPath, "capture", "-n", "-e", "-r", ours], { encoding: "utf8" });
  assert.equal(ourText.status, 0, ourText.stderr);
  const theirText = spawnSync("tcpdump", ["-n", "-e", "-r", theirs], { encoding: "utf8" });
  assert.equal(theirText.status, 0, theirText.stderr);
  assert.match(ourText.stdout, new RegExp(`ethertype 802\\.1Q \\(0x8100\\), length \\d+: vlan ${vlanId}, p 0, ethertype IPv4 \\(0x0800\\), ${bed.a.address}\\.\\d+ > ${bed.b.address}\\.47100: UDP`));
  assert.match(ourText.stdout, /vlan 100, p 3, ethertype IPv4/);
  assert.deepEqual(linesWithoutTimes(ourText.stdout), linesWithoutTimes(theirText.stdout));
});
