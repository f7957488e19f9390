/**
 * A seeded generator of random pcap-filter(7) expressions over the whole
 * grammar: every primitive family with its qualifiers, encapsulations,
 * arithmetic with byte accessors, and boolean structure (and/or/not, the
 * symbolic forms, parentheses, ids that inherit the qualifiers before them).
 * Values come mostly from what the test captures contain, so expressions
 * select something. `mutateExpression` turns an expression into a nearby,
 * usually invalid one, for the accept/reject comparison.
 */
import { seededRandom } from "../support/seeded-random.js";

/** The primitive families; each generated expression counts toward the ones it used. */
export const expressionFamilies = [
  "host", "net", "port", "portrange", "proto", "protochain", "ether", "protocol", "broadcast", "length", "relation",
  "vlan", "mpls", "pppoe", "tunnel", "byte", "direction", "ifindex", "llc", "decnet", "iso", "other-link", "foreign-link",
] as const;
export type ExpressionFamily = (typeof expressionFamilies)[number];

export interface GeneratedExpression {
  expression: string;
  families: Set<ExpressionFamily>;
}

const ipv4Hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "8.8.8.8", "127.0.0.1", "192.168.1.5", "172.16.3.4", "224.0.0.251", "255.255.255.255", "0.0.0.0", "192.168.7.1", "10", "10.0", "10.0.0"];
const ipv4Networks = ["10", "10.0", "10.0.0", "10.0.0.0/8", "10.0.0.0/24", "192.168.0.0/16", "172.16.0.0/12", "127.0.0.0/8", "224.0.0.0/4", "0.0.0.0/0", "10.0.0.1/32", "172.16.0.0 mask 255.240.0.0", "192.168.1.0 mask 255.255.255.0", "127"];
const ipv6Hosts = ["2001:db8::1", "2001:db8::2", "2001:db8::5", "2001:db8:1::53", "::1", "ff02::1:ff00:2", "fe80::1"];
const ipv6Networks = ["2001:db8::/32", "2001:db8::/64", "2001:db8:1::/48", "::/0", "ff00::/8", "::1/128", "fe80::/10"];
const macs = ["02:00:00:00:00:01", "02:00:00:00:00:02", "0a:0b:0c:0d:0e:0f", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:ff:00:00:02", "02-00-00-00-00-01", "0200.0000.0002", "aa:00:04:00:ff:fe", "01:80:c2:00:00:00"];
const ports = ["80", "53", "22", "443", "12345", "5353", "6081", "4789", "67", "68", "0", "2000", "7001", "9", "http", "domain", "ssh", "bootps", "bootpc", "smtp", "0x50"];
const portRanges = ["6000-6010", "1-100", "20-25", "50-60", "53-53", "100-1", "0-65535", "80", "25-smtp", "bootps-68", "ftp-data-ftp", "http-443", "domain-53"];
const ipProtocolNames = ["\\tcp", "\\udp", "\\icmp", "icmp6", "igmp", "pim", "\\sctp", "ah", "esp", "gre", "6", "17", "1", "58", "47", "50", "51", "44", "0", "60", "132", "255"];
const etherProtocolNames = ["\\ip", "\\ip6", "\\arp", "\\rarp", "\\decnet", "\\lat", "\\sca", "\\moprc", "\\mopdl", "\\atalk", "\\aarp", "\\ipx", "\\stp", "\\netbeui", "\\iso", "\\loopback", "0x800", "0x86dd", "0x88cc", "0x6003", "0x8847", "0x8100", "0x809b", "0x8137", "6", "66", "254", "240", "0xe0", "0xaa", "1500", "1501"];
const bareProtocols = ["ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "igmp", "igrp", "pim", "vrrp", "carp", "ah", "esp"];
const otherLinkProtocols = ["decnet", "lat", "sca", "moprc", "mopdl", "atalk", "aarp", "ipx", "netbeui", "stp"];
const isoProtocols = ["iso", "esis", "isis", "clnp", "l1", "l2", "iih", "lsp", "snp", "csnp", "psnp"];
const llcSubtypes = ["", "i", "s", "u", "rr", "rnr", "rej", "ui", "ua", "disc", "dm", "sabme", "test", "xid", "frmr"];
const decnetAddresses = ["1.1", "1.2", "63.1023", "0.0", "2.5", "10.20", "1.1023", "63.1"];
const foreignLinkPrimitives = [
  "ifname eth0", "on eth0", "rnr 1", "rulenum 2", "srnr 1", "subrulenum 1", "reason match", "action pass", "action block", "rset main",
  "type mgt", "type data", "subtype beacon", "type mgt subtype beacon", "dir nods", "wlan addr1 02:00:00:00:00:01", "wlan ra 02:00:00:00:00:02",
  "wlan host 02:00:00:00:00:01", "vpi 1", "vci 5", "lane", "oam", "metac", "fisu", "sio 3", "opc 10", "radio",
];
const accessorProtocols = ["ether", "link", "ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "igmp", "igrp", "pim", "vrrp", "carp", "decnet", "lat", "sca", "moprc", "mopdl"];
const namedConstants = ["tcpflags", "tcp-syn", "tcp-ack", "tcp-fin", "tcp-rst", "tcp-push", "tcp-urg", "tcp-ece", "tcp-cwr", "icmptype", "icmpcode", "icmp-echo", "icmp-echoreply", "icmp-unreach", "icmp6type", "icmp6code", "icmp6-echo", "icmp6-neighborsolicit", "icmp6-routeradvert"];
const relations = [">", ">=", "=", "==", "<=", "<", "!="];
const operators = ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"];

export class FilterExpressionGenerator {
  private readonly random: () => number;
  private families = new Set<ExpressionFamily>();

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  next(): GeneratedExpression {
    this.families = new Set();
    let expression = this.expression(this.integer(4));
    // geneve/vxlan only as a leading conjunct: when they fail, libpcap's later tests read
    // scratch memory it never wrote (undefined in its bpf_filter); netbpf reads 0 there.
    if (this.chance(0.06)) {
      this.families.add("tunnel");
      expression = `${this.pick(["geneve", "geneve"])}${this.chance(0.5) ? ` ${this.pick(["3", "5", "7", "9", "0"])}` : ""} and ${this.wrap(expression)}`;
    }
    return { expression, families: this.families };
  }

  private integer(limit: number): number {
    return Math.floor(this.random() * limit);
  }

  private chance(probability: number): boolean {
    return this.random() < probability;
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.integer(items.length)]!;
  }

  private expression(depth: number): string {
    if (depth <= 0 || this.chance(0.25)) return this.term(depth);
    const roll = this.random();
    if (roll < 0.15) return `${this.pick(["not ", "! ", "not "])}${this.wrap(this.expression(depth - 1))}`;
    const left = this.expression(depth - 1);
    const operator = this.pick(["and", "or", "and", "or", "&&", "||"]);
    // After a qualified primitive, a bare id inherits its qualifiers (`host a or b`).
    if (this.chance(0.15) && /(host|net|port|portrange|proto) [^ ()]+$/.test(left)) {
      const id = this.inheritedId(left);
      if (id !== undefined) return `${left} ${operator} ${this.chance(0.2) ? "not " : ""}${id}`;
    }
    const joined = `${left} ${operator} ${this.expression(depth - 1)}`;
    return this.chance(0.4) ? `(${joined})` : joined;
  }

  private wrap(text: string): string {
    return /^[a-z0-9]+$/i.test(text) ? text : `(${text})`;
  }

  private inheritedId(left: string): string | undefined {
    if (/portrange [^ ]+$/.test(left)) return this.pick(portRanges);
    if (/port [^ ]+$/.test(left)) return this.pick(ports);
    if (/proto [^ ]+$/.test(left)) return this.pick(/ether proto/.test(left) ? etherProtocolNames : ipProtocolNames);
    if (/(host|net) [0-9a-f]*:[^ ]*$/.test(left)) return /net [^ ]+$/.test(left) ? this.pick(ipv6Networks) : this.pick(/:..:/.test(left.slice(-18)) && !left.includes("::") ? macs : ipv6Hosts);
    if (/net [^ ]+$/.test(left)) return this.pick(ipv4Networks).split(" ")[0];
    if (/host [^ ]+$/.test(left)) return this.pick(ipv4Hosts);
    return undefined;
  }

  private direction(kinds: "ip" | "link" = "ip"): string {
    const roll = this.integer(8);
    if (roll === 0) return "src ";
    if (roll === 1) return "dst ";
    if (roll === 2) return this.pick(["src or dst ", "src and dst ", "dst or src ", "dst and src "]);
    if (roll === 3 && this.chance(0.1)) return this.pick(kinds === "link" ? ["addr1 ", "ra ", "ta "] : ["addr2 ", "addr3 "]);
    return "";
  }

  private term(depth: number): string {
    switch (this.integer(24)) {
      case 0:
      case 1: {
        this.families.add("host");
        const v6 = this.chance(0.3);
        const protocol = v6 ? this.pick(["", "", "ip6 ", "ip "]) : this.pick(["", "", "ip ", "arp ", "rarp ", "ip6 "]);
        const address = v6 ? this.pick(ipv6Hosts) : this.pick(ipv4Hosts);
        return `${protocol}${this.direction()}${this.chance(0.8) ? "host " : ""}${address}`;
      }
      case 2: {
        this.families.add("net");
        const v6 = this.chance(0.3);
        const protocol = this.pick(["", "", "ip ", "arp ", "rarp ", "ip6 "]);
        return `${protocol}${this.direction()}net ${v6 ? this.pick(ipv6Networks) : this.pick(ipv4Networks)}`;
      }
      case 3:
      case 4: {
        const range = this.chance(0.3);
        this.families.add(range ? "portrange" : "port");
        const protocol = this.pick(["", "", "tcp ", "udp ", "sctp ", "ip ", "ip6 "]);
        return `${protocol}${this.direction()}${range ? `portrange ${this.pick(portRanges)}` : `port ${this.pick(ports)}`}`;
      }
      case 5: {
        const chain = this.chance(0.35);
        this.families.add(chain ? "protochain" : "proto");
        const qualifier = this.pick(chain ? ["", "ip ", "ip6 "] : ["", "ip ", "ip6 ", "ether ", "ether ", "link "]);
        const names = qualifier === "ether " || qualifier === "link " ? etherProtocolNames : ipProtocolNames;
        return `${qualifier}${chain ? "protochain" : "proto"} ${this.pick(names)}`;
      }
      case 6:
        this.families.add("ether");
        return this.chance(0.8) ? `ether ${this.direction("link")}${this.pick(["host ", "", "host "])}${this.pick(macs)}` : `ether proto ${this.pick(etherProtocolNames)}`;
      case 7:
      case 8:
        this.families.add("protocol");
        return this.pick(bareProtocols);
      case 9:
        this.families.add("broadcast");
        return `${this.pick(["", "ether ", "ip ", "ip6 ", "link "])}${this.pick(["broadcast", "multicast"])}`;
      case 10:
        this.families.add("length");
        return this.chance(0.5) ? `${this.pick(["less", "greater"])} ${this.length()}` : `${this.pick(["len", "length"])} ${this.pick(relations)} ${this.length()}`;
      case 11:
      case 12:
      case 13:
        this.families.add("relation");
        return `${this.arithmetic(2)} ${this.pick(relations)} ${this.arithmetic(2)}`;
      case 14:
        this.families.add("vlan");
        return this.chance(0.6) ? `vlan ${this.pick(["10", "20", "100", "200", "300", "4095", "0", "0xa"])}` : "vlan";
      case 15:
        this.families.add("mpls");
        return this.chance(0.6) ? `mpls ${this.pick(["5", "7", "1024", "100000", "0"])}` : "mpls";
      case 16:
        this.families.add("pppoe");
        return this.pick(["pppoed", "pppoes", "pppoes 0x27", "pppoes 3", "pppoes 5"]);
      case 17:
      case 18:
        this.families.add("byte");
        // Not `byte N & V` or `byte N | V`: libpcap 1.10 forgets to load the byte for those (README).
        return `byte ${this.integer(40)} ${this.pick(["=", "<", ">"])} ${this.pick(["0", "1", "6", "8", "17", "0x45", "0x60", "255", "10"])}`;
      case 19:
        if (this.chance(0.5)) {
          this.families.add("direction");
          return this.pick(["inbound", "outbound"]);
        }
        this.families.add("ifindex");
        return `ifindex ${this.pick(["1", "2", "3", "4"])}`;
      case 20:
      case 21:
      case 22: {
        const roll = this.integer(4);
        if (roll === 0) {
          this.families.add("llc");
          return `llc ${this.pick(llcSubtypes)}`.trim();
        }
        if (roll === 1) {
          this.families.add("decnet");
          return `decnet ${this.pick(["src ", "dst ", "host ", "src or dst ", ""])}${this.pick(decnetAddresses)}`.replace(/decnet ([0-9])/, "decnet host $1");
        }
        if (roll === 2) {
          this.families.add("iso");
          return this.chance(0.3) ? `iso proto ${this.pick(["\\clnp", "\\esis", "\\isis", "0x81", "0x82", "0x83"])}` : this.pick(isoProtocols);
        }
        if (this.chance(0.7)) {
          this.families.add("other-link");
          return this.pick(otherLinkProtocols);
        }
        // Primitives of link types netbpf does not read (pflog, 802.11, ATM, SS7): refused on every link type here, as libpcap refuses them.
        this.families.add("foreign-link");
        return this.pick(foreignLinkPrimitives);
      }
      default:
        return this.expression(depth - 1);
    }
  }

  private length(): string {
    return this.pick(["0", "14", "40", "54", "60", "64", "74", "82", "90", "100", "128", "200", "1000", "1500", "65535"]);
  }

  private arithmetic(depth: number): string {
    const roll = this.integer(depth <= 0 ? 3 : 7);
    switch (roll) {
      case 0:
        return this.number();
      case 1:
        return this.chance(0.8) ? this.accessor(depth - 1) : this.pick(["len", "length"]);
      case 2:
        return this.chance(0.3) ? this.pick(namedConstants) : this.accessor(depth - 1);
      case 3:
      case 4: {
        const expression = `${this.arithmetic(depth - 1)} ${this.pick(operators)} ${this.arithmetic(depth - 1)}`;
        return this.chance(0.5) ? `(${expression})` : expression;
      }
      case 5:
        return `-${this.arithmetic(depth - 1)}`;
      default:
        return this.accessor(depth - 1);
    }
  }

  private accessor(depth: number): string {
    const protocol = this.pick(accessorProtocols);
    const index = this.chance(0.85) || depth < 0 ? String(this.pick([0, 0, 1, 2, 6, 8, 9, 12, 13, 14, 16, 20, 22, 24, 40, 60])) : this.arithmetic(Math.min(depth, 1));
    const size = this.pick(["", "", "", ":1", ":2", ":4"]);
    if (protocol === "tcp" && this.chance(0.2)) return "tcp[tcpflags]";
    if (protocol === "icmp" && this.chance(0.2)) return `icmp[${this.pick(["icmptype", "icmpcode"])}]`;
    if (protocol === "icmp6" && this.chance(0.2)) return `icmp6[${this.pick(["icmp6type", "icmp6code"])}]`;
    return `${protocol}[${index}${size}]`;
  }

  private number(): string {
    const value = this.pick([0, 1, 2, 3, 4, 5, 6, 8, 12, 14, 15, 16, 17, 20, 31, 40, 64, 80, 0x45, 0x60, 100, 255, 256, 1500, 0x800, 0xffff, 0x10000, 0xffffffff]);
    const form = this.integer(6);
    if (form === 0) return `0x${value.toString(16)}`;
    if (form === 1 && value > 0 && value < 512) return `0${value.toString(8)}`;
    return String(value);
  }
}

/** Random expressions from a seed, in a reproducible order. */
export function randomFilterExpressions(seed: number, count: number): GeneratedExpression[] {
  const generator = new FilterExpressionGenerator(seed);
  const seen = new Set<string>();
  const result: GeneratedExpression[] = [];
  for (let attempt = 0; result.length < count && attempt < count * 4; attempt++) {
    const generated = generator.next();
    if (generated.expression.length > 400 || seen.has(generated.expression)) continue;
    seen.add(generated.expression);
    result.push(generated);
  }
  return result;
}

const tokenPattern = /\s+|\(|\)|\[|\]|&&|\|\||!=|==|<=|>=|<<|>>|[-+*/%&|^<>=!:]|[^\s()[\]&|!=<>+*/%^:-]+/g;
const noise = ["and", "or", "not", "(", ")", "[", "]", "host", "port", "net", "proto", "src", "dst", "tcp", "ip6", "ether", "vlan", "len", "=", ">", "&", "-", ":", "1", "99999", "0x", "10.0.0.1", "::1", "02:00", "\\", "mask", "less", "byte", "gateway", "protochain", "portrange", "broadcast", "llc", "decnet"];

/** A nearby expression: one or two tokens deleted, duplicated, swapped or replaced, or the text cut short. */
export function mutateExpression(expression: string, random: () => number): string {
  const tokens = (expression.match(tokenPattern) ?? []).filter((token) => !/^\s+$/.test(token));
  if (tokens.length === 0) return "(";
  const position = Math.floor(random() * tokens.length);
  const pick = (items: readonly string[]) => items[Math.floor(random() * items.length)]!;
  switch (Math.floor(random() * 6)) {
    case 0:
      tokens.splice(position, 1);
      break;
    case 1:
      tokens.splice(position, 0, tokens[position]!);
      break;
    case 2: {
      const other = Math.floor(random() * tokens.length);
      [tokens[position], tokens[other]] = [tokens[other]!, tokens[position]!];
      break;
    }
    case 3:
      tokens[position] = pick(noise);
      break;
    case 4:
      tokens.splice(position, 0, pick(noise));
      break;
    default:
      tokens.length = Math.max(1, position);
  }
  return tokens.join(" ");
}
