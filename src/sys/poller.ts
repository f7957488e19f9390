/**
 * Readiness waiting for event readers, built on one epoll instance.
 *
 * epoll_wait blocks, so it runs on a worker thread of libuv's pool (through
 * koffi's async calls); that pool is small (UV_THREADPOOL_SIZE, 4 by
 * default) and shared with fs, dns and crypto. A Poller therefore keeps at
 * most ONE epoll_wait in flight however many readers wait, and none at all
 * while nobody waits: when the last waiter leaves (abort, close) an eventfd
 * wakes the blocked worker so the thread goes back to the pool.
 *
 * Every watched fd is registered EPOLLONESHOT and re-armed by each wait(),
 * so a ready fd that nobody is waiting for cannot spin the loop.
 */
import { arch } from "node:process";
import { NetbpfError, SyscallError, UsageError } from "./errors.js";
import { FileDescriptor } from "./file-descriptor.js";
import { check, epollWaitAsync, lastErrno, libcEpollCreate1, libcEpollCtl, libcEpollWait, libcEventfd, libcRead, libcWrite } from "./libc.js";

const epollIn = 0x1;
const epollOneShot = 1 << 30;
const epollCtlAdd = 1;
const epollCtlDelete = 2;
const epollCtlModify = 3;
const closeOnExec = 0x80000;
const eventfdNonBlocking = 0x800;

// struct epoll_event is packed on x86_64 (12 bytes) and naturally aligned elsewhere (16 bytes).
const eventSize = arch === "x64" ? 12 : 16;
const dataOffset = arch === "x64" ? 4 : 8;
const eventCapacity = 64;
const wakeToken = 0;
/** Consecutive failed epoll_waits after which waiters are told instead of retrying. */
const maximumFailures = 16;

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
  detach(): void;
}

/** One reader's set of file descriptors: wait() resolves when any of them is readable. */
export class Readiness {
  readonly #poller: Poller;
  readonly #token: number;
  readonly #fds: number[];
  readonly #hasData: (() => boolean) | undefined;
  #registered = false;
  #waiter: Waiter | undefined;
  #closed = false;

  /** @internal created by Poller.watch() */
  constructor(poller: Poller, token: number, fds: number[], hasData?: () => boolean) {
    this.#poller = poller;
    this.#token = token;
    this.#fds = fds;
    this.#hasData = hasData;
  }

  get waiting(): boolean {
    return this.#waiter !== undefined;
  }

  /**
   * Resolves when one of the fds is readable; rejects with the signal's
   * reason on abort, or with an error when the watch is closed meanwhile.
   * One wait at a time per Readiness.
   */
  wait(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(new NetbpfError("wait for events", "the reader is closed", "do not use a reader after close()"));
    if (this.#waiter) return Promise.reject(new UsageError("wait for events", "a wait is already pending on this reader", "an event reader has one consumer; do not iterate it twice at once"));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.#waiter !== waiter) return;
        this.#settle();
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve,
        reject,
        detach: () => signal?.removeEventListener("abort", onAbort),
      };
      try {
        this.#arm();
        // Arming polls the fd; for perf events that poll consumes the readiness,
        // so data that arrived just before must be looked for directly.
        if (this.#hasData?.()) {
          resolve();
          return;
        }
      } catch (error) {
        reject(error);
        return;
      }
      this.#waiter = waiter;
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#poller.waiterAdded();
    });
  }

  #arm(): void {
    const operation = this.#registered ? epollCtlModify : epollCtlAdd;
    for (const fd of this.#fds) this.#poller.control(operation, fd, epollIn | epollOneShot, this.#token);
    this.#registered = true;
  }

  #settle(): Waiter | undefined {
    const waiter = this.#waiter;
    if (!waiter) return undefined;
    this.#waiter = undefined;
    waiter.detach();
    this.#poller.waiterRemoved();
    return waiter;
  }

  /** @internal called by the poller when an fd of this watch fired. */
  ready(): void {
    this.#settle()?.resolve();
  }

  /** @internal called by the poller when waiting cannot continue. */
  fail(error: unknown): void {
    this.#settle()?.reject(error);
  }

  /** Stops watching; a pending wait rejects. The fds themselves stay open (their owner closes them). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#settle()?.reject(new NetbpfError("wait for events", "the reader was closed while waiting"));
    if (this.#registered) {
      for (const fd of this.#fds) this.#poller.control(epollCtlDelete, fd, 0, 0, true);
    }
    this.#poller.forget(this.#token);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * An epoll instance with a dispatcher. Use Poller.shared() (one per
 * process); a private Poller is only useful for tests or isolation.
 */
export class Poller {
  static #shared: Poller | undefined;

