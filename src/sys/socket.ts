/**
 * Sockets: socket options for BPF, AF_PACKET
 * capture sockets, and the interface name ↔ index lookups.
 */
import { argumentError, expectInteger, expectObject, expectString } from "./argument-checks.js";
import { SyscallError, UsageError } from "./errors.js";
import { FileDescriptor } from "./file-descriptor.js";
import { check, lastErrno, libcBind, libcIfIndexToName, libcIfNameToIndex, libcRecvfrom, libcSetsockopt, libcSocket } from "./libc.js";

export const AddressFamily = { Unix: 1, Inet: 2, Inet6: 10, Netlink: 16, Packet: 17 } as const;
export const SocketType = { Stream: 1, Datagram: 2, Raw: 3, NonBlock: 0o4000, CloseOnExec: 0o2000000 } as const;
export const SocketLevel = { Socket: 1, Netlink: 270 } as const;
export const SocketOption = { ReceiveTimeout: 20, AttachFilter: 26, DetachFilter: 27, AttachBpf: 50, DetachBpf: 27 } as const;
export const MessageFlag = { DontWait: 0x40, Truncate: 0x20 } as const;
/** Ethernet protocol numbers used with AF_PACKET. */
export const EthernetProtocol = { All: 0x0003, IPv4: 0x0800, Arp: 0x0806, IPv6: 0x86dd } as const;

/** Interface index for a name or index; a clear UsageError when there is no such interface. */
/** `argument` names the value in errors (a caller's own option, such as "options.interface"). */
export function interfaceIndex(nameOrIndex: string | number, operation = "find interface", argument = "nameOrIndex"): number {
  expectString("find interface", "operation", operation);
  if (typeof nameOrIndex === "number") {
    expectInteger(operation, argument, nameOrIndex, 1, 0x7fff_ffff);
    if (interfaceName(nameOrIndex) === undefined) {
      throw new UsageError(operation, `no network interface with index ${nameOrIndex}`, "list interfaces with `ip link`");
    }
    return nameOrIndex;
  }
  if (typeof nameOrIndex !== "string") throw argumentError(operation, argument, "an interface name or index", nameOrIndex);
  if (nameOrIndex.length === 0 || nameOrIndex.length > 15) {
    throw new UsageError(operation, `no network interface named ${JSON.stringify(nameOrIndex)}`, "interface names are 1 to 15 characters; list them with `ip link`");
  }
  const index = libcIfNameToIndex(nameOrIndex);
  if (index === 0) throw new UsageError(operation, `no network interface named ${nameOrIndex}`, "list interfaces with `ip link`");
  return index;
}

/** The interface's name, or undefined when no interface has that index. */
export function interfaceName(index: number): string | undefined {
  expectInteger("name interface", "index", index, 0, 0x7fff_ffff);
  const buffer = Buffer.alloc(16);
  const result = libcIfIndexToName(index, buffer);
  if (result === null) return undefined;
  const end = buffer.indexOf(0);
  return buffer.toString("utf8", 0, end < 0 ? 16 : end);
}

export function setSocketOptionInt(fd: number, level: number, name: number, value: number, operation: string, hint?: string): void {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32LE(value);
  check(operation, libcSetsockopt(fd, level, name, buffer, 4), hint);
}

/** SO_RCVTIMEO: a blocking receive gives up (EAGAIN) after this long. */
export function setReceiveTimeout(fd: number, milliseconds: number): void {
  const timeval = Buffer.alloc(16);
  timeval.writeBigInt64LE(BigInt(Math.floor(milliseconds / 1000)), 0);
  timeval.writeBigInt64LE(BigInt((milliseconds % 1000) * 1000), 8);
  check("set receive timeout", libcSetsockopt(fd, SocketLevel.Socket, SocketOption.ReceiveTimeout, timeval, 16));
}

/**
 * recv(2). Returns the number of bytes, or -1 when a non-blocking socket has
 * nothing (EAGAIN); other failures throw.
 */
export function receive(fd: number, buffer: Buffer, flags = 0, operation = "receive"): number {
  const result = libcRecvfrom(fd, buffer, buffer.length, flags, null, null);
  if (result < 0) {
    const errno = lastErrno();
    if (errno === 11) return -1;
    throw new SyscallError(operation, errno);
  }
  return result;
}

