import { Command, MapFlag, MapType, UpdateFlag } from "../sys/bpf-constants.js";
import {
  getFdById, mapBatch, mapCreate, mapDeleteElement, mapFreeze, mapGetNextKey, mapLookupAndDeleteElement,
  mapLookupElement, mapUpdateElement, objectGet,
} from "../sys/bpf.js";
import { possibleCpuCount } from "../sys/cpus.js";
import { NetbpfError, SyscallError, UsageError } from "../sys/errors.js";
import { FileDescriptor } from "../sys/file-descriptor.js";
import { mapInfo, type MapInfo } from "../sys/object-info.js";
import { bytes, type Codec } from "./codec.js";
import { FdOwner } from "./fd-owner.js";
import { argumentError, expectFunction, expectInteger, expectIterable, expectObject } from "../sys/argument-checks.js";

/** Map types whose elements hold one value per possible CPU. */
export type PerCpuMapType = MapType.PercpuHash | MapType.PercpuArray | MapType.LruPercpuHash | MapType.PercpuCgroupStorage;

/**
 * What reading one element of a map of type `T` yields: `V`, or `V[]` (one
 * per possible CPU) for per-CPU types; `V | V[]` when the type is not known
 * at compile time (a map opened by path, id or fd).
 */
export type MapElement<T extends MapType, V> = [T] extends [PerCpuMapType] ? V[] : [T] extends [Exclude<MapType, PerCpuMapType>] ? V : V | V[];

/** Everything needed to create a map: plain data. */
export interface MapSpec<K = Buffer, V = Buffer, T extends MapType = MapType> {
  name?: string;
  type: T;
  /** Key size in bytes; taken from `key` when a codec is given. */
  keySize?: number;
  /** Value size in bytes (per CPU for per-CPU maps); taken from `value` when given. */
  valueSize?: number;
  maxEntries: number;
  flags?: number;
  key?: Codec<K>;
  value?: Codec<V>;
  /** For array-of-maps and hash-of-maps: the shape of the inner maps. */
  innerMap?: MapSpec<any, any>;
  numaNode?: number;
  mapExtra?: bigint;
  btf?: { fd: number; keyTypeId: number; valueTypeId: number };
}

const perCpuTypes = new Set<MapType>([MapType.PercpuHash, MapType.PercpuArray, MapType.LruPercpuHash, MapType.PercpuCgroupStorage]);

/** Whether elements of this map type hold one value per possible CPU (see PerCpuMapType). */
export function isPerCpuMapType(type: MapType): type is PerCpuMapType {
  return perCpuTypes.has(type);
}
const keylessTypes = new Set<MapType>([MapType.Queue, MapType.Stack, MapType.BloomFilter]);
const streamTypes = new Set<MapType>([MapType.Ringbuf, MapType.UserRingbuf]);
const fdValueTypes = new Set<MapType>([
  MapType.ProgArray, MapType.PerfEventArray, MapType.ArrayOfMaps, MapType.HashOfMaps, MapType.CgroupArray,
  MapType.Sockmap, MapType.Sockhash, MapType.Devmap, MapType.DevmapHash, MapType.Xskmap, MapType.Cpumap,
]);

function roundUp8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** Sizes the kernel expects for a map type, with sensible defaults filled in. */
function normalise(spec: MapSpec<any, any>): { keySize: number; valueSize: number } {
  let keySize = spec.key?.size ?? spec.keySize;
  let valueSize = spec.value?.size ?? spec.valueSize;
  switch (spec.type) {
    case MapType.Ringbuf:
    case MapType.UserRingbuf:
      keySize ??= 0;
      valueSize ??= 0;
      if (spec.maxEntries < 4096 || (spec.maxEntries & (spec.maxEntries - 1)) !== 0) {
        throw new UsageError("map create", `a ring buffer's size (maxEntries) must be a power of two of at least 4096 bytes, got ${spec.maxEntries}`);
      }
      break;
    case MapType.PerfEventArray:
    case MapType.ProgArray:
    case MapType.ArrayOfMaps:
    case MapType.HashOfMaps:
    case MapType.CgroupArray:
      keySize ??= 4;
      valueSize ??= 4;
      break;
    case MapType.Queue:
    case MapType.Stack:
      keySize ??= 0;
      break;
    case MapType.Array:
    case MapType.PercpuArray:
      keySize ??= 4;
      break;
  }
  if (keySize === undefined || valueSize === undefined) {
    throw new UsageError("map create", `${MapType[spec.type] ?? spec.type} map "${spec.name ?? ""}" needs keySize and valueSize (or key and value codecs)`);
  }
  return { keySize, valueSize };
}

