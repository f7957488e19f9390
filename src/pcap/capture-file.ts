import { readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { extname } from "node:path";
import type { Writable } from "node:stream";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { CaptureFormatError } from "./capture-format-error.js";
import { runParserBatches, runParserSync, type CaptureParser } from "./capture-parser.js";
import type {
  ByteOrder,
  CaptureFormat,
  CaptureInterface,
  CapturePacket,
  CaptureReadOptions,
  CaptureRecord,
  CaptureSection,
  InterfaceStatistics,
  NameResolution,
} from "./capture-record.js";
import { MICROSECOND_RESOLUTION, NANOSECOND_RESOLUTION } from "./capture-record.js";
import { openFileSink, StreamSink, type CaptureSink } from "./capture-sink.js";
import { isModifiedPcapMagic, parsePcap, pcapMagicInfo } from "./pcap-reader.js";
import { PcapWriter } from "./pcap-writer.js";
import { isPcapngMagic, parsePcapng } from "./pcapng-reader.js";
import { PcapngWriter, type InterfaceToWrite, type SectionToWrite } from "./pcapng-writer.js";
import { argumentError, expectBoolean, expectBytes, expectFunction, expectInteger, expectObject, expectOneOf, expectString, expectWritable } from "../sys/argument-checks.js";

/** The format a file starts with, from its first four bytes. */
export function detectCaptureFormat(bytes: Uint8Array): CaptureFormat | undefined {
  expectBytes("detect capture format", "bytes", bytes);
  const magic = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 4));
  if (pcapMagicInfo(magic)) return "pcap";
  if (isPcapngMagic(magic)) return "pcapng";
  return undefined;
}

/** "pcapng" for .pcapng/.ntar/.scap, "pcap" for .pcap/.cap/.dmp; undefined for anything else. */
export function captureFormatFromPath(path: string): CaptureFormat | undefined {
  expectString("capture format", "path", path);
  switch (extname(path).toLowerCase()) {
    case ".pcapng":
    case ".ntar":
    case ".scap":
      return "pcapng";
    case ".pcap":
    case ".cap":
    case ".dmp":
      return "pcap";
    default:
      return undefined;
  }
}

/** Reads any capture: detects the format from the first four bytes. */
export function* parseCapture(options: CaptureReadOptions = {}): CaptureParser<CaptureRecord> {
  const magic: Buffer = yield { read: 4 };
  if (magic.length === 0) throw new CaptureFormatError(0, "the file is empty", "a capture starts with a pcap or pcapng header");
  if (magic.length < 4) {
    throw new CaptureFormatError(0, `the file is only ${magic.length} bytes long, too short for a capture header`);
  }
  if (pcapMagicInfo(magic)) return yield* parsePcap(magic, options);
  if (isPcapngMagic(magic)) return yield* parsePcapng(magic, options);
  if (isModifiedPcapMagic(magic)) {
    throw new CaptureFormatError(0, "this is a Kuznetzov \"modified pcap\" file (magic a1b2cd34), which is not supported", "convert it with editcap -F pcap");
  }
  throw new CaptureFormatError(
    0,
    `not a pcap or pcapng file: it starts with 0x${magic.toString("hex")}, expected a1b2c3d4 or a1b23c4d (pcap, either byte order) or 0a0d0d0a (pcapng)`,
    "check the file name; compressed captures must be decompressed first",
  );
}

/** The limits of CaptureReadOptions, checked once per capture (`name` is the options parameter). */
function checkReadOptions<T extends CaptureReadOptions>(operation: string, name: string, options: unknown): T {
  const checked = expectObject<T>(operation, name, options, true);
  if (checked.maxPacketLength !== undefined) expectInteger(operation, `${name}.maxPacketLength`, checked.maxPacketLength, 1);
  if (checked.maxBlockLength !== undefined) expectInteger(operation, `${name}.maxBlockLength`, checked.maxBlockLength, 1);
  return checked;
}

/** Every record of a capture held in memory, in file order. Packet data are slices of `input`. */
export function readCaptureRecords(input: Uint8Array, options: CaptureReadOptions = {}): Generator<CaptureRecord, void, undefined> {
  expectBytes("read capture", "input", input);
  checkReadOptions("read capture", "options", options);
  return recordsOf(input, options);
}

function recordsOf(input: Uint8Array, options: CaptureReadOptions): Generator<CaptureRecord, void, undefined> {
  const buffer = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return runParserSync(parseCapture(options), buffer);
}

export function readCapturePackets(input: Uint8Array, options: CaptureReadOptions = {}): Generator<CapturePacket, void, undefined> {
  return packetsOf(readCaptureRecords(input, options));
}

