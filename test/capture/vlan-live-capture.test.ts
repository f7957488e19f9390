import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../../src/pcap/capture-file.js";
import { probeTcx } from "../../src/features/features.js";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { ethernet, ethernetVlan, ipv4, tcp, udp } from "../support/packet-builder.js";
import { Testbed } from "../support/testbed.js";
import { finished, listening } from "../support/capture-process.js";

// B sends raw frames from its veth, some with an 802.1Q tag in the data; A's kernel
// moves that tag into skb metadata on receive (skb_vlan_untag), before tc ingress sees the frame.
const marker = (text: string) => new TextEncoder().encode(text);

function frame(tags: [number, number][], protocol: number, payload: Uint8Array): Uint8Array {
  const options = { destination: "02:00:00:00:00:0a", source: "02:00:00:00:00:0b" };
  return tags.length === 0 ? ethernet(protocol, payload, options) : ethernetVlan(tags, protocol, payload, options);
}

function udpDatagram(text: string): Uint8Array {
  return ipv4(17, udp(40000, 47000, marker(text)), { source: "192.0.2.2", destination: "192.0.2.1" });
}

function includes(data: Uint8Array, text: string): boolean {
  return Buffer.from(data).includes(Buffer.from(text));
}

test("live capture on a veth: frames whose tag the kernel moved into skb metadata match `vlan 10` / `vlan and udp`; others do not", async (t) => {
  if (skipUnlessKernel(t, isRoot() && probeTcx(), "needs root and tcx")) return;
  const bed = Testbed.create("vlan", { disableIpv6: true });
  const directory = mkdtempSync(join(tmpdir(), "nb-vlan-live-"));
  t.after(() => {
    bed.destroy();
    rmSync(directory, { recursive: true, force: true });
  });
  const cases = [
    {
      expression: "vlan 10",
      // Not matching first: if the filter took them, the capture would end on them.
      others: [frame([], 0x0800, udpDatagram("untagged")), frame([[0x8100, 20]], 0x0800, udpDatagram("vlan 20")), frame([[0x8100, 0x2014]], 0x0800, udpDatagram("vlan 20 priority 1"))],
      wanted: [frame([[0x8100, 10]], 0x0800, udpDatagram("want vlan 10 a")), frame([[0x8100, 0x200a]], 0x0806, marker("want vlan 10 b".padEnd(28))), frame([[0x8100, 10]], 0x0800, udpDatagram("want vlan 10 c"))],
    },
    {
      expression: "vlan and udp",
      others: [frame([], 0x0800, udpDatagram("untagged")), frame([[0x8100, 30]], 0x0806, marker("tagged arp".padEnd(28))), frame([[0x8100, 30]], 0x0800, ipv4(6, tcp(1, 2, 0x02, marker("tagged tcp"))))],
      wanted: [frame([[0x8100, 30]], 0x0800, udpDatagram("want udp a")), frame([[0x8100, 7]], 0x0800, udpDatagram("want udp b")), frame([[0x8100, 4095]], 0x0800, udpDatagram("want udp c"))],
    },
  ];
  for (const { expression, others, wanted } of cases) {
    const output = join(directory, `${expression.replaceAll(" ", "-")}.pcapng`);
    const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-w", output, "-c", String(wanted.length), ...expression.split(" ")], "nsenter");
    const result = finished(child);
    await listening(child);
    bed.sendFrames(bed.b, [...others, ...wanted]);
    const { code, stderr } = await result;
    assert.equal(code, 0, stderr);
    assert.match(stderr, new RegExp(`^${wanted.length} packets captured$`, "m"));
    const capture = readCaptureFile(output);
    assert.equal(capture.packets.length, wanted.length);
    capture.packets.forEach((packet, index) => {
      assert.equal(packet.direction, "inbound");
      assert.ok(includes(packet.data, "want"), `${expression}: packet ${index} is one of the wanted frames`);
    });
  }
});
