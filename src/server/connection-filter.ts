/**
 * The dashboard's filter box: a pcap-filter expression, compiled on the
 * server by the filter compiler (src/filter) for raw IP packets, and applied
 * to connections. A connection matches when a packet of it in either
 * direction would (local → remote as outbound, remote → local as inbound),
 * so `port 443`, `host 10.0.0.1`, `tcp and dst port 80`, `inbound`, … mean
 * what they mean to tcpdump. Payload accessors see a header-only packet.
 */
import { compileFilter, maximumExpressionLength, type CompiledFilter } from "../filter/compile-filter.js";
import { parseIpv4, parseIpv6 } from "../pcap/address-text.js";
import { headerOnlyPacket } from "../pcap/header-packet.js";
import { LinkType } from "../pcap/link-type.js";
import { argumentError, expectFunction, expectObject, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";

/** What the filter needs of a connection. */
export interface FilterableConnection {
  protocol?: string;
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
}

const protocolNumbers: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmp6: 58, sctp: 132 };

/** Linux packet types, as the filter's inbound/outbound read them. */
const packetHost = 0;
const packetOutgoing = 4;

/** The longest expression the page may send (the compiler's own limit is far above what a box needs). */
export const maximumConnectionFilterLength = Math.min(1024, maximumExpressionLength);

function addressBytes(text: string | undefined): Buffer | undefined {
  if (text === undefined) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  return parseIpv4(mapped ? mapped[1]! : text) ?? parseIpv6(text);
}

/** A header-only IPv4 or IPv6 packet from `source` to `destination` (TCP with ACK, UDP, or the bare IP header). */
export function connectionPacket(protocol: number, source: Buffer, sourcePort: number, destination: Buffer, destinationPort: number): Buffer {
  return headerOnlyPacket({ protocol, source, sourcePort, destination, destinationPort });
}

const operation = "filter connections";

function checkOptionalText(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "string") throw argumentError(operation, name, "a string", value);
}

function checkOptionalPort(name: string, value: unknown): void {
  if (value !== undefined && (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 65535)) {
    throw argumentError(operation, name, "a port number (an integer from 0 to 65535)", value);
  }
}

/** Runs once per row of each dashboard update: typeof checks only. */
function checkConnection(connection: FilterableConnection): void {
  if (typeof connection !== "object" || connection === null) throw argumentError(operation, "connection", "an object", connection);
  checkOptionalText("connection.protocol", connection.protocol);
  checkOptionalText("connection.localAddress", connection.localAddress);
  checkOptionalText("connection.remoteAddress", connection.remoteAddress);
  checkOptionalPort("connection.localPort", connection.localPort);
  checkOptionalPort("connection.remotePort", connection.remotePort);
}

export class ConnectionFilter {
  readonly expression: string;
  readonly #compiled: CompiledFilter;

  /** Use ConnectionFilter.compile. */
  private constructor(expression: string, compiled: CompiledFilter) {
    this.expression = expectString(operation, "expression", expression);
    expectFunction(operation, "compiled.matches", expectObject<CompiledFilter>(operation, "compiled", compiled).matches);
    this.#compiled = compiled;
  }

  /**
   * Compiles an expression typed into the page. Throws a UsageError (a
   * FilterSyntaxError for bad syntax) whose message says what is wrong; an
   * empty expression is refused: it means "no filter".
   */
  static compile(expression: unknown): ConnectionFilter {
    const trimmed = expectString(operation, "expression", expression).trim();
    if (trimmed === "") throw new UsageError(operation, "the expression is empty", "leave the box empty for no filter");
    if (trimmed.length > maximumConnectionFilterLength) throw new UsageError(operation, `the expression is ${trimmed.length} characters long`, `at most ${maximumConnectionFilterLength}`);
    if (/[\u0000-\u001f\u007f]/.test(trimmed)) throw new UsageError(operation, "the expression contains control characters");
    return new ConnectionFilter(trimmed, compileFilter(trimmed, { linkType: LinkType.RAW, packetMetadata: true }));
  }

  /** Whether the connection matches; one without both addresses (or with an unknown protocol) matches nothing. */
  matches(connection: FilterableConnection): boolean {
    checkConnection(connection);
    const local = addressBytes(connection.localAddress);
    const remote = addressBytes(connection.remoteAddress);
    if (!local || !remote || local.length !== remote.length) return false;
    const protocol = protocolNumbers[connection.protocol ?? ""] ?? Number(connection.protocol);
    if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255) return false;
    const localPort = connection.localPort ?? 0;
    const remotePort = connection.remotePort ?? 0;
    const outbound = connectionPacket(protocol, local, localPort, remote, remotePort);
    if (this.#compiled.matches({ data: outbound, packetType: packetOutgoing })) return true;
    const inbound = connectionPacket(protocol, remote, remotePort, local, localPort);
    return this.#compiled.matches({ data: inbound, packetType: packetHost });
  }
}
