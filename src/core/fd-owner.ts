import { realpathSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { argumentError, expectString } from "../sys/argument-checks.js";
import { objectPin } from "../sys/bpf.js";
import type { FileDescriptor } from "../sys/file-descriptor.js";
import { isOnBpffs } from "../sys/mounts.js";

/** Checks a path to pin at: a string naming a file in an existing folder of a bpffs mount. */
export function expectPinPath(operation: string, path: unknown, name = "path"): string {
  expectString(operation, name, path);
  let folder: string | undefined;
  try {
    folder = realpathSync(dirname(resolve(path as string)));
  } catch {
    // reported below
  }
  if (folder === undefined || !isOnBpffs(folder)) throw argumentError(operation, name, "a path in an existing folder of a bpffs mount (e.g. /sys/fs/bpf/NAME)", path);
  return path as string;
}

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
    objectPin(this.fd.value, expectPinPath("pin object", path));
  }

  /** Closes the descriptor; the kernel frees the object when nothing else holds it. Safe to call twice. */
  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
