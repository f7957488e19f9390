import type { Writable } from "node:stream";
import { drained } from "../pcap/drained.js";

/**
 * Lines of text gathered in one Buffer (UTF-8) and handed to a stream as one
 * chunk per batch: no string of a whole batch built by concatenation (which
 * keeps every line alive until the batch is written, and costs garbage
 * collections that copy them), one write(2) per batch. On process.stdout
 * the buffer is reused once a write has completed (nothing queued), so
 * writing allocates nothing per batch.
 */
export class TextOutput {
  #buffer: Buffer;
  #used = 0;
  readonly #size: number;
  readonly #reusable: boolean;

  constructor(readonly stream: Writable = process.stdout, size = 64 * 1024) {
    this.#size = size;
    this.#buffer = Buffer.allocUnsafe(size);
    this.#reusable = stream === process.stdout || stream === process.stderr;
  }

  /** Bytes gathered and not yet handed to the stream. */
  get pending(): number {
    return this.#used;
  }

  /** Adds text (no newline added). */
  write(text: string): void {
    // A UTF-8 character of one UTF-16 unit takes at most 3 bytes.
    if (this.#used + 3 * text.length > this.#buffer.length) {
      this.#hand();
      if (3 * text.length > this.#buffer.length) {
        this.stream.write(text);
        return;
      }
    }
    this.#used += this.#buffer.write(text, this.#used);
  }

  /** Adds text and a newline. */
  line(text: string): void {
    this.write(text);
    if (this.#used === this.#buffer.length) this.#hand();
    this.#buffer[this.#used++] = 0x0a;
  }

  /** Hands what was gathered to the stream; resolves when the stream can take more. */
  async flush(): Promise<void> {
    this.#hand();
    await drained(this.stream);
  }

  #hand(): void {
    if (this.#used === 0) return;
    this.stream.write(this.#buffer.subarray(0, this.#used));
    this.#used = 0;
    // A stream may keep the chunk (a queued write, a pipe's readable side): only standard output that took it at once gives it back.
    if (!this.#reusable || this.stream.writableLength !== 0) this.#buffer = Buffer.allocUnsafe(this.#size);
  }
}
