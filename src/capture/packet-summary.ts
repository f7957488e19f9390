/**
 * tcpdump's one-line packet summaries (`tcpdump -n` output), for Ethernet,
 * Linux cooked (SLL, SLL2) and raw IP captures: IPv4/IPv6 with TCP, UDP,
 * ICMP and ICMPv6, ARP and RARP, VLAN tags; `-e` link-level headers, `-v` IP header
 * fields and transport checksums, `-x` / `-X` hex dumps; DNS (UDP and TCP
 * port 53, mDNS on UDP 5353), BOOTP/DHCP (UDP 67, 68), NTP (UDP 123),
 * syslog (UDP 514), SIP (UDP 5060) and the text protocols over TCP (FTP,
 * SMTP, WHOIS, HTTP, RTSP), with and without -v.
 *
 * Names are never resolved: the output is that of `tcpdump -n`. Other
 * application protocols above TCP and UDP are not decoded; tcpdump decodes
 * them on their well-known ports.
 */
import { readdirSync, readFileSync } from "node:fs";
import { LinkType } from "../pcap/link-type.js";
import { formatHardwareAddress, formatIpv4, formatIpv6 } from "../pcap/address-text.js";
import { dnsSummary } from "./dns-summary.js";
import { printableText } from "./printable-text.js";
import { ntpSummary } from "./ntp-summary.js";
import { bootpSummary } from "./bootp-summary.js";
import { syslogSummary } from "./syslog-summary.js";
import { sipSummary, tcpTextProtocol, textProtocolSummary } from "./text-protocol-summary.js";
import { decoderCut } from "./decoder-cut.js";
import { arpSummary } from "./arp-summary.js";
import { etherTypeNames } from "./ether-type-names.js";
import { hexLines } from "./hex-lines.js";
import { OptionsEnd, tcpOptionsSummary } from "./tcp-options-summary.js";
import { argumentError, expectBoolean, expectBytes, expectFunction, expectInteger, expectObject, expectOneOf } from "../sys/argument-checks.js";

export interface SummaryOptions {
  /** `-e`: print the link-level header. */
  linkLevel?: boolean;
  /** `-v`: IP header fields and transport checksums. */
  verbose?: boolean;
  /** `-x` (hex) / `-X` (hex and ASCII) / `-A` (ASCII): dump the packet from the network header on. */
  hexDump?: "hex" | "hex-ascii" | "ascii";
  /**
   * The timestamp in front of each line, as tcpdump's -t options: "time"
   * (default: time of day), "none" (-t), "epoch" (-tt: seconds since
   * 1970), "delta" (-ttt: since the previous packet), "date" (-tttt: date
   * and time of day), "since-first" (-ttttt: since the first packet).
   */
  timestampFormat?: "time" | "none" | "epoch" | "delta" | "date" | "since-first";
  /** `-q`: less protocol information (TCP as `tcp LENGTH`). */
  quiet?: boolean;
  /** `-S`: absolute TCP sequence numbers instead of relative ones. */
  absoluteSequence?: boolean;
  /** Time of day in local time (tcpdump's default) or UTC. */
  timeZone?: "local" | "utc";
  /** Digits after the second: 6 (default) or 9 (`--nano`). */
  timestampPrecision?: "microsecond" | "nanosecond";
  /** Interface names by index for SLL2 (default: this machine's). */
  interfaceName?: (ifindex: number) => string | undefined;
}

/** What a summary needs from a packet (a CapturePacket fits). */
export interface SummaryPacket {
  data: Uint8Array;
  /** Nanoseconds since the epoch. */
  timestamp: bigint;
  originalLength?: number;
  linkType: number;
}

/**
 * A header ended inside the captured bytes: tcpdump prints ` [|name]`, and `after` behind it (">" for TCP options cut inside the data
 * of an option after the first). `unwinds`: tcpdump's printer unwinds there (-x then dumps the whole frame).
 */
class Truncated {
  constructor(readonly protocol: string, readonly after = "", readonly unwinds = false) {}

  get text(): string {
    return ` [|${this.protocol}]${this.after}`;
  }
}

/**
 * Ethernet types netbpf decodes (IPv4, IPv6, ARP, RARP) or prints as name and length; others get the link
 * header and a dump, as tcpdump prints what it cannot decode.
 */
const printedEtherTypes = new Set([0x0800, 0x86dd, 0x0806, 0x8035, 0x8100, 0x88a8, 0x88cc, 0x8847, 0x8848, 0x8863, 0x8864, 0x888e, 0x9000]);

const ipProtocolNames = new Map<number, string>([
  [0, "Options"], [1, "ICMP"], [2, "IGMP"], [4, "IPIP"], [6, "TCP"], [17, "UDP"], [41, "IPv6"], [43, "Routing"],
  [44, "frag"], [47, "GRE"], [50, "ESP"], [51, "AH"], [58, "ICMPv6"], [59, "none"], [60, "DSTOPTS"], [103, "PIM"],
  [112, "VRRP"], [132, "SCTP"], [136, "UDPLite"],
]);

/** The direction word of an RPC message after the UDP header (0 call, 1 reply), or -1: tcpdump prints NFS before DNS when it fits port 2049. */
function rpcDirection(data: Uint8Array): number {
  return data.length >= 16 ? ((data[12]! << 24) | (data[13]! << 16) | (data[14]! << 8) | data[15]!) >>> 0 : -1;
}

/** UDP ports whose printers tcpdump tries before BOOTP's (either side), before NTP's, and before syslog's (SIP's: the same but 5060). */
const udpPortsBeforeBootp = new Set([53, 69, 525, 5353]);
const udpPortsBeforeNtp = new Set([53, 67, 68, 69, 161, 162, 500, 520, 525, 654, 4500, 5353, 7500, 8500]);
const udpPortsBeforeSyslog = new Set([53, 67, 68, 69, 88, 123, 161, 162, 496, 500, 520, 521, 525, 546, 547, 646, 654, 698, 701, 750, 921, 1589,
  1645, 1646, 1700, 1701, 1812, 1813, 2103, 2104, 3503, 3799, 4500, 5060, 5353, 5359, 6343, 6696, 6697, 7000, 7001, 7002, 7003, 7004, 7005,
  7006, 7007, 7008, 7009, 7500, 8231, 8500, 12222, 12223]);
/** Ports tcpdump tries before syslog's only as the destination (HSRP, VAT, BFD, WB …), and only as the source (Broadcom LI). */
const udpDestinationPortsBeforeSyslog = new Set([1985, 3456, 3784, 3785, 4567, 4784, 6784]);
const udpSourcePortBeforeSyslog = 49152;
const sipPort = 5060;

/** The decoder of a UDP datagram's payload tcpdump would choose by its ports (DNS aside), if netbpf has it. */
function udpDecoder(sourcePort: number, destinationPort: number, data: Uint8Array): typeof ntpSummary | undefined {
  const bootp = sourcePort === 67 || sourcePort === 68 || destinationPort === 67 || destinationPort === 68;
  const ntp = sourcePort === 123 || destinationPort === 123;
  const syslog = sourcePort === 514 || destinationPort === 514;
  const sip = sourcePort === sipPort || destinationPort === sipPort;
  if (!bootp && !ntp && !syslog && !sip) return undefined;
  // tcpdump prints NFS first when port 2049 carries an RPC call to it or a reply from it.
  if (destinationPort === 2049 ? rpcDirection(data) === 0 : sourcePort === 2049 && rpcDirection(data) === 1) return undefined;
  if (bootp) return udpPortsBeforeBootp.has(sourcePort) || udpPortsBeforeBootp.has(destinationPort) ? undefined : bootpSummary;
  if (ntp) return udpPortsBeforeNtp.has(sourcePort) || udpPortsBeforeNtp.has(destinationPort) ? undefined : ntpSummary;
  // SIP's printer comes right before syslog's.
  if (sip) {
    const other = sourcePort === sipPort ? destinationPort : sourcePort;
    return (other !== sipPort && udpPortsBeforeSyslog.has(other)) || udpDestinationPortsBeforeSyslog.has(destinationPort)
      || sourcePort === udpSourcePortBeforeSyslog ? undefined : sipSummary;
  }
  return udpPortsBeforeSyslog.has(sourcePort) || udpPortsBeforeSyslog.has(destinationPort) || udpDestinationPortsBeforeSyslog.has(destinationPort)
    || sourcePort === udpSourcePortBeforeSyslog ? undefined : syslogSummary;
}

/** TCP ports whose printers tcpdump tries before DNS's (either side): no DNS decoding with one of these. */
const tcpPortsBeforeDns = new Set([21, 22, 23, 25, 43, 80, 179, 554, 1723, 6379, 6633, 6653, 8080, 8554, 10288]);

/** tcpdump -v's names for extension headers in the IPv6 header's next-header field. */
const ipv6NextHeaderNames = new Map<number, string>([[0, "Options"], [44, "Fragment"], [60, "unknown"]]);

