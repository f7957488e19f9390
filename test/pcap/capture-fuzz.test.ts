/** Seeded mutation fuzzing of both readers: only clean results or CaptureFormatError, never a crash or hang. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { openCapture, readCaptureRecords } from "../../src/pcap/capture-file.js";
import { CaptureFormatError } from "../../src/pcap/capture-format-error.js";
import { sampleFullPcapng, samplePcap, seededRandom } from "./capture-samples.js";

const INTERESTING_32 = [0, 1, 3, 4, 7, 8, 12, 16, 28, 32, 0x7f, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff];
const INTERESTING_16 = [0, 1, 2, 3, 4, 8, 0x7fff, 0x8000, 0xfffe, 0xffff];

function mutate(input: Buffer, random: () => number): Buffer {
  let bytes = Buffer.from(input);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const position = () => Math.floor(random() * Math.max(1, bytes.length));
  const operations = 1 + Math.floor(random() * 4);
  for (let i = 0; i < operations && bytes.length > 0; i++) {
    switch (Math.floor(random() * 8)) {
      case 0:
        bytes[position()]! ^= 1 << Math.floor(random() * 8);
        break;
      case 1:
        bytes[position()] = Math.floor(random() * 256);
        break;
      case 2: {
        const at = position() & ~3;
        if (at + 4 <= bytes.length) {
          const value = random() < 0.8 ? pick(INTERESTING_32) : Math.floor(random() * 2 ** 32);
          if (random() < 0.5) bytes.writeUInt32LE(value >>> 0, at);
          else bytes.writeUInt32BE(value >>> 0, at);
        }
        break;
      }
      case 3: {
        const at = position() & ~1;
        if (at + 2 <= bytes.length) {
          if (random() < 0.5) bytes.writeUInt16LE(pick(INTERESTING_16), at);
          else bytes.writeUInt16BE(pick(INTERESTING_16), at);
        }
        break;
      }
      case 4:
        bytes = bytes.subarray(0, position());
        break;
      case 5: {
        const start = position();
        const end = Math.min(bytes.length, start + Math.floor(random() * 64));
        bytes = Buffer.concat([bytes.subarray(0, start), bytes.subarray(end)]);
        break;
      }
      case 6: {
        const start = position();
        const slice = bytes.subarray(start, start + Math.floor(random() * 64));
        const at = position();
        bytes = Buffer.concat([bytes.subarray(0, at), slice, bytes.subarray(at)]);
        break;
      }
      default: {
        const at = position();
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.alloc(1 + Math.floor(random() * 8), Math.floor(random() * 256)), bytes.subarray(at)]);
      }
    }
  }
  return bytes;
}

type Outcome = { records: number; packets: number } | { error: string };

function readAll(bytes: Buffer): Outcome {
  try {
    let records = 0;
    let packets = 0;
    for (const record of readCaptureRecords(bytes, { maxPacketLength: 1 << 16, maxBlockLength: 1 << 17 })) {
      records++;
      if (record.type === "packet") {
        packets++;
        const packet = record.packet;
        assert.equal(packet.capturedLength, packet.data.length);
        assert.ok(packet.data.length <= 1 << 16);
        assert.ok(packet.nanoseconds >= 0 && packet.nanoseconds < 1e9);
      }
    }
    return { records, packets };
  } catch (error) {
    if (error instanceof CaptureFormatError) {
      assert.ok(Number.isInteger(error.offset) && error.offset >= 0 && error.offset <= bytes.length, `offset ${error.offset} outside file of ${bytes.length}: ${error.message}`);
      return { error: error.message };
    }
    throw error;
  }
}

const inputs = (): [string, Buffer][] => [
  ["pcapng little", sampleFullPcapng("little")],
  ["pcapng big", sampleFullPcapng("big")],
  ["pcap big nano", samplePcap("big", "nanosecond", 6)],
  ["pcap little micro", samplePcap("little", "microsecond", 6)],
];

test("mutated captures give records or CaptureFormatError, nothing else", { timeout: 120_000 }, () => {
  let errors = 0;
  let successes = 0;
  for (const [name, input] of inputs()) {
    const random = seededRandom(0x5eed + input.length);
    for (let iteration = 0; iteration < 2500; iteration++) {
      const mutated = mutate(input, random);
      let outcome: Outcome;
      try {
        outcome = readAll(mutated);
      } catch (error) {
        assert.fail(`${name} iteration ${iteration}: ${String(error)}\ninput ${mutated.toString("hex")}`);
      }
      if ("error" in outcome) errors++;
      else successes++;
    }
  }
  // The mutations must exercise both paths, or the test proves little.
  assert.ok(errors > 1000, `${errors} errors`);
  assert.ok(successes > 500, `${successes} clean reads`);
});

test("every truncation of a valid capture is a clean read or a CaptureFormatError", () => {
  for (const [name, input] of inputs()) {
    const boundaries = new Set([...readCaptureRecords(input)].map((record) => record.offset).filter((offset) => offset > 0));
    if (name.startsWith("pcap ")) boundaries.add(24);
    let clean = 0;
    for (let length = 0; length < input.length; length++) {
      const outcome = readAll(input.subarray(0, length));
      if (!("error" in outcome)) {
        clean++;
        assert.ok(boundaries.has(length), `${name}: a prefix of ${length} bytes read cleanly but does not end on a block or record`);
      }
    }
    assert.equal(clean, boundaries.size, `${name}: every boundary prefix reads cleanly`);
  }
});

test("the streaming reader agrees with the in-memory reader on mutated input", async () => {
  const random = seededRandom(42);
  for (const [, input] of inputs()) {
    for (let iteration = 0; iteration < 150; iteration++) {
      const mutated = mutate(input, random);
      const expected = readAll(mutated);
      const chunks: Buffer[] = [];
      for (let at = 0; at < mutated.length; ) {
        const size = 1 + Math.floor(random() * 50);
        chunks.push(mutated.subarray(at, at + size));
        at += size;
      }
      let actual: Outcome;
      try {
        const reader = await openCapture(Readable.from(chunks), { maxPacketLength: 1 << 16, maxBlockLength: 1 << 17 });
        let records = 0;
        let packets = 0;
        for await (const record of reader.records()) {
          records++;
          if (record.type === "packet") packets++;
        }
        actual = { records, packets };
      } catch (error) {
        if (!(error instanceof CaptureFormatError)) throw error;
        actual = { error: error.message };
      }
      assert.deepEqual(actual, expected);
    }
  }
});
