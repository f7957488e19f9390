/** Filter expressions the differential tests run through both tcpdump and netbpf. */

const hosts = [
  "host 10.0.0.1", "src host 10.0.0.1", "dst host 10.0.0.1", "host 10.0.0.2", "src 10.0.0.2", "dst 8.8.8.8",
  "host 192.168.1.5", "ip host 10.0.0.1", "arp host 10.0.0.1", "rarp host 10.0.0.3", "src and dst host 127.0.0.1",
  "src or dst host 10.0.0.2", "dst or src 10.0.0.2", "host localhost", "ip src localhost", "host 10.0.0.1 or 10.0.0.2",
  "host 10.0.0.1 and not 10.0.0.2", "not host 10.0.0.1 and 8.8.8.8", "host 10.0.0.1 and (10.0.0.2 or 8.8.8.8)",
  "host 2001:db8::1", "ip6 host 2001:db8::2", "src host 2001:db8::5", "dst host 2001:db8:1::53", "host ::1",
  "ip6 src ::1 and ip6 dst ::1", "host 10", "host 10.0", "host 10.0.0", "arp dst host 10.0.0.2", "ip dst 224.0.0.251",
];
const nets = [
  "net 10", "net 10.0", "net 10.0.0", "net 10.0.0.0/8", "src net 10.0.0.0/24", "dst net 192.168.0.0/16",
  "net 172.16.0.0 mask 255.240.0.0", "src net 172.16.0.0 mask 255.255.0.0", "net 0.0.0.0/0", "net 10.0.0.1/32",
  "ip net 224.0.0.0/4", "arp net 10.0.0.0/24", "net 2001:db8::/32", "src net 2001:db8::/64", "dst net 2001:db8:1::/48",
  "ip6 net ::/0", "net 2001:db8::/33", "net 192.168", "not net 127", "dst net 8.8.8.0/24 or src net 192.168.1.0/24",
];
const ports = [
  "port 80", "tcp port 80", "udp port 53", "sctp port 80", "src port 80", "dst port 80", "tcp dst port 80",
  "udp src port 5353", "port 53", "port 22", "tcp port 22 or 80", "not tcp port 80 and 22", "port http", "tcp port http",
  "port domain", "udp port domain", "port ssh", "port 6081", "udp port 4789", "src or dst port 443",
  "src and dst port 80", "src and dst port 6081", "port 443", "tcp port 443 and host 192.168.1.5", "port 0",
  "portrange 6000-6010", "portrange 1-100", "tcp portrange 20-25", "udp portrange 50-60", "dst portrange 7000-7010",
  "src portrange 6000-6010", "portrange 100-1", "portrange 80", "sctp portrange 70-90", "portrange 53-53",
  "portrange http-443", "portrange http-https", "portrange ssh-http", "portrange domain-https", "portrange 20-http",
  "port 80 or port 53", "tcp port 80 and not src port 12345", "ip and port 80", "ip6 and port 80", "port 2000 or port 9999",
  "udp port 1000", "port 3333", "port 9", "port 12345", "udp and port 80",
];
const protocols = [
  "ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "igmp", "igrp", "pim", "vrrp", "ah", "esp",
  "ip proto 6", "ip proto 17", "ip proto 47", "ip proto \\tcp", "ip proto \\udp", "ip6 proto 6", "ip6 proto 58",
  "ip6 proto 44", "ip6 proto 0", "proto 17", "proto \\icmp", "proto 51", "ip proto 300", "ether proto \\ip",
  "ether proto \\ip6", "ether proto \\arp", "ether proto \\rarp", "ether proto 0x88cc", "ether proto 0x6003",
  "ether proto 0x8847", "ether proto 0x8100", "decnet", "lat", "sca", "moprc", "mopdl", "ether proto 66",
  "ether proto 6", "ether proto 254", "ip6 protochain 6", "ip6 protochain 17", "ip6 protochain 44", "ip6 protochain 51",
  "ip protochain 6", "ip protochain 51", "protochain 6", "protochain 17", "protochain \\tcp", "ip6 protochain 58",
  "tcp or udp", "not ip", "not tcp and not udp", "icmp or icmp6", "ip and not tcp", "ip6 and not ip6 proto 6",
];
const link = [
  "ether host 02:00:00:00:00:01", "ether src 02:00:00:00:00:01", "ether dst 02:00:00:00:00:02",
  "ether host 02-00-00-00-00-02", "ether dst 0200.0000.0002", "ether host 020000000001", "ether src 0a:0b:0c:0d:0e:0f",
  "ether dst ff:ff:ff:ff:ff:ff", "ether broadcast", "broadcast", "ether multicast", "multicast", "ip broadcast",
  "ip multicast", "ip6 multicast", "not broadcast and not multicast", "ether[0] & 1 != 0", "ether[12:2] = 0x800",
  "link[12:2] = 0x86dd", "ether src 02:00:00:00:00:01 and ether dst 02:00:00:00:00:02", "ether src and dst 02:00:00:00:00:01",
  "llc", "less 60", "less 64", "greater 100", "greater 60", "len > 100", "len <= 60", "len = 54", "len - 14 > 50",
];
const encapsulations = [
  "vlan", "vlan 10", "vlan 20", "vlan 100", "vlan 200", "vlan 300", "vlan 4095", "vlan and ip", "vlan 10 and ip",
  "vlan and ip6", "vlan and tcp port 80", "vlan 100 and vlan 200", "vlan and vlan and ip", "vlan 100 and vlan 200 and tcp",
  "vlan or ip", "ip or vlan", "vlan and arp", "vlan 10 and host 10.0.0.1", "vlan 10 and udp port 53",
  "vlan and vlan 10 and vlan 20", "not vlan", "vlan and not ip", "vlan and pppoes and ip", "vlan and pppoes 5",
  "mpls", "mpls 5", "mpls 100000", "mpls 7", "mpls and ip", "mpls and ip6", "mpls 5 and ip", "mpls and mpls 1024",
  "mpls 100000 and mpls 1024 and ip6", "mpls and tcp port 80", "mpls and host 10.0.0.1", "mpls and udp port 53",
  "mpls and mpls and ip6", "not mpls", "mpls or ip", "mpls 5 and tcp",
  "pppoed", "pppoes", "pppoes 0x27", "pppoes 3", "pppoes and ip", "pppoes and ip6", "pppoes 0x27 and tcp port 80",
  "pppoes and udp", "pppoes and host 10.0.0.1", "pppoes 3 and ip6", "not pppoes", "pppoes or ip",
];
const arithmetic = [
  "ip[0] & 0xf != 5", "ip[6:2] & 0x1fff = 0", "ip[9] = 6", "ip[8] = 1", "ip[2:2] > 40", "ip[12:4] = 0x0a000001",
  "ip[16] >= 224", "ip6[6] = 17", "ip6[7] = 64", "ip6[40] = 17", "arp[7] = 1", "arp[6:2] = 2", "rarp[7] = 3",
  "tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0", "tcp[tcpflags] & (tcp-rst|tcp-ack) == (tcp-rst|tcp-ack)",
  "tcp[tcpflags] = tcp-syn", "tcp[tcpflags] & tcp-push != 0", "tcp[tcpflags] & (tcp-urg|tcp-ece|tcp-cwr) != 0",
  "tcp[13] & 0x12 = 0x12", "tcp[0:2] = 80", "tcp[2:2] = 80", "tcp[12] >> 4 = 5", "udp[0:2] = 53", "udp[2:2] = 53",
  "udp[4:2] > 8", "icmp[icmptype] = icmp-echo", "icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
  "icmp[icmptype] = icmp-unreach", "icmp[icmpcode] = 3", "icmp6[icmp6type] = icmp6-echo", "icmp6[icmp6type] = icmp6-neighborsolicit",
  "icmp6[0] = 135", "icmp6[icmp6type] != icmp6-echo", "igmp[0] = 0x16", "sctp[0:2] = 80", "sctp[2:2] = 9999",
  "tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
  "1 - tcp[12] > 0", "tcp[12] - 1 > 0", "ip[0] > tcp[1]", "tcp[udp[0]] > 1", "2 * tcp[0] > 1", "ip[9] + udp[0] > 0",
  "ip[1 ^ 2 | 3] = 0", "ip[0] ^ 0x45 = 0", "ip[0] & 0xf0 = 0x40", "ip[0] | 1 = 0x45", "ip[2:2] % 7 = 3", "ip[2:2] / 4 > 10",
  "len % 3 + 1 = 2", "-len % 7 > 100", "ip[2:2] % 7 * 2 = 3", "1 <= (-len % length % ip[6:2])", "3 % 14 & ip[1] = 0", "len ^ 3 * 2 > 1",
  "ip[2:2] * 2 > 100", "(ip[2:2] + 1) >> 1 > 20", "ip[0] << 1 = 0x8a", "-ip[0] < 0", "- 1 > 0", "0 = 0", "1 > 2",
  "ip[2:2] - 100 > 0", "len - ip[2:2] = 14", "ip[9] = 17 and udp[2:2] = 53", "ip[0:4] & 0xffff0000 = 0x45000000",
  "ether[14] = 0x45", "ether[len - 1] = 0", "ip[ip[0] & 0xf] >= 0", "tcp[tcp[12] >> 4] >= 0", "ip[2:2] / ip[8] > 0",
  "ip[2:2] % ip[1] = 0", "ip[0] << ip[1] > 0", "ip[0] >> (ip[8] - 60) > 0", "ip[3] << 31 = 0", "ip[2:2] / 0x10 > 1",
  "5 > ip[0] & 0xf", "ip[9] - tcp[13] < 200", "udp[8:4] = 0", "tcp[20:4] = 0x01020304", "ip6[0:4] & 0xf0000000 = 0x60000000",
  "ip[16:4] = 0xffffffff", "ip[6] & 0x40 != 0", "ip[6] & 0x20 != 0", "ip[6:2] & 0x1fff != 0",
  "byte 12 = 8", "byte 23 > 10", "byte 23 < 10",
];
const combined = [
  "tcp and (port 80 or port 22)", "(tcp or udp) and not port 53", "not (ip or ip6)", "ip and (tcp or udp) and dst port 80",
  "host 10.0.0.1 and (port 80 or port 53)", "tcp[tcpflags] & tcp-syn != 0 and not tcp[tcpflags] & tcp-ack != 0",
  "icmp or arp or (udp and port 53)", "ip6 and (tcp or icmp6)", "! tcp && ! udp", "tcp || udp && port 53",
  "not not tcp", "((tcp))", "(tcp or udp) and (host 10.0.0.1 or host 2001:db8::1)", "ip and tcp and port 80 or arp",
  "tcp port 80 and (81 or 82) or udp", "port 80 or (tcp)", "host 10.0.0.1 and (port 80)", "tcp port 80 and (host 10.0.0.1) or 81",
  "not ether multicast and ip", "vlan or mpls or pppoes", "greater 60 and less 90", "(len > 60) and ip",
  "dst port 80 and src net 10.0.0.0/8", "src net 10 and dst net 10", "udp and (dst 8.8.8.8 or dst 255.255.255.255)",
  "ip and ip[8] = 1 or icmp", "tcp src port 12345 or tcp dst port 12345", "src port 80 and tcp or udp",
];
const tunnels = [
  "geneve", "geneve 5", "geneve 7", "geneve 3", "geneve 9", "geneve and ip", "geneve 5 and tcp port 80", "geneve and ip6",
  "geneve and udp port 53", "geneve and host 192.168.7.1", "geneve and ether src 02:00:00:00:00:01", "geneve and ether broadcast",
  "geneve and multicast", "geneve or udp", "not geneve", "geneve and vlan", "geneve 7 and ip and udp", "udp and geneve",
  "geneve and tcp[tcpflags] & tcp-syn != 0", "geneve and ip[9] = 17", "geneve and len > 100",
];
const metadata = [
  "inbound", "outbound", "inbound and tcp", "not outbound", "outbound or icmp", "ifindex 2", "ifindex 1 and udp", "ifindex 3",
];
const inheritance = [
  "tcp dst port 80 or 22 or 53", "src host 10.0.0.1 or 10.0.0.2 and dst 8.8.8.8", "ip6 and (tcp port 80 or 22)",
  "host 10.0.0.1 or (10.0.0.2 or 8.8.8.8)", "src net 10.0.0.0/24 or 192.168.1.0/24", "port 80 or 53 or 22",
  "tcp port (80 or 22)", "host (10.0.0.1 or 10.0.0.2)", "not port 80 and not 53", "not port 80 and 53",
  "ether src 02:00:00:00:00:01 or 0a:0b:0c:0d:0e:0f", "udp portrange 50-60 or 5000-6000", "ip proto 6 or 17", "proto (6 or 17)",
  "port 0x50", "port 0120", "vlan 0xa", "ip[0x9] = 0x6", "ip[011] = 6", "ether proto \\loopback", "ip and not (host 10.0.0.1 or host 10.0.0.2)",
  "tcp or udp and icmp", "not tcp or udp", "! (tcp or udp) and ip", "len >= 100 and len <= 200", "ether[0] & 0 = 0",
  "ip6[6] = 44 and ip6[40] = 6", "host 10.0.0.1 and port 80 or 53", "dst host 10.0.0.2 and (src 10.0.0.1 or 8.8.8.8)",
  "tcp and dst port 22 or dst port 80 and src port 12345", "(host 10.0.0.1) and 10.0.0.2", "host 10.0.0.1 and not (10.0.0.2)",
  "not (port 80) or 22", "port 80 and (tcp)", "net 10 or 192.168", "ether host 02:00:00:00:00:01 and not 02:00:00:00:00:02",
  "ip proto 17 and not 6", "portrange 1-100 and not 53-53",
];
const errors = [
  "port 99999", "tcp[", "vlan 5000", "ip host ::1", "net 10.0.0.1/8", "host 10.0.0.0/8", "(tcp) or 80", "tcp or 80",
  "10.0.0.1", "port", "host", "ip[0:3] = 1", "tcp[0] / 0 = 1", "ip6 host 10.0.0.1", "ether host 10.0.0.1",
  "mpls and arp", "and", "tcp and", "(tcp", "tcp)", "tcp port 80 80", "host nosuchhostnamexyz", "port nosuchservice",
  "ether proto \\nosuch", "mpls 2000000", "pppoes 70000", "net 10.0.0.0/33", "tcp src", "portrange 70000-70001",
  "ip proto \\nosuchproto", "udp port ssh", "ip[0] << 32 = 0", "ip[0] % 0 = 1", "ether host 1:2:3:4:5", "host 1.2.3.4.5",
  "mpls and vlan", "gateway 10.0.0.1", "ip6 protochain", "arp proto 6", "tcp proto 6", "src port 80 80",
  "ip[9] = 08", "ip[2:2] / (1 - 1) > 0", "geneve 16777216", "vlan 1 and", "not", "()", "host 10.0.0.1 or", "port 80 or port",
  "ip[0:4] = 0x100000000", "tcp[13] = tcp-nosuch", "ether proto", "less", "greater x", "ip6 net 2001:db8::1/64",
  "net 2001:db8::/129", "src portrange", "ip[1:2:3] = 1", "ether src 02:00:00:00:00:01/8",
];

