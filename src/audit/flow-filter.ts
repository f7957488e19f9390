/**
 * A tcpdump expression over an audit record's 5-tuple: `tcp dst port 22`,
 * `net 10.0.0.0/8 and not port 53`, `ip6 and udp`, … Used by alert rules
 * (and by any question "which records match this expression").
 *
 * How it is exact: the record's flow becomes the packet its originator sent
 * first — a raw IPv4 or IPv6 header (no options, not fragmented) and a TCP
 * header (SYN) or UDP header, no payload — and the compiled filter
 * (compileFilter, link type raw IP, the same reference evaluator the kernel
 * code is checked against) runs over it. IPv4-mapped IPv6 addresses
 * (`::ffff:192.0.2.1`, a dual-stack socket's IPv4 peer) are IPv4 on the
 * wire, and so in the packet. The originator is the local end of
 * an outbound flow, the remote end of an inbound flow and of a listening
 * socket (the packet is the one a client would send to it), and the client
 * of a DNS exchange. A flow whose direction is unknown matches when either
 * direction's packet matches.
 *
 * Only primitives decided by the 5-tuple are accepted — host, net, port,
 * portrange, proto, protochain, the protocol names (tcp, udp, ip, ip6, …),
 * broadcast/multicast of an address, and/or/not. Expressions that look at
 * packet contents a record does not have (`tcp[13] & 2 != 0`, `len > 100`,
 * `ether host …`, `inbound`, vlan/mpls, …) are refused with a
 * FilterSyntaxError pointing at them, rather than evaluated over a made-up
 * packet.
 */
