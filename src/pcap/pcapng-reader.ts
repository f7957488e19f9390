import { formatHardwareAddress, formatIpv4, formatIpv6 } from "./address-text.js";
import { CaptureFormatError } from "./capture-format-error.js";
import type { CaptureParser } from "./capture-parser.js";
import { runParserSync } from "./capture-parser.js";
import {
  DEFAULT_MAX_BLOCK_LENGTH,
  DEFAULT_MAX_PACKET_LENGTH,
  type CaptureInterface,
  type CapturePacket,
  type CaptureReadOptions,
  type CaptureRecord,
  type CaptureSection,
  type InterfaceStatistics,
  type NameRecord,
  type NameResolution,
  type PacketDirection,
  type PacketHash,
  type PacketVerdict,
  type RawOption,
  type ReceptionType,
} from "./capture-record.js";
import { emptyInterface, emptyPacket } from "./pcap-reader.js";
import {
  BYTE_ORDER_MAGIC,
  BlockType,
  InterfaceOption,
  NameRecordType,
  NameResolutionOption,
  PacketOption,
  SectionOption,
  StatisticsOption,
  blockError,
  decodeCommonOptions,
  decodeOptions,
  decodeProcessInfo,
  decodeString,
  fixedValue,
  padded,
  readSplitUint64,
  readUint32,
  readUint64,
  type OptionContext,
} from "./pcapng-options.js";
import { resolutionFromByte, unitsToNanoseconds } from "./timestamp-units.js";

const BLOCK_NAMES = new Map<number, string>([
  [BlockType.SECTION_HEADER, "section header block"],
  [BlockType.INTERFACE_DESCRIPTION, "interface description block"],
  [BlockType.PACKET, "packet block"],
  [BlockType.SIMPLE_PACKET, "simple packet block"],
  [BlockType.NAME_RESOLUTION, "name resolution block"],
  [BlockType.INTERFACE_STATISTICS, "interface statistics block"],
  [BlockType.ENHANCED_PACKET, "enhanced packet block"],
]);

/** Smallest total length of each block type: 12 bytes of framing plus fixed fields. */
const MINIMUM_BLOCK_LENGTH = new Map<number, number>([
  [BlockType.SECTION_HEADER, 28],
  [BlockType.INTERFACE_DESCRIPTION, 20],
  [BlockType.PACKET, 32],
  [BlockType.SIMPLE_PACKET, 16],
  [BlockType.NAME_RESOLUTION, 12],
  [BlockType.INTERFACE_STATISTICS, 24],
  [BlockType.ENHANCED_PACKET, 32],
]);

export function isPcapngMagic(magic: Buffer): boolean {
  return magic.length >= 4 && magic.readUInt32LE(0) === BlockType.SECTION_HEADER;
}

interface SectionState {
  index: number;
  little: boolean;
  interfaces: CaptureInterface[];
}

