/**
 * Codecs turn map keys and values (fixed-size byte strings) into JavaScript
 * values and back. A codec writes into and reads from a caller's buffer at an
 * offset, so batch operations encode many elements without copies.
 */
import { argumentError, expectInteger, expectObject } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";

export interface Codec<T> {
  /** Size in bytes of one encoded value. */
  readonly size: number;
  encode(value: T, target: Buffer, offset: number): void;
  decode(source: Buffer, offset: number): T;
}

/** A codec: an object with a byte size and encode/decode functions. */
function expectCodec<T>(operation: string, name: string, value: unknown): Codec<T> {
  const codec = value as Partial<Codec<T>> | null | undefined;
  if (typeof codec?.size !== "number" || typeof codec.encode !== "function" || typeof codec.decode !== "function") {
    throw argumentError(operation, name, "a codec (an object with size, encode and decode, e.g. u32 or struct({…}))", value);
  }
  return codec as Codec<T>;
}

function integer<T>(size: number, encode: Codec<T>["encode"], decode: Codec<T>["decode"]): Codec<T> {
  return { size, encode, decode };
}

/** A codec of JavaScript numbers: anything else would be written as 0 (Buffer's writers and `>>> 0` take NaN as 0). */
function numeric(size: number, write: Codec<number>["encode"], decode: Codec<number>["decode"]): Codec<number> {
  return integer<number>(size, (v, b, o) => {
    if (typeof v !== "number") throw new TypeError("expected a number");
    write(v, b, o);
  }, decode);
}

export const u8 = numeric(1, (v, b, o) => void b.writeUInt8(v, o), (b, o) => b.readUInt8(o));
export const u16 = numeric(2, (v, b, o) => void b.writeUInt16LE(v, o), (b, o) => b.readUInt16LE(o));
export const u32 = numeric(4, (v, b, o) => void b.writeUInt32LE(v >>> 0, o), (b, o) => b.readUInt32LE(o));
export const i32 = numeric(4, (v, b, o) => void b.writeInt32LE(v, o), (b, o) => b.readInt32LE(o));
export const u64 = integer<bigint>(8, (v, b, o) => void b.writeBigUInt64LE(BigInt(v), o), (b, o) => b.readBigUInt64LE(o));
export const i64 = integer<bigint>(8, (v, b, o) => void b.writeBigInt64LE(BigInt(v), o), (b, o) => b.readBigInt64LE(o));
/** Network byte order 16-bit (ports as the kernel stores them in packet headers). */
export const u16be = numeric(2, (v, b, o) => void b.writeUInt16BE(v, o), (b, o) => b.readUInt16BE(o));
export const u32be = numeric(4, (v, b, o) => void b.writeUInt32BE(v >>> 0, o), (b, o) => b.readUInt32BE(o));

/** Raw bytes of a fixed size; decode copies so the result outlives the batch buffer. */
export function bytes(size: number): Codec<Buffer> {
  expectInteger("bytes codec", "size", size, 0);
  return {
    size,
    encode(value, target, offset) {
      if (value.length !== size) throw new RangeError(`expected ${size} bytes, got ${value.length}`);
      value.copy(target, offset);
    },
    decode(source, offset) {
      return Buffer.from(source.subarray(offset, offset + size));
    },
  };
}

/** An IPv4 address in network byte order, shown as dotted quad. */
export const ipv4: Codec<string> = {
  size: 4,
  encode(value, target, offset) {
    const parts = value.split(".").map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
      throw new RangeError(`"${value}" is not an IPv4 address`);
    }
    for (let i = 0; i < 4; i++) target[offset + i] = parts[i]!;
  },
  decode(source, offset) {
    return `${source[offset]}.${source[offset + 1]}.${source[offset + 2]}.${source[offset + 3]}`;
  },
};

/** A NUL-padded string of fixed width (e.g. a task comm). */
export function cString(size: number): Codec<string> {
  expectInteger("cString codec", "size", size, 1);
  return {
    size,
    encode(value, target, offset) {
      target.fill(0, offset, offset + size);
      Buffer.from(value, "utf8").subarray(0, size - 1).copy(target, offset);
    },
    decode(source, offset) {
      const slice = source.subarray(offset, offset + size);
      const end = slice.indexOf(0);
      return slice.toString("utf8", 0, end < 0 ? size : end);
    },
  };
}

