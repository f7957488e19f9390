/**
 * AuditRecorder: records this host's network security events into an
 * AuditLog and hands every stored batch to sinks (alerts, JSON lines,
 * ClickHouse, …; see audit-sink.ts). Documented in docs/audit.md.
 *
 * Sources, all aggregated in the kernel where they can be:
 * - TCP (src/monitor/tcp-watcher.ts): one `connection` record per closed
 *   connection (the kernel keeps per-connection state, with the process
 *   and its parent from connect / accept, and reports it at CLOSE: the one
 *   ring event per connection end), one `listen` record per socket that
 *   starts listening; connections still open at stop are read from the
 *   kernel's map;
 * - UDP (src/monitor/traffic-watcher.ts at the cgroup v2 root, grouped by
 *   5-tuple, `udp` filter): one `udp` record per flow and interval with
 *   packet and payload byte counts; the process comes from the socket's
 *   creator (cgroup sock_create) or its port's binder;
 * - DNS (dns-watcher.ts): copies of port-53 datagrams only, parsed here; a
 *   `dns` record per question/answer, and the answers name later flows
 *   (`remoteName`);
 * - drops: the counters of installed firewalls and rate limits (state store),
 *   read once per interval: a `drop` record per rule (and, for limits, per
 *   source) whose count grew;
 * - losses: events the kernel could not report (ring full, map full), records
 *   a sink could not take, batches the log could not store — a `loss`
 *   record each interval in which any occurred.
 */
import { readFileSync } from "node:fs";
import { Firewall } from "../firewall/firewall.js";
import { RateLimiter } from "../firewall/rate-limiter.js";
import { watchTcp, type TcpEvent, type TcpWatcher } from "../monitor/tcp-watcher.js";
import { TrafficWatcher, type TrafficRow } from "../monitor/traffic-watcher.js";
import { delay } from "../sys/delay.js";
import { tcpRecordLayout } from "../programs/tcp-state-events.js";
import { StateStore } from "../state/state-store.js";
import { UsageError } from "../sys/errors.js";
import { argumentError, expectArray, expectBoolean, expectFunction, expectInstance, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { AuditLog, emptyAuditRecord } from "./audit-log.js";
import type { AuditFlow, AuditProcess, AuditRecord } from "./audit-record.js";
import { expectAuditSink, type AuditSink } from "./audit-sink.js";
import { DnsWatcher, type DnsExchange } from "./dns-watcher.js";
import { ProcessDetails, type KernelProcess } from "./process-details.js";

export interface AuditRecorderOptions {
  /** Where records are stored. */
  log: AuditLog;
  /** Receive every stored batch (in order, with sequences), after it is stored. */
  sinks?: readonly AuditSink[];
  /** Called for every stored record (after the sinks of its batch). */
  onRecord?: (record: AuditRecord) => void;
  /** Milliseconds between batches (default 1000): records are stored, UDP flows and drop counters read, once per interval. */
  interval?: number;
  /** Record UDP flows (default true). */
  udp?: boolean;
  /** Record DNS on port 53 (default true). */
  dns?: boolean;
  /** Record firewall and rate-limit drops (default true; nothing when none is installed). */
  drops?: boolean;
  /** The netbpf state folder to read drop counters from (default: NETBPF_STATE_DIR or /sys/fs/bpf/netbpf). */
  stateRoot?: string;
  /** Stops recording when aborted (as stop()). */
  signal?: AbortSignal;
  /** TCP connections followed at once (default 65536). */
  maximumConnections?: number;
  /** UDP flows counted at once (default 65536). */
  maximumFlows?: number;
}

export interface AuditRecorderStatistics {
  stored: number;
  batches: number;
  lost: number;
}

const operation = "audit record";
/**
 * How often the TCP ring is read (milliseconds; the interval when shorter).
 * The kernel commits TCP events without waking the recorder (watchTcp's
 * `wakeup: false`): a wake-up per event cost more CPU than the event itself.
 */
const tcpReadMilliseconds = 100;
/** The TCP ring: 2 MiB holds about 12,000 events (168 bytes each), 100 ms of 120,000 connection ends a second. */
const tcpRingBytes = 1 << 21;

function ephemeralPortRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    // not Linux procfs: the kernel's default
  }
  return [32768, 60999];
}

