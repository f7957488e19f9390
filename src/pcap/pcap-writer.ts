import { endianness } from "node:os";
import { argumentError, expectBoolean, expectObject, expectOneOf } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import type { CaptureSink } from "./capture-sink.js";
import type { ByteOrder, PacketToWrite } from "./capture-record.js";
import { CaptureWriterBase, checkLength, currentTimeNanoseconds, expectCaptureSink, expectPacketToWrite, splitNanoseconds, writePacketBytesUnchecked } from "./capture-writer.js";
import {
  PCAP_FCS_PRESENT_BIT,
  PCAP_HEADER_LENGTH,
  PCAP_MAGIC_MICROSECONDS,
  PCAP_MAGIC_NANOSECONDS,
  PCAP_RECORD_HEADER_LENGTH,
} from "./pcap-reader.js";

export const DEFAULT_SNAP_LENGTH = 262144;

export interface PcapWriterOptions {
  linkType: number;
  /** Largest captured length; longer packets are cut (default 262144, tcpdump's). */
  snapLength?: number;
  /** Timestamp resolution (default "microsecond", what every reader understands). */
  resolution?: "microsecond" | "nanosecond";
  /** Default: the machine's own byte order. */
  byteOrder?: ByteOrder;
  /** FCS bytes at the end of every packet, when known (even, at most 30). */
  fcsLength?: number;
}

export function nativeByteOrder(): ByteOrder {
  return endianness() === "LE" ? "little" : "big";
}

export function encodePcapHeader(options: PcapWriterOptions): Buffer {
  const operation = "write pcap";
  expectObject(operation, "options", options);
  const snapLength = options.snapLength ?? DEFAULT_SNAP_LENGTH;
  checkLength(snapLength, "snapshot length", operation);
  if (!Number.isInteger(options.linkType) || options.linkType < 0 || options.linkType > 0xffff) {
    throw new UsageError(operation, `options.linkType: link type ${options.linkType} is not a 16-bit link-type number`);
  }
  let linkTypeField = options.linkType;
  if (options.fcsLength !== undefined) {
    if (!Number.isInteger(options.fcsLength) || options.fcsLength < 0 || options.fcsLength > 30 || options.fcsLength % 2 !== 0) {
      throw new UsageError(operation, `FCS length ${options.fcsLength} cannot be stored in a pcap header (even number of bytes, 0…30)`);
    }
    linkTypeField = (linkTypeField | PCAP_FCS_PRESENT_BIT | ((options.fcsLength / 2) << 28)) >>> 0;
  }
  const little = (options.byteOrder ?? nativeByteOrder()) === "little";
  const header = Buffer.alloc(PCAP_HEADER_LENGTH);
  const u32 = (value: number, at: number) => (little ? header.writeUInt32LE(value, at) : header.writeUInt32BE(value, at));
  const u16 = (value: number, at: number) => (little ? header.writeUInt16LE(value, at) : header.writeUInt16BE(value, at));
  u32(options.resolution === "nanosecond" ? PCAP_MAGIC_NANOSECONDS : PCAP_MAGIC_MICROSECONDS, 0);
  u16(2, 4);
  u16(4, 6);
  u32(0, 8);
  u32(0, 12);
  u32(snapLength, 16);
  u32(linkTypeField, 20);
  return header;
}

/**
 * Writes classic pcap. pcap has one link type per file and no place for
 * comments, direction or process information: those fields of a packet are
 * ignored (use pcapng to keep them).
 */
/** Packets of at least this many bytes are written straight from their source when the sink can (writeThrough). */
const writeThroughLength = 16 * 1024;

export class PcapWriter extends CaptureWriterBase {
  readonly format = "pcap" as const;
  readonly linkType: number;
  readonly snapLength: number;
  readonly nanosecond: boolean;
  readonly little: boolean;

  constructor(sink: CaptureSink, options: PcapWriterOptions) {
    super(expectCaptureSink("write pcap", "sink", sink));
    const header = encodePcapHeader(options);
    this.linkType = options.linkType;
    this.snapLength = options.snapLength ?? DEFAULT_SNAP_LENGTH;
    this.nanosecond = options.resolution === "nanosecond";
    this.little = (options.byteOrder ?? nativeByteOrder()) === "little";
    this.emit(header);
  }

  writePacket(packet: PacketToWrite): void {
    const { seconds, fraction, capturedLength, originalLength } = this.#check(packet);
    const at = this.reserve(PCAP_RECORD_HEADER_LENGTH + capturedLength);
    this.#encode(this.output, at, seconds, fraction, capturedLength, originalLength, packet.data, 0);
    this.commit();
    this.packetsWritten++;
  }

  encodeRecord(packet: PacketToWrite): Buffer {
    const { seconds, fraction, capturedLength, originalLength } = this.#check(packet);
    const record = Buffer.alloc(PCAP_RECORD_HEADER_LENGTH + capturedLength);
    this.#encode(record, 0, seconds, fraction, capturedLength, originalLength, packet.data, 0);
    return record;
  }

  readonly #time = new Float64Array(2);

