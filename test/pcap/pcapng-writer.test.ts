import { test } from "node:test";
import assert from "node:assert/strict";
import { readCapture } from "../../src/pcap/capture-file.js";
import { BufferSink } from "../../src/pcap/capture-sink.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { PcapngWriter, encodePacketFlags } from "../../src/pcap/pcapng-writer.js";
import { NETBPF_PRIVATE_ENTERPRISE_NUMBER } from "../../src/pcap/pcapng-options.js";
import { UsageError } from "../../src/sys/errors.js";
import { SAMPLE_BASE_TIME, samplePackets, sampleFullPcapng } from "./capture-samples.js";

for (const byteOrder of ["little", "big"] as const) {
  test(`pcapng ${byteOrder}-endian: every block and option survives a round trip`, () => {
    const bytes = sampleFullPcapng(byteOrder);
    const magic = byteOrder === "little" ? "4d3c2b1a" : "1a2b3c4d";
    assert.equal(bytes.subarray(8, 12).toString("hex"), magic);
    const capture = readCapture(bytes);
    assert.equal(capture.format, "pcapng");

    const [section] = capture.sections;
    assert.equal(section!.byteOrder, byteOrder);
    assert.equal(section!.versionMajor, 1);
    assert.equal(section!.sectionLength, -1n);
    assert.equal(section!.hardware, "x86_64");
    assert.equal(section!.os, "Linux 6.18");
    assert.equal(section!.userApplication, "netbpf test");
    assert.deepEqual(section!.comments, ["section comment"]);
    assert.equal(section!.customOptions[0]!.code, 2988);
    assert.equal(section!.customOptions[0]!.privateEnterpriseNumber, 32473);
    assert.equal(section!.customOptions[0]!.data.toString(), "custom text");

    assert.equal(capture.interfaces.length, 2);
    const [first, second] = capture.interfaces;
    assert.equal(first!.linkType, LinkType.ETHERNET);
    assert.equal(first!.snapLength, 65535);
    assert.equal(first!.name, "eth-test");
    assert.equal(first!.description, "test interface");
    assert.equal(first!.os, "Linux");
    assert.equal(first!.hardware, "virtio");
    assert.deepEqual(first!.filter && { type: first!.filter.type, expression: first!.filter.expression }, { type: 0, expression: "udp port 53" });
    assert.deepEqual(first!.timestampResolution, { base: 10, exponent: 6 });
    assert.equal(first!.timestampOffset, 10n);
    assert.equal(first!.fcsLength, 4);
    assert.equal(first!.speed, 10_000_000_000n);
    assert.equal(first!.transmitSpeed, 1000n);
    assert.equal(first!.receiveSpeed, 2000n);
    assert.equal(first!.timeZone, -3600);
    assert.equal(first!.ianaTimeZone, "Europe/Paris");
    assert.deepEqual(first!.ipv4Addresses, [{ address: "10.0.0.1", netmask: "255.255.255.0" }]);
    assert.deepEqual(first!.ipv6Addresses, [{ address: "fe80::1", prefixLength: 64 }]);
    assert.equal(first!.macAddress, "02:00:00:00:00:01");
    assert.equal(first!.euiAddress, "02:00:00:ff:fe:00:00:01");
    assert.deepEqual(first!.comments, ["interface comment"]);
    // The default 10^-6 resolution is not written as an option.
    assert.ok(!first!.options.some((option) => option.code === 9));
    assert.equal(second!.linkType, LinkType.RAW);
    assert.equal(second!.snapLength, 0);
    assert.deepEqual(second!.timestampResolution, { base: 2, exponent: 30 });

    const sent = samplePackets(3, 7);
    assert.equal(capture.packets.length, 3);
    const [epb, raw, simple] = capture.packets;
    assert.equal(epb!.source, "enhanced-packet-block");
    assert.deepEqual(epb!.data, sent[0]!.data);
    assert.equal(epb!.timestamp, (sent[0]!.timestamp / 1000n) * 1000n);
    assert.equal(epb!.seconds, Number(sent[0]!.timestamp / 1_000_000_000n));
    assert.equal(epb!.nanoseconds, Number(((sent[0]!.timestamp % 1_000_000_000n) / 1000n) * 1000n));
    assert.equal(epb!.direction, "inbound");
    assert.equal(epb!.receptionType, "broadcast");
    assert.equal(epb!.flags, 0x01000000 | 1 | (3 << 2));
    assert.equal(epb!.fcsLength, 4, "FCS length comes from if_fcslen when epb_flags has none");
    assert.deepEqual(epb!.comments, ["first", "pid 4242 comm curl"]);
    assert.deepEqual(epb!.process, { pid: 4242, command: "curl" });
    assert.equal(epb!.dropCount, 3n);
    assert.equal(epb!.packetId, 0x1122334455667788n);
    assert.equal(epb!.queue, 7);
    assert.deepEqual(epb!.hashes.map((h) => [h.algorithm, h.value.toString("hex")]), [[2, "0102030405060708"]]);
    assert.deepEqual(epb!.verdicts.map((v) => [v.type, v.value.toString("hex")]), [[1, "0000000000000002"]]);
    const customCodes = epb!.customOptions.map((option) => [option.code, option.privateEnterpriseNumber]);
    assert.deepEqual(customCodes, [
      [19373, 1234],
      [2989, NETBPF_PRIVATE_ENTERPRISE_NUMBER],
    ]);
    assert.equal(raw!.interfaceIndex, 1);
    assert.equal(raw!.linkType, LinkType.RAW);
    assert.equal(raw!.direction, "outbound");
    assert.deepEqual(raw!.data, sent[1]!.data.subarray(14));
    const rawError = sent[1]!.timestamp - raw!.timestamp;
    assert.ok(rawError >= 0n && rawError <= 1n, `2^-30 s units keep the time within 1 ns (off by ${rawError})`);
    assert.equal(simple!.source, "simple-packet-block");
    assert.deepEqual(simple!.data, sent[2]!.data);
    assert.equal(simple!.originalLength, sent[2]!.data.length);

    assert.equal(capture.nameResolutions.length, 1);
    const names = capture.nameResolutions[0]!;
    assert.deepEqual(names.records, [
      { type: "ipv4", address: "10.0.0.2", names: ["dns.example", "ns"] },
      { type: "ipv6", address: "2001:db8::53", names: ["dns6.example"] },
      { type: "eui48", address: "02:00:00:00:00:02", names: ["router"] },
      { type: "eui64", address: "02:00:00:ff:fe:00:00:02", names: ["router64"] },
    ]);
    assert.equal(names.dnsName, "resolver.example");
    assert.equal(names.dnsIpv4Address, "10.0.0.53");
    assert.equal(names.dnsIpv6Address, "2001:db8::35");
    assert.deepEqual(names.comments, ["names"]);

    assert.equal(capture.unknownBlocks.length, 1);
    assert.equal(capture.unknownBlocks[0]!.blockType, 0x80000001);
    assert.equal(capture.unknownBlocks[0]!.body.toString(), "local use block\0");

    assert.equal(capture.statistics.length, 1);
    const statistics = capture.statistics[0]!;
    assert.equal(statistics.interfaceIndex, 0);
    assert.equal(statistics.timestamp, SAMPLE_BASE_TIME + 5_000_000_000n);
    assert.equal(statistics.startTime, SAMPLE_BASE_TIME);
    assert.equal(statistics.endTime, SAMPLE_BASE_TIME + 4_000_000_000n);
    assert.equal(statistics.interfaceReceived, 100n);
    assert.equal(statistics.interfaceDropped, 1n);
    assert.equal(statistics.filterAccepted, 90n);
    assert.equal(statistics.osDropped, 2n);
    assert.equal(statistics.userDelivered, 88n);
    assert.deepEqual(statistics.comments, ["stats"]);
  });
}

