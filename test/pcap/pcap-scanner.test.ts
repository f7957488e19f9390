import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BufferSink } from "../../src/pcap/capture-sink.js";
import { readCapture } from "../../src/pcap/capture-file.js";
import { CaptureFormatError } from "../../src/pcap/capture-format-error.js";
import { PcapWriter } from "../../src/pcap/pcap-writer.js";
import { PcapngWriter } from "../../src/pcap/pcapng-writer.js";
import { PcapScanner, pcapTimeWords } from "../../src/pcap/pcap-scanner.js";
import { seededRandom } from "../support/seeded-random.js";

function sample(byteOrder: "little" | "big", resolution: "microsecond" | "nanosecond"): Buffer {
  const random = seededRandom(byteOrder === "big" ? 7 : 8);
  const sink = new BufferSink();
  const writer = new PcapWriter(sink, { linkType: 1, byteOrder, resolution });
  for (let i = 0; i < 500; i++) {
    const length = Math.floor(random() * 3000);
    const data = Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
    const timestamp = BigInt(Math.floor(random() * 2 ** 32)) * 1_000_000_000n + BigInt(Math.floor(random() * 1e9)) / (resolution === "microsecond" ? 1000n : 1n) * (resolution === "microsecond" ? 1000n : 1n);
    writer.writePacket({ data, timestamp, originalLength: length + Math.floor(random() * 10) });
  }
  return sink.toBuffer();
}

test("pcap scanner: the same records as the general reader, across read boundaries, both byte orders and resolutions", () => {
  const directory = mkdtempSync(join(tmpdir(), "nb-p-scan-"));
  try {
    for (const byteOrder of ["little", "big"] as const) {
      for (const resolution of ["microsecond", "nanosecond"] as const) {
        const bytes = sample(byteOrder, resolution);
        const path = join(directory, `${byteOrder}-${resolution}.pcap`);
        writeFileSync(path, bytes);
        const expected = readCapture(bytes).packets;
        using scanner = PcapScanner.open(path, { readSize: 4096 })!;
        assert.ok(scanner, "a pcap file opens");
        assert.equal(scanner.header.nanosecond, resolution === "nanosecond");
        const time = new Uint32Array(2);
        let index = 0;
        assert.equal(scanner.scan((record) => {
          const packet = expected[index++]!;
          assert.deepEqual(record.buffer.subarray(record.dataStart, record.dataStart + record.capturedLength), packet.data);
          assert.equal(record.originalLength, packet.originalLength);
          pcapTimeWords(record.seconds, record.fraction, scanner.header.nanosecond, time);
          assert.equal((BigInt(time[0]!) << 32n) | BigInt(time[1]!), packet.timestamp, `record ${index}`);
        }), true);
        assert.equal(index, expected.length);
      }
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("pcap scanner: stops and resumes, rejects truncated files like the general reader, and passes on other formats", () => {
  const directory = mkdtempSync(join(tmpdir(), "nb-p-scan-"));
  try {
    const bytes = sample("little", "microsecond");
    const path = join(directory, "a.pcap");
    writeFileSync(path, bytes);
    using scanner = PcapScanner.open(path, { readSize: 1 << 16 })!;
    let seen = 0;
    assert.equal(scanner.scan(() => ++seen < 10), false);
    assert.equal(seen, 10);
    assert.equal(scanner.scan(() => void seen++), true);
    assert.equal(seen, 500);

    const truncated = join(directory, "truncated.pcap");
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 5));
    using cut = PcapScanner.open(truncated)!;
    let before = 0;
    assert.throws(() => cut.scan(() => void before++), (error: unknown) => error instanceof CaptureFormatError && /truncated packet data/.test(error.message));
    assert.equal(before, 499, "every whole record comes before the error");

    const pcapng = join(directory, "a.pcapng");
    const sink = new BufferSink();
    new PcapngWriter(sink, {}).addInterface({ linkType: 1 });
    writeFileSync(pcapng, sink.toBuffer());
    assert.equal(PcapScanner.open(pcapng), undefined);
    writeFileSync(join(directory, "empty"), "");
    assert.equal(PcapScanner.open(join(directory, "empty")), undefined);
    assert.throws(() => PcapScanner.open(join(directory, "missing.pcap")), /cannot open .*missing\.pcap: ENOENT/);
    assert.ok(readFileSync(path).length > 0);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("pcap scanner: options and pcapTimeWords' arguments are checked, naming them", () => {
  assert.throws(() => PcapScanner.open("/nonexistent", { readSize: 0 }), /options\.readSize must be an integer ≥ 1/);
  assert.throws(() => PcapScanner.open(42 as unknown as string), /path must be a string/);
  assert.throws(() => pcapTimeWords(1, 2, false, new Uint32Array(1)), /result must be a Uint32Array/);
  assert.throws(() => pcapTimeWords(1.5, 2, false, new Uint32Array(2)), /seconds must be an integer/);
  assert.throws(() => pcapTimeWords(1, 2, "yes" as unknown as boolean, new Uint32Array(2)), /nanosecondFile must be true or false/);
  const time = new Uint32Array(2);
  pcapTimeWords(1, 500, false, time);
  assert.equal((BigInt(time[0]!) << 32n) | BigInt(time[1]!), 1_000_500_000n);
});