function* packetsOf(records: Generator<CaptureRecord, void, undefined>): Generator<CapturePacket, void, undefined> {
  for (const record of records) if (record.type === "packet") yield record.packet;
}

/** A whole capture, decoded. */
export interface CaptureContents {
  format: CaptureFormat;
  sections: CaptureSection[];
  interfaces: CaptureInterface[];
  packets: CapturePacket[];
  nameResolutions: NameResolution[];
  statistics: InterfaceStatistics[];
  unknownBlocks: { offset: number; sectionIndex: number; blockType: number; body: Buffer }[];
}

/** The interface a packet belongs to, from a list of interfaces of any sections. */
export function interfaceOfPacket(interfaces: readonly CaptureInterface[], packet: CapturePacket): CaptureInterface | undefined {
  if (!Array.isArray(interfaces)) throw argumentError("find interface", "interfaces", "an array of CaptureInterface", interfaces);
  expectObject("find interface", "packet", packet);
  return findInterface(interfaces, packet);
}

function findInterface(interfaces: readonly CaptureInterface[], packet: CapturePacket): CaptureInterface | undefined {
  return interfaces.find((candidate) => candidate.sectionIndex === packet.sectionIndex && candidate.index === packet.interfaceIndex);
}

export function readCapture(input: Uint8Array, options: CaptureReadOptions = {}): CaptureContents {
  const contents: CaptureContents = { format: "pcap", sections: [], interfaces: [], packets: [], nameResolutions: [], statistics: [], unknownBlocks: [] };
  for (const record of readCaptureRecords(input, options)) collect(contents, record);
  contents.format = contents.sections[0]?.format ?? "pcap";
  return contents;
}

/** Reads a whole capture file into memory and decodes it. */
export function readCaptureFile(path: string, options: CaptureReadOptions = {}): CaptureContents {
  expectString("read capture", "path", path);
  checkReadOptions("read capture", "options", options);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw openError(path, error);
  }
  return readCapture(bytes, options);
}

function collect(contents: CaptureContents, record: CaptureRecord): void {
  switch (record.type) {
    case "section":
      contents.sections.push(record.section);
      break;
    case "interface":
      contents.interfaces.push(record.interface);
      break;
    case "packet":
      contents.packets.push(record.packet);
      break;
    case "name-resolution":
      contents.nameResolutions.push(record.nameResolution);
      break;
    case "interface-statistics":
      contents.statistics.push(record.statistics);
      break;
    case "unknown-block":
      contents.unknownBlocks.push({ offset: record.offset, sectionIndex: record.sectionIndex, blockType: record.blockType, body: record.body });
      break;
  }
}

function openError(path: string, error: unknown): NetbpfError {
  const code = (error as NodeJS.ErrnoException).code;
  return new UsageError("read capture", `cannot open ${path}: ${code ?? String(error)}`, code === "ENOENT" ? "check the path" : undefined);
}

/**
 * A capture being read incrementally: the file is never held in memory as a
 * whole. Iterate it for packets, or call records() for every block.
 */
export class CaptureReader implements AsyncIterable<CapturePacket>, AsyncDisposable {
  readonly format: CaptureFormat;
  /** The first section (pcap: its file header). */
  readonly section: CaptureSection;
  /** Sections seen so far. */
  readonly sections: CaptureSection[] = [];
  /** Interfaces seen so far (all sections). */
  readonly interfaces: CaptureInterface[] = [];
  private started = false;
  private readonly first: CaptureRecord & { type: "section" };

  private readonly generator: AsyncGenerator<CaptureRecord[], void, undefined>;
  private readonly firstBatch: CaptureRecord[];
  private readonly release: () => Promise<void>;

  /** Made by openCapture: the parser's batches, the first of them (starting with the section), and what close() releases. */
  constructor(generator: AsyncGenerator<CaptureRecord[], void, undefined>, firstBatch: CaptureRecord[], release: () => Promise<void>) {
    const operation = "read capture";
    expectFunction(operation, "generator.next", expectObject<{ next?: unknown }>(operation, "generator", generator).next);
    if (!Array.isArray(firstBatch) || (firstBatch[0] as CaptureRecord | undefined)?.type !== "section") {
      throw argumentError(operation, "firstBatch", "an array of records starting with a section (use openCapture)", firstBatch);
    }
    expectFunction(operation, "release", release);
    this.generator = generator;
    this.firstBatch = firstBatch;
    this.release = release;
    this.first = firstBatch[0] as CaptureRecord & { type: "section" };
    this.section = this.first.section;
    this.format = this.first.section.format;
    this.sections.push(this.first.section);
    // What the first read holds (usually the first interfaces) is known once the capture is open.
    this.note(firstBatch, 1);
  }

