import { argumentError, expectArray, expectBytes, expectInteger, expectObject, expectOneOf, expectString, isUint32 } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { parseHardwareAddress, parseIpv4, parseIpv6 } from "./address-text.js";
import type { CaptureSink } from "./capture-sink.js";
import {
  NANOSECOND_RESOLUTION,
  type ByteOrder,
  type CustomOption,
  type NameRecord,
  type PacketDirection,
  type PacketToWrite,
  type ReceptionType,
  type TimestampResolution,
} from "./capture-record.js";
import {
  CaptureWriterBase, checkLength, currentTimeNanoseconds, expectCaptureSink, expectPacketToWrite, packetBytesError, writePacketBytesUnchecked,
} from "./capture-writer.js";
import { DEFAULT_SNAP_LENGTH, nativeByteOrder } from "./pcap-writer.js";
import {
  BYTE_ORDER_MAGIC,
  BlockType,
  InterfaceOption,
  NETBPF_PRIVATE_ENTERPRISE_NUMBER,
  NameRecordType,
  NameResolutionOption,
  OptionCode,
  OptionEncoder,
  PacketOption,
  SectionOption,
  StatisticsOption,
  encodeProcessData,
  isProcessOption,
  padded,
  processComment,
  ProcessOptionCache,
  type ProcessOptions,
} from "./pcapng-options.js";
import { nanosecondsToUnits, resolutionToByte } from "./timestamp-units.js";

const OPERATION = "write pcapng";

export interface SectionToWrite {
  hardware?: string;
  os?: string;
  userApplication?: string;
  comments?: readonly string[];
  customOptions?: readonly CustomOption[];
}

export interface PcapngWriterOptions extends SectionToWrite {
  /** Default: the machine's own byte order. */
  byteOrder?: ByteOrder;
}

export interface InterfaceToWrite {
  linkType: number;
  /** Default 262144 (tcpdump's); 0 means no limit. */
  snapLength?: number;
  name?: string;
  description?: string;
  os?: string;
  hardware?: string;
  /** A libpcap filter expression, or a filter of another type as stored. */
  filter?: string | { type: number; data: Uint8Array };
  /** Default nanoseconds (10^-9); written as if_tsresol unless it is the pcapng default 10^-6. */
  timestampResolution?: TimestampResolution;
  /** if_tsoffset in seconds. */
  timestampOffset?: bigint;
  fcsLength?: number;
  speed?: bigint;
  transmitSpeed?: bigint;
  receiveSpeed?: bigint;
  timeZone?: number;
  ianaTimeZone?: string;
  ipv4Addresses?: readonly { address: string; netmask: string }[];
  ipv6Addresses?: readonly { address: string; prefixLength: number }[];
  macAddress?: string;
  euiAddress?: string;
  comments?: readonly string[];
  customOptions?: readonly CustomOption[];
}

export interface NameResolutionToWrite {
  records: readonly NameRecord[];
  dnsName?: string;
  dnsIpv4Address?: string;
  dnsIpv6Address?: string;
  comments?: readonly string[];
  customOptions?: readonly CustomOption[];
}

export interface InterfaceStatisticsToWrite {
  interfaceIndex?: number;
  /** When the statistics were taken, in nanoseconds since the epoch (default: now). */
  timestamp?: bigint;
  startTime?: bigint;
  endTime?: bigint;
  interfaceReceived?: bigint;
  interfaceDropped?: bigint;
  filterAccepted?: bigint;
  osDropped?: bigint;
  userDelivered?: bigint;
  comments?: readonly string[];
  customOptions?: readonly CustomOption[];
}

interface WrittenInterface {
  linkType: number;
  snapLength: number;
  resolution: TimestampResolution;
  offset: bigint;
  fcsLength: number | undefined;
  /** Time units are nanoseconds with no offset: a timestamp is stored as given. */
  nanosecondUnits: boolean;
}

const DIRECTION_BITS: Record<PacketDirection, number> = { inbound: 1, outbound: 2 };
const RECEPTION_BITS: Record<ReceptionType, number> = { unicast: 1, multicast: 2, broadcast: 3, promiscuous: 4 };

