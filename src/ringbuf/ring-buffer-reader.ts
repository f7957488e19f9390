/**
 * Reads a BPF_MAP_TYPE_RINGBUF map through its shared memory, with no
 * system call per record.
 *
 * Layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position (the
 * only page user space may write); page 1 the producer position; the data
 * area follows and is mapped twice in a row, so a record that wraps around
 * the end of the ring is still contiguous in our view. Each record starts
 * with an 8-byte header: u32 length (bit 31: still being written, bit 30:
 * discarded) and u32 page offset; records are 8-byte aligned.
 */
import { argumentError, expectInstance, expectInteger, expectObject } from "../sys/argument-checks.js";
import { MapType } from "../sys/bpf-constants.js";
import { mapLookupElement } from "../sys/bpf.js";
import { possibleCpuCount } from "../sys/cpus.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { FileDescriptor } from "../sys/file-descriptor.js";
import { MemoryMapping, Protection, pageSize } from "../sys/memory-mapping.js";
import { Poller, type Readiness } from "../sys/poller.js";
import { expectReadOptions } from "../sys/read-options.js";

/**
 * On x86-64 an ordinary load already has acquire ordering (TSO) and V8 keeps
 * typed-array loads in program order, so the record header can be read
 * without Atomics.load, which V8 makes several times slower on memory that is
 * not a SharedArrayBuffer. Elsewhere (arm64) the header is read with Atomics.
 */
const plainHeaderLoads = process.arch === "x64";

const busyBit = 0x8000_0000;
const discardBit = 0x4000_0000;
const lengthMask = ~(busyBit | discardBit);
const headerSize = 8;
/** Largest ring whose record views are cached (an entry per 8 bytes of ring: 2 MiB → 256 Ki entries, allocated at the first read). */
const viewCacheLimit = 2 * 1024 * 1024;
/**
 * Larger rings hand out records from a staging area of this size instead:
 * the records of a batch are copied out of the ring in one copy, and views
 * into the staging area (cached by place, like the ring's own) are reused
 * batch after batch. Creating a Buffer per record costs more (60–130 ns
 * here) than reading a 64-byte record.
 */
const stagingSize = 1024 * 1024;
const operation = "open ring buffer reader";
const perCpuTypes = new Set<number>([MapType.PercpuArray, MapType.PercpuHash, MapType.LruPercpuHash]);

/** What a reader needs from a map: the BpfMap class satisfies it. */
export interface RingBufferSource {
  readonly fd: FileDescriptor;
  readonly type: number;
  readonly maxEntries: number;
}

/** A map that counts events the program could not reserve (an array or per-CPU array of u32/u64). */
export interface LostCounterSource {
  readonly fd: FileDescriptor;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
}

export interface RingBufferReaderOptions {
  /**
   * Where the program counts failed bpf_ringbuf_reserve/output calls. The
   * kernel keeps no such count, so netbpf's convention is: the program adds
   * 1 to this map element whenever a reservation fails; `reader.lost`
   * reads it (summing per-CPU values).
   */
  lostCounter?: { map: LostCounterSource; key?: number };
  /** Defaults to the process-wide Poller.shared(). */
  poller?: Poller;
}

export interface RingBufferRecordsOptions {
  /** Ends the iteration (without an error) when aborted. */
  signal?: AbortSignal;
  /**
   * Yield copies instead of views into the ring. Views are read-only memory
   * and valid only until the next iteration; copy to keep or modify them.
   */
  copy?: boolean;
}

/** One iteration of a reader (records() or batches()): see RingBufferReader.#consume. */
interface RingConsumer {
  readonly signal: AbortSignal;
  readonly done: IteratorReturnResult<undefined>;
  finish(): void;
  /** True when the iteration is over; an abort or close() found here finishes it. */
  ended(): boolean;
  iterator<T>(next: () => Promise<IteratorResult<T>>): AsyncIterableIterator<T>;
}

/** The arguments of readAvailable/readAvailableInPlace: cheap checks, they run per read. */
function checkReadArguments(callback: unknown, maximumRecords: number): void {
  if (typeof callback !== "function") throw argumentError("read ring buffer", "callback", "a function", callback);
  if (typeof maximumRecords !== "number" || !(maximumRecords >= 0) || (maximumRecords !== Number.POSITIVE_INFINITY && Math.floor(maximumRecords) !== maximumRecords)) {
    throw argumentError("read ring buffer", "maximumRecords", "an integer ≥ 0 or Infinity", maximumRecords);
  }
}