test("pcapng little- and big-endian encodings hold the same capture", () => {
  const little = readCapture(sampleFullPcapng("little"));
  const big = readCapture(sampleFullPcapng("big"));
  const strip = (capture: typeof little) => ({
    packets: capture.packets.map(({ options: _options, ...rest }) => ({ ...rest, customOptions: rest.customOptions.map((o) => [o.code, o.privateEnterpriseNumber]) })),
    interfaces: capture.interfaces.map(({ options: _options, ...rest }) => rest),
    statistics: capture.statistics.map(({ options: _options, ...rest }) => rest),
  });
  assert.deepEqual(strip(little), strip(big));
  assert.notDeepEqual(sampleFullPcapng("little"), sampleFullPcapng("big"));
});

test("timestamps keep their precision for each interface resolution", () => {
  const resolutions = [
    { base: 10 as const, exponent: 0 },
    { base: 10 as const, exponent: 3 },
    { base: 10 as const, exponent: 6 },
    { base: 10 as const, exponent: 9 },
    { base: 10 as const, exponent: 10 },
    { base: 2 as const, exponent: 10 },
    { base: 2 as const, exponent: 32 },
  ];
  const timestamp = 1_712_345_678_987_654_321n;
  const sink = new BufferSink();
  const writer = new PcapngWriter(sink);
  for (const timestampResolution of resolutions) writer.addInterface({ linkType: LinkType.RAW, timestampResolution });
  resolutions.forEach((_, interfaceIndex) => writer.writePacket({ data: Buffer.of(0x45), timestamp, interfaceIndex }));
  const packets = readCapture(sink.toBuffer()).packets;
  writer.addInterface({ linkType: LinkType.RAW, timestampResolution: { base: 10, exponent: 12 } });
  assert.throws(() => writer.writePacket({ data: Buffer.of(0x45), timestamp, interfaceIndex: resolutions.length }), /cannot be stored/);
  const expected = [
    1_712_345_678_000_000_000n,
    1_712_345_678_987_000_000n,
    1_712_345_678_987_654_000n,
    timestamp,
    timestamp,
  ];
  packets.slice(0, 5).forEach((packet, i) => assert.equal(packet.timestamp, expected[i], `10^-${resolutions[i]!.exponent}`));
  // 2^-10 s is about 977 µs; 2^-32 s is about 0.23 ns.
  const coarse = timestamp - packets[5]!.timestamp;
  assert.ok(coarse >= 0n && coarse < 976_563n, `2^-10 error ${coarse}`);
  const fine = timestamp - packets[6]!.timestamp;
  assert.ok(fine >= 0n && fine <= 1n, `2^-32 error ${fine}`);
});

