/**
 * Audit records as JSON lines — one JSON object per line, the record's own
 * field names (docs/audit.md), dates in ISO 8601 — on standard output or
 * appended to a file, for log shippers (Vector, Fluent Bit, Filebeat,
 * Promtail …) to pick up. Writing never waits: when the destination falls
 * behind by more than `maximumBufferedBytes`, records are dropped and
 * counted.
 */
import { closeSync, createWriteStream, openSync, type WriteStream } from "node:fs";
import { expectArray, expectInteger, expectObject, expectString, expectWritable } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { expectAuditRecord, expectAuditRecordKinds, type AuditRecord, type AuditRecordKind } from "./audit-record.js";
import type { AuditSink } from "./audit-sink.js";

export interface JsonLinesSinkOptions {
  /** A file to append to, or "-" for standard output. */
  path?: string;
  /** A stream to write to instead of a path (not closed by close()). */
  stream?: NodeJS.WritableStream & { writableLength?: number };
  /** Only these kinds (default: every kind). */
  kinds?: readonly AuditRecordKind[];
  /** Output waiting to be written beyond which records are dropped (default 16 MiB). */
  maximumBufferedBytes?: number;
}

export interface JsonLinesStatistics {
  written: number;
  dropped: number;
  lastError: string | null;
}

/** One record as its JSON line (without the newline). */
export function formatRecordJson(record: AuditRecord): string {
  expectAuditRecord("format record JSON", "record", record);
  return JSON.stringify(record);
}

export class JsonLinesSink implements AuditSink {
  readonly path: string | undefined;
  readonly kinds: readonly AuditRecordKind[] | undefined;
  readonly maximumBufferedBytes: number;
  readonly #stream: NodeJS.WritableStream & { writableLength?: number };
  readonly #owned: WriteStream | undefined;
  readonly #statistics: JsonLinesStatistics = { written: 0, dropped: 0, lastError: null };
  #closed = false;

  constructor(options: JsonLinesSinkOptions) {
    const operation = "open JSON lines output";
    expectObject(operation, "options", options);
    if (options.path !== undefined) expectString(operation, "options.path", options.path);
    if (options.stream !== undefined) expectWritable(operation, "options.stream", options.stream);
    this.kinds = options.kinds === undefined ? undefined : expectAuditRecordKinds(operation, "options.kinds", options.kinds);
    this.maximumBufferedBytes = expectInteger(operation, "options.maximumBufferedBytes", options.maximumBufferedBytes ?? 16 * 1024 * 1024, 0);
    if (options.stream !== undefined || options.path === undefined || options.path === "-") {
      this.#stream = options.stream ?? process.stdout;
      // A reader that went away (EPIPE) stops this output, not the recorder.
      this.#stream.on("error", (error: Error) => { this.#statistics.lastError = error.message; });
    } else {
      this.path = options.path;
      // Open now so an unwritable path is a clear error at start, not a lost stream later.
      let fd: number;
      try {
        fd = openSync(options.path, "a", 0o640);
      } catch (error) {
        throw new UsageError("open JSON lines output", `cannot write ${options.path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, "give a writable file path, or - for standard output");
      }
      closeSync(fd);
      this.#owned = createWriteStream(options.path, { flags: "a" });
      this.#owned.on("error", (error) => { this.#statistics.lastError = error.message; });
      this.#stream = this.#owned;
    }
  }

  write(records: AuditRecord[]): void {
    expectArray("write JSON lines", "records", records);
    let text = "";
    let count = 0;
    for (const record of records) {
      if (this.kinds !== undefined && !this.kinds.includes(record.kind)) continue;
      text += `${formatRecordJson(record)}\n`;
      count++;
    }
    if (count === 0) return;
    if (this.#closed || this.#statistics.lastError !== null || (this.#stream.writableLength ?? 0) > this.maximumBufferedBytes) {
      this.#statistics.dropped += count;
      return;
    }
    this.#stream.write(text);
    this.#statistics.written += count;
  }

  statistics(): JsonLinesStatistics {
    return { ...this.#statistics };
  }

  /** Flushes what is buffered; closes the file (never standard output or a given stream). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const owned = this.#owned;
    if (owned !== undefined) {
      await new Promise<void>((resolve) => owned.end(resolve));
      return;
    }
    const stream = this.#stream;
    if ((stream.writableLength ?? 0) === 0) return;
    // A reader that stopped reading must not hold the recorder's exit up forever.
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 5000);
      stream.once("drain", () => resolve());
    });
    clearTimeout(timer);
  }
}