export function* parsePcapng(magic: Buffer, options: CaptureReadOptions = {}): CaptureParser<CaptureRecord> {
  const maxBlockLength = options.maxBlockLength ?? DEFAULT_MAX_BLOCK_LENGTH;
  const maxPacketLength = options.maxPacketLength ?? DEFAULT_MAX_PACKET_LENGTH;
  let offset = 0;
  let section: SectionState | undefined;
  let sectionCount = 0;
  let pending: Buffer | undefined = magic;

  for (;;) {
    let head: Buffer;
    if (pending) {
      const more: Buffer = yield { read: 8 - pending.length };
      head = Buffer.concat([pending, more]);
      pending = undefined;
    } else {
      head = yield { read: 8 };
    }
    if (head.length === 0) return;
    if (head.length < 8) {
      throw new CaptureFormatError(offset, `pcapng block at offset ${offset}: truncated block header (${head.length} of 8 bytes)`);
    }
    const rawType = head.readUInt32LE(0);
    let little: boolean;
    let prefix: Buffer;
    if (rawType === BlockType.SECTION_HEADER) {
      const magicBytes: Buffer = yield { read: 4 };
      if (magicBytes.length < 4) {
        throw new CaptureFormatError(offset, `pcapng section header block at offset ${offset}: truncated before its byte-order magic`);
      }
      if (magicBytes.readUInt32LE(0) === BYTE_ORDER_MAGIC) little = true;
      else if (magicBytes.readUInt32BE(0) === BYTE_ORDER_MAGIC) little = false;
      else {
        throw new CaptureFormatError(
          offset + 8,
          `pcapng section header block at offset ${offset}: bad byte-order magic 0x${magicBytes.toString("hex")} (expected 1a2b3c4d in either byte order)`,
        );
      }
      prefix = magicBytes;
    } else {
      if (!section) {
        throw new CaptureFormatError(offset, `pcapng block at offset ${offset}: file does not start with a section header block`);
      }
      little = section.little;
      prefix = Buffer.alloc(0);
    }
    const type = little ? head.readUInt32LE(0) : head.readUInt32BE(0);
    const totalLength = little ? head.readUInt32LE(4) : head.readUInt32BE(4);
    const name = BLOCK_NAMES.get(type) ?? `block of type 0x${type.toString(16).padStart(8, "0")}`;
    const where = `pcapng ${name} at offset ${offset}`;
    const minimum = MINIMUM_BLOCK_LENGTH.get(type) ?? 12;
    if (totalLength < minimum) {
      throw new CaptureFormatError(offset, `${where}: block total length ${totalLength} is smaller than ${minimum}`);
    }
    if (totalLength % 4 !== 0) {
      throw new CaptureFormatError(offset, `${where}: block total length ${totalLength} is not a multiple of 4`);
    }
    if (totalLength > maxBlockLength) {
      throw new CaptureFormatError(
        offset,
        `${where}: block total length ${totalLength} is larger than the limit of ${maxBlockLength} bytes`,
        "the file is corrupt; raise maxBlockLength only if the capture really holds blocks this large",
      );
    }
    const restLength = totalLength - 8 - prefix.length;
    const rest: Buffer = yield { read: restLength };
    if (rest.length < restLength) {
      throw new CaptureFormatError(
        offset,
        `${where}: truncated, block total length ${totalLength} but only ${8 + prefix.length + rest.length} bytes remain`,
      );
    }
    const trailer = little ? rest.readUInt32LE(rest.length - 4) : rest.readUInt32BE(rest.length - 4);
    if (trailer !== totalLength) {
      throw new CaptureFormatError(
        offset + totalLength - 4,
        `${where}: trailing block total length ${trailer} does not match the leading ${totalLength}`,
      );
    }
    const body = prefix.length > 0 ? Buffer.concat([prefix, rest.subarray(0, rest.length - 4)]) : rest.subarray(0, rest.length - 4);
    const context: OptionContext = { blockName: name, blockOffset: offset, bodyOffset: offset + 8, little };

    switch (type) {
      case BlockType.SECTION_HEADER: {
        section = { index: sectionCount++, little, interfaces: [] };
        yield { emit: { type: "section", offset, section: decodeSectionHeader(body, section.index, context) } };
        break;
      }
      case BlockType.INTERFACE_DESCRIPTION: {
        const state = section!;
        const captureInterface = decodeInterfaceDescription(body, state.interfaces.length, state.index, context);
        state.interfaces.push(captureInterface);
        yield { emit: { type: "interface", offset, interface: captureInterface } };
        break;
      }
      case BlockType.ENHANCED_PACKET:
      case BlockType.PACKET: {
        const packet = decodePacketBlock(body, type, section!, maxPacketLength, context);
        yield { emit: { type: "packet", offset, packet } };
        break;
      }
      case BlockType.SIMPLE_PACKET: {
        const packet = decodeSimplePacket(body, section!, maxPacketLength, context);
        yield { emit: { type: "packet", offset, packet } };
        break;
      }
      case BlockType.NAME_RESOLUTION: {
        yield { emit: { type: "name-resolution", offset, nameResolution: decodeNameResolution(body, section!.index, context) } };
        break;
      }
      case BlockType.INTERFACE_STATISTICS: {
        yield { emit: { type: "interface-statistics", offset, statistics: decodeInterfaceStatistics(body, section!, context) } };
        break;
      }
      default:
        yield { emit: { type: "unknown-block", offset, sectionIndex: section!.index, blockType: type, body } };
    }
    offset += totalLength;
  }
}