/** Reader of a BPF ring buffer map. One consumer at a time. */
export class RingBufferReader {
  /** Size of the data area in bytes (the map's maxEntries). */
  readonly size: number;
  readonly #mask: number;
  readonly #consumerMapping: MemoryMapping;
  readonly #producerMapping: MemoryMapping;
  readonly #consumerPosition: BigUint64Array;
  /** The low halves of the two 64-bit positions (little-endian). */
  readonly #producerLow: Uint32Array;
  readonly #consumerLowView: Uint32Array;
  #consumerLow: number;
  #consumerHigh: number;
  readonly #headers: Uint32Array;
  readonly #data: Buffer;
  readonly #view: DataView;
  readonly #dataStart: number;
  readonly #readiness: Readiness;
  readonly #lostCounter: { map: LostCounterSource; key: Buffer; value: Buffer; perCpu: boolean } | undefined;
  /**
   * Record views by position in the ring (position / 8), reused whenever a
   * record of the same length comes round to the same place again, as fixed-size
   * records do: no Buffer is created per record once the ring has wrapped.
   * Rings larger than viewCacheLimit get no cache.
   */
  #views: (Buffer | undefined)[] | undefined;
  /** Rings larger than viewCacheLimit: where #stage copies records to, and the views into it by place. */
  #staging: { area: Buffer; headers: Uint32Array; views: (Buffer | undefined)[] } | undefined;
  #consuming = false;
  #closed = false;
  #abortInternal = new AbortController();
  #received = 0;

