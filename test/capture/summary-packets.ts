/**
 * Crafted packets for differential tests of the summaries against tcpdump:
 * every protocol and corner the summarizer handles, on each link type.
 */
const mac1 = [2, 0, 0, 0, 0, 1];
const mac2 = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
const mac3 = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const v6a = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1];
const v6b = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 2];

const u16 = (value: number) => [value >> 8, value & 0xff];
const u32 = (value: number) => [(value >>> 24) & 0xff, (value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff];
const bytes = (text: string) => [...Buffer.from(text)];

export function ethernet(etherType: number, payload: number[], destination = mac3, source = mac1): Buffer {
  return Buffer.from([...destination, ...source, ...u16(etherType), ...payload]);
}

function ipv4(protocol: number, payload: number[], options: { flags?: number; ttl?: number; tos?: number } = {}): number[] {
  return [0x45, options.tos ?? 0, ...u16(20 + payload.length), ...u16(1234), ...u16(options.flags ?? 0x4000), options.ttl ?? 64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, ...payload];
}

function ipv6(nextHeader: number, payload: number[]): number[] {
  return [0x60, 0, 0, 0, ...u16(payload.length), nextHeader, 64, ...v6a, ...v6b, ...payload];
}

function udp(source: number, destination: number, payload: number[]): number[] {
  return [...u16(source), ...u16(destination), ...u16(8 + payload.length), 0, 0, ...payload];
}

function tcp(source: number, destination: number, flags: number, o: { seq?: number; ack?: number; options?: number[]; payload?: number[] } = {}): number[] {
  const options = o.options ?? [];
  return [...u16(source), ...u16(destination), ...u32(o.seq ?? 1000), ...u32(o.ack ?? 0), ((20 + options.length) / 4) << 4, flags, ...u16(512), 0, 0, 0, 0, ...options, ...(o.payload ?? [])];
}

function icmp(type: number, code: number, rest: number[], payload: number[] = []): number[] {
  return [type, code, 0, 0, ...rest, ...payload];
}

const arpRequest = [...u16(1), ...u16(0x800), 6, 4, ...u16(1), ...mac1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2];
const arpReply = [...u16(1), ...u16(0x800), 6, 4, ...u16(2), ...mac3, 10, 0, 0, 2, ...mac1, 10, 0, 0, 1];

export interface CraftedPacket {
  data: Buffer;
  /** Why our summary deliberately differs from tcpdump's (in which modes), if it does. */
  differs?: { reason: string; verboseOnly?: boolean };
}

export function craftedEthernetPackets(): CraftedPacket[] {
  const packets: CraftedPacket[] = [
    { data: ethernet(0x806, arpRequest, mac2) },
    { data: ethernet(0x806, arpReply) },
    { data: ethernet(0x8100, [...u16((3 << 13) | 10), ...u16(0x800), ...ipv4(17, udp(40000, 40001, bytes("abc")))]) },
    { data: ethernet(0x800, ipv4(6, tcp(40000, 40002, 0x02, { seq: 5, options: [2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0] }))) },
    { data: ethernet(0x800, ipv4(6, tcp(40000, 40002, 0x14, { seq: 5, ack: 77 }))) },
    { data: ethernet(0x800, ipv4(6, tcp(40000, 40002, 0x04, { seq: 5 }))) },
    { data: ethernet(0x800, ipv4(6, tcp(40000, 40002, 0xf9, { seq: 5, ack: 9, payload: bytes("hi") }))) },
    { data: ethernet(0x800, ipv4(6, tcp(40000, 40002, 0x10, { seq: 7, ack: 80, options: [1, 1, 5, 10, ...u32(100), ...u32(120)] }))) },
    { data: ethernet(0x800, ipv4(1, icmp(3, 1, [0, 0, 0, 0], ipv4(6, tcp(1, 2, 2).slice(0, 8))))) },
    { data: ethernet(0x800, ipv4(1, icmp(3, 3, [0, 0, 0, 0], ipv4(17, udp(5000, 6000, []))))) },
    { data: ethernet(0x800, ipv4(1, icmp(3, 4, [0, 0, ...u16(1500)], ipv4(17, udp(5000, 6000, []))))) },
    { data: ethernet(0x800, ipv4(1, icmp(3, 13, [0, 0, 0, 0], ipv4(17, udp(5000, 6000, []))))) },
    { data: ethernet(0x800, ipv4(1, icmp(3, 2, [0, 0, 0, 0], ipv4(17, udp(5000, 6000, []))))) },
    { data: ethernet(0x800, ipv4(1, icmp(3, 0, [0, 0, 0, 0], ipv4(17, udp(5000, 6000, []))))) },
    { data: ethernet(0x800, ipv4(1, icmp(11, 0, [0, 0, 0, 0], ipv4(17, udp(5000, 6000, []))))) },
    { data: ethernet(0x800, ipv4(1, icmp(11, 1, [0, 0, 0, 0], ipv4(17, udp(5000, 6000, []))))) },
    { data: ethernet(0x800, ipv4(1, icmp(5, 1, [10, 0, 0, 9], ipv4(17, udp(5000, 6000, []))))) },
    { data: ethernet(0x800, ipv4(1, icmp(13, 0, [0, 1, 0, 2], new Array(12).fill(0)))) },
    { data: ethernet(0x800, ipv4(1, icmp(8, 0, [0, 1, 0, 2], bytes("data")))) },
    { data: ethernet(0x800, ipv4(1, icmp(0, 0, [0, 1, 0, 2], bytes("data")), { tos: 0x10, flags: 0, ttl: 1 })) },
    { data: ethernet(0x800, ipv4(17, udp(40000, 40001, bytes("x")), { flags: 0x2000 })) },
    { data: ethernet(0x800, ipv4(17, udp(4000, 4001, bytes("x")), { flags: 0x6000 })) },
    { data: ethernet(0x800, ipv4(17, udp(4000, 4001, bytes("x")), { flags: 0x8000, tos: 0x03 })) },
    { data: ethernet(0x800, ipv4(17, bytes("abcdefgh"), { flags: 0x0010 })) },
    { data: ethernet(0x800, ipv4(253, bytes("abcd"))) },
    { data: ethernet(0x86dd, ipv6(58, icmp(1, 4, [0, 0, 0, 0], ipv6(17, udp(1, 2, []))))) },
    { data: ethernet(0x86dd, ipv6(58, icmp(1, 3, [0, 0, 0, 0], ipv6(17, udp(1, 2, []))))) },
    { data: ethernet(0x86dd, ipv6(58, icmp(3, 0, [0, 0, 0, 0], ipv6(17, udp(1, 2, []))))) },
    { data: ethernet(0x86dd, ipv6(58, icmp(135, 0, [0, 0, 0, 0], v6b))) },
    { data: ethernet(0x86dd, ipv6(58, icmp(136, 0, [0x60, 0, 0, 0], v6b))) },
    { data: ethernet(0x86dd, ipv6(58, icmp(128, 0, [0, 1, 0, 2], bytes("data")))) },
    { data: ethernet(0x86dd, ipv6(58, icmp(129, 0, [0, 1, 0, 2], bytes("data")))) },
    { data: ethernet(0x86dd, ipv6(6, tcp(40000, 40002, 0x12, { seq: 5, ack: 1 }))) },
    { data: ethernet(0x86dd, ipv6(17, udp(40000, 40001, bytes("xy")))) },
    { data: ethernet(0x86dd, ipv6(253, bytes("abcd"))) },
    { data: ethernet(0x1234, new Array(30).fill(0)) },
    { data: ethernet(0x800, ipv4(17, udp(40000, 40001, new Array(10).fill(0x78)))).subarray(0, 44) },
    { data: ethernet(0x800, ipv4(6, tcp(40000, 40002, 0x10, { seq: 5, ack: 1, payload: new Array(5).fill(0x7a) }))).subarray(0, 54) },
    { data: ethernet(0x800, ipv4(6, tcp(40000, 40003, 0x02, { seq: 5 }).slice(0, 15))) },
    { data: ethernet(0x800, ipv4(17, udp(40000, 40001, []).slice(0, 5))) },
    { data: ethernet(0x800, ipv4(17, udp(40000, 40001, bytes("ab")))).subarray(0, 24) },
    { data: ethernet(0x800, ipv4(17, udp(40000, 40001, bytes("ab")))).subarray(0, 14) },
    { data: Buffer.concat([ethernet(0x800, ipv4(17, udp(40000, 40001, bytes("ab")))), Buffer.alloc(10)]) },
    { data: Buffer.from([1, 2, 3]) },
    // What tcpdump decodes and we do not (we print the generic form).
    { data: ethernet(0x800, ipv4(47, bytes("abcd"))), differs: { reason: "GRE is not decoded" } },
    { data: ethernet(0x800, ipv4(2, [0x11, 0x64, 0, 0, 0xe0, 0, 0, 1])), differs: { reason: "IGMP is not decoded" } },
    { data: ethernet(0x86dd, ipv6(0, [17, 0, 0, 0, 0, 0, 0, 0, ...udp(1, 2, bytes("q"))])), differs: { reason: "IPv6 extension headers are not decoded" } },
    { data: ethernet(0x88cc, new Array(30).fill(0)), differs: { reason: "LLDP is not decoded" } },
    { data: ethernet(0x800, ipv4(6, tcp(40000, 40003, 0x02, { seq: 5, options: [30, 4, 0, 0] }))) },
    { data: ethernet(0x86dd, ipv6(58, icmp(133, 0, [0, 0, 0, 0]))), differs: { reason: "router solicitation options are not decoded with -v", verboseOnly: true } },
  ];
  return packets;
}

function sll(packetType: number, protocol: number, payload: number[]): Buffer {
  return Buffer.from([...u16(packetType), ...u16(1), ...u16(6), ...mac1, 0, 0, ...u16(protocol), ...payload]);
}

function sll2(packetType: number, protocol: number, payload: number[], ifindex: number): Buffer {
  return Buffer.from([...u16(protocol), 0, 0, ...u32(ifindex), ...u16(1), packetType, 6, ...mac1, 0, 0, ...payload]);
}

export function craftedCookedPackets(): Buffer[] {
  return [
    sll(0, 0x800, ipv4(17, udp(1000, 2000, bytes("ab")))),
    sll(4, 0x86dd, ipv6(17, udp(1000, 2000, bytes("ab")))),
    sll(1, 0x806, arpRequest),
    sll(3, 0x800, ipv4(6, tcp(1, 2, 2))),
    sll(2, 0x800, ipv4(1, icmp(8, 0, [0, 1, 0, 2], bytes("data")))),
  ];
}

/** SLL2 with ifindex 1 (lo: the same name in every namespace). */
export function craftedCookedV2Packets(): Buffer[] {
  return [
    sll2(0, 0x800, ipv4(17, udp(1000, 2000, bytes("ab"))), 1),
    sll2(4, 0x86dd, ipv6(17, udp(1000, 2000, bytes("ab"))), 1),
    sll2(2, 0x806, arpRequest, 1),
  ];
}

export function craftedRawPackets(): Buffer[] {
  return [Buffer.from(ipv4(17, udp(1000, 2000, bytes("ab")))), Buffer.from(ipv6(17, udp(1000, 2000, bytes("ab")))), Buffer.from(ipv4(6, tcp(1, 2, 0x18, { ack: 5, payload: bytes("hello") })))];
}

/**
 * Seeded random Ethernet frames for differential tests: IPv4 and IPv6 with
 * TCP (random flags, sequence numbers, windows, urgent pointers, options
 * from the decoded set, payloads — reset text included), UDP and
 * ICMP / ICMPv6 of the decoded types and codes. Ports stay away from the
 * well-known ones tcpdump would decode as application protocols.
 */
export function randomPackets(seed: number, count: number): Buffer[] {
  let state = seed >>> 0;
  const random = () => (state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const below = (n: number) => Math.floor(random() * n);
  const hosts4 = [[10, 0, 0, 1], [10, 0, 0, 2], [192, 168, 1, 9]];
  const hosts6 = [v6a, v6b, [0xfe, 0x80, ...new Array(13).fill(0), 9]];
  const port = () => [1000, 2000, 5555, 40000, 40001][below(5)]!;
  const ipv4Random = (protocol: number, payload: number[]) =>
    [0x45, below(4) * 4, ...u16(20 + payload.length), ...u16(below(65536)), ...u16(below(2) ? 0x4000 : 0), 1 + below(255), protocol, 0, 0, ...hosts4[below(3)]!, ...hosts4[below(3)]!, ...payload];
  const ipv6Random = (nextHeader: number, payload: number[]) =>
    [0x60, 0, 0, 0, ...u16(payload.length), nextHeader, 1 + below(255), ...hosts6[below(3)]!, ...hosts6[below(3)]!, ...payload];
  const tcpOptions = () => {
    const options: number[] = [];
    for (let i = below(4); i > 0; i--) {
      switch (below(6)) {
        case 0: options.push(1); break;
        case 1: options.push(2, 4, ...u16(below(65536))); break;
        case 2: options.push(3, 3, below(15)); break;
        case 3: options.push(4, 2); break;
        case 4: options.push(8, 10, ...u32(below(2 ** 32)), ...u32(below(2 ** 32))); break;
        default: options.push(1, 1);
      }
    }
    while (options.length % 4) options.push(0);
    return options;
  };
  const tcpRandom = () => {
    const options = tcpOptions();
    const payload = Array.from({ length: below(3) ? 0 : below(50) }, () => below(256));
    return [...u16(port()), ...u16(port()), ...u32(below(2 ** 32)), ...u32(below(2 ** 32)), ((20 + options.length) / 4) << 4, below(256), ...u16(below(65536)), 0, 0, ...u16(below(3) ? 0 : below(65536)), ...options, ...payload];
  };
  /** With `oddLengths`, one datagram in four has a length field that disagrees with its size (shorter, longer, below 8). */
  const udpRandom = (oddLengths = false) => {
    const payload = new Array(below(30)).fill(0x42);
    const length = oddLengths && below(4) === 0 ? below(60) : 8 + payload.length;
    return [...u16(40000 + below(20000)), ...u16(40000 + below(20000)), ...u16(length), 0, 0, ...payload];
  };
  const icmpRandom = () => {
    const type = [0, 3, 4, 5, 8, 11, 12, 13, 15, 16, 17, 18][below(12)]!;
    const code = type === 3 ? below(17) : type === 5 ? below(4) : type === 11 ? below(2) : 0;
    const rest = type === 5 ? [10, 0, 0, below(255)] : type === 3 && code === 4 ? [0, 0, ...u16(below(9000))] : [...u16(below(65536)), ...u16(below(65536))];
    const body = type === 0 || type === 8 || type === 13 ? new Array(below(20)).fill(0x43) : ipv4Random(17, udpRandom());
    return [type, code, 0, 0, ...rest, ...body];
  };
  const icmpv6Random = () => {
    // Not here: unknown unreachable codes (tcpdump dumps the message) and router solicitations (-v decodes their options).
    const type = [1, 3, 128, 129, 135][below(5)]!;
    const code = type === 1 ? below(5) : type === 3 ? below(2) : 0;
    const rest = [...u16(below(65536)), ...u16(below(65536))];
    const body = type === 1 || type === 3 ? ipv6Random(17, udpRandom()) : type === 135 ? hosts6[below(3)]! : new Array(below(20)).fill(0x44);
    return [type, code, 0, 0, ...rest, ...body];
  };
  const packets: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    switch (below(6)) {
      case 0: packets.push(ethernet(0x800, ipv4Random(6, tcpRandom()))); break;
      case 1: packets.push(ethernet(0x800, ipv4Random(17, udpRandom(true)))); break;
      case 2: packets.push(ethernet(0x800, ipv4Random(1, icmpRandom()))); break;
      case 3: packets.push(ethernet(0x86dd, ipv6Random(6, tcpRandom()))); break;
      case 4: packets.push(ethernet(0x86dd, ipv6Random(17, udpRandom(true)))); break;
      default: packets.push(ethernet(0x86dd, ipv6Random(58, icmpv6Random())));
    }
  }
  return packets;
}