  /** The interface a packet was captured on (among those read so far). */
  interfaceOf(packet: CapturePacket): CaptureInterface | undefined {
    if (typeof packet !== "object" || packet === null || typeof packet.interfaceIndex !== "number" || typeof packet.sectionIndex !== "number") {
      throw argumentError("find interface", "packet", "a packet of this capture (with sectionIndex and interfaceIndex)", packet);
    }
    return findInterface(this.interfaces, packet);
  }

  /**
   * Every block, in arrays: all the records that one read of the input
   * completes (up to 4096), so the consumer awaits once per large read, not
   * once per record. The interfaces and sections of a batch are known
   * (interfaceOf) when it is delivered.
   */
  async *recordBatches(): AsyncGenerator<CaptureRecord[], void, undefined> {
    if (this.started) throw new UsageError("read capture", "a capture can be iterated only once", "open it again to re-read");
    this.started = true;
    try {
      yield this.firstBatch;
      for (;;) {
        const next = await this.generator.next();
        if (next.done) return;
        this.note(next.value, 0);
        yield next.value;
      }
    } finally {
      await this.close();
    }
  }

  private note(batch: CaptureRecord[], from: number): void {
    for (let i = from; i < batch.length; i++) {
      const record = batch[i]!;
      if (record.type === "interface") this.interfaces.push(record.interface);
      else if (record.type === "section") this.sections.push(record.section);
    }
  }

  async *records(): AsyncGenerator<CaptureRecord, void, undefined> {
    for await (const batch of this.recordBatches()) yield* batch;
  }

  /** The packets, in arrays (see recordBatches); never an empty array. */
  async *packetBatches(): AsyncGenerator<CapturePacket[], void, undefined> {
    for await (const batch of this.recordBatches()) {
      const packets: CapturePacket[] = [];
      for (const record of batch) if (record.type === "packet") packets.push(record.packet);
      if (packets.length > 0) yield packets;
    }
  }

  async *packets(): AsyncGenerator<CapturePacket, void, undefined> {
    for await (const batch of this.packetBatches()) yield* batch;
  }

  [Symbol.asyncIterator](): AsyncIterator<CapturePacket> {
    return this.packets();
  }