const hex = (value: number, width = 0) => value.toString(16).padStart(width, "0");
const two = (value: number) => String(value).padStart(2, "0");

/** The bytes [offset, offset + length) of `bytes` exist (`length` ≥ 1). */
function checkAddressBytes(operation: string, bytes: unknown, offset: unknown, length: number): void {
  const data = expectBytes(operation, "bytes", bytes);
  expectInteger(operation, "offset", offset, 0);
  if ((offset as number) + length > data.length) throw argumentError(operation, "offset", `at most ${data.length - length} (${length} bytes from offset in ${data.length})`, offset);
}

/** `aa:bb:cc:dd:ee:ff`. */
export function macAddressText(bytes: Uint8Array, offset = 0, length = 6): string {
  expectInteger("format MAC address", "length", length, 1);
  checkAddressBytes("format MAC address", bytes, offset, length);
  return macText(bytes, offset, length);
}

/** macAddressText without the argument checks, for the summaries (per packet). */
function macText(bytes: Uint8Array, offset = 0, length = 6): string {
  return formatHardwareAddress(bytes, offset, length);
}

export function ipv4AddressText(bytes: Uint8Array, offset: number): string {
  checkAddressBytes("format IPv4 address", bytes, offset, 4);
  return formatIpv4(bytes, offset);
}

/** The address at `offset` as formatIpv6 writes it (inet_ntop's text, as tcpdump prints it). */
export function ipv6AddressText(bytes: Uint8Array, offset: number): string {
  checkAddressBytes("format IPv6 address", bytes, offset, 16);
  return formatIpv6(bytes, offset);
}