  [writePacketBytesUnchecked](interfaceIndex: number, timestampHigh: number, timestampLow: number, originalLength: number, _flags: number, source: Uint8Array, start: number, length: number): void {
    if (interfaceIndex !== 0) this.#check({ data: source.subarray(start, start + length), interfaceIndex });
    const time = this.#time;
    // Always the full division: a branch taken only now and then (a cache of the last second) costs a deoptimization
    // and a recompilation each time optimized code first meets it, far more than the division it saves.
    splitNanoseconds(timestampHigh, timestampLow, time);
    const nanoseconds = time[1]!;
    const seconds = time[0]!;
    if (seconds > 0xffffffff) this.#check({ data: source.subarray(start, start + length), timestamp: (BigInt(timestampHigh >>> 0) << 32n) | BigInt(timestampLow >>> 0) });
    if (!(originalLength >= 0 && originalLength <= 0xffffffff && Number.isInteger(originalLength))) checkLength(originalLength, "original length", "write pcap");
    const capturedLength = length < this.snapLength ? length : this.snapLength;
    const fraction = this.nanosecond ? nanoseconds : Math.floor(nanoseconds / 1000);
    // A large packet (loopback's 64 KiB segments) goes from its source to the file in the same write as the buffer:
    // copying it into the buffer first cost a tenth of a busy capture's CPU.
    const through = capturedLength >= writeThroughLength && this.sink.writeThrough !== undefined;
    const at = this.reserve(PCAP_RECORD_HEADER_LENGTH + (through ? 0 : capturedLength));
    const view = this.outputView;
    const little = this.little;
    view.setUint32(at, seconds, little);
    view.setUint32(at + 4, fraction, little);
    view.setUint32(at + 8, capturedLength, little);
    view.setUint32(at + 12, originalLength, little);
    if (through) this.sink.writeThrough!(source, start, capturedLength);
    else this.copyPacket(source, start, capturedLength, at + PCAP_RECORD_HEADER_LENGTH);
    this.commit();
    this.packetsWritten++;
  }

  /**
   * Whether records of a pcap file with this byte order and resolution can
   * be copied into this writer's output as they are (writeEncodedRecords):
   * the same byte order and resolution as this writer's.
   */
  encodesLike(byteOrder: ByteOrder, nanosecond: boolean): boolean {
    expectOneOf("write pcap", "byteOrder", byteOrder, ["little", "big"]);
    expectBoolean("write pcap", "nanosecond", nanosecond);
    return this.little === (byteOrder === "little") && this.nanosecond === nanosecond;
  }

  /**
   * Appends `count` whole records that are already encoded as this writer
   * encodes them — source[start, end), copied as they are, in one piece.
   * Only for records writePacketBytes would write byte for byte the same:
   * from a file this writer encodesLike(), each within the snap length,
   * with a fraction of a second below one second. A failed write keeps the
   * records before the piece (the sink cuts back to its start).
   */
  writeEncodedRecords(source: Uint8Array, start: number, end: number, count: number): void {
    if (!(source instanceof Uint8Array) || start >>> 0 !== start || end >>> 0 !== end || count >>> 0 !== count || start > end || end > source.length) {
      encodedRecordsError(source, start, end, count);
    }
    const at = this.reserve(end - start);
    this.copyPacket(source, start, end - start, at);
    this.commit();
    this.packetsWritten += count;
  }

  /** Validates a packet; its record fields. */
  #check(packet: PacketToWrite): { seconds: number; fraction: number; capturedLength: number; originalLength: number } {
    const operation = "write pcap";
    expectPacketToWrite(operation, packet);
    if ((packet.interfaceIndex ?? 0) !== 0) {
      throw new UsageError(operation, `packet is for interface ${packet.interfaceIndex}, but a pcap file has only interface 0`, "write pcapng for several interfaces");
    }
    if (packet.linkType !== undefined && packet.linkType !== this.linkType) {
      throw new UsageError(operation, `packet has link type ${packet.linkType}, but the file was opened with link type ${this.linkType}`, "write pcapng for mixed link types");
    }
    const timestamp = packet.timestamp ?? currentTimeNanoseconds();
    const seconds = timestamp / 1_000_000_000n;
    if (timestamp < 0n || seconds > 0xffffffffn) {
      throw new UsageError(operation, `timestamp ${timestamp} ns is outside what pcap stores (1970 … 2106)`);
    }
    const remainder = timestamp % 1_000_000_000n;
    const fraction = this.nanosecond ? remainder : remainder / 1000n;
    const capturedLength = Math.min(packet.data.length, this.snapLength);
    const originalLength = packet.originalLength ?? packet.data.length;
    return { seconds: Number(seconds), fraction: Number(fraction), capturedLength, originalLength };
  }

  #encode(target: Buffer, at: number, seconds: number, fraction: number, capturedLength: number, originalLength: number, source: Uint8Array, start: number): void {
    if (this.little) {
      target.writeUInt32LE(seconds, at);
      target.writeUInt32LE(fraction, at + 4);
      target.writeUInt32LE(capturedLength, at + 8);
      target.writeUInt32LE(originalLength, at + 12);
    } else {
      target.writeUInt32BE(seconds, at);
      target.writeUInt32BE(fraction, at + 4);
      target.writeUInt32BE(capturedLength, at + 8);
      target.writeUInt32BE(originalLength, at + 12);
    }
    target.set(source.subarray(start, start + capturedLength), at + PCAP_RECORD_HEADER_LENGTH);
  }
}

/** Which of writeEncodedRecords' arguments is wrong. */
function encodedRecordsError(source: unknown, start: unknown, end: unknown, count: unknown): never {
  const operation = "write pcap";
  if (!(source instanceof Uint8Array)) throw argumentError(operation, "source", "a Buffer or Uint8Array", source);
  if (typeof start !== "number" || start >>> 0 !== start || start > source.length) throw argumentError(operation, "start", `an offset in source (0 to ${source.length})`, start);
  if (typeof end !== "number" || end >>> 0 !== end || end < start || end > source.length) throw argumentError(operation, "end", `an offset in source from start to ${source.length}`, end);
  throw argumentError(operation, "count", "the number of records (an integer ≥ 0)", count);
}
