/**
 * The dashboard's data: once a second it reads a TrafficWatcher grouped by
 * connection (per interface, with processes), folds the rates into the
 * history (by interface and by port), updates the connection table (joined
 * with watchTcp()'s opens, closes and RTTs), and pushes one update to every
 * page over its Server-Sent Events stream — one stream per page, each with
 * its own connection filter. Rules, limits and balancers (from the state
 * folder) and alerts (from an AlertSource) ride on the same updates.
 *
 * Memory is bounded: the history is a fixed ring, the connection table is
 * bounded by the kernel map and its TCP side, at most `maximumClients`
 * streams are open, and a stream that does not keep up (more than
 * `maximumBacklog` bytes unsent) is closed.
 */
import type { ServerResponse } from "node:http";
import { watchTcp, type TcpWatcher } from "../monitor/tcp-watcher.js";
import { TrafficWatcher, type TrafficSnapshot } from "../monitor/traffic-watcher.js";
import { argumentError, expectArray, expectFunction, expectInstance, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { NetbpfError } from "../sys/errors.js";
import type { AlertSource, DashboardAlert } from "./alert-source.js";
import type { ConnectionFilter } from "./connection-filter.js";
import { ConnectionTable, expectConnectionFilter, type ConnectionView, type TalkGraph } from "./connection-table.js";
import { readControlStatus, type ControlStatus } from "./control-status.js";
import { ephemeralPortRange } from "./port-labels.js";
import { TrafficHistory, type TrafficRates4, type TrafficSample } from "./traffic-history.js";

export interface DashboardFeedOptions {
  /** Interfaces to watch with tcx; default this host's sockets (root cgroup), as `netbpf top`. */
  interfaces?: readonly string[];
  /** A pcap-filter expression selecting the traffic counted (as `netbpf top`'s). */
  filter?: string;
  /** Keys of the kernel's per-connection map (LRU; default 16384). */
  maxEntries?: number;
  /** Samples of history (default 3600, one per second). */
  historySeconds?: number;
  /** Milliseconds between updates (default 1000). */
  interval?: number;
  /** The state folder to read rules, limits and balancers from (default $NETBPF_STATE_DIR or /sys/fs/bpf/netbpf). */
  stateRoot?: string;
  alerts?: AlertSource;
  /** Rows sent per update (default 200). */
  rows?: number;
  /** Open event streams at most (default 32). */
  maximumClients?: number;
  /** Bytes a stream may have unsent before it is closed (default 4 MiB). */
  maximumBacklog?: number;
}

/** What a page receives each second (event "update"). */
export interface DashboardUpdate {
  time: number;
  sample: TrafficSample;
  connections: ConnectionView;
  graph: TalkGraph;
  control: ControlStatus;
  alerts: { source: string | null; items: DashboardAlert[] };
  health: { entries: number; evictions: number; lost: number; tcpLost: number; tcpFailure: string | null; trackedConnections: number; clients: number };
}

interface Client {
  response: ServerResponse;
  filter: ConnectionFilter | undefined;
}

const zero = (): TrafficRates4 => [0, 0, 0, 0];

export class DashboardFeed {
  readonly history: TrafficHistory;
  readonly table = new ConnectionTable();
  readonly interval: number;
  readonly #options: DashboardFeedOptions;
  readonly #clients = new Set<Client>();
  readonly #ephemeral = ephemeralPortRange();
  #traffic: TrafficWatcher | undefined;
  #tcp: TcpWatcher | undefined;
  #tcpFailure: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  #control: ControlStatus = { rules: [], limits: [], offenders: [], balancers: [], failures: {} };
  #controlRead = 0;
  #alerts: DashboardAlert[] = [];
  #last: Omit<DashboardUpdate, "connections"> | undefined;
  #failure: string | undefined;
  /** A tick still running (slow alert source, busy machine): the next one is skipped rather than stacked. */
  #ticking = false;

  constructor(options: DashboardFeedOptions = {}) {
    const operation = "dashboard feed";
    this.#options = expectObject(operation, "options", options);
    for (const name of expectArray(operation, "options.interfaces", options.interfaces, true)) expectString(operation, "options.interfaces[]", name);
    for (const name of ["filter", "stateRoot"] as const) if (options[name] !== undefined) expectString(operation, `options.${name}`, options[name]);
    for (const name of ["maxEntries", "rows", "maximumClients", "maximumBacklog"] as const) if (options[name] !== undefined) expectInteger(operation, `options.${name}`, options[name], 1);
    this.interval = expectInteger(operation, "options.interval", options.interval ?? 1000, 10);
    if (options.historySeconds !== undefined) expectInteger(operation, "options.historySeconds", options.historySeconds, 1, 86400);
    if (options.alerts !== undefined) {
      expectObject(operation, "options.alerts", options.alerts);
      expectFunction(operation, "options.alerts.recent", options.alerts.recent);
    }
    this.history = new TrafficHistory({ capacity: options.historySeconds ?? 3600 });
  }

  /** Why the feed stopped updating, or undefined while it runs. */
  get failure(): string | undefined {
    return this.#failure;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Attaches the watchers and starts the updates; throws (having detached everything) when it cannot. */
  start(signal: AbortSignal): void {
    expectInstance("start dashboard feed", "signal", signal, AbortSignal);
    try {
      this.#traffic = TrafficWatcher.open({ by: "conn", perInterface: true, processes: true, interfaces: this.#options.interfaces, filter: this.#options.filter, maxEntries: this.#options.maxEntries });
      const tcp = watchTcp({ signal, types: ["open", "accept", "close", "retransmit"] });
      this.#tcp = tcp;
      void (async () => {
        try {
          for await (const event of tcp) this.table.observe(event);
        } catch (error) {
          this.#tcpFailure = error instanceof Error ? error.message : String(error);
        }
      })();
    } catch (error) {
      this.stop();
      throw error;
    }
    this.#timer = setInterval(() => void this.#tick(), this.interval);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const client of this.#clients) client.response.end();
    this.#clients.clear();
    this.#tcp?.close();
    this.#tcp = undefined;
    this.#traffic?.close();
    this.#traffic = undefined;
  }

  /** The port a row is about: its local port, unless that is a client's ephemeral port and the remote one is not. */
  #servicePort(protocol: string, localPort: number, remotePort: number): string {
    const ephemeral = (port: number) => port >= this.#ephemeral[0] && port <= this.#ephemeral[1];
    const port = ephemeral(localPort) && !ephemeral(remotePort) && remotePort !== 0 ? remotePort : localPort;
    return port === 0 ? protocol : `${protocol}/${port}`;
  }

  #fold(snapshot: TrafficSnapshot): { interfaces: Map<string, TrafficRates4>; ports: Map<string, TrafficRates4> } {
    const interfaces = new Map<string, TrafficRates4>();
    const ports = new Map<string, TrafficRates4>();
    const add = (map: Map<string, TrafficRates4>, name: string, row: TrafficSnapshot["rows"][number]) => {
      const rates = map.get(name) ?? zero();
      rates[0] += row.bytesInPerSecond;
      rates[1] += row.bytesOutPerSecond;
      rates[2] += row.packetsInPerSecond;
      rates[3] += row.packetsOutPerSecond;
      map.set(name, rates);
    };
    for (const row of snapshot.rows) {
      if (row.bytesInPerSecond + row.bytesOutPerSecond === 0) continue;
      add(interfaces, row.interface ?? "all", row);
      add(ports, this.#servicePort(row.protocol ?? "ip", row.localPort ?? 0, row.remotePort ?? 0), row);
    }
    return { interfaces, ports };
  }

  async #tick(): Promise<void> {
    const traffic = this.#traffic;
    if (!traffic || this.#ticking) return;
    this.#ticking = true;
    try {
      const snapshot = traffic.snapshot();
      const now = Date.now();
      const { interfaces, ports } = this.#fold(snapshot);
      const sample = this.history.record(now, interfaces, ports);
      this.table.update(snapshot, now);
      // Pinned maps of the control tools are read every few seconds, alerts every second.
      if (now - this.#controlRead >= 3000) {
        this.#control = readControlStatus({ stateRoot: this.#options.stateRoot });
        this.#controlRead = now;
      }
      if (this.#options.alerts) {
        try {
          this.#alerts = await this.#options.alerts.recent(20);
        } catch {
          this.#alerts = [];
        }
      }
      this.#last = {
        time: now,
        sample,
        graph: this.table.graph(),
        control: this.#control,
        alerts: { source: this.#options.alerts?.name ?? null, items: this.#alerts },
        health: { entries: snapshot.entries, evictions: snapshot.evictions, lost: snapshot.lost, tcpLost: this.#tcp?.lost ?? 0, tcpFailure: this.#tcpFailure, trackedConnections: this.table.tracked, clients: this.#clients.size },
      };
      this.#failure = undefined;
      for (const client of this.#clients) this.#send(client, "update", this.update(client.filter));
    } catch (error) {
      this.#failure = error instanceof Error ? error.message : String(error);
      for (const client of this.#clients) this.#send(client, "failure", { message: this.#failure });
    } finally {
      this.#ticking = false;
    }
  }

  /** The latest update through a connection filter (undefined before the first second has passed). */
  update(filter?: ConnectionFilter): DashboardUpdate | undefined {
    expectConnectionFilter("dashboard update", "filter", filter);
    if (!this.#last) return undefined;
    return { ...this.#last, connections: this.table.view(filter, this.#options.rows ?? 200) };
  }

  #send(client: Client, event: string, data: unknown): void {
    if (data === undefined) return;
    const response = client.response;
    if (response.writableLength > (this.#options.maximumBacklog ?? 4 << 20)) {
      this.#clients.delete(client);
      response.end();
      return;
    }
    response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /**
   * Streams to one page: first event "history" (the samples after `since`
   * ms), then an "update" every interval, until the page goes away. Throws
   * a NetbpfError when the stream limit is reached.
   */
  subscribe(response: ServerResponse, options: { filter?: ConnectionFilter; since?: number } = {}): void {
    const operation = "subscribe to the dashboard";
    const page = response as Partial<ServerResponse> | null;
    if (typeof page !== "object" || page === null || typeof page.writeHead !== "function" || typeof page.write !== "function" || typeof page.end !== "function" || typeof page.on !== "function") {
      throw argumentError(operation, "response", "an HTTP response (a ServerResponse)", response);
    }
    expectObject(operation, "options", options);
    expectConnectionFilter(operation, "options.filter", options.filter);
    if (options.since !== undefined && (typeof options.since !== "number" || Number.isNaN(options.since))) throw argumentError(operation, "options.since", "a time in milliseconds since the epoch", options.since);
    if (this.#clients.size >= (this.#options.maximumClients ?? 32)) throw new NetbpfError("dashboard", `${this.#clients.size} pages are open already`, "close one");
    const client: Client = { response, filter: options.filter };
    response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" });
    response.write(`retry: 2000\n\n`);
    this.#clients.add(client);
    response.on("close", () => this.#clients.delete(client));
    this.#send(client, "history", { interval: this.interval, capacity: this.history.capacity, samples: this.history.since(options.since) });
    this.#send(client, "update", this.update(client.filter));
  }
}
