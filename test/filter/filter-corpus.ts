import {
  arp, authenticationHeader, concat, ethernet, ethernetVlan, geneve, icmp, igmp, ipv4, ipv6, ipv6Extension, ipv6Fragment,
  linuxSll, linuxSll2, llcControlFrame, llcFrame, mac, mplsLabel, snapFrame, decnetData, pppoeDiscovery, pppoeSession, sctp, tcp, TCP, u16, u8, udp, vxlan, type Bytes,
} from "../support/packet-builder.js";
import type { CapturedPacket } from "../support/pcap-writer.js";

/** A network-layer packet with its Ethernet type. */
interface NetworkPacket {
  type: number;
  data: Bytes;
}

const IP = 0x0800;
const IP6 = 0x86dd;

function networkPackets(): NetworkPacket[] {
  const v4 = (protocol: number, payload: Bytes, options: Parameters<typeof ipv4>[2] = {}) => ({ type: IP, data: ipv4(protocol, payload, options) });
  const v6 = (next: number, payload: Bytes, options: Parameters<typeof ipv6>[2] = {}) => ({ type: IP6, data: ipv6(next, payload, options) });
  const innerEthernet = ethernet(IP, ipv4(6, tcp(1111, 80, TCP.syn), { source: "192.168.7.1", destination: "192.168.7.2" }));
  return [
    v4(6, tcp(12345, 80, TCP.syn)),
    v4(6, tcp(80, 12345, TCP.syn | TCP.ack), { source: "10.0.0.2", destination: "10.0.0.1" }),
    v4(6, tcp(40000, 22, TCP.ack | TCP.push, u8(1, 2, 3, 4, 5, 6, 7, 8))),
    v4(17, udp(5353, 53), { destination: "8.8.8.8" }),
    v4(17, udp(6005, 7001)),
    v4(132, sctp(80, 2000)),
    v4(1, icmp(8, 0)),
    v4(1, icmp(0, 0), { source: "10.0.0.2", destination: "10.0.0.1" }),
    v4(1, icmp(3, 3)),
    v4(2, igmp(0x16, "224.0.0.251"), { destination: "224.0.0.251", ttl: 1 }),
    v4(6, tcp(1234, 80, TCP.ack), { options: u8(1, 1, 1, 0) }),
    v4(17, udp(1000, 53, new Uint8Array(16)), { moreFragments: true, id: 7 }),
    v4(17, concat(u16(80), u16(80), new Uint8Array(12)), { fragmentOffset: 3, id: 7 }),
    v4(17, udp(67, 68), { source: "0.0.0.0", destination: "255.255.255.255" }),
    v4(6, tcp(443, 50000, TCP.fin | TCP.ack), { source: "192.168.1.5", destination: "172.16.3.4" }),
    v4(6, tcp(50000, 443, TCP.rst), { source: "172.16.3.4", destination: "192.168.1.5", dontFragment: true }),
    v4(47, u8(0, 0, 8, 0, 0x45, 0, 0, 20)),
    v4(51, concat(authenticationHeader(6), tcp(2222, 3333, TCP.syn))),
    v4(6, tcp(5555, 8080, TCP.urg | TCP.ece | TCP.cwr), { source: "127.0.0.1", destination: "127.0.0.1" }),
    v4(17, udp(40001, 6081, geneve(5, 0x6558, innerEthernet))),
    v4(17, udp(40002, 6081, geneve(7, IP, ipv4(17, udp(1, 53)), 2))),
    v4(17, udp(40003, 4789, vxlan(9, ethernet(IP, ipv4(17, udp(2, 53)))))),
    v6(6, tcp(12345, 80, TCP.syn)),
    v6(17, udp(5353, 53), { source: "2001:db8::5", destination: "2001:db8:1::53" }),
    v6(58, icmp(128, 0)),
    v6(58, icmp(135, 0), { destination: "ff02::1:ff00:2" }),
    v6(0, concat(ipv6Extension(17), udp(1000, 53))),
    v6(43, concat(ipv6Extension(6), tcp(1000, 80, TCP.syn))),
    v6(44, concat(ipv6Fragment(6, 0, true), tcp(1000, 80, TCP.syn))),
    v6(44, concat(ipv6Fragment(17, 100, false), u8(0, 80, 0, 80, 1, 2, 3, 4))),
    v6(60, concat(ipv6Extension(44), ipv6Fragment(6, 0, false), tcp(1001, 22, TCP.ack))),
    v6(51, concat(authenticationHeader(6), tcp(7, 9, TCP.syn))),
    v6(132, sctp(80, 9999)),
    v6(6, tcp(33333, 22, TCP.ack), { source: "::1", destination: "::1" }),
    v6(17, udp(6081, 6081, geneve(3, IP6, ipv6(17, udp(9, 53))))),
    { type: 0x0806, data: arp(1, "10.0.0.1", "10.0.0.2") },
    { type: 0x0806, data: arp(2, "10.0.0.2", "10.0.0.1") },
    { type: 0x8035, data: arp(3, "10.0.0.3", "10.0.0.3") },
    { type: 0x88cc, data: new Uint8Array(30) },
    { type: 0x6003, data: new Uint8Array(30) },
  ];
}