export interface BatchOptions {
  /** Elements per system call (default 4096). */
  chunkSize?: number;
}

/** Checks the options of a batch operation (`options`, its chunkSize). */
function batchOptions(operation: string, options: unknown): BatchOptions {
  const checked = expectObject<BatchOptions>(operation, "options", options, true);
  if (checked.chunkSize !== undefined) expectInteger(operation, "options.chunkSize", checked.chunkSize, 1, 0xffff_ffff);
  return checked;
}

/** The UsageError for update flags that are not a 32-bit unsigned integer (put, push and friends check this per call: cheaply). */
function flagsError(flags: unknown): UsageError {
  return argumentError("map update", "flags", "UpdateFlag.Any, NoExist or Exist (an unsigned 32-bit integer)", flags);
}

/**
 * A BPF map. Keys and values are Buffers unless codecs are given. For per-CPU
 * maps use getPerCpu/putPerCpu, which read and write one value per possible CPU.
 * `E` is what iteration and batch reads yield per key: `V` for most maps,
 * `V[]` for per-CPU maps (see MapElement; create() infers it from the spec's type).
 */
export class BpfMap<K = Buffer, V = Buffer, E extends V | V[] = V | V[]> extends FdOwner {
  readonly fd: FileDescriptor;
  readonly type: MapType;
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly keyCodec: Codec<K>;
  readonly valueCodec: Codec<V>;
  /** True for per-CPU map types: each key holds one value per possible CPU. */
  readonly perCpu: boolean;
  readonly #cpus: number;
  readonly #stride: number;
  // Scratch buffers reused by single-element calls to avoid an allocation per call.
  readonly #key: Buffer;
  readonly #value: Buffer;
  /** Keys / values are plain Buffers (no codec was given). */
  readonly #rawKeys: boolean;
  readonly #rawValues: boolean;

  private constructor(fd: number, info: { type: MapType; name: string; keySize: number; valueSize: number; maxEntries: number; flags: number }, key?: Codec<K>, value?: Codec<V>) {
    // Not for users: BpfMap.create, openPinned, fromId and fromFd construct maps.
    expectInteger("construct BpfMap", "fd", fd, 0);
    expectObject("construct BpfMap", "info", info);
    super();
    this.fd = new FileDescriptor(fd);
    this.type = info.type;
    this.name = info.name;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.#rawKeys = key === undefined;
    this.#rawValues = value === undefined;
    this.keyCodec = key ?? (bytes(info.keySize) as unknown as Codec<K>);
    this.valueCodec = value ?? (bytes(info.valueSize) as unknown as Codec<V>);
    if (key && key.size !== info.keySize) throw new UsageError("map open", `key codec is ${key.size} bytes but the map's keys are ${info.keySize}`);
    if (value && value.size !== info.valueSize) throw new UsageError("map open", `value codec is ${value.size} bytes but the map's values are ${info.valueSize}`);
    this.perCpu = perCpuTypes.has(info.type);
    this.#cpus = this.perCpu ? possibleCpuCount() : 1;
    this.#stride = this.perCpu ? roundUp8(info.valueSize) : info.valueSize;
    this.#key = Buffer.alloc(Math.max(info.keySize, 1));
    this.#value = Buffer.alloc(Math.max(this.#stride * this.#cpus, 1));
  }