/** Builds the epb_flags word. */
export function encodePacketFlags(flags: number, direction?: PacketDirection, receptionType?: ReceptionType, fcsLength?: number): number {
  expectInteger(OPERATION, "flags", flags, 0, 0xffffffff);
  if (direction !== undefined) expectOneOf(OPERATION, "direction", direction, Object.keys(DIRECTION_BITS));
  if (receptionType !== undefined) expectOneOf(OPERATION, "receptionType", receptionType, Object.keys(RECEPTION_BITS));
  return packetFlagsWord(flags, direction, receptionType, fcsLength);
}

/** encodePacketFlags without the argument checks, for writePacket (per packet). */
function packetFlagsWord(flags: number, direction?: PacketDirection, receptionType?: ReceptionType, fcsLength?: number): number {
  let word = flags >>> 0;
  if (direction !== undefined) word = (word & ~0x3) | DIRECTION_BITS[direction];
  if (receptionType !== undefined) word = (word & ~0x1c) | (RECEPTION_BITS[receptionType] << 2);
  if (fcsLength !== undefined) {
    if (!Number.isInteger(fcsLength) || fcsLength < 0 || fcsLength > 15) {
      throw new UsageError(OPERATION, `FCS length ${fcsLength} does not fit the 4 bits of epb_flags (0…15 bytes)`);
    }
    word = (word & ~0x1e0) | (fcsLength << 5);
  }
  return word >>> 0;
}

/*
 * The checks of the option objects' fields (each names the field: "description.name must be a string, …").
 */
function optionalString(name: string, value: unknown): void {
  if (value !== undefined) expectString(OPERATION, name, value);
}

function optionalStrings(name: string, value: unknown): void {
  expectArray<unknown>(OPERATION, name, value, true).forEach((element, index) => expectString(OPERATION, `${name}[${index}]`, element));
}

function optionalBigint(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "bigint") throw argumentError(OPERATION, name, "a bigint", value);
}

function optionalUint32(name: string, value: unknown): void {
  if (value !== undefined) expectInteger(OPERATION, name, value, 0, 0xffffffff);
}

function optionalCustomOptions(name: string, value: unknown): void {
  expectArray<unknown>(OPERATION, name, value, true).forEach((element, index) => {
    const option = expectObject<Partial<CustomOption>>(OPERATION, `${name}[${index}]`, element);
    expectOneOf(OPERATION, `${name}[${index}].code`, option.code, [OptionCode.CUSTOM_STRING_COPYABLE, OptionCode.CUSTOM_BINARY_COPYABLE, OptionCode.CUSTOM_STRING, OptionCode.CUSTOM_BINARY]);
    expectInteger(OPERATION, `${name}[${index}].privateEnterpriseNumber`, option.privateEnterpriseNumber, 0, 0xffffffff);
    expectBytes(OPERATION, `${name}[${index}].data`, option.data);
  });
}

/** The fields of a SectionToWrite (`name` is the parameter: "section", or the constructor's "options"). */
function checkSection(name: string, section: unknown): SectionToWrite {
  const checked = expectObject<SectionToWrite>(OPERATION, name, section, true);
  optionalString(`${name}.hardware`, checked.hardware);
  optionalString(`${name}.os`, checked.os);
  optionalString(`${name}.userApplication`, checked.userApplication);
  optionalStrings(`${name}.comments`, checked.comments);
  optionalCustomOptions(`${name}.customOptions`, checked.customOptions);
  return checked;
}