/** Crafted Ethernet frames; truncated ones carry a larger wire length. */
export function craftedEthernet(): CapturedPacket[] {
  const packets: CapturedPacket[] = networkPackets().map((p) => ({ data: ethernet(p.type, p.data) }));
  const ipTcp80 = ipv4(6, tcp(1234, 80, TCP.syn));
  const ip6Udp53 = ipv6(17, udp(1234, 53));
  packets.push(
    { data: ethernetVlan([[0x8100, 10]], IP, ipTcp80) },
    { data: ethernetVlan([[0x8100, 20]], IP6, ip6Udp53) },
    { data: ethernetVlan([[0x88a8, 100], [0x8100, 200]], IP, ipTcp80) },
    { data: ethernetVlan([[0x9100, 300]], IP, ipv4(17, udp(53, 53))) },
    { data: ethernetVlan([[0x8100, 10]], 0x0806, arp(1, "10.0.0.1", "10.0.0.9")) },
    { data: ethernetVlan([[0x8100, 4095], [0x8100, 10], [0x8100, 20]], IP, ipTcp80) },
    { data: ethernet(0x8847, concat(mplsLabel(5, true), ipTcp80)) },
    { data: ethernet(0x8847, concat(mplsLabel(100000, false), mplsLabel(1024, true), ip6Udp53)) },
    { data: ethernet(0x8847, concat(mplsLabel(7, true), ipv4(17, udp(53, 9))) ) },
    { data: ethernet(0x8864, pppoeSession(0x27, 0x21, ipTcp80)) },
    { data: ethernet(0x8864, pppoeSession(3, 0x57, ip6Udp53)) },
    { data: ethernet(0x8863, pppoeDiscovery(0x09)) },
    { data: ethernetVlan([[0x8100, 10]], 0x8864, pppoeSession(5, 0x21, ipTcp80)) },
    { data: llcFrame(0x42, 0x42, new Uint8Array(40)) },
    { data: llcFrame(0x06, 0x06, new Uint8Array(40)) },
    { data: llcFrame(0xfe, 0xfe, new Uint8Array(40)) },
    { data: llcFrame(0xff, 0xff, new Uint8Array(40)) },
    { data: ethernet(0x0806, arp(1, "10.0.0.1", "10.0.0.7"), { destination: "ff:ff:ff:ff:ff:ff" }) },
    { data: ethernet(IP, ipv4(2, igmp(0x16, "224.0.0.1"), { destination: "224.0.0.1" }), { destination: "01:00:5e:00:00:01" }) },
    { data: ethernet(IP6, ipv6(58, icmp(135, 0), { destination: "ff02::1:ff00:2" }), { destination: "33:33:ff:00:00:02", source: "0a:0b:0c:0d:0e:0f" }) },
  );
  const truncate = (frame: Bytes, keep: number): CapturedPacket => ({ data: frame.slice(0, keep), length: frame.length });
  const full = ethernet(IP, ipv4(6, tcp(12345, 80, TCP.syn)));
  packets.push(
    truncate(full, 10),
    truncate(full, 14),
    truncate(full, 24),
    truncate(full, 30),
    truncate(full, 36),
    truncate(full, 40),
    truncate(full, 48),
    truncate(ethernet(IP6, ipv6(6, tcp(1, 80, TCP.syn))), 40),
    truncate(ethernet(IP6, ipv6(6, tcp(1, 80, TCP.syn))), 56),
    truncate(ethernetVlan([[0x8100, 10]], IP, ipTcp80), 16),
    truncate(ethernet(0x0806, arp(1, "10.0.0.1", "10.0.0.2")), 30),
  );
  return packets;
}

/** The network packets under Linux cooked v1 headers, with several packet types. */
export function craftedLinuxSll(): CapturedPacket[] {
  const packets = networkPackets().map((p, i) => ({ data: linuxSll([0, 4, 1, 2, 3][i % 5]!, p.type, p.data) }));
  const full = linuxSll(4, IP, ipv4(6, tcp(12345, 80, TCP.syn)));
  packets.push({ data: full.slice(0, 20) }, { data: full.slice(0, 40) });
  return packets;
}

/** The network packets under Linux cooked v2 headers, with several packet types and interfaces. */
export function craftedLinuxSll2(): CapturedPacket[] {
  const packets = networkPackets().map((p, i) => ({ data: linuxSll2([0, 4, 1, 2, 3][i % 5]!, p.type, p.data, 1 + (i % 3)) }));
  const full = linuxSll2(0, IP6, ipv6(6, tcp(12345, 80, TCP.syn)));
  packets.push({ data: full.slice(0, 24) }, { data: full.slice(0, 70) });
  return packets;
}

/** The IP packets alone (LINKTYPE_RAW). */
export function craftedRaw(): CapturedPacket[] {
  const packets: CapturedPacket[] = networkPackets().filter((p) => p.type === IP || p.type === IP6).map((p) => ({ data: p.data }));
  const full = ipv4(6, tcp(12345, 80, TCP.syn));
  packets.push({ data: full.slice(0, 12), length: full.length }, { data: full.slice(0, 22), length: full.length });
  return packets;
}

