import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, lstatSync, openSync, renameSync, unlinkSync, writeSync, writevSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Writable } from "node:stream";
import { NetbpfError } from "../sys/errors.js";
import { argumentError, byteRangeError, expectBoolean, expectInteger, expectObject, expectString, expectWritable } from "../sys/argument-checks.js";
import { drained } from "./drained.js";

/** Where a capture writer's bytes go. */
export interface CaptureSink {
  /** Queues bytes; throws if the sink has already failed or was closed. */
  write(chunk: Buffer): void;
  /** Resolves when queued bytes have been handed to the OS. */
  flush(): Promise<void>;
  /** Finishes the output (for files: the atomic rename). */
  close(): Promise<void>;
  /** Discards the output (for files: removes the temporary file). Safe to call at any time, more than once. */
  abort(): void;
  readonly closed: boolean;
  /**
   * Optional, for encoders in hot loops: makes room for `length` bytes in
   * `buffer` and returns where they start; the caller fills them at once.
   * They count as written. Read `buffer` after the call: it may change.
   */
  reserve?(length: number): number;
  readonly buffer?: Buffer;
  /**
   * Optional, for large records: appends source[start, start + length) to the
   * record reserve()d last, written to the file together with the buffered
   * bytes in one writev(2) — the bytes are not copied into the buffer.
   */
  writeThrough?(source: Uint8Array, start: number, length: number): void;
}

function writeError(detail: string, cause: unknown, hint?: string): NetbpfError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new NetbpfError("write capture", `${detail}: ${reason}`, hint, { cause });
}

/*
 * The checks of the sinks' per-packet methods are typeof, instanceof and a shift
 * at the top of each; the error is built in a function of its own, off the hot path.
 */
function badChunk(chunk: unknown): never {
  throw argumentError("write capture", "chunk", "a Buffer or Uint8Array", chunk);
}

function badLength(length: unknown): never {
  throw argumentError("write capture", "length", "a byte count (an integer ≥ 0)", length);
}

function badText(text: unknown): never {
  throw argumentError("write capture", "text", "a string", text);
}

function badRange(source: unknown, start: unknown, length: unknown): never {
  throw byteRangeError("write capture", source, start, length);
}

export interface FileSinkOptions {
  /** Bytes buffered before a write(2) (default 256 KiB). */
  bufferSize?: number;
  /** File mode for a new file, before umask (default 0o666, as tcpdump's fopen). */
  mode?: number;
}

/** @deprecated name kept for compatibility: the options of every file sink. */
export type AtomicFileSinkOptions = FileSinkOptions;

/**
 * The first buffer of a sink is this small (at most), the next ones full size. The first
 * flush then comes after a few dozen packets, while V8 is still collecting type feedback:
 * optimized capture loops meet no path they have never seen at their first full buffer
 * (which would throw the optimized code away and compile it again).
 */
const firstBufferSize = 4096;

