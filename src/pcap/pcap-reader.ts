import { CaptureFormatError } from "./capture-format-error.js";
import type { CaptureParser } from "./capture-parser.js";
import { runParserSync } from "./capture-parser.js";
import {
  DEFAULT_MAX_PACKET_LENGTH,
  MICROSECOND_RESOLUTION,
  NANOSECOND_RESOLUTION,
  type ByteOrder,
  type CaptureInterface,
  type CapturePacket,
  type CaptureReadOptions,
  type CaptureRecord,
  type CaptureSection,
} from "./capture-record.js";
import { splitNanosecondTimestamp } from "./timestamp-units.js";

export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
/** Alexey Kuznetzov's modified pcap: recognised only to give a precise error. */
const PCAP_MAGIC_MODIFIED = 0xa1b2cd34;
export const PCAP_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;

/** Bits of the pcap header link-type word beyond the link type (libpcap LT_* macros). */
export const PCAP_FCS_PRESENT_BIT = 0x04000000;

export interface PcapHeader {
  byteOrder: ByteOrder;
  nanosecond: boolean;
  versionMajor: number;
  versionMinor: number;
  timeZoneOffset: number;
  significantFigures: number;
  snapLength: number;
  linkType: number;
  /** FCS length in bytes when the header says it is known. */
  fcsLength: number | undefined;
  /** The whole 32-bit link-type word as stored. */
  linkTypeField: number;
}

/** Byte order and resolution for a pcap magic number, or undefined if it is not one. */
export function pcapMagicInfo(magic: Buffer): { byteOrder: ByteOrder; nanosecond: boolean } | undefined {
  if (magic.length < 4) return undefined;
  const little = magic.readUInt32LE(0);
  const big = magic.readUInt32BE(0);
  if (little === PCAP_MAGIC_MICROSECONDS) return { byteOrder: "little", nanosecond: false };
  if (little === PCAP_MAGIC_NANOSECONDS) return { byteOrder: "little", nanosecond: true };
  if (big === PCAP_MAGIC_MICROSECONDS) return { byteOrder: "big", nanosecond: false };
  if (big === PCAP_MAGIC_NANOSECONDS) return { byteOrder: "big", nanosecond: true };
  return undefined;
}

export function isModifiedPcapMagic(magic: Buffer): boolean {
  return magic.length >= 4 && (magic.readUInt32LE(0) === PCAP_MAGIC_MODIFIED || magic.readUInt32BE(0) === PCAP_MAGIC_MODIFIED);
}

/** Decodes the 24-byte pcap file header. */
export function decodePcapHeader(header: Buffer): PcapHeader {
  const info = pcapMagicInfo(header);
  if (!info) throw new CaptureFormatError(0, `pcap header at offset 0: bad magic 0x${header.subarray(0, 4).toString("hex")}`);
  if (header.length < PCAP_HEADER_LENGTH) {
    throw new CaptureFormatError(header.length, `pcap header at offset 0: truncated, file has ${header.length} of ${PCAP_HEADER_LENGTH} header bytes`);
  }
  const little = info.byteOrder === "little";
  const u16 = (at: number) => (little ? header.readUInt16LE(at) : header.readUInt16BE(at));
  const u32 = (at: number) => (little ? header.readUInt32LE(at) : header.readUInt32BE(at));
  const versionMajor = u16(4);
  const versionMinor = u16(6);
  if (versionMajor !== 2) {
    throw new CaptureFormatError(4, `pcap header at offset 0: unsupported version ${versionMajor}.${versionMinor} (only 2.x is defined)`);
  }
  const linkTypeField = u32(20);
  const fcsPresent = (linkTypeField & PCAP_FCS_PRESENT_BIT) !== 0;
  return {
    ...info,
    versionMajor,
    versionMinor,
    timeZoneOffset: little ? header.readInt32LE(8) : header.readInt32BE(8),
    significantFigures: u32(12),
    snapLength: u32(16),
    linkType: linkTypeField & 0xffff,
    fcsLength: fcsPresent ? (linkTypeField >>> 28) * 2 : undefined,
    linkTypeField,
  };
}

