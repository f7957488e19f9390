/**
 * The dashboard's live connections: the rows of a TrafficWatcher grouped by
 * connection (rates, process, interface), joined with what watchTcp() says
 * of the same connection (when it opened, its smoothed RTT, the process that
 * connected or accepted it). A connection stays listed while TCP says it is
 * open or while it moved traffic in the last `idleSeconds`. Memory is
 * bounded: the kernel map bounds the rows; the TCP side keeps at most
 * `maximumTracked` open connections (the oldest are forgotten first).
 */
import type { TrafficRow, TrafficSnapshot } from "../monitor/traffic-watcher.js";
import { tcpEventTypes, type TcpEvent } from "../monitor/tcp-watcher.js";
import { argumentError, expectArray, expectDate, expectInstance, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { ConnectionFilter } from "./connection-filter.js";

export interface ConnectionRow {
  key: string;
  protocol: string;
  interface: string | null;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  process: { pid: number; command: string } | null;
  bytesInPerSecond: number;
  bytesOutPerSecond: number;
  packetsInPerSecond: number;
  packetsOutPerSecond: number;
  bytesIn: number;
  bytesOut: number;
  /** Smoothed round-trip time last reported by TCP (null: not TCP, or not measured yet). */
  rttMilliseconds: number | null;
  /** Since TCP saw it open, or since it was first seen. */
  durationMilliseconds: number;
  /** Whether TCP reports it open (false: seen from its traffic only). */
  open: boolean;
}

/** "Who talks to whom": processes to remote hosts, weighted by bytes per second (in + out). */
export interface TalkGraph {
  processes: string[];
  hosts: string[];
  edges: { process: string; host: string; bytesPerSecond: number; connections: number }[];
}

export interface ConnectionView {
  rows: ConnectionRow[];
  /** Connections listed before the filter and the row limit. */
  total: number;
  /** Connections the filter let through (before the row limit). */
  matched: number;
}

export interface ConnectionTableOptions {
  /** Seconds a connection with no traffic and no open TCP state stays listed (default 10). */
  idleSeconds?: number;
  /** Open TCP connections remembered (default 65536). */
  maximumTracked?: number;
}

interface TcpState {
  opened: number;
  rtt: number | null;
  pid: number | null;
  command: string | null;
}

interface Entry {
  firstSeen: number;
  lastActive: number;
}

/** The 4-tuple as both watchers spell it (an IPv4 peer of an IPv6 socket is written as IPv4). */
function tupleKey(localAddress: string, localPort: number, remoteAddress: string, remotePort: number): string {
  const plain = (address: string) => address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");
  return `${plain(localAddress)} ${localPort} ${plain(remoteAddress)} ${remotePort}`;
}

/** An optional connection filter from a caller (undefined: every connection). */
export function expectConnectionFilter(operation: string, name: string, filter: unknown): ConnectionFilter | undefined {
  if (filter === undefined) return undefined;
  return expectInstance(operation, name, filter, ConnectionFilter, "a ConnectionFilter (from ConnectionFilter.compile) or undefined");
}

/** The fields of a TCP event the table reads (events come one by one: constant names, no allocation). */
function checkTcpEvent(operation: string, event: unknown): TcpEvent {
  const checked = expectObject<TcpEvent>(operation, "event", event);
  expectOneOf(operation, "event.type", checked.type, tcpEventTypes);
  expectDate(operation, "event.time", checked.time);
  expectString(operation, "event.localAddress", checked.localAddress);
  expectString(operation, "event.remoteAddress", checked.remoteAddress);
  expectInteger(operation, "event.localPort", checked.localPort, 0, 65535);
  expectInteger(operation, "event.remotePort", checked.remotePort, 0, 65535);
  return checked;
}

export class ConnectionTable {
  readonly idleMilliseconds: number;
  readonly maximumTracked: number;
  readonly #tcp = new Map<string, TcpState>();
  readonly #entries = new Map<string, Entry>();
  #rows: ConnectionRow[] = [];

  constructor(options: ConnectionTableOptions = {}) {
    const operation = "connection table";
    expectObject(operation, "options", options);
    const idleSeconds = options.idleSeconds ?? 10;
    if (typeof idleSeconds !== "number" || !(idleSeconds > 0) || !Number.isFinite(idleSeconds)) throw argumentError(operation, "options.idleSeconds", "a positive number of seconds", options.idleSeconds);
    this.idleMilliseconds = idleSeconds * 1000;
    this.maximumTracked = expectInteger(operation, "options.maximumTracked", options.maximumTracked ?? 65536, 1);
  }

  /** Open TCP connections remembered now (bounded by maximumTracked). */
  get tracked(): number {
    return this.#tcp.size;
  }

  /** Takes a TCP event into account (open, close, or any event carrying an RTT). */
  observe(event: TcpEvent): void {
    checkTcpEvent("observe a TCP event", event);
    if (event.role === "listener") return;
    const key = tupleKey(event.localAddress, event.localPort, event.remoteAddress, event.remotePort);
    if (event.type === "close") {
      this.#tcp.delete(key);
      return;
    }
    let state = this.#tcp.get(key);
    if (!state) {
      if (event.type !== "open" && event.type !== "accept") return;
      const began = event.durationMilliseconds !== null ? event.time.getTime() - event.durationMilliseconds : event.time.getTime();
      state = { opened: began, rtt: null, pid: null, command: null };
      this.#tcp.set(key, state);
      if (this.#tcp.size > this.maximumTracked) this.#tcp.delete(this.#tcp.keys().next().value!);
    }
    if (event.smoothedRttMilliseconds !== null) state.rtt = event.smoothedRttMilliseconds;
    if (event.pid !== null) {
      state.pid = event.pid;
      state.command = event.command;
    }
  }

  /** Takes a snapshot grouped by connection ("conn"); returns the rows listed now, busiest first. */
  update(snapshot: TrafficSnapshot, now?: number): ConnectionRow[] {
    const operation = "update connections";
    expectObject(operation, "snapshot", snapshot);
    expectArray(operation, "snapshot.rows", snapshot.rows);
    const time = now ?? Date.parse(expectString(operation, "snapshot.time", snapshot.time));
    if (typeof time !== "number" || !Number.isFinite(time)) {
      throw now === undefined ? argumentError(operation, "snapshot.time", "an ISO 8601 time", snapshot.time) : argumentError(operation, "now", "a time in milliseconds since the epoch", now);
    }
    const rows: ConnectionRow[] = [];
    const seen = new Set<string>();
    for (const row of snapshot.rows) {
      if (row.localAddress === undefined || row.remoteAddress === undefined) continue;
      seen.add(row.key);
      const moving = row.bytesInPerSecond + row.bytesOutPerSecond > 0;
      let entry = this.#entries.get(row.key);
      if (!entry) {
        entry = { firstSeen: time, lastActive: time };
        this.#entries.set(row.key, entry);
      } else if (moving) {
        entry.lastActive = time;
      }
      const tcp = row.protocol === "tcp" ? this.#tcp.get(tupleKey(row.localAddress, row.localPort ?? 0, row.remoteAddress, row.remotePort ?? 0)) : undefined;
      if (!tcp && time - entry.lastActive > this.idleMilliseconds) continue;
      rows.push(this.#row(row, entry, tcp, time));
    }
    for (const key of this.#entries.keys()) if (!seen.has(key)) this.#entries.delete(key);
    rows.sort((a, b) => b.bytesInPerSecond + b.bytesOutPerSecond - (a.bytesInPerSecond + a.bytesOutPerSecond) || b.bytesIn + b.bytesOut - (a.bytesIn + a.bytesOut) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.#rows = rows;
    return rows;
  }

  #row(row: TrafficRow, entry: Entry, tcp: TcpState | undefined, now: number): ConnectionRow {
    const process = row.process ?? (tcp?.pid != null ? { pid: tcp.pid, command: tcp.command ?? "" } : null);
    return {
      key: row.key,
      protocol: row.protocol ?? "unknown",
      interface: row.interface ?? null,
      localAddress: row.localAddress!,
      localPort: row.localPort ?? 0,
      remoteAddress: row.remoteAddress!,
      remotePort: row.remotePort ?? 0,
      process: process ? { pid: process.pid, command: process.command } : null,
      bytesInPerSecond: row.bytesInPerSecond,
      bytesOutPerSecond: row.bytesOutPerSecond,
      packetsInPerSecond: row.packetsInPerSecond,
      packetsOutPerSecond: row.packetsOutPerSecond,
      bytesIn: row.bytesIn,
      bytesOut: row.bytesOut,
      rttMilliseconds: tcp?.rtt ?? null,
      durationMilliseconds: Math.max(0, now - Math.min(entry.firstSeen, tcp?.opened ?? Infinity)),
      open: tcp !== undefined,
    };
  }

  /** The rows of the last update through a filter, at most `limit` of them. */
  view(filter: ConnectionFilter | undefined, limit = 200): ConnectionView {
    expectConnectionFilter("view connections", "filter", filter);
    expectInteger("view connections", "limit", limit, 0);
    const matched = filter ? this.#rows.filter((row) => filter.matches(row)) : this.#rows;
    return { rows: matched.slice(0, limit), total: this.#rows.length, matched: matched.length };
  }

  /** Processes to remote hosts over the rows of the last update; the `limit` heaviest edges. */
  graph(limit = 40): TalkGraph {
    expectInteger("graph connections", "limit", limit, 0);
    const edges = new Map<string, TalkGraph["edges"][number]>();
    for (const row of this.#rows) {
      const process = row.process ? `${row.process.command} (${row.process.pid})` : "unknown";
      const key = `${process}\u0000${row.remoteAddress}`;
      const edge = edges.get(key) ?? { process, host: row.remoteAddress, bytesPerSecond: 0, connections: 0 };
      edge.bytesPerSecond += row.bytesInPerSecond + row.bytesOutPerSecond;
      edge.connections++;
      edges.set(key, edge);
    }
    const kept = [...edges.values()].sort((a, b) => b.bytesPerSecond - a.bytesPerSecond || b.connections - a.connections).slice(0, limit);
    return { processes: [...new Set(kept.map((edge) => edge.process))], hosts: [...new Set(kept.map((edge) => edge.host))], edges: kept };
  }
}
