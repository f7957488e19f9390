import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Writable } from "node:stream";
import { NetbpfError } from "../sys/errors.js";

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
}

function writeError(detail: string, cause: unknown, hint?: string): NetbpfError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new NetbpfError("write capture", `${detail}: ${reason}`, hint, { cause });
}

export interface AtomicFileSinkOptions {
  /** Bytes buffered before a write(2) (default 256 KiB). */
  bufferSize?: number;
  /** File mode for the new file, before umask (default 0o666). */
  mode?: number;
}

/**
 * Writes to a temporary file next to `path` (".NAME.netbpf-PID-RANDOM.tmp")
 * and renames it over `path` on close(), so `path` only ever holds a complete
 * capture. abort() removes the temporary file. Every operation is
 * synchronous, so close() and abort() have finished their work when they
 * return, even inside a signal handler that does not await.
 */
export class AtomicFileSink implements CaptureSink {
  readonly path: string;
  readonly temporaryPath: string;
  private fd: number | undefined;
  /** Bytes not yet written: buffer[0, used). */
  buffer: Buffer;
  private used = 0;
  private readonly bufferSize: number;
  private state: "open" | "closed" | "aborted" = "open";

  constructor(path: string, options: AtomicFileSinkOptions = {}) {
    this.path = path;
    this.bufferSize = options.bufferSize ?? 256 * 1024;
    this.buffer = Buffer.allocUnsafe(this.bufferSize);
    this.temporaryPath = join(dirname(path), `.${basename(path)}.netbpf-${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
    try {
      this.fd = openSync(this.temporaryPath, "wx", options.mode ?? 0o666);
    } catch (error) {
      throw writeError(`cannot create temporary file ${this.temporaryPath}`, error, "check that the directory exists and is writable");
    }
  }

  get closed(): boolean {
    return this.state !== "open";
  }

  write(chunk: Buffer): void {
    const offset = this.reserve(chunk.length);
    chunk.copy(this.buffer, offset);
  }

  reserve(length: number): number {
    if (this.state !== "open") throw new NetbpfError("write capture", `${this.path} is already ${this.state}`, "create a new writer");
    if (length > this.buffer.length - this.used) {
      this.flushSync();
      if (length > this.buffer.length) this.buffer = Buffer.allocUnsafe(length);
    }
    const offset = this.used;
    this.used += length;
    return offset;
  }

  flushSync(): void {
    if (this.used === 0 || this.fd === undefined) return;
    const length = this.used;
    this.used = 0;
    try {
      let written = 0;
      while (written < length) written += writeSync(this.fd, this.buffer, written, length - written);
    } catch (error) {
      this.abort();
      throw writeError(`writing ${this.temporaryPath} failed`, error, "the capture was discarded; check free space");
    } finally {
      // A record larger than the usual buffer got a buffer of its own: go back to the usual size.
      if (this.buffer.length > this.bufferSize) this.buffer = Buffer.allocUnsafe(this.bufferSize);
    }
  }

  async flush(): Promise<void> {
    this.flushSync();
  }

  /** Flushes, syncs and renames the temporary file over the target. */
  closeSync(): void {
    if (this.state !== "open") return;
    this.flushSync();
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

  async close(): Promise<void> {
    this.closeSync();
  }

  abort(): void {
    if (this.state !== "open") return;
    this.state = "aborted";
    this.used = 0;
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed: nothing left to release
      }
      this.fd = undefined;
    }
    try {
      unlinkSync(this.temporaryPath);
    } catch {
      // already gone
    }
  }
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
  private readonly bufferSize: number;
  /** Bytes not yet handed to the stream: buffer[0, used). */
  buffer: Buffer;
  private used = 0;

  constructor(private readonly stream: Writable, options: StreamSinkOptions = {}) {
    this.end = options.end ?? (stream !== process.stdout && stream !== process.stderr);
    this.bufferSize = options.bufferSize ?? 256 * 1024;
    this.buffer = Buffer.allocUnsafe(this.bufferSize);
    stream.on("error", (error) => {
      this.failure ??= error;
    });
  }

  get closed(): boolean {
    return this.state !== "open";
  }

  write(chunk: Buffer): void {
    const offset = this.reserve(chunk.length);
    chunk.copy(this.buffer, offset);
  }

  reserve(length: number): number {
    this.check();
    if (length > this.buffer.length - this.used) {
      this.hand();
      if (length > this.buffer.length) this.buffer = Buffer.allocUnsafe(length);
    }
    const offset = this.used;
    this.used += length;
    return offset;
  }

  /** Gives the gathered bytes to the stream (which keeps the Buffer: a new one is taken). */
  private hand(): void {
    if (this.used === 0) return;
    const chunk = this.buffer.subarray(0, this.used);
    this.buffer = Buffer.allocUnsafe(this.bufferSize);
    this.used = 0;
    this.stream.write(chunk);
  }

  async flush(): Promise<void> {
    this.check();
    this.hand();
    if (this.stream.writableNeedDrain) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off("drain", done);
          this.stream.off("error", done);
          this.stream.off("close", done);
          resolve();
        };
        this.stream.on("drain", done);
        this.stream.on("error", done);
        this.stream.on("close", done);
      });
    }
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
