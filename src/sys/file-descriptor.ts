import { NetbpfError } from "./errors.js";
import { libcClose } from "./libc.js";

/** An owned kernel file descriptor: closed once, by close() or `using`. */
export class FileDescriptor {
  #fd: number;

  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`invalid file descriptor ${fd}`);
    this.#fd = fd;
  }

  /** The raw descriptor number; throws once closed. */
  get value(): number {
    if (this.#fd < 0) throw new NetbpfError("use file descriptor", "it is already closed", "do not use an object after close()");
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    if (this.#fd >= 0) {
      libcClose(this.#fd);
      this.#fd = -1;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
