/** Types shared by the pcap and pcapng readers and writers. */
import { argumentError } from "../sys/argument-checks.js";
import { splitNanosecondTimestamp } from "./timestamp-units.js";

export type CaptureFormat = "pcap" | "pcapng";
export type ByteOrder = "little" | "big";

/** Packet direction, from pcapng epb_flags bits 0-1 (pcap files have none). */
export type PacketDirection = "inbound" | "outbound";

/** Reception type, from pcapng epb_flags bits 2-4. */
export type ReceptionType = "unicast" | "multicast" | "broadcast" | "promiscuous";

/** Timestamp unit of an interface: base^-exponent seconds (10^-6 is microseconds). */
export interface TimestampResolution {
  base: 10 | 2;
  exponent: number;
}

export const MICROSECOND_RESOLUTION: TimestampResolution = Object.freeze({ base: 10, exponent: 6 });
export const NANOSECOND_RESOLUTION: TimestampResolution = Object.freeze({ base: 10, exponent: 9 });

/** The process that sent or received a packet, as recorded by netbpf capture. */
export interface ProcessInfo {
  pid: number;
  command: string;
}

/** A pcapng option kept as stored: code and value bytes (without padding). */
export interface RawOption {
  code: number;
  value: Buffer;
}

/**
 * A pcapng custom option (codes 2988, 2989, 19372, 19373): the Private
 * Enterprise Number that defines it, and its data.
 */
export interface CustomOption {
  code: 2988 | 2989 | 19372 | 19373;
  privateEnterpriseNumber: number;
  data: Buffer;
}

export interface PacketHash {
  algorithm: number;
  value: Buffer;
}

export interface PacketVerdict {
  /** 0 = hardware, 1 = Linux eBPF TC, 2 = Linux eBPF XDP. */
  type: number;
  value: Buffer;
}

/** One captured packet, from either format. */
export interface CapturePacket {
  /** Nanoseconds since 1970-01-01 00:00:00 UTC (finer resolutions are truncated). */
  timestamp: bigint;
  /** Whole seconds of the timestamp. */
  seconds: number;
  /** Nanoseconds within the second (0 … 999 999 999). */
  nanoseconds: number;
  capturedLength: number;
  originalLength: number;
  /** The captured bytes; a slice of the input buffer or read chunk, not a copy. */
  data: Buffer;
  /** Interface within its section (0 for pcap files). */
  interfaceIndex: number;
  /** Section index (0 for pcap files and single-section pcapng). */
  sectionIndex: number;
  linkType: number;
  direction: PacketDirection | undefined;
  receptionType: ReceptionType | undefined;
  /** FCS length in bytes at the end of the data, when known. */
  fcsLength: number | undefined;
  /** Raw epb_flags word (0 when absent). */
  flags: number;
  comments: string[];
  process: ProcessInfo | undefined;
  dropCount: bigint | undefined;
  packetId: bigint | undefined;
  queue: number | undefined;
  hashes: PacketHash[];
  verdicts: PacketVerdict[];
  customOptions: CustomOption[];
  /** Every option of the block as stored (empty for pcap and simple packet blocks). */
  options: RawOption[];
  /** Where the packet came from: a pcap record, or a pcapng EPB, SPB or obsolete PB. */
  source: "pcap-record" | "enhanced-packet-block" | "simple-packet-block" | "packet-block";
}

export interface CaptureSection {
  index: number;
  format: CaptureFormat;
  byteOrder: ByteOrder;
  versionMajor: number;
  versionMinor: number;
  /** pcapng section length; -1n when not given. Undefined for pcap. */
  sectionLength: bigint | undefined;
  hardware: string | undefined;
  os: string | undefined;
  userApplication: string | undefined;
  comments: string[];
  customOptions: CustomOption[];
  options: RawOption[];
  /** pcap header "thiszone" (seconds east of UTC; nearly always 0). */
  timeZoneOffset: number | undefined;
  /** pcap header "sigfigs" (nearly always 0). */
  significantFigures: number | undefined;
}

export interface InterfaceFilter {
  /** 0 = libpcap filter expression, 1 = BPF program, others as stored. */
  type: number;
  /** The expression when type is 0. */
  expression: string | undefined;
  data: Buffer;
}

