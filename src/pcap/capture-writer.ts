import { UsageError } from "../sys/errors.js";
import type { CaptureSink } from "./capture-sink.js";
import type { CaptureFormat, PacketToWrite } from "./capture-record.js";

/** What pcap and pcapng writers have in common. */
export interface CaptureWriter extends Disposable, AsyncDisposable {
  readonly format: CaptureFormat;
  readonly packetsWritten: number;
  writePacket(packet: PacketToWrite): void;
  flush(): Promise<void>;
  /** Finishes the capture; for files, the complete file appears under its name now. */
  close(): Promise<void>;
  /** Discards the capture; for files, the temporary file is removed. */
  abort(): void;
}

/** Owns the sink and the open/closed state; subclasses encode. */
export abstract class CaptureWriterBase implements CaptureWriter {
  abstract readonly format: CaptureFormat;
  packetsWritten = 0;

  constructor(protected readonly sink: CaptureSink) {}

  abstract writePacket(packet: PacketToWrite): void;

  protected emit(bytes: Buffer): void {
    if (this.sink.closed) throw new UsageError(`write ${this.format}`, "the writer is already closed or aborted", "create a new writer");
    this.sink.write(bytes);
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

export function currentTimeNanoseconds(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function checkLength(value: number, name: string, operation: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new UsageError(operation, `${name} ${value} is not an unsigned 32-bit integer`);
  }
}
