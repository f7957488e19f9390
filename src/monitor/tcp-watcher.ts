/**
 * watchTcp(): the life of every TCP connection on this host — connect,
 * accept, every state change, retransmissions, resets and close — as an
 * async iterable of events, from stable tracepoints (see
 * src/programs/tcp-state-events.ts for the programs) and struct offsets
 * from the running kernel's BTF. Documented in docs/monitor-tcp.md.
 *
 *   const watcher = watchTcp({ localPorts: [8080], signal });
 *   for await (const event of watcher) if (event.type === "close") console.log(event);
 */
import { kernelBtfFacts } from "../btf/kernel-btf-cache.js";
import { BpfMap } from "../core/map.js";
import { Program } from "../core/program.js";
import { u32, u64 } from "../core/codec.js";
import type { Link } from "../link/link.js";
import { attachTracepoint } from "../link/tracepoint.js";
import { formatIpv4, formatIpv6 } from "../pcap/address-text.js";
import {
  decodeTcpRecord,
  readTcpTracepointFormats,
  tcpAcceptProgram,
  tcpConnectionsName,
  tcpEventRingName,
  tcpKernelOffsets,
  type TcpKernelOffsets,
  type TcpEmitOptions,
  tcpLostName,
  TcpRecordKind,
  tcpRecordLayout,
  tcpDestroyProgram,
  tcpResetSentProgram,
  TcpRole,
  tcpSocketEventProgram,
  tcpStateChangeProgram,
  tcpStateNames,
  type TcpRecord,
} from "../programs/tcp-state-events.js";
import { isTcpKernelOffsets } from "../programs/tcp-kernel-offsets.js";
import { RingBufferReader } from "../ringbuf/ring-buffer-reader.js";
import { MapFlag, MapType, ProgramType } from "../sys/bpf-constants.js";
import { argumentError, expectArray, expectBoolean, expectFunction, expectInstance, expectInteger, expectObject, expectPorts } from "../sys/argument-checks.js";
import { UsageError, VerifierError } from "../sys/errors.js";

/**
 * - `state`: a state change (tcpstates); `oldState` → `state`.
 * - `open`: the connection reached ESTABLISHED (from SYN_SENT: outgoing, with
 *   `connectLatencyMilliseconds`; from SYN_RECV: incoming).
 * - `accept`: a process accepted an incoming connection (`pid` is the acceptor).
 * - `listen`: a socket began listening (reached LISTEN; `pid` is the listener).
 * - `close`: the connection reached CLOSE: the summary (tcplife) with
 *   duration, bytes, RTT, retransmissions and resets.
 * - `retransmit`: a segment was retransmitted (tcpretrans).
 * - `reset`: a RST was sent or received (`resetDirection`).
 */
export type TcpEventType = "state" | "open" | "accept" | "close" | "retransmit" | "reset" | "listen";

export const tcpEventTypes: readonly TcpEventType[] = ["state", "open", "accept", "close", "retransmit", "reset", "listen"];

/** TCP state names as the kernel's tracepoints print them, without "TCP_". */
export const tcpStates: readonly string[] = Object.values(tcpStateNames);

/**
 * One event. Every field is always present (null where it does not apply or
 * is unknown), so the JSON form has stable field names.
 */
