import { test } from "node:test";
import assert from "node:assert/strict";
import { readCapture, readCaptureRecords } from "../../src/pcap/capture-file.js";
import { CaptureFormatError } from "../../src/pcap/capture-format-error.js";
import { decodePcapHeader, readPcapRecords } from "../../src/pcap/pcap-reader.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { NetbpfError } from "../../src/sys/errors.js";

/** Big-endian, nanosecond pcap written out by hand, byte for byte. */
const HAND_MADE_BIG_ENDIAN = Buffer.from(
  [
    "a1b23c4d", "0002", "0004", "00000000", "00000000", "0000ffff", "00000065",
    "65f1a2b3", "075bcd15", "00000004", "00000028", "45000028",
    "65f1a2b4", "00000001", "00000000", "0000003c",
  ].join(""),
  "hex",
);

test("reads a hand-made big-endian nanosecond pcap", () => {
  const capture = readCapture(HAND_MADE_BIG_ENDIAN);
  assert.equal(capture.format, "pcap");
  assert.equal(capture.sections[0]!.byteOrder, "big");
  assert.equal(capture.sections[0]!.versionMinor, 4);
  assert.equal(capture.interfaces[0]!.linkType, LinkType.RAW);
  assert.equal(capture.interfaces[0]!.snapLength, 0xffff);
  assert.deepEqual(capture.interfaces[0]!.timestampResolution, { base: 10, exponent: 9 });
  assert.equal(capture.packets.length, 2);
  const [first, second] = capture.packets;
  assert.equal(first!.timestamp, 0x65f1a2b3n * 1_000_000_000n + 123456789n);
  assert.equal(first!.seconds, 0x65f1a2b3);
  assert.equal(first!.nanoseconds, 123456789);
  assert.equal(first!.capturedLength, 4);
  assert.equal(first!.originalLength, 40);
  assert.equal(first!.data.toString("hex"), "45000028");
  assert.equal(first!.linkType, LinkType.RAW);
  assert.equal(first!.direction, undefined);
  assert.equal(second!.timestamp, 0x65f1a2b4n * 1_000_000_000n + 1n);
  assert.equal(second!.capturedLength, 0);
  assert.equal(second!.originalLength, 60);
});

test("reads a hand-made little-endian microsecond pcap with FCS bits", () => {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeInt32LE(-7200, 8);
  header.writeUInt32LE(1500, 16);
  header.writeUInt32LE((LinkType.ETHERNET | 0x04000000 | (2 << 28)) >>> 0, 20);
  const record = Buffer.alloc(16 + 3);
  record.writeUInt32LE(1000, 0);
  record.writeUInt32LE(999999, 4);
  record.writeUInt32LE(3, 8);
  record.writeUInt32LE(3, 12);
  record.write("abc", 16);
  const capture = readCapture(Buffer.concat([header, record]));
  assert.equal(capture.sections[0]!.byteOrder, "little");
  assert.equal(capture.sections[0]!.timeZoneOffset, -7200);
  assert.equal(capture.interfaces[0]!.linkType, LinkType.ETHERNET);
  assert.equal(capture.interfaces[0]!.fcsLength, 4);
  assert.equal(capture.packets[0]!.fcsLength, 4);
  assert.equal(capture.packets[0]!.timestamp, 1000_999_999_000n);
  assert.equal(capture.packets[0]!.data.toString(), "abc");
  const header16 = decodePcapHeader(header);
  assert.equal(header16.linkTypeField, (1 | 0x04000000 | (2 << 28)) >>> 0);
});

test("packet data are slices of the input, not copies", () => {
  const packets = [...readPcapRecords(HAND_MADE_BIG_ENDIAN)].filter((record) => record.type === "packet");
  const first = packets[0]!;
  assert.equal(first.type === "packet" && first.packet.data.buffer, HAND_MADE_BIG_ENDIAN.buffer);
});

function expectFormatError(bytes: Buffer, offset: number, pattern: RegExp): void {
  assert.throws(
    () => [...readCaptureRecords(bytes)],
    (error: unknown) => {
      assert.ok(error instanceof CaptureFormatError, `expected CaptureFormatError, got ${String(error)}`);
      assert.ok(error instanceof NetbpfError);
      assert.equal(error.offset, offset, error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test("malformed pcap files give errors that name the offset", () => {
  const valid = HAND_MADE_BIG_ENDIAN;
  expectFormatError(Buffer.alloc(0), 0, /the file is empty/);
  expectFormatError(valid.subarray(0, 3), 0, /only 3 bytes long/);
  expectFormatError(Buffer.from("GIF89a-not-a-capture"), 0, /not a pcap or pcapng file: it starts with 0x47494638/);
  expectFormatError(Buffer.from("a1b2cd34000000000000", "hex"), 0, /modified pcap/);
  expectFormatError(valid.subarray(0, 10), 10, /pcap header at offset 0: truncated, file has 10 of 24/);
  const badVersion = Buffer.from(valid);
  badVersion.writeUInt16BE(3, 4);
  expectFormatError(badVersion, 4, /unsupported version 3\.4/);
  expectFormatError(valid.subarray(0, 24 + 9), 24, /pcap record at offset 24: truncated record header \(9 of 16 bytes\)/);
  expectFormatError(valid.subarray(0, 24 + 16 + 2), 24, /pcap record at offset 24: truncated packet data, captured length 4 but only 2 bytes remain/);
  const huge = Buffer.from(valid);
  huge.writeUInt32BE(0xfffffff0, 24 + 8);
  expectFormatError(huge, 24, /captured length 4294967280 is larger than the limit/);
  const second = Buffer.from(valid);
  second.writeUInt32BE(5, 24 + 20 + 8);
  expectFormatError(second, 44, /pcap record at offset 44: truncated packet data, captured length 5 but only 0/);
});

test("maxPacketLength bounds captured lengths", () => {
  assert.equal([...readCaptureRecords(HAND_MADE_BIG_ENDIAN, { maxPacketLength: 4 })].length, 4);
  assert.throws(() => [...readCaptureRecords(HAND_MADE_BIG_ENDIAN, { maxPacketLength: 3 })], /captured length 4 is larger than the limit of 3/);
});
