import { NetbpfError, UsageError } from "../sys/errors.js";

/**
 * Readers are written once, as generators that ask for bytes and emit
 * records; a synchronous driver feeds them from a Buffer (zero-copy slices)
 * and an asynchronous driver from a stream of chunks, so both share every
 * check.
 */

/** `read`: give me the next `length` bytes (fewer only at end of input). */
export type ParserStep<T> = { read: number } | { emit: T };
export type CaptureParser<T> = Generator<ParserStep<T>, void, Buffer>;

const EMPTY = Buffer.alloc(0);

export function* runParserSync<T>(parser: CaptureParser<T>, input: Buffer): Generator<T, void, undefined> {
  let position = 0;
  let step = parser.next(EMPTY);
  while (!step.done) {
    const request = step.value;
    if ("emit" in request) {
      yield request.emit;
      step = parser.next(EMPTY);
    } else {
      const end = Math.min(input.length, position + request.read);
      const bytes = input.subarray(position, end);
      position = end;
      step = parser.next(bytes);
    }
  }
}

/** Pulls exact byte counts out of an async sequence of chunks. */
class ChunkQueue {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private current: Buffer = EMPTY;
  private ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** The next `length` bytes when they are already buffered, else undefined (then call read()). */
  readBuffered(length: number): Buffer | undefined {
    if (this.current.length < length) return undefined;
    const bytes = this.current.subarray(0, length);
    this.current = this.current.subarray(length);
    return bytes;
  }

  async read(length: number): Promise<Buffer> {
    if (this.current.length >= length) {
      const bytes = this.current.subarray(0, length);
      this.current = this.current.subarray(length);
      return bytes;
    }
    const parts: Buffer[] = this.current.length > 0 ? [this.current] : [];
    let have = this.current.length;
    this.current = EMPTY;
    while (have < length && !this.ended) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await this.iterator.next();
      } catch (error) {
        if (error instanceof NetbpfError) throw error;
        const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
        throw new NetbpfError("read capture", `reading the input failed: ${reason}`, undefined, { cause: error });
      }
      if (next.done) {
        this.ended = true;
        break;
      }
      if (!(next.value instanceof Uint8Array)) {
        throw new UsageError("read capture", `the input stream gave a ${typeof next.value} instead of bytes`, "do not set an encoding on the stream");
      }
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      parts.push(chunk);
      have += chunk.length;
    }
    if (parts.length === 0) return EMPTY;
    if (parts.length === 1) {
      const only = parts[0]!;
      this.current = only.subarray(Math.min(length, only.length));
      return only.subarray(0, length);
    }
    // Copy only the bytes asked for; the rest of the last chunk stays where it is.
    const last = parts[parts.length - 1]!;
    const before = have - last.length;
    if (have > length) {
      const needed = length - before;
      parts[parts.length - 1] = last.subarray(0, needed);
      this.current = last.subarray(needed);
      return Buffer.concat(parts, length);
    }
    return Buffer.concat(parts, have);
  }

  async close(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      await this.iterator.return?.();
    }
  }
}

export async function* runParserAsync<T>(parser: CaptureParser<T>, source: AsyncIterable<Uint8Array>): AsyncGenerator<T, void, undefined> {
  for await (const batch of runParserBatches(parser, source)) yield* batch;
}

/**
 * Like runParserAsync, but yields arrays: every record that the bytes
 * already read complete, so a consumer pays one await per chunk of input
 * rather than per record.
 */
export async function* runParserBatches<T>(parser: CaptureParser<T>, source: AsyncIterable<Uint8Array>, maximumBatch = 4096): AsyncGenerator<T[], void, undefined> {
  const queue = new ChunkQueue(source);
  let batch: T[] = [];
  try {
    let step = parser.next(EMPTY);
    while (!step.done) {
      const request = step.value;
      if ("emit" in request) {
        batch.push(request.emit);
        if (batch.length >= maximumBatch) {
          yield batch;
          batch = [];
        }
        step = parser.next(EMPTY);
        continue;
      }
      const buffered = queue.readBuffered(request.read);
      if (buffered !== undefined) {
        step = parser.next(buffered);
        continue;
      }
      if (batch.length > 0) {
        yield batch;
        batch = [];
      }
      step = parser.next(await queue.read(request.read));
    }
  } catch (error) {
    // Records before the bad one are delivered first, as one by one.
    if (batch.length > 0) {
      const delivered = batch;
      batch = [];
      yield delivered;
    }
    throw error;
  } finally {
    parser.return();
    await queue.close();
  }
  if (batch.length > 0) yield batch;
}
