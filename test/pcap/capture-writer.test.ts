import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCapture } from "../../src/pcap/capture-file.js";
import { AtomicFileSink, BufferSink, openFileSink, StreamSink, type CaptureSink } from "../../src/pcap/capture-sink.js";
import { MICROSECOND_RESOLUTION, NANOSECOND_RESOLUTION, type TimestampResolution } from "../../src/pcap/capture-record.js";
import { splitNanoseconds, type CaptureWriter } from "../../src/pcap/capture-writer.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { PcapWriter } from "../../src/pcap/pcap-writer.js";
import { encodePacketFlags, PcapngWriter } from "../../src/pcap/pcapng-writer.js";
import { UsageError } from "../../src/sys/errors.js";
import { seededRandom } from "./capture-samples.js";

test("splitNanoseconds divides 64-bit nanosecond counts exactly, as BigInt does", () => {
  const random = seededRandom(0x51e7);
  const result = new Float64Array(2);
  const words = [0, 1, 999_999_999, 1_000_000_000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];
  const cases: [number, number][] = [];
  for (const high of words) for (const low of words) cases.push([high, low]);
  for (let i = 0; i < 20000; i++) cases.push([Math.floor(random() * 0x1_0000_0000), Math.floor(random() * 0x1_0000_0000)]);
  for (const [high, low] of cases) {
    const value = (BigInt(high) << 32n) | BigInt(low);
    splitNanoseconds(high, low, result);
    assert.equal(result[0], Number(value / 1_000_000_000n), `seconds of ${value}`);
    assert.equal(result[1], Number(value % 1_000_000_000n), `nanoseconds of ${value}`);
  }
});

interface Written {
  high: number;
  low: number;
  originalLength: number;
  flags: number;
  start: number;
  length: number;
  interfaceIndex: number;
}

/** Random packets inside one source buffer, at odd offsets and lengths (0 … 300 bytes, some past the snap length). */
function randomPackets(seed: number, count: number, interfaces: number, maximumHigh: number, longest = 300): { source: Buffer; packets: Written[] } {
  const random = seededRandom(seed);
  const source = Buffer.alloc(Math.max(64 * 1024, 2 * longest));
  for (let i = 0; i < source.length; i++) source[i] = Math.floor(random() * 256);
  const packets: Written[] = [];
  for (let i = 0; i < count; i++) {
    const length = Math.floor(random() * longest);
    const start = Math.floor(random() * (source.length - length));
    const direction = Math.floor(random() * 3);
    packets.push({
      high: Math.floor(random() * maximumHigh),
      low: Math.floor(random() * 0x1_0000_0000),
      originalLength: length + Math.floor(random() * 3) * Math.floor(random() * 2000),
      flags: direction === 0 ? 0 : direction === 1 ? 1 | (Math.floor(random() * 5) << 2) : 2,
      start,
      length,
      interfaceIndex: Math.floor(random() * interfaces),
    });
  }
  return { source, packets };
}

function writeBoth<W extends CaptureWriter>(
  packets: Written[], source: Buffer, writeThe: (packet: Written, writer: W, index: number) => void, makeWriter: (sink: CaptureSink) => W, directory: string, name: string,
  writeFast = (packet: Written, writer: W, _index: number) => writer.writePacketBytes(packet.interfaceIndex, packet.high, packet.low, packet.originalLength, packet.flags, source, packet.start, packet.length),
): { slow: Buffer; fast: Buffer; fastFile: Buffer } {
  const slowSink = new BufferSink();
  const slow = makeWriter(slowSink);
  packets.forEach((packet, i) => writeThe(packet, slow, i));
  const fastSink = new BufferSink();
  const fast = makeWriter(fastSink);
  packets.forEach((packet, i) => writeFast(packet, fast, i));
  // A small file buffer: records that do not fit, records larger than the buffer, and reused (dirty) buffer memory.
  const path = join(directory, name);
  const fileSink = new AtomicFileSink(path, { bufferSize: 256 });
  const file = makeWriter(fileSink);
  packets.forEach((packet, i) => writeFast(packet, file, i));
  fileSink.closeSync();
  assert.equal(fast.packetsWritten, packets.length);
  return { slow: slowSink.toBuffer(), fast: fastSink.toBuffer(), fastFile: readFileSync(path) };
}

const timestampOf = (packet: Written) => (BigInt(packet.high) << 32n) | BigInt(packet.low);

