import { test } from "node:test";
import assert from "node:assert/strict";
import { compileCaptureFilter } from "../../src/capture/capture-filter.js";
import { OfflineFilter } from "../../src/capture/offline-filter.js";
import type { CapturePacket } from "../../src/pcap/capture-record.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { craftedEthernet, craftedRaw } from "../filter/filter-corpus.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { ethernet, ipv4, udp } from "../support/packet-builder.js";

function packetsOf(corpus: { data: Uint8Array; length?: number }[], linkType: number): CapturePacket[] {
  return corpus.map((packet, index) => ({ data: packet.data, originalLength: packet.length ?? packet.data.length, linkType, timestamp: BigInt(index) }) as CapturePacket);
}

const expressions = ["tcp port 80", "udp and port 53", "tcp[13] & 2 != 0", "ip6 and not icmp6", "greater 100", "vlan or arp", "len > 60"];

test("offline filter: compiled JavaScript, interpreter and kernel select the same packets", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for kernel test runs")) return;
  const packets = packetsOf(craftedEthernet(), LinkType.ETHERNET);
  // A packet too large for an skb test run: the kernel engine hands it to the interpreter and counts it.
  packets.push({ data: ethernet(0x0800, ipv4(17, udp(1000, 53, new Uint8Array(6000)))), originalLength: 6062, linkType: LinkType.ETHERNET, timestamp: 0n } as CapturePacket);
  for (const expression of expressions) {
    const filter = compileCaptureFilter(expression, LinkType.ETHERNET);
    using compiled = new OfflineFilter(filter);
    using interpreted = new OfflineFilter(filter, { engine: "interpreter" });
    using kernel = await OfflineFilter.create(filter, { engine: "kernel" });
    assert.equal(compiled.engine, "javascript");
    assert.equal(interpreted.engine, "interpreter");
    assert.equal(kernel.engine, "kernel", kernel.unavailable);
    const selections = [compiled, interpreted, kernel].map((engine) => packets.map((packet) => engine.matches(packet)));
    assert.deepEqual(selections[0], selections[1], `${expression}: JavaScript vs interpreter`);
    // The kernel sees only the captured bytes: its skb length is that of a truncated packet's data, not the wire length.
    const whole = packets.map((packet) => packet.originalLength === packet.data.length);
    assert.deepEqual(selections[0].filter((_, i) => whole[i]), selections[2].filter((_, i) => whole[i]), `${expression}: JavaScript vs kernel`);
    assert.ok(kernel.refusedByKernel >= 1, `${expression}: the large packet went to the interpreter`);
  }
});

test("offline filter: the kernel engine needs Ethernet and says so; the JavaScript engine runs any link type", async () => {
  const filter = compileCaptureFilter("udp port 53", LinkType.RAW);
  using kernel = await OfflineFilter.create(filter, { engine: "kernel" });
  assert.equal(kernel.engine, "javascript");
  assert.match(kernel.unavailable ?? "", /link type RAW: a tc test run needs Ethernet frames/);
  const packets = packetsOf(craftedRaw(), LinkType.RAW);
  const selected = packets.filter((packet) => kernel.matches(packet));
  assert.ok(selected.length > 0 && selected.length < packets.length);
  assert.deepEqual(selected.map((packet) => filter.matches({ data: packet.data, length: packet.originalLength })), selected.map(() => true));
});

test("offline filter: a filter that is not a CaptureFilter, or an unknown engine, is refused naming it", () => {
  const filter = compileCaptureFilter("udp", LinkType.ETHERNET);
  assert.throws(() => new OfflineFilter({} as never), /filter must be a CaptureFilter/);
  assert.throws(() => new OfflineFilter(filter, { engine: "gpu" as "kernel" }), /options\.engine must be one of/);
  assert.equal(new OfflineFilter(filter, { engine: "interpreter" }).engine, "interpreter");
});