function decodeSectionHeader(body: Buffer, index: number, context: OptionContext): CaptureSection {
  const little = context.little;
  const versionMajor = little ? body.readUInt16LE(4) : body.readUInt16BE(4);
  const versionMinor = little ? body.readUInt16LE(6) : body.readUInt16BE(6);
  if (versionMajor !== 1) {
    throw blockError(context, `unsupported pcapng version ${versionMajor}.${versionMinor} (only 1.x is defined)`);
  }
  const sectionLength = little ? body.readBigInt64LE(8) : body.readBigInt64BE(8);
  const options = decodeOptions(body, 16, context);
  const section: CaptureSection = {
    index,
    format: "pcapng",
    byteOrder: little ? "little" : "big",
    versionMajor,
    versionMinor,
    sectionLength,
    hardware: undefined,
    os: undefined,
    userApplication: undefined,
    ...decodeCommonOptions(options, context),
    options,
    timeZoneOffset: undefined,
    significantFigures: undefined,
  };
  for (const option of options) {
    if (option.code === SectionOption.HARDWARE) section.hardware = decodeString(option.value);
    else if (option.code === SectionOption.OS) section.os = decodeString(option.value);
    else if (option.code === SectionOption.USER_APPLICATION) section.userApplication = decodeString(option.value);
  }
  return section;
}

function decodeInterfaceDescription(body: Buffer, index: number, sectionIndex: number, context: OptionContext): CaptureInterface {
  const little = context.little;
  const linkType = little ? body.readUInt16LE(0) : body.readUInt16BE(0);
  const snapLength = little ? body.readUInt32LE(4) : body.readUInt32BE(4);
  const options = decodeOptions(body, 8, context);
  const result: CaptureInterface = {
    ...emptyInterface(index, sectionIndex, linkType, snapLength),
    ...decodeCommonOptions(options, context),
    options,
  };
  for (const option of options) {
    const value = option.value;
    switch (option.code) {
      case InterfaceOption.NAME:
        result.name = decodeString(value);
        break;
      case InterfaceOption.DESCRIPTION:
        result.description = decodeString(value);
        break;
      case InterfaceOption.IPV4_ADDRESS:
        fixedValue(option, 8, "if_IPv4addr", context);
        result.ipv4Addresses.push({ address: formatIpv4(value.subarray(0, 4)), netmask: formatIpv4(value.subarray(4, 8)) });
        break;
      case InterfaceOption.IPV6_ADDRESS:
        fixedValue(option, 17, "if_IPv6addr", context);
        result.ipv6Addresses.push({ address: formatIpv6(value.subarray(0, 16)), prefixLength: value[16]! });
        break;
      case InterfaceOption.MAC_ADDRESS:
        result.macAddress = formatHardwareAddress(fixedValue(option, 6, "if_MACaddr", context));
        break;
      case InterfaceOption.EUI_ADDRESS:
        result.euiAddress = formatHardwareAddress(fixedValue(option, 8, "if_EUIaddr", context));
        break;
      case InterfaceOption.SPEED:
        result.speed = readUint64(fixedValue(option, 8, "if_speed", context), little);
        break;
      case InterfaceOption.TIMESTAMP_RESOLUTION:
        result.timestampResolution = resolutionFromByte(fixedValue(option, 1, "if_tsresol", context)[0]!);
        break;
      case InterfaceOption.TIME_ZONE: {
        const bytes = fixedValue(option, 4, "if_tzone", context);
        result.timeZone = little ? bytes.readInt32LE(0) : bytes.readInt32BE(0);
        break;
      }
      case InterfaceOption.FILTER: {
        if (value.length < 1) throw blockError(context, "option if_filter is empty; it needs at least its 1-byte filter type");
        const data = value.subarray(1);
        result.filter = { type: value[0]!, expression: value[0] === 0 ? decodeString(data) : undefined, data };
        break;
      }
      case InterfaceOption.OS:
        result.os = decodeString(value);
        break;
      case InterfaceOption.FCS_LENGTH:
        result.fcsLength = fixedValue(option, 1, "if_fcslen", context)[0]!;
        break;
      case InterfaceOption.TIMESTAMP_OFFSET: {
        const bytes = fixedValue(option, 8, "if_tsoffset", context);
        result.timestampOffset = little ? bytes.readBigInt64LE(0) : bytes.readBigInt64BE(0);
        break;
      }
      case InterfaceOption.HARDWARE:
        result.hardware = decodeString(value);
        break;
      case InterfaceOption.TRANSMIT_SPEED:
        result.transmitSpeed = readUint64(fixedValue(option, 8, "if_txspeed", context), little);
        break;
      case InterfaceOption.RECEIVE_SPEED:
        result.receiveSpeed = readUint64(fixedValue(option, 8, "if_rxspeed", context), little);
        break;
      case InterfaceOption.IANA_TIME_ZONE:
        result.ianaTimeZone = decodeString(value);
        break;
    }
  }
  return result;
}

