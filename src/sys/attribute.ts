import { addressOf } from "./libc.js";

/**
 * A zero-filled attribute struct for a system call. Pointer fields keep the
 * buffers they point at alive for as long as the attribute is reachable.
 */
export class Attribute {
  readonly buffer: Buffer;
  private readonly pinned: Buffer[] = [];

  constructor(size: number) {
    this.buffer = Buffer.alloc(size);
  }

  u8(offset: number, value: number): this {
    this.buffer.writeUInt8(value, offset);
    return this;
  }

  u16(offset: number, value: number): this {
    this.buffer.writeUInt16LE(value, offset);
    return this;
  }

  u32(offset: number, value: number): this {
    this.buffer.writeUInt32LE(value >>> 0, offset);
    return this;
  }

  s32(offset: number, value: number): this {
    this.buffer.writeInt32LE(value, offset);
    return this;
  }

  u64(offset: number, value: number | bigint): this {
    this.buffer.writeBigUInt64LE(BigInt(value), offset);
    return this;
  }

  /** Stores the address of `data` (or 0 for null) at `offset`. */
  pointer(offset: number, data: Buffer | null | undefined): this {
    if (!data || data.length === 0) return this.u64(offset, 0n);
    this.pinned.push(data);
    return this.u64(offset, addressOf(data));
  }

  /** A NUL-terminated string field of fixed width, truncated to fit. */
  fixedString(offset: number, width: number, value: string): this {
    const bytes = Buffer.from(value, "utf8").subarray(0, width - 1);
    bytes.copy(this.buffer, offset);
    return this;
  }

  /** Stores a pointer to a NUL-terminated copy of `value`. */
  string(offset: number, value: string): this {
    return this.pointer(offset, Buffer.from(value + "\0", "utf8"));
  }

  readU32(offset: number): number {
    return this.buffer.readUInt32LE(offset);
  }

  readU64(offset: number): bigint {
    return this.buffer.readBigUInt64LE(offset);
  }
}
