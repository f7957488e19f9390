import { test } from "node:test";
import assert from "node:assert/strict";
import { readCapture, readCaptureRecords } from "../../src/pcap/capture-file.js";
import { CaptureFormatError } from "../../src/pcap/capture-format-error.js";
import { readPcapngRecords } from "../../src/pcap/pcapng-reader.js";

/** Hand-built blocks: type, body (padded here), framing in the chosen byte order. */
function block(type: number, body: Buffer, little: boolean, lengthOverride?: number, trailerOverride?: number): Buffer {
  const paddedBody = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  const total = 12 + paddedBody.length;
  const out = Buffer.alloc(total);
  const u32 = (value: number, at: number) => (little ? out.writeUInt32LE(value, at) : out.writeUInt32BE(value, at));
  u32(type, 0);
  u32(lengthOverride ?? total, 4);
  paddedBody.copy(out, 8);
  u32(trailerOverride ?? total, total - 4);
  return out;
}

function u16(value: number, little: boolean): Buffer {
  const out = Buffer.alloc(2);
  if (little) out.writeUInt16LE(value);
  else out.writeUInt16BE(value);
  return out;
}

function u32(value: number, little: boolean): Buffer {
  const out = Buffer.alloc(4);
  if (little) out.writeUInt32LE(value >>> 0);
  else out.writeUInt32BE(value >>> 0);
  return out;
}