const DIRECTIONS: (PacketDirection | undefined)[] = [undefined, "inbound", "outbound", undefined];
const RECEPTION_TYPES: (ReceptionType | undefined)[] = [undefined, "unicast", "multicast", "broadcast", "promiscuous", undefined, undefined, undefined];

/** Direction, reception type and FCS length packed in epb_flags. */
export function decodePacketFlags(flags: number): { direction: PacketDirection | undefined; receptionType: ReceptionType | undefined; fcsLength: number | undefined } {
  const fcs = (flags >>> 5) & 0xf;
  return { direction: DIRECTIONS[flags & 3], receptionType: RECEPTION_TYPES[(flags >>> 2) & 7], fcsLength: fcs === 0 ? undefined : fcs };
}

function interfaceFor(section: SectionState, interfaceIndex: number, context: OptionContext): CaptureInterface {
  const found = section.interfaces[interfaceIndex];
  if (!found) {
    throw blockError(
      context,
      `refers to interface ${interfaceIndex} but section ${section.index} has ${section.interfaces.length} interface description block(s) before it`,
    );
  }
  return found;
}

function decodePacketBlock(body: Buffer, type: number, section: SectionState, maxPacketLength: number, context: OptionContext): CapturePacket {
  const little = context.little;
  const enhanced = type === BlockType.ENHANCED_PACKET;
  const interfaceIndex = enhanced ? readUint32(body, little) : little ? body.readUInt16LE(0) : body.readUInt16BE(0);
  const legacyDropCount = enhanced ? undefined : little ? body.readUInt16LE(2) : body.readUInt16BE(2);
  const captureInterface = interfaceFor(section, interfaceIndex, context);
  const units = readSplitUint64(body, 4, little);
  const capturedLength = little ? body.readUInt32LE(12) : body.readUInt32BE(12);
  const originalLength = little ? body.readUInt32LE(16) : body.readUInt32BE(16);
  if (capturedLength > maxPacketLength) {
    throw blockError(context, `captured length ${capturedLength} is larger than the limit of ${maxPacketLength} bytes`);
  }
  if (20 + capturedLength > body.length) {
    throw blockError(context, `captured length ${capturedLength} overruns the block, which has room for ${body.length - 20} bytes of packet data`);
  }
  const data = body.subarray(20, 20 + capturedLength);
  const options = decodeOptions(body, 20 + padded(capturedLength), context);
  const common = decodeCommonOptions(options, context);
  const timestamp = unitsToNanoseconds(units, captureInterface.timestampResolution, captureInterface.timestampOffset);
  const packet = emptyPacket(timestamp, data, originalLength, captureInterface.linkType, captureInterface.fcsLength, enhanced ? "enhanced-packet-block" : "packet-block");
  packet.interfaceIndex = interfaceIndex;
  packet.sectionIndex = section.index;
  packet.comments = common.comments;
  packet.customOptions = common.customOptions;
  packet.options = options;
  if (legacyDropCount !== undefined) packet.dropCount = BigInt(legacyDropCount);
  const hashes: PacketHash[] = [];
  const verdicts: PacketVerdict[] = [];
  for (const option of options) {
    switch (option.code) {
      case PacketOption.FLAGS: {
        packet.flags = readUint32(fixedValue(option, 4, "epb_flags", context), little);
        const decoded = decodePacketFlags(packet.flags);
        packet.direction = decoded.direction;
        packet.receptionType = decoded.receptionType;
        if (decoded.fcsLength !== undefined) packet.fcsLength = decoded.fcsLength;
        break;
      }
      case PacketOption.HASH:
        if (option.value.length < 1) throw blockError(context, "option epb_hash is empty; it needs at least its 1-byte algorithm");
        hashes.push({ algorithm: option.value[0]!, value: option.value.subarray(1) });
        break;
      case PacketOption.DROP_COUNT:
        if (enhanced) packet.dropCount = readUint64(fixedValue(option, 8, "epb_dropcount", context), little);
        break;
      case PacketOption.PACKET_ID:
        if (enhanced) packet.packetId = readUint64(fixedValue(option, 8, "epb_packetid", context), little);
        break;
      case PacketOption.QUEUE:
        if (enhanced) packet.queue = readUint32(fixedValue(option, 4, "epb_queue", context), little);
        break;
      case PacketOption.VERDICT:
        if (!enhanced) break;
        if (option.value.length < 1) throw blockError(context, "option epb_verdict is empty; it needs at least its 1-byte verdict type");
        verdicts.push({ type: option.value[0]!, value: option.value.subarray(1) });
        break;
    }
  }
  packet.hashes = hashes;
  packet.verdicts = verdicts;
  packet.process = decodeProcessInfo(packet.customOptions, packet.comments, little);
  return packet;
}

