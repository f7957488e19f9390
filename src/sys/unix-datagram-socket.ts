/**
 * AF_UNIX datagram sockets (SOCK_DGRAM), which Node's `dgram` does not
 * offer: the transport of the local syslog socket (/dev/log). Non-blocking:
 * a send that would wait reports "busy" instead.
 */
import { SyscallError, UsageError } from "./errors.js";
import { FileDescriptor } from "./file-descriptor.js";
import { check, lastErrno, libcBind, libcSendto, libcSocket } from "./libc.js";
import { AddressFamily, MessageFlag, receive, SocketType } from "./socket.js";

/** sun_path holds 108 bytes including the terminating NUL. */
const maximumPathBytes = 107;

function unixAddress(path: string, operation: string): Buffer {
  const bytes = Buffer.from(path, "utf8");
  if (bytes.length === 0 || bytes.length > maximumPathBytes || bytes.includes(0)) {
    throw new UsageError(operation, `unix socket path ${JSON.stringify(path)} must be 1 to ${maximumPathBytes} bytes`);
  }
  const address = Buffer.alloc(2 + 108);
  address.writeUInt16LE(AddressFamily.Unix, 0);
  bytes.copy(address, 2);
  return address;
}

export class UnixDatagramSocket {
  readonly #fd: FileDescriptor;

  private constructor(fd: number) {
    this.#fd = new FileDescriptor(fd);
  }

  /** An unbound socket for sending. */
  static create(): UnixDatagramSocket {
    const fd = check("create unix socket", libcSocket(AddressFamily.Unix, SocketType.Datagram | SocketType.NonBlock | SocketType.CloseOnExec, 0));
    return new UnixDatagramSocket(fd);
  }

  /** A socket bound to `path` (which must not exist), for receiving. */
  static bind(path: string): UnixDatagramSocket {
    const socket = UnixDatagramSocket.create();
    try {
      const address = unixAddress(path, "bind unix socket");
      check("bind unix socket", libcBind(socket.#fd.value, address, address.length));
    } catch (error) {
      socket.close();
      throw error;
    }
    return socket;
  }

  /**
   * Sends one datagram to the socket at `path`. Returns false when the
   * receiver's queue is full (EAGAIN); throws a SyscallError otherwise
   * (ENOENT, ECONNREFUSED: nobody listens there).
   */
  send(path: string, message: Buffer): boolean {
    const address = unixAddress(path, "send to unix socket");
    const result = libcSendto(this.#fd.value, message, message.length, MessageFlag.DontWait, address, address.length);
    if (result >= 0) return true;
    const errno = lastErrno();
    if (errno === 11) return false;
    throw new SyscallError(`send to unix socket ${path}`, errno);
  }

  /** One datagram, or undefined when none is waiting. */
  receive(maximumBytes = 65536): Buffer | undefined {
    const buffer = Buffer.alloc(maximumBytes);
    const length = receive(this.#fd.value, buffer, MessageFlag.DontWait, "receive from unix socket");
    return length < 0 ? undefined : buffer.subarray(0, length);
  }

  close(): void {
    this.#fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