  /** Creates a map in the kernel. */
  static create<K = Buffer, V = Buffer, T extends MapType = MapType>(spec: MapSpec<K, V, T>): BpfMap<K, V, MapElement<T, V>> {
    expectObject("map create", "the map spec", spec);
    expectInteger("map create", "spec.type", spec.type, 0, 0xffffffff);
    const { keySize, valueSize } = normalise(spec);
    if (spec.name && !/^[A-Za-z0-9_.]*$/.test(spec.name)) {
      throw new UsageError("map create", `map name "${spec.name}" may only contain letters, digits, '_' and '.'`);
    }
    if (!Number.isInteger(spec.maxEntries) || spec.maxEntries <= 0) {
      throw new UsageError("map create", `maxEntries must be a positive integer, got ${spec.maxEntries}`);
    }
    let flags = spec.flags ?? 0;
    if (spec.type === MapType.LpmTrie) flags |= MapFlag.NoPrealloc;
    let inner: BpfMap<any, any> | undefined;
    if (spec.type === MapType.ArrayOfMaps || spec.type === MapType.HashOfMaps) {
      if (!spec.innerMap) throw new UsageError("map create", "a map-of-maps needs an innerMap spec");
      inner = BpfMap.create(spec.innerMap);
    }
    const name = (spec.name ?? "").slice(0, 15);
    try {
      const fd = mapCreate({
        mapType: spec.type, keySize, valueSize, maxEntries: spec.maxEntries, flags,
        innerMapFd: inner?.fd.value, numaNode: spec.numaNode, name, mapExtra: spec.mapExtra,
        btfFd: spec.btf?.fd, btfKeyTypeId: spec.btf?.keyTypeId, btfValueTypeId: spec.btf?.valueTypeId,
      });
      return new BpfMap<K, V, MapElement<T, V>>(fd, { type: spec.type, name, keySize, valueSize, maxEntries: spec.maxEntries, flags }, spec.key, spec.value);
    } catch (error) {
      if (error instanceof SyscallError && error.code === "EINVAL") {
        throw new NetbpfError("map create", `the kernel refused ${MapType[spec.type] ?? spec.type} map "${name}" (key ${keySize} B, value ${valueSize} B, ${spec.maxEntries} entries, flags 0x${flags.toString(16)}): EINVAL`,
          "check the sizes and flags this map type requires, or whether this kernel supports the map type (netbpf features)", { cause: error });
      }
      throw error;
    } finally {
      inner?.close();
    }
  }

  /** Opens a map pinned in bpffs, optionally with codecs for its keys and values. */
  static openPinned<K = Buffer, V = Buffer>(path: string, codecs: { key?: Codec<K>; value?: Codec<V> } = {}): BpfMap<K, V> {
    return BpfMap.fromFd(objectGet(path), codecs);
  }

  /** Opens a loaded map by id (as `netbpf map list` shows). */
  static fromId<K = Buffer, V = Buffer>(id: number, codecs: { key?: Codec<K>; value?: Codec<V> } = {}): BpfMap<K, V> {
    const fd = getFdById("map", id);
    if (fd === undefined) throw new NetbpfError("open map", `no map with id ${id}`, "list maps with `netbpf map list`");
    return BpfMap.fromFd(fd, codecs);
  }

  /** Takes ownership of an existing map file descriptor. */
  static fromFd<K = Buffer, V = Buffer>(fd: number, codecs: { key?: Codec<K>; value?: Codec<V> } = {}): BpfMap<K, V> {
    expectInteger("open map", "fd", fd, 0);
    expectObject("open map", "codecs", codecs);
    try {
      const info = mapInfo(fd);
      return new BpfMap(fd, info, codecs.key, codecs.value);
    } catch (error) {
      new FileDescriptor(fd).close();
      throw error;
    }
  }

  info(): MapInfo {
    return mapInfo(this.fd.value);
  }

  get id(): number {
    return this.info().id;
  }

  private checkElementAccess(operation: string): void {
    if (streamTypes.has(this.type)) {
      throw new UsageError(operation, `${MapType[this.type]} maps have no elements to ${operation.split(" ").pop()}; read them with RingBufferReader`);
    }
  }