/** The checks of FileSinkOptions (and OpenFileSinkOptions' atomic), once per file. */
function checkFileSinkOptions(path: unknown, options: unknown): OpenFileSinkOptions {
  const operation = "write capture";
  expectString(operation, "path", path);
  const checked = expectObject<OpenFileSinkOptions>(operation, "options", options, true);
  if (checked.bufferSize !== undefined) expectInteger(operation, "options.bufferSize", checked.bufferSize, 1);
  if (checked.mode !== undefined) expectInteger(operation, "options.mode", checked.mode, 0, 0o7777);
  expectBoolean(operation, "options.atomic", checked.atomic, true);
  return checked;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * What every file sink shares: a buffer of whole records, written with
 * write(2) when it fills or on flush(). A failed write (a full disk) leaves
 * the file as it was after the last successful flush — every record in it
 * complete — and the sink failed: later writes throw.
 */
abstract class BufferedFileSink implements CaptureSink {
  protected fd: number | undefined;
  /** Bytes not yet written: buffer[0, used). */
  buffer: Buffer;
  private used = 0;
  /** Offsets in `buffer` where the buffered records start (one reserve() each): room for a full buffer of the smallest records. */
  private recordStarts: Int32Array;
  private recordCount = 0;
  private readonly bufferSize: number;
  protected state: "open" | "closed" | "aborted" | "failed" = "open";
  /** Bytes handed to the OS so far. */
  bytesFlushed = 0;

  /** Bytes written so far, flushed or still buffered (tcpdump's pcap_dump_ftell). */
  get bytesWritten(): number {
    return this.bytesFlushed + this.used;
  }
  /** Whether the file is a regular file (fsync and truncation apply). */
  protected regular = true;

  constructor(readonly path: string, options: FileSinkOptions) {
    options = checkFileSinkOptions(path, options);
    this.bufferSize = options.bufferSize ?? 256 * 1024;
    this.buffer = Buffer.allocUnsafe(Math.min(this.bufferSize, firstBufferSize));
    this.recordStarts = new Int32Array(Math.max(1024, this.bufferSize >>> 4));
  }

  get closed(): boolean {
    return this.state !== "open";
  }

  write(chunk: Buffer): void {
    if (!(chunk instanceof Uint8Array)) badChunk(chunk);
    const offset = this.#reserve(chunk.length);
    this.buffer.set(chunk, offset);
  }

  reserve(length: number): number {
    // An unsigned 32-bit integer: larger records cannot be stored anyway.
    if (length >>> 0 !== length) badLength(length);
    return this.#reserve(length);
  }

  #reserve(length: number): number {
    if (this.state !== "open") throw new NetbpfError("write capture", `${this.path} is already ${this.state}`, "create a new writer");
    if (length > this.buffer.length - this.used) {
      this.flushBuffered();
      if (length > this.buffer.length) this.buffer = Buffer.allocUnsafe(length);
    }
    const offset = this.used;
    // Where each record starts: a failed write is cut back to a record boundary.
    if (this.recordCount === this.recordStarts.length) {
      const larger = new Int32Array(this.recordStarts.length * 2);
      larger.set(this.recordStarts);
      this.recordStarts = larger;
    }
    this.recordStarts[this.recordCount++] = offset;
    this.used += length;
    return offset;
  }

  writeThrough(source: Uint8Array, start: number, length: number): void {
    if (!(source instanceof Uint8Array) || start >>> 0 !== start || length >>> 0 !== length || start + length > source.length) badRange(source, start, length);
    if (this.state !== "open") throw new NetbpfError("write capture", `${this.path} is already ${this.state}`, "create a new writer");
    this.flushBuffered(source.subarray(start, start + length));
  }

  /**
   * Writes the buffered bytes, then `after` (bytes that end the last record). On failure the sink is failed and the
   * file keeps what earlier flushes wrote.
   */
  flushSync(after?: Uint8Array): void {
    if (after !== undefined && !(after instanceof Uint8Array)) throw argumentError("write capture", "after", "a Buffer or Uint8Array, or undefined", after);
    this.flushBuffered(after);
  }

  /** flushSync without the argument check. */
  protected flushBuffered(after?: Uint8Array): void {
    if ((this.used === 0 && after === undefined) || this.fd === undefined) return;
    const buffered = this.used;
    const length = buffered + (after?.length ?? 0);
    const records = this.recordCount;
    this.used = 0;
    this.recordCount = 0;
    let written = 0;
    try {
      if (after !== undefined) {
        written = writevSync(this.fd, [this.buffer.subarray(0, buffered), after]);
        while (written < buffered) written += writeSync(this.fd, this.buffer, written, buffered - written);
        while (written < length) written += writeSync(this.fd, after, written - buffered, length - written);
      }
      while (written < length) written += writeSync(this.fd, this.buffer, written, length - written);
      this.bytesFlushed += length;
    } catch (error) {
      // Keep the records written whole; cut a partly written one off.
      let whole = 0;
      for (let i = 0; i < records && this.recordStarts[i]! <= written; i++) whole = this.recordStarts[i]!;
      this.writeFailed(error, written, whole);
    } finally {
      // A record larger than the usual buffer got a buffer of its own, and the first buffer is small: go to the usual size.
      if (this.buffer.length !== this.bufferSize) this.buffer = Buffer.allocUnsafe(this.bufferSize);
    }
  }

  /**
   * A write failed after `partial` bytes of the buffer, of which the first
   * `whole` hold complete records: cut the file back to them (so every
   * record in it is whole) and fail.
   */
  protected writeFailed(error: unknown, partial: number, whole = 0): never {
    if (partial > 0 && this.regular && this.fd !== undefined) {
      try {
        ftruncateSync(this.fd, this.bytesFlushed + whole);
        this.bytesFlushed += whole;
      } catch {
        // the file keeps a partial record at its end, which readers report as truncated
      }
    }
    this.state = "failed";
    this.release();
    throw this.failure(error);
  }

  protected abstract failure(error: unknown): NetbpfError;

  async flush(): Promise<void> {
    this.flushBuffered();
  }

  /** Closes the descriptor (once). */
  protected release(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // already closed: nothing left to release
    }
    this.fd = undefined;
  }

  abstract closeSync(): void;

  async close(): Promise<void> {
    this.closeSync();
  }

  abstract abort(): void;

  /** Drops what is buffered and not yet written. */
  protected discardBuffered(): void {
    this.used = 0;
    this.recordCount = 0;
  }
}