function checkInterface(description: unknown): InterfaceToWrite {
  const name = "description";
  const checked = expectObject<InterfaceToWrite>(OPERATION, name, description);
  expectInteger(OPERATION, `${name}.linkType`, checked.linkType, 0, 0xffff);
  optionalUint32(`${name}.snapLength`, checked.snapLength);
  for (const field of ["name", "description", "os", "hardware", "ianaTimeZone", "macAddress", "euiAddress"] as const) optionalString(`${name}.${field}`, checked[field]);
  if (checked.filter !== undefined && typeof checked.filter !== "string") {
    const filter = expectObject<{ type?: unknown; data?: unknown }>(OPERATION, `${name}.filter`, checked.filter);
    expectInteger(OPERATION, `${name}.filter.type`, filter.type, 0, 255);
    expectBytes(OPERATION, `${name}.filter.data`, filter.data);
  }
  if (checked.timestampResolution !== undefined) expectObject(OPERATION, `${name}.timestampResolution`, checked.timestampResolution);
  for (const field of ["timestampOffset", "speed", "transmitSpeed", "receiveSpeed"] as const) optionalBigint(`${name}.${field}`, checked[field]);
  if (checked.timeZone !== undefined) expectInteger(OPERATION, `${name}.timeZone`, checked.timeZone, -0x80000000, 0x7fffffff);
  if (checked.fcsLength !== undefined) expectInteger(OPERATION, `${name}.fcsLength`, checked.fcsLength, 0, 255);
  expectArray<unknown>(OPERATION, `${name}.ipv4Addresses`, checked.ipv4Addresses, true).forEach((element, index) => {
    const address = expectObject<{ address?: unknown; netmask?: unknown }>(OPERATION, `${name}.ipv4Addresses[${index}]`, element);
    expectString(OPERATION, `${name}.ipv4Addresses[${index}].address`, address.address);
    expectString(OPERATION, `${name}.ipv4Addresses[${index}].netmask`, address.netmask);
  });
  expectArray<unknown>(OPERATION, `${name}.ipv6Addresses`, checked.ipv6Addresses, true).forEach((element, index) => {
    const address = expectObject<{ address?: unknown; prefixLength?: unknown }>(OPERATION, `${name}.ipv6Addresses[${index}]`, element);
    expectString(OPERATION, `${name}.ipv6Addresses[${index}].address`, address.address);
    expectInteger(OPERATION, `${name}.ipv6Addresses[${index}].prefixLength`, address.prefixLength, 0, 128);
  });
  optionalStrings(`${name}.comments`, checked.comments);
  optionalCustomOptions(`${name}.customOptions`, checked.customOptions);
  return checked;
}

function checkNameResolution(resolution: unknown): NameResolutionToWrite {
  const name = "resolution";
  const checked = expectObject<NameResolutionToWrite>(OPERATION, name, resolution);
  expectArray<unknown>(OPERATION, `${name}.records`, checked.records).forEach((element, index) => {
    const record = expectObject<{ type?: unknown; address?: unknown; names?: unknown }>(OPERATION, `${name}.records[${index}]`, element);
    expectOneOf(OPERATION, `${name}.records[${index}].type`, record.type, ["ipv4", "ipv6", "eui48", "eui64"]);
    expectString(OPERATION, `${name}.records[${index}].address`, record.address);
    expectArray<unknown>(OPERATION, `${name}.records[${index}].names`, record.names).forEach((entry, position) => expectString(OPERATION, `${name}.records[${index}].names[${position}]`, entry));
  });
  for (const field of ["dnsName", "dnsIpv4Address", "dnsIpv6Address"] as const) optionalString(`${name}.${field}`, checked[field]);
  optionalStrings(`${name}.comments`, checked.comments);
  optionalCustomOptions(`${name}.customOptions`, checked.customOptions);
  return checked;
}

function checkStatistics(statistics: unknown): InterfaceStatisticsToWrite {
  const name = "statistics";
  const checked = expectObject<InterfaceStatisticsToWrite>(OPERATION, name, statistics);
  optionalUint32(`${name}.interfaceIndex`, checked.interfaceIndex);
  for (const field of ["timestamp", "startTime", "endTime", "interfaceReceived", "interfaceDropped", "filterAccepted", "osDropped", "userDelivered"] as const) {
    optionalBigint(`${name}.${field}`, checked[field]);
  }
  optionalStrings(`${name}.comments`, checked.comments);
  optionalCustomOptions(`${name}.customOptions`, checked.customOptions);
  return checked;
}

/** The fields of a packet that writePacket encodes beyond expectPacketToWrite's: flags, direction and reception type. */
function checkPacketFields(packet: PacketToWrite): void {
  optionalUint32("packet.flags", packet.flags);
  if (packet.direction !== undefined) expectOneOf(OPERATION, "packet.direction", packet.direction, Object.keys(DIRECTION_BITS));
  if (packet.receptionType !== undefined) expectOneOf(OPERATION, "packet.receptionType", packet.receptionType, Object.keys(RECEPTION_BITS));
  optionalStrings("packet.comments", packet.comments);
}

/**
 * writeProcessPacketBytes without the argument checks, for the live capture's
 * loop (its numbers come from the kernel's records). Not exported from the package.
 */
