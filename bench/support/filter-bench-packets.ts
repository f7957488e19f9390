/**
 * The crafted Ethernet frames bench/filter-cost.ts runs every filter over: a
 * mix that each benchmarked expression matches and does not match (IPv4 with
 * and without options, a later IPv4 fragment, IPv6 with and without a
 * fragment header, VLAN, ARP, ICMP, GRE, small and large frames), each well
 * under the 3.7 KB BPF_PROG_TEST_RUN accepts for skb programs.
 */

export interface BenchPacket {
  name: string;
  data: Buffer;
}

const ourMac = "02:00:00:00:00:01";
const otherMac = "02:00:00:00:00:99";
const peerMac = "02:00:00:00:00:02";

function mac(text: string): Buffer {
  return Buffer.from(text.split(":").map((part) => Number.parseInt(part, 16)));
}

function ipv4Address(text: string): Buffer {
  return Buffer.from(text.split(".").map(Number));
}

function ipv6Address(text: string): Buffer {
  const [head = "", tail = ""] = text.split("::");
  const groups = (part: string) => (part ? part.split(":").map((g) => Number.parseInt(g, 16)) : []);
  const first = groups(head);
  const last = groups(tail);
  const all = [...first, ...new Array<number>(8 - first.length - last.length).fill(0), ...last];
  const out = Buffer.alloc(16);
  all.forEach((group, index) => out.writeUInt16BE(group, index * 2));
  return out;
}

function ethernet(type: number, payload: Buffer, source = ourMac, vlanId?: number): Buffer {
  const header = Buffer.alloc(vlanId === undefined ? 14 : 18);
  mac(peerMac).copy(header, 0);
  mac(source).copy(header, 6);
  if (vlanId === undefined) {
    header.writeUInt16BE(type, 12);
  } else {
    header.writeUInt16BE(0x8100, 12);
    header.writeUInt16BE(vlanId, 14);
    header.writeUInt16BE(type, 16);
  }
  return Buffer.concat([header, payload]);
}