function internetChecksum(chunks: Uint8Array[]): number {
  let sum = 0;
  for (const chunk of chunks) {
    for (let i = 0; i + 1 < chunk.length; i += 2) sum += (chunk[i]! << 8) | chunk[i + 1]!;
    if (chunk.length % 2 === 1) sum += chunk[chunk.length - 1]! << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The checksum field value that would make the segment correct. */
function expectedChecksum(pseudoHeader: Uint8Array, segment: Uint8Array, checksumOffset: number): number {
  const copy = Uint8Array.from(segment);
  copy[checksumOffset] = 0;
  copy[checksumOffset + 1] = 0;
  return internetChecksum([pseudoHeader, copy]);
}

interface NetworkContext {
  version: 4 | 6;
  source: string;
  destination: string;
  /** The IP header: the source address at addressOffset, the destination right after it (addressLength bytes each). */
  header: Uint8Array;
  addressOffset: number;
  addressLength: number;
  /** Payload bytes of this layer that were captured (maybe fewer than `length`). */
  payload: Uint8Array;
  /** Length of the payload according to the IP header. */
  length: number;
  fragmented: boolean;
  /** After IPv6 extension headers tcpdump has printed the addresses already: transports print only ports. */
  addressesPrinted?: boolean;
}

/** The pseudo-header of a transport checksum (RFC 768, RFC 8200 8.1). */
function pseudoHeader(network: NetworkContext, protocol: number, length: number): Uint8Array {
  const { header: data, addressOffset, addressLength } = network;
  if (network.version === 4) {
    const header = new Uint8Array(12);
    header.set(data.subarray(addressOffset, addressOffset + 8), 0);
    const routed = sourceRouteDestination(data);
    if (routed >= 0) header.set(data.subarray(routed, routed + 4), 4);
    header[9] = protocol;
    header[10] = length >> 8;
    header[11] = length & 0xff;
    return header;
  }
  const header = new Uint8Array(40);
  header.set(data.subarray(addressOffset, addressOffset + 2 * addressLength), 0);
  header[32] = (length >>> 24) & 0xff;
  header[33] = (length >> 16) & 0xff;
  header[34] = (length >> 8) & 0xff;
  header[35] = length & 0xff;
  header[39] = protocol;
  return header;
}

/**
 * Where the final destination of a valid loose or strict source route option of the IPv4 header `data` is, or -1:
 * tcpdump takes it for the pseudo-header instead of the destination address.
 */
function sourceRouteDestination(data: Uint8Array): number {
  const headerLength = (data[0]! & 0x0f) * 4;
  for (let offset = 20; offset < headerLength; ) {
    const code = data[offset]!;
    if (code === 0) break;
    let length = 1;
    if (code !== 1) {
      length = data[offset + 1] ?? 0;
      if (length < 2) break;
    }
    if (offset + length > headerLength || offset + length > data.length) break;
    if ((code === 131 || code === 137) && length >= 7) return offset + length - 4;
    offset += length;
  }
  return -1;
}

/** Which field of a packet to summarize is wrong (the cold half of the summaries' checks). */
function badPacket(packet: unknown, withTimestamp: boolean): never {
  const operation = "summarize packets";
  if (typeof packet !== "object" || packet === null) throw argumentError(operation, "packet", "an object with data, linkType and timestamp (a SummaryPacket)", packet);
  const { data, linkType, timestamp, originalLength } = packet as Partial<SummaryPacket>;
  if (!(data instanceof Uint8Array)) throw argumentError(operation, "packet.data", "a Buffer or Uint8Array", data);
  if (typeof linkType !== "number") throw argumentError(operation, "packet.linkType", "a link-type number (LinkType)", linkType);
  if (withTimestamp && typeof timestamp !== "bigint") throw argumentError(operation, "packet.timestamp", "nanoseconds since 1970 as a bigint", timestamp);
  throw argumentError(operation, "packet.originalLength", "a length in bytes, or undefined", originalLength);
}

function badTimestamp(timestamp: unknown): never {
  throw argumentError("summarize packets", "timestamp", "nanoseconds since 1970 as a bigint", timestamp);
}

/**
 * Turns packets into tcpdump lines. Keeps TCP conversation state, as tcpdump
 * does, to print relative sequence numbers: use one summarizer per capture.
 */
export class PacketSummarizer {
  readonly options: SummaryOptions;
  /** Each TCP conversation (conversationKey) to its slot in conversationSequences: the first seq and ack seen in one direction. */
  private readonly tcpConversations = new Map<string, number>();
  private conversationSequences = new Uint32Array(2 * 1024);
  private readonly interfaceNames: (ifindex: number) => string | undefined;
  /** Where the network header of the packet being described starts (for -x). */
  private networkOffset = 0;
  /** The packet being described: where its bytes start in their buffer, and its length on the wire (more than captured under a snap length). */
  private packetStart = 0;
  private wireLength = 0;
  /** For -ttt and -ttttt: the previous and the first packet's timestamps. */
  private previousTimestamp: bigint | undefined;
  private firstTimestamp: bigint | undefined;

  constructor(options: SummaryOptions = {}) {
    const operation = "summarize packets";
    expectObject(operation, "options", options, true);
    for (const flag of ["linkLevel", "verbose", "quiet", "absoluteSequence"] as const) expectBoolean(operation, `options.${flag}`, options[flag], true);
    if (options.hexDump !== undefined) expectOneOf(operation, "options.hexDump", options.hexDump, ["hex", "hex-ascii", "ascii"]);
    if (options.timestampFormat !== undefined) expectOneOf(operation, "options.timestampFormat", options.timestampFormat, ["time", "none", "epoch", "delta", "date", "since-first"]);
    if (options.timeZone !== undefined) expectOneOf(operation, "options.timeZone", options.timeZone, ["local", "utc"]);
    if (options.timestampPrecision !== undefined) expectOneOf(operation, "options.timestampPrecision", options.timestampPrecision, ["microsecond", "nanosecond"]);
    if (options.interfaceName !== undefined) expectFunction(operation, "options.interfaceName", options.interfaceName);
    this.options = options;
    this.interfaceNames = options.interfaceName ?? systemInterfaceName;
  }

  /** The summary, with hex dump lines when asked; no trailing newline. */
  summarize(packet: SummaryPacket): string {
    if (typeof packet !== "object" || packet === null || !(packet.data instanceof Uint8Array) || typeof packet.linkType !== "number" || typeof packet.timestamp !== "bigint"
      || (packet.originalLength !== undefined && typeof packet.originalLength !== "number")) badPacket(packet, true);
    return `${this.#timestampPrefix(packet.timestamp)}${this.#describe(packet)}`;
  }

  /** What goes in front of a packet's summary (the timestamp and a space, or nothing with -t); call once per packet, in order. */
  timestampPrefix(timestamp: bigint): string {
    if (typeof timestamp !== "bigint") badTimestamp(timestamp);
    return this.#timestampPrefix(timestamp);
  }

  #timestampPrefix(timestamp: bigint): string {
    const format = this.options.timestampFormat ?? "time";
    this.firstTimestamp ??= timestamp;
    const previous = this.previousTimestamp ?? timestamp;
    this.previousTimestamp = timestamp;
    switch (format) {
      case "none":
        return "";
      case "time":
        return `${this.#formatTimestamp(timestamp)} `;
      case "epoch":
        return `${timestamp / 1_000_000_000n}.${this.fraction(Number(timestamp % 1_000_000_000n))} `;
      case "date": {
        const date = new Date(Number(timestamp / 1_000_000n));
        const utc = this.options.timeZone === "utc";
        const year = utc ? date.getUTCFullYear() : date.getFullYear();
        const month = (utc ? date.getUTCMonth() : date.getMonth()) + 1;
        const day = utc ? date.getUTCDate() : date.getDate();
        return `${year}-${two(month)}-${two(day)} ${this.#formatTimestamp(timestamp)} `;
      }
      case "delta":
      case "since-first": {
        const base = format === "delta" ? previous : this.firstTimestamp;
        const difference = timestamp >= base ? timestamp - base : 0n;
        const seconds = Number(difference / 1_000_000_000n);
        return ` ${two(Math.floor(seconds / 3600))}:${two(Math.floor(seconds / 60) % 60)}:${two(seconds % 60)}.${this.fraction(Number(difference % 1_000_000_000n))} `;
      }
    }
  }

  /**
   * timestampPrefix for a time given as whole seconds and nanoseconds since
   * the epoch: the same text, without BigInt arithmetic for the time of
   * day (the default) and -t.
   */
  timestampPrefixOf(seconds: number, nanoseconds: number): string {
    if (typeof seconds !== "number" || !(seconds >= 0 && Number.isInteger(seconds))) throw argumentError("summarize packets", "seconds", "whole seconds since 1970 (an integer ≥ 0)", seconds);
    if (typeof nanoseconds !== "number" || !(nanoseconds >= 0 && nanoseconds < 1e9 && Number.isInteger(nanoseconds))) {
      throw argumentError("summarize packets", "nanoseconds", "nanoseconds within the second (an integer from 0 to 999999999)", nanoseconds);
    }
    const format = this.options.timestampFormat;
    if (format === undefined || format === "time") return `${this.timeOfDay(seconds, nanoseconds)} `;
    if (format === "none") return "";
    return this.#timestampPrefix(BigInt(seconds) * 1_000_000_000n + BigInt(nanoseconds));
  }

  private fraction(nanoseconds: number): string {
    return this.options.timestampPrecision === "nanosecond" ? String(nanoseconds).padStart(9, "0") : String(Math.floor(nanoseconds / 1000)).padStart(6, "0");
  }

  /** The summary without its timestamp. */
  describe(packet: SummaryPacket): string {
    if (typeof packet !== "object" || packet === null || !(packet.data instanceof Uint8Array) || typeof packet.linkType !== "number"
      || (packet.originalLength !== undefined && typeof packet.originalLength !== "number")) badPacket(packet, false);
    return this.#describe(packet);
  }

  #describe(packet: SummaryPacket): string {
    const data = packet.data;
    const originalLength = packet.originalLength ?? data.length;
    if (data.length === 0 || originalLength === 0 || originalLength < data.length) return invalidHeader(data.length, originalLength);
    const output: string[] = [];
    this.networkOffset = data.length;
    decoderCut.wholeFrame = false;
    this.packetStart = data.byteOffset;
    this.wireLength = originalLength;
    try {
      this.linkLayer(packet.linkType, data, originalLength, output);
    } catch (error) {
      if (!(error instanceof Truncated)) throw error;
      output.push(error.text);
      if (error.unwinds) this.networkOffset = 0;
    }
    const text = output.join("");
    const hexDumpKind = this.options.hexDump;
    if (hexDumpKind === undefined) return text;
    const dumped = data.subarray(Math.min(this.networkOffset, data.length));
    // (tcpdump -A prints nothing, not even the newline, when nothing follows the headers)
    return text + (hexDumpKind === "ascii" ? (dumped.length > 0 ? asciiDump(dumped) : "") : hexLines(dumped, hexDumpKind === "hex-ascii"));
  }

  /** The time of day of the last second formatted ("HH:MM:SS."): packets come many a second. */
  private clockSecond = -1;
  private clockText = "";

  formatTimestamp(timestamp: bigint): string {
    if (typeof timestamp !== "bigint") badTimestamp(timestamp);
    return this.#formatTimestamp(timestamp);
  }

  #formatTimestamp(timestamp: bigint): string {
    const seconds = Number(timestamp / 1_000_000_000n);
    return this.timeOfDay(seconds, Number(timestamp - BigInt(seconds) * 1_000_000_000n));
  }

  private timeOfDay(seconds: number, nanoseconds: number): string {
    if (seconds !== this.clockSecond) {
      const date = new Date(seconds * 1000);
      const utc = this.options.timeZone === "utc";
      const h = utc ? date.getUTCHours() : date.getHours();
      const m = utc ? date.getUTCMinutes() : date.getMinutes();
      const s = utc ? date.getUTCSeconds() : date.getSeconds();
      this.clockSecond = seconds;
      this.clockText = `${two(h)}:${two(m)}:${two(s)}.`;
    }
    return this.clockText + this.fraction(nanoseconds);
  }

  /** Prints the link layer and what it carries; returns the offset of the network header. */
  private linkLayer(linkType: number, data: Uint8Array, originalLength: number, output: string[]): number {
    const e = this.options.linkLevel === true;
    switch (linkType) {
      case LinkType.ETHERNET: {
        if (data.length < 14) throw new Truncated("ether");
        let etherType = (data[12]! << 8) | data[13]!;
        let offset = 14;
        if (e) output.push(`${macText(data, 6)} > ${macText(data, 0)}, `);
        if (etherType <= 1500) {
          output.push(`${e ? "" : `${macText(data, 6)} > ${macText(data, 0)}, `}802.3, length ${etherType}: `);
          output.push(`LLC, unsupported`);
          return offset;
        }
        // Cut inside the first VLAN tag: tcpdump -e prints the addresses alone.
        if ((etherType === 0x8100 || etherType === 0x88a8) && data.length < 18) throw new Truncated("vlan");
        const unknown = !printedEtherTypes.has(etherType) && !e;
        if (unknown) output.push(`${macText(data, 6)} > ${macText(data, 0)}, `);
        if ((e || unknown) && this.options.quiet) output.push(`${etherTypeNames.get(etherType) ?? `Unknown Ethertype (0x${hex(etherType, 4)})`}, length ${originalLength}: `);
        else if (e || unknown) output.push(`ethertype ${etherTypeNames.get(etherType) ?? "Unknown"} (0x${hex(etherType, 4)}), length ${originalLength}: `);
        while (etherType === 0x8100 || etherType === 0x88a8) {
          if (data.length < offset + 4) throw new Truncated("vlan");
          const tci = (data[offset]! << 8) | data[offset + 1]!;
          etherType = (data[offset + 2]! << 8) | data[offset + 3]!;
          offset += 4;
          if (e) {
            const inner = this.options.quiet ? etherTypeNames.get(etherType) ?? `Unknown Ethertype (0x${hex(etherType, 4)})` : `ethertype ${etherTypeNames.get(etherType) ?? "Unknown"} (0x${hex(etherType, 4)})`;
            output.push(`vlan ${tci & 0xfff}, p ${tci >> 13}${tci & 0x1000 ? ", DEI" : ""}, ${inner}, `);
          }
        }
        this.networkOffset = offset;
        this.etherPayload(etherType, data.subarray(offset), output, !e);
        return offset;
      }
      case LinkType.LINUX_SLL: {
        if (data.length < 16) {
          // tcpdump's -x dump then starts at the frame's first byte.
          this.networkOffset = 0;
          throw new Truncated("sll");
        }
        const packetType = (data[0]! << 8) | data[1]!;
        const addressLength = (data[4]! << 8) | data[5]!;
        const protocol = (data[14]! << 8) | data[15]!;
        if (e) {
          const address = addressLength > 0 ? `${macText(data, 6, Math.min(addressLength, 8))} ` : "";
          // (tcpdump -q leaves out the protocol and length)
          output.push(`${sllPacketTypeName(packetType).padStart(3)} ${address}${this.options.quiet ? "" : `ethertype ${etherTypeNames.get(protocol) ?? "Unknown"} (0x${hex(protocol, 4)}), length ${originalLength}: `}`);
        }
        this.networkOffset = 16;
        this.etherPayload(protocol, data.subarray(16), output, !e);
        return 16;
      }
      case LinkType.LINUX_SLL2: {
        if (data.length < 20) {
          // tcpdump's -x dump then starts at the frame's first byte.
          this.networkOffset = 0;
          throw new Truncated("sll2");
        }
        const protocol = (data[0]! << 8) | data[1]!;
        const ifindex = ((data[4]! << 24) | (data[5]! << 16) | (data[6]! << 8) | data[7]!) >>> 0;
        const packetType = data[10]!;
        const addressLength = data[11]!;
        const name = this.interfaceNames(ifindex) ?? "?";
        output.push(`${name.padEnd(5)} ${sllPacketTypeName(packetType).padEnd(3)} `);
        if (e) {
          const address = addressLength > 0 ? `${macText(data, 12, Math.min(addressLength, 8))} ` : "";
          output.push(`ifindex ${ifindex} ${address}${this.options.quiet ? "" : `ethertype ${etherTypeNames.get(protocol) ?? "Unknown"} (0x${hex(protocol, 4)}), length ${originalLength}: `}`);
        }
        this.networkOffset = 20;
        this.etherPayload(protocol, data.subarray(20), output, !e);
        return 20;
      }
      case LinkType.RAW:
      case LinkType.IPV4:
      case LinkType.IPV6: {
        this.networkOffset = 0;
        if (e) output.push("ip: ");
        if (data.length < 1) throw new Truncated("ip");
        const version = data[0]! >> 4;
        if (version === 4) this.ipv4(data, output, !e);
        else if (version === 6) this.ipv6(data, output, !e);
        else output.push(`unknown ip ${version}`);
        return 0;
      }
      default:
        output.push(`unsupported link type ${linkType}, length ${originalLength}`);
        return 0;
    }
  }

  private etherPayload(etherType: number, data: Uint8Array, output: string[], prefix: boolean): void {
    switch (etherType) {
      case 0x0800:
        this.ipv4(data, output, prefix);
        return;
      case 0x86dd:
        this.ipv6(data, output, prefix);
        return;
      case 0x0806:
      case 0x8035:
        this.decoded(output, arpSummary(data, this.wireLength - (data.byteOffset - this.packetStart), this.options.verbose === true, prefix));
        return;
      default:
        if (!printedEtherTypes.has(etherType)) {
          // tcpdump dumps what it cannot decode (unless -x/-X dumps the packet anyway, or -q).
          if (this.options.hexDump === undefined && !this.options.quiet) output.push(hexLines(data, true));
          return;
        }
        output.push(`${prefix ? `${etherTypeNames.get(etherType)}, ` : ""}length ${data.length}`);
    }
  }

  /** `quoted`: the datagram an ICMP error quotes (tcpdump gives its printer the datagram's own length as the length on the wire). */
  private ipv4(data: Uint8Array, output: string[], prefix: boolean, quoted = false): void {
    // tcpdump names the protocol only when some of its header was captured: none at all prints just [|ip],
    // and its printer unwinds (-x dumps the whole frame).
    if (data.length === 0) {
      this.networkOffset = 0;
      throw new Truncated("ip");
    }
    const version = data[0]! >> 4;
    if (version !== 4) {
      output.push(version === 6 ? "IP6, wrong link-layer encapsulation (invalid)" : `IP${version} (invalid)`);
      return;
    }
    if (prefix) output.push("IP ");
    if (data.length < 20) throw new Truncated("ip");
    const headerLength = (data[0]! & 0x0f) * 4;
    const totalLength = (data[2]! << 8) | data[3]!;
    if (headerLength < 20) {
      output.push(`bad-hlen ${headerLength}`);
      return;
    }
    // Like tcpdump: only a packet shorter on the wire than its IP length is truncated-ip, not one cut by the snap length.
    const onWire = this.wireLength - (data.byteOffset - this.packetStart);
    if (totalLength > onWire && !quoted) output.push(`truncated-ip - ${totalLength - onWire} bytes missing! `);
    if (totalLength < headerLength) {
      output.push(`bad-len ${totalLength}`);
      return;
    }
    const fragment = (data[6]! << 8) | data[7]!;
    const protocol = data[9]!;
    const offset = (fragment & 0x1fff) * 8;
    if (this.options.verbose) {
      const flags = [fragment & 0x2000 ? "+" : "", fragment & 0x4000 ? "DF" : "", fragment & 0x8000 ? "rsvd" : ""].filter(Boolean);
      const tos = data[1]!;
      const ecn = ["", ",ECT(1)", ",ECT(0)", ",CE"][tos & 3];
      const ttl = data[8]!;
      output.push(`(tos 0x${hex(tos)}${ecn}${ttl >= 1 ? `, ttl ${ttl}` : ""}, id ${(data[4]! << 8) | data[5]!}, offset ${offset}, flags [${flags.length ? flags.join(", ") : "none"}], proto ${ipProtocolNames.get(protocol) ?? "unknown"} (${protocol}), length ${totalLength}`);
      let optionsCut = false;
      if (headerLength > 20) {
        output.push(", options (");
        const status = ipv4Options(data, headerLength, Math.min(data.length, totalLength), output);
        if (status === OptionsStatus.Cut) this.unwind("ip");
        optionsCut = status === OptionsStatus.Truncated;
        output.push(optionsCut ? " [truncated-option])" : ")");
      }
      let text = "";
      if (data.length >= headerLength) {
        const checksum = internetChecksum([data.subarray(0, headerLength)]);
        if (checksum !== 0) {
          const stored = (data[10]! << 8) | data[11]!;
          const correct = expectedChecksum(new Uint8Array(0), data.subarray(0, headerLength), 10);
          text += `, bad cksum ${hex(stored)} (->${hex(correct)})!`;
        }
      }
      output.push(`${text})\n    `);
      if (optionsCut) {
        output.push(`${formatIpv4(data, 12)} > ${formatIpv4(data, 16)}: `);
        throw new Truncated("ip");
      }
    }
    const source = formatIpv4(data, 12);
    const destination = formatIpv4(data, 16);
    // IP options cut by the snap length: tcpdump says so and stops (a later fragment is printed without them).
    if (headerLength > data.length && offset === 0) {
      // (tcpdump prints the addresses first, except for the protocols whose printers print them)
      const addresses = protocol !== 6 && protocol !== 17 && protocol !== 33 && protocol !== 132;
      output.push(`${addresses ? `${source} > ${destination}: ` : ""} [remaining caplen(${data.length}) < header length(${headerLength})]`);
      this.unwind("ip");
    }
    const captured = Math.min(totalLength, data.length);
    const payload = data.subarray(headerLength, Math.max(headerLength, captured));
    const context: NetworkContext = {
      version: 4,
      source,
      destination,
      header: data,
      addressOffset: 12,
      addressLength: 4,
      payload,
      length: totalLength - headerLength,
      fragmented: (fragment & 0x3fff) !== 0,
    };
    if (offset !== 0) {
      output.push(`${source} > ${destination}: ${protocol === 6 || protocol === 17 || protocol === 1 ? `ip-proto-${protocol}` : ` ip-proto-${protocol} ${totalLength - headerLength}`}`);
      return;
    }
    this.transport(protocol, context, output);
  }

  private ipv6(data: Uint8Array, output: string[], prefix: boolean): void {
    // tcpdump names IPv6 only once the whole fixed header was captured.
    if (data.length < 40) throw new Truncated("ip6");
    if (prefix) output.push("IP6 ");
    if (data[0]! >> 4 !== 6) {
      output.push(`version error: ${data[0]! >> 4} != 6`);
      return;
    }
    const payloadLength = (data[4]! << 8) | data[5]!;
    const nextHeader = data[6]!;
    // Like IPv4's truncated-ip: shorter on the wire than the payload length says (no space after it, as tcpdump prints it).
    const onWire = this.wireLength - (data.byteOffset - this.packetStart);
    if (payloadLength !== 0 && 40 + payloadLength > onWire) output.push(`truncated-ip6 - ${40 + payloadLength - onWire} bytes missing!`);
    if (this.options.verbose) {
      const trafficClass = ((data[0]! & 0x0f) << 4) | (data[1]! >> 4);
      const flowLabel = ((data[1]! & 0x0f) << 16) | (data[2]! << 8) | data[3]!;
      const parts: string[] = [];
      if (trafficClass !== 0) parts.push(`class 0x${hex(trafficClass)}`);
      if (flowLabel !== 0) parts.push(`flowlabel 0x${hex(flowLabel, 5)}`);
      parts.push(`hlim ${data[7]}`);
      output.push(`(${parts.join(", ")}, next-header ${ipv6NextHeaderNames.get(nextHeader) ?? ipProtocolNames.get(nextHeader) ?? "unknown"} (${nextHeader}) payload length: ${payloadLength}) `);
    }
    const source = formatIpv6(data, 8);
    const destination = formatIpv6(data, 24);
    const end = Math.min(40 + payloadLength, data.length);
    // Extension headers, as tcpdump prints them: "HBH ", "DSTOPT ", "frag (OFFSET|LENGTH) ".
    let protocol = nextHeader;
    let offset = 40;
    let extensions = false;
    let fragmented = false;
    while (protocol === 0 || protocol === 60 || protocol === 44) {
      if (!extensions) output.push(`${source} > ${destination}: `);
      extensions = true;
      if (protocol === 44) {
        if (end < offset + 8) throw new Truncated("frag");
        const fragmentWord = (data[offset + 2]! << 8) | data[offset + 3]!;
        const identification = ((data[offset + 4]! << 24) | (data[offset + 5]! << 16) | (data[offset + 6]! << 8) | data[offset + 7]!) >>> 0;
        const fragmentOffset = fragmentWord & 0xfff8;
        const text = `frag (${this.options.verbose ? `0x${hex(identification, 8)}:` : ""}${fragmentOffset}|${payloadLength - (offset + 8 - 40)})`;
        // (tcpdump prints nothing after a later fragment, nor after a first one with nothing captured behind its header)
        if (fragmentOffset !== 0 || end <= offset + 8) {
          output.push(fragmentOffset !== 0 ? text : `${text} `);
          return;
        }
        output.push(`${text} `);
        fragmented = true;
        protocol = data[offset]!;
        offset += 8;
        continue;
      }
      if (end < offset + 2) throw new Truncated(protocol === 0 ? "hbhopt" : "dstopt");
      const length = (data[offset + 1]! + 1) * 8;
      if (end < offset + length) throw new Truncated(protocol === 0 ? "hbhopt" : "dstopt");
      output.push(`${protocol === 0 ? "HBH" : "DSTOPT"} ${this.options.verbose ? ipv6OptionsText(data.subarray(offset + 2, offset + length)) : ""}`);
      protocol = data[offset]!;
      offset += length;
    }
    const context: NetworkContext = {
      version: 6,
      source,
      destination,
      header: data,
      addressOffset: 8,
      addressLength: 16,
      payload: data.subarray(Math.min(offset, end), end),
      length: payloadLength - (offset - 40),
      addressesPrinted: extensions,
      fragmented,
    };
    this.transport(protocol, context, output);
  }

  private transport(protocol: number, network: NetworkContext, output: string[]): void {
    switch (protocol) {
      case 6:
        this.tcp(network, output);
        return;
      case 17:
        this.udp(network, output);
        return;
      case 1:
      case 58:
        if (network.version === (protocol === 1 ? 4 : 6)) {
          if (protocol === 1) this.icmp(network, output);
          else this.icmpv6(network, output);
          return;
        }
        break;
    }
    output.push(`${network.source} > ${network.destination}:  ip-proto-${protocol} ${network.length}`);
  }

  private udp(network: NetworkContext, output: string[]): void {
    const data = network.payload;
    const addresses = (sourcePort: number, destinationPort: number) =>
      network.addressesPrinted ? `${sourcePort} > ${destinationPort}: ` : `${network.source}.${sourcePort} > ${network.destination}.${destinationPort}: `;
    if (data.length < 8) {
      if (data.length >= 4) {
        output.push(addresses((data[0]! << 8) | data[1]!, (data[2]! << 8) | data[3]!));
        // tcpdump: truncated-udp when the IP length leaves no room for the header; cut by the snap length, [|udp].
        if (network.length < 8) {
          output.push(`truncated-udp ${network.length}`);
          return;
        }
        // tcpdump reads the UDP length as soon as it was captured.
        if (data.length >= 6 && ((data[4]! << 8) | data[5]!) < 8) {
          output.push(`truncated-udplength ${(data[4]! << 8) | data[5]!}`);
          return;
        }
        throw new Truncated("udp");
      }
      if (!network.addressesPrinted) output.push(`${network.source} > ${network.destination}: `);
      throw new Truncated("udp");
    }
    const sourcePort = (data[0]! << 8) | data[1]!;
    const destinationPort = (data[2]! << 8) | data[3]!;
    const length = (data[4]! << 8) | data[5]!;
    output.push(addresses(sourcePort, destinationPort));
    if (length < 8) {
      output.push(`truncated-udplength ${length}`); // tcpdump, whatever the ports and flags
      return;
    }
    // tcpdump checks what both the UDP and the IP length cover, when all of it was captured.
    const covered = Math.min(length, network.length);
    if (this.options.verbose && network.version === 6 && !network.fragmented && data.length >= covered && covered >= 8) {
      const stored = (data[6]! << 8) | data[7]!;
      const segment = data.subarray(0, covered);
      const sum = internetChecksum([pseudoHeader(network, 17, covered), segment]);
      if (sum === 0) output.push("[udp sum ok] ");
      else output.push(`[bad udp cksum 0x${hex(stored, 4)} -> 0x${hex(expectedChecksum(pseudoHeader(network, 17, covered), segment, 6), 4)}!] `);
    }
    // tcpdump decodes DNS on port 53 and mDNS on 5353 (either side), except with -q.
    if ((sourcePort === 53 || destinationPort === 53 || sourcePort === 5353 || destinationPort === 5353) && !this.options.quiet
      && length >= 8 && network.length >= 8 && !(destinationPort === 2049 ? rpcDirection(data) === 0 : sourcePort === 2049 && rpcDirection(data) === 1)) {
      // tcpdump's DNS length: the UDP length or what the IP length leaves, whichever is less.
      this.decoded(output, dnsSummary(data, 8, data.length, Math.min(length, network.length) - 8, false, sourcePort !== 53 && destinationPort !== 53, this.options.verbose === true));
      return;
    }
    const decoder = this.options.quiet || network.length < 8 ? undefined : udpDecoder(sourcePort, destinationPort, data);
    if (decoder !== undefined) {
      this.decoded(output, decoder(data, 8, data.length, Math.min(length, network.length) - 8, this.options.verbose === true));
      return;
    }
    // A UDP length past the end of the IP payload: tcpdump's "bad length" (not for a fragment, which the UDP length spans).
    if (length > network.length && !network.fragmented) output.push(`UDP, bad length ${length - 8} > ${network.length - 8}`);
    else output.push(`UDP, length ${length - 8}`);
  }

  /** A cut where tcpdump's printer unwinds: -x then dumps the whole frame. */
  private unwind(protocol: string): never {
    this.networkOffset = 0;
    throw new Truncated(protocol);
  }

  /** Adds an application decoder's text (its call the argument); after a cut where tcpdump unwinds, -x dumps the whole frame. */
  private decoded(output: string[], text: string): void {
    output.push(text);
    if (decoderCut.wholeFrame) this.networkOffset = 0;
  }

  private tcp(network: NetworkContext, output: string[]): void {
    const data = network.payload;
    if (network.addressesPrinted) {
      if (data.length < 4) throw new Truncated("tcp");
      const ports = `${(data[0]! << 8) | data[1]!} > ${(data[2]! << 8) | data[3]!}: `;
      output.push(ports);
      if (data.length < 20) throw new Truncated("tcp");
      // The rest as usual, after the ports (the line below prints them again otherwise).
      output.pop();
      output.push(`${(data[0]! << 8) | data[1]!}`);
      network = { ...network, destination: "" };
    } else {
      output.push(`${network.source}`);
    }
    if (data.length < 20) {
      if (data.length >= 4) output.push(`.${(data[0]! << 8) | data[1]!} > ${network.destination}.${(data[2]! << 8) | data[3]!}: `);
      else output.push(` > ${network.destination}:`); // tcpdump: "a > b: [|tcp]", one space
      throw new Truncated("tcp");
    }
    const sourcePort = (data[0]! << 8) | data[1]!;
    const destinationPort = (data[2]! << 8) | data[3]!;
    let seq = ((data[4]! << 24) | (data[5]! << 16) | (data[6]! << 8) | data[7]!) >>> 0;
    let ack = ((data[8]! << 24) | (data[9]! << 16) | (data[10]! << 8) | data[11]!) >>> 0;
    const headerLength = (data[12]! >> 4) * 4;
    const flags = data[13]!;
    const window = (data[14]! << 8) | data[15]!;
    const urgent = (data[18]! << 8) | data[19]!;
    output.push(network.addressesPrinted ? ` > ${destinationPort}: ` : `.${sourcePort} > ${network.destination}.${destinationPort}: `);
    // (tcpdump subtracts unsigned: a header longer than the segment gives a length near 2^32)
    if (headerLength < 20) {
      output.push(` tcp ${(network.length - headerLength) >>> 0} [bad hdr length ${headerLength} - too short, < 20]`);
      return;
    }
    if (this.options.quiet) {
      output.push(`tcp ${(network.length - headerLength) >>> 0}${headerLength > network.length ? ` [bad hdr length ${headerLength} - too long, > ${network.length}]` : ""}`);
      return;
    }
    output.push(`Flags [${tcpFlags(flags)}]`);

    // tcpdump's relative SACK edges: the other direction's first sequence number.
    let sackBase = 0;
    if ((flags & 0x10) !== 0 && this.options.absoluteSequence !== true) {
      const { header, addressOffset, addressLength } = network;
      const reversed = sourcePort > destinationPort || (sourcePort === destinationPort && compareAddresses(header, addressOffset, addressLength) > 0);
      const key = conversationKey(header, addressOffset, addressLength, reversed, sourcePort, destinationPort);
      let slot = this.tcpConversations.get(key);
      let sequences = this.conversationSequences;
      if (slot === undefined || (flags & 0x02) !== 0) {
        if (slot === undefined) {
          slot = this.tcpConversations.size;
          this.tcpConversations.set(key, slot);
          if (2 * slot + 2 > sequences.length) {
            const larger = new Uint32Array(sequences.length * 2);
            larger.set(sequences);
            sequences = this.conversationSequences = larger;
          }
        }
        // Stored for the direction from the lower endpoint: seq of that direction, ack = the other's.
        sequences[2 * slot] = reversed ? (ack - 1) >>> 0 : seq;
        sequences[2 * slot + 1] = reversed ? seq : (ack - 1) >>> 0;
      } else if (reversed) {
        seq = (seq - sequences[2 * slot + 1]!) >>> 0;
        ack = (ack - sequences[2 * slot]!) >>> 0;
      } else {
        seq = (seq - sequences[2 * slot]!) >>> 0;
        ack = (ack - sequences[2 * slot + 1]!) >>> 0;
      }
      if (headerLength > 20) {
        const lowerSeq = sequences[2 * slot]!;
        const lowerAck = sequences[2 * slot + 1]!;
        sackBase = reversed ? lowerSeq : lowerAck;
      }
    }
    if (headerLength > network.length) {
      output.push(` [bad hdr length ${headerLength} - too long, > ${network.length}]`);
      return;
    }
    const length = network.length - headerLength;

    if (this.options.verbose && !network.fragmented && data.length >= network.length) {
      const stored = (data[16]! << 8) | data[17]!;
      const segment = data.subarray(0, network.length);
      const pseudo = pseudoHeader(network, 6, network.length);
      const sum = internetChecksum([pseudo, segment]);
      output.push(sum === 0 ? `, cksum 0x${hex(stored, 4)} (correct)` : `, cksum 0x${hex(stored, 4)} (incorrect -> 0x${hex(expectedChecksum(pseudo, segment, 16), 4)})`);
    }
    if (length > 0 || (flags & 0x07) !== 0) {
      output.push(`, seq ${seq}`);
      if (length > 0) output.push(`:${(seq + length) >>> 0}`);
    }
    if (flags & 0x10) output.push(`, ack ${ack}`);
    output.push(`, win ${window}`);
    if (flags & 0x20) output.push(`, urg ${urgent}`);
    // (tcpdump names cuts after an MPTCP option by its printer)
    let cutName = "tcp";
    if (headerLength > 20) {
      output.push(", options [");
      const result = tcpOptionsSummary(data.subarray(20), headerLength - 20, sackBase, data.length >= network.length, flags, output);
      const end = result & ~OptionsEnd.afterMptcp;
      if ((result & OptionsEnd.afterMptcp) !== 0) cutName = "mptcp";
      if (end === OptionsEnd.bad) return;
      // (a cut at an option's kind or length byte unwinds tcpdump's printer; one in its data does not)
      if (end !== OptionsEnd.done) throw new Truncated(cutName, end === OptionsEnd.cutAfterFirst ? ">" : "", end === OptionsEnd.cutUnwinds);
    }
    output.push(`, length ${length}`);
    // (tcpdump looks for the rest of the header only when data follows it)
    if (data.length < headerLength && length > 0) {
      output.push(` [remaining caplen(${data.length}) < header length(${headerLength})]`);
      this.unwind(cutName);
    }
    if (this.options.verbose && (flags & 0x04) !== 0 && length > 0) {
      // tcpdump -v shows the text a reset carries (RFC 1122 4.2.2.12), at most 30 bytes.
      const shown = Math.min(length, 30, Math.max(0, data.length - headerLength));
      // ("!" when the text was not all captured)
      output.push(` [${data.length - headerLength < length ? "!" : ""}RST${length > 30 ? "+" : ""} ${printableText(data.subarray(headerLength, headerLength + shown))}]`);
    }
    // tcpdump decodes DNS (length-prefixed) in segments with data to or from port 53.
    else if (length > 0 && (sourcePort === 53 || destinationPort === 53)
      && !tcpPortsBeforeDns.has(sourcePort) && !tcpPortsBeforeDns.has(destinationPort)) this.decoded(output, dnsSummary(data, headerLength, data.length, length, true, false, this.options.verbose === true));
    else if (length > 0) {
      const textProtocol = tcpTextProtocol(sourcePort, destinationPort);
      if (textProtocol !== undefined) this.decoded(output, `: ${textProtocolSummary(textProtocol, data, headerLength, data.length, length, this.options.verbose === true)}`);
    }
  }

  private icmp(network: NetworkContext, output: string[]): void {
    const data = network.payload;
    output.push(`${network.source} > ${network.destination}: `);
    if (data.length < 4) throw new Truncated("icmp");
    const type = data[0]!;
    const code = data[1]!;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const word = (offset: number) => (data.length >= offset + 2 ? view.getUint16(offset) : undefined);
    let text: string;
    const inner = () => embeddedIpv4(data.subarray(8));
    switch (type) {
      case 0:
      case 8:
        // tcpdump prints an echo only with its id and sequence number captured.
        if (data.length < 8) throw new Truncated("icmp");
        text = `echo ${type === 0 ? "reply" : "request"}, id ${word(4)}, seq ${word(6)}`;
        break;
      case 3: {
        const embedded = inner();
        // The quoted packet cut by the snap length: tcpdump stops there.
        if (embedded === undefined) throw new Truncated("icmp");
        const target = embedded.destination;
        switch (code) {
          case 0: text = `net ${target} unreachable`; break;
          case 1: text = `host ${target} unreachable`; break;
          case 2: text = `${target} protocol ${embedded.protocol} unreachable`; break;
          case 3: {
            // tcpdump reads the quoted destination port first: cut before it, the line is just [|icmp].
            if (embedded.destinationPort === undefined) throw new Truncated("icmp");
            const name = embedded.protocol === 6 ? "tcp" : embedded.protocol === 17 ? "udp" : undefined;
            text = name !== undefined ? `${target} ${name} port ${embedded.destinationPort} unreachable` : `${target} protocol ${embedded.protocol} port ${embedded.destinationPort} unreachable`;
            break;
          }
          case 4: {
            const mtu = word(6) ?? 0;
            text = mtu !== 0 ? `${target} unreachable - need to frag (mtu ${mtu})` : `${target} unreachable - need to frag`;
            break;
          }
          default:
            text = `${unreachableCodeText[code]?.replace("%s", target) ?? `${target} unreachable - #${code}`}`;
        }
        break;
      }
      case 11:
        // tcpdump reads the quoted destination address first (also for a redirect).
        if (data.length < 28) throw new Truncated("icmp");
        text = code === 0 ? "time exceeded in-transit" : code === 1 ? "ip reassembly time exceeded" : `time exceeded-#${code}`;
        break;
      case 5: {
        if (data.length < 28) throw new Truncated("icmp");
        const embedded = inner();
        const gateway = data.length >= 8 ? formatIpv4(data, 4) : "?";
        const kind = ["redirect %d to net %g", "redirect %d to host %g", "redirect-tos %d to net %g", "redirect-tos %d to host %g"][code];
        text = (kind ?? `redirect-#${code} %d to %g`).replace("%d", embedded?.destination ?? "?").replace("%g", gateway);
        break;
      }
      case 13:
      case 14:
        text = `time stamp ${type === 13 ? "query" : "reply"} id ${word(4) ?? 0} seq ${word(6) ?? 0}`;
        if (type === 14) text = `time stamp reply id ${word(4) ?? 0} seq ${word(6) ?? 0}`;
        break;
      case 4:
        text = "source quench";
        break;
      case 10:
        text = "router solicitation";
        break;
      case 12:
        text = `parameter problem - octet ${data.length > 4 ? data[4] : 0}`;
        break;
      case 15:
      case 16:
        text = `information ${type === 15 ? "request" : "reply"}`;
        break;
      case 17:
        text = "address mask request";
        break;
      case 18:
        if (data.length < 12) throw new Truncated("icmp");
        text = `address mask is 0x${hex(data.length >= 12 ? view.getUint32(8) : 0, 8)}`;
        break;
      default:
        text = `type-#${type}`;
    }
    output.push(`ICMP ${text}, length ${network.length}`);
    if (this.options.verbose && !network.fragmented && data.length >= network.length) {
      const sum = internetChecksum([data.subarray(0, network.length)]);
      if (sum !== 0) output.push(` (wrong icmp cksum ${hex(view.getUint16(2))} (->${hex(expectedChecksum(new Uint8Array(0), data.subarray(0, network.length), 2))})!)`);
    }
    if (this.options.verbose && (type === 3 || type === 4 || type === 5 || type === 11 || type === 12) && data.length >= 28) {
      output.push("\n\t");
      try {
        this.ipv4(data.subarray(8), output, !this.options.linkLevel, true);
      } catch (error) {
        if (!(error instanceof Truncated)) throw error;
        output.push(error.text);
      }
    }
  }

  private icmpv6(network: NetworkContext, output: string[]): void {
    const data = network.payload;
    if (!network.addressesPrinted) output.push(`${network.source} > ${network.destination}: `);
    if (network.length === 0) {
      output.push("ICMP6, length 0 (invalid)");
      return;
    }
    if (data.length < 1) throw new Truncated("icmp6");
    // tcpdump -v reads the checksum first: cut before it, nothing of the message is printed.
    if (this.options.verbose && data.length < 4 && data.length >= network.length) throw new Truncated("icmp6");
    if (data.length < 4) {
      // Cut inside the header: tcpdump has printed the type's name, and a destination unreachable's code.
      const code = data.length >= 2 && data[0] === 1 ? icmpv6UnreachableCodes[data[1]!] : undefined;
      output.push(`ICMP6, ${icmpv6TypeNames[data[0]!] ?? `unknown icmp6 type (${data[0]})`}${code === undefined ? "" : `, ${code}`}`);
      throw new Truncated("icmp6");
    }
    if (this.options.verbose && data.length >= network.length) {
      const segment = data.subarray(0, network.length);
      const pseudo = pseudoHeader(network, 58, network.length);
      const sum = internetChecksum([pseudo, segment]);
      const stored = (data[2]! << 8) | data[3]!;
      output.push(sum === 0 ? "[icmp6 sum ok] " : `[bad icmp6 cksum 0x${hex(stored, 4)} -> 0x${hex(expectedChecksum(pseudo, segment, 2), 4)}!] `);
    }
    const type = data[0]!;
    const code = data[1]!;
    const word = (offset: number) => (data.length >= offset + 2 ? (data[offset]! << 8) | data[offset + 1]! : 0);
    const address = (offset: number) => (data.length >= offset + 16 ? formatIpv6(data, offset) : "?");
    let text: string;
    // tcpdump -v omits the length of these messages.
    const withLength = !this.options.verbose || type === 133 || type === 134;
    // A neighbor message's target address cut: tcpdump stops after the type's name.
    if ((type === 135 || type === 136) && data.length < 24) {
      output.push(`ICMP6, ${icmpv6TypeNames[type]}${this.options.verbose ? `, length ${network.length}` : ""}`);
      this.unwind("icmp6");
    }
    switch (type) {
      case 128:
      case 129:
        // tcpdump prints an echo's id and sequence number only with both captured.
        if (data.length < 8) {
          output.push(`ICMP6, ${icmpv6TypeNames[type]}`);
          throw new Truncated("icmp6");
        }
        text = `echo ${type === 128 ? "request" : "reply"}, id ${word(4)}, seq ${word(6)}`;
        break;
      case 1: {
        const embedded = embeddedIpv6(data.subarray(8));
        const target = embedded?.destination ?? "?";
        if (embedded === undefined && code <= 4) {
          // Cut by the snap length before the quoted packet: tcpdump stops there, its printer unwinding.
          output.push(`ICMP6, destination unreachable, ${icmpv6UnreachableCodes[code]}`);
          this.unwind("icmp6");
        }
        switch (code) {
          case 0: text = `destination unreachable, unreachable route ${target}`; break;
          // (tcpdump prints two spaces here)
          case 1: text = `destination unreachable,  unreachable prohibited ${target}`; break;
          case 2: text = `destination unreachable, beyond scope ${target}, source address ${embedded?.source ?? "?"}`; break;
          case 3: text = `destination unreachable, unreachable address ${target}`; break;
          case 4: {
            const name = embedded?.protocol === 6 ? "tcp" : embedded?.protocol === 17 ? "udp" : undefined;
            text = name !== undefined && embedded?.destinationPort !== undefined
              ? `destination unreachable, unreachable port, ${target} ${name} port ${embedded.destinationPort}`
              : `destination unreachable, unreachable port, ${target}`;
            break;
          }
          default:
            text = `destination unreachable, unknown unreach code (${code})`;
        }
        break;
      }
      case 3: {
        const embedded = embeddedIpv6(data.subarray(8));
        if (embedded === undefined && code === 0) {
          output.push("ICMP6, time exceeded in-transit");
          this.unwind("icmp6");
        }
        text = code === 0 ? `time exceeded in-transit for ${embedded?.destination ?? "?"}` : code === 1 ? "time exceeded in-transit (reassembly)" : `time exceeded unknown code (${code})`;
        break;
      }
      case 2:
        text = `packet too big, mtu ${data.length >= 8 ? new DataView(data.buffer, data.byteOffset).getUint32(4) : 0}`;
        break;
      case 130:
      case 131:
      case 132:
        // (tcpdump prints no separator before "max resp delay")
        text = `multicast listener ${type === 130 ? "query" : type === 131 ? "report" : "done"}max resp delay: ${word(4)} addr: ${address(8)}`;
        break;
      case 143:
        text = `multicast listener report v2, ${word(6)} group record(s)`;
        break;
      case 133:
        text = "router solicitation";
        break;
      case 134:
        text = "router advertisement";
        break;
      case 135:
        text = this.options.verbose ? `neighbor solicitation, length ${network.length}, who has ${address(8)}` : `neighbor solicitation, who has ${address(8)}`;
        break;
      case 136:
        if (this.options.verbose) {
          const flags = data.length >= 5 ? data[4]! : 0;
          const names = [[0x80, "router"], [0x40, "solicited"], [0x20, "override"]].filter(([bit]) => (flags & (bit as number)) !== 0).map(([, name]) => name);
          text = `neighbor advertisement, length ${network.length}, tgt is ${address(8)}, Flags [${names.length ? names.join(", ") : "none"}]`;
        } else {
          text = `neighbor advertisement, tgt is ${address(8)}`;
        }
        break;
      default:
        text = `type-#${type}`;
    }
    output.push(`ICMP6, ${text}${withLength ? `, length ${network.length}` : ""}`);
  }
}