export const writeProcessPacketBytesUnchecked: unique symbol = Symbol("writeProcessPacketBytesUnchecked");

const processPacketBytesNames = [
  "interfaceIndex", "timestampHigh", "timestampLow", "originalLength", "flags", "source", "start", "length", "pid", "commandStart", "commandLength",
] as const;

/**
 * Writes pcapng: a section header on construction, then interfaces, packets,
 * name resolution and statistics blocks in the order they are given.
 */
export class PcapngWriter extends CaptureWriterBase {
  readonly format = "pcapng" as const;
  readonly little: boolean;
  private interfaces: WrittenInterface[] = [];
  readonly #processOptions: ProcessOptionCache;

  constructor(sink: CaptureSink, options: PcapngWriterOptions = {}) {
    super(expectCaptureSink(OPERATION, "sink", sink));
    expectObject(OPERATION, "options", options, true);
    if (options.byteOrder !== undefined) expectOneOf(OPERATION, "options.byteOrder", options.byteOrder, ["little", "big"]);
    this.little = (options.byteOrder ?? nativeByteOrder()) === "little";
    this.#processOptions = new ProcessOptionCache(this.little);
    this.#startSection(checkSection("options", options));
  }

  get interfaceCount(): number {
    return this.interfaces.length;
  }

  /** Starts a new section (a new SHB); interfaces must be added again. */
  startSection(section: SectionToWrite = {}): void {
    this.#startSection(checkSection("section", section));
  }