import type { FilterNode } from "../filter/ast.js";
import { compileFilter, type CompiledFilter } from "../filter/compile-filter.js";
import { FilterSyntaxError } from "../filter/filter-syntax-error.js";
import { parseFilter } from "../filter/parser.js";
import { parseAddressPrefix } from "../firewall/address-prefix.js";
import type { AuditRecord } from "./audit-record.js";
import { headerOnlyPacket } from "../pcap/header-packet.js";
import { expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";

/** LINKTYPE_RAW: packets begin with the IP header. */
const rawIpLinkType = 101;

/** One direction of a flow: what the synthesised packet carries. */
export interface FlowPacketTuple {
  protocol: "tcp" | "udp";
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

export interface FlowFilter {
  readonly expression: string;
  readonly compiled: CompiledFilter;
  /** Whether the record's flow (or DNS exchange) matches; false for records without one (drop, loss). */
  matches(record: AuditRecord): boolean;
  /** Whether one direction of a flow matches. */
  matchesTuple(tuple: FlowPacketTuple): boolean;
}

export interface FlowFilterOptions {
  /**
   * "originator" (default): the packet the flow's originator sent first, as
   * described above. "either": a packet in either direction (any packet of
   * the flow), as `netbpf audit query` asks.
   */
  directions?: "originator" | "either";
}

/**
 * Compiles a tcpdump expression for audit records. Throws a
 * FilterSyntaxError for an invalid expression or one that looks past the
 * 5-tuple.
 */
export function compileFlowFilter(expression: string, options: FlowFilterOptions = {}): FlowFilter {
  expectString("compile flow filter", "expression", expression);
  expectObject("compile flow filter", "options", options);
  if (options.directions !== undefined) expectOneOf("compile flow filter", "options.directions", options.directions, ["originator", "either"]);
  const either = options.directions === "either";
  const ast = parseFilter(expression);
  if (ast !== undefined) checkFlowPrimitives(expression, ast);
  const compiled = compileFilter(expression, { linkType: rawIpLinkType });
  const matchesTuple = (tuple: FlowPacketTuple): boolean => {
    const packet = flowPacket(tuple);
    return packet !== undefined && compiled.matches(packet);
  };
  return {
    expression,
    compiled,
    matchesTuple,
    matches(record: AuditRecord): boolean {
      return recordTuples(record, either).some(matchesTuple);
    },
  };
}

/**
 * The packets a record stands for, as tuples: one for a known originator,
 * both directions when the direction is unknown (or `bothDirections`), none
 * without a flow or DNS exchange.
 */
export function recordTuples(record: AuditRecord, bothDirections = false): FlowPacketTuple[] {
  const flow = record.flow;
  if (flow !== null) {
    const outbound: FlowPacketTuple = {
      protocol: flow.protocol, sourceAddress: flow.localAddress, sourcePort: flow.localPort, destinationAddress: flow.remoteAddress, destinationPort: flow.remotePort,
    };
    const inbound: FlowPacketTuple = {
      protocol: flow.protocol, sourceAddress: flow.remoteAddress, sourcePort: flow.remotePort, destinationAddress: flow.localAddress, destinationPort: flow.localPort,
    };
    if (bothDirections) return [outbound, inbound];
    if (record.kind === "listen" || flow.direction === "inbound") return [inbound];
    if (flow.direction === "outbound") return [outbound];
    return [outbound, inbound];
  }
  const dns = record.dns;
  if (dns !== null) {
    const query: FlowPacketTuple = { protocol: "udp", sourceAddress: dns.clientAddress, sourcePort: dns.clientPort, destinationAddress: dns.serverAddress, destinationPort: dns.serverPort };
    if (!bothDirections) return [query];
    return [query, { protocol: "udp", sourceAddress: dns.serverAddress, sourcePort: dns.serverPort, destinationAddress: dns.clientAddress, destinationPort: dns.clientPort }];
  }
  return [];
}

/** Which filter syntax a record's flow cannot answer, and what to use instead. */
const refusedNodes: Partial<Record<FilterNode["kind"], string>> = {
  relation: "packet data comparisons (proto[offset] …) look at bytes an audit record does not have; use host, net, port or portrange",
  length: "less/greater test packet lengths; an audit record is a flow, not a packet",
  direction: "inbound/outbound are packet directions; use the rule's direction field",
  encapsulation: "vlan, mpls, pppoes, geneve and vxlan are link encapsulations an audit record does not have",
  pppoed: "pppoed is a link protocol an audit record does not have",
  ifindex: "ifindex is not part of an audit record",
  byte: "byte tests look at packet contents an audit record does not have",
  llc: "llc is a link protocol an audit record does not have",
  unsupported: "this primitive is not supported",
};

function checkFlowPrimitives(expression: string, node: FilterNode): void {
  switch (node.kind) {
    case "and":
    case "or":
      checkFlowPrimitives(expression, node.left);
      checkFlowPrimitives(expression, node.right);
      return;
    case "not":
      checkFlowPrimitives(expression, node.operand);
      return;
    case "primitive":
    case "protocol":
    case "broadcast":
    case "multicast":
      // Link-layer qualifiers (ether, gateway, …) fail to compile on raw IP with their own error.
      return;
    default:
      throw new FilterSyntaxError(expression, node.span, `not decided by a flow's addresses and ports: ${refusedNodes[node.kind] ?? node.kind}`);
  }
}

/** The first packet of the flow in the tuple's direction (raw IP), or undefined for an address that does not parse. */
export function flowPacket(tuple: FlowPacketTuple): Uint8Array | undefined {
  let source: Buffer;
  let destination: Buffer;
  try {
    source = parseAddressPrefix(unmapped(tuple.sourceAddress)).address;
    destination = parseAddressPrefix(unmapped(tuple.destinationAddress)).address;
  } catch {
    return undefined;
  }
  if (source.length !== destination.length) return undefined;
  // The originator's first packet: a SYN for TCP.
  return headerOnlyPacket({
    protocol: tuple.protocol === "tcp" ? 6 : 17, source, destination, sourcePort: tuple.sourcePort, destinationPort: tuple.destinationPort,
    tcpFlags: 0x02, dontFragment: true,
  });
}

/** An IPv4-mapped IPv6 address (a dual-stack socket's IPv4 peer) as the IPv4 address on the wire. */
function unmapped(address: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match ? match[1]! : address;
}