  /** The process-wide poller that every reader uses unless told otherwise. */
  static shared(): Poller {
    if (!Poller.#shared || Poller.#shared.closed) Poller.#shared = new Poller();
    return Poller.#shared;
  }

  readonly #epoll: FileDescriptor;
  readonly #wake: FileDescriptor;
  readonly #watches = new Map<number, Readiness>();
  readonly #events = Buffer.alloc(eventSize * eventCapacity);
  readonly #counter = Buffer.alloc(8);
  #nextToken = wakeToken + 1;
  #waiting = 0;
  #inFlight = false;
  #woken = false;
  #failures = 0;
  #closed = false;
  /** epoll_wait calls that returned (for tests: an idle reader must not spin). */
  wakeups = 0;

  constructor() {
    this.#epoll = new FileDescriptor(check("epoll_create1", libcEpollCreate1(closeOnExec)));
    try {
      this.#wake = new FileDescriptor(check("eventfd", libcEventfd(0, closeOnExec | eventfdNonBlocking)));
    } catch (error) {
      this.#epoll.close();
      throw error;
    }
    this.control(epollCtlAdd, this.#wake.value, epollIn, wakeToken);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Number of waits pending right now. */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * Watches `fds` for readability. `hasData`, when given, is asked after
   * every arming: a wait resolves at once when it returns true. Give it for
   * fds whose poll is edge-like (perf events clear their readiness when
   * polled); ring buffer maps report readiness from their positions and
   * need none.
   */
  watch(fds: readonly number[], hasData?: () => boolean): Readiness {
    if (this.#closed) throw new NetbpfError("watch file descriptors", "the poller is closed");
    if (fds.length === 0) throw new UsageError("watch file descriptors", "no file descriptors given");
    const token = this.#nextToken++;
    const readiness = new Readiness(this, token, [...fds], hasData);
    this.#watches.set(token, readiness);
    return readiness;
  }

  /** @internal */
  control(operation: number, fd: number, events: number, token: number, ignoreErrors = false): void {
    const event = Buffer.alloc(eventSize);
    event.writeUInt32LE(events >>> 0, 0);
    event.writeBigUInt64LE(BigInt(token), dataOffset);
    const result = libcEpollCtl(this.#epoll.value, operation, fd, event);
    if (result < 0 && !ignoreErrors) {
      throw new SyscallError("epoll_ctl", lastErrno(), "the file descriptor may be closed; close the reader before its map");
    }
  }

  /** @internal */
  forget(token: number): void {
    this.#watches.delete(token);
  }

  /** @internal */
  waiterAdded(): void {
    this.#waiting++;
    this.#run();
  }

  /** @internal */
  waiterRemoved(): void {
    this.#waiting--;
    if (this.#waiting === 0 && this.#inFlight) this.#wakeWorker();
  }

  #wakeWorker(): void {
    if (this.#woken) return;
    this.#woken = true;
    this.#counter.writeBigUInt64LE(1n);
    libcWrite(this.#wake.value, this.#counter, 8);
  }

  #run(): void {
    if (this.#inFlight || this.#waiting === 0 || this.#closed) return;
    this.#inFlight = true;
    epollWaitAsync(this.#epoll.value, this.#events, eventCapacity, -1).then(
      (count) => this.#completed(count),
      (error: unknown) => this.#completed(-1, error),
    );
  }

  #completed(count: number, asyncError?: unknown): void {
    this.#inFlight = false;
    this.wakeups++;
    if (this.#closed) {
      this.#release();
      return;
    }
    if (asyncError !== undefined) {
      for (const watch of [...this.#watches.values()]) watch.fail(asyncError);
      return;
    }
    if (count < 0) {
      // errno of a call on the worker thread cannot be read here: ask again
      // without blocking, on this thread, where errno is reliable.
      count = libcEpollWait(this.#epoll.value, this.#events, eventCapacity, 0);
      if (count < 0) {
        const errno = lastErrno();
        if (++this.#failures >= maximumFailures || (errno !== 4 && errno !== 0)) {
          const error = new SyscallError("epoll_wait", errno);
          for (const watch of [...this.#watches.values()]) watch.fail(error);
          this.#failures = 0;
          return;
        }
        count = 0;
      } else {
        this.#failures = 0;
      }
    } else {
      this.#failures = 0;
    }
    for (let i = 0; i < count; i++) {
      const token = Number(this.#events.readBigUInt64LE(i * eventSize + dataOffset));
      if (token === wakeToken) {
        libcRead(this.#wake.value, this.#counter, 8);
        this.#woken = false;
        continue;
      }
      this.#watches.get(token)?.ready();
    }
    this.#run();
  }

  /** Closes the epoll instance; pending waits reject. */
  close(): void {
    if (this.#closed) return;
    for (const watch of [...this.#watches.values()]) watch.close();
    this.#closed = true;
    if (this.#inFlight) this.#wakeWorker();
    else this.#release();
  }

  #release(): void {
    this.#wake.close();
    this.#epoll.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