function checksum(bytes: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += bytes.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4(protocol: number, source: string, destination: string, payload: Buffer, options: { fragmentOffset?: number; optionWords?: number } = {}): Buffer {
  const headerLength = 20 + 4 * (options.optionWords ?? 0);
  const header = Buffer.alloc(headerLength);
  header[0] = 0x40 | (headerLength / 4);
  header.writeUInt16BE(headerLength + payload.length, 2);
  header.writeUInt16BE(0x1234, 4);
  header.writeUInt16BE(options.fragmentOffset ?? 0x4000, 6);
  header[8] = 64;
  header[9] = protocol;
  ipv4Address(source).copy(header, 12);
  ipv4Address(destination).copy(header, 16);
  for (let i = 20; i < headerLength; i++) header[i] = 1; // NOP options
  header.writeUInt16BE(checksum(header), 10);
  return Buffer.concat([header, payload]);
}

function ipv6(nextHeader: number, source: string, destination: string, payload: Buffer): Buffer {
  const header = Buffer.alloc(40);
  header.writeUInt32BE(0x60000000, 0);
  header.writeUInt16BE(payload.length, 4);
  header[6] = nextHeader;
  header[7] = 64;
  ipv6Address(source).copy(header, 8);
  ipv6Address(destination).copy(header, 24);
  return Buffer.concat([header, payload]);
}

function ipv6Fragment(nextHeader: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = nextHeader;
  header.writeUInt32BE(0xabcd, 4);
  return Buffer.concat([header, payload]);
}

const SYN = 0x02;
const ACK = 0x10;

function tcp(sourcePort: number, destinationPort: number, flags: number, payloadLength = 0): Buffer {
  const header = Buffer.alloc(20 + payloadLength);
  header.writeUInt16BE(sourcePort, 0);
  header.writeUInt16BE(destinationPort, 2);
  header.writeUInt32BE(1000, 4);
  header[12] = 5 << 4;
  header[13] = flags;
  header.writeUInt16BE(65535, 14);
  for (let i = 20; i < header.length; i++) header[i] = i & 0xff;
  return header;
}

function udp(sourcePort: number, destinationPort: number, payloadLength: number): Buffer {
  const header = Buffer.alloc(8 + payloadLength);
  header.writeUInt16BE(sourcePort, 0);
  header.writeUInt16BE(destinationPort, 2);
  header.writeUInt16BE(header.length, 4);
  return header;
}

function icmp(type: number): Buffer {
  const message = Buffer.alloc(64);
  message[0] = type;
  message.writeUInt16BE(0x77, 4);
  message.writeUInt16BE(checksum(message), 2);
  return message;
}

function arp(senderMac: string, senderIp: string, targetIp: string): Buffer {
  const message = Buffer.alloc(28);
  message.writeUInt16BE(1, 0);
  message.writeUInt16BE(0x0800, 2);
  message[4] = 6;
  message[5] = 4;
  message.writeUInt16BE(1, 6);
  mac(senderMac).copy(message, 8);
  ipv4Address(senderIp).copy(message, 14);
  ipv4Address(targetIp).copy(message, 24);
  return Buffer.concat([message, Buffer.alloc(18)]); // padded to the 60-byte minimum
}

function gre(): Buffer {
  const header = Buffer.alloc(4 + 40);
  header.writeUInt16BE(0x0800, 2);
  return header;
}

/** The frames, in a fixed order. */
export function filterBenchPackets(): BenchPacket[] {
  return [
    { name: "ipv4 tcp syn 10.1.2.3:40000 > 192.0.2.1:80", data: ethernet(0x0800, ipv4(6, "10.1.2.3", "192.0.2.1", tcp(40000, 80, SYN))) },
    { name: "ipv4 tcp syn-ack 192.0.2.1:80 > 10.1.2.3:40000 +1200", data: ethernet(0x0800, ipv4(6, "192.0.2.1", "10.1.2.3", tcp(80, 40000, SYN | ACK, 1200)), otherMac) },
    { name: "ipv4 tcp ack 10.0.0.5:22 > 10.0.0.6:50000", data: ethernet(0x0800, ipv4(6, "10.0.0.5", "10.0.0.6", tcp(22, 50000, ACK, 48))) },
    { name: "ipv4 options tcp syn 172.16.0.9:1500 > 203.0.113.4:8080", data: ethernet(0x0800, ipv4(6, "172.16.0.9", "203.0.113.4", tcp(1500, 8080, SYN), { optionWords: 3 }), otherMac) },
    { name: "ipv4 tcp later fragment 10.1.2.3 > 192.0.2.1", data: ethernet(0x0800, ipv4(6, "10.1.2.3", "192.0.2.1", tcp(80, 80, SYN, 100), { fragmentOffset: 185 })) },
    { name: "ipv4 udp 198.51.100.7:5353 > 8.8.8.8:53", data: ethernet(0x0800, ipv4(17, "198.51.100.7", "8.8.8.8", udp(5353, 53, 40))) },
    { name: "ipv4 udp 10.2.0.1:1999 > 10.2.0.2:4000", data: ethernet(0x0800, ipv4(17, "10.2.0.1", "10.2.0.2", udp(1999, 4000, 200)), otherMac) },
    { name: "ipv4 icmp echo 10.9.9.9 > 192.0.2.1", data: ethernet(0x0800, ipv4(1, "10.9.9.9", "192.0.2.1", icmp(8))) },
    { name: "ipv4 icmp echo-reply 192.0.2.1 > 10.9.9.9", data: ethernet(0x0800, ipv4(1, "192.0.2.1", "10.9.9.9", icmp(0)), otherMac) },
    { name: "ipv4 gre 198.51.100.1 > 198.51.100.2", data: ethernet(0x0800, ipv4(47, "198.51.100.1", "198.51.100.2", gre()), otherMac) },
    { name: "ipv6 tcp syn [2001:db8::1]:443 > [2001:db8::2]:1500", data: ethernet(0x86dd, ipv6(6, "2001:db8::1", "2001:db8::2", tcp(443, 1500, SYN))) },
    { name: "ipv6 udp [2001:db8::1]:1053 > [2001:db8::53]:53", data: ethernet(0x86dd, ipv6(17, "2001:db8::1", "2001:db8::53", udp(1053, 53, 30)), otherMac) },
    { name: "ipv6 fragment tcp [2001:db8::3] > [2001:db8::4]:80", data: ethernet(0x86dd, ipv6(44, "2001:db8::3", "2001:db8::4", ipv6Fragment(6, tcp(5000, 80, ACK, 500)))) },
    { name: "ipv6 gre", data: ethernet(0x86dd, ipv6(47, "2001:db8::5", "2001:db8::6", gre()), otherMac) },
    { name: "vlan 7 ipv4 tcp 10.3.0.1:33000 > 192.0.2.1:80", data: ethernet(0x0800, ipv4(6, "10.3.0.1", "192.0.2.1", tcp(33000, 80, ACK, 64)), ourMac, 7) },
    { name: "arp 192.0.2.1 > 192.0.2.254", data: ethernet(0x0806, arp(ourMac, "192.0.2.1", "192.0.2.254")) },
  ];
}
