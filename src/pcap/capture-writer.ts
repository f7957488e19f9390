import { argumentError, byteRangeError, isUint32 } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import type { CaptureSink } from "./capture-sink.js";
import type { CaptureFormat, PacketToWrite } from "./capture-record.js";

/** What pcap and pcapng writers have in common. */
export interface CaptureWriter extends Disposable, AsyncDisposable {
  readonly format: CaptureFormat;
  readonly packetsWritten: number;
  writePacket(packet: PacketToWrite): void;
  /**
   * Writes a packet given as plain numbers and a byte range, allocating
   * nothing per packet (for capture loops). `timestampHigh` and
   * `timestampLow` are the high and low 32 bits of the time in nanoseconds
   * since the epoch; `flags` is the pcapng epb_flags word (pcap has no place
   * for it); the packet bytes are source[start, start + length). The output
   * is the same as writePacket's for the same packet.
   */
  writePacketBytes(interfaceIndex: number, timestampHigh: number, timestampLow: number, originalLength: number, flags: number, source: Uint8Array, start: number, length: number): void;
  flush(): Promise<void>;
  /** Finishes the capture; for files, the complete file appears under its name now. */
  close(): Promise<void>;
  /** Discards the capture; for files, the temporary file is removed. */
  abort(): void;
}

/**
 * writePacketBytes without the argument checks, for netbpf's own capture
 * loops (live capture, `capture -r`), whose numbers come from the kernel's
 * records or a file already parsed. Not exported from the package.
 */
export const writePacketBytesUnchecked: unique symbol = Symbol("writePacketBytesUnchecked");

/**
 * The first of writePacketBytes' arguments (and more numbers after them) that is wrong, as a UsageError: the cold half
 * of the check. Undefined when each is a 32-bit number and source[start, start + length) exists.
 */
export function packetBytesError(operation: string, names: readonly string[], values: readonly unknown[]): UsageError | undefined {
  const [source, start, length] = [values[5], values[6], values[7]];
  if (!(source instanceof Uint8Array) || !isUint32(start) || !isUint32(length) || start + length > source.length) {
    return byteRangeError(operation, source, start, length, [names[5]!, names[6]!, names[7]!]);
  }
  for (let i = 0; i < values.length; i++) {
    if ((i < 5 || i > 7) && !isUint32(values[i])) return argumentError(operation, names[i]!, "an unsigned 32-bit integer", values[i]);
  }
  return undefined;
}

/** A packet for writePacket: an object with `data` bytes, and a bigint timestamp and 32-bit lengths and index when given. */
export function expectPacketToWrite(operation: string, packet: unknown): PacketToWrite {
  if (typeof packet !== "object" || packet === null) throw argumentError(operation, "packet", "an object with the packet's data (a PacketToWrite)", packet);
  const { data, timestamp, originalLength, interfaceIndex } = packet as Partial<PacketToWrite>;
  if (!(data instanceof Uint8Array)) throw argumentError(operation, "packet.data", "a Buffer or Uint8Array", data);
  if (timestamp !== undefined && typeof timestamp !== "bigint") throw argumentError(operation, "packet.timestamp", "nanoseconds since 1970 as a bigint", timestamp);
  if (originalLength !== undefined && !isUint32(originalLength)) throw argumentError(operation, "packet.originalLength", "an unsigned 32-bit integer", originalLength);
  if (interfaceIndex !== undefined && !isUint32(interfaceIndex)) throw argumentError(operation, "packet.interfaceIndex", "an unsigned 32-bit integer", interfaceIndex);
  return packet as PacketToWrite;
}

const packetBytesNames = ["interfaceIndex", "timestampHigh", "timestampLow", "originalLength", "flags", "source", "start", "length"] as const;

/** Owns the sink and the open/closed state; subclasses encode. */
export abstract class CaptureWriterBase implements CaptureWriter {
  abstract readonly format: CaptureFormat;
  packetsWritten = 0;

  /** Whether the sink lends its buffer (reserve()), so records are encoded in place. */
  readonly #lends: boolean;

  constructor(protected readonly sink: CaptureSink) {
    this.#lends = typeof sink.reserve === "function";
  }

  abstract writePacket(packet: PacketToWrite): void;

  writePacketBytes(interfaceIndex: number, timestampHigh: number, timestampLow: number, originalLength: number, flags: number, source: Uint8Array, start: number, length: number): void {
    if (!(source instanceof Uint8Array) || !isUint32(interfaceIndex) || !isUint32(timestampHigh) || !isUint32(timestampLow) || !isUint32(originalLength)
      || !isUint32(flags) || !isUint32(start) || !isUint32(length) || start + length > source.length) {
      throw packetBytesError(`write ${this.format}`, packetBytesNames, [interfaceIndex, timestampHigh, timestampLow, originalLength, flags, source, start, length])!;
    }
    this[writePacketBytesUnchecked](interfaceIndex, timestampHigh, timestampLow, originalLength, flags, source, start, length);
  }