  async close(): Promise<void> {
    await this.generator.return();
    await this.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export interface OpenCaptureOptions extends CaptureReadOptions {
  /** Read size for files (default 1 MiB). */
  chunkSize?: number;
}

/**
 * Opens a capture for streaming: a path ("-" is standard input), or any
 * async iterable of byte chunks (a Readable stream). Reads and checks the
 * header before returning, so a wrong file fails here.
 */
export async function openCapture(source: string | AsyncIterable<Uint8Array>, options: OpenCaptureOptions = {}): Promise<CaptureReader> {
  const operation = "read capture";
  if (typeof source !== "string" && typeof (source as Partial<AsyncIterable<Uint8Array>> | null)?.[Symbol.asyncIterator] !== "function") {
    throw argumentError(operation, "source", "a path or an async iterable of byte chunks (a Readable stream)", source);
  }
  checkReadOptions<OpenCaptureOptions>(operation, "options", options);
  if (options.chunkSize !== undefined) expectInteger(operation, "options.chunkSize", options.chunkSize, 1);
  let chunks: AsyncIterable<Uint8Array>;
  let release = async () => {};
  if (typeof source === "string") {
    if (source === "-") chunks = process.stdin;
    else {
      let handle;
      try {
        handle = await open(source, "r");
      } catch (error) {
        throw openError(source, error);
      }
      const stream = handle.createReadStream({ highWaterMark: options.chunkSize ?? 1024 * 1024, autoClose: true });
      chunks = stream;
      release = async () => {
        stream.destroy();
        await handle.close().catch(() => {});
      };
    }
  } else {
    chunks = source;
  }
  const generator = runParserBatches(parseCapture(options), chunks);
  try {
    const first = await generator.next();
    if (first.done || first.value[0]?.type !== "section") throw new CaptureFormatError(0, "the capture has no header");
    return new CaptureReader(generator, first.value, release);
  } catch (error) {
    await generator.return();
    await release();
    throw error;
  }
}

export interface CaptureWriterOptions {
  /** Default: from the file extension (captureFormatFromPath), else "pcap". */
  format?: CaptureFormat;
  linkType: number;
  snapLength?: number;
  /** Default: "microsecond" for pcap, "nanosecond" for pcapng. */
  resolution?: "microsecond" | "nanosecond";
  /** Default: the machine's byte order. */
  byteOrder?: ByteOrder;
  fcsLength?: number;
  /** pcapng only: section header options (shb_userappl, shb_os, comments …). */
  section?: SectionToWrite;
  /** pcapng only: more options for the first interface. */
  interface?: Omit<InterfaceToWrite, "linkType" | "snapLength" | "timestampResolution" | "fcsLength">;
  /**
   * For a path that does not exist yet: true (default) writes a temporary
   * file renamed on close(); false writes the path directly and
   * incrementally, so that a crash leaves what was flushed (see openFileSink).
   */
  atomic?: boolean;
}

/** What createCaptureWriter needs of its options, checked before anything is opened (the writers check the numbers' ranges). */
function checkWriterOptions(operation: string, options: CaptureWriterOptions): void {
  expectObject(operation, "options", options);
  if (options.format !== undefined) expectOneOf(operation, "options.format", options.format, ["pcap", "pcapng"]);
  expectInteger(operation, "options.linkType", options.linkType, 0, 0xffff);
  if (options.snapLength !== undefined) expectInteger(operation, "options.snapLength", options.snapLength, 0, 0xffffffff);
  if (options.resolution !== undefined) expectOneOf(operation, "options.resolution", options.resolution, ["microsecond", "nanosecond"]);
  if (options.byteOrder !== undefined) expectOneOf(operation, "options.byteOrder", options.byteOrder, ["little", "big"]);
  if (options.fcsLength !== undefined) expectInteger(operation, "options.fcsLength", options.fcsLength, 0);
  if (options.section !== undefined) expectObject(operation, "options.section", options.section);
  if (options.interface !== undefined) expectObject(operation, "options.interface", options.interface);
  expectBoolean(operation, "options.atomic", options.atomic, true);
}

/** Whether `value` is a CaptureSink (rather than a Node stream). */
function isCaptureSink(value: unknown): value is CaptureSink {
  const candidate = value as Partial<CaptureSink> | null;
  return typeof candidate === "object" && candidate !== null && typeof candidate.abort === "function" && typeof candidate.flush === "function" && typeof candidate.close === "function" && "closed" in candidate;
}

/**
 * Opens where a capture goes, before anything is captured: "-" is
 * standard output; a path is opened at once (a directory or a missing
 * folder fails here). Pass the sink to createCaptureWriter later.
 */
export function openCaptureSink(target: string | Writable, options: { atomic?: boolean } = {}): CaptureSink {
  expectObject("open capture output", "options", options, true);
  expectBoolean("open capture output", "options.atomic", options.atomic, true);
  if (typeof target !== "string") return new StreamSink(expectWritable("open capture output", "target", target, "a path, \"-\" or a writable stream"));
  if (target === "-") return new StreamSink(process.stdout);
  return openFileSink(target, { atomic: options.atomic });
}

/**
 * Creates a writer for a path ("-" is standard output), a stream or a sink
 * from openCaptureSink. A path that does not exist yet is written to a
 * temporary file and renamed on close() (abort() removes it) unless
 * `atomic` is false; an existing path — a file, a symbolic link, a device,
 * a FIFO — is written through, never replaced.
 * The first interface (index 0) is created from linkType and snapLength.
 */
export function createCaptureWriter(target: string | Writable | CaptureSink, options: CaptureWriterOptions): PcapWriter | PcapngWriter {
  checkWriterOptions("create capture writer", options);
  if (typeof target !== "string" && !isCaptureSink(target)) expectWritable("create capture writer", "target", target, "a path, \"-\", a writable stream or a CaptureSink");
  const path = typeof target === "string" && target !== "-" ? target : undefined;
  const sinkPath = isCaptureSink(target) ? (target as unknown as { path?: unknown }).path : undefined;
  const format = options.format ?? (path !== undefined ? captureFormatFromPath(path) : typeof sinkPath === "string" ? captureFormatFromPath(sinkPath) : undefined) ?? "pcap";
  const sink: CaptureSink = isCaptureSink(target) ? target : openCaptureSink(target, { atomic: options.atomic });
  try {
    if (format === "pcap") {
      return new PcapWriter(sink, {
        linkType: options.linkType,
        snapLength: options.snapLength,
        resolution: options.resolution ?? "microsecond",
        byteOrder: options.byteOrder,
        fcsLength: options.fcsLength,
      });
    }
    const writer = new PcapngWriter(sink, { ...options.section, byteOrder: options.byteOrder });
    writer.addInterface({
      ...options.interface,
      linkType: options.linkType,
      snapLength: options.snapLength,
      fcsLength: options.fcsLength,
      timestampResolution: options.resolution === "microsecond" ? MICROSECOND_RESOLUTION : NANOSECOND_RESOLUTION,
    });
    return writer;
  } catch (error) {
    sink.abort();
    throw error;
  }
}
