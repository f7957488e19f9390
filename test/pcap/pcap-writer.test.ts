import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { readCapture } from "../../src/pcap/capture-file.js";
import { BufferSink, StreamSink } from "../../src/pcap/capture-sink.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { PcapWriter, encodePcapHeader, nativeByteOrder } from "../../src/pcap/pcap-writer.js";
import { UsageError } from "../../src/sys/errors.js";
import { samplePackets, samplePcap } from "./capture-samples.js";

for (const byteOrder of ["little", "big"] as const) {
  for (const resolution of ["microsecond", "nanosecond"] as const) {
    test(`pcap ${byteOrder}-endian ${resolution}: round trip`, () => {
      const bytes = samplePcap(byteOrder, resolution, 20);
      const magic = resolution === "microsecond" ? "a1b2c3d4" : "a1b23c4d";
      assert.equal(byteOrder === "big" ? bytes.readUInt32BE(0) : bytes.readUInt32LE(0), parseInt(magic, 16));
      const capture = readCapture(bytes);
      assert.equal(capture.sections[0]!.byteOrder, byteOrder);
      assert.equal(capture.interfaces[0]!.timestampResolution.exponent, resolution === "microsecond" ? 6 : 9);
      const sent = samplePackets(20);
      assert.equal(capture.packets.length, sent.length);
      capture.packets.forEach((packet, i) => {
        const expected = resolution === "microsecond" ? (sent[i]!.timestamp / 1000n) * 1000n : sent[i]!.timestamp;
        assert.equal(packet.timestamp, expected);
        assert.deepEqual(packet.data, sent[i]!.data);
        assert.equal(packet.originalLength, sent[i]!.data.length);
        assert.equal(packet.linkType, LinkType.ETHERNET);
      });
    });
  }
}

test("pcap header defaults: native byte order, version 2.4, snaplen 262144", () => {
  const header = encodePcapHeader({ linkType: LinkType.LINUX_SLL2 });
  const little = nativeByteOrder() === "little";
  assert.equal(little ? header.readUInt32LE(0) : header.readUInt32BE(0), 0xa1b2c3d4);
  assert.equal(little ? header.readUInt32LE(16) : header.readUInt32BE(16), 262144);
  assert.equal(little ? header.readUInt32LE(20) : header.readUInt32BE(20), 276);
});

test("FCS length goes into the link-type word", () => {
  const sink = new BufferSink();
  new PcapWriter(sink, { linkType: LinkType.ETHERNET, fcsLength: 4, byteOrder: "big" });
  const bytes = sink.toBuffer();
  assert.equal(bytes.readUInt32BE(20), (1 | 0x04000000 | (2 << 28)) >>> 0);
  assert.equal(readCapture(bytes).interfaces[0]!.fcsLength, 4);
  assert.throws(() => encodePcapHeader({ linkType: 1, fcsLength: 3 }), UsageError);
});

test("snapshot length cuts packets", () => {
  const sink = new BufferSink();
  const writer = new PcapWriter(sink, { linkType: LinkType.RAW, snapLength: 8 });
  writer.writePacket({ data: Buffer.alloc(40, 1), timestamp: 1n, originalLength: 1500 });
  const packet = readCapture(sink.toBuffer()).packets[0]!;
  assert.equal(packet.capturedLength, 8);
  assert.equal(packet.originalLength, 1500);
  assert.equal(writer.packetsWritten, 1);
});

test("pcap writer rejects what pcap cannot hold", () => {
  const writer = new PcapWriter(new BufferSink(), { linkType: LinkType.ETHERNET });
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(1), interfaceIndex: 1 }), /only interface 0/);
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(1), linkType: LinkType.RAW }), /link type 101/);
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(1), timestamp: -1n }), /1970/);
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(1), timestamp: 2n ** 32n * 1_000_000_000n }), UsageError);
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(1), originalLength: -1 }), UsageError);
  assert.throws(() => new PcapWriter(new BufferSink(), { linkType: -1 }), UsageError);
  assert.throws(() => new PcapWriter(new BufferSink(), { linkType: 1, snapLength: 2 ** 32 }), UsageError);
});

test("pcap writer: records already encoded the writer's way are copied as they are (writeEncodedRecords), the same bytes as writePacketBytes", async () => {
  const packets = Array.from({ length: 40 }, (_, i) => Buffer.alloc(1 + ((i * 37) % 300), i));
  const reference = new BufferSink();
  const one = new PcapWriter(reference, { linkType: 1, byteOrder: "big" });
  for (const [i, data] of packets.entries()) {
    const time = 1_000_000_000 * i + 5000;
    one.writePacketBytes(0, Math.floor(time / 2 ** 32), time % 2 ** 32, data.length + 2, 0, data, 0, data.length);
  }
  const encoded = reference.toBuffer();
  assert.equal(one.encodesLike("big", false), true);
  assert.equal(one.encodesLike("little", false), false);
  assert.equal(one.encodesLike("big", true), false);
  // Copied in pieces of whole records, through a sink that lends its buffer (small, so pieces are larger than it).
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  const sink = new StreamSink(stream, { bufferSize: 512 });
  const copy = new PcapWriter(sink, { linkType: 1, byteOrder: "big" });
  let at = 24;
  for (let i = 0; i < packets.length; i += 7) {
    let end = at;
    const count = Math.min(7, packets.length - i);
    for (let j = 0; j < count; j++) end += 16 + packets[i + j]!.length;
    copy.writeEncodedRecords(encoded, at, end, count);
    at = end;
  }
  await copy.close();
  assert.equal(copy.packetsWritten, packets.length);
  assert.ok(Buffer.concat(chunks).equals(encoded));
});
