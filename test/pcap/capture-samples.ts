/** Sample captures shared by the pcap tests, built with the writers under test. */
import { BufferSink } from "../../src/pcap/capture-sink.js";
import type { ByteOrder, TimestampResolution } from "../../src/pcap/capture-record.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { PcapWriter } from "../../src/pcap/pcap-writer.js";
import { PcapngWriter } from "../../src/pcap/pcapng-writer.js";

import { seededRandom } from "../support/seeded-random.js";

export { seededRandom };

/** An Ethernet + IPv4 + UDP frame from 10.0.0.1:sourcePort to 10.0.0.2:destinationPort. */
export function udpFrame(sourcePort: number, destinationPort: number, payload: Buffer): Buffer {
  const frame = Buffer.alloc(14 + 20 + 8 + payload.length);
  Buffer.from("020000000002020000000001", "hex").copy(frame, 0);
  frame.writeUInt16BE(0x0800, 12);
  const ip = 14;
  frame[ip] = 0x45;
  frame.writeUInt16BE(20 + 8 + payload.length, ip + 2);
  frame[ip + 8] = 64;
  frame[ip + 9] = 17;
  Buffer.of(10, 0, 0, 1, 10, 0, 0, 2).copy(frame, ip + 12);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += frame.readUInt16BE(ip + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  frame.writeUInt16BE(~sum & 0xffff, ip + 10);
  const udp = ip + 20;
  frame.writeUInt16BE(sourcePort, udp);
  frame.writeUInt16BE(destinationPort, udp + 2);
  frame.writeUInt16BE(8 + payload.length, udp + 4);
  payload.copy(frame, udp + 8);
  return frame;
}

export const SAMPLE_BASE_TIME = 1_700_000_000_000_000_000n;

/** Packets with varied sizes and sub-microsecond timestamps. */
export function samplePackets(count: number, seed = 1): { data: Buffer; timestamp: bigint }[] {
  const random = seededRandom(seed);
  const packets: { data: Buffer; timestamp: bigint }[] = [];
  let time = SAMPLE_BASE_TIME;
  for (let i = 0; i < count; i++) {
    time += BigInt(Math.floor(random() * 2_000_000_000));
    const payload = Buffer.alloc(Math.floor(random() * 200));
    for (let j = 0; j < payload.length; j++) payload[j] = Math.floor(random() * 256);
    packets.push({ data: udpFrame(40000 + i, 53, payload), timestamp: time });
  }
  return packets;
}

export function samplePcap(byteOrder: ByteOrder, resolution: "microsecond" | "nanosecond", count = 5): Buffer {
  const sink = new BufferSink();
  const writer = new PcapWriter(sink, { linkType: LinkType.ETHERNET, byteOrder, resolution });
  for (const packet of samplePackets(count)) writer.writePacket(packet);
  return sink.toBuffer();
}

/** A pcapng with every standard block and most options, in the given byte order. */
export function sampleFullPcapng(byteOrder: ByteOrder): Buffer {
  const sink = new BufferSink();
  const writer = new PcapngWriter(sink, {
    byteOrder,
    hardware: "x86_64",
    os: "Linux 6.18",
    userApplication: "netbpf test",
    comments: ["section comment"],
    customOptions: [{ code: 2988, privateEnterpriseNumber: 32473, data: Buffer.from("custom text") }],
  });
  const microsecond: TimestampResolution = { base: 10, exponent: 6 };
  writer.addInterface({
    linkType: LinkType.ETHERNET,
    snapLength: 65535,
    name: "eth-test",
    description: "test interface",
    os: "Linux",
    hardware: "virtio",
    filter: "udp port 53",
    timestampResolution: microsecond,
    timestampOffset: 10n,
    fcsLength: 4,
    speed: 10_000_000_000n,
    transmitSpeed: 1000n,
    receiveSpeed: 2000n,
    timeZone: -3600,
    ianaTimeZone: "Europe/Paris",
    ipv4Addresses: [{ address: "10.0.0.1", netmask: "255.255.255.0" }],
    ipv6Addresses: [{ address: "fe80::1", prefixLength: 64 }],
    macAddress: "02:00:00:00:00:01",
    euiAddress: "02:00:00:ff:fe:00:00:01",
    comments: ["interface comment"],
  });
  writer.addInterface({ linkType: LinkType.RAW, snapLength: 0, timestampResolution: { base: 2, exponent: 30 } });
  const [first, second, third] = samplePackets(3, 7);
  writer.writePacket({
    ...first!,
    direction: "inbound",
    receptionType: "broadcast",
    flags: 0x01000000,
    comments: ["first"],
    process: { pid: 4242, command: "curl" },
    dropCount: 3n,
    packetId: 0x1122334455667788n,
    queue: 7,
    hashes: [{ algorithm: 2, value: Buffer.from("0102030405060708", "hex") }],
    verdicts: [{ type: 1, value: Buffer.from("0000000000000002", "hex") }],
    customOptions: [{ code: 19373, privateEnterpriseNumber: 1234, data: Buffer.from([1, 2, 3]) }],
  });
  writer.writePacket({ ...second!, data: second!.data.subarray(14), interfaceIndex: 1, direction: "outbound", fcsLength: 0 });
  writer.writeSimplePacket(third!.data);
  writer.writeNameResolution({
    records: [
      { type: "ipv4", address: "10.0.0.2", names: ["dns.example", "ns"] },
      { type: "ipv6", address: "2001:db8::53", names: ["dns6.example"] },
      { type: "eui48", address: "02:00:00:00:00:02", names: ["router"] },
      { type: "eui64", address: "02:00:00:ff:fe:00:00:02", names: ["router64"] },
    ],
    dnsName: "resolver.example",
    dnsIpv4Address: "10.0.0.53",
    dnsIpv6Address: "2001:db8::35",
    comments: ["names"],
  });
  writer.writeRawBlock(0x80000001, Buffer.from("local use block"));
  writer.writeInterfaceStatistics({
    interfaceIndex: 0,
    timestamp: SAMPLE_BASE_TIME + 5_000_000_000n,
    startTime: SAMPLE_BASE_TIME,
    endTime: SAMPLE_BASE_TIME + 4_000_000_000n,
    interfaceReceived: 100n,
    interfaceDropped: 1n,
    filterAccepted: 90n,
    osDropped: 2n,
    userDelivered: 88n,
    comments: ["stats"],
  });
  return sink.toBuffer();
}