/** tcpdump's names of ICMPv6 types and destination unreachable codes, for headers cut before the rest is printed. */
const icmpv6TypeNames: Record<number, string> = {
  1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 4: "parameter problem", 128: "echo request", 129: "echo reply",
  130: "multicast listener query", 131: "multicast listener report", 132: "multicast listener done", 133: "router solicitation",
  134: "router advertisement", 135: "neighbor solicitation", 136: "neighbor advertisement", 137: "redirect", 143: "multicast listener report v2",
};
const icmpv6UnreachableCodes: Record<number, string> = { 0: "unreachable route", 1: " unreachable prohibited", 2: "beyond scope", 3: "unreachable address", 4: "unreachable port" };

const unreachableCodeText: Record<number, string> = {
  5: "%s unreachable - source route failed",
  6: "net %s unreachable - unknown",
  7: "host %s unreachable - unknown",
  8: "%s unreachable - source host isolated",
  9: "net %s unreachable - admin prohibited",
  10: "host %s unreachable - admin prohibited",
  11: "net %s unreachable - tos prohibited",
  12: "host %s unreachable - tos prohibited",
  13: "host %s unreachable - admin prohibited filter",
  14: "host %s unreachable - host precedence violation",
  15: "host %s unreachable - precedence cutoff",
};