  /** The UsageError for a key or value (`name`) that the map's codec could not encode. */
  #encodingError(operation: string, name: string, isKey: boolean, value: unknown, error: unknown): UsageError {
    const size = isKey ? this.keySize : this.valueSize;
    const expected = (isKey ? this.#rawKeys : this.#rawValues)
      ? `a Buffer of ${size} bytes${Buffer.isBuffer(value) ? ` (this one has ${value.length})` : ""}`
      : `a value the map's ${isKey ? "key" : "value"} codec can encode (${error instanceof Error ? error.message : String(error)})`;
    return argumentError(operation, name, expected, value);
  }

  private encodeKey(key: K, operation: string): Buffer {
    try {
      this.keyCodec.encode(key, this.#key, 0);
    } catch (error) {
      throw this.#encodingError(operation, "key", true, key, error);
    }
    return this.#key;
  }

  #encodeValue(value: V, operation: string, name = "value"): Buffer {
    try {
      this.valueCodec.encode(value, this.#value, 0);
    } catch (error) {
      throw this.#encodingError(operation, name, false, value, error);
    }
    return this.#value;
  }

  /** The value for `key`, or undefined when absent. */
  get(key: K): V | undefined {
    this.checkElementAccess("map lookup");
    const keyBuffer = this.keyBuffer(key, "map lookup");
    if (this.perCpu) throw new UsageError("map lookup", `${this.name || "this map"} is per-CPU; use getPerCpu()`);
    if (!mapLookupElement(this.fd.value, keyBuffer, this.#value)) return undefined;
    return this.valueCodec.decode(this.#value, 0);
  }

  has(key: K): boolean {
    this.checkElementAccess("map lookup");
    const keyBuffer = this.keyBuffer(key, "map lookup");
    return mapLookupElement(this.fd.value, keyBuffer, this.#value);
  }

  /** One value per possible CPU, or undefined when the key is absent. */
  getPerCpu(key: K): V[] | undefined {
    const keyBuffer = this.encodeKey(key, "map lookup");
    if (!this.perCpu) throw new UsageError("map lookup", "not a per-CPU map; use get()");
    if (!mapLookupElement(this.fd.value, keyBuffer, this.#value)) return undefined;
    return this.decodePerCpu(this.#value, 0);
  }

  private decodePerCpu(buffer: Buffer, offset: number): V[] {
    const out: V[] = new Array(this.#cpus);
    for (let cpu = 0; cpu < this.#cpus; cpu++) out[cpu] = this.valueCodec.decode(buffer, offset + cpu * this.#stride);
    return out;
  }

  private encodePerCpu(values: V[] | V, buffer: Buffer, offset: number, name = "values"): void {
    if (values === undefined) throw argumentError("map update", name, `one value for every CPU or an array of ${this.#cpus} (one per possible CPU)`, values);
    for (let cpu = 0; cpu < this.#cpus; cpu++) {
      const value = Array.isArray(values) ? values[cpu] : values;
      if (value === undefined) throw argumentError("map update", name, `one value for every CPU or an array of ${this.#cpus} (one per possible CPU)`, values);
      try {
        this.valueCodec.encode(value, buffer, offset + cpu * this.#stride);
      } catch (error) {
        throw this.#encodingError("map update", Array.isArray(values) ? `${name}[${cpu}]` : name, false, value, error);
      }
    }
  }

  private keyBuffer(key: K, operation: string): Buffer | null {
    return this.keySize === 0 ? null : this.encodeKey(key, operation);
  }

  /** Sets `key` to `value`. `flags`: UpdateFlag.Any (default), NoExist or Exist. */
  put(key: K, value: V, flags: number = UpdateFlag.Any): void {
    this.checkElementAccess("map update");
    const keyBuffer = this.keyBuffer(key, "map update");
    if (this.perCpu) this.encodePerCpu(value, this.#value, 0, "value");
    else this.#encodeValue(value, "map update");
    if ((flags >>> 0) !== flags) throw flagsError(flags);
    mapUpdateElement(this.fd.value, keyBuffer, this.#value, flags);
  }

  /** Sets each CPU's value for `key` (an array of one value per CPU, or one value for all). */
  putPerCpu(key: K, values: V[] | V, flags: number = UpdateFlag.Any): void {
    const keyBuffer = this.encodeKey(key, "map update");
    this.encodePerCpu(values, this.#value, 0);
    if ((flags >>> 0) !== flags) throw flagsError(flags);
    if (!this.perCpu) throw new UsageError("map update", "not a per-CPU map; use put()");
    mapUpdateElement(this.fd.value, keyBuffer, this.#value, flags);
  }

  /** Stores a file descriptor (program, map, perf event …) in a prog-array, map-of-maps or perf array. */
  putFd(key: K, fd: number | { fd: FileDescriptor }, flags: number = UpdateFlag.Any): void {
    const keyBuffer = this.encodeKey(key, "map update");
    const descriptor = typeof fd === "number" ? fd : (fd as { fd?: unknown } | null)?.fd instanceof FileDescriptor ? fd.fd.value : -1;
    if (!Number.isInteger(descriptor) || descriptor < 0 || descriptor > 0x7fff_ffff) {
      throw argumentError("map update", "fd", "a file descriptor number or an object that owns one (a Program, a BpfMap)", fd);
    }
    if ((flags >>> 0) !== flags) throw flagsError(flags);
    if (!fdValueTypes.has(this.type)) throw new UsageError("map update", `${MapType[this.type]} maps do not hold file descriptors`);
    const value = Buffer.alloc(4);
    value.writeUInt32LE(descriptor);
    try {
      mapUpdateElement(this.fd.value, keyBuffer, value, flags);
    } catch (error) {
      if (error instanceof SyscallError && error.code === "EBADF") throw argumentError("map update", "fd", "an open file descriptor", fd);
      throw error;
    }
  }

  /** Removes `key`; false when it was not there. */
  delete(key: K): boolean {
    this.checkElementAccess("map delete");
    const keyBuffer = this.encodeKey(key, "map delete");
    return mapDeleteElement(this.fd.value, keyBuffer);
  }

  /** Queue/stack: adds a value. */
  push(value: V, flags: number = UpdateFlag.Any): void {
    this.#encodeValue(value, "map push");
    if ((flags >>> 0) !== flags) throw flagsError(flags);
    if (!keylessTypes.has(this.type)) throw new UsageError("map push", "push() is for queue, stack and bloom filter maps");
    mapUpdateElement(this.fd.value, null, this.#value, flags);
  }

  /** Queue/stack: removes and returns the next value, or undefined when empty. */
  pop(): V | undefined {
    if (!keylessTypes.has(this.type)) throw new UsageError("map pop", "pop() is for queue and stack maps");
    if (!mapLookupAndDeleteElement(this.fd.value, null, this.#value)) return undefined;
    return this.valueCodec.decode(this.#value, 0);
  }

  /** Queue/stack: the next value without removing it. */
  peek(): V | undefined {
    if (!keylessTypes.has(this.type)) throw new UsageError("map peek", "peek() is for queue and stack maps");
    if (!mapLookupElement(this.fd.value, null, this.#value)) return undefined;
    return this.valueCodec.decode(this.#value, 0);
  }

  /** Hash maps: looks up and removes `key` in one step. */
  take(key: K): V | undefined {
    if (!mapLookupAndDeleteElement(this.fd.value, this.encodeKey(key, "map take"), this.#value)) return undefined;
    return this.valueCodec.decode(this.#value, 0);
  }

  /** Iterates over keys with BPF_MAP_GET_NEXT_KEY (one system call per key). */
  *keys(): IterableIterator<K> {
    this.checkElementAccess("map iterate");
    if (this.keySize === 0) throw new UsageError("map iterate", "queue and stack maps have no keys; use pop()");
    let current: Buffer | null = null;
    const next = Buffer.alloc(this.keySize);
    for (;;) {
      if (!mapGetNextKey(this.fd.value, current, next)) return;
      yield this.keyCodec.decode(next, 0);
      current = Buffer.from(next);
    }
  }

  /** Iterates over [key, value] pairs; for per-CPU maps the value is an array per CPU. */
  *entries(): IterableIterator<[K, E]> {
    const value = Buffer.alloc(this.#value.length);
    for (const key of this.keys()) {
      if (!mapLookupElement(this.fd.value, this.encodeKey(key, "map iterate"), value)) continue; // deleted meanwhile
      yield [key, (this.perCpu ? this.decodePerCpu(value, 0) : this.valueCodec.decode(value, 0)) as E];
    }
  }

  [Symbol.iterator](): IterableIterator<[K, E]> {
    return this.entries();
  }

  /**
   * Reads every element with BPF_MAP_LOOKUP_BATCH, a chunk per system call;
   * falls back to per-key iteration where the kernel or map type has no
   * batch support. Per-CPU values come back as arrays.
   */
  lookupBatch(options: BatchOptions = {}): [K, E][] {
    return this.batchRead(Command.MapLookupBatch, batchOptions("map batch lookup", options));
  }

  /** Like lookupBatch, and deletes what it read (atomically per chunk). */
  lookupAndDeleteBatch(options: BatchOptions = {}): [K, E][] {
    return this.batchRead(Command.MapLookupAndDeleteBatch, batchOptions("map batch lookup and delete", options));
  }

  private batchRead(command: Command.MapLookupBatch | Command.MapLookupAndDeleteBatch, options: BatchOptions): [K, E][] {
    const out: [K, E][] = [];
    this.visitBatch(command, options, (key, value) => void out.push([key, value]));
    return out;
  }

  /**
   * Calls `visit` for every element, read with BPF_MAP_LOOKUP_BATCH a chunk
   * per system call (the fastest way to read a whole map: no result array).
   */
  forEachBatch(visit: (key: K, value: E) => void, options: BatchOptions = {}): number {
    expectFunction("map batch lookup", "visit", visit);
    return this.visitBatch(Command.MapLookupBatch, batchOptions("map batch lookup", options), visit);
  }

  private visitBatch(command: Command.MapLookupBatch | Command.MapLookupAndDeleteBatch, options: BatchOptions, visit: (key: K, value: E) => void): number {
    this.checkElementAccess("map batch lookup");
    const chunk = Math.max(1, Math.min(options.chunkSize ?? 8192, this.maxEntries));
    const valueBytes = this.#stride * this.#cpus;
    const keys = Buffer.alloc(chunk * this.keySize);
    const values = Buffer.alloc(chunk * valueBytes);
    // The cursor is opaque; hash maps use a bucket index, so 8 bytes is always enough.
    const cursorSize = Math.max(this.keySize, 8);
    let inBatch: Buffer | null = null;
    const outBatch = Buffer.alloc(cursorSize);
    const keyCodec = this.keyCodec;
    const valueCodec = this.valueCodec;
    const keySize = this.keySize;
    let total = 0;
    for (;;) {
      let result;
      try {
        result = mapBatch(command, this.fd.value, { inBatch, outBatch, keys, values, count: chunk });
      } catch (error) {
        if (error instanceof SyscallError && total === 0 && ["EINVAL", "EOPNOTSUPP", "ENOTSUPP"].includes(error.code)) {
          const all = this.fallbackRead(command === Command.MapLookupAndDeleteBatch);
          for (const [key, value] of all) visit(key, value);
          return all.length;
        }
        if (error instanceof SyscallError && error.code === "ENOSPC" && total === 0) {
          // A hash bucket holds more elements than one chunk: retry bigger.
          return this.visitBatch(command, { chunkSize: chunk * 2 }, visit);
        }
        throw error;
      }
      const count = result.count;
      if (this.perCpu) {
        for (let i = 0; i < count; i++) visit(keyCodec.decode(keys, i * keySize), this.decodePerCpu(values, i * valueBytes) as E);
      } else {
        for (let i = 0; i < count; i++) visit(keyCodec.decode(keys, i * keySize), valueCodec.decode(values, i * valueBytes) as E);
      }
      total += count;
      if (result.done) return total;
      inBatch = Buffer.from(outBatch);
    }
  }

  private fallbackRead(remove: boolean): [K, E][] {
    const out = [...this.entries()];
    if (remove) for (const [key] of out) this.delete(key);
    return out;
  }

  /** Writes many elements with BPF_MAP_UPDATE_BATCH (falls back to one call per element). */
  updateBatch(entries: Iterable<[K, E]>, options: BatchOptions & { flags?: number } = {}): number {
    const operation = "map batch update";
    const list = Array.isArray(entries) ? entries : [...expectIterable<[K, E]>(operation, "entries", entries)];
    batchOptions(operation, options);
    if (options.flags !== undefined) expectInteger(operation, "options.flags", options.flags, 0, 0xffff_ffff);
    this.checkElementAccess(operation);
    const chunk = Math.max(1, options.chunkSize ?? 4096);
    const valueBytes = this.#stride * this.#cpus;
    // Everything is encoded before the first write: a bad entry changes nothing.
    const allKeys = Buffer.alloc(list.length * this.keySize);
    const allValues = Buffer.alloc(list.length * valueBytes);
    let index = 0;
    let isKey = true;
    try {
      for (; index < list.length; index++) {
        const entry = list[index];
        if (!Array.isArray(entry)) throw argumentError(operation, `entries[${index}]`, "a [key, value] pair", entry);
        isKey = true;
        this.keyCodec.encode(entry[0], allKeys, index * this.keySize);
        isKey = false;
        if (this.perCpu) this.encodePerCpu(entry[1], allValues, index * valueBytes, `entries[${index}][1]`);
        else this.valueCodec.encode(entry[1] as V, allValues, index * valueBytes);
      }
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw this.#encodingError(operation, `entries[${index}][${isKey ? 0 : 1}]`, isKey, list[index]![isKey ? 0 : 1], error);
    }
    let written = 0;
    for (let start = 0; start < list.length; start += chunk) {
      const count = Math.min(chunk, list.length - start);
      const keys = allKeys.subarray(start * this.keySize, (start + count) * this.keySize);
      const values = allValues.subarray(start * valueBytes, (start + count) * valueBytes);
      try {
        const result = mapBatch(Command.MapUpdateBatch, this.fd.value, { keys, values, count, elementFlags: options.flags });
        written += result.count;
      } catch (error) {
        if (error instanceof SyscallError && written === 0 && ["EINVAL", "EOPNOTSUPP", "ENOTSUPP"].includes(error.code)) {
          for (const [key, value] of list) {
            if (this.perCpu) this.putPerCpu(key, value, options.flags);
            else this.put(key, value as V, options.flags);
          }
          return list.length;
        }
        throw error;
      }
    }
    return written;
  }

  /** Deletes many keys with BPF_MAP_DELETE_BATCH (falls back to one call per key). Returns how many were deleted. */
  deleteBatch(keys: Iterable<K>, options: BatchOptions = {}): number {
    const operation = "map batch delete";
    const list = Array.isArray(keys) ? keys : [...expectIterable<K>(operation, "keys", keys)];
    batchOptions(operation, options);
    this.checkElementAccess(operation);
    const chunk = Math.max(1, options.chunkSize ?? 4096);
    const allKeys = Buffer.alloc(list.length * this.keySize);
    let index = 0;
    try {
      for (; index < list.length; index++) this.keyCodec.encode(list[index]!, allKeys, index * this.keySize);
    } catch (error) {
      throw this.#encodingError(operation, `keys[${index}]`, true, list[index], error);
    }
    let deleted = 0;
    for (let start = 0; start < list.length; start += chunk) {
      const part = list.slice(start, start + chunk);
      const buffer = allKeys.subarray(start * this.keySize, (start + part.length) * this.keySize);
      try {
        deleted += mapBatch(Command.MapDeleteBatch, this.fd.value, { keys: buffer, values: null, count: part.length }).count;
      } catch (error) {
        if (error instanceof SyscallError && deleted === 0 && ["EINVAL", "EOPNOTSUPP", "ENOTSUPP"].includes(error.code)) {
          return list.reduce((n, key) => n + (this.delete(key) ? 1 : 0), 0);
        }
        if (error instanceof SyscallError && error.code === "ENOENT") {
          // The kernel stops at the first missing key; continue one by one.
          for (const key of part.slice(0)) if (this.delete(key)) deleted++;
          continue;
        }
        throw error;
      }
    }
    return deleted;
  }

  /** Makes the map read-only for user space (used for .rodata). */
  freeze(): void {
    mapFreeze(this.fd.value);
  }
}