test("several sections each restart interface numbering", () => {
  const sink = new BufferSink();
  const writer = new PcapngWriter(sink, { byteOrder: "little", userApplication: "one" });
  writer.addInterface({ linkType: LinkType.ETHERNET });
  writer.writePacket({ data: Buffer.alloc(20), timestamp: 1n });
  writer.startSection({ userApplication: "two" });
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(20), timestamp: 2n }), UsageError);
  writer.addInterface({ linkType: LinkType.RAW });
  writer.writePacket({ data: Buffer.alloc(20), timestamp: 3n });
  const capture = readCapture(sink.toBuffer());
  assert.deepEqual(capture.sections.map((s) => s.userApplication), ["one", "two"]);
  assert.deepEqual(capture.packets.map((p) => [p.sectionIndex, p.interfaceIndex, p.linkType, p.timestamp]), [
    [0, 0, LinkType.ETHERNET, 1n],
    [1, 0, LinkType.RAW, 3n],
  ]);
});

test("snapshot length cuts packets and keeps the original length", () => {
  const sink = new BufferSink();
  const writer = new PcapngWriter(sink);
  writer.addInterface({ linkType: LinkType.ETHERNET, snapLength: 10 });
  writer.writePacket({ data: Buffer.alloc(100, 7), timestamp: 5n });
  writer.writeSimplePacket(Buffer.alloc(50, 8));
  const [epb, spb] = readCapture(sink.toBuffer()).packets;
  assert.equal(epb!.capturedLength, 10);
  assert.equal(epb!.originalLength, 100);
  assert.equal(spb!.capturedLength, 10);
  assert.equal(spb!.originalLength, 50);
});