function embeddedIpv4(data: Uint8Array): { destination: string; protocol: number; destinationPort?: number } | undefined {
  if (data.length < 20) return undefined;
  const headerLength = (data[0]! & 0x0f) * 4;
  const protocol = data[9]!;
  const destinationPort = data.length >= headerLength + 4 ? (data[headerLength + 2]! << 8) | data[headerLength + 3]! : undefined;
  return { destination: formatIpv4(data, 16), protocol, destinationPort };
}

function embeddedIpv6(data: Uint8Array): { source: string; destination: string; protocol: number; destinationPort?: number } | undefined {
  if (data.length < 40) return undefined;
  const protocol = data[6]!;
  const destinationPort = data.length >= 44 ? (data[42]! << 8) | data[43]! : undefined;
  return { source: formatIpv6(data, 8), destination: formatIpv6(data, 24), protocol, destinationPort };
}

const enum OptionsStatus { Complete, Truncated, Cut }

const ipv4OptionNames: Record<number, string> = { 0: "EOL", 1: "NOP", 7: "RR", 68: "timestamp", 82: "traceroute", 130: "security", 131: "LSRR", 137: "SSRR", 148: "RA" };

/**
 * The options of the IPv4 header `data` (header length `headerLength`) as tcpdump -v prints them, pushed to output;
 * `available` bytes of the datagram can be read. Truncated: an option's data runs past them (tcpdump adds
 * "[truncated-option]"); Cut: an option's kind or length byte does (tcpdump stops the line there).
 */