function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

function checkOptions(options: AuditRecorderOptions): void {
  expectObject(operation, "options", options);
  expectInstance(operation, "options.log", options.log, AuditLog, "an AuditLog (from AuditLog.open)");
  expectArray(operation, "options.sinks", options.sinks, true).forEach((sink, index) => expectAuditSink(operation, `options.sinks[${index}]`, sink));
  if (options.onRecord !== undefined) expectFunction(operation, "options.onRecord", options.onRecord);
  if (options.interval !== undefined && !(typeof options.interval === "number" && Number.isFinite(options.interval) && options.interval >= 10)) {
    throw argumentError(operation, "options.interval", "a number of milliseconds ≥ 10", options.interval);
  }
  for (const name of ["udp", "dns", "drops"] as const) if (options[name] !== undefined) expectBoolean(operation, `options.${name}`, options[name]);
  if (options.stateRoot !== undefined) expectString(operation, "options.stateRoot", options.stateRoot);
  if (options.signal !== undefined) expectInstance(operation, "options.signal", options.signal, AbortSignal);
  if (options.maximumConnections !== undefined) expectInteger(operation, "options.maximumConnections", options.maximumConnections, 1, 1 << 24);
  if (options.maximumFlows !== undefined) expectInteger(operation, "options.maximumFlows", options.maximumFlows, 16, 1 << 24);
}

export class AuditRecorder {
  readonly log: AuditLog;
  readonly statistics: AuditRecorderStatistics = { stored: 0, batches: 0, lost: 0 };
  /** Resolves when recording has stopped and the last batch is stored. */
  readonly done: Promise<void>;
  readonly #options: AuditRecorderOptions;
  readonly #sinks: readonly AuditSink[];
  readonly #pending: AuditRecord[] = [];
  readonly #processes = new ProcessDetails();
  /** Address → DNS name answered for it, and when. */
  readonly #names = new Map<string, { name: string; time: number }>();
  readonly #controller = new AbortController();
  readonly #tcp: TcpWatcher;
  readonly #udp: TrafficWatcher | undefined;
  readonly #dns: DnsWatcher | undefined;
  readonly #udpPrevious = new Map<string, TrafficRow>();
  /** TCP records read from the ring since the last batch (#readTcp), #tcpUsed bytes of them. */
  #tcpBytes = Buffer.allocUnsafe(64 * tcpRecordLayout.size);
  #tcpUsed = 0;
  /** The kernel's ephemeral port range (net.ipv4.ip_local_port_range). */
  readonly #ephemeralPorts = ephemeralPortRange();
  /** Who began each UDP flow, as decided in its first interval. */
  readonly #udpDirections = new Map<string, AuditFlow["direction"]>();
  readonly #dropPrevious = new Map<string, { packets: number; bytes: number }>();
  #dropBaselineTaken = false;
  /** Firewalls whose per-source drop counting this recorder switched on (switched off at stop). */
  readonly #trackingDrops = new Map<string, Firewall>();
  readonly #lossPrevious = new Map<string, number>();
  /** Losses counted in user space since the last interval: what → count, reason. */
  readonly #userLosses = new Map<string, { count: number; reason: string }>();
  #intervalStart = new Date();
  #stopped = false;

