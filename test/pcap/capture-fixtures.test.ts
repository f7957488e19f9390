/** Committed capture files: one captured by tcpdump, two written by netbpf (golden files for format stability). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { openCapture, readCapture, readCaptureFile } from "../../src/pcap/capture-file.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { sampleFullPcapng, samplePcap } from "./capture-samples.js";

/** Fixtures stay in the source tree; tests run from dist/test/pcap. */
function fixture(name: string): string {
  return fileURLToPath(new URL(`../../../test/pcap/fixtures/${name}`, import.meta.url));
}

test("tcpdump's loopback capture (nanosecond, snaplen 200) reads as tcpdump reads it", async () => {
  const path = fixture("tcpdump-loopback-nano.pcap");
  const capture = readCaptureFile(path);
  assert.equal(capture.format, "pcap");
  assert.equal(capture.sections[0]!.byteOrder, "little");
  assert.equal(capture.interfaces[0]!.linkType, LinkType.ETHERNET);
  assert.equal(capture.interfaces[0]!.snapLength, 200);
  assert.equal(capture.packets.length, 4);
  capture.packets.forEach((packet, i) => {
    const payload = `netbpf fixture ${i} ${"y".repeat((i + 1) * 100)}`;
    assert.equal(packet.originalLength, 42 + payload.length);
    assert.equal(packet.capturedLength, Math.min(200, packet.originalLength));
    assert.equal(packet.data.subarray(42).toString(), payload.slice(0, 200 - 42));
  });
  const listing = spawnSync("tcpdump", ["-r", path, "-tt", "-nn", "--time-stamp-precision=nano"], { encoding: "utf8" });
  if (listing.status === 0) {
    const times = listing.stdout.trim().split("\n").map((line) => line.split(" ")[0]);
    assert.deepEqual(
      capture.packets.map((packet) => `${packet.seconds}.${String(packet.nanoseconds).padStart(9, "0")}`),
      times,
    );
  }
  const streamed = [];
  for await (const packet of await openCapture(path, { chunkSize: 100 })) streamed.push(packet.timestamp);
  assert.deepEqual(streamed, capture.packets.map((packet) => packet.timestamp));
});

test("the writers still produce the committed golden files byte for byte", () => {
  assert.deepEqual(sampleFullPcapng("big"), readFileSync(fixture("netbpf-full-big-endian.pcapng")));
  assert.deepEqual(samplePcap("big", "nanosecond", 5), readFileSync(fixture("netbpf-big-endian-nano.pcap")));
});

test("the committed big-endian pcapng carries every block", () => {
  const capture = readCapture(readFileSync(fixture("netbpf-full-big-endian.pcapng")));
  assert.equal(capture.sections[0]!.byteOrder, "big");
  assert.deepEqual(
    [capture.interfaces.length, capture.packets.length, capture.nameResolutions.length, capture.statistics.length, capture.unknownBlocks.length],
    [2, 3, 1, 1, 1],
  );
  assert.deepEqual(capture.packets[0]!.process, { pid: 4242, command: "curl" });
});
