/**
 * What a firewall, limit or mark rule matches: protocol, a port or port
 * range, and any tcpdump filter expression. Parsed and checked here, once,
 * for every tool of the firewall folder; addresses are in address-prefix.ts.
 */
import { compileFilter, type CompiledFilter } from "../filter/compile-filter.js";
import { argumentError, expectInteger, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";

export type RuleDirection = "ingress" | "egress" | "both";

export interface PortRange {
  first: number;
  last: number;
}

/** The non-address parts of a rule; every field is optional and all given ones must match. */
export interface TrafficMatch {
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmp6, …). */
  protocol?: number;
  /** Source or destination port in this range (TCP, UDP and SCTP; IPv4 first fragments). */
  ports?: PortRange;
  /** A pcap-filter expression over the Ethernet frame. */
  expression?: string;
}

import { parseProtocol, protocolName } from "../pcap/ip-protocol.js";
export { parseProtocol, protocolName } from "../pcap/ip-protocol.js";

/** "80" or "8000-8100". */
export function parsePortRange(text: string): PortRange {
  const match = /^\s*(\d{1,5})\s*(?:[-:]\s*(\d{1,5})\s*)?$/.exec(text);
  const first = match ? Number(match[1]) : NaN;
  const last = match?.[2] !== undefined ? Number(match[2]) : first;
  if (!match || first < 1 || last > 65535 || first > last) {
    throw new UsageError("parse port", `${JSON.stringify(text)} is not a port (1-65535) or a range like 8000-8100`);
  }
  return { first, last };
}

/** A caller's port, range text or { first, last }, checked and named `name` in errors. */
export function portRangeOf(operation: string, name: string, ports: unknown): PortRange {
  if (typeof ports === "string" || typeof ports === "number") return parsePortRange(String(ports));
  if (typeof ports !== "object" || ports === null) throw argumentError(operation, name, 'a port, a range like "8000-8100" or { first, last }', ports);
  const range = ports as Partial<PortRange>;
  const first = expectInteger(operation, `${name}.first`, range.first, 1, 65535);
  return { first, last: expectInteger(operation, `${name}.last`, range.last, first, 65535) };
}

export function formatPortRange(range: PortRange): string {
  return range.first === range.last ? String(range.first) : `${range.first}-${range.last}`;
}

export function parseDirection(text: string): RuleDirection {
  if (text === "in" || text === "ingress") return "ingress";
  if (text === "out" || text === "egress") return "egress";
  if (text === "both" || text === "any") return "both";
  throw new UsageError("parse direction", `direction must be ingress, egress or both, got ${JSON.stringify(text)}`);
}

/** Ethernet, the link type of every interface the firewall attaches to. */
export const ethernetLinkType = 1;

/** Compiles a rule's expression (a FilterSyntaxError, which is a UsageError, for a bad one). */
export function compileMatchExpression(expression: string, hook: "xdp" | "tc"): CompiledFilter {
  return compileFilter(expression, { linkType: ethernetLinkType, packetMetadata: hook === "tc" });
}

/** Checks a match: ports need a protocol that has them. */
export function checkTrafficMatch(match: TrafficMatch): void {
  if (match.ports && match.protocol !== undefined && ![6, 17, 132].includes(match.protocol)) {
    throw new UsageError("check rule", `ports need protocol tcp, udp or sctp, not ${protocolName(match.protocol)}`);
  }
  if (match.expression !== undefined) {
    if (match.expression.trim().length === 0) throw new UsageError("check rule", "the filter expression is empty");
    compileMatchExpression(match.expression, "xdp");
  }
}

/** The match of a rule as a caller gives it (protocol, ports, expression), each field checked and named `<name>.<field>` in errors. */
export function trafficMatchOf(operation: string, name: string, input: { protocol?: unknown; ports?: unknown; expression?: unknown }): TrafficMatch {
  const match: TrafficMatch = {};
  if (input.protocol !== undefined) {
    if (typeof input.protocol !== "string" && typeof input.protocol !== "number") throw argumentError(operation, `${name}.protocol`, "a protocol name or number", input.protocol);
    match.protocol = parseProtocol(String(input.protocol));
  }
  if (input.ports !== undefined) match.ports = portRangeOf(operation, `${name}.ports`, input.ports);
  if (input.expression !== undefined) match.expression = expectString(operation, `${name}.expression`, input.expression);
  checkTrafficMatch(match);
  return match;
}

export function describeTrafficMatch(match: TrafficMatch): string[] {
  const parts: string[] = [];
  if (match.protocol !== undefined) parts.push(protocolName(match.protocol));
  if (match.ports) parts.push(`port ${formatPortRange(match.ports)}`);
  if (match.expression !== undefined) parts.push(`'${match.expression}'`);
  return parts;
}

/** A stable text for comparing two matches. */
export function trafficMatchKey(match: TrafficMatch): string {
  return JSON.stringify([match.protocol ?? null, match.ports ? [match.ports.first, match.ports.last] : null, match.expression?.trim().replace(/\s+/g, " ") ?? null]);
}
