/**
 * The one place that loads libc through the FFI. Everything else in `sys`
 * calls these bindings; nothing outside `sys` imports koffi (loaded by koffi.ts).
 */
import { koffi } from "./koffi.js";
import { arch } from "node:process";
import { SyscallError } from "./errors.js";

const libc = koffi.load("libc.so.6");

const syscallNumbers: Record<string, { bpf: number; perfEventOpen: number }> = {
  x64: { bpf: 321, perfEventOpen: 298 },
  arm64: { bpf: 280, perfEventOpen: 241 },
};

const numbers = syscallNumbers[arch];
if (!numbers) throw new Error(`netbpf supports x86_64 and arm64 Linux, not ${arch}`);
export const syscallNumber = numbers;

type Pointer = Buffer | null;

// glibc's syscall() is variadic but reads its arguments from registers; on
// x86_64 and arm64 a fixed prototype passes them the same way.
const rawSyscall = libc.func("long syscall(long nr, long a1, void *a2, long a3, long a4, long a5)") as (
  nr: number, a1: number, a2: Pointer, a3: number, a4: number, a5: number,
) => number;

/** syscall() for calls whose first argument is a pointer (perf_event_open). */
export const libcSyscallPointer = libc.func("syscall", "long", ["long", "void *", "long", "long", "long", "long"]) as (
  nr: number, a1: Buffer, a2: number, a3: number, a4: number, a5: number,
) => number;

const memcpyAddress = libc.func("uintptr_t memcpy(void *d, void *s, size_t n)") as (d: Buffer, s: Buffer, n: number) => number | bigint;

export const libcRecvfrom = libc.func("long recvfrom(int fd, void *buf, size_t len, int flags, void *addr, _Inout_ uint32_t *alen)") as (
  fd: number, buf: Buffer, len: number, flags: number, addr: Buffer | null, alen: number[] | null,
) => number;
export const libcMount = libc.func("int mount(const char *source, const char *target, const char *type, unsigned long flags, const char *data)") as (
  source: string, target: string, type: string, flags: number, data: string | null,
) => number;
export const libcClose = libc.func("int close(int fd)") as (fd: number) => number;
export const libcRead = libc.func("long read(int fd, void *buf, size_t n)") as (fd: number, buf: Buffer, n: number) => number;
export const libcWrite = libc.func("long write(int fd, void *buf, size_t n)") as (fd: number, buf: Buffer, n: number) => number;
export const libcMmap = libc.func("void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)") as (
  addr: null, len: number, prot: number, flags: number, fd: number, offset: number,
) => unknown;
export const libcMunmap = libc.func("int munmap(void *addr, size_t len)") as (addr: unknown, len: number) => number;
export const libcIoctl = libc.func("int ioctl(int fd, unsigned long req, long arg)") as (fd: number, request: number, arg: number) => number;
export const libcIoctlPointer = libc.func("ioctl", "int", ["int", "unsigned long", "void *"]) as (fd: number, request: number, arg: Buffer) => number;
export const libcSocket = libc.func("int socket(int domain, int type, int protocol)") as (d: number, t: number, p: number) => number;
export const libcSetsockopt = libc.func("int setsockopt(int fd, int level, int name, void *value, uint32_t len)") as (
  fd: number, level: number, name: number, value: Buffer, len: number,
) => number;
export const libcGetsockopt = libc.func("int getsockopt(int fd, int level, int name, void *value, _Inout_ uint32_t *len)") as (
  fd: number, level: number, name: number, value: Buffer, len: number[],
) => number;
export const libcBind = libc.func("int bind(int fd, void *addr, uint32_t len)") as (fd: number, addr: Buffer, len: number) => number;
export const libcSendto = libc.func("long sendto(int fd, void *buf, size_t len, int flags, void *addr, uint32_t alen)") as (
  fd: number, buf: Buffer, len: number, flags: number, addr: Buffer | null, alen: number,
) => number;
export const libcRecv = libc.func("long recv(int fd, void *buf, size_t len, int flags)") as (fd: number, buf: Buffer, len: number, flags: number) => number;
export const libcIfNameToIndex = libc.func("unsigned int if_nametoindex(const char *name)") as (name: string) => number;
export const libcIfIndexToName = libc.func("char *if_indextoname(unsigned int index, _Out_ char *name)") as (index: number, name: Buffer) => string | null;
export const libcEpollCreate1 = libc.func("int epoll_create1(int flags)") as (flags: number) => number;
export const libcEpollCtl = libc.func("int epoll_ctl(int epfd, int op, int fd, void *event)") as (epfd: number, op: number, fd: number, event: Buffer | null) => number;
const epollWait = libc.func("int epoll_wait(int epfd, void *events, int max, int timeout)");
export const libcEpollWait = epollWait as (epfd: number, events: Buffer, max: number, timeout: number) => number;
/** Runs epoll_wait on a worker thread so the event loop stays free while the reader sleeps in the kernel. */
export function epollWaitAsync(epfd: number, events: Buffer, max: number, timeout: number): Promise<number> {
  return new Promise((resolve, reject) => {
    (epollWait as unknown as { async: Function }).async(epfd, events, max, timeout, (error: Error | null, result: number) => {
      if (error) reject(error);
      else resolve(errnoAfter(result));
    });
  });
}
export const libcEventfd = libc.func("int eventfd(unsigned int initval, int flags)") as (initval: number, flags: number) => number;
export const libcGetpid = libc.func("int getpid(void)") as () => number;
export const libcSetns = libc.func("int setns(int fd, int nstype)") as (fd: number, nstype: number) => number;

/** errno of the last failed FFI call on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

// epoll_wait's errno is read on the worker thread by koffi; a negative result
// is mapped to -errno by the caller through this marker.
function errnoAfter(result: number): number {
  return result < 0 ? -koffi.errno() : result;
}

/** The address of a Buffer's memory, for pointer fields inside attribute structs. */
export function addressOf(buffer: Buffer): bigint {
  if (buffer.length === 0) return 0n;
  return BigInt(memcpyAddress(buffer, buffer, 0));
}

/** A direct view of memory that the kernel mapped for us (no copy). */
export function viewOf(pointer: unknown, length: number): ArrayBuffer {
  return koffi.view(pointer, length);
}

export function pointerAddress(pointer: unknown): bigint {
  return koffi.address(pointer);
}

/** syscall(nr, …) returning the result or throwing a SyscallError with the errno. */
export function syscall(operation: string, nr: number, a1: number, a2: Pointer, a3: number, a4 = 0, a5 = 0, hint?: (code: string) => string | undefined): number {
  const result = rawSyscall(nr, a1, a2, a3, a4, a5);
  if (result < 0) {
    const errno = koffi.errno();
    throw new SyscallError(operation, errno, hint?.(new SyscallError(operation, errno).code));
  }
  return result;
}

/** Throws a SyscallError for a libc call that returned -1. */
export function check(operation: string, result: number, hint?: string): number {
  if (result < 0) throw new SyscallError(operation, koffi.errno(), hint);
  return result;
}
export const libcFlock = libc.func("int flock(int fd, int operation)") as (fd: number, operation: number) => number;
