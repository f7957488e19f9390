import { UsageError } from "../sys/errors.js";
import { CaptureFormatError } from "./capture-format-error.js";
import type { CustomOption, ProcessInfo, RawOption } from "./capture-record.js";

export const BlockType = {
  SECTION_HEADER: 0x0a0d0d0a,
  INTERFACE_DESCRIPTION: 0x00000001,
  PACKET: 0x00000002,
  SIMPLE_PACKET: 0x00000003,
  NAME_RESOLUTION: 0x00000004,
  INTERFACE_STATISTICS: 0x00000005,
  ENHANCED_PACKET: 0x00000006,
  DECRYPTION_SECRETS: 0x0000000a,
  CUSTOM_COPYABLE: 0x00000bad,
  CUSTOM_NOT_COPYABLE: 0x40000bad,
} as const;

export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

/** Option codes valid in every block. */
export const OptionCode = {
  END_OF_OPTIONS: 0,
  COMMENT: 1,
  CUSTOM_STRING_COPYABLE: 2988,
  CUSTOM_BINARY_COPYABLE: 2989,
  CUSTOM_STRING: 19372,
  CUSTOM_BINARY: 19373,
} as const;

export const SectionOption = { HARDWARE: 2, OS: 3, USER_APPLICATION: 4 } as const;

export const InterfaceOption = {
  NAME: 2,
  DESCRIPTION: 3,
  IPV4_ADDRESS: 4,
  IPV6_ADDRESS: 5,
  MAC_ADDRESS: 6,
  EUI_ADDRESS: 7,
  SPEED: 8,
  TIMESTAMP_RESOLUTION: 9,
  TIME_ZONE: 10,
  FILTER: 11,
  OS: 12,
  FCS_LENGTH: 13,
  TIMESTAMP_OFFSET: 14,
  HARDWARE: 15,
  TRANSMIT_SPEED: 16,
  RECEIVE_SPEED: 17,
  IANA_TIME_ZONE: 18,
} as const;

export const PacketOption = { FLAGS: 2, HASH: 3, DROP_COUNT: 4, PACKET_ID: 5, QUEUE: 6, VERDICT: 7 } as const;

export const NameResolutionOption = { DNS_NAME: 2, DNS_IPV4_ADDRESS: 3, DNS_IPV6_ADDRESS: 4 } as const;
export const NameRecordType = { END: 0, IPV4: 1, IPV6: 2, EUI48: 3, EUI64: 4 } as const;

export const StatisticsOption = {
  START_TIME: 2,
  END_TIME: 3,
  INTERFACE_RECEIVED: 4,
  INTERFACE_DROPPED: 5,
  FILTER_ACCEPTED: 6,
  OS_DROPPED: 7,
  USER_DELIVERED: 8,
} as const;

/**
 * netbpf's per-packet process record travels in a copyable binary custom
 * option (code 2989). netbpf has no IANA Private Enterprise Number of its own,
 * so it uses 32473, the number IANA reserves for documentation and examples
 * (RFC 5612), and marks its data with the four bytes "NBPF" so other users of
 * that number are not mistaken for it. Layout after the PEN, in the section's
 * byte order: "NBPF", kind (u8, 1 = process), version (u8, 1), reserved (u16,
 * 0), pid (u32), command (UTF-8, the rest of the option).
 */
export const NETBPF_PRIVATE_ENTERPRISE_NUMBER = 32473;
const NETBPF_OPTION_MAGIC = Buffer.from("NBPF", "latin1");
const NETBPF_KIND_PROCESS = 1;
const NETBPF_PROCESS_VERSION = 1;
const PROCESS_COMMENT = /^pid (\d{1,10}) comm (.*)$/s;

/** Where a block's options live, for error messages. */
export interface OptionContext {
  blockName: string;
  blockOffset: number;
  /** File offset of body[0]. */
  bodyOffset: number;
  little: boolean;
}

export function blockError(context: OptionContext, detail: string): CaptureFormatError {
  return new CaptureFormatError(context.blockOffset, `pcapng ${context.blockName} at offset ${context.blockOffset}: ${detail}`);
}