/**
 * Writes to a temporary file next to `path` (".NAME.netbpf-PID-RANDOM.tmp")
 * and renames it over `path` on close(), so `path` only ever holds a complete
 * capture. abort() removes the temporary file. Every operation is
 * synchronous, so close() and abort() have finished their work when they
 * return, even inside a signal handler that does not await. Meant for paths
 * that do not exist yet (see openCaptureSink): renaming over an existing
 * file would replace it (its mode, owner, or what it is: a device, a FIFO,
 * a symbolic link).
 */
export class AtomicFileSink extends BufferedFileSink {
  readonly temporaryPath: string;
  constructor(path: string, options: FileSinkOptions = {}) {
    super(path, options);
    this.temporaryPath = join(dirname(path), `.${basename(path)}.netbpf-${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
    try {
      this.fd = openSync(this.temporaryPath, "wx", options.mode ?? 0o666);
    } catch (error) {
      throw writeError(`cannot create temporary file ${this.temporaryPath}`, error, "check that the directory exists and is writable");
    }
  }

  protected failure(error: unknown): NetbpfError {
    this.abort();
    return writeError(`writing ${this.temporaryPath} failed`, error, "the capture was discarded; check free space");
  }

  /** Flushes, syncs and renames the temporary file over the target. */
  closeSync(): void {
    if (this.state !== "open") return;
    this.flushBuffered();
    const fd = this.fd!;
    try {
      fsyncSync(fd);
      closeSync(fd);
      this.fd = undefined;
      renameSync(this.temporaryPath, this.path);
    } catch (error) {
      this.abort();
      throw writeError(`finishing ${this.path} failed`, error, "the capture was discarded");
    }
    this.state = "closed";
  }

  abort(): void {
    if (this.state === "closed" || this.state === "aborted") return;
    this.state = "aborted";
    this.discardBuffered();
    this.release();
    try {
      unlinkSync(this.temporaryPath);
    } catch {
      // already gone
    }
  }
}

/**
 * Writes to `path` itself, as tcpdump does: through a symbolic link, into a
 * character device or a FIFO, and into an existing file (truncated, keeping
 * its mode and owner, emptied at the first write). A new file is created with `mode` (default 0o666)
 * less the umask. What was flushed stays in the file whatever happens
 * later (a crash, kill -9, a full disk): flush often to lose little.
 * abort() stops writing and keeps what was flushed.
 */
export class DirectFileSink extends BufferedFileSink {
  /** An existing file is emptied at the first write, not at open: a capture that fails before writing leaves it as it was. */
  private truncatePending = false;

  constructor(path: string, options: FileSinkOptions = {}) {
    super(path, options);
    try {
      // Opened before truncating: a directory or a missing folder fails here without touching anything.
      this.fd = openSync(path, constants.O_WRONLY | constants.O_CREAT, options.mode ?? 0o666);
      const status = fstatSync(this.fd);
      if (status.isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
      this.regular = status.isFile();
      this.truncatePending = this.regular && status.size > 0;
    } catch (error) {
      this.release();
      throw openFailure(path, error);
    }
  }

  protected failure(error: unknown): NetbpfError {
    const code = errorCode(error);
    const kept = this.regular ? `; ${this.path} keeps the ${this.bytesFlushed} bytes written before, every packet in them complete` : "";
    return writeError(`writing ${this.path} failed`, error, code === "ENOSPC" ? `the disk is full${kept}` : `the capture stopped${kept}`);
  }

  protected override flushBuffered(after?: Uint8Array): void {
    if (this.truncatePending && this.fd !== undefined) {
      this.truncatePending = false;
      try {
        ftruncateSync(this.fd, 0);
      } catch (error) {
        this.writeFailed(error, 0);
      }
    }
    super.flushBuffered(after);
  }

  closeSync(): void {
    if (this.state !== "open") return;
    this.flushBuffered();
    try {
      if (this.regular) fsyncSync(this.fd!);
    } catch (error) {
      this.state = "failed";
      this.release();
      throw this.failure(error);
    } finally {
      this.release();
    }
    this.state = "closed";
  }

  abort(): void {
    if (this.state === "closed" || this.state === "aborted") return;
    this.state = "aborted";
    this.discardBuffered();
    this.release();
  }
}

function openFailure(path: string, error: unknown): NetbpfError {
  const code = errorCode(error);
  const hints: Record<string, string> = {
    EISDIR: "it is a directory: name a file in it",
    ENOENT: "the folder does not exist: create it first",
    ENOTDIR: "a part of the path is not a directory",
    EACCES: "check the folder's permissions",
    EROFS: "the file system is read-only",
  };
  return writeError(`cannot write ${path}`, error, (code && hints[code]) ?? "check the path");
}

export interface OpenFileSinkOptions extends FileSinkOptions {
  /**
   * true (default): a path that does not exist yet is written to a
   * temporary file renamed on close (nothing appears until the capture is
   * complete). false: the path is written directly and incrementally, so
   * that what was flushed survives a crash (like tcpdump). Anything that
   * already exists — a file, a symbolic link, a device, a FIFO — is always
   * written directly: renaming over it would replace it.
   */
  atomic?: boolean;
}

/** Opens a file for a capture writer (see OpenFileSinkOptions); fails at once for a directory or a missing folder. */
export function openFileSink(path: string, options: OpenFileSinkOptions = {}): AtomicFileSink | DirectFileSink {
  checkFileSinkOptions(path, options);
  let exists = true;
  try {
    lstatSync(path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw openFailure(path, error);
    exists = false;
  }
  if (!exists && options.atomic !== false) return new AtomicFileSink(path, options);
  return new DirectFileSink(path, options);
}

export interface StreamSinkOptions {
  /** End the stream on close() (default: true, except for process.stdout and process.stderr). */
  end?: boolean;
  /** Bytes gathered before they are handed to the stream as one chunk (default 256 KiB). */
  bufferSize?: number;
}

/**
 * Writes to a stream such as process.stdout; there is no atomic rename here.
 * Records are gathered in a buffer and handed to the stream as one chunk
 * when it fills and on flush(), so a batch of packets costs one write.
 */
export class StreamSink implements CaptureSink {
  private failure: unknown;
  private state: "open" | "closed" | "aborted" = "open";
  private readonly end: boolean;
  /** Standard output or error: streams that are done with a chunk once nothing is queued (see hand()). */
  private readonly reusable: boolean;
  private readonly bufferSize: number;
  /** Bytes not yet handed to the stream: buffer[0, used). */
  buffer: Buffer;
  private used = 0;

  private readonly stream: Writable;

  constructor(stream: Writable, options: StreamSinkOptions = {}) {
    const operation = "write capture";
    this.stream = expectWritable(operation, "stream", stream);
    expectObject(operation, "options", options, true);
    expectBoolean(operation, "options.end", options.end, true);
    if (options.bufferSize !== undefined) expectInteger(operation, "options.bufferSize", options.bufferSize, 1);
    this.reusable = stream === process.stdout || stream === process.stderr;
    this.end = options.end ?? !this.reusable;
    this.bufferSize = options.bufferSize ?? 256 * 1024;
    this.buffer = Buffer.allocUnsafe(Math.min(this.bufferSize, firstBufferSize));
    stream.on("error", (error) => {
      this.failure ??= error;
    });
  }

  get closed(): boolean {
    return this.state !== "open";
  }

  write(chunk: Buffer): void {
    if (!(chunk instanceof Uint8Array)) badChunk(chunk);
    const offset = this.#reserve(chunk.length);
    this.buffer.set(chunk, offset);
  }

  /** Bytes gathered and not yet handed to the stream. */
  get pending(): number {
    return this.used;
  }

  /** Adds text as UTF-8: a text output gathered into chunks like bytes (one write per chunk, the buffer reused on stdout). */
  writeText(text: string): void {
    if (typeof text !== "string") badText(text);
    this.#writeText(text);
  }

  #writeText(text: string): void {
    // A UTF-8 character of one UTF-16 unit takes at most 3 bytes.
    const offset = this.#reserve(3 * text.length);
    this.used = offset + this.buffer.write(text, offset);
  }

  /** Adds text and a newline. */
  writeLine(text: string): void {
    if (typeof text !== "string") badText(text);
    this.#writeText(text);
    this.buffer[this.#reserve(1)] = 0x0a;
  }

  reserve(length: number): number {
    if (length >>> 0 !== length) badLength(length);
    return this.#reserve(length);
  }

  #reserve(length: number): number {
    this.check();
    if (length > this.buffer.length - this.used) {
      this.hand();
      if (length > this.buffer.length) this.buffer = Buffer.allocUnsafe(length);
    }
    const offset = this.used;
    this.used += length;
    return offset;
  }

  /**
   * Gives the gathered bytes to the stream. A stream may keep the Buffer
   * (a queued write, a pipe's readable side): a new one is taken — except
   * for process.stdout and process.stderr once the write has completed
   * (nothing queued: a file, a pipe or a terminal with room took the bytes
   * at once), where the buffer is reused, so a long write-out allocates
   * nothing per chunk (new external memory per chunk brings on garbage
   * collections).
   */
  private hand(): void {
    if (this.used === 0) return;
    const chunk = this.buffer.subarray(0, this.used);
    this.used = 0;
    this.stream.write(chunk);
    if (!this.reusable || this.stream.writableLength !== 0 || this.buffer.length !== this.bufferSize) this.buffer = Buffer.allocUnsafe(this.bufferSize);
  }

  async flush(): Promise<void> {
    this.check();
    this.hand();
    await drained(this.stream);
    this.check();
  }

  async close(): Promise<void> {
    if (this.state !== "open") return;
    await this.flush();
    this.state = "closed";
    if (this.end) {
      await new Promise<void>((resolve, reject) => {
        this.stream.end((error?: Error | null) => (error ? reject(writeError("closing the output stream failed", error)) : resolve()));
      });
    }
  }

  abort(): void {
    this.state = "aborted";
    this.used = 0;
  }

  private check(): void {
    if (this.failure !== undefined) throw writeError("writing to the output stream failed", this.failure);
    if (this.state !== "open") throw new NetbpfError("write capture", `the output stream is already ${this.state}`, "create a new writer");
  }
}

/** Collects the output in memory (tests, small captures, building fixtures). */
export class BufferSink implements CaptureSink {
  private chunks: Buffer[] = [];
  private state: "open" | "closed" | "aborted" = "open";

  get closed(): boolean {
    return this.state !== "open";
  }

  write(chunk: Buffer): void {
    if (!(chunk instanceof Uint8Array)) badChunk(chunk);
    if (this.state !== "open") throw new NetbpfError("write capture", `the buffer sink is already ${this.state}`, "create a new writer");
    this.chunks.push(Buffer.from(chunk));
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.state === "open") this.state = "closed";
  }

  abort(): void {
    this.state = "aborted";
    this.chunks = [];
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