type Fields = Record<string, Codec<any> | { offset: number; codec: Codec<any> }>;
type StructValue<F extends Fields> = {
  [K in keyof F]: F[K] extends Codec<infer T> ? T : F[K] extends { codec: Codec<infer T> } ? T : never;
};

/**
 * A C struct. Fields without an explicit offset are laid out in order with
 * natural alignment (as clang does); `size` defaults to the aligned end.
 */
export function struct<F extends Fields>(fields: F, size?: number): Codec<StructValue<F>> {
  const operation = "struct codec";
  expectObject(operation, "fields", fields);
  if (Object.keys(fields).length === 0) throw new UsageError(operation, "fields must name at least one field, got {}");
  for (const [name, field] of Object.entries(fields)) {
    if (typeof field === "object" && field !== null && "codec" in field) {
      expectCodec(operation, `fields.${name}.codec`, field.codec);
      expectInteger(operation, `fields.${name}.offset`, field.offset, 0);
    } else expectCodec(operation, `fields.${name}`, field);
  }
  if (size !== undefined) expectInteger(operation, "size", size, 0);
  const layout: { name: string; offset: number; codec: Codec<any> }[] = [];
  let end = 0;
  let maxAlign = 1;
  for (const [name, field] of Object.entries(fields)) {
    const codec = "codec" in field ? field.codec : field;
    const align = Math.min(8, largestPowerOfTwoDividing(codec.size));
    maxAlign = Math.max(maxAlign, align);
    const offset = "codec" in field ? field.offset : Math.ceil(end / align) * align;
    layout.push({ name, offset, codec });
    end = Math.max(end, offset + codec.size);
  }
  const total = size ?? Math.ceil(end / maxAlign) * maxAlign;
  if (total < end) throw new RangeError(`struct size ${total} is smaller than its fields (${end} bytes)`);
  return {
    size: total,
    encode(value, target, offset) {
      target.fill(0, offset, offset + total);
      for (const f of layout) f.codec.encode((value as Record<string, unknown>)[f.name], target, offset + f.offset);
    },
    decode(source, offset) {
      const out: Record<string, unknown> = {};
      for (const f of layout) out[f.name] = f.codec.decode(source, offset + f.offset);
      return out as StructValue<F>;
    },
  };
}

function largestPowerOfTwoDividing(n: number): number {
  if (n <= 0) return 1;
  return n & -n;
}

/** A fixed-length array of one element codec. */
export function array<T>(element: Codec<T>, length: number): Codec<T[]> {
  expectCodec("array codec", "element", element);
  expectInteger("array codec", "length", length, 0);
  return {
    size: element.size * length,
    encode(value, target, offset) {
      if (value.length !== length) throw new RangeError(`expected ${length} elements, got ${value.length}`);
      for (let i = 0; i < length; i++) element.encode(value[i]!, target, offset + i * element.size);
    },
    decode(source, offset) {
      const out: T[] = new Array(length);
      for (let i = 0; i < length; i++) out[i] = element.decode(source, offset + i * element.size);
      return out;
    },
  };
}

/** An LPM trie key: a 32-bit prefix length followed by the address bytes. */
export interface LpmKey {
  prefixLength: number;
  address: Buffer;
}

export function lpmKey(addressSize: number): Codec<LpmKey> {
  expectInteger("lpmKey codec", "addressSize", addressSize, 1);
  return {
    size: 4 + addressSize,
    encode(value, target, offset) {
      target.writeUInt32LE(value.prefixLength, offset);
      target.fill(0, offset + 4, offset + 4 + addressSize);
      value.address.copy(target, offset + 4, 0, addressSize);
    },
    decode(source, offset) {
      return { prefixLength: source.readUInt32LE(offset), address: Buffer.from(source.subarray(offset + 4, offset + 4 + addressSize)) };
    },
  };
}

export function encodeToBuffer<T>(codec: Codec<T>, value: T): Buffer {
  expectCodec("encode value", "codec", codec);
  const buffer = Buffer.alloc(codec.size);
  codec.encode(value, buffer, 0);
  return buffer;
}