/**
 * Link-layer protocols beyond IP, crafted where no real capture is at hand: DECnet
 * (short/long routing headers, padded or not), LAT, MOP, SCA, AppleTalk and AARP
 * (Ethernet II and SNAP), IPX (Ethernet II, raw 802.3, 802.2, SNAP), STP, NetBEUI,
 * ISO (CLNP, ES-IS, IS-IS with every PDU type) and LLC frames of every control type.
 */
export function craftedLinkProtocols(): CapturedPacket[] {
  const frames: Bytes[] = [
    ethernet(0x6003, decnetData("1.2", "1.1", "short", false)),
    ethernet(0x6003, decnetData("63.1023", "2.5", "short", true)),
    ethernet(0x6003, decnetData("1.1", "63.1023", "long", false)),
    ethernet(0x6003, decnetData("10.20", "1.2", "long", true)),
    ethernet(0x6004, new Uint8Array(40)),
    ethernet(0x6001, new Uint8Array(40)),
    ethernet(0x6002, new Uint8Array(40)),
    ethernet(0x6007, new Uint8Array(40)),
    ethernet(0x809b, new Uint8Array(40)),
    ethernet(0x80f3, new Uint8Array(28)),
    snapFrame(0x080007, 0x809b, new Uint8Array(30)),
    snapFrame(0x000000, 0x80f3, new Uint8Array(28)),
    ethernet(0x8137, new Uint8Array(30)),
    concat(mac("ff:ff:ff:ff:ff:ff"), mac("02:00:00:00:00:01"), u16(32), u8(0xff, 0xff), new Uint8Array(30)),
    llcControlFrame(0xe0, 0xe0, u8(0x03), new Uint8Array(30)),
    snapFrame(0x000000, 0x8137, new Uint8Array(30)),
    snapFrame(0x000000, 0x0800, ipv4(6, tcp(1, 80, TCP.syn))),
    llcControlFrame(0x42, 0x42, u8(0x03), new Uint8Array(35)),
    llcControlFrame(0xf0, 0xf0, u8(0x03), new Uint8Array(30)),
    llcControlFrame(0xfe, 0xfe, u8(0x03), concat(u8(0x81), new Uint8Array(30))),
    llcControlFrame(0xfe, 0xfe, u8(0x03), concat(u8(0x82), new Uint8Array(30))),
    ...[15, 16, 17, 18, 20, 24, 25, 26, 27, 19].map((type) => llcControlFrame(0xfe, 0xfe, u8(0x03), concat(u8(0x83, 27, 1, 0, type, 1, 0, 0), new Uint8Array(30)))),
    // LLC control fields: I (0x00 0x02), S RR/RNR/REJ (0x01/0x05/0x09 + N(R)), U UI/UA/DISC/DM/SABME/TEST/XID/FRMR.
    llcControlFrame(0x04, 0x04, u8(0x00, 0x02), new Uint8Array(20)),
    llcControlFrame(0x04, 0x05, u8(0x0e, 0x10), new Uint8Array(20)),
    llcControlFrame(0x04, 0x04, u8(0x01, 0x04), new Uint8Array(20)),
    llcControlFrame(0x04, 0x04, u8(0x05, 0x04), new Uint8Array(20)),
    llcControlFrame(0x04, 0x04, u8(0x09, 0x04), new Uint8Array(20)),
    ...[0x03, 0x63, 0x43, 0x0f, 0x6f, 0xe3, 0xaf, 0x87, 0x13, 0xf3, 0xbf].map((control) => llcControlFrame(0x06, 0x06, u8(control), new Uint8Array(20))),
    llcControlFrame(0x42, 0x42, u8(0x03), new Uint8Array(0)),
    ethernet(0x0800, ipv4(47, concat(u16(0), u16(0x0800), ipv4(17, udp(1, 53))))),
    ethernet(0x86dd, ipv6(58, icmp(136, 0, new Uint8Array(20)), { destination: "ff02::1" })),
    ethernet(0x86dd, ipv6(58, icmp(133, 0))),
    ethernet(0x86dd, ipv6(58, icmp(134, 0, new Uint8Array(12)))),
  ];
  return frames.map((data) => ({ data }));
}

/** Frames cut to small snap lengths (14 to 96 bytes) with their wire length kept, as `tcpdump -s N` writes them. */
export function truncatedEthernet(): CapturedPacket[] {
  const packets: CapturedPacket[] = [];
  const whole = [...craftedEthernet().filter((packet) => packet.length === undefined), ...craftedLinkProtocols()];
  const snaps = [14, 18, 22, 26, 34, 38, 42, 46, 54, 58, 62, 68, 74, 82, 96];
  whole.forEach((packet, i) => {
    const snap = snaps[i % snaps.length]!;
    if (packet.data.length > snap) packets.push({ data: packet.data.slice(0, snap), length: packet.data.length });
    const other = snaps[(i * 7 + 3) % snaps.length]!;
    if (packet.data.length > other && other !== snap) packets.push({ data: packet.data.slice(0, other), length: packet.data.length });
  });
  return packets;
}