function decodeSimplePacket(body: Buffer, section: SectionState, maxPacketLength: number, context: OptionContext): CapturePacket {
  const captureInterface = interfaceFor(section, 0, context);
  const originalLength = readUint32(body, context.little);
  let capturedLength = Math.min(originalLength, body.length - 4);
  if (captureInterface.snapLength > 0) capturedLength = Math.min(capturedLength, captureInterface.snapLength);
  if (capturedLength > maxPacketLength) {
    throw blockError(context, `captured length ${capturedLength} is larger than the limit of ${maxPacketLength} bytes`);
  }
  const packet = emptyPacket(0n, body.subarray(4, 4 + capturedLength), originalLength, captureInterface.linkType, captureInterface.fcsLength, "simple-packet-block");
  packet.sectionIndex = section.index;
  return packet;
}

function decodeNameResolution(body: Buffer, sectionIndex: number, context: OptionContext): NameResolution {
  const little = context.little;
  const records: NameRecord[] = [];
  const unknownRecords: { type: number; value: Buffer }[] = [];
  let position = 0;
  let ended = false;
  while (position + 4 <= body.length) {
    const type = little ? body.readUInt16LE(position) : body.readUInt16BE(position);
    const length = little ? body.readUInt16LE(position + 2) : body.readUInt16BE(position + 2);
    const valueStart = position + 4;
    if (valueStart + length > body.length) {
      throw blockError(
        context,
        `name record at offset ${context.bodyOffset + position} has length ${length} but only ${body.length - valueStart} bytes remain in the block`,
      );
    }
    position = valueStart + padded(length);
    if (type === NameRecordType.END) {
      ended = true;
      break;
    }
    const value = body.subarray(valueStart, valueStart + length);
    const addressLength = type === NameRecordType.IPV4 ? 4 : type === NameRecordType.IPV6 ? 16 : type === NameRecordType.EUI48 ? 6 : type === NameRecordType.EUI64 ? 8 : -1;
    if (addressLength < 0) {
      unknownRecords.push({ type, value });
      continue;
    }
    if (value.length < addressLength) {
      throw blockError(context, `name record of type ${type} at offset ${context.bodyOffset + valueStart - 4} has length ${length}, too short for its ${addressLength}-byte address`);
    }
    const address = value.subarray(0, addressLength);
    const names = value
      .subarray(addressLength)
      .toString("utf8")
      .split("\0")
      .filter((name) => name.length > 0);
    if (type === NameRecordType.IPV4) records.push({ type: "ipv4", address: formatIpv4(address), names });
    else if (type === NameRecordType.IPV6) records.push({ type: "ipv6", address: formatIpv6(address), names });
    else if (type === NameRecordType.EUI48) records.push({ type: "eui48", address: formatHardwareAddress(address), names });
    else records.push({ type: "eui64", address: formatHardwareAddress(address), names });
  }
  const options: RawOption[] = ended ? decodeOptions(body, Math.min(position, body.length), context) : [];
  const result: NameResolution = {
    sectionIndex,
    records,
    unknownRecords,
    dnsName: undefined,
    dnsIpv4Address: undefined,
    dnsIpv6Address: undefined,
    ...decodeCommonOptions(options, context),
    options,
  };
  for (const option of options) {
    if (option.code === NameResolutionOption.DNS_NAME) result.dnsName = decodeString(option.value);
    else if (option.code === NameResolutionOption.DNS_IPV4_ADDRESS) result.dnsIpv4Address = formatIpv4(fixedValue(option, 4, "ns_dnsIP4addr", context));
    else if (option.code === NameResolutionOption.DNS_IPV6_ADDRESS) result.dnsIpv6Address = formatIpv6(fixedValue(option, 16, "ns_dnsIP6addr", context));
  }
  return result;
}