  constructor(map: RingBufferSource, options: RingBufferReaderOptions = {}) {
    expectObject(operation, "map", map);
    expectInstance(operation, "map.fd", map.fd, FileDescriptor, "a FileDescriptor (map is a BpfMap)");
    if (map.type !== MapType.Ringbuf) {
      throw new UsageError(operation, `the map is a ${MapType[map.type] ?? map.type} map, not a Ringbuf map`, "for a PerfEventArray use PerfEventReader");
    }
    const page = pageSize();
    if (!Number.isInteger(map.maxEntries) || map.maxEntries < page || !Number.isInteger(Math.log2(map.maxEntries))) {
      throw argumentError(operation, "map.maxEntries", `a power of two of at least ${page} (a ring's size in bytes)`, map.maxEntries);
    }
    expectObject(operation, "options", options);
    if (options.lostCounter !== undefined) {
      const lostCounter = expectObject<NonNullable<RingBufferReaderOptions["lostCounter"]>>(operation, "options.lostCounter", options.lostCounter);
      this.#lostCounter = lostCounterOf(lostCounter.map, lostCounter.key ?? 0);
    }
    if (options.poller !== undefined) expectInstance(operation, "options.poller", options.poller, Poller);
    const fd = map.fd.value;
    this.size = map.maxEntries;
    this.#mask = this.size - 1;
    this.#consumerMapping = MemoryMapping.map("map ring buffer consumer page", fd, 0, page, Protection.Read | Protection.Write);
    try {
      this.#producerMapping = MemoryMapping.map("map ring buffer data", fd, page, page + 2 * this.size, Protection.Read);
    } catch (error) {
      this.#consumerMapping.close();
      throw error;
    }
    this.#consumerPosition = new BigUint64Array(this.#consumerMapping.memory, 0, 1);
    this.#consumerLowView = new Uint32Array(this.#consumerMapping.memory, 0, 1);
    this.#producerLow = new Uint32Array(this.#producerMapping.memory, 0, 1);
    const consumer = Atomics.load(this.#consumerPosition, 0);
    this.#consumerLow = Number(consumer & 0xffff_ffffn);
    this.#consumerHigh = Number(consumer >> 32n);
    this.#headers = new Uint32Array(this.#producerMapping.memory);
    this.#data = Buffer.from(this.#producerMapping.memory);
    this.#view = new DataView(this.#producerMapping.memory);
    this.#dataStart = page;
    try {
      this.#readiness = (options.poller ?? Poller.shared()).watch([fd]);
    } catch (error) {
      this.#unmap();
      throw error;
    }
  }

  /** Bytes the producer has committed or reserved that this reader has not consumed. */
  get available(): number {
    this.#checkOpen("read ring buffer");
    return this.#pendingBytes();
  }

  /** Records delivered by this reader so far (discarded records excluded). */
  get received(): number {
    return this.#received;
  }

  /**
   * Events the program could not put in the ring, read from the lostCounter
   * map (one system call). Undefined without a lostCounter.
   */
  get lost(): number | undefined {
    const counter = this.#lostCounter;
    if (!counter) return undefined;
    if (!mapLookupElement(counter.map.fd.value, counter.key, counter.value)) return 0;
    if (!counter.perCpu) return readCounter(counter.value, 0, counter.map.valueSize);
    const stride = Math.ceil(counter.map.valueSize / 8) * 8;
    let total = 0;
    for (let offset = 0; offset < counter.value.length; offset += stride) total += readCounter(counter.value, offset, counter.map.valueSize);
    return total;
  }

  /**
   * Calls `callback` for every record available now, in order, then hands
   * the space back to the producer once. Records are read-only views valid
   * only during the callback. Returns the number of records delivered.
   */
  readAvailable(callback: (record: Buffer) => void, maximumRecords = Number.POSITIVE_INFINITY): number {
    checkReadArguments(callback, maximumRecords);
    if (this.size <= viewCacheLimit) return this.readAvailableInPlace((_ring, offset, length) => callback(this.#viewAt(offset, length)), maximumRecords);
    this.#checkOpen("read ring buffer");
    if (this.#consuming) throw new UsageError("read ring buffer", "records() is iterating this reader", "a ring buffer has one consumer at a time");
    this.#consuming = true;
    let delivered = 0;
    try {
      while (delivered < maximumRecords) {
        const staged = this.#stage(this.#consumerLow, maximumRecords - delivered, callback);
        if (staged.bytes === 0) break;
        delivered += staged.records;
        if (this.#closed) return delivered;
        this.#advance(staged.bytes);
      }
    } finally {
      this.#consuming = false;
      this.#received += delivered;
    }
    return delivered;
  }

  /**
   * For rings larger than viewCacheLimit: finds the committed records from
   * `position` on (up to `maximumRecords`, and as many as fit the staging
   * area), copies them out of the ring in one copy, and calls `visit` with a
   * view of each (discarded ones skipped), reused from earlier batches where
   * a record of the same length lay at the same place. Headers are read
   * before the copy, so only committed bytes are copied. A record larger
   * than the staging area comes alone, as a view into the ring. Returns the
   * bytes to hand back and the records visited; the views stay valid until
   * the next call.
   */
  #stage(position: number, maximumRecords: number, visit: (record: Buffer) => void): { bytes: number; records: number } {
    const headers = this.#headers;
    const mask = this.#mask;
    const start = this.#dataStart;
    let pending = (Atomics.load(this.#producerLow, 0) - position) >>> 0;
    const first = start + (position & mask);
    let bytes = 0;
    let found = 0;
    while (pending > 0 && found < maximumRecords) {
      const at = start + ((position + bytes) & mask);
      const header = (plainHeaderLoads ? headers[at >>> 2]! : Atomics.load(headers, at >>> 2));
      if (header & busyBit) break;
      const total = ((header & lengthMask) + headerSize + 7) & ~7;
      if (bytes + total > stagingSize) {
        if (bytes > 0) break;
        // Larger than the staging area: this record alone, read in place.
        if (!(header & discardBit)) visit(this.#data.subarray(at + headerSize, at + headerSize + (header & lengthMask)));
        return { bytes: total, records: header & discardBit ? 0 : 1 };
      }
      bytes += total;
      pending -= total;
      if (!(header & discardBit)) found++;
    }
    if (bytes === 0) return { bytes: 0, records: 0 };
    if (this.#staging === undefined) {
      const area = Buffer.allocUnsafeSlow(stagingSize);
      this.#staging = { area, headers: new Uint32Array(area.buffer, area.byteOffset, stagingSize >>> 2), views: new Array<Buffer | undefined>(stagingSize >>> 3) };
    }
    const { area: staging, headers: stagedHeaders, views } = this.#staging;
    // The data area is mapped twice in a row: the records are contiguous even where they wrap.
    this.#data.copy(staging, 0, first, first + bytes);
    let records = 0;
    for (let offset = 0; offset < bytes;) {
      const header = stagedHeaders[offset >>> 2]!;
      const length = header & lengthMask;
      if (!(header & discardBit)) {
        const slot = offset >>> 3;
        let view = views[slot];
        if (view === undefined || view.length !== length) view = views[slot] = staging.subarray(offset + headerSize, offset + headerSize + length);
        records++;
        visit(view);
        if (this.#closed) break;
      }
      offset += (length + headerSize + 7) & ~7;
    }
    return { bytes, records };
  }

  /** A Buffer over `length` bytes at `offset` of the mapped ring, reused from the last record there when it had the same length. */
  #viewAt(offset: number, length: number): Buffer {
    let views = this.#views;
    if (views === undefined) {
      if (this.size > viewCacheLimit) return this.#data.subarray(offset, offset + length);
      views = this.#views = new Array<Buffer | undefined>(this.size >>> 3);
    }
    const slot = (offset - this.#dataStart - headerSize) >>> 3;
    const cached = views[slot];
    if (cached !== undefined && cached.length === length) return cached;
    const view = this.#data.subarray(offset, offset + length);
    views[slot] = view;
    return view;
  }

  /**
   * The fastest way to read: like readAvailable, but without creating a
   * Buffer per record. `callback` gets the whole mapped ring (read-only),
   * where the record lies in it, and a DataView over the same memory
   * (`view.getUint32(offset, true)` is much faster than Buffer's readUInt32LE).
   * Read the record there, during the callback only.
   */
  readAvailableInPlace(callback: (ring: Buffer, offset: number, length: number, view: DataView) => void, maximumRecords = Number.POSITIVE_INFINITY): number {
    checkReadArguments(callback, maximumRecords);
    this.#checkOpen("read ring buffer");
    if (this.#consuming) throw new UsageError("read ring buffer", "records() is iterating this reader", "a ring buffer has one consumer at a time");
    this.#consuming = true;
    const data = this.#data;
    const view = this.#view;
    const headers = this.#headers;
    const mask = this.#mask;
    const start = this.#dataStart;
    let delivered = 0;
    try {
      for (;;) {
        let pending = this.#pendingBytes();
        if (pending === 0 || delivered >= maximumRecords) break;
        let offset = this.#consumerLow & mask;
        let advanced = 0;
        while (pending > 0 && delivered < maximumRecords) {
          const header = (plainHeaderLoads ? headers[(start + offset) >>> 2]! : Atomics.load(headers, (start + offset) >>> 2));
          if (header & busyBit) break;
          const length = header & lengthMask;
          const total = (length + headerSize + 7) & ~7;
          if (!(header & discardBit)) {
            delivered++;
            callback(data, start + offset + headerSize, length, view);
            if (this.#closed) return delivered;
          }
          advanced += total;
          pending -= total;
          offset = (offset + total) & mask;
        }
        if (advanced === 0) break;
        this.#advance(advanced);
      }
    } finally {
      this.#consuming = false;
      this.#received += delivered;
    }
    return delivered;
  }

  /** Bytes between the consumer and producer positions (both 64-bit; their difference fits 32). */
  #pendingBytes(): number {
    return (Atomics.load(this.#producerLow, 0) - this.#consumerLow) >>> 0;
  }

  /** Hands `bytes` back to the producer by moving the consumer position. */
  #advance(bytes: number): void {
    const low = this.#consumerLow + bytes;
    if (low < 0x1_0000_0000) {
      // The high half is unchanged, so one 32-bit store publishes a consistent 64-bit position.
      this.#consumerLow = low;
      Atomics.store(this.#consumerLowView, 0, low);
    } else {
      this.#consumerLow = low - 0x1_0000_0000;
      this.#consumerHigh++;
      Atomics.store(this.#consumerPosition, 0, (BigInt(this.#consumerHigh) << 32n) | BigInt(this.#consumerLow));
    }
  }

  /**
   * Resolves when the ring has data (or may have: wakeups can be spurious).
   * Rejects with the signal's reason on abort.
   */
  async wait(signal?: AbortSignal): Promise<void> {
    if (signal !== undefined) expectInstance("wait for ring buffer", "signal", signal, AbortSignal);
    this.#checkOpen("wait for ring buffer");
    await this.#readiness.wait(signal);
  }

  /**
   * Records as they arrive, in the order the producer committed them.
   * Waiting costs no CPU (epoll). The iteration ends when `signal` aborts or
   * the reader is closed. Breaking out of a for-await loop hands the current
   * record back, and a later records() continues after it.
   */
  records(options: RingBufferRecordsOptions = {}): AsyncIterableIterator<Buffer> {
    const { signal, copy = false } = expectReadOptions<RingBufferRecordsOptions>("read ring buffer", options);
    const headers = this.#headers;
    const mask = this.#mask;
    const start = this.#dataStart;
    let unreleased = 0;
    let pending = 0;
    const consumer = this.#consume(signal, () => {
      if (unreleased > 0 && !this.#closed) this.#advance(unreleased);
      unreleased = 0;
    });
    // Space goes back to the producer in steps of an eighth of the ring (and before every wait), not per record.
    const releaseStep = Math.max(headerSize, this.size >>> 3);
    let position = 0;
    const take = (): Buffer | undefined => {
      if (unreleased >= releaseStep) {
        this.#advance(unreleased);
        unreleased = 0;
      }
      for (;;) {
        if (pending <= 0) {
          if (unreleased > 0) {
            this.#advance(unreleased);
            unreleased = 0;
          }
          pending = this.#pendingBytes();
          if (pending === 0) return undefined;
          position = this.#consumerLow;
        }
        const offset = position & mask;
        const header = (plainHeaderLoads ? headers[(start + offset) >>> 2]! : Atomics.load(headers, (start + offset) >>> 2));
        if (header & busyBit) {
          pending = 0;
          return undefined;
        }
        const length = header & lengthMask;
        const total = (length + headerSize + 7) & ~7;
        pending -= total;
        position += total;
        unreleased += total;
        if (header & discardBit) continue;
        return this.#viewAt(start + offset + headerSize, length);
      }
    };
    const next = (): Promise<IteratorResult<Buffer>> => {
      if (consumer.ended()) return Promise.resolve(consumer.done);
      const record = take();
      if (record === undefined) return waitThenNext();
      this.#received++;
      return Promise.resolve({ value: copy ? Buffer.from(record) : record, done: false });
    };
    const waitThenNext = async (): Promise<IteratorResult<Buffer>> => ((await this.#waitForRecords(consumer)) ? next() : consumer.done);
    return consumer.iterator(next);
  }

  /**
   * Records in batches: each step gives every record available (up to
   * `maximumRecords`, default 4096) as an array of views, so a consumer
   * awaits once per batch instead of once per record:
   * `for await (const batch of reader.batches()) for (const record of batch) …`.
   * The array and its views are valid until the next step, when their space
   * goes back to the producer; `copy` gives copies instead. Ends like records().
   */
  batches(options: RingBufferRecordsOptions & { maximumRecords?: number } = {}): AsyncIterableIterator<Buffer[]> {
    const { signal, copy = false, maximumRecords = 4096 } = expectReadOptions<RingBufferRecordsOptions & { maximumRecords?: number }>("read ring buffer", options);
    expectInteger("read ring buffer", "options.maximumRecords", maximumRecords, 1);
    const headers = this.#headers;
    const mask = this.#mask;
    const start = this.#dataStart;
    const batch: Buffer[] = [];
    let unreleased = 0;
    const release = (): void => {
      if (unreleased > 0 && !this.#closed) this.#advance(unreleased);
      unreleased = 0;
    };
    const consumer = this.#consume(signal, release);
    const push = (view: Buffer): void => {
      batch.push(copy ? Buffer.from(view) : view);
    };
    const fill = (): void => {
      release();
      batch.length = 0;
      if (this.size > viewCacheLimit) {
        // Through the staging area; past a staged run of discarded records only, stage the next.
        for (;;) {
          const staged = this.#stage(this.#consumerLow + unreleased, maximumRecords, push);
          unreleased += staged.bytes;
          if (staged.records > 0 || staged.bytes === 0) break;
        }
        this.#received += batch.length;
        return;
      }
      let pending = this.#pendingBytes();
      let position = this.#consumerLow;
      while (pending > 0 && batch.length < maximumRecords) {
        const offset = position & mask;
        const header = (plainHeaderLoads ? headers[(start + offset) >>> 2]! : Atomics.load(headers, (start + offset) >>> 2));
        if (header & busyBit) break;
        const length = header & lengthMask;
        const total = (length + headerSize + 7) & ~7;
        pending -= total;
        position += total;
        unreleased += total;
        if (header & discardBit) continue;
        const view = this.#viewAt(start + offset + headerSize, length);
        batch.push(copy ? Buffer.from(view) : view);
      }
      this.#received += batch.length;
    };
    const next = async (): Promise<IteratorResult<Buffer[]>> => {
      for (;;) {
        if (consumer.ended()) return consumer.done;
        fill();
        if (batch.length > 0) return { value: batch, done: false };
        // Discarded records only: hand their space back before sleeping.
        release();
        if (!(await this.#waitForRecords(consumer))) return consumer.done;
      }
    };
    return consumer.iterator(next);
  }

  /**
   * What records() and batches() share: one consumer at a time, the signal
   * that ends it (the caller's or close()), and its end, which hands the
   * space of the records read back to the producer (`release`).
   */
  #consume(signal: AbortSignal | undefined, release: () => void): RingConsumer {
    this.#checkOpen("read ring buffer");
    if (this.#consuming) throw new UsageError("read ring buffer", "this reader is already being consumed", "a ring buffer has one consumer at a time; iterate it once");
    this.#consuming = true;
    const internal = this.#abortInternal.signal;
    const combined = signal ? AbortSignal.any([signal, internal]) : internal;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      release();
      this.#consuming = false;
    };
    const done: IteratorReturnResult<undefined> = { value: undefined, done: true };
    return {
      signal: combined,
      done,
      finish,
      ended: () => {
        if (finished) return true;
        if (!combined.aborted && !this.#closed) return false;
        finish();
        return true;
      },
      iterator: <T>(next: () => Promise<IteratorResult<T>>): AsyncIterableIterator<T> => ({
        next,
        return: (): Promise<IteratorResult<T>> => {
          finish();
          return Promise.resolve(done);
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      }),
    };
  }

  /** Sleeps until the producer commits something; false (and the consumer finished) when it ended meanwhile. */
  async #waitForRecords(consumer: RingConsumer): Promise<boolean> {
    try {
      await this.#readiness.wait(consumer.signal);
      return true;
    } catch (error) {
      consumer.finish();
      if (consumer.signal.aborted || this.#closed) return false;
      throw error;
    }
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this.records();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Ends any iteration and unmaps the ring. Views handed out before are invalid afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abortInternal.abort();
    this.#readiness.close();
    this.#unmap();
  }

  #unmap(): void {
    this.#producerMapping.close();
    this.#consumerMapping.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw new NetbpfError(operation, "the reader is closed", "create a new RingBufferReader");
  }
}

function lostCounterOf(map: LostCounterSource, key: number): { map: LostCounterSource; key: Buffer; value: Buffer; perCpu: boolean } {
  expectObject(operation, "options.lostCounter.map", map);
  expectInstance(operation, "options.lostCounter.map.fd", map.fd, FileDescriptor, "a FileDescriptor (the map is a BpfMap)");
  if (map.keySize !== 4 || (map.valueSize !== 4 && map.valueSize !== 8)) {
    throw new UsageError(operation, `the lost counter map must have 4-byte keys and 4- or 8-byte values, got key ${map.keySize} B and value ${map.valueSize} B`,
      "use an Array or PercpuArray map of u64 counters");
  }
  expectInteger(operation, "options.lostCounter.key", key, 0, 0xffff_ffff);
  const perCpu = perCpuTypes.has(map.type);
  const keyBuffer = Buffer.alloc(4);
  keyBuffer.writeUInt32LE(key);
  const value = Buffer.alloc(perCpu ? Math.ceil(map.valueSize / 8) * 8 * possibleCpuCount() : map.valueSize);
  return { map, key: keyBuffer, value, perCpu };
}

function readCounter(buffer: Buffer, offset: number, size: number): number {
  return size === 8 ? Number(buffer.readBigUInt64LE(offset)) : buffer.readUInt32LE(offset);
}
