/** Builders for crafted test packets (big-endian network headers). */

export type Bytes = Uint8Array;

export function concat(...parts: Bytes[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function u8(...values: number[]): Bytes {
  return Uint8Array.from(values.map((v) => v & 0xff));
}

export function u16(value: number): Bytes {
  return u8(value >> 8, value);
}

export function u32(value: number): Bytes {
  return u8(value >>> 24, value >>> 16, value >>> 8, value);
}

export function mac(text: string): Bytes {
  return Uint8Array.from(text.split(":").map((p) => parseInt(p, 16)));
}

export function ipv4Address(text: string): Bytes {
  return Uint8Array.from(text.split(".").map(Number));
}

export function ipv6Address(text: string): Bytes {
  const [head, tail] = text.split("::") as [string, string | undefined];
  const groups = (part: string | undefined) => (part ? part.split(":").map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return concat(...all.map(u16));
}

export function checksum(data: Bytes): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) sum += (data[i]! << 8) | (data[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export const defaultSourceMac = "02:00:00:00:00:01";
export const defaultDestinationMac = "02:00:00:00:00:02";

export function ethernet(type: number, payload: Bytes, options: { source?: string; destination?: string } = {}): Bytes {
  return concat(mac(options.destination ?? defaultDestinationMac), mac(options.source ?? defaultSourceMac), u16(type), payload);
}

/** 802.1Q/802.1ad tag: TPID, then TCI (priority 0), then the inner type. */
export function vlanTag(tpid: number, id: number): Bytes {
  return concat(u16(tpid), u16(id & 0xfff));
}

/** Ethernet frame with VLAN tags (outermost first). */
export function ethernetVlan(tags: [number, number][], type: number, payload: Bytes, options: { source?: string; destination?: string } = {}): Bytes {
  const tagBytes = tags.map(([tpid, id]) => vlanTag(tpid, id));
  return concat(mac(options.destination ?? defaultDestinationMac), mac(options.source ?? defaultSourceMac), ...tagBytes, u16(type), payload);
}

export interface Ipv4Options {
  source?: string;
  destination?: string;
  ttl?: number;
  /** Fragment offset in 8-byte units. */
  fragmentOffset?: number;
  moreFragments?: boolean;
  dontFragment?: boolean;
  options?: Bytes;
  id?: number;
}

export function ipv4(protocol: number, payload: Bytes, o: Ipv4Options = {}): Bytes {
  const options = o.options ?? new Uint8Array(0);
  const headerLength = 20 + options.length;
  const flags = (o.dontFragment ? 0x4000 : 0) | (o.moreFragments ? 0x2000 : 0) | (o.fragmentOffset ?? 0);
  const header = concat(
    u8(0x40 | (headerLength / 4), 0), u16(headerLength + payload.length), u16(o.id ?? 1), u16(flags),
    u8(o.ttl ?? 64, protocol), u16(0), ipv4Address(o.source ?? "10.0.0.1"), ipv4Address(o.destination ?? "10.0.0.2"), options,
  );
  const sum = checksum(header);
  header[10] = sum >> 8;
  header[11] = sum & 0xff;
  return concat(header, payload);
}

export interface Ipv6Options {
  source?: string;
  destination?: string;
  hopLimit?: number;
}

export function ipv6(nextHeader: number, payload: Bytes, o: Ipv6Options = {}): Bytes {
  return concat(u32(0x60000000), u16(payload.length), u8(nextHeader, o.hopLimit ?? 64),
    ipv6Address(o.source ?? "2001:db8::1"), ipv6Address(o.destination ?? "2001:db8::2"), payload);
}

/** Sets the TCP or UDP checksum of a packet from ipv4() or ipv6() (no extension headers) to the right one for its bytes; returns the packet. */
export function withTransportChecksum(packet: Bytes): Bytes {
  const version = packet[0]! >> 4;
  const protocol = version === 4 ? packet[9]! : packet[6]!;
  const segment = packet.subarray(version === 4 ? (packet[0]! & 0x0f) * 4 : 40);
  const field = protocol === 6 ? 16 : 6;
  segment[field] = segment[field + 1] = 0;
  // The pseudo-header's one's-complement sum is the same for both versions: addresses, protocol, length.
  const sum = checksum(concat(version === 4 ? packet.subarray(12, 20) : packet.subarray(8, 40), u16(protocol), u16(segment.length), segment)) || 0xffff;
  segment[field] = sum >> 8;
  segment[field + 1] = sum & 0xff;
  return packet;
}

/** A generic IPv6 extension header (hop-by-hop 0, routing 43, destination options 60): 8 bytes. */
export function ipv6Extension(nextHeader: number, extra = 0): Bytes {
  return concat(u8(nextHeader, extra), new Uint8Array(6 + extra * 8));
}

export function ipv6Fragment(nextHeader: number, offset: number, more: boolean): Bytes {
  return concat(u8(nextHeader, 0), u16((offset << 3) | (more ? 1 : 0)), u32(0x1234));
}

/** Authentication header: length field in 4-byte units minus 2; 12 bytes of fixed header + ICV. */
export function authenticationHeader(nextHeader: number): Bytes {
  return concat(u8(nextHeader, 4), u16(0), u32(0x100), u32(1), new Uint8Array(12));
}

export const TCP = { fin: 0x01, syn: 0x02, rst: 0x04, push: 0x08, ack: 0x10, urg: 0x20, ece: 0x40, cwr: 0x80 };

export function tcp(sourcePort: number, destinationPort: number, flags: number, payload: Bytes = new Uint8Array(0)): Bytes {
  return concat(u16(sourcePort), u16(destinationPort), u32(1000), u32(flags & TCP.ack ? 2000 : 0), u8(0x50, flags), u16(65535), u16(0), u16(0), payload);
}

export function udp(sourcePort: number, destinationPort: number, payload: Bytes = new Uint8Array(4)): Bytes {
  return concat(u16(sourcePort), u16(destinationPort), u16(8 + payload.length), u16(0), payload);
}

export function sctp(sourcePort: number, destinationPort: number): Bytes {
  return concat(u16(sourcePort), u16(destinationPort), u32(0x11223344), u32(0), u8(1, 0), u16(4));
}

export function icmp(type: number, code: number, payload: Bytes = new Uint8Array(8)): Bytes {
  return concat(u8(type, code), u16(0), payload);
}

export function igmp(type: number, group: string): Bytes {
  return concat(u8(type, 0), u16(0), ipv4Address(group));
}

export function arp(operation: number, senderIp: string, targetIp: string): Bytes {
  return concat(u16(1), u16(0x0800), u8(6, 4), u16(operation), mac(defaultSourceMac), ipv4Address(senderIp), mac("00:00:00:00:00:00"), ipv4Address(targetIp));
}

export function mplsLabel(label: number, bottom: boolean, ttl = 64): Bytes {
  return u32(((label << 12) | (bottom ? 0x100 : 0) | ttl) >>> 0);
}

export function pppoeSession(sessionId: number, pppProtocol: number, payload: Bytes): Bytes {
  return concat(u8(0x11, 0), u16(sessionId), u16(payload.length + 2), u16(pppProtocol), payload);
}

export function pppoeDiscovery(code: number): Bytes {
  return concat(u8(0x11, code), u16(0), u16(0));
}

export function geneve(vni: number, protocol: number, inner: Bytes, optionWords = 0): Bytes {
  return concat(u8(optionWords & 0x3f, 0), u16(protocol), u32((vni << 8) >>> 0), new Uint8Array(optionWords * 4), inner);
}

export function vxlan(vni: number, inner: Bytes): Bytes {
  return concat(u8(0x08, 0, 0, 0), u32((vni << 8) >>> 0), inner);
}

/** 802.3 frame with an LLC header. */
export function llcFrame(dsap: number, ssap: number, payload: Bytes): Bytes {
  const body = concat(u8(dsap, ssap, 0x03), payload);
  return concat(mac(defaultDestinationMac), mac(defaultSourceMac), u16(body.length), body);
}

/** Linux cooked v1 header around a network-layer payload. */
export function linuxSll(packetType: number, protocol: number, payload: Bytes): Bytes {
  return concat(u16(packetType), u16(1), u16(6), mac(defaultSourceMac), u8(0, 0), u16(protocol), payload);
}

/** Linux cooked v2 header around a network-layer payload. */
export function linuxSll2(packetType: number, protocol: number, payload: Bytes, interfaceIndex = 1): Bytes {
  return concat(u16(protocol), u16(0), u32(interfaceIndex), u16(1), u8(packetType, 6), mac(defaultSourceMac), u8(0, 0), payload);
}

/** 802.3 frame with an LLC header of any control field (1 byte for U frames, 2 for I and S frames). */
export function llcControlFrame(dsap: number, ssap: number, control: Bytes, payload: Bytes): Bytes {
  const body = concat(u8(dsap, ssap), control, payload);
  return concat(mac(defaultDestinationMac), mac(defaultSourceMac), u16(body.length), body);
}

/** 802.3 frame with LLC/SNAP (AA AA 03, OUI, type). */
export function snapFrame(oui: number, type: number, payload: Bytes): Bytes {
  return llcControlFrame(0xaa, 0xaa, u8(0x03), concat(u8(oui >> 16, oui >> 8, oui), u16(type), payload));
}

/**
 * A DECnet Phase IV routing header after its 2-byte little-endian length:
 * short (flags 0x02) or long (0x06) format, optionally preceded by one pad byte (flags 0x81).
 * Addresses as area.node, stored little-endian as DECnet does.
 */
export function decnetData(destination: string, source: string, format: "short" | "long", padded: boolean): Bytes {
  const address = (text: string) => {
    const [area, node] = text.split(".").map(Number) as [number, number];
    const value = (area << 10) | node;
    return u8(value & 0xff, value >> 8);
  };
  const header = format === "short"
    ? concat(u8(0x02), address(destination), address(source), u8(0))
    : concat(u8(0x06), u8(0, 0), u8(0xaa, 0, 4, 0), address(destination), u8(0, 0), u8(0xaa, 0, 4, 0), address(source), u8(0, 0, 0));
  const body = concat(padded ? u8(0x81) : new Uint8Array(0), header, new Uint8Array(20));
  return concat(u8(body.length & 0xff, body.length >> 8), body);
}