test("process info written once even when the packet already carries it", () => {
  const sink = new BufferSink();
  const writer = new PcapngWriter(sink);
  writer.addInterface({ linkType: LinkType.RAW });
  writer.writePacket({ data: Buffer.of(0x45), timestamp: 1n, process: { pid: 7, command: "a b" } });
  const copy = readCapture(sink.toBuffer()).packets[0]!;
  const second = new BufferSink();
  const again = new PcapngWriter(second, { byteOrder: "big" });
  again.addInterface({ linkType: LinkType.RAW });
  again.writePacket(copy);
  const reread = readCapture(second.toBuffer()).packets[0]!;
  assert.deepEqual(reread.comments, ["pid 7 comm a b"]);
  assert.equal(reread.customOptions.length, 1);
  assert.deepEqual(reread.process, { pid: 7, command: "a b" });
});

test("the process comment alone is enough to recover process info", () => {
  const sink = new BufferSink();
  const writer = new PcapngWriter(sink);
  writer.addInterface({ linkType: LinkType.RAW });
  writer.writePacket({ data: Buffer.of(0x45), timestamp: 1n, comments: ["pid 99 comm nginx: worker"] });
  assert.deepEqual(readCapture(sink.toBuffer()).packets[0]!.process, { pid: 99, command: "nginx: worker" });
});

test("epb_flags packs direction, reception type and FCS length", () => {
  assert.equal(encodePacketFlags(0, "inbound"), 1);
  assert.equal(encodePacketFlags(0, "outbound", "promiscuous", 4), 2 | (4 << 2) | (4 << 5));
  assert.equal(encodePacketFlags(0xffffffff, "inbound", "unicast", 0), ((0xffffffff & ~0x1ff) | 1 | (1 << 2)) >>> 0);
  assert.throws(() => encodePacketFlags(0, undefined, undefined, 16), UsageError);
});

test("writer rejects what pcapng cannot hold", () => {
  const writer = new PcapngWriter(new BufferSink());
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(1) }), /interface 0 does not exist/);
  assert.throws(() => writer.addInterface({ linkType: 70000 }), UsageError);
  writer.addInterface({ linkType: LinkType.ETHERNET });
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(1), linkType: LinkType.RAW }), /link type 101/);
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(1), timestamp: -5n }), UsageError);
  assert.throws(() => writer.writePacket({ data: Buffer.alloc(1), comments: ["x".repeat(70000)] }), UsageError);
  assert.throws(() => writer.addInterface({ linkType: 1, ipv4Addresses: [{ address: "1.2.3", netmask: "255.0.0.0" }] }), /not a valid IPv4/);
  assert.throws(() => writer.writeNameResolution({ records: [{ type: "ipv6", address: "1::2::3", names: [] }] }), UsageError);
  assert.throws(() => writer.addInterface({ linkType: 1, timestampResolution: { base: 10, exponent: 200 } }), UsageError);
});

test("closed writers refuse more packets", async () => {
  const writer = new PcapngWriter(new BufferSink());
  writer.addInterface({ linkType: LinkType.RAW });
  await writer.close();
  assert.throws(() => writer.writePacket({ data: Buffer.of(1) }), /already closed/);
});

test("raw blocks are padded, and section headers go through startSection()", () => {
  const sink = new BufferSink();
  const writer = new PcapngWriter(sink);
  writer.writeRawBlock(0x40000bad, Buffer.from("abcde"));
  assert.throws(() => writer.writeRawBlock(0x0a0d0d0a, Buffer.alloc(16)), /startSection/);
  const [unknown] = readCapture(sink.toBuffer()).unknownBlocks;
  assert.equal(unknown!.blockType, 0x40000bad);
  assert.equal(unknown!.body.length, 8);
  assert.equal(unknown!.body.subarray(0, 5).toString(), "abcde");
});