function option(code: number, value: Buffer, little: boolean, lengthOverride?: number): Buffer {
  return Buffer.concat([u16(code, little), u16(lengthOverride ?? value.length, little), value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

const END = Buffer.alloc(4);

function sectionHeader(little: boolean, options: Buffer = Buffer.alloc(0), major = 1): Buffer {
  return block(0x0a0d0d0a, Buffer.concat([u32(0x1a2b3c4d, little), u16(major, little), u16(0, little), Buffer.alloc(8, 0xff), options]), little);
}

function interfaceDescription(little: boolean, linkType: number, options: Buffer = Buffer.alloc(0)): Buffer {
  return block(1, Buffer.concat([u16(linkType, little), u16(0, little), u32(0, little), options]), little);
}

function enhancedPacket(little: boolean, interfaceId: number, high: number, low: number, data: Buffer, options: Buffer = Buffer.alloc(0), capturedOverride?: number): Buffer {
  const padding = Buffer.alloc((4 - (data.length % 4)) % 4);
  return block(6, Buffer.concat([u32(interfaceId, little), u32(high, little), u32(low, little), u32(capturedOverride ?? data.length, little), u32(data.length + 10, little), data, padding, options]), little);
}

for (const little of [true, false]) {
  const order = little ? "little" : "big";
  test(`reads a hand-made ${order}-endian pcapng`, () => {
    const file = Buffer.concat([
      sectionHeader(little, Buffer.concat([option(4, Buffer.from("hand"), little), END])),
      interfaceDescription(little, 101, Buffer.concat([option(9, Buffer.of(3), little), option(2, Buffer.from("lo\0"), little), END])),
      enhancedPacket(little, 0, 0, 1500, Buffer.from("4500", "hex"), Buffer.concat([option(2, u32(0x22, little), little), option(1, Buffer.from("hello"), little), END])),
      // An obsolete Packet Block: interface u16, drops u16, then like an EPB.
      block(2, Buffer.concat([u16(0, little), u16(9, little), u32(0, little), u32(2500, little), u32(1, little), u32(1, little), Buffer.of(0x60, 0, 0, 0)]), little),
      block(0x0000000a, Buffer.from("decryption secrets are skipped"), little),
    ]);
    const capture = readCapture(file);
    assert.equal(capture.sections[0]!.byteOrder, order);
    assert.equal(capture.sections[0]!.userApplication, "hand");
    assert.equal(capture.interfaces[0]!.name, "lo", "trailing NULs are not part of strings");
    assert.deepEqual(capture.interfaces[0]!.timestampResolution, { base: 10, exponent: 3 });
    assert.equal(capture.packets.length, 2);
    const [epb, legacy] = capture.packets;
    assert.equal(epb!.timestamp, 1_500_000_000n);
    assert.equal(epb!.data.toString("hex"), "4500");
    assert.equal(epb!.originalLength, 12);
    assert.equal(epb!.direction, "outbound");
    assert.equal(epb!.fcsLength, 1);
    assert.deepEqual(epb!.comments, ["hello"]);
    assert.equal(legacy!.source, "packet-block");
    assert.equal(legacy!.dropCount, 9n);
    assert.equal(legacy!.timestamp, 2_500_000_000n);
    assert.equal(capture.unknownBlocks[0]!.blockType, 0x0a);
  });
}

test("options stop at opt_endofopt, and a missing end marker is accepted", () => {
  const little = true;
  const file = Buffer.concat([
    sectionHeader(little, option(3, Buffer.from("os"), little)),
    interfaceDescription(little, 1, Buffer.concat([END, option(2, Buffer.from("ignored"), little)])),
  ]);
  const capture = readCapture(file);
  assert.equal(capture.sections[0]!.os, "os");
  assert.equal(capture.interfaces[0]!.name, undefined);
});

function expectError(file: Buffer, offset: number, pattern: RegExp): void {
  assert.throws(
    () => [...readCaptureRecords(file)],
    (error: unknown) => {
      assert.ok(error instanceof CaptureFormatError, `expected CaptureFormatError, got ${String(error)}`);
      assert.equal(error.offset, offset, error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test("malformed pcapng files give errors that name the offset", () => {
  const little = true;
  const shb = sectionHeader(little);
  const idb = interfaceDescription(little, 1);
  const at = shb.length + idb.length;
  const data = Buffer.from("abcdef");

  const badMagic = Buffer.from(shb);
  badMagic.writeUInt32LE(0x12345678, 8);
  expectError(badMagic, 8, /bad byte-order magic 0x78563412/);
  expectError(shb.subarray(0, 10), 0, /truncated before its byte-order magic/);
  expectError(sectionHeader(little, Buffer.alloc(0), 2), 0, /unsupported pcapng version 2\.0/);
  expectError(Buffer.concat([shb, block(0x0bad, Buffer.alloc(0), little, 7)]), shb.length, /pcapng block of type 0x00000bad at offset 28: block total length 7 is smaller than 12/);
  expectError(Buffer.concat([shb, block(6, Buffer.alloc(8), little)]), shb.length, /enhanced packet block at offset 28: block total length 20 is smaller than 32/);
  expectError(Buffer.concat([shb, block(1, Buffer.alloc(8), little, 22)]), shb.length, /block total length 22 is not a multiple of 4/);
  expectError(Buffer.concat([shb, block(1, Buffer.alloc(8), little, 0x7ffffff0)]), shb.length, /block total length 2147483632 is larger than the limit/);
  expectError(Buffer.concat([shb, idb.subarray(0, 5)]), shb.length, /truncated block header \(5 of 8 bytes\)/);
  expectError(Buffer.concat([shb, idb.subarray(0, 14)]), shb.length, /interface description block at offset 28: truncated, block total length 20 but only 14 bytes remain/);
  expectError(Buffer.concat([shb, block(1, Buffer.alloc(8), little, undefined, 24)]), shb.length + 16, /trailing block total length 24 does not match the leading 20/);
  expectError(
    Buffer.concat([shb, interfaceDescription(little, 1, option(2, Buffer.from("eth0"), little, 200))]),
    shb.length,
    /interface description block at offset 28: option 2 at offset 44 has length 200 but only 4 bytes remain/,
  );
  expectError(Buffer.concat([shb, idb, enhancedPacket(little, 0, 0, 0, data, option(2, Buffer.alloc(3), little))]), at, /option epb_flags has length 3, expected 4/);
  expectError(Buffer.concat([shb, idb, enhancedPacket(little, 0, 0, 0, data, Buffer.alloc(0), 100)]), at, /captured length 100 overruns the block, which has room for 8 bytes/);
  expectError(Buffer.concat([shb, idb, enhancedPacket(little, 3, 0, 0, data)]), at, /refers to interface 3 but section 0 has 1 interface description block/);
  expectError(Buffer.concat([shb, block(3, Buffer.alloc(8), little)]), shb.length, /simple packet block at offset 28: refers to interface 0 but section 0 has 0/);
  expectError(Buffer.concat([shb, idb, enhancedPacket(little, 0, 0, 0, data, option(2989, Buffer.alloc(2), little))]), at, /custom option 2989 has length 2, too short/);
  expectError(
    Buffer.concat([shb, block(4, Buffer.concat([u16(1, little), u16(40, little), Buffer.alloc(8)]), little)]),
    shb.length,
    /name resolution block at offset 28: name record at offset 36 has length 40 but only 8 bytes remain/,
  );
  expectError(Buffer.concat([shb, block(4, Buffer.concat([u16(2, little), u16(4, little), Buffer.alloc(4)]), little)]), shb.length, /too short for its 16-byte address/);
  expectError(Buffer.concat([shb, idb, block(5, Buffer.concat([u32(0, little), Buffer.alloc(8), option(4, Buffer.alloc(4), little)]), little)]), at, /option isb_ifrecv has length 4, expected 8/);
  expectError(Buffer.concat([shb, interfaceDescription(little, 1, option(11, Buffer.alloc(0), little))]), shb.length, /if_filter is empty/);
});

test("the helpers above build valid files when nothing is broken", () => {
  const little = false;
  const file = Buffer.concat([sectionHeader(little), interfaceDescription(little, 1), enhancedPacket(little, 0, 0, 7, Buffer.from("abcdef"))]);
  const capture = readCapture(file);
  assert.equal(capture.packets[0]!.timestamp, 7000n);
  assert.equal(capture.packets[0]!.data.toString(), "abcdef");
});

test("a second section may change byte order", () => {
  const file = Buffer.concat([
    sectionHeader(true),
    interfaceDescription(true, 1),
    enhancedPacket(true, 0, 0, 1, Buffer.from("le")),
    sectionHeader(false),
    interfaceDescription(false, 101),
    enhancedPacket(false, 0, 0, 2, Buffer.from("be")),
  ]);
  const capture = readCapture(file);
  assert.deepEqual(capture.sections.map((s) => s.byteOrder), ["little", "big"]);
  assert.deepEqual(capture.packets.map((p) => [p.sectionIndex, p.linkType, p.data.toString(), p.timestamp]), [
    [0, 1, "le", 1000n],
    [1, 101, "be", 2000n],
  ]);
});

test("readPcapngRecords refuses a file that is not pcapng", () => {
  assert.throws(() => readPcapngRecords(Buffer.from("a1b2c3d4", "hex")), /expected a section header block/);
});

test("name records of unknown type are kept, and statistics need a described interface", () => {
  const little = true;
  const records = Buffer.concat([
    u16(9, little), u16(3, little), Buffer.from("abc\0"),
    u16(1, little), u16(6, little), Buffer.from([192, 0, 2, 1]), Buffer.from("h\0"), Buffer.alloc(2),
    u16(0, little), u16(0, little),
    option(2, Buffer.from("dns"), little), END,
  ]);
  const capture = readCapture(Buffer.concat([sectionHeader(little), block(4, records, little)]));
  const names = capture.nameResolutions[0]!;
  assert.deepEqual(names.unknownRecords.map((record) => [record.type, record.value.toString()]), [[9, "abc"]]);
  assert.deepEqual(names.records, [{ type: "ipv4", address: "192.0.2.1", names: ["h"] }]);
  assert.equal(names.dnsName, "dns");
  expectError(
    Buffer.concat([sectionHeader(little), block(5, Buffer.concat([u32(0, little), Buffer.alloc(8)]), little)]),
    28,
    /interface statistics block at offset 28: refers to interface 0 but section 0 has 0/,
  );
});
