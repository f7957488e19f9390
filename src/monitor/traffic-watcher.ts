/**
 * Watching traffic: packets and bytes per local port, connection, process or
 * remote host, counted in the kernel (see programs/traffic-counter.ts) and
 * read a snapshot at a time with batch map lookups.
 *
 * Two ways to see traffic:
 *  - default: cgroup skb ingress and egress on the cgroup v2 root — every
 *    packet sent or received by a socket of this host (any interface, any
 *    network namespace, loopback included), but no forwarded traffic;
 *  - interfaces (`interfaces: ["veth0"]`): tcx ingress and egress on those
 *    interfaces — everything crossing them, forwarded traffic included.
 */
import { closeSync, constants, openSync } from "node:fs";
import { helperIds } from "../asm/helpers.js";
import { compileCaptureFilter } from "../capture/capture-filter.js";
import { interfaceLinkType, monotonicToRealtimeOffset } from "../capture/live-capture.js";
import { u32, u64 } from "../core/codec.js";
import { BpfMap } from "../core/map.js";
import { Program } from "../core/program.js";
import { probeHelper } from "../features/features.js";
import { attachCgroup } from "../link/cgroup.js";
import { attachTcx } from "../link/tcx.js";
import { formatIpv4, formatIpv6 } from "../pcap/address-text.js";
import { protocolName } from "../pcap/ip-protocol.js";
import { OwnedResources } from "../sys/owned-resources.js";
import { LinkType } from "../pcap/link-type.js";
import { socketOwnerProgram } from "../programs/capture-program.js";
import {
  portOwnerProgram,
  TrafficKeyOffset,
  trafficKeySize,
  trafficCountsName,
  trafficCounterProgram,
  trafficOwnerValueSize,
  trafficPortOwnersName,
  trafficProcessesName,
  TrafficStatistic,
  trafficStatisticKinds,
  trafficStatisticsName,
  TrafficValueOffset,
  trafficValueSize,
  trafficGroupings,
  type TrafficGrouping,
} from "../programs/traffic-counter.js";
import { AttachType, MapType, ProgramType } from "../sys/bpf-constants.js";
import { rootCgroup } from "../sys/cgroup.js";
import { argumentError, expectArray, expectBoolean, expectInstance, expectInteger, expectObject, expectOneOf, expectPorts, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { interfaceIndex, interfaceName } from "../sys/socket.js";
import { procfsPortOwners, type ProcessIdentity } from "./socket-owners.js";
import { delay } from "../sys/delay.js";

export { trafficGroupings, type TrafficGrouping } from "../programs/traffic-counter.js";

export interface TrafficWatcherOptions {
  /** What a row is: a local port (default), a connection, a process, or a remote host. */
  by?: TrafficGrouping;
  /** Interfaces to watch with tcx; empty or absent = this host's sockets through the root cgroup. */
  interfaces?: readonly string[];
  /** Only packets whose local or remote port is one of these (TCP and UDP). */
  ports?: readonly number[];
  /** A pcap-filter expression selecting what is counted. */
  filter?: string;
  /** Split rows by interface too. */
  perInterface?: boolean;
  /** Most keys the kernel keeps (LRU: the least recently used go first; evictions are counted). Default 16384. */
  maxEntries?: number;
  /** Find the process owning each socket (default true). */
  processes?: boolean;
  /** A cgroup v2 directory to watch instead of the root (cgroup mode only). */
  cgroup?: string;
  /** Record each row's first and last packet (`firstSeen`/`lastSeen`; one clock read per packet in the kernel). */
  times?: boolean;
}

export interface TrafficCounts {
  packetsIn: number;
  bytesIn: number;
  payloadIn: number;
  packetsOut: number;
  bytesOut: number;
  payloadOut: number;
}

export interface TrafficRates {
  packetsInPerSecond: number;
  bytesInPerSecond: number;
  packetsOutPerSecond: number;
  bytesOutPerSecond: number;
}

export interface TrafficRow extends TrafficCounts, TrafficRates {
  /** Stable identity of the row within a watcher ("tcp/8080", …). */
  key: string;
  protocol?: string;
  family?: "ipv4" | "ipv6";
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  interface?: string;
  process: ProcessIdentity | null;
  /** When the row's first packet was counted (ms since the epoch; only with `times`). */
  firstSeen?: number;
  /** When its last packet was counted (ms since the epoch; only with `times`). */
  lastSeen?: number;
}

export interface TrafficSnapshot {
  /** ISO 8601 time of the reading. */
  time: string;
  /** Seconds since the previous snapshot (since the start for the first). */
  interval: number;
  by: TrafficGrouping;
  /** "cgroup" (this host's sockets) or "interfaces". */
  source: "cgroup" | "interfaces";
  interfaces: string[];
  rows: TrafficRow[];
  totals: TrafficCounts & TrafficRates;
  /** Keys in the kernel's map now. */
  entries: number;
  /** Keys the LRU evicted (their counts are gone from the rows). */
  evictions: number;
  /** Packets not counted because no key could be created. */
  lost: number;
  /** Packets that reached the counting programs (before filters). */
  packetsSeen: number;
}

const procfsRetryMilliseconds = 10_000;
/** Socket owners remembered between snapshots (the cache starts afresh when full). */
const maximumCachedOwners = 65536;

interface KernelCounts {
  counts: number[];
  /** The socket cookies the CPUs recorded (each CPU keeps the first it saw), distinct, non-zero. */
  cookies: bigint[];
  /** First and last packet over all CPUs, CLOCK_MONOTONIC ns (0: not recorded). */
  firstSeen: number;
  lastSeen: number;
}

/** A kernel key, decoded: the row's fields and label (without the process), and its owner once known by socket cookie. */
interface KeyDescription {
  id: string;
  fields: Partial<Pick<TrafficRow, "protocol" | "family" | "localAddress" | "localPort" | "remoteAddress" | "remotePort" | "interface">>;
  label: string;
  protocol: number;
  localPort: number;
  owner: ProcessIdentity | null;
}

interface Group {
  row: Omit<TrafficRow, keyof TrafficCounts | keyof TrafficRates>;
  counts: TrafficCounts;
  firstSeen: number;
  lastSeen: number;
}

function emptyCounts(): TrafficCounts {
  return { packetsIn: 0, bytesIn: 0, payloadIn: 0, packetsOut: 0, bytesOut: 0, payloadOut: 0 };
}

const countFields = ["packetsIn", "bytesIn", "payloadIn", "packetsOut", "bytesOut", "payloadOut"] as const;

function decodeProcess(value: Buffer): ProcessIdentity {
  const commandBytes = value.subarray(8, 24);
  const end = commandBytes.indexOf(0);
  return { pid: value.readUInt32LE(0), command: commandBytes.subarray(0, end < 0 ? 16 : end).toString("utf8") };
}

/** A running traffic watcher; close() detaches everything. */
export class TrafficWatcher implements Disposable {
  readonly by: TrafficGrouping;
  readonly source: "cgroup" | "interfaces";
  readonly interfaces: string[];
  readonly ports: number[];
  readonly filter: string;
  readonly perInterface: boolean;
  readonly maxEntries: number;
  /** Whether processes are being attributed, and why not when asked for and unavailable. */
  readonly processes: boolean;
  readonly processesUnavailable?: string;
  readonly times: boolean;
  readonly #owned = new OwnedResources();
  readonly #counts: BpfMap;
  readonly #statistics: BpfMap<number, bigint>;
  readonly #socketOwners: BpfMap | undefined;
  readonly #portOwners: BpfMap<number, Buffer> | undefined;
  /** Owners found in procfs (sockets from before the start), and ports looked up there in vain. */
  readonly #procfsOwners = new Map<number, ProcessIdentity>();
  /** Ports looked up in procfs in vain → when (ms): tried again after procfsRetryMilliseconds. */
  readonly #procfsMisses = new Map<number, number>();
  /** Socket cookie → the process that created it (or null: none recorded); bounded by maximumCachedOwners. */
  readonly #cookieOwners = new Map<bigint, ProcessIdentity | null>();
  /** (protocol << 16 | port) → the process that bound it, looked up once per snapshot (a port may be bound again). */
  readonly #boundPortOwners = new Map<number, ProcessIdentity | null>();
  /** Interface names by index, looked up once per snapshot (one system call each, and many rows share an interface). */
  readonly #interfaceNames = new Map<number, string>();
  /** Kernel keys (as latin1 text) → what they say, for the keys in the map at the last snapshot. */
  #descriptions = new Map<string, KeyDescription>();
  #previous = new Map<string, TrafficCounts>();
  #previousTime: bigint;
  #previousTotals = emptyCounts();
  #closed = false;

  private constructor(options: TrafficWatcherOptions) {
    const operation = "watch traffic";
    expectObject(operation, "options", options);
    this.by = expectOneOf(operation, "options.by", options.by ?? "port", trafficGroupings);
    this.ports = [...new Set(expectPorts(operation, "options.ports", options.ports))];
    this.filter = (options.filter === undefined ? "" : expectString(operation, "options.filter", options.filter)).trim();
    this.perInterface = expectBoolean(operation, "options.perInterface", options.perInterface, true) ?? false;
    this.times = expectBoolean(operation, "options.times", options.times, true) ?? false;
    this.maxEntries = expectInteger(operation, "options.maxEntries", options.maxEntries ?? 16384, 16, 1 << 24);
    expectBoolean(operation, "options.processes", options.processes, true);
    if (options.cgroup !== undefined) expectString(operation, "options.cgroup", options.cgroup);
    const interfaces = [...new Set(expectArray<string>(operation, "options.interfaces", options.interfaces, true))];
    interfaces.forEach((name, index) => expectString(operation, `options.interfaces[${index}]`, name));
    this.interfaces = interfaces;
    this.source = interfaces.length > 0 ? "interfaces" : "cgroup";
    if (this.source === "interfaces" && options.cgroup !== undefined) throw new UsageError("watch traffic", "a cgroup and interfaces were both given", "watch either a cgroup (its sockets) or interfaces");
    // Resolve everything that can be wrong before loading anything.
    const indexes = interfaces.map((name) => interfaceIndex(name, "watch traffic"));
    const linkTypes = interfaces.map((name) => interfaceLinkType(name));
    const filterFor = new Map<number, ReturnType<typeof compileCaptureFilter>>();
    if (this.filter !== "") {
      const types = this.source === "cgroup" ? [LinkType.RAW] : [...new Set(linkTypes)];
      for (const type of types) filterFor.set(type, compileCaptureFilter(this.filter, type, { packetMetadata: this.source === "interfaces", hook: this.source === "cgroup" ? "cgroup" : "tc" }));
    }
    let processes = (options.processes ?? true) || this.by === "process";
    let unavailable: string | undefined;
    if (processes && !probeHelper(ProgramType.CgroupSock, helperIds.get_current_comm)) {
      processes = false;
      unavailable = "this kernel lacks bpf_get_current_comm for cgroup sock programs";
    }
    this.processes = processes;
    this.processesUnavailable = unavailable;
    this.#previousTime = process.hrtime.bigint();

    try {
      this.#counts = this.#own(BpfMap.create({ type: MapType.LruPercpuHash, keySize: trafficKeySize, valueSize: trafficValueSize, maxEntries: this.maxEntries, name: trafficCountsName }));
      this.#statistics = this.#own(BpfMap.create({ type: MapType.PercpuArray, key: u32, value: u64, maxEntries: trafficStatisticKinds, name: trafficStatisticsName }));
      const maps: Record<string, BpfMap<never, never> | BpfMap> = { [trafficCountsName]: this.#counts, [trafficStatisticsName]: this.#statistics as unknown as BpfMap };
      const cgroupFd = openSync(options.cgroup ?? rootCgroup(), constants.O_RDONLY | constants.O_DIRECTORY);
      this.#own({ close: () => closeSync(cgroupFd) });
      if (processes) {
        this.#socketOwners = this.#own(BpfMap.create({ type: MapType.LruHash, keySize: 8, valueSize: trafficOwnerValueSize, maxEntries: 65536, name: trafficProcessesName }));
        this.#portOwners = this.#own(BpfMap.create({ type: MapType.LruHash, key: u32, valueSize: trafficOwnerValueSize, maxEntries: 65536, name: trafficPortOwnersName }));
        const owner = this.#own(Program.load({ type: ProgramType.CgroupSock, instructions: socketOwnerProgram(), name: "top_owner", expectedAttachType: AttachType.CgroupInetSockCreate }, { maps: { [trafficProcessesName]: this.#socketOwners } }));
        this.#own(attachCgroup(owner, { cgroup: cgroupFd, attachType: "sock_create" }));
        for (const hook of ["post_bind4", "post_bind6"] as const) {
          const attachType = hook === "post_bind4" ? AttachType.CgroupInet4PostBind : AttachType.CgroupInet6PostBind;
          const bound = this.#own(Program.load({ type: ProgramType.CgroupSock, instructions: portOwnerProgram(), name: "top_port_owner", expectedAttachType: attachType }, { maps: { [trafficPortOwnersName]: this.#portOwners as unknown as BpfMap } }));
          this.#own(attachCgroup(bound, { cgroup: cgroupFd, attachType: hook }));
        }
      }
      const common = { by: this.by, perInterface: this.perInterface, ports: this.ports, processes, times: this.times };
      if (this.source === "cgroup") {
        for (const direction of ["ingress", "egress"] as const) {
          const instructions = trafficCounterProgram({ ...common, hook: "cgroup", direction, linkHeaderLength: 0, filter: filterFor.get(LinkType.RAW)?.emitter });
          const program = this.#own(Program.load({ type: ProgramType.CgroupSkb, instructions, name: direction === "ingress" ? "top_in" : "top_out", expectedAttachType: direction === "ingress" ? AttachType.CgroupInetIngress : AttachType.CgroupInetEgress }, { maps }));
          this.#own(attachCgroup(program, { cgroup: cgroupFd, attachType: direction }));
        }
      } else {
        interfaces.forEach((name, index) => {
          const linkType = linkTypes[index]!;
          for (const direction of ["ingress", "egress"] as const) {
            const instructions = trafficCounterProgram({ ...common, hook: "tc", direction, linkHeaderLength: linkType === LinkType.ETHERNET ? 14 : 0, filter: filterFor.get(linkType)?.emitter });
            const program = this.#own(Program.load({ type: ProgramType.SchedCls, instructions, name: direction === "ingress" ? "top_in" : "top_out" }, { maps }));
            this.#own(attachTcx(program, { interface: indexes[index]!, direction }));
          }
        });
      }
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** Loads and attaches the counting programs; throws (having cleaned up) on failure. */
  static open(options: TrafficWatcherOptions = {}): TrafficWatcher {
    return new TrafficWatcher(options);
  }

  #own<T extends { close(): void }>(owned: T): T {
    return this.#owned.add(owned);
  }

  #statistic(kind: number): number {
    return Number((this.#statistics.getPerCpu(kind) ?? []).reduce((a, b) => a + b, 0n));
  }

  /** The process owning a socket (by cookie) or, failing that, the port (by the binding process, or procfs). */
  #owner(cookies: readonly bigint[], protocol: number, localPort: number, unknownPorts: Set<number>): ProcessIdentity | null {
    if (!this.processes) return null;
    // A CPU may have recorded a socket no process created (the kernel's control socket sends TIME_WAIT ACKs and RSTs): try each.
    for (const cookie of cookies) {
      const owner = this.#cookieOwner(cookie);
      if (owner) return owner;
    }
    if (localPort !== 0 && this.#portOwners) {
      const portKey = (protocol << 16) | localPort;
      let bound = this.#boundPortOwners.get(portKey);
      if (bound === undefined) {
        const value = this.#portOwners.get(portKey);
        bound = value ? decodeProcess(value) : null;
        this.#boundPortOwners.set(portKey, bound);
      }
      if (bound) return bound;
      const known = this.#procfsOwners.get(portKey);
      if (known) return known;
      const missed = this.#procfsMisses.get(portKey);
      if (missed === undefined || Date.now() - missed > procfsRetryMilliseconds) unknownPorts.add(portKey);
    }
    return null;
  }

  /**
   * The process that created a socket, from the sock_create records. A socket's
   * record exists from its creation on, so an answer (found or not) stays true
   * and is kept: a map lookup that fails costs a system call and an error.
   */
  #cookieOwner(cookie: bigint): ProcessIdentity | null {
    if (!this.#socketOwners) return null;
    const cached = this.#cookieOwners.get(cookie);
    if (cached !== undefined) return cached;
    const key = Buffer.alloc(8);
    key.writeBigUInt64LE(cookie);
    const value = this.#socketOwners.get(key);
    const owner = value ? decodeProcess(value) : null;
    if (this.#cookieOwners.size >= maximumCachedOwners) this.#cookieOwners.clear();
    this.#cookieOwners.set(cookie, owner);
    return owner;
  }

  /** Reads the counters now: one snapshot (rates are over the time since the previous one). */
  snapshot(): TrafficSnapshot {
    if (this.#closed) throw new UsageError("watch traffic", "the watcher is closed");
    const now = process.hrtime.bigint();
    const seconds = Number(now - this.#previousTime) / 1e9;
    const groups = new Map<string, Group>();
    let entries = 0;
    const pending: { key: KeyDescription; kernel: KernelCounts }[] = [];
    this.#interfaceNames.clear();
    const described = new Map<string, KeyDescription>();
    const times = this.times;
    this.#counts.forEachBatch((key, value) => {
      entries++;
      const perCpu = value as Buffer[];
      const counts = [0, 0, 0, 0, 0, 0];
      const cookies: bigint[] = [];
      let firstSeen = 0;
      let lastSeen = 0;
      for (const cpu of perCpu) {
        // Counters stay far below 2^53: two 32-bit halves are cheaper than a BigInt.
        for (let field = 0; field < 6; field++) counts[field]! += cpu.readUInt32LE(field * 8) + cpu.readUInt32LE(field * 8 + 4) * 4294967296;
        if (cpu.readUInt32LE(TrafficValueOffset.cookie) !== 0 || cpu.readUInt32LE(TrafficValueOffset.cookie + 4) !== 0) {
          const seen = cpu.readBigUInt64LE(TrafficValueOffset.cookie);
          if (!cookies.includes(seen)) cookies.push(seen);
        }
        if (times) {
          const first = cpu.readUInt32LE(TrafficValueOffset.firstSeen) + cpu.readUInt32LE(TrafficValueOffset.firstSeen + 4) * 4294967296;
          const last = cpu.readUInt32LE(TrafficValueOffset.lastSeen) + cpu.readUInt32LE(TrafficValueOffset.lastSeen + 4) * 4294967296;
          if (first !== 0 && (firstSeen === 0 || first < firstSeen)) firstSeen = first;
          if (last > lastSeen) lastSeen = last;
        }
      }
      const description = this.#describe(key as Buffer);
      described.set(description.id, description);
      pending.push({ key: description, kernel: { counts, cookies, firstSeen, lastSeen } });
    });
    // Descriptions of keys gone from the kernel's map are forgotten.
    this.#descriptions = described;
    const unknownPorts = new Set<number>();
    this.#boundPortOwners.clear();
    const resolve = () => {
      groups.clear();
      for (const { key, kernel } of pending) this.#addToGroup(groups, key, kernel, unknownPorts);
    };
    resolve();
    // Sockets from before the start: look their ports up in procfs (a port not found is tried again after a while).
    if (unknownPorts.size > 0) {
      const found = procfsPortOwners(unknownPorts);
      for (const port of unknownPorts) {
        const owner = found.get(port);
        if (owner) this.#procfsOwners.set(port, owner);
        else this.#procfsMisses.set(port, Date.now());
      }
      if (found.size > 0) resolve();
    }

    const rows: TrafficRow[] = [];
    const current = new Map<string, TrafficCounts>();
    const totals = emptyCounts();
    const clock = times ? Number(monotonicToRealtimeOffset() / 1000n) / 1000 : 0;
    for (const [key, group] of groups) {
      current.set(key, group.counts);
      const before = this.#previous.get(key) ?? emptyCounts();
      const row = trafficRow(group.row, group.counts, before, seconds);
      if (times && group.lastSeen !== 0) {
        row.firstSeen = Math.floor(group.firstSeen / 1e6 + clock);
        row.lastSeen = Math.floor(group.lastSeen / 1e6 + clock);
      }
      rows.push(row);
      for (const field of countFields) totals[field] += group.counts[field];
    }
    // Code-unit order for ties: localeCompare costs seconds on a full map.
    rows.sort((a, b) => b.bytesIn + b.bytesOut - (a.bytesIn + a.bytesOut) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const created = this.#statistic(TrafficStatistic.created);
    const snapshot: TrafficSnapshot = {
      time: new Date().toISOString(),
      interval: seconds,
      by: this.by,
      source: this.source,
      interfaces: [...this.interfaces],
      rows,
      totals: { ...totals, ...rates(totals, this.#previousTotals, seconds) },
      entries,
      evictions: Math.max(0, created - entries),
      lost: this.#statistic(TrafficStatistic.createFailed),
      packetsSeen: this.#statistic(TrafficStatistic.seen),
    };
    this.#previous = current;
    this.#previousTotals = totals;
    this.#previousTime = now;
    return snapshot;
  }

  /**
   * What a kernel key says (addresses and ports as text, the row's label),
   * worked out once per key while it stays in the map: a full map holds
   * tens of thousands of keys, and formatting them every second dominated.
   */
  #describe(key: Buffer): KeyDescription {
    const id = key.toString("latin1");
    const ifindex = key.readUInt32LE(TrafficKeyOffset.ifindex);
    let interfaceText: string | undefined;
    if (this.perInterface) {
      interfaceText = this.#interfaceNames.get(ifindex);
      if (interfaceText === undefined) {
        interfaceText = interfaceName(ifindex) ?? `if${ifindex}`;
        this.#interfaceNames.set(ifindex, interfaceText);
      }
    }
    const known = this.#descriptions.get(id);
    if (known && known.fields.interface === interfaceText) return known;
    const family = key[TrafficKeyOffset.family]!;
    const protocol = key[TrafficKeyOffset.protocol]!;
    const localPort = key.readUInt16LE(TrafficKeyOffset.localPort);
    const remotePort = key.readUInt16LE(TrafficKeyOffset.remotePort);
    const address = (offset: number) => (family === 6 ? formatIpv6(key.subarray(offset, offset + 16)) : formatIpv4(key.subarray(offset, offset + 4)));
    const fields: KeyDescription["fields"] = {};
    let label = "";
    switch (this.by) {
      case "port":
        fields.protocol = protocolName(protocol);
        fields.localPort = localPort;
        label = `${fields.protocol}/${localPort}`;
        break;
      case "conn":
        fields.protocol = protocolName(protocol);
        fields.family = family === 6 ? "ipv6" : "ipv4";
        fields.localAddress = address(TrafficKeyOffset.localAddress);
        fields.localPort = localPort;
        fields.remoteAddress = address(TrafficKeyOffset.remoteAddress);
        fields.remotePort = remotePort;
        label = `${fields.protocol} ${fields.localAddress}:${localPort} ${fields.remoteAddress}:${remotePort}`;
        break;
      case "remote":
        fields.family = family === 6 ? "ipv6" : "ipv4";
        fields.remoteAddress = address(TrafficKeyOffset.remoteAddress);
        label = fields.remoteAddress;
        break;
      case "process":
        break;
    }
    if (interfaceText !== undefined) fields.interface = interfaceText;
    return { id, fields, label, protocol, localPort, owner: null };
  }

  #addToGroup(groups: Map<string, Group>, key: KeyDescription, kernel: KernelCounts, unknownPorts: Set<number>): void {
    // A socket's creator does not change: once found by cookie, the owner is kept with the key.
    let owner = key.owner;
    if (owner === null) {
      owner = this.#owner(kernel.cookies, key.protocol, key.localPort, unknownPorts);
      if (owner !== null && kernel.cookies.length > 0 && this.#cookieOwners.get(kernel.cookies[0]!) === owner) key.owner = owner;
    }
    let label = key.label;
    if (this.by === "process") {
      label = owner ? `${owner.pid} ${owner.command}` : "unknown";
      if (key.fields.interface !== undefined) label += ` ${key.fields.interface}`;
    } else if (key.fields.interface !== undefined) {
      label += ` ${key.fields.interface}`;
    }
    let group = groups.get(label);
    if (!group) {
      group = { row: { key: label, process: owner, ...key.fields }, counts: emptyCounts(), firstSeen: kernel.firstSeen, lastSeen: kernel.lastSeen };
      groups.set(label, group);
    } else {
      if (group.row.process === null && owner !== null) group.row.process = owner;
      if (kernel.firstSeen !== 0 && (group.firstSeen === 0 || kernel.firstSeen < group.firstSeen)) group.firstSeen = kernel.firstSeen;
      if (kernel.lastSeen > group.lastSeen) group.lastSeen = kernel.lastSeen;
    }
    const counts = group.counts;
    const kernelCounts = kernel.counts;
    counts.packetsIn += kernelCounts[0]!;
    counts.bytesIn += kernelCounts[1]!;
    counts.payloadIn += kernelCounts[2]!;
    counts.packetsOut += kernelCounts[3]!;
    counts.bytesOut += kernelCounts[4]!;
    counts.payloadOut += kernelCounts[5]!;
  }

  /**
   * Snapshots every `interval` milliseconds until `signal` aborts (or the
   * watcher is closed); the first comes one interval after the call.
   */
  async *snapshots(interval = 1000, signal?: AbortSignal): AsyncGenerator<TrafficSnapshot> {
    if (typeof interval !== "number" || !(interval > 0) || interval === Infinity) throw argumentError("watch traffic", "interval", "a positive number of milliseconds", interval);
    if (signal !== undefined) expectInstance("watch traffic", "signal", signal, AbortSignal);
    for (;;) {
      if (signal?.aborted || this.#closed) return;
      await delay(interval, signal);
      if (signal?.aborted || this.#closed) return;
      yield this.snapshot();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#owned.closeAll();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * One row, written out field by field: spreading three objects into a
 * literal takes V8's slow path (~50 µs a row), which for a full map of
 * 16,384 keys cost most of a second per snapshot.
 */
function trafficRow(row: Group["row"], counts: TrafficCounts, before: TrafficCounts, seconds: number): TrafficRow {
  const rate = (a: number, b: number) => (seconds > 0 ? Math.max(0, a - b) / seconds : 0);
  return {
    key: row.key,
    process: row.process,
    protocol: row.protocol,
    family: row.family,
    localAddress: row.localAddress,
    localPort: row.localPort,
    remoteAddress: row.remoteAddress,
    remotePort: row.remotePort,
    interface: row.interface,
    packetsIn: counts.packetsIn,
    bytesIn: counts.bytesIn,
    payloadIn: counts.payloadIn,
    packetsOut: counts.packetsOut,
    bytesOut: counts.bytesOut,
    payloadOut: counts.payloadOut,
    packetsInPerSecond: rate(counts.packetsIn, before.packetsIn),
    bytesInPerSecond: rate(counts.bytesIn, before.bytesIn),
    packetsOutPerSecond: rate(counts.packetsOut, before.packetsOut),
    bytesOutPerSecond: rate(counts.bytesOut, before.bytesOut),
    firstSeen: undefined,
    lastSeen: undefined,
  };
}

function rates(now: TrafficCounts, before: TrafficCounts, seconds: number): TrafficRates {
  const rate = (a: number, b: number) => (seconds > 0 ? Math.max(0, a - b) / seconds : 0);
  return {
    packetsInPerSecond: rate(now.packetsIn, before.packetsIn),
    bytesInPerSecond: rate(now.bytesIn, before.bytesIn),
    packetsOutPerSecond: rate(now.packetsOut, before.packetsOut),
    bytesOutPerSecond: rate(now.bytesOut, before.bytesOut),
  };
}

export interface WatchTrafficOptions extends TrafficWatcherOptions {
  /** Milliseconds between snapshots (default 1000). */
  interval?: number;
  /** Stop after this many milliseconds (default: until aborted). */
  duration?: number;
  signal?: AbortSignal;
}

/**
 * Traffic snapshots as an async iterable: attaches on the first iteration,
 * yields one snapshot per interval, detaches when the loop ends, the signal
 * aborts or the duration has passed.
 *
 *     for await (const snapshot of watchTraffic({ by: "port", ports: [443], signal })) …
 */
export async function* watchTraffic(options: WatchTrafficOptions = {}): AsyncGenerator<TrafficSnapshot> {
  expectObject("watch traffic", "options", options);
  const interval = options.interval ?? 1000;
  if (typeof interval !== "number" || !(interval > 0) || interval === Infinity) throw argumentError("watch traffic", "options.interval", "a positive number of milliseconds", options.interval);
  if (options.duration !== undefined && (typeof options.duration !== "number" || !(options.duration >= 0))) {
    throw argumentError("watch traffic", "options.duration", "a number of milliseconds ≥ 0", options.duration);
  }
  if (options.signal !== undefined) expectInstance("watch traffic", "options.signal", options.signal, AbortSignal);
  const controller = new AbortController();
  const forward = () => controller.abort();
  options.signal?.addEventListener("abort", forward, { once: true });
  const timer = options.duration !== undefined ? setTimeout(forward, options.duration) : undefined;
  const watcher = TrafficWatcher.open(options);
  try {
    if (options.signal?.aborted) return;
    const started = Date.now();
    for (;;) {
      const remaining = options.duration !== undefined ? options.duration - (Date.now() - started) : Infinity;
      await delay(Math.min(interval, Math.max(0, remaining)), controller.signal);
      const last = controller.signal.aborted || remaining <= interval;
      if (options.signal?.aborted) return;
      yield watcher.snapshot();
      if (last) return;
    }
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener("abort", forward);
    watcher.close();
  }
}
