/**
 * Reads a BPF_MAP_TYPE_PERF_EVENT_ARRAY: one perf ring per CPU, filled by
 * bpf_perf_event_output. Each ring is 1 metadata page (struct
 * perf_event_mmap_page: data_head at 1024, data_tail at 1032, data_offset at
 * 1040, data_size at 1048) followed by 2^n data pages holding records that
 * start with struct perf_event_header {u32 type; u16 misc; u16 size}.
 * A record may wrap around the end of the ring; it is then copied.
 * When a ring is full the kernel drops samples and later writes a
 * PERF_RECORD_LOST with their number: the reader yields it and counts it.
 */
import { argumentError, expectArray, expectInstance, expectInteger, expectObject } from "../sys/argument-checks.js";
import { MapType } from "../sys/bpf-constants.js";
import { mapDeleteElement, mapUpdateElement } from "../sys/bpf.js";
import { onlineCpus } from "../sys/cpus.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { FileDescriptor } from "../sys/file-descriptor.js";
import { MemoryMapping, Protection, pageSize } from "../sys/memory-mapping.js";
import { perfBufferOpen, perfEventDisable, perfEventEnable } from "../sys/perf-buffer-open.js";
import { Poller, type Readiness } from "../sys/poller.js";
import { expectReadOptions } from "../sys/read-options.js";

const recordLost = 2;
const recordSample = 9;
const dataHeadIndex = 1024 / 8;
const dataTailIndex = 1032 / 8;
const dataOffsetIndex = 1040 / 8;
const dataSizeIndex = 1048 / 8;

/** What a reader needs from a map: the BpfMap class satisfies it. */
export interface PerfEventArraySource {
  readonly fd: FileDescriptor;
  readonly type: number;
  readonly maxEntries: number;
}

export interface PerfEventReaderOptions {
  /** Data pages per CPU, a power of two (default 8: 32 KiB per CPU with 4 KiB pages). */
  pagesPerCpu?: number;
  /** Wake the reader after this many samples on a CPU (default 1). */
  wakeupEvents?: number;
  /** Instead of wakeupEvents: wake once this many bytes wait in a CPU's ring. */
  wakeupBytes?: number;
  /** CPUs to read (default: every online CPU). */
  cpus?: readonly number[];
  /** Defaults to the process-wide Poller.shared(). */
  poller?: Poller;
}

export interface PerfEventRecordsOptions {
  /** Ends the iteration (without an error) when aborted. */
  signal?: AbortSignal;
  /** Yield copies instead of views valid only until the next iteration. */
  copy?: boolean;
}

/**
 * A sample holds what the program passed to bpf_perf_event_output, padded
 * by the kernel to keep records 8-byte aligned (so `data` may be up to 7
 * bytes longer than what was sent).
 */
export interface PerfSample {
  readonly kind: "sample";
  readonly cpu: number;
  readonly data: Buffer;
}

/** Samples the kernel dropped on `cpu` because its ring was full. */
export interface PerfLost {
  readonly kind: "lost";
  readonly cpu: number;
  readonly count: number;
}

export type PerfEventRecord = PerfSample | PerfLost;

class CpuRing {
  readonly cpu: number;
  readonly fd: FileDescriptor;
  readonly mapping: MemoryMapping;
  readonly head: BigUint64Array;
  readonly tail: BigUint64Array;
  readonly data: Buffer;
  readonly mask: number;
  scratch = Buffer.alloc(0);
  lost = 0;

  constructor(cpu: number, fd: number, pages: number, page: number) {
    this.cpu = cpu;
    this.fd = new FileDescriptor(fd);
    try {
      this.mapping = MemoryMapping.map("map perf buffer", fd, 0, (pages + 1) * page, Protection.Read | Protection.Write,
        "the buffer may be larger than the kernel allows (perf_event_mlock_kb)");
    } catch (error) {
      this.fd.close();
      throw error;
    }
    const metadata = new BigUint64Array(this.mapping.memory, 0, page / 8);
    this.head = metadata.subarray(dataHeadIndex, dataHeadIndex + 1);
    this.tail = metadata.subarray(dataTailIndex, dataTailIndex + 1);
    const dataOffset = Number(metadata[dataOffsetIndex]) || page;
    const dataSize = Number(metadata[dataSizeIndex]) || pages * page;
    this.data = Buffer.from(this.mapping.memory, dataOffset, dataSize);
    this.mask = dataSize - 1;
  }