function ipv4Options(data: Uint8Array, headerLength: number, available: number, output: string[]): OptionsStatus {
  let separator = "";
  for (let offset = 20; offset < headerLength; ) {
    output.push(separator);
    separator = ",";
    if (offset >= available) return OptionsStatus.Cut;
    const code = data[offset]!;
    output.push(ipv4OptionNames[code] ?? `unknown ${code}`);
    let length = 1;
    if (code > 1) {
      if (offset + 1 >= available) return OptionsStatus.Cut;
      length = data[offset + 1]!;
      if (length < 2) {
        output.push(` [bad length ${length}]`);
        return OptionsStatus.Complete;
      }
    }
    if (length > headerLength - offset) {
      output.push(` [bad length ${length}]`);
      return OptionsStatus.Complete;
    }
    if (offset + length > available) return OptionsStatus.Truncated;
    switch (code) {
      case 0:
        return OptionsStatus.Complete;
      case 68:
        if (!ipv4TimestampOption(data, offset, length, available, output)) return OptionsStatus.Truncated;
        break;
      case 7:
      case 131:
      case 137:
        if (!ipv4RouteOption(data, offset, length, available, output)) return OptionsStatus.Truncated;
        break;
      case 148:
        if (length < 4) output.push(` [bad length ${length}]`);
        else if (((data[offset + 2]! << 8) | data[offset + 3]!) !== 0) output.push(` value ${(data[offset + 2]! << 8) | data[offset + 3]!}`);
        break;
    }
    offset += length;
  }
  return OptionsStatus.Complete;
}