  private constructor(options: AuditRecorderOptions) {
    checkOptions(options);
    const interval = options.interval ?? 1000;
    if (options.signal?.aborted) throw new UsageError(operation, "the signal is already aborted");
    this.log = options.log;
    this.#options = { ...options, interval };
    this.#sinks = options.sinks ?? [];
    const closeAll: { close(): void }[] = [];
    try {
      // Only the events recorded: the kernel writes nothing else to the ring (see docs/audit.md, cost).
      // No signal: stop() detaches it and drains the ring, so nothing seen is dropped uncounted.
      this.#tcp = watchTcp({ maximumConnections: options.maximumConnections, types: ["listen", "close"], wakeup: false, ringSize: tcpRingBytes });
      closeAll.push(this.#tcp);
      if (options.udp ?? true) {
        this.#udp = TrafficWatcher.open({ by: "conn", filter: "udp", processes: true, times: true, maxEntries: options.maximumFlows ?? 65536 });
        closeAll.push(this.#udp);
      }
      if (options.dns ?? true) {
        this.#dns = new DnsWatcher();
        closeAll.push(this.#dns);
      }
    } catch (error) {
      for (const owned of closeAll.reverse()) owned.close();
      throw error;
    }
    if (options.drops ?? true) {
      try {
        // The baseline: drops counted before recording began are not this log's.
        this.#readDrops(this.#intervalStart, this.#intervalStart);
      } catch {
        // No state folder: nothing to count.
      }
    }
    for (const sink of this.#sinks) sink.start?.({ store: (records) => this.#pending.push(...records) });
    options.signal?.addEventListener("abort", () => void this.stop(), { once: true });
    this.done = this.#run();
  }

  /** Attaches everything and starts recording (throws a NetbpfError when it cannot). */
  static start(options: AuditRecorderOptions): AuditRecorder {
    return new AuditRecorder(options);
  }

  /** Stops: detaches, stores what is pending (and open connections as "open"), closes the sinks. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#controller.abort();
    await this.done;
  }

  #countLoss(what: string, reason: string, count = 1): void {
    const key = `${what}\u0000${reason}`;
    const entry = this.#userLosses.get(key) ?? { count: 0, reason };
    entry.count += count;
    this.#userLosses.set(key, entry);
  }

  async #run(): Promise<void> {
    const signal = this.#controller.signal;
    const dns = this.#consumeDns(signal);
    const interval = this.#options.interval!;
    let nextInterval = Date.now() + interval;
    try {
      while (!signal.aborted) {
        await delay(Math.max(0, Math.min(tcpReadMilliseconds, nextInterval - Date.now())), signal);
        if (signal.aborted) break;
        this.#readTcp();
        if (Date.now() >= nextInterval) {
          await this.#interval(false);
          nextInterval = Date.now() + interval;
        }
      }
    } finally {
      // Detach, then take what is still in the ring.
      this.#tcp.detach();
      this.#readTcp();
      await Promise.allSettled([dns]);
      // The last interval reads UDP and DNS before they are detached (and lists the connections still open).
      await this.#interval(true);
      this.#tcp.close();
      this.#stopTrackingDrops();
      this.#udp?.close();
      this.#dns?.close();
      for (const sink of this.#sinks) {
        try {
          await sink.close();
        } catch {
          this.statistics.lost++;
        }
      }
    }
  }

  /**
   * Copies the TCP records in the ring now, as bytes: they become events and
   * audit records only when their batch is stored (#tcpRecords), so no object
   * per event lives through the interval (garbage collection cost more than
   * anything else here when they did).
   */
  #readTcp(): void {
    try {
      this.#tcp.readAvailableRecords((data) => {
        if (this.#tcpBytes.length - this.#tcpUsed < data.length) {
          const larger = Buffer.allocUnsafe(Math.max(2 * this.#tcpBytes.length, this.#tcpUsed + data.length));
          this.#tcpBytes.copy(larger, 0, 0, this.#tcpUsed);
          this.#tcpBytes = larger;
        }
        this.#tcpUsed += data.copy(this.#tcpBytes, this.#tcpUsed);
      });
    } catch (error) {
      this.#countLoss("tcp", `read failed: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
    }
  }

  /** The TCP records copied since the last batch, as audit records made one at a time (#flush empties the copy). */
  *#tcpRecords(): Generator<AuditRecord> {
    const size = tcpRecordLayout.size;
    for (let offset = 0; offset + size <= this.#tcpUsed; offset += size) {
      for (const event of this.#tcp.decode(this.#tcpBytes.subarray(offset, offset + size))) {
        const record = this.#tcpRecord(event);
        if (record !== undefined) yield record;
      }
    }
  }

  /** A batch: the TCP records (made as they are taken), then the other pending ones. */
  *#batchRecords(pending: readonly AuditRecord[]): Generator<AuditRecord> {
    yield* this.#tcpRecords();
    yield* pending;
  }

  async #consumeDns(signal: AbortSignal): Promise<void> {
    if (this.#dns === undefined) return;
    try {
      for await (const exchange of this.#dns.exchanges(signal)) this.#onDns(exchange);
    } catch (error) {
      if (!this.#stopped) this.#countLoss("dns", `watcher failed: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
    }
  }

  #process(event: KernelProcess): AuditProcess | null {
    return this.#processes.describe(event);
  }

  #remoteName(address: string, before: number): string | null {
    const entry = this.#names.get(plainAddress(address));
    return entry !== undefined && entry.time <= before + 1000 ? entry.name : null;
  }

  #tcpRecord(event: TcpEvent): AuditRecord | undefined {
    if (event.type === "listen") {
      const record = emptyAuditRecord("listen", event.time);
      record.process = this.#process(event);
      record.flow = { protocol: "tcp", family: event.family, direction: null, localAddress: event.localAddress, localPort: event.localPort, remoteAddress: event.remoteAddress, remotePort: event.remotePort, remoteName: null };
      return record;
    }
    return event.type === "close" ? this.#connectionRecord(event, null) : undefined;
  }

