import { objectPin } from "../sys/bpf.js";
import type { FileDescriptor } from "../sys/file-descriptor.js";

/**
 * A kernel object this process holds by a file descriptor — a map, a program,
 * a link: pinning, closing and `using` work the same for each.
 */
export abstract class FdOwner {
  /** The object's file descriptor. */
  abstract readonly fd: FileDescriptor;

  /** True once close() has run. */
  get closed(): boolean {
    return this.fd.closed;
  }

  /** Pins the object at `path` in bpffs so it outlives this process. */
  pin(path: string): void {
    objectPin(this.fd.value, path);
  }

  /** Closes the descriptor; the kernel frees the object when nothing else holds it. Safe to call twice. */
  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