export interface TcpEvent {
  type: TcpEventType;
  /** When it happened, ns since boot (CLOCK_MONOTONIC, like bpf_ktime_get_ns). */
  timestamp: bigint;
  /** When it happened, wall clock (from `timestamp`, ms resolution). */
  time: Date;
  /** The kernel's socket address (hex): identifies the connection while it lives. */
  socket: string;
  /**
   * The process: for outgoing connections the one that called connect(); for
   * incoming ones the one that accepted it (null until accept()); for
   * listeners the one that called listen(). Null when unknown (e.g. the
   * connection began before watching).
   */
  pid: number | null;
  command: string | null;
  /** The parent process id of the process at `pid`, read in the kernel with it (null when `pid` is, or unknown). */
  parentPid: number | null;
  /** The user id of the process at `pid` (null when `pid` is). */
  uid: number | null;
  /** The cgroup v2 id (decimal; the inode of its cgroup folder) of the process at `pid` (null when `pid` is). */
  cgroupId: string | null;
  /** "active" (we connected), "passive" (we accepted), "listener", or null (began before watching). */
  role: "active" | "passive" | "listener" | null;
  family: "ipv4" | "ipv6";
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** The state after the event (for retransmit/reset: the state at the time). */
  state: string;
  /** The state before a state change; null for other types. */
  oldState: string | null;
  /** From SYN_SENT / SYN_RECV to this event; null if the connection began before watching. */
  durationMilliseconds: number | null;
  /** SYN_SENT → ESTABLISHED of an outgoing connection; null otherwise or before. */
  connectLatencyMilliseconds: number | null;
  /** Payload bytes sent and acknowledged by the peer (tcp_sock.bytes_acked); null for listeners, untracked retransmits and resets. */
  bytesSent: number | null;
  /** Payload bytes received (tcp_sock.bytes_received). */
  bytesReceived: number | null;
  /** Smoothed round-trip time (tcp_sock.srtt_us); null when not measured. */
  smoothedRttMilliseconds: number | null;
  /** Retransmitted segments (the larger of the kernel's total_retrans and the retransmit events seen). */
  retransmits: number;
  resetsSent: number;
  resetsReceived: number;
  /** For `reset` events: whether this host sent or received it. */
  resetDirection: "sent" | "received" | null;
}

export interface WatchTcpOptions {
  /** Ends the iteration and detaches everything when aborted. */
  signal?: AbortSignal;
  /** Only events of this process (connections it made, accepted or listens on). */
  pid?: number;
  /** Only connections with one of these local ports. */
  localPorts?: readonly number[];
  /** Only connections with one of these remote ports. */
  remotePorts?: readonly number[];
  /** Only events whose `state` is one of these (names as in tcpStates). */
  states?: readonly string[];
  /** Only these event types (default: all). */
  types?: readonly TcpEventType[];
  /** Ring buffer size in bytes (power of two, at least a page; default 1 MiB). */
  ringSize?: number;
  /** Connections followed at once (default 65536); beyond it, new connections are reported as if they began before watching. */
  maximumConnections?: number;
  /**
   * Whether the kernel wakes the reader for new events (default true). With
   * false it commits them to the ring silently — no wake-up in the kernel
   * and no thread wake-up in this process per event — and the caller reads
   * them with readAvailable() on its own schedule, often enough that the
   * ring (`ringSize`) does not fill meanwhile (events that do not fit are
   * counted in `lost`). Such a watcher cannot be iterated.
   */
  wakeup?: boolean;
}

const operation = "watch tcp";

/**
 * What each program must write to the ring for these options: events of
 * types nobody asked for, and state changes to states nobody asked for, are
 * dropped in the kernel (the per-connection record still follows them).
 */
function emitOptionsFor(types: readonly TcpEventType[] | undefined, states: Set<string> | undefined, wakeup: boolean): Record<"state" | "accept" | "retransmit" | "reset", TcpEmitOptions> {
  const wants = (type: TcpEventType): boolean => types === undefined || types.includes(type);
  const stateNumber = (name: string): number => Number(Object.entries(tcpStateNames).find(([, stateName]) => stateName === name)![0]);
  let emitStates: number[] | undefined;
  if (!wants("state")) {
    // open events come with ESTABLISHED, close events with CLOSE, listen events with LISTEN.
    emitStates = [...(wants("open") ? ["ESTABLISHED"] : []), ...(wants("close") ? ["CLOSE"] : []), ...(wants("listen") ? ["LISTEN"] : [])].filter((name) => states === undefined || states.has(name)).map(stateNumber);
  } else if (states !== undefined) {
    emitStates = [...states].map(stateNumber);
  }
  return {
    state: emitStates !== undefined && emitStates.length === 0 ? { emit: false } : { emitStates, wakeup },
    accept: { emit: wants("accept"), wakeup },
    retransmit: { emit: wants("retransmit"), wakeup },
    reset: { emit: wants("reset"), wakeup },
  };
}

