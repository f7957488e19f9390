import { readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { extname } from "node:path";
import type { Writable } from "node:stream";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { CaptureFormatError } from "./capture-format-error.js";
import { runParserAsync, runParserSync, type CaptureParser } from "./capture-parser.js";
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
import { AtomicFileSink, StreamSink, type CaptureSink } from "./capture-sink.js";
import { isModifiedPcapMagic, parsePcap, pcapMagicInfo } from "./pcap-reader.js";
import { PcapWriter } from "./pcap-writer.js";
import { isPcapngMagic, parsePcapng } from "./pcapng-reader.js";
import { PcapngWriter, type InterfaceToWrite, type SectionToWrite } from "./pcapng-writer.js";
import { expectBytes } from "../sys/argument-checks.js";

/** The format a file starts with, from its first four bytes. */
export function detectCaptureFormat(bytes: Uint8Array): CaptureFormat | undefined {
  const magic = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 4));
  if (pcapMagicInfo(magic)) return "pcap";
  if (isPcapngMagic(magic)) return "pcapng";
  return undefined;
}

/** "pcapng" for .pcapng/.ntar/.scap, "pcap" for .pcap/.cap/.dmp; undefined for anything else. */
export function captureFormatFromPath(path: string): CaptureFormat | undefined {
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

/** Every record of a capture held in memory, in file order. Packet data are slices of `input`. */
export function readCaptureRecords(input: Uint8Array, options: CaptureReadOptions = {}): Generator<CaptureRecord, void, undefined> {
  const buffer = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return runParserSync(parseCapture(options), buffer);
}

export function* readCapturePackets(input: Uint8Array, options: CaptureReadOptions = {}): Generator<CapturePacket, void, undefined> {
  for (const record of readCaptureRecords(input, options)) if (record.type === "packet") yield record.packet;
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
  return interfaces.find((candidate) => candidate.sectionIndex === packet.sectionIndex && candidate.index === packet.interfaceIndex);
}

export function readCapture(input: Uint8Array, options: CaptureReadOptions = {}): CaptureContents {
  expectBytes("read capture", "the capture data", input);
  const contents: CaptureContents = { format: "pcap", sections: [], interfaces: [], packets: [], nameResolutions: [], statistics: [], unknownBlocks: [] };
  for (const record of readCaptureRecords(input, options)) collect(contents, record);
  contents.format = contents.sections[0]?.format ?? "pcap";
  return contents;
}

/** Reads a whole capture file into memory and decodes it. */
export function readCaptureFile(path: string, options: CaptureReadOptions = {}): CaptureContents {
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

  constructor(
    private readonly generator: AsyncGenerator<CaptureRecord, void, undefined>,
    private readonly first: CaptureRecord & { type: "section" },
    private readonly release: () => Promise<void>,
  ) {
    this.section = first.section;
    this.format = first.section.format;
    this.sections.push(first.section);
  }

  /** The interface a packet was captured on (among those read so far). */
  interfaceOf(packet: CapturePacket): CaptureInterface | undefined {
    return interfaceOfPacket(this.interfaces, packet);
  }

  async *records(): AsyncGenerator<CaptureRecord, void, undefined> {
    if (this.started) throw new UsageError("read capture", "a capture can be iterated only once", "open it again to re-read");
    this.started = true;
    try {
      yield this.first;
      for (;;) {
        const next = await this.generator.next();
        if (next.done) return;
        if (next.value.type === "interface") this.interfaces.push(next.value.interface);
        else if (next.value.type === "section") this.sections.push(next.value.section);
        yield next.value;
      }
    } finally {
      await this.close();
    }
  }

  async *packets(): AsyncGenerator<CapturePacket, void, undefined> {
    for await (const record of this.records()) if (record.type === "packet") yield record.packet;
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
  /** Read size for files (default 256 KiB). */
  chunkSize?: number;
}

/**
 * Opens a capture for streaming: a path ("-" is standard input), or any
 * async iterable of byte chunks (a Readable stream). Reads and checks the
 * header before returning, so a wrong file fails here.
 */
export async function openCapture(source: string | AsyncIterable<Uint8Array>, options: OpenCaptureOptions = {}): Promise<CaptureReader> {
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
      const stream = handle.createReadStream({ highWaterMark: options.chunkSize ?? 256 * 1024, autoClose: true });
      chunks = stream;
      release = async () => {
        stream.destroy();
        await handle.close().catch(() => {});
      };
    }
  } else {
    chunks = source;
  }
  const generator = runParserAsync(parseCapture(options), chunks);
  try {
    const first = await generator.next();
    if (first.done || first.value.type !== "section") throw new CaptureFormatError(0, "the capture has no header");
    return new CaptureReader(generator, first.value as CaptureRecord & { type: "section" }, release);
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
}

/**
 * Creates a writer for a path ("-" is standard output) or a stream. Files
 * are written to a temporary file and renamed on close(); abort() removes it.
 * The first interface (index 0) is created from linkType and snapLength.
 */
export function createCaptureWriter(target: string | Writable, options: CaptureWriterOptions): PcapWriter | PcapngWriter {
  const path = typeof target === "string" && target !== "-" ? target : undefined;
  const format = options.format ?? (path ? captureFormatFromPath(path) : undefined) ?? "pcap";
  let sink: CaptureSink;
  if (path) sink = new AtomicFileSink(path);
  else sink = new StreamSink(typeof target === "string" ? process.stdout : target);
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