/** A received frame from an AF_PACKET socket. */
export interface Packet {
  /** The frame, starting at the Ethernet header. */
  data: Buffer;
  /** The frame's full length on the wire (larger than data when truncated). */
  length: number;
  interfaceIndex: number;
  /** Ethernet protocol (host order). */
  protocol: number;
  /** PACKET_HOST (0), BROADCAST (1), MULTICAST (2), OTHERHOST (3), OUTGOING (4). */
  packetType: number;
}

export interface PacketSocketOptions {
  /** Bind to this interface (name or index); all interfaces when omitted. */
  interface?: string | number;
  /** Ethernet protocol to receive (default ETH_P_ALL). */
  protocol?: number;
  /** Largest frame to read; longer frames are truncated (default 65536). */
  snapshotLength?: number;
}

/** The largest frame a PacketSocket reads whole (the receive buffer's size). */
const maximumSnapshotLength = 262144;

function htons(value: number): number {
  return ((value & 0xff) << 8) | ((value >> 8) & 0xff);
}

/** A raw AF_PACKET socket bound to an interface, with non-blocking receive. */
export class PacketSocket {
  readonly fd: FileDescriptor;
  readonly interfaceIndex: number;
  readonly #buffer: Buffer;
  readonly #address = Buffer.alloc(20);

  private constructor(fd: number, interfaceIndex: number, snapshotLength: number) {
    expectInteger("construct PacketSocket", "fd", fd, 0);
    expectInteger("construct PacketSocket", "interfaceIndex", interfaceIndex, 0, 0x7fff_ffff);
    expectInteger("construct PacketSocket", "snapshotLength", snapshotLength, 1, maximumSnapshotLength);
    this.fd = new FileDescriptor(fd);
    this.interfaceIndex = interfaceIndex;
    this.#buffer = Buffer.alloc(snapshotLength);
  }

  static open(options: PacketSocketOptions = {}): PacketSocket {
    expectObject("open packet socket", "options", options);
    const protocol = expectInteger("open packet socket", "options.protocol", options.protocol ?? EthernetProtocol.All, 0, 0xffff);
    const snapshotLength = expectInteger("open packet socket", "options.snapshotLength", options.snapshotLength ?? 65536, 1, maximumSnapshotLength);
    const index = options.interface === undefined ? 0 : interfaceIndex(options.interface, "open packet socket", "options.interface");
    const fd = check("open packet socket", libcSocket(AddressFamily.Packet, SocketType.Raw | SocketType.NonBlock | SocketType.CloseOnExec, htons(protocol)),
      "packet sockets need root or CAP_NET_RAW");
    const socket = new PacketSocket(fd, index, snapshotLength);
    try {
      // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8]
      const address = Buffer.alloc(20);
      address.writeUInt16LE(AddressFamily.Packet, 0);
      address.writeUInt16BE(protocol, 2);
      address.writeInt32LE(index, 4);
      check("bind packet socket", libcBind(fd, address, address.length));
    } catch (error) {
      socket.close();
      throw error;
    }
    return socket;
  }

  /** The next queued frame, or undefined when none is waiting (never blocks). */
  receive(): Packet | undefined {
    const alen = [this.#address.length];
    const result = libcRecvfrom(this.fd.value, this.#buffer, this.#buffer.length, MessageFlag.Truncate, this.#address, alen);
    if (result < 0) {
      const errno = lastErrno();
      if (errno === 11) return undefined;
      throw new SyscallError("receive from packet socket", errno);
    }
    return {
      data: Buffer.from(this.#buffer.subarray(0, Math.min(result, this.#buffer.length))),
      length: result,
      protocol: this.#address.readUInt16BE(2),
      interfaceIndex: this.#address.readInt32LE(4),
      packetType: this.#address.readUInt8(10),
    };
  }

  /** Every frame queued right now. */
  drain(): Packet[] {
    const packets: Packet[] = [];
    for (let packet = this.receive(); packet; packet = this.receive()) packets.push(packet);
    return packets;
  }

  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export function openPacketSocket(options: PacketSocketOptions = {}): PacketSocket {
  return PacketSocket.open(options);
}
