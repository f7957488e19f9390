/**
 * A small rtnetlink (NETLINK_ROUTE) client: message building with nested
 * attributes, requests acknowledged by the kernel, dumps, and NLMSG_ERROR
 * turned into a SyscallError that carries the kernel's extended ack message.
 */
import { SyscallError } from "./errors.js";
import { FileDescriptor } from "./file-descriptor.js";
import { check, libcBind, libcSendto, libcSocket } from "./libc.js";
import { AddressFamily, receive, setReceiveTimeout, setSocketOptionInt, SocketLevel, SocketType } from "./socket.js";

export const NetlinkFlag = {
  Request: 0x1,
  Multi: 0x2,
  Ack: 0x4,
  Echo: 0x8,
  Dump: 0x300,
  Replace: 0x100,
  Exclusive: 0x200,
  Create: 0x400,
  Append: 0x800,
  /** In an ACK: the original request was not copied back. */
  Capped: 0x100,
  /** In an ACK: extended-ack attributes follow. */
  AckAttributes: 0x200,
} as const;

export const NetlinkMessageType = { Noop: 1, Error: 2, Done: 3, Overrun: 4 } as const;

export const RouteMessageType = {
  NewLink: 16, DeleteLink: 17, GetLink: 18,
  NewQdisc: 36, DeleteQdisc: 37, GetQdisc: 38,
  NewFilter: 44, DeleteFilter: 45, GetFilter: 46,
  NewRoute: 24, GetRoute: 26,
} as const;

const netlinkRoute = 0;
const netlinkExtendedAck = 11;
const netlinkCapAck = 10;
const nestedFlag = 0x8000;
const headerSize = 16;
const extendedAckMessage = 1;

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Builds the attribute part of a netlink message (type-length-value, 4-byte aligned, nestable). */
export class AttributeWriter {
  #chunks: Buffer[] = [];
  #length = 0;

  #push(buffer: Buffer): this {
    this.#chunks.push(buffer);
    this.#length += buffer.length;
    return this;
  }

  raw(type: number, value: Buffer): this {
    const length = 4 + value.length;
    const buffer = Buffer.alloc(align4(length));
    buffer.writeUInt16LE(length, 0);
    buffer.writeUInt16LE(type, 2);
    value.copy(buffer, 4);
    return this.#push(buffer);
  }

  u8(type: number, value: number): this {
    return this.raw(type, Buffer.from([value]));
  }

  u16(type: number, value: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(value);
    return this.raw(type, b);
  }

  u32(type: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0);
    return this.raw(type, b);
  }

  /** A NUL-terminated string. */
  string(type: number, value: string): this {
    return this.raw(type, Buffer.from(value + "\0", "utf8"));
  }

  nested(type: number, build: (writer: AttributeWriter) => void): this {
    const inner = new AttributeWriter();
    build(inner);
    return this.raw(type | nestedFlag, inner.toBuffer());
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#chunks, this.#length);
  }
}

/** Attributes of a message, by type; nested ones can be parsed again with parseAttributes. */
export type Attributes = Map<number, Buffer>;

export function parseAttributes(buffer: Buffer, offset = 0, end = buffer.length): Attributes {
  const attributes: Attributes = new Map();
  while (offset + 4 <= end) {
    const length = buffer.readUInt16LE(offset);
    const type = buffer.readUInt16LE(offset + 2) & ~nestedFlag & 0xffff;
    if (length < 4 || offset + length > end) break;
    if (!attributes.has(type)) attributes.set(type, buffer.subarray(offset + 4, offset + length));
    offset += align4(length);
  }
  return attributes;
}

export function attributeString(value: Buffer | undefined): string | undefined {
  if (!value) return undefined;
  const end = value.indexOf(0);
  return value.toString("utf8", 0, end < 0 ? value.length : end);
}

/** One message received from the kernel. */
export interface NetlinkMessage {
  type: number;
  flags: number;
  sequence: number;
  /** The payload after the netlink header (family header + attributes). */
  payload: Buffer;
}

export interface RequestOptions {
  /** What is being done, for error messages (e.g. "add clsact qdisc to veth0"). */
  operation: string;
  /** Hints keyed by errno name, used when the kernel refuses. */
  hints?: Partial<Record<string, string>>;
}

/** A NETLINK_ROUTE socket in the network namespace of the thread that opened it. */
export class RouteNetlink {
  readonly fd: FileDescriptor;
  #sequence = Math.floor(Math.random() * 0x7fffffff);
  readonly #buffer = Buffer.alloc(1 << 16);

  private constructor(fd: number) {
    this.fd = new FileDescriptor(fd);
  }