/** Seeded random combinations of valid primitives (and/or/not, parentheses), to exercise the optimiser emulation. */
function combinations(count: number, seed: number): string[] {
  const atoms = [
    "tcp", "udp", "ip", "ip6", "arp", "icmp", "icmp6", "port 80", "port 53", "host 10.0.0.1", "net 10.0.0.0/24", "vlan",
    "tcp port 80", "udp port 53", "src port 12345", "dst host 10.0.0.2", "ip6 host 2001:db8::2", "ether broadcast",
    "multicast", "less 60", "greater 70", "ip[9] = 17", "tcp[tcpflags] & tcp-syn != 0", "ip6 protochain 6", "ip proto 47",
    "portrange 50-60", "ip[2:2] > 40", "icmp[icmptype] = icmp-echo", "sctp", "len > 64", "ether src 02:00:00:00:00:01",
    "ip6[6] = 44", "ip6 multicast", "ip multicast", "igmp", "pppoes", "mpls",
  ];
  const results: string[] = [];
  let state = seed;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296;
  };
  const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)]!;
  const build = (depth: number): string => {
    if (depth === 0 || next() < 0.3) return (next() < 0.2 ? "not " : "") + pick(atoms);
    const left = build(depth - 1);
    const right = build(depth - 1);
    const joined = `${left} ${pick(["and", "or"])} ${right}`;
    return next() < 0.5 ? `(${joined})` : joined;
  };
  while (results.length < count) results.push(build(3));
  return results;
}