/** Checks options; a state name is accepted with or without "TCP_", in any case. Returns the normalized states. */
export function validateWatchTcpOptions(options: WatchTcpOptions): { states: Set<string> | undefined } {
  expectObject(operation, "options", options);
  if (options.signal !== undefined) expectInstance(operation, "options.signal", options.signal, AbortSignal);
  if (options.pid !== undefined) expectInteger(operation, "options.pid", options.pid, 1, 0x7fff_ffff);
  expectPorts(operation, "options.localPorts", options.localPorts);
  expectPorts(operation, "options.remotePorts", options.remotePorts);
  let states: Set<string> | undefined;
  if (options.states !== undefined) {
    states = new Set();
    for (const name of expectArray(operation, "options.states", options.states)) {
      const normalized = String(name).toUpperCase().replace(/^TCP_/, "").replace(/-/g, "_");
      if (!tcpStates.includes(normalized)) throw new UsageError(operation, `unknown TCP state "${name}"`, `states: ${tcpStates.join(", ")}`);
      states.add(normalized);
    }
  }
  for (const type of expectArray(operation, "options.types", options.types, true)) {
    if (!tcpEventTypes.includes(type as TcpEventType)) throw new UsageError(operation, `unknown event type "${type}"`, `types: ${tcpEventTypes.join(", ")}`);
  }
  const ringSize = options.ringSize ?? 1 << 20;
  if (!Number.isInteger(ringSize) || ringSize < 4096 || !Number.isInteger(Math.log2(ringSize))) {
    throw argumentError(operation, "options.ringSize", "a power of two of at least 4096 (bytes)", options.ringSize);
  }
  expectBoolean(operation, "options.wakeup", options.wakeup, true);
  if (options.maximumConnections !== undefined) expectInteger(operation, "options.maximumConnections", options.maximumConnections, 1, 1 << 24);
  return { states };
}

function stateName(state: number): string {
  return tcpStateNames[state] ?? String(state);
}

