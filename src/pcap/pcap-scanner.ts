/**
 * The fast path for reading classic pcap files: large synchronous reads
 * into one buffer, and a callback per record that gets positions in that
 * buffer — no object, Buffer, BigInt or promise per record. For filtering
 * big captures (`capture -r`); the general reader (openCapture) handles
 * every format and stream.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { argumentError, expectBoolean, expectBytes, expectFunction, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { NetbpfError } from "../sys/errors.js";
import { CaptureFormatError } from "./capture-format-error.js";
import { DEFAULT_MAX_PACKET_LENGTH } from "./capture-record.js";
import { decodePcapHeader, pcapMagicInfo, PCAP_HEADER_LENGTH, PCAP_RECORD_HEADER_LENGTH, type PcapHeader } from "./pcap-reader.js";

/** One record, as positions in the scanner's buffer; the object is reused: copy what you keep. */
export interface PcapScanRecord {
  buffer: Buffer;
  /** Offset of the record in the file. */
  fileOffset: number;
  /** Where the record (its 16-byte header) starts in `buffer`. */
  recordStart: number;
  /** Where the packet bytes start in `buffer`. */
  dataStart: number;
  capturedLength: number;
  originalLength: number;
  seconds: number;
  /** Microseconds, or nanoseconds for nanosecond files. */
  fraction: number;
}

export interface PcapScannerOptions {
  /** Bytes per read (default 256 KiB: larger reads measured slower here, the buffer no longer in the CPU's cache). */
  readSize?: number;
  /** Largest captured length accepted (default 16 MiB, as the other readers). */
  maxPacketLength?: number;
}

export class PcapScanner implements Disposable {
  readonly header: PcapHeader;
  #fd: number | undefined;
  #buffer: Buffer;
  /** A DataView over #buffer: one load per header field instead of Buffer's byte-by-byte readUInt32. */
  #view: DataView;
  /** Valid bytes: buffer[position, end). */
  #position = 0;
  #end = 0;
  #fileOffset = PCAP_HEADER_LENGTH;
  #ended = false;
  readonly #maxPacketLength: number;
  readonly #record: PcapScanRecord;
  /** scan()'s beforeRefill. */
  #beforeRefill: (() => void) | undefined;