/** A record route or source route option (tcpdump reads its addresses as far as the datagram goes); false when they run past `available`. */
function ipv4RouteOption(data: Uint8Array, start: number, length: number, available: number, output: string[]): boolean {
  if (length < 3) {
    output.push(` [bad length ${length}]`);
    return true;
  }
  if ((length + 1) & 3) output.push(` [bad length ${length}]`);
  const pointer = (data[start + 2]! - 1) >>> 0;
  if (pointer < 3 || ((pointer + 1) & 3) || pointer > length + 1) output.push(` [bad ptr ${data[start + 2]}]`);
  for (let i = 3; i < length; i += 4) {
    if (start + i + 4 > available) return false;
    output.push(pointer > i ? ` ${formatIpv4(data, start + i)},` : ` ${formatIpv4(data, start + i)}`);
  }
  return true;
}

/** A timestamp option; false when its entries run past `available`. */
function ipv4TimestampOption(data: Uint8Array, start: number, length: number, available: number, output: string[]): boolean {
  if (length < 4) {
    output.push(`[bad length ${length}]`);
    return true;
  }
  output.push(" TS{");
  const flags = data[start + 3]!;
  const hop = (flags & 0x0f) !== 0 ? 8 : 4;
  if ((length - 4) & (hop - 1)) output.push(`[bad length ${length}]`);
  const pointer = (data[start + 2]! - 1) >>> 0;
  if (pointer < 4 || ((pointer - 4) & (hop - 1)) || pointer > length + 1) output.push(`[bad ptr ${data[start + 2]}]`);
  const type = flags & 0x0f;
  let i = 0;
  if (type === 0 || type === 1 || type === 3) {
    output.push(type === 0 ? "TSONLY" : type === 1 ? "TS+ADDR" : "PRESPEC");
    for (i = 4; i < length; i += hop) {
      if (start + i + hop > available) return false;
      const at = start + i + hop - 4;
      const value = ((data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!) >>> 0;
      output.push(`${pointer === i ? " ^ " : " "}${value}@${hop === 8 ? formatIpv4(data, start + i) : ""}`);
    }
  } else {
    output.push(`[bad ts type ${type}]`);
  }
  if (pointer === i) output.push(" ^ ");
  output.push(flags >> 4 ? ` [${flags >> 4} hops not recorded]} ` : "}");
  return true;
}

/** tcpdump's flag letters for each of the 256 values of the flag byte, made once (tcpdump 4.99 has no letter for the bit before them). */
let tcpFlagTexts: string[] | undefined;

function tcpFlags(flags: number): string {
  if (tcpFlagTexts === undefined) {
    const letters: [number, string][] = [[0x01, "F"], [0x02, "S"], [0x04, "R"], [0x08, "P"], [0x10, "."], [0x20, "U"], [0x40, "E"], [0x80, "W"]];
    tcpFlagTexts = [];
    for (let value = 0; value < 256; value++) {
      const text = letters.filter(([bit]) => (value & bit) !== 0).map(([, letter]) => letter).join("");
      tcpFlagTexts.push(text.length > 0 ? text : "none");
    }
  }
  return tcpFlagTexts[flags & 0xff]!;
}

/**
 * TCP options as tcpdump prints them, pushed to output. `options` holds the captured part of the `size` option bytes:
 * when the capture ends inside them, what tcpdump prints up to the cut is pushed and Truncated thrown. Like tcpdump:
 * a cut before an option's kind or length byte ends the text there (", [|tcp]" after the first option), a cut in its
 * data prints its name and the values read so far, then " [|tcp]", and ">" too when an option came before.
 */
/** Compares the source address (at `offset`) with the destination address right after it. */
function compareAddresses(header: Uint8Array, offset: number, length: number): number {
  for (let i = 0; i < length; i++) if (header[offset + i] !== header[offset + length + i]) return header[offset + i]! - header[offset + length + i]!;
  return 0;
}

/** conversationKey's scratch for IPv6: 16 + 16 address bytes and 4 port bytes. */
const ipv6KeyCodes = new Uint8Array(36);

/**
 * A TCP conversation's key, the same both ways: the lower endpoint's address, the other's, and their ports,
 * one character per byte (12 for IPv4, 36 for IPv6: the lengths keep the versions apart).
 */
function conversationKey(header: Uint8Array, offset: number, length: number, reversed: boolean, sourcePort: number, destinationPort: number): string {
  const first = reversed ? offset + length : offset;
  const second = reversed ? offset : offset + length;
  const firstPort = reversed ? destinationPort : sourcePort;
  const secondPort = reversed ? sourcePort : destinationPort;
  if (length === 4) {
    return String.fromCharCode(
      header[first]!, header[first + 1]!, header[first + 2]!, header[first + 3]!,
      header[second]!, header[second + 1]!, header[second + 2]!, header[second + 3]!,
      firstPort >> 8, firstPort & 0xff, secondPort >> 8, secondPort & 0xff,
    );
  }
  const codes = ipv6KeyCodes;
  for (let i = 0; i < 16; i++) {
    codes[i] = header[first + i]!;
    codes[16 + i] = header[second + i]!;
  }
  codes[32] = firstPort >> 8;
  codes[33] = firstPort & 0xff;
  codes[34] = secondPort >> 8;
  codes[35] = secondPort & 0xff;
  return String.fromCharCode.apply(null, codes as unknown as number[]);
}

/** What tcpdump prints instead of a record whose captured or wire length is 0 or that has more bytes captured than it had. */
function invalidHeader(captured: number, length: number): string {
  const problems: string[] = [];
  if (captured === 0) problems.push("caplen==0");
  if (length === 0) problems.push("len==0");
  else if (length < captured) problems.push(`len(${length}) < caplen(${captured})`);
  return `[Invalid header: ${problems.join(", ")}]`;
}

function sllPacketTypeName(type: number): string {
  return ["In", "B", "M", "P", "Out"][type] ?? `#${type}`;
}

/** IPv6 hop-by-hop / destination options as tcpdump -v prints them: "(pad1)(rtalert: 0x0000) (padn) ". */
function ipv6OptionsText(options: Uint8Array): string {
  let text = "";
  for (let i = 0; i < options.length; ) {
    const type = options[i]!;
    if (type === 0) {
      text += "(pad1)";
      i++;
      continue;
    }
    if (i + 1 >= options.length) break;
    const length = options[i + 1]!;
    if (type === 1) text += "(padn)";
    else if (type === 5 && length === 2 && i + 4 <= options.length) text += `(rtalert: 0x${hex((options[i + 2]! << 8) | options[i + 3]!, 4)}) `;
    else text += `(opt_type 0x${hex(type, 2)}: len=${length}) `;
    i += 2 + length;
  }
  return `${text} `;
}

/**
 * tcpdump -A: a newline, then every byte as a character when printable (or
 * a tab, space or newline), else "."; a carriage return is left out before
 * a newline and as one of the last two bytes (tcpdump's test looks one byte
 * too far).
 */
export function asciiDump(data: Uint8Array): string {
  let text = "\n";
  for (let i = 0; i < data.length; i++) {
    const byte = data[i]!;
    if (byte === 0x0d) {
      if (i + 2 < data.length && data[i + 1] !== 0x0a) text += ".";
    } else if ((byte > 0x20 && byte < 0x7f) || byte === 0x09 || byte === 0x20 || byte === 0x0a) {
      text += String.fromCharCode(byte);
    } else {
      text += ".";
    }
  }
  return text;
}

/** tcpdump's -x (`ascii` false) and -X (true) lines for `data`, each starting with a newline. */
export function hexDump(data: Uint8Array, ascii: boolean): string {
  expectBytes("hex dump", "data", data);
  expectBoolean("hex dump", "ascii", ascii);
  return hexLines(data, ascii);
}

let systemInterfaces: Map<number, string> | undefined;

/** This machine's interface name for an index, from /sys/class/net. */
export function systemInterfaceName(ifindex: number): string | undefined {
  if (systemInterfaces === undefined) {
    systemInterfaces = new Map();
    try {
      for (const name of readdirSync("/sys/class/net")) {
        try {
          systemInterfaces.set(Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8").trim()), name);
        } catch {
          // an interface that went away while listing
        }
      }
    } catch {
      // no sysfs: names stay unknown
    }
  }
  return systemInterfaces.get(ifindex);
}