  abstract [writePacketBytesUnchecked](interfaceIndex: number, timestampHigh: number, timestampLow: number, originalLength: number, flags: number, source: Uint8Array, start: number, length: number): void;

  /** Where reserve()d bytes go: the sink's buffer when it lends one, else a new Buffer for commit() to emit. */
  protected output: Buffer = Buffer.alloc(0);
  /** A DataView over `output` (setUint32 is much faster than Buffer's writeUInt32LE). */
  protected outputView = new DataView(this.output.buffer, this.output.byteOffset, 0);
  /** Plain Uint8Array views of the last packet source (a Buffer's subarray costs a Buffer). */
  #source: Uint8Array | undefined;
  #sourceBytes: Uint8Array = new Uint8Array(0);

  protected emit(bytes: Buffer): void {
    if (this.sink.closed) throw new UsageError(`write ${this.format}`, "the writer is already closed or aborted", "create a new writer");
    this.sink.write(bytes);
  }

  /**
   * Makes room for `length` bytes in `this.output` (and `this.outputView`)
   * and returns where they start; fill them all (the sink's buffer is not
   * zeroed), then commit().
   */
  protected reserve(length: number): number {
    const sink = this.sink;
    if (sink.closed) throw new UsageError(`write ${this.format}`, "the writer is already closed or aborted", "create a new writer");
    let offset = 0;
    let output: Buffer;
    if (this.#lends) {
      offset = sink.reserve!(length);
      output = sink.buffer!;
    } else {
      output = Buffer.alloc(length);
    }
    if (output !== this.output) {
      this.output = output;
      this.outputView = new DataView(output.buffer, output.byteOffset, output.byteLength);
    }
    return offset;
  }

  protected commit(): void {
    if (!this.#lends) this.sink.write(this.output);
  }

  /** output[at, at + length) = source[start, start + length). */
  protected copyPacket(source: Uint8Array, start: number, length: number, at: number): void {
    if (source !== this.#source) {
      this.#source = source;
      this.#sourceBytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    }
    // A plain Uint8Array's subarray into set(): about twice as fast as Buffer's copy() (which makes a view per call
    // too); copying small packets four bytes at a time between DataViews measured the same in a live capture.
    this.output.set(this.#sourceBytes.subarray(start, start + length), at);
  }

  flush(): Promise<void> {
    return this.sink.flush();
  }

  close(): Promise<void> {
    return this.sink.close();
  }

  abort(): void {
    this.sink.abort();
  }

  /** Leaving a `using` scope without close() discards the capture, like an uncommitted transaction. */
  [Symbol.dispose](): void {
    this.abort();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.abort();
  }
}

/**
 * Splits a 64-bit count of nanoseconds, given as its high and low 32 bits,
 * into seconds (result[0]) and nanoseconds within the second (result[1]),
 * exactly, with Number arithmetic only: long division by 10^9 in 16-bit
 * digits, where every intermediate value stays below 2^53.
 */
export function splitNanoseconds(high: number, low: number, result: Float64Array): void {
  let current = high >>> 16;
  let quotient = Math.floor(current / 1e9);
  let remainder = current - quotient * 1e9;
  current = remainder * 65536 + (high & 0xffff);
  let part = Math.floor(current / 1e9);
  remainder = current - part * 1e9;
  quotient = quotient * 65536 + part;
  current = remainder * 65536 + (low >>> 16);
  part = Math.floor(current / 1e9);
  remainder = current - part * 1e9;
  quotient = quotient * 65536 + part;
  current = remainder * 65536 + (low & 0xffff);
  part = Math.floor(current / 1e9);
  result[0] = quotient * 65536 + part;
  result[1] = current - part * 1e9;
}

export function currentTimeNanoseconds(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function checkLength(value: number, name: string, operation: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new UsageError(operation, `${name} ${value} is not an unsigned 32-bit integer`);
  }
}

/** A CaptureSink (write, flush, close, abort): what the writers' constructors take. */
export function expectCaptureSink(operation: string, name: string, value: unknown): CaptureSink {
  const candidate = value as Partial<CaptureSink> | null;
  if (typeof candidate !== "object" || candidate === null || typeof candidate.write !== "function" || typeof candidate.flush !== "function"
    || typeof candidate.close !== "function" || typeof candidate.abort !== "function") {
    throw argumentError(operation, name, "a CaptureSink (from openCaptureSink, or a StreamSink, BufferSink …)", value);
  }
  return value as CaptureSink;
}