/** Decodes the options that run from `start` to the end of `body`. */
export function decodeOptions(body: Buffer, start: number, context: OptionContext): RawOption[] {
  const options: RawOption[] = [];
  let position = start;
  while (position + 4 <= body.length) {
    const code = context.little ? body.readUInt16LE(position) : body.readUInt16BE(position);
    const length = context.little ? body.readUInt16LE(position + 2) : body.readUInt16BE(position + 2);
    if (code === OptionCode.END_OF_OPTIONS) break;
    const valueStart = position + 4;
    if (valueStart + length > body.length) {
      throw blockError(
        context,
        `option ${code} at offset ${context.bodyOffset + position} has length ${length} but only ${body.length - valueStart} bytes remain in the block`,
      );
    }
    options.push({ code, value: body.subarray(valueStart, valueStart + length) });
    position = valueStart + padded(length);
  }
  return options;
}

export function padded(length: number): number {
  return (length + 3) & ~3;
}

export function decodeString(value: Buffer): string {
  let end = value.length;
  while (end > 0 && value[end - 1] === 0) end--;
  return value.toString("utf8", 0, end);
}

/** Options common to every block: comments and custom options. */
export function decodeCommonOptions(options: RawOption[], context: OptionContext): { comments: string[]; customOptions: CustomOption[] } {
  const comments: string[] = [];
  const customOptions: CustomOption[] = [];
  for (const option of options) {
    if (option.code === OptionCode.COMMENT) comments.push(decodeString(option.value));
    else if (isCustomCode(option.code)) {
      if (option.value.length < 4) {
        throw blockError(context, `custom option ${option.code} has length ${option.value.length}, too short for its 4-byte Private Enterprise Number`);
      }
      customOptions.push({
        code: option.code,
        privateEnterpriseNumber: context.little ? option.value.readUInt32LE(0) : option.value.readUInt32BE(0),
        data: option.value.subarray(4),
      });
    }
  }
  return { comments, customOptions };
}

export function isCustomCode(code: number): code is CustomOption["code"] {
  return code === 2988 || code === 2989 || code === 19372 || code === 19373;
}

/** Reads a fixed-size option value, or throws naming the option. */
export function fixedValue(option: RawOption, size: number, name: string, context: OptionContext): Buffer {
  if (option.value.length !== size) {
    throw blockError(context, `option ${name} has length ${option.value.length}, expected ${size}`);
  }
  return option.value;
}

export function readUint64(value: Buffer, little: boolean): bigint {
  return little ? value.readBigUInt64LE(0) : value.readBigUInt64BE(0);
}

export function readUint32(value: Buffer, little: boolean): number {
  return little ? value.readUInt32LE(0) : value.readUInt32BE(0);
}

/** Reads a timestamp stored as high 32 bits then low 32 bits. */
export function readSplitUint64(value: Buffer, at: number, little: boolean): bigint {
  const high = little ? value.readUInt32LE(at) : value.readUInt32BE(at);
  const low = little ? value.readUInt32LE(at + 4) : value.readUInt32BE(at + 4);
  return (BigInt(high) << 32n) | BigInt(low);
}

/** Finds netbpf's process record among custom options, else in a "pid N comm X" comment. */
export function decodeProcessInfo(customOptions: CustomOption[], comments: string[], little: boolean): ProcessInfo | undefined {
  for (const option of customOptions) {
    if (!isProcessOption(option)) continue;
    const data = option.data;
    return { pid: little ? data.readUInt32LE(8) : data.readUInt32BE(8), command: data.toString("utf8", 12) };
  }
  for (const comment of comments) {
    const match = PROCESS_COMMENT.exec(comment);
    if (match) {
      const pid = Number(match[1]);
      if (pid <= 0xffffffff) return { pid, command: match[2]! };
    }
  }
  return undefined;
}