function decodeInterfaceStatistics(body: Buffer, section: SectionState, context: OptionContext): InterfaceStatistics {
  const little = context.little;
  const interfaceIndex = readUint32(body, little);
  const captureInterface = interfaceFor(section, interfaceIndex, context);
  const toNanoseconds = (units: bigint) => unitsToNanoseconds(units, captureInterface.timestampResolution, captureInterface.timestampOffset);
  const options = decodeOptions(body, 12, context);
  const result: InterfaceStatistics = {
    sectionIndex: section.index,
    interfaceIndex,
    timestamp: toNanoseconds(readSplitUint64(body, 4, little)),
    startTime: undefined,
    endTime: undefined,
    interfaceReceived: undefined,
    interfaceDropped: undefined,
    filterAccepted: undefined,
    osDropped: undefined,
    userDelivered: undefined,
    ...decodeCommonOptions(options, context),
    options,
  };
  for (const option of options) {
    switch (option.code) {
      case StatisticsOption.START_TIME:
        result.startTime = toNanoseconds(readSplitUint64(fixedValue(option, 8, "isb_starttime", context), 0, little));
        break;
      case StatisticsOption.END_TIME:
        result.endTime = toNanoseconds(readSplitUint64(fixedValue(option, 8, "isb_endtime", context), 0, little));
        break;
      case StatisticsOption.INTERFACE_RECEIVED:
        result.interfaceReceived = readUint64(fixedValue(option, 8, "isb_ifrecv", context), little);
        break;
      case StatisticsOption.INTERFACE_DROPPED:
        result.interfaceDropped = readUint64(fixedValue(option, 8, "isb_ifdrop", context), little);
        break;
      case StatisticsOption.FILTER_ACCEPTED:
        result.filterAccepted = readUint64(fixedValue(option, 8, "isb_filteraccept", context), little);
        break;
      case StatisticsOption.OS_DROPPED:
        result.osDropped = readUint64(fixedValue(option, 8, "isb_osdrop", context), little);
        break;
      case StatisticsOption.USER_DELIVERED:
        result.userDelivered = readUint64(fixedValue(option, 8, "isb_usrdeliv", context), little);
        break;
    }
  }
  return result;
}

/** Reads a whole pcapng file held in memory; packet data are slices of `input`. */
export function readPcapngRecords(input: Buffer, options: CaptureReadOptions = {}): Generator<CaptureRecord, void, undefined> {
  const magic = input.subarray(0, 4);
  if (!isPcapngMagic(magic)) {
    throw new CaptureFormatError(0, `pcapng block at offset 0: bad magic 0x${magic.toString("hex")}, expected a section header block (0a0d0d0a)`, "not a pcapng file");
  }
  return runParserSync(parsePcapng(magic, options), input.subarray(4));
}