export const differentialExpressions: string[] = [
  ...hosts, ...nets, ...ports, ...protocols, ...link, ...encapsulations, ...arithmetic, ...combined, ...tunnels, ...metadata,
  ...inheritance, ...errors, ...combinations(150, 424242), ...combinations(150, 77)
];

/**
 * Expressions where libpcap's optimiser removes a load that ours keeps (it
 * reorders tests of an `or` chain), so a packet truncated inside that field is
 * rejected by netbpf and accepted by tcpdump. Only truncated packets may differ.
 */
export const knownTruncationDifferences = new Map<string, string>([
  ["greater 70 or tcp port 80 or src port 12345 and (less 60 or less 60)",
    "libpcap tests src port 12345 before loading the destination port; a frame cut inside the destination port differs"],
]);

/** Whether two selections agree, allowing the documented differences on truncated packets. */
export function selectionsAgree(
  expression: string,
  got: number[] | "error",
  want: number[] | "error",
  packets: { data: Uint8Array; length?: number }[],
): boolean {
  if (JSON.stringify(got) === JSON.stringify(want)) return true;
  if (!knownTruncationDifferences.has(expression) || got === "error" || want === "error") return false;
  const differing = [...got.filter((i) => !want.includes(i)), ...want.filter((i) => !got.includes(i))];
  return differing.every((i) => (packets[i]!.length ?? packets[i]!.data.length) > packets[i]!.data.length);
}