function addressText(family: number, bytes: Buffer): string {
  if (family !== 10) return formatIpv4(bytes);
  // An IPv4 peer of an IPv6 socket: ::ffff:a.b.c.d, as ss prints it.
  if (bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${formatIpv4(bytes.subarray(12))}`;
  return formatIpv6(bytes);
}

const roles: Record<number, TcpEvent["role"]> = { [TcpRole.Active]: "active", [TcpRole.Passive]: "passive", [TcpRole.Listener]: "listener" };

function milliseconds(nanoseconds: bigint): number {
  return Number(nanoseconds) / 1e6;
}

/**
 * Loads the programs, attaches them and yields events until the signal
 * aborts, the iteration is left, or close() is called — each of which
 * detaches everything. Construction is synchronous: when watchTcp() returns,
 * every program is attached and events are being collected.
 */
export class TcpWatcher implements AsyncIterable<TcpEvent> {
  /** The tracepoints attached ("category:name"). */
  readonly tracepoints: string[] = [];
  readonly #options: WatchTcpOptions;
  readonly #states: Set<string> | undefined;
  readonly #owned: { close(): void }[] = [];
  readonly #reader: RingBufferReader;
  readonly #lost: BpfMap<number, bigint>;
  /** The kernel's per-connection records (socket → record). */
  #connections: BpfMap | undefined;
  /** The connections still open when stop() detached the programs. */
  #openAtStop: TcpEvent[] | undefined;
  /** CLOCK_REALTIME − CLOCK_MONOTONIC, in ns. */
  readonly #wallClockOffset: bigint;
  /** Aborted by stop(): the iteration then drains the ring and ends. */
  readonly #stopping = new AbortController();
  /** The programs and their links (closed first by stop()). */
  readonly #attached: { close(): void }[] = [];
  /** The lost count read when closing. */
  #finalLost = 0;
  #closed = false;
  #iterated = false;

  constructor(options: WatchTcpOptions = {}) {
    const { states } = validateWatchTcpOptions(options);
    this.#options = options;
    this.#states = states;
    if (options.signal?.aborted) throw new UsageError(operation, "the signal is already aborted");
    try {
      const emit = emitOptionsFor(options.types, states, options.wakeup ?? true);
      const formats = readTcpTracepointFormats();
      // From a small cache file after the first start on this boot: reading and parsing the kernel's BTF was most of the start-up.
      const offsets = kernelBtfFacts("tcp-offsets", tcpKernelOffsets, { check: isTcpKernelOffsets });
      const ring = this.#own(BpfMap.create({ type: MapType.Ringbuf, maxEntries: options.ringSize ?? 1 << 20, name: tcpEventRingName }));
      this.#lost = this.#own(BpfMap.create({ type: MapType.Array, key: u32, value: u64, maxEntries: 1, name: tcpLostName }));
      // Allocated as connections come (a preallocated LRU map of this size takes longer to
      // create than everything else together); records go at CLOSE or, failing that, when
      // the socket is destroyed.
      const connectionsSpec = { keySize: 8, valueSize: tcpRecordLayout.size, maxEntries: options.maximumConnections ?? 65536, name: tcpConnectionsName };
      const connections = this.#own(BpfMap.create({ ...connectionsSpec, type: MapType.Hash, flags: MapFlag.NoPrealloc }));
      const maps = { [tcpEventRingName]: ring, [tcpLostName]: this.#lost, [tcpConnectionsName]: connections };
      this.#connections = connections;
      let preallocated = false;
      const load = (instructions: ReturnType<typeof tcpStateChangeProgram>, name: string): Program => {
        try {
          return this.#own(Program.load({ type: ProgramType.Tracepoint, instructions, name }, { maps }));
        } catch (error) {
          // Kernels before 6.1 let tracing programs use preallocated hash maps only: fall back to an LRU one.
          if (preallocated || !(error instanceof VerifierError && /prealloc/i.test(error.log))) throw error;
          preallocated = true;
          maps[tcpConnectionsName].close();
          maps[tcpConnectionsName] = this.#own(BpfMap.create({ ...connectionsSpec, type: MapType.LruHash }));
          this.#connections = maps[tcpConnectionsName];
          return this.#own(Program.load({ type: ProgramType.Tracepoint, instructions, name }, { maps }));
        }
      };
      const attach = (key: string, name: string, build: (format: NonNullable<ReturnType<typeof formats.get>>) => ReturnType<typeof tcpStateChangeProgram>): void => {
        const format = formats.get(key);
        if (format === undefined) return;
        const program = load(build(format), name);
        this.#attached.push(program, this.#own<Link>(attachTracepoint(program, format.category, format.name)));
        this.tracepoints.push(key);
      };
      // The accept hooks first, then the state changes: a connection's record
      // never misses its accept.
      attach("syscalls:sys_exit_accept4", "tcp_accept4", (format) => tcpAcceptProgram(format, offsets, emit.accept));
      attach("syscalls:sys_exit_accept", "tcp_accept", (format) => tcpAcceptProgram(format, offsets, emit.accept));
      attach("tcp:tcp_retransmit_skb", "tcp_retransmit", (format) => tcpSocketEventProgram(format, TcpRecordKind.Retransmit, emit.retransmit));
      attach("tcp:tcp_receive_reset", "tcp_reset_in", (format) => tcpSocketEventProgram(format, TcpRecordKind.ResetReceived, emit.reset));
      attach("tcp:tcp_send_reset", "tcp_reset_out", (format) => tcpResetSentProgram(format, emit.reset));
      attach("sock:inet_sock_set_state", "tcp_state", (format) => tcpStateChangeProgram(format, offsets, emit.state));
      attach("tcp:tcp_destroy_sock", "tcp_destroy", (format) => tcpDestroyProgram(format));
      this.#reader = this.#own(new RingBufferReader(ring, { lostCounter: { map: this.#lost, key: 0 } }));
    } catch (error) {
      this.close();
      throw error;
    }
    const wallClock = BigInt(Date.now()) * 1_000_000n;
    this.#wallClockOffset = wallClock - process.hrtime.bigint();
    options.signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  #own<T extends { close(): void }>(object: T): T {
    this.#owned.push(object);
    return object;
  }

  /** Events the kernel could not write because the ring was full. */
  get lost(): number {
    if (this.#closed) return this.#finalLost;
    return this.#reader.lost ?? 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Detaches every program and frees the maps; ends any iteration. */
  close(): void {
    if (this.#closed) return;
    try {
      // Counted to the end: losses after the last read are still losses.
      this.#finalLost = this.#reader?.lost ?? 0;
    } catch {
      // The counter could not be read: keep the last known figure.
    }
    this.#closed = true;
    for (const object of this.#owned.reverse()) {
      try {
        object.close();
      } catch {
        // Closing the rest matters more.
      }
    }
    this.#owned.length = 0;
  }

  /**
   * Stops watching without losing what was seen: detaches the programs (no
   * new events), then the iteration delivers every event still in the ring
   * and ends (closing the watcher). Without an iteration, it just closes
   * (detach() and readAvailable() first to read what is left).
   */
  stop(): void {
    if (this.#closed) return;
    this.detach();
    if (!this.#iterated) this.close();
    else this.#stopping.abort();
  }

  /**
   * Detaches the programs (no new events) and keeps everything else: the
   * events still in the ring stay readable with readAvailable(), and
   * openConnections() lists the connections open at this moment.
   */
  detach(): void {
    if (this.#closed || this.#openAtStop !== undefined) return;
    for (const object of this.#attached.reverse()) {
      try {
        object.close();
      } catch {
        // Detaching the rest matters more.
      }
    }
    this.#attached.length = 0;
    try {
      // Nothing changes the records any more: what is left are connections still open.
      this.#openAtStop = this.#readOpen();
    } catch {
      this.#openAtStop = [];
    }
  }

  /**
   * Calls `onEvent` for every event in the ring now (the watcher's filters
   * applied), in order, without waiting; returns how many it delivered. The
   * way to read a watcher opened with `wakeup: false`; not while iterating.
   */
  readAvailable(onEvent: (event: TcpEvent) => void): number {
    expectFunction(operation, "onEvent", onEvent);
    let delivered = 0;
    this.readAvailableRecords((data) => {
      for (const event of this.decode(data)) {
        delivered++;
        onEvent(event);
      }
    });
    return delivered;
  }

  /**
   * Like readAvailable(), but hands over the kernel's records as they lie in
   * the ring (tcpRecordLayout; read-only views, valid during the call), for
   * a reader that keeps them as bytes and makes events later with decode().
   * Returns how many records it handed over.
   */
  readAvailableRecords(onRecord: (record: Buffer) => void): number {
    expectFunction(operation, "onRecord", onRecord);
    if (this.#closed) return 0;
    if (this.#iterated) throw new UsageError(operation, "this watcher is being iterated", "read it either by iterating or with readAvailable(), not both");
    return this.#reader.readAvailable(onRecord);
  }

  /** The events of one kernel record (from readAvailableRecords) that pass this watcher's filters. */
  decode(record: Buffer): TcpEvent[] {
    return this.#eventsOf(decodeTcpRecord(record)).filter((event) => this.#matches(event));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * The connections open now — made or accepted while watching (`role`
   * active or passive), established and not closed — as `open` events
   * carrying the kernel's record as it stands (`time`: its last change):
   * read from the kernel's per-connection map, so a consumer that asks only
   * for `close` events can still list what was open. After stop(), the ones
   * open when it detached the programs; after close() without stop(), none.
   * The watcher's pid and port filters apply; its type filter does not.
   */
  openConnections(): TcpEvent[] {
    if (this.#openAtStop !== undefined) return this.#openAtStop;
    if (this.#closed) return [];
    return this.#readOpen();
  }

  #readOpen(): TcpEvent[] {
    const events: TcpEvent[] = [];
    for (const [, value] of this.#connections?.lookupBatch() ?? []) {
      const record = decodeTcpRecord(value as Buffer);
      if ((record.role !== TcpRole.Active && record.role !== TcpRole.Passive) || record.established === 0n || record.newState === 7) continue;
      const event = this.#event(record, "open");
      if (this.#matches(event, false)) events.push(event);
    }
    return events;
  }

  /** The events, once (one consumer); leaving the loop closes the watcher. */
  async *[Symbol.asyncIterator](): AsyncIterator<TcpEvent> {
    if (this.#iterated) throw new UsageError(operation, "a TcpWatcher can be iterated once", "call watchTcp() again for a second consumer");
    if (this.#options.wakeup === false) throw new UsageError(operation, "a watcher opened with wakeup: false is not iterated", "read it with readAvailable()");
    this.#iterated = true;
    if (this.#closed) return;
    try {
      const signal = this.#options.signal ? AbortSignal.any([this.#options.signal, this.#stopping.signal]) : this.#stopping.signal;
      for await (const data of this.#reader.records({ signal })) {
        for (const event of this.#eventsOf(decodeTcpRecord(data))) if (this.#matches(event)) yield event;
      }
      // Stopped: the programs are detached; deliver what they left in the ring.
      while (this.#stopping.signal.aborted && !this.#closed) {
        const events: TcpEvent[] = [];
        const read = this.#reader.readAvailable((data) => {
          for (const event of this.#eventsOf(decodeTcpRecord(data))) if (this.#matches(event)) events.push(event);
        }, 4096);
        for (const event of events) yield event;
        if (read === 0) break;
      }
    } finally {
      this.close();
    }
  }

  #matches(event: TcpEvent, checkType = true): boolean {
    const options = this.#options;
    if (checkType && options.types !== undefined && !options.types.includes(event.type)) return false;
    if (options.pid !== undefined && event.pid !== options.pid) return false;
    if (options.localPorts !== undefined && !options.localPorts.includes(event.localPort)) return false;
    if (options.remotePorts !== undefined && !options.remotePorts.includes(event.remotePort)) return false;
    if (this.#states !== undefined && !this.#states.has(event.state)) return false;
    return true;
  }

  #eventsOf(record: TcpRecord): TcpEvent[] {
    switch (record.kind) {
      case TcpRecordKind.State: {
        const listener = record.role === TcpRole.Listener || record.oldState === 10;
        const opened = record.newState === 1 && (record.oldState === 2 || record.oldState === 3);
        const closed = record.newState === 7 && !listener;
        const listening = record.newState === 10;
        // Most records are one event: build only the ones that can be delivered.
        const events: TcpEvent[] = [];
        if (this.#wants("state")) events.push(this.#event(record, "state", stateName(record.oldState)));
        if (opened && this.#wants("open")) events.push(this.#event(record, "open"));
        if (closed && this.#wants("close")) events.push(this.#event(record, "close"));
        if (listening && this.#wants("listen")) events.push(this.#event(record, "listen"));
        return events;
      }
      case TcpRecordKind.Accept:
        return [this.#event(record, "accept")];
      case TcpRecordKind.Retransmit:
        return [this.#event(record, "retransmit")];
      case TcpRecordKind.ResetSent:
        return [this.#event(record, "reset", null, "sent")];
      case TcpRecordKind.ResetReceived:
        return [this.#event(record, "reset", null, "received")];
      default:
        return [];
    }
  }

  #wants(type: TcpEventType): boolean {
    return this.#options.types === undefined || this.#options.types.includes(type);
  }

  #event(record: TcpRecord, type: TcpEventType, oldState: string | null = null, resetDirection: TcpEvent["resetDirection"] = null): TcpEvent {
    const statistics = record.statistics;
    return {
      type,
      timestamp: record.timestamp,
      time: new Date(Number((record.timestamp + this.#wallClockOffset) / 1_000_000n)),
      socket: `0x${record.socket.toString(16)}`,
      pid: record.pid !== 0 ? record.pid : null,
      command: record.pid !== 0 ? record.command : null,
      parentPid: record.pid !== 0 && record.parentPid !== 0 ? record.parentPid : null,
      uid: record.pid !== 0 ? record.uid : null,
      cgroupId: record.pid !== 0 && record.cgroupId !== 0n ? record.cgroupId.toString() : null,
      role: roles[record.role] ?? null,
      family: record.family === 10 ? "ipv6" : "ipv4",
      localAddress: addressText(record.family, record.localAddress),
      localPort: record.localPort,
      remoteAddress: addressText(record.family, record.remoteAddress),
      remotePort: record.remotePort,
      state: stateName(record.newState),
      oldState,
      durationMilliseconds: record.start !== 0n ? milliseconds(record.timestamp - record.start) : null,
      connectLatencyMilliseconds: record.role === TcpRole.Active && record.established !== 0n && record.start !== 0n ? milliseconds(record.established - record.start) : null,
      bytesSent: statistics ? Number(record.bytesAcked) : null,
      bytesReceived: statistics ? Number(record.bytesReceived) : null,
      smoothedRttMilliseconds: statistics && record.smoothedRttMicroseconds > 0 ? record.smoothedRttMicroseconds / 1000 : null,
      retransmits: Math.max(record.retransmits, statistics ? record.totalRetransmits : 0),
      resetsSent: record.resetsSent,
      resetsReceived: record.resetsReceived,
      resetDirection,
    };
  }
}

/**
 * Starts watching TCP connections: loads and attaches the programs now
 * (throws a NetbpfError when it cannot: missing privilege, a tracepoint or
 * BTF field this kernel lacks, bad options) and returns the watcher to
 * iterate. See TcpEvent for what each event carries.
 */
export function watchTcp(options: WatchTcpOptions = {}): TcpWatcher {
  return new TcpWatcher(options);
}

