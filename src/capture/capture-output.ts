/**
 * Where `netbpf capture -w` writes: one file (or standard output), or a
 * series of files rotated by size (-C), by time (-G) and limited in number
 * (-W), named as tcpdump names them. Every file is opened before anything
 * is captured into it, written directly and incrementally (what was flushed
 * survives a crash), and written through when it already exists (a
 * symbolic link, a device, a FIFO are never replaced).
 */
import { openCaptureSink } from "../pcap/capture-file.js";
import { argumentError, expectDate, expectFunction, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import type { CaptureSink } from "../pcap/capture-sink.js";
import type { PcapngWriter } from "../pcap/pcapng-writer.js";
import type { PcapWriter } from "../pcap/pcap-writer.js";

export interface CaptureOutputOptions {
  /** A path, or "-" for standard output. */
  target: string;
  /** -C: start a new file before a packet when the current one holds more than this many bytes. */
  rotateBytes?: number;
  /** -G: start a new file before a packet when this many seconds have passed since the current one began. */
  rotateSeconds?: number;
  /** -W: with -C, reuse this many file names in turn; with -G, stop after this many files. */
  fileCount?: number;
  /** Local time (default) or UTC for -G's strftime patterns. */
  timeZone?: "local" | "utc";
}

type Writer = PcapWriter | PcapngWriter;

/** strftime for the patterns tcpdump's -G file names use. */
export function formatFileTime(pattern: string, date: Date, timeZone: "local" | "utc" = "local"): string {
  expectString("format file name", "pattern", pattern);
  expectDate("format file name", "date", date);
  expectOneOf("format file name", "timeZone", timeZone, ["local", "utc"]);
  return fileTime(pattern, date, timeZone);
}

function fileTime(pattern: string, date: Date, timeZone: "local" | "utc"): string {
  const utc = timeZone === "utc";
  const two = (value: number) => String(value).padStart(2, "0");
  const fields: Record<string, () => string> = {
    Y: () => String(utc ? date.getUTCFullYear() : date.getFullYear()),
    y: () => two((utc ? date.getUTCFullYear() : date.getFullYear()) % 100),
    m: () => two((utc ? date.getUTCMonth() : date.getMonth()) + 1),
    d: () => two(utc ? date.getUTCDate() : date.getDate()),
    H: () => two(utc ? date.getUTCHours() : date.getHours()),
    M: () => two(utc ? date.getUTCMinutes() : date.getMinutes()),
    S: () => two(utc ? date.getUTCSeconds() : date.getSeconds()),
    s: () => String(Math.floor(date.getTime() / 1000)),
    "%": () => "%",
  };
  return pattern.replace(/%(.)/g, (text, letter: string) => fields[letter]?.() ?? text);
}

/** Digits of the file number with -W (tcpdump: of W - 1). */
function fileNumberWidth(count: number | undefined): number {
  if (count === undefined) return 0;
  let width = 0;
  for (let rest = count - 1; rest > 0; rest = Math.floor(rest / 10)) width++;
  return width;
}

function checkNow(operation: string, now: unknown): void {
  if (typeof now !== "number" || !Number.isFinite(now)) throw argumentError(operation, "now", "a time in milliseconds since 1970 (Date.now())", now);
}

export class CaptureOutput {
  readonly options: CaptureOutputOptions;
  /** The file being written now. */
  path: string;
  /** Every file written, in order. */
  readonly paths: string[] = [];
  #sink: CaptureSink;
  #writer: Writer | undefined;
  #create: ((sink: CaptureSink) => Writer) | undefined;
  #sizeIndex = 0;
  #timeFiles = 1;
  #started: number;

  /** Opens the first file now: a bad path fails before anything is captured. */
  constructor(options: CaptureOutputOptions, now = Date.now()) {
    const operation = "capture output";
    expectObject(operation, "options", options);
    if (expectString(operation, "options.target", options.target) === "") throw argumentError(operation, "options.target", "a path or \"-\"", options.target);
    if (options.rotateBytes !== undefined) expectInteger(operation, "options.rotateBytes", options.rotateBytes, 1);
    if (options.rotateSeconds !== undefined && !(typeof options.rotateSeconds === "number" && options.rotateSeconds > 0 && Number.isFinite(options.rotateSeconds))) {
      throw argumentError(operation, "options.rotateSeconds", "a positive number of seconds", options.rotateSeconds);
    }
    if (options.fileCount !== undefined) expectInteger(operation, "options.fileCount", options.fileCount, 1);
    if (options.timeZone !== undefined) expectOneOf(operation, "options.timeZone", options.timeZone, ["local", "utc"]);
    checkNow(operation, now);
    this.options = options;
    this.#started = now;
    this.path = this.#name(0, now);
    this.#sink = this.#open(this.path);
  }

  get rotating(): boolean {
    return this.options.rotateBytes !== undefined || this.options.rotateSeconds !== undefined;
  }

  #name(index: number, now: number): string {
    const base = this.options.rotateSeconds !== undefined ? fileTime(this.options.target, new Date(now), this.options.timeZone ?? "local") : this.options.target;
    if (this.options.rotateBytes === undefined && this.options.fileCount === undefined) return base;
    const width = this.options.rotateBytes !== undefined ? fileNumberWidth(this.options.fileCount) : 0;
    if (index === 0 && width === 0) return base;
    return `${base}${String(index).padStart(width, "0")}`;
  }

  #open(path: string): CaptureSink {
    const sink = openCaptureSink(path, { atomic: false });
    this.paths.push(path);
    return sink;
  }

  /** The writer of the current file, made by `create` (kept to make the writers of later files). */
  start(create: (sink: CaptureSink) => Writer): Writer {
    expectFunction("capture output", "create", create);
    this.#create = create;
    this.#writer = create(this.#sink);
    return this.#writer;
  }

  get writer(): Writer | undefined {
    return this.#writer;
  }

  get started(): boolean {
    return this.#writer !== undefined;
  }

  /**
   * Call before writing each packet: starts the next file when one is due.
   * Returns false when -G's file limit (-W) is reached: stop capturing.
   */
  async beforePacket(now = Date.now()): Promise<boolean> {
    checkNow("capture output", now);
    const writer = this.#writer;
    if (writer === undefined || this.#create === undefined) return true;
    const seconds = this.options.rotateSeconds;
    if (seconds !== undefined && now - this.#started >= seconds * 1000) {
      if (this.options.fileCount !== undefined && this.#timeFiles >= this.options.fileCount) return false;
      this.#timeFiles++;
      this.#started = now;
      this.#sizeIndex = 0;
      await this.#next(this.#name(0, now));
      return true;
    }
    const bytes = this.options.rotateBytes;
    if (bytes !== undefined && this.#bytesWritten() > bytes) {
      this.#sizeIndex++;
      if (this.options.fileCount !== undefined && this.#sizeIndex >= this.options.fileCount) this.#sizeIndex = 0;
      await this.#next(this.#name(this.#sizeIndex, now));
    }
    return true;
  }

  #bytesWritten(): number {
    const written = (this.#sink as { bytesWritten?: number }).bytesWritten;
    return written ?? 0;
  }

  async #next(path: string): Promise<void> {
    await this.#writer!.close();
    this.path = path;
    this.#sink = this.#open(path);
    this.#writer = this.#create!(this.#sink);
  }

  /** Finishes the current file, making a header-only file when no packet came (as tcpdump does). */
  async close(): Promise<void> {
    if (this.#writer !== undefined) await this.#writer.close();
    else await this.#sink.close();
  }

  /** Stops writing; what was flushed stays. */
  abort(): void {
    if (this.#writer !== undefined) this.#writer.abort();
    else this.#sink.abort();
  }
}