export interface CaptureInterface {
  index: number;
  sectionIndex: number;
  linkType: number;
  snapLength: number;
  timestampResolution: TimestampResolution;
  /** if_tsoffset: seconds added to every timestamp of this interface. */
  timestampOffset: bigint;
  name: string | undefined;
  description: string | undefined;
  os: string | undefined;
  hardware: string | undefined;
  filter: InterfaceFilter | undefined;
  /** FCS length in bytes (pcapng if_fcslen, or the pcap link-type FCS bits). */
  fcsLength: number | undefined;
  speed: bigint | undefined;
  transmitSpeed: bigint | undefined;
  receiveSpeed: bigint | undefined;
  timeZone: number | undefined;
  ianaTimeZone: string | undefined;
  ipv4Addresses: { address: string; netmask: string }[];
  ipv6Addresses: { address: string; prefixLength: number }[];
  macAddress: string | undefined;
  euiAddress: string | undefined;
  comments: string[];
  customOptions: CustomOption[];
  options: RawOption[];
}

export type NameRecord =
  | { type: "ipv4"; address: string; names: string[] }
  | { type: "ipv6"; address: string; names: string[] }
  | { type: "eui48"; address: string; names: string[] }
  | { type: "eui64"; address: string; names: string[] };

export interface NameResolution {
  sectionIndex: number;
  records: NameRecord[];
  /** Records of unknown type, kept as stored. */
  unknownRecords: { type: number; value: Buffer }[];
  dnsName: string | undefined;
  dnsIpv4Address: string | undefined;
  dnsIpv6Address: string | undefined;
  comments: string[];
  customOptions: CustomOption[];
  options: RawOption[];
}

export interface InterfaceStatistics {
  sectionIndex: number;
  interfaceIndex: number;
  /** Nanoseconds since the epoch. */
  timestamp: bigint;
  startTime: bigint | undefined;
  endTime: bigint | undefined;
  interfaceReceived: bigint | undefined;
  interfaceDropped: bigint | undefined;
  filterAccepted: bigint | undefined;
  osDropped: bigint | undefined;
  userDelivered: bigint | undefined;
  comments: string[];
  customOptions: CustomOption[];
  options: RawOption[];
}

/** Everything a reader produces, in file order. */
export type CaptureRecord =
  | { type: "section"; offset: number; section: CaptureSection }
  | { type: "interface"; offset: number; interface: CaptureInterface }
  | { type: "packet"; offset: number; packet: CapturePacket }
  | { type: "name-resolution"; offset: number; nameResolution: NameResolution }
  | { type: "interface-statistics"; offset: number; statistics: InterfaceStatistics }
  | { type: "unknown-block"; offset: number; sectionIndex: number; blockType: number; body: Buffer };

/** Limits that keep corrupt lengths from turning into huge allocations. */
export interface CaptureReadOptions {
  /** Largest captured length accepted for one packet (default 16 MiB). */
  maxPacketLength?: number;
  /** Largest pcapng block accepted (default 16 MiB plus headers). */
  maxBlockLength?: number;
}

export const DEFAULT_MAX_PACKET_LENGTH = 16 * 1024 * 1024;
export const DEFAULT_MAX_BLOCK_LENGTH = 16 * 1024 * 1024 + 4096;

/** Splits a nanosecond timestamp into whole seconds and nanoseconds (floor division). */
export function splitTimestamp(timestamp: bigint): { seconds: number; nanoseconds: number } {
  if (typeof timestamp !== "bigint") throw argumentError("split timestamp", "timestamp", "a bigint (nanoseconds since 1970)", timestamp);
  return splitNanosecondTimestamp(timestamp);
}

/** A packet to write. A CapturePacket read from a file can be passed as is. */
export interface PacketToWrite {
  data: Uint8Array;
  /** Nanoseconds since the epoch; defaults to the current time. */
  timestamp?: bigint;
  /** Length on the wire; defaults to data.length. */
  originalLength?: number;
  /** pcapng interface the packet belongs to (default 0). pcap files have only 0. */
  interfaceIndex?: number;
  /** When given, must match the interface's link type. */
  linkType?: number;
  direction?: PacketDirection;
  receptionType?: ReceptionType;
  fcsLength?: number;
  /** Raw epb_flags; direction, receptionType and fcsLength override their bits. */
  flags?: number;
  comments?: readonly string[];
  process?: ProcessInfo;
  dropCount?: bigint;
  packetId?: bigint;
  queue?: number;
  hashes?: readonly PacketHash[];
  verdicts?: readonly PacketVerdict[];
  customOptions?: readonly CustomOption[];
}