  /** The record of a closed connection, or (closeReason "open", `end` the stop) of one still open. */
  #connectionRecord(event: TcpEvent, closeReason: string | null, end = event.time): AuditRecord {
    const start = event.durationMilliseconds !== null ? new Date(event.time.getTime() - Math.round(event.durationMilliseconds)) : event.time;
    const record = emptyAuditRecord("connection", start, end);
    const direction = event.role === "active" ? "outbound" : event.role === "passive" ? "inbound" : null;
    record.process = this.#process(event);
    record.flow = {
      protocol: "tcp", family: event.family, direction,
      localAddress: event.localAddress, localPort: event.localPort, remoteAddress: event.remoteAddress, remotePort: event.remotePort,
      remoteName: this.#remoteName(event.remoteAddress, start.getTime()),
    };
    const reason = closeReason ?? (event.resetsSent > 0 ? "reset sent" : event.resetsReceived > 0 ? "reset received" : "fin");
    record.closeReason = reason;
    // tcp_sock counts sequence space: the SYN of an outgoing connection and each FIN take one byte.
    const finished = reason === "fin";
    if (event.bytesSent !== null) record.bytesSent = Math.max(0, event.bytesSent - (event.role === "active" ? 1 : 0) - (finished ? 1 : 0));
    if (event.bytesReceived !== null) record.bytesReceived = Math.max(0, event.bytesReceived - (finished ? 1 : 0));
    return record;
  }

  #onDns(exchange: DnsExchange): void {
    const { start, end, ...dns } = exchange;
    const record = emptyAuditRecord("dns", start, end);
    record.dns = dns;
    for (const answer of dns.answers) this.#names.set(answer, { name: dns.queryName, time: end.getTime() });
    if (this.#names.size > 65536) {
      for (const key of [...this.#names.keys()].slice(0, 16384)) this.#names.delete(key);
    }
    this.#pending.push(record);
  }

  /** Reads the interval's aggregates, then stores and hands on everything pending. */
  async #interval(final: boolean): Promise<void> {
    const now = new Date();
    const start = this.#intervalStart;
    this.#intervalStart = now;
    try {
      this.#readUdp(start, now);
    } catch (error) {
      this.#countLoss("udp", `read failed: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
    }
    for (const exchange of this.#dns?.pairing.expire(now) ?? []) this.#onDns(exchange);
    if (this.#options.drops ?? true) {
      try {
        this.#readDrops(start, now);
      } catch {
        // No state folder, or a component being changed: nothing to count this time.
      }
    }
    if (final) {
      for (const event of this.#tcp.openConnections()) this.#pending.push(this.#connectionRecord(event, "open", now));
    }
    this.#readLosses(start, now);
    await this.#flush();
  }

  #readUdp(start: Date, end: Date): void {
    if (this.#udp === undefined) return;
    const snapshot = this.#udp.snapshot();
    const seen = new Set<string>();
    for (const row of snapshot.rows) {
      if (row.protocol !== "udp") continue;
      seen.add(row.key);
      const before = this.#udpPrevious.get(row.key);
      this.#udpPrevious.set(row.key, row);
      const packetsSent = row.packetsOut - (before?.packetsOut ?? 0);
      const packetsReceived = row.packetsIn - (before?.packetsIn ?? 0);
      if (packetsSent <= 0 && packetsReceived <= 0) continue;
      // The flow's own first and last packet where the kernel saw them within this interval.
      const first = row.firstSeen !== undefined && row.firstSeen > start.getTime() && row.firstSeen <= end.getTime() ? new Date(row.firstSeen) : start;
      const last = row.lastSeen !== undefined && row.lastSeen >= first.getTime() && row.lastSeen <= end.getTime() ? new Date(row.lastSeen) : end;
      const record = emptyAuditRecord("udp", first, last);
      const localPort = row.localPort ?? 0;
      const remotePort = row.remotePort ?? 0;
      // Who began it: the side that sent first; within one interval, the side whose port is ephemeral (else the higher port).
      const ephemeral = (port: number) => port >= this.#ephemeralPorts[0] && port <= this.#ephemeralPorts[1];
      const byPort = ephemeral(localPort) !== ephemeral(remotePort) ? ephemeral(localPort) : localPort > remotePort;
      const direction: AuditFlow["direction"] = packetsReceived === 0 ? "outbound" : packetsSent === 0 ? "inbound" : byPort ? "outbound" : "inbound";
      record.flow = {
        protocol: "udp", family: row.family ?? "ipv4", direction: before === undefined ? direction : null,
        localAddress: row.localAddress ?? "", localPort, remoteAddress: row.remoteAddress ?? "", remotePort,
        remoteName: this.#remoteName(row.remoteAddress ?? "", end.getTime()),
      };
      if (record.flow.direction === null) {
        const first = this.#udpDirections.get(row.key);
        record.flow.direction = first ?? null;
      } else {
        this.#udpDirections.set(row.key, record.flow.direction);
      }
      record.process = row.process ? this.#process({ pid: row.process.pid, command: row.process.command }) : null;
      record.packetsSent = packetsSent;
      record.packetsReceived = packetsReceived;
      record.bytesSent = row.payloadOut - (before?.payloadOut ?? 0);
      record.bytesReceived = row.payloadIn - (before?.payloadIn ?? 0);
      this.#pending.push(record);
    }
    for (const key of this.#udpPrevious.keys()) {
      if (!seen.has(key)) {
        this.#udpPrevious.delete(key);
        this.#udpDirections.delete(key);
      }
    }
    this.#kernelLoss("udp", "map full", snapshot.lost + snapshot.evictions);
  }

  /** Records the growth of a kernel loss counter as a user-space loss to report. */
  #kernelLoss(what: string, reason: string, total: number): void {
    const key = `${what}\u0000${reason}`;
    const before = this.#lossPrevious.get(key) ?? 0;
    this.#lossPrevious.set(key, total);
    if (total > before) this.#countLoss(what, reason, total - before);
  }

  #readDrops(start: Date, end: Date): void {
    const store = StateStore.open({ root: this.#options.stateRoot });
    // The first reading is the baseline: drops before recording began are not this log's. Later, a key
    // not seen before (a new source, a new rule) starts from zero, and a counter that went down was
    // evicted and created again.
    const baseline = !this.#dropBaselineTaken;
    this.#dropBaselineTaken = true;
    const grew = (key: string, packets: number, bytes: number) => {
      const before = this.#dropPrevious.get(key);
      this.#dropPrevious.set(key, { packets, bytes });
      if (baseline) return undefined;
      const from = before === undefined || packets < before.packets ? { packets: 0, bytes: 0 } : before;
      if (packets === from.packets) return undefined;
      return { packets: packets - from.packets, bytes: Math.max(0, bytes - from.bytes) };
    };
    const drop = (source: "firewall" | "limit", rule: string, sourceAddress: string, delta: { packets: number; bytes: number }) => {
      const record = emptyAuditRecord("drop", start, end);
      record.drop = { source, rule, sourceAddress, packets: delta.packets, bytes: delta.bytes };
      this.#pending.push(record);
    };
    for (const firewall of Firewall.installed({ store })) {
      const name = firewall.interfaceName;
      if (!this.#trackingDrops.has(name) && firewall.trackDropSources(true)) this.#trackingDrops.set(name, firewall);
      // Rule totals first, then sources: a drop between the two reads is then never counted twice.
      const totals = new Map<number, { packets: number; bytes: number }>();
      for (const rule of firewall.rules()) {
        if (rule.action !== "block") continue;
        const delta = grew(`firewall ${name} ${rule.id}`, Number(rule.packets), Number(rule.bytes));
        if (delta !== undefined) totals.set(rule.id, delta);
      }
      for (const source of firewall.dropSources()) {
        const delta = grew(`firewall ${name} ${source.rule} ${source.address}`, Number(source.packets), Number(source.bytes));
        if (delta === undefined) continue;
        drop("firewall", `${name}#${source.rule === 0 ? "policy" : source.rule}`, source.address || "non-ip", delta);
        const total = totals.get(source.rule);
        if (total) {
          total.packets -= delta.packets;
          total.bytes -= delta.bytes;
        }
      }
      // What no source entry explains (not tracked yet, or evicted from the source map before it was read).
      for (const [rule, rest] of totals) if (rest.packets > 0) drop("firewall", `${name}#${rule}`, "any", { packets: rest.packets, bytes: Math.max(0, rest.bytes) });
    }
    for (const limiter of RateLimiter.installed({ store })) {
      for (const source of limiter.topSources(1024)) {
        if (source.dropped === 0n) continue;
        const delta = grew(`limit ${source.interface} ${source.rule} ${source.address}`, Number(source.dropped), 0);
        if (delta !== undefined) drop("limit", `${source.interface}#${source.rule}`, source.address, delta);
      }
    }
  }

  /** Stops counting firewall drops per source where this recorder switched it on. */
  #stopTrackingDrops(): void {
    for (const firewall of this.#trackingDrops.values()) {
      try {
        firewall.trackDropSources(false);
      } catch {
        // The firewall was removed meanwhile.
      }
    }
    this.#trackingDrops.clear();
  }

  #readLosses(start: Date, end: Date): void {
    this.#kernelLoss("tcp", "ring full", this.#tcp.lost);
    if (this.#dns !== undefined) this.#kernelLoss("dns", "ring full", this.#dns.lost);
    for (const [key, entry] of this.#userLosses) {
      const record = emptyAuditRecord("loss", start, end);
      record.loss = { what: key.split("\u0000")[0]!, count: entry.count, reason: entry.reason };
      this.#pending.push(record);
      this.statistics.lost += entry.count;
    }
    this.#userLosses.clear();
  }

  async #flush(): Promise<void> {
    const tcpCount = this.#tcpUsed / tcpRecordLayout.size;
    if (this.#pending.length === 0 && tcpCount === 0) return;
    const pending = this.#pending.splice(0);
    const writeFailed = (error: unknown) => {
      // Counted, and reported in the next batch that can be stored.
      this.#countLoss("record", `write failed: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`, pending.length + tcpCount);
    };
    if (this.#sinks.length === 0 && this.#options.onRecord === undefined) {
      // Nobody takes the stored records: each is made as it is stored and is garbage right after
      // (a whole batch of records alive at once made garbage collection the recorder's largest cost).
      try {
        const stored = this.log.store(this.#batchRecords(pending));
        this.statistics.stored += stored;
        if (stored > 0) this.statistics.batches++;
      } catch (error) {
        writeFailed(error);
      } finally {
        this.#tcpUsed = 0;
      }
      return;
    }
    let stored: AuditRecord[];
    try {
      stored = this.log.append([...this.#batchRecords(pending)]);
    } catch (error) {
      writeFailed(error);
      return;
    } finally {
      this.#tcpUsed = 0;
    }
    this.statistics.stored += stored.length;
    this.statistics.batches++;
    for (const sink of this.#sinks) {
      try {
        await sink.write(stored);
      } catch (error) {
        this.#countLoss("sink", `sink failed: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`, stored.length);
      }
    }
    if (this.#options.onRecord) for (const record of stored) this.#options.onRecord(record);
    // Records a sink made (alerts) while writing go with this batch's successor; store them now if stopping.
    if (this.#stopped && this.#pending.length > 0) await this.#flush();
  }
}
