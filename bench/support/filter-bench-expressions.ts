/**
 * The filter-cost set: the expressions bench/filter-cost.ts compares with
 * clang's, each with the C file (bench/c/filters/<name>.c) written for it.
 * test/filter/filter-program-size.test.ts pins the size of the programs
 * generated for them.
 */
export const filterBenchExpressions: readonly { name: string; expression: string }[] = [
  { name: "tcp-port-80", expression: "tcp port 80" },
  { name: "udp-dst-port-53", expression: "udp and dst port 53" },
  { name: "host", expression: "host 192.0.2.1" },
  { name: "net-not-port-22", expression: "net 10.0.0.0/8 and not port 22" },
  { name: "ip6-and-tcp", expression: "ip6 and tcp" },
  { name: "tcp-syn", expression: "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn" },
  { name: "icmp-echo", expression: "icmp[icmptype] = icmp-echo" },
  { name: "vlan-and-tcp", expression: "vlan and tcp" },
  { name: "portrange", expression: "portrange 1000-2000" },
  { name: "ether-src", expression: "ether src 02:00:00:00:00:01" },
  { name: "greater-100", expression: "greater 100" },
  { name: "gre", expression: "ip proto 47 or ip6 proto 47" },
];