  #startSection(section: SectionToWrite): void {
    const options = new OptionEncoder(this.little)
      .strings(OptionCode.COMMENT, section.comments)
      .string(SectionOption.HARDWARE, section.hardware)
      .string(SectionOption.OS, section.os)
      .string(SectionOption.USER_APPLICATION, section.userApplication)
      .customs(section.customOptions)
      .finish();
    const fixed = Buffer.alloc(16);
    this.u32(fixed, BYTE_ORDER_MAGIC, 0);
    this.u16(fixed, 1, 4);
    this.u16(fixed, 0, 6);
    if (this.little) fixed.writeBigInt64LE(-1n, 8);
    else fixed.writeBigInt64BE(-1n, 8);
    this.writeBlock(BlockType.SECTION_HEADER, fixed, options);
    this.interfaces = [];
  }

  /** Writes an Interface Description Block; returns its index for writePacket. */
  addInterface(description: InterfaceToWrite): number {
    const { linkType } = checkInterface(description);
    const snapLength = description.snapLength ?? DEFAULT_SNAP_LENGTH;
    checkLength(snapLength, "snapshot length", OPERATION);
    const resolution = description.timestampResolution ?? NANOSECOND_RESOLUTION;
    const resolutionByte = resolutionToByte(resolution);
    const options = new OptionEncoder(this.little)
      .strings(OptionCode.COMMENT, description.comments)
      .string(InterfaceOption.NAME, description.name)
      .string(InterfaceOption.DESCRIPTION, description.description);
    for (const { address, netmask } of description.ipv4Addresses ?? []) {
      options.add(InterfaceOption.IPV4_ADDRESS, Buffer.concat([requireAddress(parseIpv4(address), address, "IPv4"), requireAddress(parseIpv4(netmask), netmask, "IPv4 netmask")]));
    }
    for (const { address, prefixLength } of description.ipv6Addresses ?? []) {
      if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 128) {
        throw new UsageError(OPERATION, `IPv6 prefix length ${prefixLength} is outside 0…128`);
      }
      options.add(InterfaceOption.IPV6_ADDRESS, Buffer.concat([requireAddress(parseIpv6(address), address, "IPv6"), Buffer.of(prefixLength)]));
    }
    if (description.macAddress !== undefined) {
      options.add(InterfaceOption.MAC_ADDRESS, requireAddress(parseHardwareAddress(description.macAddress, 6), description.macAddress, "MAC"));
    }
    if (description.euiAddress !== undefined) {
      options.add(InterfaceOption.EUI_ADDRESS, requireAddress(parseHardwareAddress(description.euiAddress, 8), description.euiAddress, "EUI-64"));
    }
    options.uint64(InterfaceOption.SPEED, description.speed);
    if (resolutionByte !== 6) options.uint8(InterfaceOption.TIMESTAMP_RESOLUTION, resolutionByte);
    options.int32(InterfaceOption.TIME_ZONE, description.timeZone);
    if (description.filter !== undefined) {
      const filter = typeof description.filter === "string" ? { type: 0, data: Buffer.from(description.filter, "utf8") } : description.filter;
      options.add(InterfaceOption.FILTER, Buffer.concat([Buffer.of(filter.type), filter.data]));
    }
    options.string(InterfaceOption.OS, description.os);
    if (description.fcsLength !== undefined) {
      if (!Number.isInteger(description.fcsLength) || description.fcsLength < 0 || description.fcsLength > 255) {
        throw new UsageError(OPERATION, `FCS length ${description.fcsLength} is outside 0…255`);
      }
      options.uint8(InterfaceOption.FCS_LENGTH, description.fcsLength);
    }
    options.int64(InterfaceOption.TIMESTAMP_OFFSET, description.timestampOffset);
    options.string(InterfaceOption.HARDWARE, description.hardware);
    options.uint64(InterfaceOption.TRANSMIT_SPEED, description.transmitSpeed);
    options.uint64(InterfaceOption.RECEIVE_SPEED, description.receiveSpeed);
    options.string(InterfaceOption.IANA_TIME_ZONE, description.ianaTimeZone);
    options.customs(description.customOptions);
    const fixed = Buffer.alloc(8);
    this.u16(fixed, linkType, 0);
    this.u32(fixed, snapLength, 4);
    this.writeBlock(BlockType.INTERFACE_DESCRIPTION, fixed, options.finish());
    this.interfaces.push({
      linkType,
      snapLength,
      resolution,
      offset: description.timestampOffset ?? 0n,
      fcsLength: description.fcsLength,
      nanosecondUnits: resolution.base === 10 && resolution.exponent === 9 && (description.timestampOffset ?? 0n) === 0n,
    });
    return this.interfaces.length - 1;
  }

  /** Writes an Enhanced Packet Block. */
  writePacket(packet: PacketToWrite): void {
    checkPacketFields(expectPacketToWrite(OPERATION, packet));
    const interfaceIndex = packet.interfaceIndex ?? 0;
    const target = this.interfaceAt(interfaceIndex);
    if (packet.linkType !== undefined && packet.linkType !== target.linkType) {
      throw new UsageError(OPERATION, `packet has link type ${packet.linkType}, but interface ${interfaceIndex} has link type ${target.linkType}`, "add an interface with that link type");
    }
    const units = nanosecondsToUnits(packet.timestamp ?? currentTimeNanoseconds(), target.resolution, target.offset);
    if (units < 0n || units > 0xffffffffffffffffn) {
      throw new UsageError(OPERATION, `timestamp ${packet.timestamp} ns cannot be stored in interface ${interfaceIndex}'s time units`);
    }
    const capturedLength = target.snapLength > 0 ? Math.min(packet.data.length, target.snapLength) : packet.data.length;
    const originalLength = packet.originalLength ?? packet.data.length;
    checkLength(originalLength, "original length", OPERATION);
    const fcsLength = packet.fcsLength !== undefined && packet.fcsLength !== target.fcsLength ? packet.fcsLength : undefined;
    const flags = packetFlagsWord(packet.flags ?? 0, packet.direction, packet.receptionType, fcsLength);

    const options = new OptionEncoder(this.little);
    const comments = [...(packet.comments ?? [])];
    if (packet.process) {
      const comment = processComment(packet.process);
      if (!comments.includes(comment)) comments.push(comment);
    }
    options.strings(OptionCode.COMMENT, comments);
    if (flags !== 0) options.uint32(PacketOption.FLAGS, flags);
    for (const hash of packet.hashes ?? []) options.add(PacketOption.HASH, Buffer.concat([Buffer.of(hash.algorithm), hash.value]));
    options.uint64(PacketOption.DROP_COUNT, packet.dropCount);
    options.uint64(PacketOption.PACKET_ID, packet.packetId);
    options.uint32(PacketOption.QUEUE, packet.queue);
    for (const verdict of packet.verdicts ?? []) options.add(PacketOption.VERDICT, Buffer.concat([Buffer.of(verdict.type), verdict.value]));
    let customOptions = [...(packet.customOptions ?? [])];
    if (packet.process) {
      // A packet read from a file carries its old process option (maybe in the other byte order): replace it.
      customOptions = customOptions.filter((option) => !isProcessOption(option));
      const data = encodeProcessData(packet.process, this.little);
      customOptions.push({ code: OptionCode.CUSTOM_BINARY_COPYABLE, privateEnterpriseNumber: NETBPF_PRIVATE_ENTERPRISE_NUMBER, data });
    }
    options.customs(customOptions);
    const encodedOptions = options.finish();

    const fixed = Buffer.alloc(20 + padded(capturedLength));
    this.u32(fixed, interfaceIndex, 0);
    this.u32(fixed, Number(units >> 32n), 4);
    this.u32(fixed, Number(units & 0xffffffffn), 8);
    this.u32(fixed, capturedLength, 12);
    this.u32(fixed, originalLength, 16);
    fixed.set(packet.data.subarray(0, capturedLength), 20);
    this.writeBlock(BlockType.ENHANCED_PACKET, fixed, encodedOptions);
    this.packetsWritten++;
  }

  /**
   * Writes an Enhanced Packet Block with no options but epb_flags, straight
   * into the sink's buffer when it lends one (see CaptureWriter).
   */
  [writePacketBytesUnchecked](interfaceIndex: number, timestampHigh: number, timestampLow: number, originalLength: number, flags: number, source: Uint8Array, start: number, length: number): void {
    this.#writeEnhancedBytes(interfaceIndex, timestampHigh, timestampLow, originalLength, flags, source, start, length, undefined);
  }

  /**
   * writePacketBytes() for a packet whose process is known: the process is
   * `pid` and the command bytes source[commandStart, commandStart +
   * commandLength) (UTF-8, as the kernel's comm). Same output as
   * writePacket() with `process: { pid, command }`; the comment and custom
   * option are encoded once per pid and command (see ProcessOptionCache),
   * so nothing is allocated per packet.
   */
  writeProcessPacketBytes(
    interfaceIndex: number, timestampHigh: number, timestampLow: number, originalLength: number, flags: number,
    source: Uint8Array, start: number, length: number, pid: number, commandStart: number, commandLength: number,
  ): void {
    if (!(source instanceof Uint8Array) || !isUint32(interfaceIndex) || !isUint32(timestampHigh) || !isUint32(timestampLow) || !isUint32(originalLength)
      || !isUint32(flags) || !isUint32(start) || !isUint32(length) || start + length > source.length
      || !isUint32(pid) || !isUint32(commandStart) || !isUint32(commandLength) || commandStart + commandLength > source.length) {
      const values = [interfaceIndex, timestampHigh, timestampLow, originalLength, flags, source, start, length, pid, commandStart, commandLength];
      throw packetBytesError(OPERATION, processPacketBytesNames, values)
        ?? argumentError(OPERATION, commandStart > source.length ? "commandStart" : "commandLength", `a range within source (0 to ${source.length})`, commandStart > source.length ? commandStart : commandLength);
    }
    this[writeProcessPacketBytesUnchecked](interfaceIndex, timestampHigh, timestampLow, originalLength, flags, source, start, length, pid, commandStart, commandLength);
  }

  [writeProcessPacketBytesUnchecked](
    interfaceIndex: number, timestampHigh: number, timestampLow: number, originalLength: number, flags: number,
    source: Uint8Array, start: number, length: number, pid: number, commandStart: number, commandLength: number,
  ): void {
    const options = this.#processOptions.get(pid, source, commandStart, commandLength);
    this.#writeEnhancedBytes(interfaceIndex, timestampHigh, timestampLow, originalLength, flags, source, start, length, options);
  }

  #writeEnhancedBytes(
    interfaceIndex: number, timestampHigh: number, timestampLow: number, originalLength: number, flags: number,
    source: Uint8Array, start: number, length: number, process: ProcessOptions | undefined,
  ): void {
    const target = this.interfaceAt(interfaceIndex);
    if (!target.nanosecondUnits) {
      const timestamp = (BigInt(timestampHigh >>> 0) << 32n) | BigInt(timestampLow >>> 0);
      const data = Buffer.from(source.buffer, source.byteOffset + start, length);
      this.writePacket({ interfaceIndex, timestamp, originalLength, flags, data, process: process?.process });
      return;
    }
    if (!(originalLength >= 0 && originalLength <= 0xffffffff && Number.isInteger(originalLength))) checkLength(originalLength, "original length", OPERATION);
    const capturedLength = target.snapLength > 0 && length > target.snapLength ? target.snapLength : length;
    const paddedLength = (capturedLength + 3) & ~3;
    const flagsWord = flags >>> 0;
    // Options in writePacket()'s order: comment, epb_flags, custom option, opt_endofopt.
    const optionsLength = (flagsWord !== 0 ? 8 : 0) + (process === undefined ? 0 : process.comment.length + process.custom.length);
    const totalLength = 32 + paddedLength + (optionsLength !== 0 ? optionsLength + 4 : 0);
    const at = this.reserve(totalLength);
    const view = this.outputView;
    const little = this.little;
    view.setUint32(at, BlockType.ENHANCED_PACKET, little);
    view.setUint32(at + 4, totalLength, little);
    view.setUint32(at + 8, interfaceIndex, little);
    view.setUint32(at + 12, timestampHigh >>> 0, little);
    view.setUint32(at + 16, timestampLow >>> 0, little);
    view.setUint32(at + 20, capturedLength, little);
    view.setUint32(at + 24, originalLength, little);
    this.copyPacket(source, start, capturedLength, at + 28);
    let position = at + 28 + capturedLength;
    const output = this.output;
    while (position < at + 28 + paddedLength) output[position++] = 0;
    if (process !== undefined) {
      output.set(process.comment, position);
      position += process.comment.length;
    }
    if (flagsWord !== 0) {
      view.setUint16(position, PacketOption.FLAGS, little);
      view.setUint16(position + 2, 4, little);
      view.setUint32(position + 4, flagsWord, little);
      position += 8;
    }
    if (process !== undefined) {
      output.set(process.custom, position);
      position += process.custom.length;
    }
    if (optionsLength !== 0) {
      view.setUint32(position, 0, little);
      position += 4;
    }
    view.setUint32(position, totalLength, little);
    this.commit();
    this.packetsWritten++;
  }

  /** Writes a Simple Packet Block (no timestamp, interface 0). */
  writeSimplePacket(data: Uint8Array, originalLength?: number): void {
    expectBytes(OPERATION, "data", data);
    optionalUint32("originalLength", originalLength);
    originalLength ??= data.length;
    const target = this.interfaceAt(0);
    const capturedLength = Math.min(data.length, originalLength, target.snapLength > 0 ? target.snapLength : Infinity);
    const body = Buffer.alloc(4 + padded(capturedLength));
    this.u32(body, originalLength, 0);
    body.set(data.subarray(0, capturedLength), 4);
    this.writeBlock(BlockType.SIMPLE_PACKET, body, Buffer.alloc(0));
    this.packetsWritten++;
  }

  writeNameResolution(resolution: NameResolutionToWrite): void {
    checkNameResolution(resolution);
    const parts: Buffer[] = [];
    for (const record of resolution.records) {
      let address: Buffer | undefined;
      let type: number;
      switch (record.type) {
        case "ipv4":
          type = NameRecordType.IPV4;
          address = parseIpv4(record.address);
          break;
        case "ipv6":
          type = NameRecordType.IPV6;
          address = parseIpv6(record.address);
          break;
        case "eui48":
          type = NameRecordType.EUI48;
          address = parseHardwareAddress(record.address, 6);
          break;
        case "eui64":
          type = NameRecordType.EUI64;
          address = parseHardwareAddress(record.address, 8);
          break;
      }
      const value = Buffer.concat([requireAddress(address, record.address, record.type), ...record.names.map((name) => Buffer.from(`${name}\0`, "utf8"))]);
      if (value.length > 0xffff) throw new UsageError(OPERATION, `name record for ${record.address} is ${value.length} bytes; at most 65535 fit`);
      const header = Buffer.alloc(4);
      this.u16(header, type, 0);
      this.u16(header, value.length, 2);
      parts.push(header, value, Buffer.alloc(padded(value.length) - value.length));
    }
    parts.push(Buffer.alloc(4));
    const options = new OptionEncoder(this.little)
      .strings(OptionCode.COMMENT, resolution.comments)
      .string(NameResolutionOption.DNS_NAME, resolution.dnsName);
    if (resolution.dnsIpv4Address !== undefined) {
      options.add(NameResolutionOption.DNS_IPV4_ADDRESS, requireAddress(parseIpv4(resolution.dnsIpv4Address), resolution.dnsIpv4Address, "IPv4"));
    }
    if (resolution.dnsIpv6Address !== undefined) {
      options.add(NameResolutionOption.DNS_IPV6_ADDRESS, requireAddress(parseIpv6(resolution.dnsIpv6Address), resolution.dnsIpv6Address, "IPv6"));
    }
    options.customs(resolution.customOptions);
    this.writeBlock(BlockType.NAME_RESOLUTION, Buffer.concat(parts), options.finish());
  }

  writeInterfaceStatistics(statistics: InterfaceStatisticsToWrite): void {
    checkStatistics(statistics);
    const interfaceIndex = statistics.interfaceIndex ?? 0;
    const target = this.interfaceAt(interfaceIndex);
    const toUnits = (nanoseconds: bigint | undefined) =>
      nanoseconds === undefined ? undefined : nanosecondsToUnits(nanoseconds, target.resolution, target.offset);
    const options = new OptionEncoder(this.little)
      .strings(OptionCode.COMMENT, statistics.comments)
      .splitUint64(StatisticsOption.START_TIME, toUnits(statistics.startTime))
      .splitUint64(StatisticsOption.END_TIME, toUnits(statistics.endTime))
      .uint64(StatisticsOption.INTERFACE_RECEIVED, statistics.interfaceReceived)
      .uint64(StatisticsOption.INTERFACE_DROPPED, statistics.interfaceDropped)
      .uint64(StatisticsOption.FILTER_ACCEPTED, statistics.filterAccepted)
      .uint64(StatisticsOption.OS_DROPPED, statistics.osDropped)
      .uint64(StatisticsOption.USER_DELIVERED, statistics.userDelivered)
      .customs(statistics.customOptions)
      .finish();
    const units = toUnits(statistics.timestamp ?? currentTimeNanoseconds())!;
    const fixed = Buffer.alloc(12);
    this.u32(fixed, interfaceIndex, 0);
    this.u32(fixed, Number((units >> 32n) & 0xffffffffn), 4);
    this.u32(fixed, Number(units & 0xffffffffn), 8);
    this.writeBlock(BlockType.INTERFACE_STATISTICS, fixed, options);
  }

  /** Writes any block as given (custom or experimental blocks); `body` is padded to 4 bytes. */
  writeRawBlock(type: number, body: Uint8Array): void {
    expectInteger(OPERATION, "type", type, 0, 0xffffffff);
    expectBytes(OPERATION, "body", body);
    if (type === BlockType.SECTION_HEADER) throw new UsageError(OPERATION, "use startSection() to write a section header block");
    const padding = Buffer.alloc(padded(body.length) - body.length);
    this.writeBlock(type >>> 0, Buffer.concat([body, padding]), Buffer.alloc(0));
  }

  private interfaceAt(index: number): WrittenInterface {
    const found = this.interfaces[index];
    if (!found) {
      throw new UsageError(OPERATION, `interface ${index} does not exist; ${this.interfaces.length} interface(s) were added in this section`, "call addInterface() first");
    }
    return found;
  }

  private writeBlock(type: number, fixed: Buffer, options: Buffer): void {
    const totalLength = 12 + fixed.length + options.length;
    const block = Buffer.alloc(totalLength);
    this.u32(block, type, 0);
    this.u32(block, totalLength, 4);
    fixed.copy(block, 8);
    options.copy(block, 8 + fixed.length);
    this.u32(block, totalLength, totalLength - 4);
    this.emit(block);
  }

  private u32(target: Buffer, value: number, at: number): void {
    if (this.little) target.writeUInt32LE(value >>> 0, at);
    else target.writeUInt32BE(value >>> 0, at);
  }

  private u16(target: Buffer, value: number, at: number): void {
    if (this.little) target.writeUInt16LE(value, at);
    else target.writeUInt16BE(value, at);
  }
}

function requireAddress(bytes: Buffer | undefined, text: string, kind: string): Buffer {
  if (!bytes) throw new UsageError(OPERATION, `"${text}" is not a valid ${kind} address`);
  return bytes;
}
