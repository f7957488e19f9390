import { readFileSync } from "node:fs";
import { NetbpfError, SyscallError } from "./errors.js";
import { lastErrno, libcMmap, libcMunmap, pointerAddress, viewOf } from "./libc.js";

export const Protection = { Read: 1, Write: 2 } as const;
const mapShared = 1;
const mapFailed = 0xffff_ffff_ffff_ffffn;

let cachedPageSize: number | undefined;

/** The kernel's page size (ring buffers and perf buffers are laid out in pages). */
export function pageSize(): number {
  if (cachedPageSize === undefined) {
    cachedPageSize = readPageSizeFromAuxv() ?? 4096;
  }
  return cachedPageSize;
}

function readPageSizeFromAuxv(): number | undefined {
  try {
    const auxv = readFileSync("/proc/self/auxv");
    for (let offset = 0; offset + 16 <= auxv.length; offset += 16) {
      const type = auxv.readBigUInt64LE(offset);
      if (type === 6n) return Number(auxv.readBigUInt64LE(offset + 8)); // AT_PAGESZ
      if (type === 0n) break;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/**
 * A shared mapping of a kernel object's memory (a ring buffer or perf
 * buffer). `memory` is a direct view: no copy. Using it after close() is a
 * use-after-unmap, so owners must stop reading before they unmap.
 */
export class MemoryMapping {
  readonly length: number;
  #pointer: unknown;
  #memory: ArrayBuffer | undefined;

  private constructor(pointer: unknown, length: number) {
    this.#pointer = pointer;
    this.length = length;
    this.#memory = viewOf(pointer, length);
  }

  /** mmap(NULL, length, protection, MAP_SHARED, fd, offset). */
  static map(operation: string, fd: number, offset: number, length: number, protection: number, hint?: string): MemoryMapping {
    const pointer = libcMmap(null, length, protection, mapShared, fd, offset);
    if (pointer === null || pointerAddress(pointer) === mapFailed) {
      throw new SyscallError(operation, lastErrno(), hint);
    }
    return new MemoryMapping(pointer, length);
  }

  get memory(): ArrayBuffer {
    if (!this.#memory) throw new NetbpfError("read mapped memory", "the mapping is closed", "do not use a reader after close()");
    return this.#memory;
  }

  get closed(): boolean {
    return this.#memory === undefined;
  }

  close(): void {
    if (this.#memory === undefined) return;
    this.#memory = undefined;
    libcMunmap(this.#pointer, this.length);
    this.#pointer = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