/** True for netbpf's process custom option. */
export function isProcessOption(option: CustomOption): boolean {
  if (option.code !== OptionCode.CUSTOM_BINARY_COPYABLE && option.code !== OptionCode.CUSTOM_BINARY) return false;
  if (option.privateEnterpriseNumber !== NETBPF_PRIVATE_ENTERPRISE_NUMBER) return false;
  const data = Buffer.from(option.data.buffer, option.data.byteOffset, option.data.byteLength);
  return data.length >= 12 && data.subarray(0, 4).equals(NETBPF_OPTION_MAGIC) && data[4] === NETBPF_KIND_PROCESS;
}

/** The comment netbpf writes next to the custom option, readable in tcpdump and Wireshark. */
export function processComment(process: ProcessInfo): string {
  return `pid ${process.pid} comm ${process.command}`;
}

/** The data of netbpf's process custom option (everything after the PEN). */
export function encodeProcessData(process: ProcessInfo, little: boolean): Buffer {
  const command = Buffer.from(process.command, "utf8");
  const data = Buffer.alloc(12 + command.length);
  NETBPF_OPTION_MAGIC.copy(data, 0);
  data[4] = NETBPF_KIND_PROCESS;
  data[5] = NETBPF_PROCESS_VERSION;
  if (little) data.writeUInt32LE(process.pid >>> 0, 8);
  else data.writeUInt32BE(process.pid >>> 0, 8);
  command.copy(data, 12);
  return data;
}

/** A process's Enhanced Packet Block options, encoded (headers and padding included, no opt_endofopt). */
export interface ProcessOptions {
  readonly process: ProcessInfo;
  /** The comment "pid N comm X". */
  readonly comment: Uint8Array;
  /** netbpf's process custom option. */
  readonly custom: Uint8Array;
}

type CachedProcessOptions = ProcessOptions & { readonly commandBytes: Uint8Array };

/**
 * The encoded process options of each pid, with the raw command bytes they
 * were made from: a packet of a known (pid, command) costs a comparison of
 * at most 16 bytes, no string or Buffer. A pid whose command changed (exec,
 * or the pid reused) is encoded again. At most `capacity` pids are kept;
 * past that the cache starts over.
 */
export class ProcessOptionCache {
  readonly #entries = new Map<number, CachedProcessOptions>();
  /** The last entry returned: packets come in runs of one process, so most need no map lookup. */
  #last: CachedProcessOptions | undefined;

  constructor(private readonly little: boolean, private readonly capacity = 4096) {}

  /** The options of `pid` with the command bytes source[commandStart, commandStart + commandLength). */
  get(pid: number, source: Uint8Array, commandStart: number, commandLength: number): ProcessOptions {
    let entry = this.#last;
    if (entry === undefined || entry.process.pid !== pid) entry = this.#entries.get(pid);
    if (entry !== undefined && sameBytes(entry.commandBytes, source, commandStart, commandLength)) {
      this.#last = entry;
      return entry;
    }
    const commandBytes = source.slice(commandStart, commandStart + commandLength);
    const process: ProcessInfo = { pid, command: Buffer.from(commandBytes.buffer, commandBytes.byteOffset, commandLength).toString("utf8") };
    const encoded = (options: OptionEncoder) => {
      const bytes = options.finish();
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length - 4);
    };
    const created = {
      process,
      commandBytes,
      comment: encoded(new OptionEncoder(this.little).string(OptionCode.COMMENT, processComment(process))),
      custom: encoded(new OptionEncoder(this.little).custom({ code: OptionCode.CUSTOM_BINARY_COPYABLE, privateEnterpriseNumber: NETBPF_PRIVATE_ENTERPRISE_NUMBER, data: encodeProcessData(process, this.little) })),
    };
    if (entry === undefined && this.#entries.size >= this.capacity) this.#entries.clear();
    this.#entries.set(pid, created);
    this.#last = created;
    return created;
  }
}

function sameBytes(known: Uint8Array, source: Uint8Array, start: number, length: number): boolean {
  if (known.length !== length) return false;
  for (let i = 0; i < length; i++) if (known[i] !== source[start + i]) return false;
  return true;
}

/** Builds option bytes; appends opt_endofopt when there is at least one option. */
export class OptionEncoder {
  private readonly parts: Buffer[] = [];
  private length = 0;