  /** The `length` bytes at ring offset `offset`, copied only when they wrap. */
  slice(offset: number, length: number): Buffer {
    const end = offset + length;
    if (end <= this.data.length) return this.data.subarray(offset, end);
    if (this.scratch.length < length) this.scratch = Buffer.alloc(Math.max(length, 256));
    const first = this.data.length - offset;
    this.data.copy(this.scratch, 0, offset);
    this.data.copy(this.scratch, first, 0, length - first);
    return this.scratch.subarray(0, length);
  }

  close(): void {
    this.mapping.close();
    this.fd.close();
  }
}

/** Reader of a perf event array: one ring per CPU, records in order per CPU. */
export class PerfEventReader {
  readonly cpus: readonly number[];
  readonly #map: PerfEventArraySource;
  readonly #rings: CpuRing[] = [];
  readonly #readiness: Readiness;
  #consuming = false;
  #closed = false;
  #abortInternal = new AbortController();
  #received = 0;

  constructor(map: PerfEventArraySource, options: PerfEventReaderOptions = {}) {
    const operation = "open perf event reader";
    expectObject(operation, "map", map);
    expectInstance(operation, "map.fd", map.fd, FileDescriptor, "a FileDescriptor (map is a BpfMap)");
    if (map.type !== MapType.PerfEventArray) {
      throw new UsageError(operation, `the map is a ${MapType[map.type] ?? map.type} map, not a PerfEventArray map`, "for a Ringbuf map use RingBufferReader");
    }
    expectInteger(operation, "map.maxEntries", map.maxEntries, 1);
    expectObject(operation, "options", options);
    const pages = options.pagesPerCpu ?? 8;
    if (!Number.isInteger(pages) || pages < 1 || pages > 1 << 20 || (pages & (pages - 1)) !== 0) {
      throw argumentError(operation, "options.pagesPerCpu", "a power of two (1, 2, 4, …)", options.pagesPerCpu);
    }
    if (options.wakeupEvents !== undefined) expectInteger(operation, "options.wakeupEvents", options.wakeupEvents, 1, 0xffff_ffff);
    if (options.wakeupBytes !== undefined) expectInteger(operation, "options.wakeupBytes", options.wakeupBytes, 1, 0xffff_ffff);
    if (options.poller !== undefined) expectInstance(operation, "options.poller", options.poller, Poller);
    const cpus = options.cpus !== undefined ? [...expectArray<number>(operation, "options.cpus", options.cpus)] : onlineCpus();
    for (const [index, cpu] of cpus.entries()) {
      expectInteger(operation, `options.cpus[${index}]`, cpu, 0);
      if (cpu >= map.maxEntries) {
        throw new UsageError(operation, `CPU ${cpu} has no slot in the perf event array (${map.maxEntries} entries)`, "create the map with maxEntries of at least the number of possible CPUs");
      }
    }
    this.cpus = cpus;
    this.#map = map;
    const page = pageSize();
    try {
      for (const cpu of cpus) {
        const fd = perfBufferOpen({ cpu, wakeupEvents: options.wakeupEvents, wakeupBytes: options.wakeupBytes });
        const ring = new CpuRing(cpu, fd, pages, page);
        this.#rings.push(ring);
        const key = Buffer.alloc(4);
        key.writeUInt32LE(cpu);
        const value = Buffer.alloc(4);
        value.writeUInt32LE(fd);
        mapUpdateElement(map.fd.value, key, value);
        perfEventEnable(fd);
      }
      this.#readiness = (options.poller ?? Poller.shared()).watch(this.#rings.map((ring) => ring.fd.value), () => this.#hasData());
    } catch (error) {
      this.#release();
      throw error;
    }
  }

  #hasData(): boolean {
    for (const ring of this.#rings) if (Atomics.load(ring.head, 0) !== ring.tail[0]) return true;
    return false;
  }

  /** Samples delivered so far. */
  get received(): number {
    return this.#received;
  }

