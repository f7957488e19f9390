/**
 * Live packet capture: the capture program on tcx ingress and/or egress of
 * each interface, one ring buffer for all of them, per-interface counters,
 * and (optionally) a cgroup sock_create program that records which process
 * owns each new socket.
 */
import { closeSync, constants, openSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { helperIds } from "../asm/helpers.js";
import { BpfMap } from "../core/map.js";
import { probeHelper } from "../features/features.js";
import { Program } from "../core/program.js";
import { u32, u64 } from "../core/codec.js";
import { attachCgroup, type CgroupLink } from "../link/cgroup.js";
import { attachTcx } from "../link/tcx.js";
import type { Link } from "../link/link.js";
import { CaptureWriterBase, writePacketBytesUnchecked, type CaptureWriter } from "../pcap/capture-writer.js";
import { PcapngWriter, writeProcessPacketBytesUnchecked } from "../pcap/pcapng-writer.js";
import { LinkType } from "../pcap/link-type.js";
import { RingBufferReader } from "../ringbuf/ring-buffer-reader.js";
import { AttachType, MapType, ProgramType } from "../sys/bpf-constants.js";
import { rootCgroup } from "../sys/cgroup.js";
import { possibleCpuCount } from "../sys/cpus.js";
import { argumentError, describeValue, expectInstance, expectObject, isUint32 } from "../sys/argument-checks.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { InterfaceFlag, listNetworkInterfaces } from "../sys/network-interfaces.js";
import { networkNamespaceCookie } from "../sys/network-namespace.js";
import { OwnedResources } from "../sys/owned-resources.js";
import { interfaceIndex, interfaceName } from "../sys/socket.js";
import {
  captureCountersName,
  CaptureCounter,
  captureProcessesName,
  captureProcessValueSize,
  captureProgram,
  captureRingName,
  counterKinds,
  captureHeaderSize,
  defaultSnapLength,
  socketOwnerProgram,
} from "../programs/capture-program.js";
import { compileCaptureFilter, type CaptureFilter } from "./capture-filter.js";

export type CaptureDirection = "in" | "out" | "inout";

export interface LiveCaptureInterface {
  name: string;
  ifindex: number;
  /** LINKTYPE of what the program sees: Ethernet, or raw IP for devices without a link header. */
  linkType: number;
  /** Position in the capture (the pcapng interface number). */
  slot: number;
  /** The tcx hooks the capture program is attached to (loopback: ingress only unless a direction was asked for). */
  hooks: ("ingress" | "egress")[];
}

export interface LiveCaptureOptions {
  /** Interface names; "any" = every interface that is up (in this network namespace). */
  interfaces: string[];
  direction?: CaptureDirection;
  snapLength?: number;
  /** A pcap-filter expression; empty or undefined = every packet. */
  filter?: string;
  /** Record the process owning each socket (cgroup sock_create at the cgroup v2 root). Default true. */
  processes?: boolean;
  /** Ring buffer size in bytes (rounded up to a power of two, at least 64 KiB). Default 8 MiB. */
  ringSize?: number;
  /**
   * "immediate" (default): the reader wakes for every packet. "batched": it
   * wakes when the ring is 1/16 full or every `batchInterval` ms, whichever
   * comes first — far less CPU under load (tcpdump -w buffers likewise).
   */
  delivery?: "immediate" | "batched";
  /** Milliseconds between polls in batched delivery (default 100). */
  batchInterval?: number;
}

export interface LivePacket {
  interface: LiveCaptureInterface;
  /** Wall-clock nanoseconds since the epoch. */
  timestamp: bigint;
  direction: "inbound" | "outbound";
  originalLength: number;
  /** A copy owned by the caller (batches, packets), or a view into the ring (readAvailable). */
  data: Buffer;
  packetType: number;
  process?: { pid: number; command: string };
}

export interface InterfaceCounters {
  /** Packets that reached the program. */
  seen: bigint;
  /** Packets the filter selected. */
  matched: bigint;
  /** Selected packets lost because the ring was full. */
  dropped: bigint;
}

export { defaultSnapLength };
/**
 * Longest time batched delivery lets records gather once some are waiting;
 * it halves whenever the ring filled past 1/8 meanwhile (down to not
 * sleeping at all) and doubles again when it stayed nearly empty.
 */
const maximumGatherMilliseconds = 10;
export const defaultRingSize = 8 * 1024 * 1024;
/**
 * Sockets the process table remembers (an LRU map: the least recently used
 * go first). Created only when processes are recorded; an LRU map is
 * allocated in full at creation, and 65,536 entries took 20-28 ms here
 * against 2.6 ms for 16,384.
 */
const processTableEntries = 16384;

const arphrdEther = 1;
const arphrdLoopback = 772;

/** Interfaces that are up in this network namespace (from rtnetlink: right under `nsenter --net` too), by name. */
export function upInterfaces(): string[] {
  return listNetworkInterfaces().filter((i) => i.flags & InterfaceFlag.Up).map((i) => i.name).sort();
}

/** The ARPHRD_* device type of an interface (sysfs), or undefined when it cannot be read. */
function deviceTypeOf(operation: string, name: string): number | undefined {
  if (typeof name !== "string" || !/^[^/\s]{1,15}$/.test(name) || name === "." || name === "..") {
    throw argumentError(operation, "name", "an interface name (1 to 15 characters, no \"/\" or spaces)", name);
  }
  try {
    return Number(readFileSync(`/sys/class/net/${name}/type`, "utf8").trim());
  } catch {
    return undefined;
  }
}

/** The link type a tc program sees on an interface. */
export function interfaceLinkType(name: string): number {
  const type = deviceTypeOf("interface link type", name);
  return type === undefined || type === arphrdEther || type === arphrdLoopback ? LinkType.ETHERNET : LinkType.RAW;
}

/**
 * Whether the capture program puts a VLAN tag held in skb metadata back into
 * the frame (as libpcap does): Ethernet devices, not loopback (no real MAC
 * header) or devices without a link header.
 */
export function interfaceHasVlanTags(name: string): boolean {
  const type = deviceTypeOf("interface VLAN tags", name);
  return type === undefined || type === arphrdEther;
}

/** Offset to add to CLOCK_MONOTONIC (bpf_ktime_get_ns) to get wall-clock time. */
export function monotonicToRealtimeOffset(): bigint {
  let best: bigint | undefined;
  for (let i = 0; i < 5; i++) {
    const monotonic = process.hrtime.bigint();
    const realtime = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    const offset = realtime - monotonic;
    if (best === undefined || offset < best) best = offset;
  }
  return best!;
}

function ringSizeFor(requested: number): number {
  let size = 64 * 1024;
  while (size < requested) size *= 2;
  return size;
}

/** pcapng epb_flags reception type bits by Linux packet type (PACKET_HOST, BROADCAST, MULTICAST, OTHERHOST). */
const receptionBits = [1, 3, 2, 4];

/** A running capture; close() detaches everything. */
function badMaximum(maximum: unknown): never {
  throw argumentError("read capture", "maximum", "a number of packets (≥ 0)", maximum);
}

function checkSignal(signal: unknown): void {
  if (signal !== undefined) expectInstance("wait for packets", "signal", signal, AbortSignal, "an AbortSignal, or undefined");
}

/** A ring-buffer callback that does nothing (for the empty reads that prime the reader). */
function ignoreRecord(): void {}

export class LiveCapture implements Disposable {
  readonly interfaces: LiveCaptureInterface[];
  readonly direction: CaptureDirection;
  readonly snapLength: number;
  readonly filter: string;
  /** Whether process information is being recorded. */
  readonly processes: boolean;
  /** Why process recording is off, when it was asked for and could not be set up. */
  readonly processesUnavailable?: string;
  readonly ringSize: number;
  readonly delivery: "immediate" | "batched";
  readonly #batchInterval: number;
  #gatherMilliseconds = maximumGatherMilliseconds;
  readonly #owned = new OwnedResources();
  readonly #reader: RingBufferReader;
  readonly #counters: BpfMap<number, bigint>;
  readonly #clockOffset: bigint;
  /** #clockOffset's high and low 32 bits. */
  readonly #clockOffsetHigh: number;
  readonly #clockOffsetLow: number;
  /**
   * The latest timestamp delivered (high and low 32 bits). CPUs take a packet's time before
   * reserving its ring slot, so a slot may hold a time slightly older than the slot before it;
   * such a packet is given the previous packet's time, so output never goes backwards.
   */
  #lastHigh = 0;
  #lastLow = 0;
  #delivered = 0;
  #closed = false;
  /** Aborted by close(): ends a wait for a wakeup left in flight. */
  readonly #lifetime = new AbortController();
  #wakeupPending = false;
  #wakeupFailure: unknown;
  #endDelay: (() => void) | undefined;

  private constructor(options: LiveCaptureOptions) {
    expectObject("capture", "options", options);
    if (!Array.isArray(options.interfaces)) throw new UsageError("capture", `options.interfaces must be an array of interface names, got ${describeValue(options.interfaces)}`);
    const names = options.interfaces.length === 0 ? ["any"] : options.interfaces;
    const expanded = names.flatMap((name) => (name === "any" ? upInterfaces() : [name]));
    const unique = [...new Set(expanded)];
    if (unique.length === 0) throw new UsageError("capture", "no interface to capture on", "name one with -i, or bring an interface up");
    // Like tcpdump, an interface that is down is refused ("That device is not up").
    const known = new Map(listNetworkInterfaces().map((i) => [i.name, i]));
    for (const name of unique) {
      const found = known.get(name);
      if (found !== undefined && (found.flags & InterfaceFlag.Up) === 0) throw new NetbpfError("capture", `${name} is not up`, `bring it up first: ip link set ${name} up`);
    }
    this.interfaces = unique.map((name, slot) => ({ name, ifindex: interfaceIndex(name, "capture"), linkType: interfaceLinkType(name), slot, hooks: [] }));
    this.direction = options.direction ?? "inout";
    this.snapLength = options.snapLength ?? defaultSnapLength;
    this.filter = (options.filter ?? "").trim();
    this.ringSize = ringSizeFor(options.ringSize ?? defaultRingSize);
    // Batched wakeups use bpf_ringbuf_query, which came with ring buffers themselves (as bpf_ringbuf_reserve,
    // which every capture program calls): no probe needed.
    this.delivery = options.delivery === "batched" ? "batched" : "immediate";
    this.#batchInterval = options.batchInterval ?? 100;
    this.#clockOffset = monotonicToRealtimeOffset();
    this.#clockOffsetHigh = Number((this.#clockOffset >> 32n) & 0xffff_ffffn);
    this.#clockOffsetLow = Number(this.#clockOffset & 0xffff_ffffn);

    try {
      const filters = new Map<number, CaptureFilter>();
      if (this.filter !== "") {
        for (const linkType of new Set(this.interfaces.map((i) => i.linkType))) {
          filters.set(linkType, compileCaptureFilter(this.filter, linkType, { packetMetadata: true }));
        }
      }
      const ring = this.#own(BpfMap.create({ type: MapType.Ringbuf, maxEntries: this.ringSize, name: captureRingName }));
      this.#counters = this.#own(BpfMap.create({ type: MapType.PercpuArray, key: u32, value: u64, maxEntries: this.interfaces.length * counterKinds, name: captureCountersName }));
      let processesOn = options.processes ?? true;
      if (processesOn && !(probeHelper(ProgramType.SchedCls, helperIds.get_socket_cookie) && probeHelper(ProgramType.CgroupSock, helperIds.get_current_comm))) {
        processesOn = false;
        this.processesUnavailable = "this kernel lacks bpf_get_socket_cookie for tc or bpf_get_current_comm for cgroup sock programs";
      }
      // The socket → process table exists only when processes are recorded.
      let processes: BpfMap | undefined;
      if (processesOn) {
        try {
          processes = this.#own(BpfMap.create({ type: MapType.LruHash, keySize: 8, valueSize: captureProcessValueSize, maxEntries: processTableEntries, name: captureProcessesName }));
          const owner = this.#own(Program.load({ type: ProgramType.CgroupSock, instructions: socketOwnerProgram(), name: "capture_owner", expectedAttachType: AttachType.CgroupInetSockCreate }, { maps: { [captureProcessesName]: processes } }));
          const cgroupFd = openSync(rootCgroup(), constants.O_RDONLY | constants.O_DIRECTORY);
          this.#own({ close: () => closeSync(cgroupFd) });
          this.#own(attachCgroup(owner, { cgroup: cgroupFd, attachType: "sock_create" }) as CgroupLink);
        } catch (error) {
          processesOn = false;
          this.processesUnavailable = error instanceof Error ? error.message : String(error);
        }
      }
      this.processes = processesOn;
      const maps = { [captureRingName]: ring, [captureCountersName]: this.#counters, ...(processes !== undefined && processesOn ? { [captureProcessesName]: processes } : {}) };
      const directions: ("ingress" | "egress")[] = this.direction === "in" ? ["ingress"] : this.direction === "out" ? ["egress"] : ["ingress", "egress"];
      for (const captureInterface of this.interfaces) {
        // Every packet on loopback passes egress and then ingress: like libpcap, show it once (ingress) unless -Q asks for a direction.
        const deviceType = known.get(captureInterface.name)?.deviceType;
        const loopback = deviceType === arphrdLoopback;
        // A VLAN tag the kernel moved into skb metadata goes back into the frame, as libpcap does (Ethernet only).
        const vlanTags = captureInterface.linkType === LinkType.ETHERNET && (deviceType === undefined ? interfaceHasVlanTags(captureInterface.name) : deviceType === arphrdEther);
        for (const direction of loopback && this.direction === "inout" ? ["ingress" as const] : directions) {
          const instructions = captureProgram({
            direction,
            interfaceSlot: captureInterface.slot,
            snapLength: this.snapLength,
            filter: filters.get(captureInterface.linkType)?.emitter,
            processes: this.processes,
            namespace: this.processes ? Number(networkNamespaceCookie() & 0xffff_ffffn) : undefined,
            wakeupThreshold: this.delivery === "batched" ? this.ringSize / 16 : undefined,
            vlanTags,
          });
          const program = this.#own(Program.load({ type: ProgramType.SchedCls, instructions, name: direction === "ingress" ? "capture_in" : "capture_out" }, { maps }));
          this.#own(attachTcx(program, { interface: captureInterface.ifindex, direction }) as Link);
          captureInterface.hooks.push(direction);
        }
      }
      this.#reader = this.#own(new RingBufferReader(ring));
      // V8 collects type feedback for a function only from about its 8th call. The first reads of a busy capture are long
      // drains, optimized while they run: without feedback for the function's entry, the optimized code is thrown away
      // (and compiled again) at the next call. A few empty reads now give it that feedback.
      for (let i = 0; i < 16; i++) this.#reader.readAvailableInPlace(ignoreRecord, 0);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** Loads and attaches everything; throws (having cleaned up) on failure. */
  static open(options: LiveCaptureOptions): LiveCapture {
    return new LiveCapture(options);
  }

  #own<T extends { close(): void }>(owned: T): T {
    return this.#owned.add(owned);
  }

  /** The first captured interface that is gone (deleted, or moved to another network namespace), if any. */
  missingInterface(): LiveCaptureInterface | undefined {
    return this.interfaces.find((i) => interfaceName(i.ifindex) !== i.name);
  }

  /** Packets delivered to the caller so far. */
  get delivered(): number {
    return this.#delivered;
  }

  /**
   * Calls `visit` for every packet in the ring now (up to `maximum`), without
   * copying: `packet.data` is a read-only view into the ring, valid only
   * during the call. Returns how many were visited. The fastest way to read.
   */
  readAvailable(visit: (packet: LivePacket) => void, maximum = 4096): number {
    if (typeof visit !== "function") throw argumentError("read capture", "visit", "a function", visit);
    if (typeof maximum !== "number" || !(maximum >= 0)) badMaximum(maximum);
    if (this.#closed) return 0;
    const count = this.#reader.readAvailableInPlace((ring, offset, length) => visit(this.#toPacket(ring, offset, length, false)), maximum);
    this.#delivered += count;
    return count;
  }

  /**
   * Writes every packet in the ring now (up to `maximum`) to `writer`,
   * straight from the ring: no object, copy or BigInt per packet, and the
   * same output as writePacket() with the fields of readAvailable()'s
   * packets (direction and reception type as epb_flags; the process, in
   * pcapng, as a comment and custom option encoded once per pid and command). `interfaceIndexes[slot]` is the
   * writer's interface for each capture slot (default 0); `written[slot]`
   * is increased for every packet written. Returns how many were written.
   */
  writeAvailable(writer: CaptureWriter, interfaceIndexes: readonly number[], written: number[], maximum = 4096): number {
    if (typeof writer !== "object" || writer === null || typeof writer.writePacketBytes !== "function") {
      throw argumentError("read capture", "writer", "a capture writer (a PcapWriter or PcapngWriter, from createCaptureWriter)", writer);
    }
    if (!Array.isArray(interfaceIndexes)) throw argumentError("read capture", "interfaceIndexes", "an array of the writer's interface numbers by capture slot", interfaceIndexes);
    if (!Array.isArray(written)) throw argumentError("read capture", "written", "an array of counts by capture slot", written);
    if (typeof maximum !== "number" || !(maximum >= 0)) badMaximum(maximum);
    if (this.#closed) return 0;
    const interfaces = this.interfaces;
    const offsetHigh = this.#clockOffsetHigh;
    const offsetLow = this.#clockOffsetLow;
    // pcapng keeps each packet's process (pcap has no place for it). netbpf's writers are written to unchecked: every
    // number below comes from the kernel's record, and the interface numbers are checked here.
    const pcapng = writer instanceof PcapngWriter ? writer : undefined;
    const known = writer instanceof CaptureWriterBase ? writer : undefined;
    for (let slot = 0; slot < interfaces.length; slot++) {
      const index = interfaceIndexes[slot];
      if (index !== undefined && !isUint32(index)) throw argumentError("read capture", `interfaceIndexes[${slot}]`, "an unsigned 32-bit integer", index);
      written[slot] ??= 0;
    }
    const count = this.#reader.readAvailableInPlace((ring, offset, length, view) => {
      if (length < captureHeaderSize) throw new NetbpfError("read capture ring", `a record of ${length} bytes is shorter than the ${captureHeaderSize}-byte header`);
      const slot = view.getUint16(offset + 22, true);
      if (slot >= interfaces.length) throw new NetbpfError("read capture ring", `record for unknown interface slot ${slot}`);
      const interfaceIndex = interfaceIndexes[slot] ?? 0;
      written[slot]!++;
      let low = view.getUint32(offset, true) + offsetLow;
      let carry = 0;
      if (low >= 0x1_0000_0000) {
        low -= 0x1_0000_0000;
        carry = 1;
      }
      let high = (view.getUint32(offset + 4, true) + offsetHigh + carry) >>> 0;
      // Never backwards (see #lastHigh).
      if (high < this.#lastHigh || (high === this.#lastHigh && low < this.#lastLow)) {
        high = this.#lastHigh;
        low = this.#lastLow;
      } else {
        this.#lastHigh = high;
        this.#lastLow = low;
      }
      const recorded = view.getUint32(offset + 16, true);
      const capturedLength = recorded < length - captureHeaderSize ? recorded : length - captureHeaderSize;
      const inbound = ring[offset + 20] === 0;
      const packetType = view.getUint32(offset + 28, true);
      const flags = inbound ? 1 | (packetType < 4 ? receptionBits[packetType]! << 2 : 0) : 2;
      if (pcapng !== undefined && ring[offset + 21] === 1) {
        const commandStart = offset + 32;
        let commandLength = 0;
        while (commandLength < 16 && ring[commandStart + commandLength] !== 0) commandLength++;
        pcapng[writeProcessPacketBytesUnchecked](interfaceIndex, high, low, view.getUint32(offset + 12, true), flags, ring, offset + captureHeaderSize, capturedLength, view.getUint32(offset + 24, true), commandStart, commandLength);
        return;
      }
      if (known !== undefined) known[writePacketBytesUnchecked](interfaceIndex, high, low, view.getUint32(offset + 12, true), flags, ring, offset + captureHeaderSize, capturedLength);
      else writer.writePacketBytes(interfaceIndex, high, low, view.getUint32(offset + 12, true), flags, ring, offset + captureHeaderSize, capturedLength);
    }, maximum);
    this.#delivered += count;
    return count;
  }

  /**
   * Resolves when packets may be waiting (or, in batched delivery, when the
   * poll interval has passed); ends quietly when `signal` aborts.
   */
  async wait(signal?: AbortSignal): Promise<void> {
    checkSignal(signal);
    if (this.#closed || signal?.aborted) return;
    if (this.delivery === "batched") return this.#waitBatched(signal);
    try {
      await this.#reader.wait(signal);
    } catch (error) {
      if (signal?.aborted) return;
      throw error;
    }
  }

  /**
   * Batched delivery: a wait costs a timer, not system calls. The wait for
   * a wakeup (ring 1/16 full) stays in flight from one call to the next, so
   * a poll interval that passes without one is only a timer firing.
   */
  async #waitBatched(signal: AbortSignal | undefined): Promise<void> {
    if (this.#reader.available > 0) {
      // Readiness is level-triggered: with records below the wakeup threshold
      // waiting, epoll would return at once. Let a batch gather instead.
      if (this.#gatherMilliseconds > 0) await this.#delay(this.#gatherMilliseconds, signal);
      // Adapt to the rate: gather for less time when the ring filled up a lot meanwhile.
      const filled = this.#reader.available / this.ringSize;
      if (filled > 1 / 8) this.#gatherMilliseconds = Math.floor(this.#gatherMilliseconds / 2);
      else if (filled < 1 / 64) this.#gatherMilliseconds = Math.min(maximumGatherMilliseconds, Math.max(1, this.#gatherMilliseconds * 2));
      return;
    }
    if (!this.#wakeupPending) {
      this.#wakeupPending = true;
      this.#reader.wait(this.#lifetime.signal).then(
        () => {
          this.#wakeupPending = false;
          this.#endDelay?.();
        },
        (error: unknown) => {
          this.#wakeupPending = false;
          if (!this.#closed) this.#wakeupFailure = error;
          this.#endDelay?.();
        },
      );
    }
    await this.#delay(this.#batchInterval, signal);
    const failure = this.#wakeupFailure;
    if (failure !== undefined) {
      this.#wakeupFailure = undefined;
      throw failure;
    }
  }

  /** Resolves after `milliseconds`, on abort, or when a wakeup comes (#endDelay); never rejects. */
  #delay(milliseconds: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const end = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", end);
        if (this.#endDelay === end) this.#endDelay = undefined;
        resolve();
      };
      const timer = setTimeout(end, milliseconds);
      signal?.addEventListener("abort", end, { once: true });
      this.#endDelay = end;
    });
  }

  /**
   * Packets as they arrive, in ring order, a batch at a time (copies, owned
   * by the caller), until `signal` aborts or the capture is closed. Records
   * still in the ring when aborting are delivered first: nothing received is
   * thrown away.
   */
  async *batches(signal?: AbortSignal): AsyncGenerator<LivePacket[]> {
    checkSignal(signal);
    for (;;) {
      if (this.#closed) return;
      const batch: LivePacket[] = [];
      this.#delivered += this.#reader.readAvailableInPlace((ring, offset, length) => batch.push(this.#toPacket(ring, offset, length, true)), 4096);
      if (batch.length > 0) {
        yield batch;
        continue;
      }
      if (signal?.aborted) return;
      await this.wait(signal);
    }
  }

  /** Packets one by one (see {@link batches}). */
  async *packets(signal?: AbortSignal): AsyncGenerator<LivePacket> {
    checkSignal(signal);
    for await (const batch of this.batches(signal)) yield* batch;
  }

  #notBackwards(timestamp: bigint): bigint {
    const last = (BigInt(this.#lastHigh) << 32n) | BigInt(this.#lastLow);
    if (timestamp < last) return last;
    this.#lastHigh = Number(timestamp >> 32n);
    this.#lastLow = Number(timestamp & 0xffff_ffffn);
    return timestamp;
  }

  /** The record at ring[offset, offset + length) as a packet (no Buffer per record: the ring is read in place). */
  #toPacket(ring: Buffer, offset: number, length: number, copy: boolean): LivePacket {
    if (length < captureHeaderSize) throw new NetbpfError("read capture ring", `a record of ${length} bytes is shorter than the ${captureHeaderSize}-byte header`);
    const slot = ring.readUInt16LE(offset + 22);
    const captureInterface = this.interfaces[slot];
    if (captureInterface === undefined) throw new NetbpfError("read capture ring", `record for unknown interface slot ${slot}`);
    const capturedLength = Math.min(ring.readUInt32LE(offset + 16), length - captureHeaderSize);
    let process: LivePacket["process"];
    if (ring[offset + 21] === 1) {
      const commandStart = offset + 32;
      let end = commandStart;
      while (end < commandStart + 16 && ring[end] !== 0) end++;
      process = { pid: ring.readUInt32LE(offset + 24), command: ring.toString("utf8", commandStart, end) };
    }
    const dataStart = offset + captureHeaderSize;
    const view = ring.subarray(dataStart, dataStart + capturedLength);
    return {
      interface: captureInterface,
      timestamp: this.#notBackwards(ring.readBigUInt64LE(offset) + this.#clockOffset),
      direction: ring[offset + 20] === 0 ? "inbound" : "outbound",
      originalLength: ring.readUInt32LE(offset + 12),
      data: copy ? Buffer.from(view) : view,
      packetType: ring.readUInt32LE(offset + 28),
      process,
    };
  }

  /** Counters of one interface (summed over CPUs), or of all when slot is omitted. */
  counters(slot?: number): InterfaceCounters {
    if (slot !== undefined && !(Number.isInteger(slot) && slot >= 0 && slot < this.interfaces.length)) {
      throw argumentError("read capture counters", "slot", `a capture slot (an integer from 0 to ${this.interfaces.length - 1}), or undefined for all`, slot);
    }
    const slots = slot === undefined ? this.interfaces.map((i) => i.slot) : [slot];
    const total: InterfaceCounters = { seen: 0n, matched: 0n, dropped: 0n };
    for (const s of slots) {
      const read = (kind: number) => (this.#counters.getPerCpu(s * counterKinds + kind) ?? []).reduce((a, b) => a + b, 0n);
      total.seen += read(CaptureCounter.seen);
      total.matched += read(CaptureCounter.matched);
      total.dropped += read(CaptureCounter.dropped);
    }
    return total;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lifetime.abort();
    this.#endDelay?.();
    // Detach links first (they were created after the programs), then the rest.
    this.#owned.closeAll();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