  constructor(private readonly little: boolean) {}

  add(code: number, value: Uint8Array): this {
    if (value.length > 0xffff) {
      throw new UsageError("write pcapng", `option ${code} value is ${value.length} bytes; pcapng options hold at most 65535`);
    }
    const header = Buffer.alloc(4);
    this.writeU16(header, code, 0);
    this.writeU16(header, value.length, 2);
    this.push(header);
    this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    const padding = padded(value.length) - value.length;
    if (padding > 0) this.push(Buffer.alloc(padding));
    return this;
  }

  string(code: number, value: string | undefined): this {
    return value === undefined ? this : this.add(code, Buffer.from(value, "utf8"));
  }

  strings(code: number, values: readonly string[] | undefined): this {
    for (const value of values ?? []) this.string(code, value);
    return this;
  }

  uint8(code: number, value: number | undefined): this {
    return value === undefined ? this : this.add(code, Buffer.of(value & 0xff));
  }

  uint32(code: number, value: number | undefined): this {
    if (value === undefined) return this;
    const bytes = Buffer.alloc(4);
    if (this.little) bytes.writeUInt32LE(value >>> 0);
    else bytes.writeUInt32BE(value >>> 0);
    return this.add(code, bytes);
  }

  int32(code: number, value: number | undefined): this {
    if (value === undefined) return this;
    const bytes = Buffer.alloc(4);
    if (this.little) bytes.writeInt32LE(value | 0);
    else bytes.writeInt32BE(value | 0);
    return this.add(code, bytes);
  }

  uint64(code: number, value: bigint | undefined): this {
    if (value === undefined) return this;
    const bytes = Buffer.alloc(8);
    if (this.little) bytes.writeBigUInt64LE(BigInt.asUintN(64, value));
    else bytes.writeBigUInt64BE(BigInt.asUintN(64, value));
    return this.add(code, bytes);
  }

  int64(code: number, value: bigint | undefined): this {
    if (value === undefined) return this;
    const bytes = Buffer.alloc(8);
    if (this.little) bytes.writeBigInt64LE(BigInt.asIntN(64, value));
    else bytes.writeBigInt64BE(BigInt.asIntN(64, value));
    return this.add(code, bytes);
  }

  /** A 64-bit value stored as high 32 bits then low 32 bits (pcapng timestamps). */
  splitUint64(code: number, value: bigint | undefined): this {
    if (value === undefined) return this;
    const bytes = Buffer.alloc(8);
    const high = Number((value >> 32n) & 0xffffffffn);
    const low = Number(value & 0xffffffffn);
    if (this.little) {
      bytes.writeUInt32LE(high, 0);
      bytes.writeUInt32LE(low, 4);
    } else {
      bytes.writeUInt32BE(high, 0);
      bytes.writeUInt32BE(low, 4);
    }
    return this.add(code, bytes);
  }

  custom(option: CustomOption): this {
    const value = Buffer.alloc(4 + option.data.length);
    if (this.little) value.writeUInt32LE(option.privateEnterpriseNumber >>> 0);
    else value.writeUInt32BE(option.privateEnterpriseNumber >>> 0);
    Buffer.from(option.data.buffer, option.data.byteOffset, option.data.byteLength).copy(value, 4);
    return this.add(option.code, value);
  }

  customs(options: readonly CustomOption[] | undefined): this {
    for (const option of options ?? []) this.custom(option);
    return this;
  }

  /** Appends options that are already encoded (code and raw value). */
  raw(options: readonly RawOption[] | undefined): this {
    for (const option of options ?? []) this.add(option.code, option.value);
    return this;
  }

  finish(): Buffer {
    if (this.length === 0) return Buffer.alloc(0);
    this.push(Buffer.alloc(4));
    return Buffer.concat(this.parts, this.length);
  }

  private push(part: Buffer): void {
    this.parts.push(part);
    this.length += part.length;
  }

  private writeU16(target: Buffer, value: number, at: number): void {
    if (this.little) target.writeUInt16LE(value, at);
    else target.writeUInt16BE(value, at);
  }
}