  /** Samples the kernel reported lost (PERF_RECORD_LOST) so far, over all CPUs. */
  get lost(): number {
    let total = 0;
    for (const ring of this.#rings) total += ring.lost;
    return total;
  }

  /** Lost samples per CPU. */
  lostByCpu(): Map<number, number> {
    return new Map(this.#rings.map((ring) => [ring.cpu, ring.lost]));
  }

  /**
   * Calls `callback` for every record available now (samples and lost
   * reports), CPU by CPU; sample data is valid only during the callback.
   * Returns the number of records delivered.
   */
  readAvailable(callback: (record: PerfEventRecord) => void): number {
    if (typeof callback !== "function") throw argumentError("read perf buffer", "callback", "a function", callback);
    this.#checkOpen("read perf buffer");
    if (this.#consuming) throw new UsageError("read perf buffer", "records() is iterating this reader", "a perf buffer has one consumer at a time");
    this.#consuming = true;
    let delivered = 0;
    try {
      for (const ring of this.#rings) {
        let tail = ring.tail[0]!;
        const head = Atomics.load(ring.head, 0);
        while (tail < head) {
          const { record, size } = this.#parse(ring, tail);
          tail += BigInt(size);
          if (record) {
            delivered++;
            callback(record);
            if (this.#closed) return delivered;
          }
        }
        Atomics.store(ring.tail, 0, tail);
      }
    } finally {
      this.#consuming = false;
    }
    return delivered;
  }

  /**
   * Resolves when a CPU's ring has woken the reader (per wakeupEvents or
   * wakeupBytes; wakeups can be spurious). Rejects with the signal's reason on abort.
   */
  async wait(signal?: AbortSignal): Promise<void> {
    if (signal !== undefined) expectInstance("wait for perf buffer", "signal", signal, AbortSignal);
    this.#checkOpen("wait for perf buffer");
    await this.#readiness.wait(signal);
  }

  /**
   * Records as they arrive: samples in order per CPU, and a `lost` record
   * whenever the kernel reports dropped samples. Waiting costs no CPU. Ends
   * when `signal` aborts or the reader is closed.
   */
  async *records(options: PerfEventRecordsOptions = {}): AsyncGenerator<PerfEventRecord, void, undefined> {
    const { signal, copy = false } = expectReadOptions<PerfEventRecordsOptions>("read perf buffer", options);
    this.#checkOpen("read perf buffer");
    if (this.#consuming) throw new UsageError("read perf buffer", "this reader is already being consumed", "a perf buffer has one consumer at a time; iterate it once");
    this.#consuming = true;
    const internal = this.#abortInternal.signal;
    const combined = signal ? AbortSignal.any([signal, internal]) : internal;
    let unreleased: { ring: CpuRing; tail: bigint } | undefined;
    try {
      while (!combined.aborted) {
        let progressed = false;
        for (const ring of this.#rings) {
          let tail = ring.tail[0]!;
          const head = Atomics.load(ring.head, 0);
          while (tail < head && !combined.aborted) {
            const { record, size } = this.#parse(ring, tail);
            tail += BigInt(size);
            if (record) {
              // Handed back after the consumer is done with the record, also when it breaks out of its loop.
              unreleased = { ring, tail };
              yield copy && record.kind === "sample" ? { kind: "sample", cpu: record.cpu, data: Buffer.from(record.data) } : record;
              if (this.#closed) return;
            }
            Atomics.store(ring.tail, 0, tail);
            unreleased = undefined;
            progressed = true;
          }
          if (combined.aborted) return;
        }
        if (progressed) continue;
        try {
          await this.#readiness.wait(combined);
        } catch (error) {
          if (combined.aborted) return;
          throw error;
        }
      }
    } finally {
      if (unreleased && !this.#closed) Atomics.store(unreleased.ring.tail, 0, unreleased.tail);
      this.#consuming = false;
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<PerfEventRecord, void, undefined> {
    return this.records();
  }

  #parse(ring: CpuRing, position: bigint): { record: PerfEventRecord | undefined; size: number } {
    const offset = Number(position & BigInt(ring.mask));
    const data = ring.data;
    const type = data.readUInt32LE(offset);
    const size = data.readUInt16LE(offset + 6);
    if (size < 8) {
      throw new NetbpfError("read perf buffer", `corrupt record of ${size} bytes at ring offset ${offset} on CPU ${ring.cpu}`, "close the reader and open a new one");
    }
    if (type === recordSample) {
      const body = ring.slice(offset, size);
      const rawSize = Math.min(body.readUInt32LE(8), size - 12);
      this.#received++;
      return { record: { kind: "sample", cpu: ring.cpu, data: body.subarray(12, 12 + rawSize) }, size };
    }
    if (type === recordLost) {
      const body = ring.slice(offset, size);
      const count = Number(body.readBigUInt64LE(16));
      ring.lost += count;
      return { record: { kind: "lost", cpu: ring.cpu, count }, size };
    }
    return { record: undefined, size };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Ends any iteration, removes the rings from the map and unmaps them. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abortInternal.abort();
    this.#readiness?.close();
    this.#release();
  }

  #release(): void {
    const key = Buffer.alloc(4);
    for (const ring of this.#rings) {
      if (!this.#map.fd.closed) {
        key.writeUInt32LE(ring.cpu);
        try {
          mapDeleteElement(this.#map.fd.value, key);
        } catch {
          // the map entry is gone already
        }
      }
      try {
        perfEventDisable(ring.fd.value);
      } catch {
        // closing is what matters
      }
      ring.close();
    }
    this.#rings.length = 0;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw new NetbpfError(operation, "the reader is closed", "create a new PerfEventReader");
  }
}
