import { Socket as DatagramSocket } from "node:dgram";
import { expectProgram, type Program } from "../core/program.js";
import { expectInteger } from "../sys/argument-checks.js";
import { ProgramType } from "../sys/bpf-constants.js";
import { SyscallError, UsageError } from "../sys/errors.js";
import { setSocketOptionInt, SocketLevel, SocketOption } from "../sys/socket.js";
import { Link } from "./link.js";

/** A socket given as a raw descriptor, a net.Socket / net.Server, or a dgram.Socket. */
export type SocketLike = number | object;

interface HandleOwner {
  _handle?: { fd?: unknown } | null;
}

/**
 * The descriptor under a Node socket. net.Socket and net.Server keep their
 * libuv handle in `_handle`; dgram.Socket keeps it in a symbol-keyed state
 * object (`state.handle`). Both handles expose `fd` on Unix once the socket
 * exists (for dgram: after bind()).
 */
export function socketDescriptor(socket: SocketLike, operation = "find socket descriptor"): number {
  if (typeof socket === "number") {
    if (!Number.isInteger(socket) || socket < 0) throw new UsageError(operation, `a socket descriptor must be a non-negative integer, got ${socket}`);
    return socket;
  }
  if (socket === null || typeof socket !== "object") {
    throw new UsageError(operation, `expected a socket descriptor, net.Socket, net.Server or dgram.Socket, got ${socket === null ? "null" : typeof socket}`);
  }
  // dgram.Socket's _handle is a deprecated accessor that warns on use (DEP0112); its handle is in the state object.
  const candidates: unknown[] = socket instanceof DatagramSocket ? [] : [(socket as HandleOwner)._handle];
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    const state = (socket as Record<symbol, unknown>)[symbol];
    if (state && typeof state === "object" && "handle" in state) candidates.push((state as { handle: unknown }).handle);
  }
  for (const handle of candidates) {
    const fd = (handle as { fd?: unknown } | null | undefined)?.fd;
    if (typeof fd === "number" && fd >= 0) return fd;
  }
  throw new UsageError(operation, "cannot find the file descriptor of this socket",
    "bind (dgram) or connect/listen (net) the socket first, or pass its descriptor number; Windows-style handles have none");
}

/** A program attached to one socket with SO_ATTACH_BPF. close() detaches it (SO_DETACH_BPF). */
export class SocketFilterLink extends Link {
  readonly socketDescriptor: number;
  readonly #socket: SocketLike;

  /** @internal */
  constructor(socket: SocketLike, fd: number) {
    expectInteger("construct SocketFilterLink", "fd", fd, 0);
    super(undefined, `socket filter on descriptor ${fd}`);
    this.#socket = socket;
    this.socketDescriptor = fd;
  }

  /** Replaces the socket's filter with another program. */
  override update(program: Program): void {
    checkSocketFilterProgram(program, `update ${this.description}`);
    if (this.closed) throw new UsageError(`update ${this.description}`, "the link is closed");
    attachToDescriptor(program, this.socketDescriptor);
  }

  protected override release(): void {
    // A Node socket that was closed since has no descriptor any more (and the number may now belong to another file).
    if (typeof this.#socket === "object") {
      try {
        if (socketDescriptor(this.#socket) !== this.socketDescriptor) return;
      } catch {
        return;
      }
    }
    try {
      setSocketOptionInt(this.socketDescriptor, SocketLevel.Socket, SocketOption.DetachBpf, 0, `detach ${this.description}`);
    } catch (error) {
      // ENOENT: no filter any more; EBADF/ENOTSOCK: the socket is gone.
      if (!(error instanceof SyscallError && ["ENOENT", "EBADF", "ENOTSOCK"].includes(error.code))) throw error;
    }
  }
}

function checkSocketFilterProgram(program: Program, operation: string): void {
  expectProgram(operation, program);
  if (program.type !== ProgramType.SocketFilter) {
    throw new UsageError(operation, `a socket filter must be of type SocketFilter, not ${ProgramType[program.type] ?? program.type}`, "load it with type ProgramType.SocketFilter");
  }
}

function attachToDescriptor(program: Program, fd: number): void {
  setSocketOptionInt(fd, SocketLevel.Socket, SocketOption.AttachBpf, program.fd.value, `attach socket filter to descriptor ${fd}`);
}

/**
 * Attaches a SocketFilter program to a socket: the program sees every packet
 * the socket would receive and returns how many bytes to keep (0 drops it).
 */
export function attachSocketFilter(program: Program, socket: SocketLike): SocketFilterLink {
  const operation = "attach socket filter";
  checkSocketFilterProgram(program, operation);
  const fd = socketDescriptor(socket, operation);
  try {
    attachToDescriptor(program, fd);
  } catch (error) {
    if (error instanceof SyscallError && error.code === "ENOTSOCK") throw new UsageError(operation, `descriptor ${fd} is not a socket`);
    throw error;
  }
  return new SocketFilterLink(socket, fd);
}