export function* parsePcap(magic: Buffer, options: CaptureReadOptions = {}): CaptureParser<CaptureRecord> {
  const maxPacketLength = options.maxPacketLength ?? DEFAULT_MAX_PACKET_LENGTH;
  const rest = yield { read: PCAP_HEADER_LENGTH - magic.length };
  const header = decodePcapHeader(Buffer.concat([magic, rest]));
  const section: CaptureSection = {
    index: 0,
    format: "pcap",
    byteOrder: header.byteOrder,
    versionMajor: header.versionMajor,
    versionMinor: header.versionMinor,
    sectionLength: undefined,
    hardware: undefined,
    os: undefined,
    userApplication: undefined,
    comments: [],
    customOptions: [],
    options: [],
    timeZoneOffset: header.timeZoneOffset,
    significantFigures: header.significantFigures,
  };
  yield { emit: { type: "section", offset: 0, section } };
  const captureInterface: CaptureInterface = {
    ...emptyInterface(0, 0, header.linkType, header.snapLength),
    timestampResolution: header.nanosecond ? NANOSECOND_RESOLUTION : MICROSECOND_RESOLUTION,
    fcsLength: header.fcsLength,
  };
  yield { emit: { type: "interface", offset: 0, interface: captureInterface } };

  const little = header.byteOrder === "little";
  const fractionScale = header.nanosecond ? 1n : 1000n;
  let offset = PCAP_HEADER_LENGTH;
  for (;;) {
    const recordHeader: Buffer = yield { read: PCAP_RECORD_HEADER_LENGTH };
    if (recordHeader.length === 0) return;
    if (recordHeader.length < PCAP_RECORD_HEADER_LENGTH) {
      throw new CaptureFormatError(offset, `pcap record at offset ${offset}: truncated record header (${recordHeader.length} of ${PCAP_RECORD_HEADER_LENGTH} bytes)`);
    }
    const u32 = (at: number) => (little ? recordHeader.readUInt32LE(at) : recordHeader.readUInt32BE(at));
    const seconds = u32(0);
    const fraction = u32(4);
    const capturedLength = u32(8);
    const originalLength = u32(12);
    if (capturedLength > maxPacketLength) {
      throw new CaptureFormatError(
        offset,
        `pcap record at offset ${offset}: captured length ${capturedLength} is larger than the limit of ${maxPacketLength} bytes (snapshot length ${header.snapLength})`,
        "the file is corrupt; raise maxPacketLength only if the capture really holds packets this large",
      );
    }
    const data: Buffer = capturedLength === 0 ? Buffer.alloc(0) : yield { read: capturedLength };
    if (data.length < capturedLength) {
      throw new CaptureFormatError(
        offset,
        `pcap record at offset ${offset}: truncated packet data, captured length ${capturedLength} but only ${data.length} bytes remain`,
      );
    }
    const timestamp = BigInt(seconds) * 1_000_000_000n + BigInt(fraction) * fractionScale;
    yield {
      emit: {
        type: "packet",
        offset,
        packet: emptyPacket(timestamp, data, originalLength, header.linkType, header.fcsLength, "pcap-record"),
      },
    };
    offset += PCAP_RECORD_HEADER_LENGTH + capturedLength;
  }
}

export function emptyInterface(index: number, sectionIndex: number, linkType: number, snapLength: number): CaptureInterface {
  return {
    index,
    sectionIndex,
    linkType,
    snapLength,
    timestampResolution: MICROSECOND_RESOLUTION,
    timestampOffset: 0n,
    name: undefined,
    description: undefined,
    os: undefined,
    hardware: undefined,
    filter: undefined,
    fcsLength: undefined,
    speed: undefined,
    transmitSpeed: undefined,
    receiveSpeed: undefined,
    timeZone: undefined,
    ianaTimeZone: undefined,
    ipv4Addresses: [],
    ipv6Addresses: [],
    macAddress: undefined,
    euiAddress: undefined,
    comments: [],
    customOptions: [],
    options: [],
  };
}

export function emptyPacket(
  timestamp: bigint,
  data: Buffer,
  originalLength: number,
  linkType: number,
  fcsLength: number | undefined,
  source: CapturePacket["source"],
): CapturePacket {
  const { seconds, nanoseconds } = splitNanosecondTimestamp(timestamp);
  return {
    timestamp,
    seconds,
    nanoseconds,
    capturedLength: data.length,
    originalLength,
    data,
    interfaceIndex: 0,
    sectionIndex: 0,
    linkType,
    direction: undefined,
    receptionType: undefined,
    fcsLength,
    flags: 0,
    comments: [],
    process: undefined,
    dropCount: undefined,
    packetId: undefined,
    queue: undefined,
    hashes: [],
    verdicts: [],
    customOptions: [],
    options: [],
    source,
  };
}

/** Reads a whole pcap file held in memory; packet data are slices of `input`. */
export function readPcapRecords(input: Buffer, options: CaptureReadOptions = {}): Generator<CaptureRecord, void, undefined> {
  const magic = input.subarray(0, 4);
  if (!pcapMagicInfo(magic)) {
    throw new CaptureFormatError(0, `pcap header at offset 0: bad magic 0x${magic.toString("hex")}`, "not a pcap file");
  }
  return runParserSync(parsePcap(magic, options), input.subarray(4));
}