  /** Opens `path` if it is a classic pcap file; undefined when it is something else (pcapng, or not a capture). */
  static open(path: string, options: PcapScannerOptions = {}): PcapScanner | undefined {
    const operation = "read capture";
    expectString(operation, "path", path);
    expectObject(operation, "options", options, true);
    if (options.readSize !== undefined) expectInteger(operation, "options.readSize", options.readSize, 1);
    if (options.maxPacketLength !== undefined) expectInteger(operation, "options.maxPacketLength", options.maxPacketLength, 1);
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new NetbpfError("read capture", `cannot open ${path}: ${code}`, code === "ENOENT" ? "check the file name" : undefined, { cause: error });
    }
    try {
      const buffer = Buffer.allocUnsafe(Math.max(options.readSize ?? 256 * 1024, 64 * 1024));
      const start = readFully(fd, buffer, 0, PCAP_HEADER_LENGTH);
      if (start < 4 || pcapMagicInfo(buffer.subarray(0, 4)) === undefined) {
        closeSync(fd);
        return undefined;
      }
      const header = decodePcapHeader(buffer.subarray(0, start));
      return new PcapScanner(fd, buffer, header, options);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** Made by open(), which checks the options. */
  private constructor(fd: number, buffer: Buffer, header: PcapHeader, options: PcapScannerOptions) {
    expectInteger("read capture", "fd", fd, 0);
    expectBytes("read capture", "buffer", buffer);
    expectObject("read capture", "header", header);
    this.#fd = fd;
    this.#buffer = buffer;
    this.#view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    this.header = header;
    this.#maxPacketLength = options.maxPacketLength ?? DEFAULT_MAX_PACKET_LENGTH;
    this.#record = { buffer, fileOffset: 0, recordStart: 0, dataStart: 0, capturedLength: 0, originalLength: 0, seconds: 0, fraction: 0 };
  }

  /**
   * Calls `visit` for each record until it returns false or the file ends.
   * Returns false when stopped by `visit`, true at the end of the file.
   * Between calls of `visit` the buffer may be refilled: positions are only
   * valid during the call, or until `beforeRefill` is called — just before
   * the bytes move or are overwritten, and before the end of the file is
   * met (so a caller can keep positions of several records, a run of them
   * to write out at once, and use them then, even when a truncated record
   * at the end stops the scan with an error).
   */
  scan(visit: (record: PcapScanRecord) => boolean | void, beforeRefill?: () => void): boolean {
    expectFunction("read capture", "visit", visit);
    if (beforeRefill !== undefined) expectFunction("read capture", "beforeRefill", beforeRefill);
    // The loop stays small, and its branches are taken from the first records on (V8 optimizes it soon, and optimized
    // code meets no path it has no type feedback for); refills and errors are in methods of their own.
    const little = this.header.byteOrder === "little";
    const record = this.#record;
    this.#beforeRefill = beforeRefill;
    for (;;) {
      const start = this.#position;
      const available = this.#end - start;
      let total = PCAP_RECORD_HEADER_LENGTH;
      let capturedLength = 0;
      if (available >= PCAP_RECORD_HEADER_LENGTH) {
        const view = this.#view;
        capturedLength = view.getUint32(start + 8, little);
        if (capturedLength > this.#maxPacketLength) this.#tooLong(capturedLength);
        total = PCAP_RECORD_HEADER_LENGTH + capturedLength;
        if (available >= total) {
          record.buffer = this.#buffer;
          record.fileOffset = this.#fileOffset;
          record.recordStart = start;
          record.dataStart = start + PCAP_RECORD_HEADER_LENGTH;
          record.capturedLength = capturedLength;
          record.originalLength = view.getUint32(start + 12, little);
          record.seconds = view.getUint32(start, little);
          record.fraction = view.getUint32(start + 4, little);
          this.#position = start + total;
          this.#fileOffset += total;
          if (visit(record) === false) return false;
          continue;
        }
      }
      // The header or the record goes past the bytes read: read more (one call site, taken from the first record on), then parse it again.
      if (!this.#refill(total, capturedLength)) return true;
    }
  }

  /** The end of the file at a record boundary (false: no more records), or inside a record header (an error). */
  #atEnd(): false {
    const left = this.#end - this.#position;
    if (left === 0) return false;
    throw new CaptureFormatError(this.#fileOffset, `pcap record at offset ${this.#fileOffset}: truncated record header (${left} of ${PCAP_RECORD_HEADER_LENGTH} bytes)`);
  }

  #tooLong(capturedLength: number): never {
    throw new CaptureFormatError(
      this.#fileOffset,
      `pcap record at offset ${this.#fileOffset}: captured length ${capturedLength} is larger than the limit of ${this.#maxPacketLength} bytes (snapshot length ${this.header.snapLength})`,
      "the file is corrupt; raise maxPacketLength only if the capture really holds packets this large",
    );
  }

  #truncated(capturedLength: number): never {
    throw new CaptureFormatError(
      this.#fileOffset,
      `pcap record at offset ${this.#fileOffset}: truncated packet data, captured length ${capturedLength} but only ${this.#end - this.#position - PCAP_RECORD_HEADER_LENGTH} bytes remain`,
    );
  }

  /**
   * Makes `length` bytes available at #position (which becomes 0); false at
   * the end of the file, after the last whole record; an error when the
   * file ends inside a record (a header, or a packet of `capturedLength`
   * bytes when `length` is more than a header).
   */
  #refill(length: number, capturedLength: number): boolean {
    this.#beforeRefill?.();
    if (this.#ended) return length === PCAP_RECORD_HEADER_LENGTH ? this.#atEnd() : this.#truncated(capturedLength);
    // Move what is left to the front (growing the buffer for a record larger than it) and read more.
    const left = this.#end - this.#position;
    if (length > this.#buffer.length) {
      const larger = Buffer.allocUnsafe(length);
      larger.set(this.#buffer.subarray(this.#position, this.#end), 0);
      this.#buffer = larger;
      this.#view = new DataView(larger.buffer, larger.byteOffset, larger.byteLength);
    } else {
      // Also when nothing is left: the same path every time.
      this.#buffer.copyWithin(0, this.#position, this.#end);
    }
    this.#position = 0;
    this.#end = left;
    const wanted = this.#buffer.length - this.#end;
    const read = readFully(this.#fd!, this.#buffer, this.#end, wanted);
    this.#end += read;
    if (read < wanted) this.#ended = true;
    return this.#end >= length || this.#refill(length, capturedLength);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Reads until `length` bytes or the end of the file; returns the bytes read. */
function readFully(fd: number, buffer: Buffer, offset: number, length: number): number {
  let total = 0;
  while (total < length) {
    let read: number;
    try {
      read = readSync(fd, buffer, offset + total, length - total, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EAGAIN") continue;
      const reason = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new NetbpfError("read capture", `reading the input failed: ${reason}`, undefined, { cause: error });
    }
    if (read === 0) break;
    total += read;
  }
  return total;
}

/** A pcap record's time as nanoseconds in two 32-bit words (high, low), exactly, without BigInt. */
export function pcapTimeWords(seconds: number, fraction: number, nanosecondFile: boolean, result: Uint32Array): void {
  const operation = "pcap time";
  expectInteger(operation, "seconds", seconds, 0, 0xffffffff);
  expectInteger(operation, "fraction", fraction, 0, 0xffffffff);
  expectBoolean(operation, "nanosecondFile", nanosecondFile);
  if (!(result instanceof Uint32Array) || result.length < 2) throw argumentError(operation, "result", "a Uint32Array of at least 2 elements", result);
  pcapRecordTimeWords(seconds, fraction, nanosecondFile, result);
}

/** pcapTimeWords without the argument checks, for capture loops (per packet). */
export function pcapRecordTimeWords(seconds: number, fraction: number, nanosecondFile: boolean, result: Uint32Array): void {
  const nanoseconds = nanosecondFile ? fraction : fraction * 1000;
  const secondsLow = seconds % 65536;
  const secondsHigh = (seconds - secondsLow) / 65536;
  // seconds * 1e9 + nanoseconds = secondsHigh * 1e9 * 2^16 + secondsLow * 1e9 + nanoseconds
  const a = secondsLow * 1e9 + nanoseconds;
  const b = secondsHigh * 1e9;
  const bLow = b % 65536;
  const lowPart = a + bLow * 65536;
  const lowWord = lowPart % 4294967296;
  result[0] = (b - bLow) / 65536 + (lowPart - lowWord) / 4294967296;
  result[1] = lowWord;
}
