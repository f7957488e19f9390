import type { ArithmeticNode, DirectionQualifier, FilterNode, IdValue, Qualifiers } from "./ast.js";
import { etherProtocolNumber, systemFilterNames, type FilterNames } from "./filter-names.js";
import { FilterSyntaxError, type SourceSpan } from "./filter-syntax-error.js";
import { argumentError, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import {
  addOffset, and, compare, constant, falsePredicate, load, loadEquals, not, or, truePredicate, type Predicate, type Value,
} from "./predicate.js";

export interface LowerOptions {
  /** pcap LINKTYPE_* value of the packets (1 Ethernet, 113 SLL, 276 SLL2, 101/12/14 raw IP, 228/229). */
  linkType: number;
  names?: FilterNames;
  /** IPv4 netmask for `ip broadcast` (tcpdump -r uses 0). */
  netmask?: number;
  /**
   * Whether packet metadata (the skb's packet type) is available for
   * inbound/outbound on link types without a direction field. False for saved
   * captures, as with libpcap.
   */
  packetMetadata?: boolean;
  /**
   * "libpcap" (default): like libpcap 1.10, the protocol checks implied by a
   * packet access that is the right operand of an arithmetic operator are
   * dropped (`1 - tcp[12] > 0` matches non-TCP packets). "strict": keep them.
   */
  arithmeticChecks?: "libpcap" | "strict";
}

type LinkKind = "ethernet" | "sll" | "sll2" | "raw" | "ipv4" | "ipv6" | "ppp";

const ethertype = { ip: 0x0800, ip6: 0x86dd, arp: 0x0806, rarp: 0x8035, vlan: 0x8100, qinq: 0x88a8, qinqOld: 0x9100, mpls: 0x8847, pppoed: 0x8863, pppoes: 0x8864 };
const ipProtocol = { icmp: 1, igmp: 2, tcp: 6, udp: 17, igrp: 9, pim: 103, vrrp: 112, carp: 112, icmp6: 58, ah: 51, esp: 50, sctp: 132, fragment: 44 };
const abbreviatedEthertypes: Record<string, number> = {
  ip: 0x0800, ip6: 0x86dd, arp: 0x0806, rarp: 0x8035, decnet: 0x6003, lat: 0x6004, sca: 0x6007, moprc: 0x6002, mopdl: 0x6001,
};
const linkNames: Record<LinkKind, string> = {
  ethernet: "Ethernet", sll: "Linux cooked v1", sll2: "Linux cooked v2", raw: "raw IP", ipv4: "raw IPv4", ipv6: "raw IPv6", ppp: "PPP",
};

interface Arithmetic {
  value: Value;
  checks: Predicate | undefined;
}

/**
 * Compiles a parsed filter into a predicate for one link type, with
 * libpcap's semantics: qualifier defaults, offsets shifted by vlan/mpls/pppoes
 * in the order they appear, and the same tests in the same order.
 */
export function lowerFilter(expression: string, node: FilterNode | undefined, options: LowerOptions): Predicate {
  expectString("lower filter", "expression", expression);
  if (node !== undefined && (typeof node !== "object" || node === null || typeof node.kind !== "string")) throw argumentError("lower filter", "node", "a filter AST from parseFilter(), or undefined", node);
  expectObject("lower filter", "options", options);
  expectInteger("lower filter", "options.linkType", options.linkType, 0, 0xffffffff);
  if (!node) return truePredicate;
  return new Lowerer(expression, options).lower(node);
}

class Lowerer {
  private readonly names: FilterNames;
  private link: LinkKind;
  private linkHeader: Value = constant(0);
  private linkTypeOffset: Value | undefined;
  private linkPayload: Value;
  private networkOffset = 0;
  private vlanDepth = 0;
  private mplsDepth = 0;
  /** After geneve: the link header may be absent (libpcap's gen_geneve_ll_check). */
  private geneve = false;
  private nextRegister = 0;
  private span: SourceSpan = { start: 0, end: 0 };

  constructor(private readonly expression: string, private readonly options: LowerOptions) {
    this.names = options.names ?? systemFilterNames();
    switch (options.linkType) {
      case 1:
        this.link = "ethernet";
        this.linkTypeOffset = constant(12);
        this.linkPayload = constant(14);
        break;
      case 113:
        this.link = "sll";
        this.linkTypeOffset = constant(14);
        this.linkPayload = constant(16);
        break;
      case 276:
        this.link = "sll2";
        this.linkTypeOffset = constant(0);
        this.linkPayload = constant(20);
        break;
      case 101:
      case 12:
      case 14:
        this.link = "raw";
        this.linkPayload = constant(0);
        break;
      case 228:
        this.link = "ipv4";
        this.linkPayload = constant(0);
        break;
      case 229:
        this.link = "ipv6";
        this.linkPayload = constant(0);
        break;
      default:
        throw new FilterSyntaxError(expression, { start: 0, end: expression.length }, `link type ${options.linkType} is not supported by the filter compiler`, "Ethernet (1), Linux cooked (113, 276) or raw IP (101, 228, 229)");
    }
  }

  private fail(detail: string, expected?: string, span: SourceSpan = this.span): never {
    throw new FilterSyntaxError(this.expression, span, detail, expected);
  }

  private network(offset: number): Value {
    return addOffset(this.linkPayload, this.networkOffset + offset);
  }

  // ---- boolean structure ---------------------------------------------------

  lower(node: FilterNode): Predicate {
    this.span = node.span;
    switch (node.kind) {
      case "and":
        return and(this.lower(node.left), this.lower(node.right));
      case "or":
        return or(this.lower(node.left), this.lower(node.right));
      case "not":
        return not(this.lower(node.operand));
      case "primitive":
        return this.primitive(node.qualifiers, node.id, node.idSpan);
      case "protocol":
        return this.protocolAbbreviation(node.protocol);
      case "relation":
        return this.relation(node.operator, node.left, node.right);
      case "broadcast":
        return this.broadcast(node.protocol);
      case "multicast":
        return this.multicast(node.protocol);
      case "length":
        return node.operator === "less"
          ? not(compare(">", { kind: "packetLength" }, constant(node.value)))
          : compare(">=", { kind: "packetLength" }, constant(node.value));
      case "direction":
        return this.direction(node.direction);
      case "ifindex":
        if (this.link !== "sll2") this.fail(`'ifindex' is supported only on Linux cooked v2 captures, not ${linkNames[this.link]}`);
        return loadEquals(addOffset(this.linkHeader, 4), 4, node.value);
      case "encapsulation":
        return this.encapsulation(node.encapsulation, node.value, node.valueSpan);
      case "pppoed":
        return this.linkProtocol(ethertype.pppoed);
      case "byte":
        return this.byteOperation(node.offset, node.operator, node.value);
      case "llc":
        return this.llc(node.subtype);
      case "unsupported":
        return this.fail(`'${node.keyword}' is not supported`);
    }
  }

  // ---- link layer ------------------------------------------------------------

  /** libpcap's gen_linktype: is the packet's link-layer protocol `protocol`? */
  private linkProtocol(protocol: number): Predicate {
    if (this.mplsDepth > 0) {
      if (protocol === ethertype.ip) return and(loadEquals(this.network(-2), 1, 1, 1), loadEquals(this.network(0), 1, 0x40, 0xf0));
      if (protocol === ethertype.ip6) return and(loadEquals(this.network(-2), 1, 1, 1), loadEquals(this.network(0), 1, 0x60, 0xf0));
      this.fail("unsupported protocol over mpls", "ip or ip6 after 'mpls'");
    }
    if ((this.link === "ethernet" || this.link === "sll" || this.link === "sll2") && (protocol === 0xe0 || protocol === 0x809b || protocol === 0x80f3)) {
      return this.snapProtocol(protocol);
    }
    switch (this.link) {
      case "ethernet":
        if (protocol <= 1500) {
          const notLength = not(compare(">", load(this.linkTypeOffset!, 2), constant(1500)));
          if (protocol === 0x06 || protocol === 0xfe || protocol === 0xf0) {
            return and(notLength, loadEquals(this.network(0), 2, (protocol << 8) | protocol));
          }
          return and(notLength, loadEquals(this.network(0), 1, protocol));
        }
        return loadEquals(this.linkTypeOffset!, 2, protocol);
      case "sll":
      case "sll2":
        if (protocol <= 1500) {
          // LINUX_SLL_P_802_2 in the protocol field, then the DSAP (and SSAP for ISO, IP, NetBEUI).
          const isLlc = loadEquals(this.linkTypeOffset!, 2, 0x0004);
          if (protocol === 0x06 || protocol === 0xfe || protocol === 0xf0) return and(isLlc, loadEquals(this.network(0), 2, (protocol << 8) | protocol));
          return and(isLlc, loadEquals(this.network(0), 1, protocol));
        }
        return loadEquals(this.linkTypeOffset!, 2, protocol);
      case "raw":
        if (protocol === ethertype.ip) return loadEquals(this.linkHeader, 1, 0x40, 0xf0);
        if (protocol === ethertype.ip6) return loadEquals(this.linkHeader, 1, 0x60, 0xf0);
        return falsePredicate;
      case "ipv4":
        return protocol === ethertype.ip ? truePredicate : falsePredicate;
      case "ipv6":
        return protocol === ethertype.ip6 ? truePredicate : falsePredicate;
      case "ppp": {
        const pppProtocol = protocol === ethertype.ip ? 0x21 : protocol === ethertype.ip6 ? 0x57 : protocol === 0x8137 ? 0x2b : protocol === 0x809b ? 0x29 : protocol === 0x6003 ? 0x27 : protocol;
        return loadEquals(this.linkTypeOffset!, 2, pppProtocol);
      }
    }
  }

  private protocolAbbreviation(name: string): Predicate {
    if (name in abbreviatedEthertypes) return this.linkProtocol(abbreviatedEthertypes[name]!);
    switch (name) {
      case "tcp":
      case "udp":
      case "sctp":
      case "pim":
      case "ah":
      case "esp":
        return this.ipProtocol(ipProtocol[name], "default");
      case "icmp":
      case "igmp":
      case "igrp":
      case "vrrp":
      case "carp":
        return this.ipProtocol(ipProtocol[name], "ip");
      case "icmp6":
        return this.ipProtocol(ipProtocol.icmp6, "ip6");
      case "netbeui":
        return this.linkProtocol(0xf0);
      case "stp":
        return this.linkProtocol(0x42);
      case "iso":
        return this.linkProtocol(0xfe);
      case "ipx":
        return this.linkProtocol(0xe0);
      case "atalk":
        return this.linkProtocol(0x809b);
      case "aarp":
        return this.linkProtocol(0x80f3);
      case "clnp":
      case "esis":
      case "isis":
        return this.isoProtocol({ clnp: 0x81, esis: 0x82, isis: 0x83 }[name]);
      case "l1":
      case "l2":
      case "iih":
      case "lsp":
      case "snp":
      case "csnp":
      case "psnp": {
        const pduTypes = isisPduTypes[name]!;
        let test = loadEquals(this.network(7), 1, pduTypes[0]!);
        for (const type of pduTypes.slice(1)) test = or(test, loadEquals(this.network(7), 1, type));
        return and(this.isoProtocol(0x83), test);
      }
      case "link":
        return this.fail("link layer applied in wrong context", "a protocol, or 'ether' followed by a qualifier such as 'host' or 'proto'");
      default:
        return this.fail(`'${name}' is not supported`, "a supported protocol such as ip, ip6, arp, tcp, udp");
    }
  }

  /** gen_proto: IPv4 protocol field and/or IPv6 next header (with one fragment header). */
  private ipProtocol(value: number, family: "default" | "ip" | "ip6"): Predicate {
    if (family === "default") return or(this.ipProtocol(value, "ip"), this.ipProtocol(value, "ip6"));
    if (family === "ip") return and(this.linkProtocol(ethertype.ip), loadEquals(this.network(9), 1, value));
    const fragmentThen = and(loadEquals(this.network(6), 1, ipProtocol.fragment), loadEquals(this.network(40), 1, value));
    return and(this.linkProtocol(ethertype.ip6), or(loadEquals(this.network(6), 1, value), fragmentThen));
  }

  /** libpcap's ISO network-layer protocol test: ISO over LLC (FE FE), then the NLPID after the control byte. */
  private isoProtocol(nlpid: number): Predicate {
    if (nlpid > 255) this.fail(`ISO protocol ${nlpid} greater than maximum 255`);
    return and(this.linkProtocol(0xfe), loadEquals(this.network(3), 1, nlpid));
  }

  /**
   * IPX (LLC SAP E0), AppleTalk and AARP as libpcap's gen_linktype tests them on Ethernet
   * and Linux cooked links: the Ethernet II type, or 802.2 with LLC/SNAP (AppleTalk with
   * Apple's OUI 08:00:07), and for IPX also 802.2 SAP E0 and Novell's raw 802.3 (FF FF).
   */
  private snapProtocol(protocol: 0xe0 | 0x809b | 0x80f3): Predicate {
    const type = protocol === 0xe0 ? 0x8137 : protocol;
    const oui = protocol === 0x809b ? 0x080007 : 0;
    const snap = and(loadEquals(this.network(4), 4, (((oui & 0xffff) << 16) | type) >>> 0), loadEquals(this.network(0), 4, (0xaaaa0300 | (oui >>> 16)) >>> 0));
    const ethernetType = loadEquals(this.linkTypeOffset!, 2, type);
    if (this.link === "ethernet") {
      const frames = protocol === 0xe0 ? or(or(snap, loadEquals(this.network(0), 1, 0xe0)), loadEquals(this.network(0), 2, 0xffff)) : snap;
      return or(ethernetType, and(not(compare(">", load(this.linkTypeOffset!, 2), constant(1500))), frames));
    }
    const llc = loadEquals(this.linkTypeOffset!, 2, 0x0004);
    if (protocol !== 0xe0) return or(ethernetType, and(llc, snap));
    return or(or(ethernetType, loadEquals(this.linkTypeOffset!, 2, 0x0001)), and(llc, or(loadEquals(this.network(0), 1, 0xe0), snap)));
  }

  /** `llc` with an optional frame type: an 802.2 LLC frame (not Novell raw 802.3) and its control field. */
  private llc(subtype: string | undefined): Predicate {
    let isLlc: Predicate;
    // libpcap tests the LLC header at the link payload: 'mpls' before 'llc' does not move it.
    if (this.link === "ethernet") isLlc = and(not(compare(">", load(this.linkTypeOffset!, 2), constant(1500))), not(loadEquals(this.linkPayload, 2, 0xffff)));
    else return this.fail(`'llc' not supported for ${linkNames[this.link]}`, "an Ethernet or Linux cooked capture");
    if (subtype === undefined) return isLlc;
    const control = llcControl[subtype];
    if (control === undefined) this.fail(`unknown 802.2 LLC frame type '${subtype}'`, "i, s, u, rr, rnr, rej, ui, ua, disc, dm, sabme, test, xid or frmr");
    const field = load(addOffset(this.linkPayload, 2), 1);
    const test = control.mask === 1 ? not(compare("&", field, constant(1))) : compare("==", { kind: "binary", operator: "&", left: field, right: constant(control.mask) }, constant(control.value));
    return and(isLlc, test);
  }

  /** libpcap's gen_dnhostop: the DECnet routing header in its four forms (short/long, padded or not). */
  private decnetId(address: number | undefined, qualifiers: Qualifiers, idSpan: SourceSpan): Predicate {
    if (address === undefined) this.fail("invalid DECnet address", "area.node, such as 1.2 or 63.1023", idSpan);
    const { type, direction } = qualifiers;
    if (type !== undefined && type !== "host" && type !== "net") this.fail(`'decnet ${type}' is not valid`, "decnet host, src or dst", idSpan);
    // Stored little-endian in the packet, compared as a big-endian half-word.
    const value = ((address & 0xff) << 8) | ((address >> 8) & 0xff);
    const one = (shortOffset: number, longOffset: number): Predicate => {
      const shortPlain = and(loadEquals(this.network(2), 1, 0x02, 0x07), loadEquals(this.network(2 + shortOffset), 2, value));
      const shortPadded = and(loadEquals(this.network(2), 2, 0x8102, 0xff07), loadEquals(this.network(3 + shortOffset), 2, value));
      const longPlain = and(loadEquals(this.network(2), 1, 0x06, 0x07), loadEquals(this.network(2 + longOffset), 2, value));
      const longPadded = and(loadEquals(this.network(2), 2, 0x8106, 0xff07), loadEquals(this.network(3 + longOffset), 2, value));
      return or(or(or(shortPlain, shortPadded), longPlain), longPadded);
    };
    const mode = this.directionCheck(direction, idSpan);
    const source = () => one(3, 15);
    const destination = () => one(1, 7);
    const test = mode === "src" ? source() : mode === "dst" ? destination() : mode === "and" ? and(source(), destination()) : or(source(), destination());
    return and(this.linkProtocol(0x6003), test);
  }

  // ---- primitives (head id) ------------------------------------------------------

  private primitive(qualifiers: Qualifiers, id: IdValue, idSpan: SourceSpan): Predicate {
    if (qualifiers.undefined) this.fail(`${describeId(id)} has no qualifier to inherit`, "a qualifier such as 'host', 'net' or 'port' before it", idSpan);
    const type = qualifiers.type;
    const protocol = qualifiers.protocol;
    const direction = qualifiers.direction;
    switch (id.kind) {
      case "number":
        if (protocol === "decnet") return this.decnetId(id.value, qualifiers, idSpan);
        return this.numericId(id.value, undefined, qualifiers, idSpan);
      case "ipv4":
        if (protocol === "decnet" && id.prefixLength === undefined && id.mask === undefined) return this.decnetId(decnetAddress(id.text), qualifiers, idSpan);
        if (id.prefixLength !== undefined || id.mask !== undefined) return this.maskedIpv4(id, qualifiers, idSpan);
        return this.numericId(0, id.text, qualifiers, idSpan);
      case "ipv6":
        return this.ipv6Id(id, qualifiers, idSpan);
      case "mac":
        if ((type === undefined || type === "host") && protocol === "link") return this.etherHost(id.bytes, direction);
        return this.fail("ethernet address used in non-ether expression", "'ether host', 'ether src' or 'ether dst' before a MAC address", idSpan);
      case "name":
        return this.nameId(id.text, qualifiers, idSpan);
    }
  }

  private numericId(number: number, dotted: string | undefined, qualifiers: Qualifiers, idSpan: SourceSpan): Predicate {
    const { type, protocol, direction } = qualifiers;
    let value = number;
    let bits = 32;
    if (dotted !== undefined) {
      const parsed = parsePartialIpv4(dotted);
      if (!parsed) this.fail(`invalid IPv4 address '${dotted}'`, "a dotted address with parts from 0 to 255", idSpan);
      ({ value, bits } = parsed);
    }
    switch (type) {
      case undefined:
      case "host":
      case "net": {
        if (protocol === "link") this.fail("illegal link layer address", "a MAC address such as 00:11:22:33:44:55", idSpan);
        if (protocol === "decnet") this.fail("'decnet' addresses are not supported", undefined, idSpan);
        let mask = 0xffffffff;
        if (dotted === undefined && type === "net") {
          while (value !== 0 && (value & 0xff000000) === 0) {
            value = (value << 8) >>> 0;
            mask = (mask << 8) >>> 0;
          }
        } else if (bits < 32) {
          value = (value << (32 - bits)) >>> 0;
          mask = (mask << (32 - bits)) >>> 0;
        }
        return this.host(value, mask, protocol, direction, type === "net" ? "net" : "host", idSpan);
      }
      case "port":
        if (dotted !== undefined) this.fail(`'${dotted}' is not a port`, "a port number or service name", idSpan);
        return this.portPrimitive(value, value, this.portProtocol(protocol, idSpan), direction, false, idSpan);
      case "portrange":
        if (dotted !== undefined) this.fail(`'${dotted}' is not a port range`, "a range such as 6000-6010", idSpan);
        return this.portPrimitive(value, value, this.portProtocol(protocol, idSpan), direction, true, idSpan);
      case "gateway":
        return this.fail("'gateway' requires a name", "a host name known to /etc/hosts and /etc/ethers", idSpan);
      case "proto":
        if (dotted !== undefined) this.fail(`'${dotted}' is not a protocol`, "a protocol number or name", idSpan);
        return this.protoPrimitive(value, protocol, direction, idSpan);
      case "protochain":
        if (dotted !== undefined) this.fail(`'${dotted}' is not a protocol`, "a protocol number or name", idSpan);
        return this.protochain(value, protocol, idSpan);
    }
  }

  private portProtocol(protocol: string | undefined, idSpan: SourceSpan): number | undefined {
    switch (protocol) {
      case undefined:
        return undefined;
      case "tcp":
        return ipProtocol.tcp;
      case "udp":
        return ipProtocol.udp;
      case "sctp":
        return ipProtocol.sctp;
      default:
        return this.fail(`illegal qualifier '${protocol}' of 'port'`, "tcp, udp or sctp before 'port'", idSpan);
    }
  }

  private maskedIpv4(id: Extract<IdValue, { kind: "ipv4" }>, qualifiers: Qualifiers, idSpan: SourceSpan): Predicate {
    const parsed = parsePartialIpv4(id.text);
    if (!parsed) this.fail(`invalid IPv4 address '${id.text}'`, "a dotted address with parts from 0 to 255", idSpan);
    const network = bitsShift(parsed.value, 32 - parsed.bits);
    let mask: number;
    let shown: string;
    if (id.mask !== undefined) {
      const maskParsed = parsePartialIpv4(id.mask);
      if (!maskParsed) this.fail(`invalid IPv4 address '${id.mask}'`, "a dotted netmask", id.maskSpan ?? idSpan);
      mask = bitsShift(maskParsed.value, 32 - maskParsed.bits);
      shown = `${id.text} mask ${id.mask}`;
    } else {
      const length = id.prefixLength!;
      if (length > 32) this.fail("mask length must be <= 32", "a prefix length from 0 to 32", idSpan);
      mask = length === 0 ? 0 : bitsShift(0xffffffff, 32 - length);
      shown = `${id.text}/${length}`;
    }
    if ((network & ~mask) >>> 0 !== 0) this.fail(`non-network bits set in "${shown}"`, "an address with zero host bits", idSpan);
    if (qualifiers.type !== "net") this.fail("Mask syntax for networks only", "'net' before a network with a mask or prefix length", idSpan);
    return this.host(network, mask, qualifiers.protocol, qualifiers.direction, "net", idSpan);
  }

  private ipv6Id(id: Extract<IdValue, { kind: "ipv6" }>, qualifiers: Qualifiers, idSpan: SourceSpan): Predicate {
    const length = id.prefixLength ?? 128;
    if (length > 128) this.fail("mask length must be <= 128", "a prefix length from 0 to 128", idSpan);
    const mask = new Uint8Array(16);
    for (let bit = 0; bit < length; bit++) mask[bit >> 3]! |= 0x80 >> (bit & 7);
    for (let i = 0; i < 16; i++) {
      if ((id.bytes[i]! & ~mask[i]!) !== 0) this.fail(`non-network bits set in "${id.text}/${length}"`, "an address with zero host bits", idSpan);
    }
    switch (qualifiers.type) {
      case undefined:
      case "host":
        if (length !== 128) this.fail("Mask syntax for networks only", "'net' before a network with a prefix length", idSpan);
        break;
      case "net":
        break;
      default:
        this.fail("invalid qualifier against IPv6 address", "'host' or 'net'", idSpan);
    }
    return this.host6(id.bytes, mask, qualifiers.protocol, qualifiers.direction, idSpan);
  }

  private nameId(name: string, qualifiers: Qualifiers, idSpan: SourceSpan): Predicate {
    const { type, protocol, direction } = qualifiers;
    switch (type) {
      case undefined:
      case "host": {
        if (protocol === "link") {
          if (this.link !== "ethernet") this.fail(`link-level host names are supported only on Ethernet, not ${linkNames[this.link]}`, undefined, idSpan);
          const address = this.names.ether(name);
          if (!address) this.fail(`unknown ether host '${name}'`, "a name listed in /etc/ethers, or a MAC address", idSpan);
          return this.etherHost(address, direction);
        }
        if (protocol === "decnet") this.fail(`decnet name support not included, '${name}' cannot be translated`, "a DECnet address such as 1.2 (area.node)", idSpan);
        const addresses = this.names.host(name);
        if (!addresses || (addresses.ipv4.length === 0 && addresses.ipv6.length === 0)) {
          this.fail(`unknown host '${name}'`, "a host name in /etc/hosts (resolve DNS names first with resolveFilterHostNames), or an address", idSpan);
        }
        let ipv4Protocol = protocol;
        let ipv6Protocol = protocol;
        if (this.linkTypeOffset === undefined && protocol === undefined) {
          ipv4Protocol = "ip";
          ipv6Protocol = "ip6";
        }
        let result: Predicate | undefined;
        const all = new Uint8Array(16).fill(0xff);
        for (const address of addresses.ipv4) {
          if (ipv4Protocol === "ip6") continue;
          const test = this.host(address, 0xffffffff, ipv4Protocol, direction, "host", idSpan);
          result = result ? or(result, test) : test;
        }
        for (const address of addresses.ipv6) {
          if (ipv6Protocol === "ip") continue;
          const test = this.host6(address, all, ipv6Protocol, direction, idSpan);
          result = result ? or(result, test) : test;
        }
        if (!result) this.fail(`unknown host '${name}' for specified address family`, undefined, idSpan);
        return result;
      }
      case "net": {
        let address = this.names.network(name);
        if (address === undefined || address === 0) this.fail(`unknown network '${name}'`, "a network listed in /etc/networks, or a network number", idSpan);
        let mask = 0xffffffff;
        while (address !== 0 && (address & 0xff000000) === 0) {
          address = (address << 8) >>> 0;
          mask = (mask << 8) >>> 0;
        }
        return this.host(address, mask, protocol, direction, "net", idSpan);
      }
      case "port": {
        const qualifierProtocol = this.portProtocol(protocol, idSpan);
        const service = this.names.service(name);
        if (!service) this.fail(`unknown port '${name}'`, "a port number or a service name from /etc/services", idSpan);
        const realProtocol = this.serviceProtocol(name, service.protocol, qualifierProtocol, idSpan);
        return this.portPrimitive(service.port, service.port, realProtocol, direction, false, idSpan);
      }
      case "portrange": {
        const qualifierProtocol = this.portProtocol(protocol, idSpan);
        const range = this.portRange(name, idSpan);
        // libpcap does not hold a range's service protocol against the qualifier (sctp portrange 25-smtp).
        const realProtocol = qualifierProtocol ?? (range.protocol === "tcp" ? ipProtocol.tcp : range.protocol === "udp" ? ipProtocol.udp : undefined);
        return this.portPrimitive(range.low, range.high, realProtocol, direction, true, idSpan);
      }
      case "gateway":
        return this.gateway(name, protocol, direction, idSpan);
      case "proto": {
        const number = this.protocolNumber(name, protocol, idSpan);
        return this.protoPrimitive(number, protocol, direction, idSpan);
      }
      case "protochain": {
        const number = this.protocolNumber(name, protocol, idSpan);
        return this.protochain(number, protocol, idSpan);
      }
    }
  }

  private serviceProtocol(name: string, found: "tcp" | "udp" | undefined, wanted: number | undefined, idSpan: SourceSpan): number | undefined {
    const foundNumber = found === "tcp" ? ipProtocol.tcp : found === "udp" ? ipProtocol.udp : undefined;
    if (wanted === undefined) return foundNumber;
    if (foundNumber !== undefined && foundNumber !== wanted) this.fail(`port '${name}' is ${found}`, `a ${wanted === ipProtocol.tcp ? "tcp" : wanted === ipProtocol.udp ? "udp" : "sctp"} service`, idSpan);
    return wanted;
  }

  private portRange(text: string, idSpan: SourceSpan): { low: number; high: number; protocol: "tcp" | "udp" | undefined } {
    const numeric = /^(-?\d+)-(-?\d+)/.exec(text);
    let low: number;
    let high: number;
    let protocol: "tcp" | "udp" | undefined;
    if (numeric) {
      low = Number(numeric[1]);
      high = Number(numeric[2]);
      protocol = undefined;
    } else {
      // Either side a number or a service name.
      const port = (part: string) => (/^\d+$/.test(part) ? { port: Number(part), protocol: undefined } : this.names.service(part));
      let found: { first: { port: number; protocol?: "tcp" | "udp" }; second: { port: number; protocol?: "tcp" | "udp" } } | undefined;
      // Split at the first '-', as libpcap's stringtoportrange does (so 'ftp-data-ftp' is refused).
      const dash = text.indexOf("-");
      if (dash > 0) {
        const first = port(text.slice(0, dash));
        const second = port(text.slice(dash + 1));
        if (first && second) found = { first, second };
      }
      if (!found) this.fail(`unknown port in range '${text}'`, "a range such as 6000-6010 or service names from /etc/services", idSpan);
      low = found.first.port;
      high = found.second.port;
      // As libpcap's stringtoportrange: one protocol only when both ends name it (a number names none: http-443 is any protocol).
      protocol = found.first.protocol === found.second.protocol ? found.first.protocol : undefined;
    }
    for (const port of [low, high]) {
      if (port > 65535) this.fail(`illegal port number ${port} > 65535`, "a port from 0 to 65535", idSpan);
      if (port < 0) this.fail(`illegal port number ${port} < 0`, "a port from 0 to 65535", idSpan);
    }
    return { low, high, protocol };
  }

  private protocolNumber(name: string, protocol: string | undefined, idSpan: SourceSpan): number {
    if (protocol === undefined || protocol === "ip" || protocol === "ip6") {
      const number = this.names.protocol(name);
      if (number === undefined) this.fail(`unknown ip proto '${name}'`, "a protocol number or a name from /etc/protocols (keywords need a backslash: \\tcp)", idSpan);
      return number;
    }
    if (protocol === "iso") {
      const number = ({ clnp: 0x81, esis: 0x82, isis: 0x83 } as Record<string, number>)[name];
      if (number === undefined) this.fail(`unknown osi proto '${name}'`, "a number or one of clnp, esis, isis", idSpan);
      return number;
    }
    if (protocol === "link") {
      // libpcap's \ipx is the LLC SAP (E0), which gen_linktype widens to every IPX framing.
      if (name === "ipx") return 0xe0;
      const number = etherProtocolNumber(name);
      if (number === undefined) this.fail(`unknown ether proto '${name}'`, "a number or one of ip, ip6, arp, rarp, atalk, aarp, decnet, lat, sca, mopdl, moprc, ipx, loopback", idSpan);
      return number;
    }
    return this.fail(`'${protocol} proto' is bogus`, "ether, ip or ip6 before 'proto'", idSpan);
  }

  // ---- hosts and networks -------------------------------------------------------------

  private host(address: number, mask: number, protocol: string | undefined, direction: DirectionQualifier | undefined, kind: "host" | "net", idSpan: SourceSpan): Predicate {
    switch (protocol) {
      case undefined: {
        let result = this.host(address, mask, "ip", direction, kind, idSpan);
        if (this.mplsDepth === 0) {
          result = or(result, this.host(address, mask, "arp", direction, kind, idSpan));
          result = or(result, this.host(address, mask, "rarp", direction, kind, idSpan));
        }
        return result;
      }
      case "ip":
        return this.hostOperation(address, mask, direction, ethertype.ip, 12, 16, idSpan);
      case "arp":
        return this.hostOperation(address, mask, direction, ethertype.arp, 14, 24, idSpan);
      case "rarp":
        return this.hostOperation(address, mask, direction, ethertype.rarp, 14, 24, idSpan);
      case "link":
        return this.fail(`link-layer modifier applied to ${kind}`, "'ether host' with a MAC address", idSpan);
      case "ip6":
        return this.fail(`'ip6' modifier applied to ip ${kind}`, "an IPv6 address after 'ip6'", idSpan);
      default:
        return this.fail(`'${protocol}' modifier applied to ${kind}`, "ip, ip6, arp or rarp before it", idSpan);
    }
  }

  private directionCheck(direction: DirectionQualifier | undefined, idSpan: SourceSpan): "src" | "dst" | "and" | "or" {
    switch (direction) {
      case undefined:
      case "src or dst":
        return "or";
      case "src and dst":
        return "and";
      case "src":
      case "dst":
        return direction;
      default:
        return this.fail(`'${direction}' is only supported on 802.11 link types`, "src, dst, 'src or dst' or 'src and dst'", idSpan);
    }
  }

  private hostOperation(address: number, mask: number, direction: DirectionQualifier | undefined, protocol: number, sourceOffset: number, destinationOffset: number, idSpan: SourceSpan): Predicate {
    const mode = this.directionCheck(direction, idSpan);
    const one = (offset: number) => and(this.linkProtocol(protocol), loadEquals(this.network(offset), 4, address, mask));
    if (mode === "src") return one(sourceOffset);
    if (mode === "dst") return one(destinationOffset);
    const source = one(sourceOffset);
    const destination = one(destinationOffset);
    return mode === "and" ? and(source, destination) : or(source, destination);
  }

  private host6(address: Uint8Array, mask: Uint8Array, protocol: string | undefined, direction: DirectionQualifier | undefined, idSpan: SourceSpan): Predicate {
    if (protocol === "ip") this.fail("'ip' modifier applied to ip6 host", "an IPv4 address after 'ip', or 'ip6'", idSpan);
    if (protocol !== undefined && protocol !== "ip6") {
      this.fail(protocol === "link" ? "link-layer modifier applied to host" : `'${protocol}' modifier applied to host`, "ip6 or nothing before an IPv6 address", idSpan);
    }
    const mode = this.directionCheck(direction, idSpan);
    const word = (bytes: Uint8Array, i: number) => ((bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) | bytes[4 * i + 3]!) >>> 0;
    const one = (offset: number) => {
      let words = loadEquals(this.network(offset), 4, word(address, 0), word(mask, 0));
      for (let i = 1; i < 4; i++) words = and(words, loadEquals(this.network(offset + 4 * i), 4, word(address, i), word(mask, i)));
      return and(this.linkProtocol(ethertype.ip6), words);
    };
    if (mode === "src") return one(8);
    if (mode === "dst") return one(24);
    const source = one(8);
    const destination = one(24);
    return mode === "and" ? and(source, destination) : or(source, destination);
  }

  private etherHost(address: Uint8Array, direction: DirectionQualifier | undefined): Predicate {
    if (this.link !== "ethernet") this.fail(`ethernet addresses are supported only on Ethernet, not ${linkNames[this.link]}`);
    const mode = this.directionCheck(direction, this.span);
    const at = (offset: number) => {
      const word = ((address[2]! << 24) | (address[3]! << 16) | (address[4]! << 8) | address[5]!) >>> 0;
      const half = (address[0]! << 8) | address[1]!;
      return and(loadEquals(addOffset(this.linkHeader, offset + 2), 4, word), loadEquals(addOffset(this.linkHeader, offset), 2, half));
    };
    if (mode === "src") return this.withLinkHeader(at(6));
    if (mode === "dst") return this.withLinkHeader(at(0));
    return this.withLinkHeader(mode === "and" ? and(at(6), at(0)) : or(at(6), at(0)));
  }

  private gateway(name: string, protocol: string | undefined, direction: DirectionQualifier | undefined, idSpan: SourceSpan): Predicate {
    if (direction !== undefined) this.fail("direction applied to 'gateway'", "'gateway' without src/dst", idSpan);
    if (protocol !== undefined && protocol !== "ip" && protocol !== "arp" && protocol !== "rarp") this.fail("illegal modifier of 'gateway'", "ip, arp or rarp", idSpan);
    if (this.link !== "ethernet") this.fail(`'gateway' is supported only on Ethernet, not ${linkNames[this.link]}`, undefined, idSpan);
    const ether = this.names.ether(name);
    if (!ether) this.fail(`unknown ether host '${name}'`, "a name listed in /etc/ethers", idSpan);
    const addresses = this.names.host(name);
    if (!addresses || addresses.ipv4.length === 0) this.fail(`unknown host '${name}'`, "a name with an IPv4 address in /etc/hosts", idSpan);
    let hosts = this.host(addresses.ipv4[0]!, 0xffffffff, protocol, undefined, "host", idSpan);
    for (const address of addresses.ipv4.slice(1)) hosts = or(hosts, this.host(address, 0xffffffff, protocol, undefined, "host", idSpan));
    return and(this.etherHost(ether, undefined), not(hosts));
  }

  // ---- ports ----------------------------------------------------------------------------

  private ipFirstFragment(): Predicate {
    return loadEquals(this.network(6), 2, 0, 0x1fff);
  }

  private ipv4HeaderEnd(): Value {
    const headerLength: Value = { kind: "binary", operator: "<<", left: { kind: "binary", operator: "&", left: load(this.network(0), 1), right: constant(0xf) }, right: constant(2) };
    return addValues(this.network(0), headerLength);
  }

  private portPrimitive(low: number, high: number, protocol: number | undefined, direction: DirectionQualifier | undefined, range: boolean, idSpan: SourceSpan): Predicate {
    if (high > 65535) this.fail(`illegal port number ${high} > 65535`, "a port from 0 to 65535", idSpan);
    if (low > 65535) this.fail(`illegal port number ${low} > 65535`, "a port from 0 to 65535", idSpan);
    if (low > high) [low, high] = [high, low];
    const mode = this.directionCheck(direction, idSpan);
    const protocols = protocol === undefined ? [ipProtocol.sctp, ipProtocol.tcp, ipProtocol.udp] : [protocol];
    const atom = (base: Value, offset: number) => {
      const port = load(addOffset(base, offset), 2);
      return range ? and(compare(">=", port, constant(low)), not(compare(">", port, constant(high)))) : compare("==", port, constant(low));
    };
    const ports = (base: Value) => {
      if (mode === "src") return atom(base, 0);
      if (mode === "dst") return atom(base, 2);
      return mode === "and" ? and(atom(base, 0), atom(base, 2)) : or(atom(base, 0), atom(base, 2));
    };
    const alternatives = (perProtocol: (p: number) => Predicate) => {
      if (protocols.length === 1) return perProtocol(protocols[0]!);
      return or(perProtocol(protocols[0]!), or(perProtocol(protocols[1]!), perProtocol(protocols[2]!)));
    };
    const ipv6 = and(this.linkProtocol(ethertype.ip6), alternatives((p) => and(loadEquals(this.network(6), 1, p), ports(this.network(40)))));
    const ipv4 = and(this.linkProtocol(ethertype.ip), alternatives((p) => and(and(loadEquals(this.network(9), 1, p), this.ipFirstFragment()), ports(this.ipv4HeaderEnd()))));
    return or(ipv6, ipv4);
  }

  // ---- proto / protochain -------------------------------------------------------------

  private protoPrimitive(value: number, protocol: string | undefined, direction: DirectionQualifier | undefined, idSpan: SourceSpan): Predicate {
    if (direction !== undefined) this.fail("direction applied to 'proto'", "'proto' without src/dst", idSpan);
    switch (protocol) {
      case undefined:
        return this.ipProtocol(value, "default");
      case "ip":
        return this.ipProtocol(value, "ip");
      case "ip6":
        return this.ipProtocol(value, "ip6");
      case "link":
        return this.linkProtocol(value);
      case "iso":
        return this.isoProtocol(value);
      case "arp":
      case "rarp":
        return this.fail(`${protocol} does not encapsulate another protocol`, undefined, idSpan);
      default:
        return this.fail(`'${protocol} proto' is bogus`, "ether, ip or ip6 before 'proto'", idSpan);
    }
  }

  private protochain(value: number, protocol: string | undefined, idSpan: SourceSpan): Predicate {
    if (this.linkPayload.kind !== "constant") this.fail("'protochain' not supported with variable length headers", "protochain before 'geneve' or 'vxlan'", idSpan);
    switch (protocol) {
      case undefined:
        return or(this.protochain(value, "ip", idSpan), this.protochain(value, "ip6", idSpan));
      case "ip":
        return and(this.linkProtocol(ethertype.ip), { kind: "protochain", version: 4, network: this.network(0), protocol: value });
      case "ip6":
        return and(this.linkProtocol(ethertype.ip6), { kind: "protochain", version: 6, network: this.network(0), protocol: value });
      default:
        return this.fail("bad protocol applied for 'protochain'", "ip, ip6 or nothing before 'protochain'", idSpan);
    }
  }

  // ---- broadcast / multicast / direction -------------------------------------------------

  private broadcast(protocol: string | undefined): Predicate {
    if (protocol === undefined || protocol === "link") {
      if (this.link !== "ethernet") this.fail(`not a broadcast link (${linkNames[this.link]})`, "'ip broadcast', or an Ethernet capture");
      return this.etherHost(new Uint8Array(6).fill(0xff), "dst");
    }
    if (protocol === "ip") {
      const hostMask = ~(this.options.netmask ?? 0) >>> 0;
      const zeros = loadEquals(this.network(16), 4, 0, hostMask);
      const ones = loadEquals(this.network(16), 4, hostMask, hostMask);
      return and(this.linkProtocol(ethertype.ip), or(zeros, ones));
    }
    return this.fail("only link-layer/IP broadcast filters supported", "'ether broadcast' or 'ip broadcast'");
  }

  private multicast(protocol: string | undefined): Predicate {
    if (protocol === undefined || protocol === "link") {
      if (this.link !== "ethernet") this.fail(`link-layer multicast filters are supported only on Ethernet, not ${linkNames[this.link]}`, "'ip multicast' or 'ip6 multicast'");
      return this.withLinkHeader(compare("&", load(this.linkHeader, 1), constant(1)));
    }
    if (protocol === "ip") return and(this.linkProtocol(ethertype.ip), compare(">=", load(this.network(16), 1), constant(224)));
    if (protocol === "ip6") return and(this.linkProtocol(ethertype.ip6), loadEquals(this.network(24), 1, 255));
    return this.fail(`'${protocol} multicast' is not supported`, "'ether multicast', 'ip multicast' or 'ip6 multicast'");
  }

  private direction(direction: "inbound" | "outbound"): Predicate {
    let outgoing: Predicate;
    if (this.link === "sll") outgoing = loadEquals(this.linkHeader, 2, 4);
    else if (this.link === "sll2") outgoing = loadEquals(addOffset(this.linkHeader, 10), 1, 4);
    else if (this.options.packetMetadata) outgoing = compare("==", { kind: "packetType" }, constant(4));
    else return this.fail(`inbound/outbound not supported on ${linkNames[this.link]} when reading savefiles`, "a Linux cooked capture (-i any) or a live filter");
    return direction === "outbound" ? outgoing : not(outgoing);
  }

  private byteOperation(offset: number, operator: "&" | "|" | "<" | ">" | "=", value: number): Predicate {
    const loaded = load(addOffset(this.linkHeader, offset), 1);
    switch (operator) {
      case "=":
        return compare("==", loaded, constant(value));
      case "<":
        return not(compare(">=", loaded, constant(value)));
      case ">":
        return compare(">", loaded, constant(value));
      default:
        return not(compare("==", { kind: "binary", operator, left: loaded, right: constant(value) }, constant(0)));
    }
  }

  // ---- encapsulations -------------------------------------------------------------------

  private encapsulation(kind: "vlan" | "mpls" | "pppoes" | "geneve" | "vxlan", value: number | undefined, valueSpan: SourceSpan | undefined): Predicate {
    const span = valueSpan ?? this.span;
    switch (kind) {
      case "vlan": {
        if (this.mplsDepth > 0) this.fail("no VLAN match after MPLS");
        if (this.link !== "ethernet") this.fail(`no VLAN support for ${linkNames[this.link]}`, "an Ethernet capture");
        if (value !== undefined && value > 4095) this.fail(`VLAN tag ${value} greater than maximum 4095`, "a VLAN id from 0 to 4095", span);
        let result = or(or(this.linkProtocol(ethertype.vlan), this.linkProtocol(ethertype.qinq)), this.linkProtocol(ethertype.qinqOld));
        if (value !== undefined) result = and(result, loadEquals(this.network(0), 2, value, 0x0fff));
        if (this.options.packetMetadata && this.vlanDepth === 0 && this.linkTypeOffset?.kind === "constant" && this.linkPayload.kind === "constant") {
          // Live skb, as libpcap's Linux VLAN extensions: the outer tag is either in the skb
          // metadata (stripped from the data; offsets unchanged) or still in the data (offsets + 4).
          let stripped = compare("==", { kind: "vlanPresent" }, constant(1));
          if (value !== undefined) stripped = and(stripped, compare("==", { kind: "binary", operator: "&", left: { kind: "vlanTci" }, right: constant(0x0fff) }, constant(value)));
          const shift: Value = { kind: "binary", operator: "<<", left: { kind: "binary", operator: "^", left: { kind: "vlanPresent" }, right: constant(1) }, right: constant(2) };
          result = or(stripped, result);
          this.linkPayload = addValues(this.linkPayload, shift);
          this.linkTypeOffset = addValues(this.linkTypeOffset, shift);
        } else {
          this.linkPayload = addOffset(this.linkPayload, 4);
          this.linkTypeOffset = addOffset(this.linkTypeOffset!, 4);
        }
        this.vlanDepth++;
        return result;
      }
      case "mpls": {
        let result: Predicate;
        if (this.mplsDepth > 0) result = loadEquals(this.network(-2), 1, 0, 0x01);
        else if (this.link === "ethernet") result = this.linkProtocol(ethertype.mpls);
        else if (this.link === "ppp") result = this.linkProtocol(0x0281);
        else return this.fail(`no MPLS support for ${linkNames[this.link]}`, "an Ethernet capture");
        if (value !== undefined) {
          if (value > 0xfffff) this.fail(`MPLS label ${value} greater than maximum 1048575`, "a label from 0 to 1048575", span);
          result = and(result, loadEquals(this.network(0), 4, (value << 12) >>> 0, 0xfffff000));
        }
        this.networkOffset += 4;
        this.mplsDepth++;
        return result;
      }
      case "pppoes": {
        let result = this.linkProtocol(ethertype.pppoes);
        if (value !== undefined) {
          if (value > 0xffff) this.fail(`PPPoE session number ${value} greater than maximum 65535`, "a session id from 0 to 65535", span);
          result = and(result, loadEquals(this.network(0), 4, value, 0xffff));
        }
        this.linkHeader = this.network(6);
        this.linkTypeOffset = this.linkHeader;
        this.linkPayload = addOffset(this.linkHeader, 2);
        this.networkOffset = 0;
        this.link = "ppp";
        return result;
      }
      case "geneve":
      case "vxlan":
        return this.tunnel(kind, value, span);
    }
  }

  /**
   * geneve/vxlan as libpcap generates them: UDP to port 6081/4789 over IPv4
   * (first fragment) or IPv6, header checks, then offsets recomputed at run
   * time into scratch registers so later tests look inside the tunnel.
   */
  private tunnel(kind: "geneve" | "vxlan", value: number | undefined, span: SourceSpan): Predicate {
    const port = kind === "geneve" ? 6081 : 4789;
    if (value !== undefined && value > 0xffffff) this.fail(`${kind === "geneve" ? "Geneve" : "VXLAN"} VNI ${value} greater than maximum 16777215`, "a VNI from 0 to 16777215", span);
    const headerChecks = (base: Value) => {
      let checks = kind === "geneve" ? loadEquals(addOffset(base, 8), 1, 0, 0xc0) : loadEquals(addOffset(base, 8), 1, 0x08);
      if (value !== undefined) checks = and(checks, loadEquals(addOffset(base, 12), 4, (value << 8) >>> 0, 0xffffff00));
      return checks;
    };
    const ipHeaderLength = this.nextRegister++;
    const udpDestination = (base: Value) => compare("==", load(addOffset(base, 2), 2), constant(port));
    const ipv4Base = this.ipv4HeaderEnd();
    const ipv4Check = and(and(this.linkProtocol(ethertype.ip), and(and(loadEquals(this.network(9), 1, ipProtocol.udp), this.ipFirstFragment()), udpDestination(ipv4Base))), headerChecks(ipv4Base));
    const headerLength: Value = { kind: "binary", operator: "<<", left: { kind: "binary", operator: "&", left: load(this.network(0), 1), right: constant(0xf) }, right: constant(2) };
    const ipv6Base = this.network(40);
    const ipv6Check = and(and(this.linkProtocol(ethertype.ip6), and(loadEquals(this.network(6), 1, ipProtocol.udp), udpDestination(ipv6Base))), headerChecks(ipv6Base));
    const matched = or(
      and(ipv4Check, { kind: "assign", register: ipHeaderLength, value: headerLength }),
      and(ipv6Check, { kind: "assign", register: ipHeaderLength, value: constant(40) }),
    );
    // Start of the tunnel header: the IP header length, plus the network offset, plus the UDP header.
    const start: Value = addValues(this.network(8), { kind: "register", index: ipHeaderLength });
    const linkTypeRegister = this.nextRegister++;
    const linkHeaderRegister = this.nextRegister++;
    const linkPayloadRegister = this.nextRegister++;
    const startRegister = this.nextRegister++;
    const startValue: Value = { kind: "register", index: startRegister };
    let offsets: Predicate;
    if (kind === "geneve") {
      const headerEnd: Value = addValues(addOffset({ kind: "binary", operator: "*", left: { kind: "binary", operator: "&", left: load(startValue, 1), right: constant(0x3f) }, right: constant(4) }, 8), startValue);
      const end: Value = { kind: "register", index: linkHeaderRegister };
      offsets = and(
        and(and({ kind: "assign", register: startRegister, value: start }, { kind: "assign", register: linkTypeRegister, value: addOffset(startValue, 2) }), { kind: "assign", register: linkHeaderRegister, value: headerEnd }),
        or(
          and(loadEquals(addOffset(startValue, 2), 2, 0x6558), and({ kind: "assign", register: linkTypeRegister, value: addOffset(end, 12) }, { kind: "assign", register: linkPayloadRegister, value: addOffset(end, 14) })),
          { kind: "assign", register: linkPayloadRegister, value: end },
        ),
      );
      this.geneve = true;
    } else {
      offsets = and(
        and({ kind: "assign", register: startRegister, value: start }, { kind: "assign", register: linkHeaderRegister, value: addOffset(startValue, 8) }),
        and({ kind: "assign", register: linkTypeRegister, value: addOffset(startValue, 20) }, { kind: "assign", register: linkPayloadRegister, value: addOffset(startValue, 22) }),
      );
      this.geneve = false;
    }
    this.link = "ethernet";
    this.linkHeader = { kind: "register", index: linkHeaderRegister };
    this.linkTypeOffset = { kind: "register", index: linkTypeRegister };
    this.linkPayload = { kind: "register", index: linkPayloadRegister };
    this.networkOffset = 0;
    this.vlanDepth = 0;
    this.mplsDepth = 0;
    return and(matched, offsets);
  }

  /** After geneve, link-layer tests first check that an Ethernet header is present. */
  private withLinkHeader(test: Predicate): Predicate {
    if (!this.geneve) return test;
    return and(not(compare("==", this.linkHeader, this.linkPayload)), test);
  }

  // ---- arithmetic -------------------------------------------------------------------------

  private relation(operator: string, leftNode: ArithmeticNode, rightNode: ArithmeticNode): Predicate {
    const left = this.arithmetic(leftNode);
    const right = this.arithmetic(rightNode);
    const relationCompare = (op: "==" | ">" | ">="): Predicate => ({ kind: "compare", operator: op, left: left.value, right: right.value, origin: "relation" });
    let test: Predicate;
    switch (operator) {
      case ">":
        test = relationCompare(">");
        break;
      case ">=":
        test = relationCompare(">=");
        break;
      case "=":
        test = relationCompare("==");
        break;
      case "<=":
        test = not(relationCompare(">"));
        break;
      case "<":
        test = not(relationCompare(">="));
        break;
      default:
        test = not(relationCompare("=="));
    }
    const checks = left.checks && right.checks ? and(left.checks, right.checks) : left.checks ?? right.checks;
    return checks ? and(checks, test) : test;
  }

  private arithmetic(node: ArithmeticNode): Arithmetic {
    this.span = node.span;
    switch (node.kind) {
      case "number":
        return { value: constant(node.value), checks: undefined };
      case "length":
        return { value: { kind: "packetLength" }, checks: undefined };
      case "negate": {
        const operand = this.arithmetic(node.operand);
        return { value: { kind: "binary", operator: "-", left: constant(0), right: operand.value }, checks: operand.checks };
      }
      case "binary": {
        const left = this.arithmetic(node.left);
        const right = this.arithmetic(node.right);
        if ((node.operator === "/" || node.operator === "%") && node.right.kind === "number" && node.right.value === 0) {
          this.fail(node.operator === "/" ? "division by zero" : "modulus by zero", "a non-zero divisor", node.right.span);
        }
        if ((node.operator === "<<" || node.operator === ">>") && node.right.kind === "number" && node.right.value > 31) {
          this.fail("shift by more than 31 bits", "a shift from 0 to 31", node.right.span);
        }
        let checks = left.checks;
        if (this.options.arithmeticChecks === "strict" && right.checks) checks = checks ? and(checks, right.checks) : right.checks;
        return { value: { kind: "binary", operator: node.operator, left: left.value, right: right.value }, checks };
      }
      case "load":
        return this.packetAccess(node);
    }
  }

  private packetAccess(node: Extract<ArithmeticNode, { kind: "load" }>): Arithmetic {
    const index = this.arithmetic(node.index);
    const withIndex = (check: Predicate) => (index.checks ? and(index.checks, check) : check);
    switch (node.protocol) {
      case "link":
        return { value: load(addValues(this.linkHeader, index.value), node.size), checks: index.checks };
      case "ip":
      case "arp":
      case "rarp":
      case "decnet":
      case "sca":
      case "lat":
      case "moprc":
      case "mopdl":
      case "ip6":
        return { value: load(addValues(this.network(0), index.value), node.size), checks: withIndex(this.protocolAbbreviation(node.protocol)) };
      case "tcp":
      case "udp":
      case "sctp":
      case "icmp":
      case "igmp":
      case "igrp":
      case "pim":
      case "vrrp":
      case "carp": {
        const transport = and(this.protocolAbbreviation(node.protocol), this.ipFirstFragment());
        const checks = and(this.protocolAbbreviation("ip"), withIndex(transport));
        return { value: load(addValues(this.ipv4HeaderEnd(), index.value), node.size), checks };
      }
      case "icmp6": {
        const check = and(this.linkProtocol(ethertype.ip6), loadEquals(this.network(6), 1, ipProtocol.icmp6));
        return { value: load(addValues(this.network(40), index.value), node.size), checks: withIndex(check) };
      }
      default:
        return this.fail(`'${node.protocol}[...]' is not supported`, "a packet access on ether, ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6, igmp, pim, vrrp");
    }
  }
}

function addValues(base: Value, index: Value): Value {
  if (index.kind === "constant") return addOffset(base, index.value);
  if (base.kind === "constant" && base.value === 0) return index;
  return { kind: "binary", operator: "+", left: index, right: base };
}

function bitsShift(value: number, shift: number): number {
  return shift >= 32 ? 0 : (value << shift) >>> 0;
}

/** libpcap's __pcap_atoin: dotted decimal with 1 to 4 parts; `bits` is 8 per part. */
function parsePartialIpv4(text: string): { value: number; bits: number } | undefined {
  const parts = text.split(".");
  if (parts.length > 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^[0-9]+$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return { value: value >>> 0, bits: parts.length * 8 };
}

/** IS-IS PDU types per keyword, in the order libpcap tests them. */
const isisPduTypes: Record<string, number[]> = {
  l1: [26, 24, 18, 15, 17], l2: [27, 25, 20, 16, 17], iih: [17, 15, 16], lsp: [18, 20], snp: [27, 26, 24, 25], csnp: [24, 25], psnp: [26, 27],
};

/** 802.2 LLC control-field tests: I frames have bit 0 clear; S and U frames by mask and value. */
const llcControl: Record<string, { mask: number; value: number }> = {
  i: { mask: 1, value: 0 }, s: { mask: 3, value: 1 }, u: { mask: 3, value: 3 },
  rr: { mask: 0x0f, value: 0x01 }, rnr: { mask: 0x0f, value: 0x05 }, rej: { mask: 0x0f, value: 0x09 },
  ui: { mask: 0xef, value: 0x03 }, ua: { mask: 0xef, value: 0x63 }, disc: { mask: 0xef, value: 0x43 }, dm: { mask: 0xef, value: 0x0f },
  sabme: { mask: 0xef, value: 0x6f }, test: { mask: 0xef, value: 0xe3 }, xid: { mask: 0xef, value: 0xaf }, frmr: { mask: 0xef, value: 0x87 },
};

/** libpcap's __pcap_atodn (sscanf "%hu.%hu"): `area.node` as (area << 10) | (node & 1023), kept to 16 bits as libpcap does. */
function decnetAddress(text: string): number | undefined {
  const match = /^(\d+)\.(\d+)/.exec(text);
  if (!match) return undefined;
  return ((Number(match[1]) << 10) | (Number(match[2]) & 1023)) & 0xffff;
}

function describeId(id: IdValue): string {
  switch (id.kind) {
    case "number":
      return `number ${id.text}`;
    case "name":
      return `name '${id.text}'`;
    default:
      return `address ${id.text}`;
  }
}