  static open(): RouteNetlink {
    const fd = check("open netlink socket", libcSocket(AddressFamily.Netlink, SocketType.Raw | SocketType.CloseOnExec, netlinkRoute));
    const socket = new RouteNetlink(fd);
    try {
      const address = Buffer.alloc(12);
      address.writeUInt16LE(AddressFamily.Netlink, 0);
      check("bind netlink socket", libcBind(fd, address, address.length));
      // Extended acks carry the kernel's reason as text; capped acks keep replies small.
      try {
        setSocketOptionInt(fd, SocketLevel.Netlink, netlinkExtendedAck, 1, "enable netlink extended ack");
        setSocketOptionInt(fd, SocketLevel.Netlink, netlinkCapAck, 1, "enable netlink capped ack");
      } catch {
        // Older kernels: plain acks still work.
      }
      // Replies to requests are queued before sendto returns; the timeout only guards against a kernel that never answers.
      setReceiveTimeout(fd, 5000);
    } catch (error) {
      socket.close();
      throw error;
    }
    return socket;
  }

  #send(type: number, flags: number, payload: Buffer, operation: string): number {
    const sequence = (this.#sequence = (this.#sequence + 1) & 0x7fffffff);
    const message = Buffer.alloc(headerSize + payload.length);
    message.writeUInt32LE(message.length, 0);
    message.writeUInt16LE(type, 4);
    message.writeUInt16LE(flags, 6);
    message.writeUInt32LE(sequence, 8);
    message.writeUInt32LE(0, 12);
    payload.copy(message, headerSize);
    const kernel = Buffer.alloc(12);
    kernel.writeUInt16LE(AddressFamily.Netlink, 0);
    const sent = libcSendto(this.fd.value, message, message.length, 0, kernel, kernel.length);
    check(operation, sent);
    return sequence;
  }

  /** Messages that answer `sequence`, until an ACK/error (requests) or NLMSG_DONE (dumps). */
  #collect(sequence: number, options: RequestOptions, dump: boolean): NetlinkMessage[] {
    const messages: NetlinkMessage[] = [];
    for (;;) {
      const length = receive(this.fd.value, this.#buffer, 0, options.operation);
      if (length < 0) {
        throw new SyscallError(options.operation, 110, "the kernel did not answer the netlink request within 5 s", "no netlink reply");
      }
      let offset = 0;
      while (offset + headerSize <= length) {
        const messageLength = this.#buffer.readUInt32LE(offset);
        if (messageLength < headerSize || offset + messageLength > length) break;
        const type = this.#buffer.readUInt16LE(offset + 4);
        const flags = this.#buffer.readUInt16LE(offset + 6);
        const messageSequence = this.#buffer.readUInt32LE(offset + 8);
        const payload = Buffer.from(this.#buffer.subarray(offset + headerSize, offset + messageLength));
        offset += align4(messageLength);
        if (messageSequence !== sequence) continue;
        if (type === NetlinkMessageType.Error) {
          const errno = -payload.readInt32LE(0);
          if (errno === 0) {
            if (!dump) return messages;
            continue;
          }
          throw netlinkError(options, errno, flags, payload);
        }
        if (type === NetlinkMessageType.Done) {
          // A dump that failed part-way says so in NLMSG_DONE's payload.
          const status = payload.length >= 4 ? payload.readInt32LE(0) : 0;
          if (status < 0) throw netlinkError(options, -status, flags, payload);
          return messages;
        }
        messages.push({ type, flags, sequence: messageSequence, payload });
      }
    }
  }

  /** Sends a request that the kernel acknowledges; returns any messages it echoed first. */
  request(type: number, flags: number, payload: Buffer, options: RequestOptions): NetlinkMessage[] {
    const sequence = this.#send(type, flags | NetlinkFlag.Request | NetlinkFlag.Ack, payload, options.operation);
    return this.#collect(sequence, options, false);
  }

  /** A dump request: every message up to NLMSG_DONE. */
  dump(type: number, payload: Buffer, options: RequestOptions): NetlinkMessage[] {
    const sequence = this.#send(type, NetlinkFlag.Request | NetlinkFlag.Dump, payload, options.operation);
    return this.#collect(sequence, options, true);
  }

  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function netlinkError(options: RequestOptions, errno: number, flags: number, payload: Buffer): SyscallError {
  let text: string | undefined;
  if (flags & NetlinkFlag.AckAttributes) {
    // struct nlmsgerr: int error; struct nlmsghdr msg (+ the request unless capped); then the TLVs.
    const requestLength = payload.length >= 4 + headerSize ? payload.readUInt32LE(4) : headerSize;
    const start = 4 + (flags & NetlinkFlag.Capped ? headerSize : align4(requestLength));
    text = attributeString(parseAttributes(payload, start).get(extendedAckMessage));
  }
  const probe = new SyscallError(options.operation, errno);
  const hint = options.hints?.[probe.code];
  return new SyscallError(options.operation, errno, hint, text ? `the kernel says "${text.trim()}"` : undefined);
}