test("pcap: writePacketBytes writes what writePacket writes, in a buffer sink and in a file", () => {
  const directory = mkdtempSync(join(tmpdir(), "nb-capopt-writer-"));
  try {
    let seed = 1;
    for (const byteOrder of ["little", "big"] as const) {
      for (const resolution of ["microsecond", "nanosecond"] as const) {
        for (const snapLength of [262144, 64]) {
          // Timestamps up to 2106, the end of pcap's 32-bit seconds.
          const { source, packets } = randomPackets(seed++, 400, 1, 1e9);
          const make = (sink: CaptureSink) => new PcapWriter(sink, { linkType: LinkType.ETHERNET, byteOrder, resolution, snapLength });
          const { slow, fast, fastFile } = writeBoth(packets, source, (packet, writer) => writer.writePacket({
            data: source.subarray(packet.start, packet.start + packet.length),
            timestamp: timestampOf(packet),
            originalLength: packet.originalLength,
          }), make, directory, `pcap-${seed}.pcap`);
          assert.ok(slow.equals(fast), `${byteOrder} ${resolution} snap ${snapLength}: buffer sink`);
          assert.ok(slow.equals(fastFile), `${byteOrder} ${resolution} snap ${snapLength}: file sink`);
          assert.equal(readCapture(fast).packets.length, packets.length);
        }
      }
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("pcap: packets of 16 KiB and more, written to a file straight from their source, give the same file", () => {
  const directory = mkdtempSync(join(tmpdir(), "nb-capopt-writer-"));
  try {
    for (const snapLength of [262144, 20000]) {
      // Lengths up to 70,000 bytes: about three in four above the 16 KiB where writing through starts, next to small ones.
      const { source, packets } = randomPackets(snapLength, 300, 1, 1e9, 70_000);
      const make = (sink: CaptureSink) => new PcapWriter(sink, { linkType: LinkType.ETHERNET, snapLength });
      const { slow, fast, fastFile } = writeBoth(packets, source, (packet, writer) => writer.writePacket({
        data: source.subarray(packet.start, packet.start + packet.length),
        timestamp: timestampOf(packet),
        originalLength: packet.originalLength,
      }), make, directory, `large-${snapLength}.pcap`);
      assert.ok(slow.equals(fast), `snap ${snapLength}: buffer sink`);
      assert.ok(slow.equals(fastFile), `snap ${snapLength}: file sink`);
      assert.equal(readCapture(fastFile).packets.length, packets.length);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("pcap: writePacketBytes gets timestamps right for packets close in time (same second, next second, low-word carry, backwards)", () => {
  const random = seededRandom(0x7e57);
  const { source, packets } = randomPackets(0x7e58, 3000, 1, 1);
  // A walk in steps of up to 0.3 s (a few backwards) from just below a low-word carry: most steps stay in the second.
  let time = (0x17a3_b2c4n << 32n) | 0xffff_0000n;
  for (const packet of packets) {
    const step = BigInt(Math.floor(random() * 300_000_000));
    time = random() < 0.05 && time > step ? time - step : time + step / (random() < 0.5 ? 1000n : 1n);
    packet.high = Number(time >> 32n);
    packet.low = Number(time & 0xffff_ffffn);
  }
  for (const resolution of ["microsecond", "nanosecond"] as const) {
    const slowSink = new BufferSink();
    const slow = new PcapWriter(slowSink, { linkType: LinkType.ETHERNET, resolution });
    const fastSink = new BufferSink();
    const fast = new PcapWriter(fastSink, { linkType: LinkType.ETHERNET, resolution });
    for (const packet of packets) {
      slow.writePacket({ data: source.subarray(packet.start, packet.start + packet.length), timestamp: timestampOf(packet), originalLength: packet.originalLength });
      fast.writePacketBytes(0, packet.high, packet.low, packet.originalLength, 0, source, packet.start, packet.length);
    }
    assert.ok(slowSink.toBuffer().equals(fastSink.toBuffer()), resolution);
  }
});

test("pcapng: writePacketBytes writes what writePacket writes (flags, snap lengths, other time units)", () => {
  const directory = mkdtempSync(join(tmpdir(), "nb-capopt-writer-"));
  try {
    let seed = 100;
    const interfaceSets: { resolution: TimestampResolution; offset?: bigint; snapLength: number }[][] = [
      [{ resolution: NANOSECOND_RESOLUTION, snapLength: 262144 }, { resolution: NANOSECOND_RESOLUTION, snapLength: 65 }],
      [{ resolution: NANOSECOND_RESOLUTION, snapLength: 0 }, { resolution: MICROSECOND_RESOLUTION, snapLength: 100 }, { resolution: NANOSECOND_RESOLUTION, offset: 5n, snapLength: 262144 }],
    ];
    for (const byteOrder of ["little", "big"] as const) {
      for (const interfaces of interfaceSets) {
        // Below 2^62 ns, so a time offset of a few seconds stays in range.
        const { source, packets } = randomPackets(seed++, 400, interfaces.length, 0x3fff_ffff);
        const make = (sink: CaptureSink) => {
          const writer = new PcapngWriter(sink, { byteOrder, userApplication: "test" });
          for (const description of interfaces) {
            writer.addInterface({ linkType: LinkType.ETHERNET, snapLength: description.snapLength, timestampResolution: description.resolution, timestampOffset: description.offset, name: "veth0" });
          }
          return writer;
        };
        const { slow, fast, fastFile } = writeBoth(packets, source, (packet, writer) => writer.writePacket({
          data: source.subarray(packet.start, packet.start + packet.length),
          timestamp: timestampOf(packet),
          originalLength: packet.originalLength,
          interfaceIndex: packet.interfaceIndex,
          flags: packet.flags,
        }), make, directory, `pcapng-${seed}.pcapng`);
        assert.ok(slow.equals(fast), `${byteOrder} ${interfaces.length} interfaces: buffer sink`);
        assert.ok(slow.equals(fastFile), `${byteOrder} ${interfaces.length} interfaces: file sink`);
        const read = readCapture(fast).packets;
        assert.equal(read.length, packets.length);
        read.forEach((packet, i) => assert.equal(packet.flags, packets[i]!.flags));
      }
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("pcapng: writeProcessPacketBytes writes what writePacket writes with the process, and follows a pid whose command changed", () => {
  const directory = mkdtempSync(join(tmpdir(), "nbpn-process-writer-"));
  try {
    // Commands as the kernel's comm bytes: plain, empty, 16 bytes, invalid UTF-8, and one pid seen with several commands (exec, pid reuse).
    const commands = [Buffer.from("curl"), Buffer.from("wget"), Buffer.alloc(0), Buffer.from("sixteen-bytes-xx"), Buffer.from([0x63, 0xff, 0xc3]), Buffer.from("c\u00e9")];
    const pids = [1, 1, 4_000_000_000, 77, 1, 2];
    for (const byteOrder of ["little", "big"] as const) {
      const { source, packets } = randomPackets(300, 400, 2, 0x3fff_ffff);
      // The command bytes live in the same source buffer, as in the ring.
      const commandStarts = commands.map((_, i) => 60_000 + i * 16);
      commands.forEach((command, i) => command.copy(source, commandStarts[i]));
      // Runs of the same process (the cache's hit) and changes between them.
      const processOf = (index: number) => Math.floor(index / 7) % commands.length;
      const make = (sink: CaptureSink) => {
        const writer = new PcapngWriter(sink, { byteOrder, userApplication: "test" });
        writer.addInterface({ linkType: LinkType.ETHERNET, snapLength: 262144, name: "veth0" });
        writer.addInterface({ linkType: LinkType.ETHERNET, snapLength: 100, timestampResolution: MICROSECOND_RESOLUTION, name: "veth1" });
        return writer;
      };
      const { slow, fast, fastFile } = writeBoth(packets, source, (packet, writer, index) => writer.writePacket({
        data: source.subarray(packet.start, packet.start + packet.length),
        timestamp: timestampOf(packet),
        originalLength: packet.originalLength,
        interfaceIndex: packet.interfaceIndex,
        flags: packet.flags,
        process: { pid: pids[processOf(index)]!, command: commands[processOf(index)]!.toString("utf8") },
      }), make, directory, `process-${byteOrder}.pcapng`, (packet, writer, index) => {
        const process = processOf(index);
        writer.writeProcessPacketBytes(packet.interfaceIndex, packet.high, packet.low, packet.originalLength, packet.flags, source, packet.start, packet.length, pids[process]!, commandStarts[process]!, commands[process]!.length);
      });
      assert.ok(slow.equals(fast), `${byteOrder}: buffer sink`);
      assert.ok(slow.equals(fastFile), `${byteOrder}: file sink`);
      const read = readCapture(fast).packets;
      assert.equal(read.length, packets.length);
      read.forEach((packet, i) => assert.deepEqual(packet.process, { pid: pids[processOf(i)], command: commands[processOf(i)]!.toString("utf8") }, `packet ${i}`));
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("writePacketBytes rejects what the format cannot hold, as writePacket does", () => {
  const data = Buffer.alloc(10);
  const pcap = new PcapWriter(new BufferSink(), { linkType: LinkType.ETHERNET });
  assert.throws(() => pcap.writePacketBytes(1, 0, 0, 10, 0, data, 0, 10), /only interface 0/);
  assert.throws(() => pcap.writePacketBytes(0, 0x3b9a_ca00, 0, 10, 0, data, 0, 10), /1970/);
  assert.throws(() => pcap.writePacketBytes(0, 0, 0, -1, 0, data, 0, 10), UsageError);
  // A range past the source would leave stale buffer bytes in the record; a low word of 2^32 or more would wrap.
  assert.throws(() => pcap.writePacketBytes(0, 0, 0, 10, 0, data, 4, 10), /length must be a byte count that stays within source \(0 to 6\)/);
  assert.throws(() => pcap.writePacketBytes(0, 0, 0, 10, 0, data, 11, 0), /start must be an offset in source/);
  assert.throws(() => pcap.writePacketBytes(0, 0, 2 ** 32, 10, 0, data, 0, 10), /timestampLow must be an unsigned 32-bit integer/);
  assert.equal(pcap.packetsWritten, 0);
  const pcapng = new PcapngWriter(new BufferSink());
  assert.throws(() => pcapng.writePacketBytes(0, 0, 0, 10, 0, data, 0, 10), /interface 0 does not exist/);
  pcapng.addInterface({ linkType: LinkType.ETHERNET });
  pcapng.writePacketBytes(0, 0, 0, 10, 0, data, 0, 10);
  assert.throws(() => pcapng.writeProcessPacketBytes(0, 0, 0, 10, 0, data, 0, 10, 1, 8, 4), /commandLength must be a range within source/);
  assert.equal(pcapng.packetsWritten, 1);
  pcapng.abort();
  assert.throws(() => pcapng.writePacketBytes(0, 0, 0, 10, 0, data, 0, 10), /already closed/);
  pcap.abort();
  assert.throws(() => pcap.writePacketBytes(0, 0, 0, 10, 0, data, 0, 10), /already closed/);
});

test("capture writer: sinks, writers and epb_flags refuse wrong arguments, naming them", () => {
  const refused = (field: string) => (error: unknown) => error instanceof UsageError && error.message.includes(field);
  const dir = mkdtempSync(join(tmpdir(), "nb-sink-options-"));
  try {
    assert.throws(() => new AtomicFileSink(join(dir, "a.pcap"), { bufferSize: 0 }), refused("options.bufferSize"));
    assert.throws(() => openFileSink(join(dir, "b.pcap"), { mode: 0o10000 }), refused("options.mode"));
    assert.throws(() => openFileSink(join(dir, "c.pcap"), { atomic: 1 as unknown as boolean }), refused("options.atomic"));
    assert.throws(() => openFileSink(42 as unknown as string), refused("path"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => new StreamSink({} as never), refused("stream"));
  assert.throws(() => new StreamSink(process.stdout, { bufferSize: -1 }), refused("options.bufferSize"));
  assert.throws(() => new PcapngWriter({} as CaptureSink), refused("sink"));
  assert.throws(() => new PcapngWriter(new BufferSink(), { byteOrder: "middle" as "little" }), refused("options.byteOrder"));
  assert.throws(() => new PcapWriter("x" as unknown as CaptureSink, { linkType: LinkType.ETHERNET }), refused("sink"));
  assert.throws(() => encodePacketFlags(-1), refused("flags"));
  assert.throws(() => encodePacketFlags(0, "sideways" as "inbound"), refused("direction"));
  assert.throws(() => encodePacketFlags(0, undefined, "anycast" as "unicast"), refused("receptionType"));
  assert.equal(encodePacketFlags(0, "outbound", "broadcast", 4), 2 | (3 << 2) | (4 << 5));
});
