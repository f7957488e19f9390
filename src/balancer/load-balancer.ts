/**
 * An L4 load balancer in the kernel: one virtual service (VIP, port,
 * protocol) spread over backends by a Maglev table, with per-flow connection
 * tracking, NAT or DSR, health checks, and everything pinned under the state
 * folder (kind "lb") so it outlives the process that installed it.
 */
import { Socket } from "node:net";
import { BpfMap, type MapSpec } from "../core/map.js";
import { Program } from "../core/program.js";
import { attachTcx } from "../link/tcx.js";
import { MapType, ProgramType } from "../sys/bpf-constants.js";
import { UsageError } from "../sys/errors.js";
import { expectBoolean, expectFunction, expectInstance, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { libcIfNameToIndex } from "../sys/libc.js";
import { lookupRoute } from "../sys/route-lookup.js";
import { StateComponent, StateStore } from "../state/state-store.js";
import {
  backendEntryCodec, backendStatsCodec, balancerMapNames, balancerProgram, BackendState, conntrackCodec, controlCodec, defaultNatPortHoldMs, droppedSlot,
  flowKeyCodec, maximumBackends, noBackend, reverseCodec, type BalancerMode, type BalancerProtocol, type BackendStats,
} from "./balancer-program.js";
import { defaultMaglevTableSize, maglevTable, maglevTableSizes } from "./maglev.js";
import { formatAddress, formatEndpoint, parseAddress, parseEndpoint, type Endpoint } from "./service-address.js";
import { delay } from "../sys/delay.js";

export interface BackendOptions {
  /** `ADDR:PORT` or `[IPV6]:PORT`. */
  endpoint: string;
  /** Relative share of new flows (default 1). */
  weight?: number;
}

export interface HealthCheckOptions {
  /** TCP port to connect to (default: the backend's port; required for UDP services). */
  port?: number;
  intervalMs?: number;
  timeoutMs?: number;
  /** Consecutive successes that bring a backend back. */
  rise?: number;
  /** Consecutive failures that take it out. */
  fall?: number;
}

export interface LoadBalancerOptions {
  /** The virtual service, `ADDR:PORT`. */
  service: string;
  protocol?: BalancerProtocol;
  mode?: BalancerMode;
  /** Interfaces to attach to (tc ingress): where clients' packets and backends' replies arrive. */
  interfaces: string[];
  backends: BackendOptions[];
  tableSize?: number;
  natPorts?: { first: number; last: number };
  /** TCP, NAT mode: how long a closed flow's NAT port stays reserved for its last packets (default 5,000). */
  natPortHoldMs?: number;
  /** Flows tracked at once (LRU). */
  maximumFlows?: number;
  healthCheck?: HealthCheckOptions | false;
  /** State folder (default $NETBPF_STATE_DIR or /sys/fs/bpf/netbpf). */
  stateRoot?: string;
}

export type BackendHealth = "up" | "down" | "unknown";

interface BackendConfig {
  id: number;
  endpoint: string;
  weight: number;
  state: "active" | "draining";
  health: BackendHealth;
  /** Where it is reached from the balancer, resolved once when the backend was added. */
  interface: string;
  interfaceIndex: number;
  natSource: string;
  /** Share of the active Maglev table, recorded when the table is written (absent in state written before it was recorded). */
  share?: number;
}

interface BalancerConfig {
  service: string;
  protocol: BalancerProtocol;
  mode: BalancerMode;
  interfaces: string[];
  tableSize: number;
  natPorts: { first: number; last: number };
  /** Absent in state written before closed flows gave their ports back. */
  natPortHoldMs?: number;
  maximumFlows: number;
  healthCheck: Required<Omit<HealthCheckOptions, "port">> & { port?: number } | false;
  backends: BackendConfig[];
}

export interface BackendStatus extends BackendStats {
  endpoint: string;
  weight: number;
  state: "active" | "draining";
  health: BackendHealth;
  /** Flows currently in the connection table. */
  trackedFlows: number;
  /** Share of the Maglev table (new flows), 0..1. */
  share: number;
}

export interface LoadBalancerStatus {
  service: string;
  protocol: BalancerProtocol;
  mode: BalancerMode;
  interfaces: string[];
  backends: BackendStatus[];
  /** Packets to the service dropped for want of a backend or a free NAT port. */
  dropped: bigint;
}

type BalancerMaps = Record<"backends" | "maglev" | "control" | "conntrack" | "stats", BpfMap>;

const kind = "lb";
const operation = "lb";
const defaultHealth = { intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3 };

function componentName(protocol: BalancerProtocol, service: string): string {
  return `${protocol}-${service}`;
}

function checkInteger(value: number, low: number, high: number, what: string): number {
  if (!Number.isInteger(value) || value < low || value > high) throw new UsageError(operation, `${what} must be an integer from ${low} to ${high}, got ${value}`);
  return value;
}

function checkProtocol(protocol: string): BalancerProtocol {
  if (protocol !== "tcp" && protocol !== "udp") throw new UsageError(operation, `protocol must be tcp or udp, got ${JSON.stringify(protocol)}`);
  return protocol;
}

function mapsFor(config: Pick<BalancerConfig, "tableSize" | "maximumFlows">): Record<keyof typeof balancerMapNames, BpfMap> {
  const created: BpfMap[] = [];
  const make = (spec: MapSpec) => {
    const map: BpfMap = BpfMap.create(spec);
    created.push(map);
    return map;
  };
  try {
    return {
      backends: make({ type: MapType.Array, keySize: 4, valueSize: backendEntryCodec.size, maxEntries: maximumBackends, name: balancerMapNames.backends }),
      maglev: make({ type: MapType.Array, keySize: 4, valueSize: 4, maxEntries: 2 * config.tableSize, name: balancerMapNames.maglev }),
      control: make({ type: MapType.Array, keySize: 4, valueSize: controlCodec.size, maxEntries: 1, name: balancerMapNames.control }),
      conntrack: make({ type: MapType.LruHash, keySize: flowKeyCodec.size, valueSize: conntrackCodec.size, maxEntries: config.maximumFlows, name: balancerMapNames.conntrack }),
      reverse: make({ type: MapType.LruHash, keySize: flowKeyCodec.size, valueSize: reverseCodec.size, maxEntries: config.maximumFlows, name: balancerMapNames.reverse }),
      stats: make({ type: MapType.PercpuArray, keySize: 4, valueSize: backendStatsCodec.size, maxEntries: maximumBackends + 1, name: balancerMapNames.stats }),
    };
  } catch (error) {
    created.forEach((m) => m.close());
    throw error;
  }
}

function u32Key(value: number): Buffer {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(value >>> 0);
  return key;
}

/** Where a backend is reached from here: the interface and our address on it (the NAT source). */
function routeTo(endpoint: Endpoint, text: string): { interfaceIndex: number; interfaceName: string; natSource: Buffer } {
  let route;
  try {
    route = lookupRoute(endpoint.address);
  } catch {
    throw new UsageError(operation, `no route to backend ${text}`, "add a route to it in this network namespace (ip route add …)");
  }
  if (route.interfaceIndex === 0) throw new UsageError(operation, `no route to backend ${text}`, "add a route to it (ip route add …)");
  if (route.interfaceName === "lo") throw new UsageError(operation, `backend ${text} is an address of this host`, "backends must be other hosts (or network namespaces) reached through an interface");
  const natSource = route.source ?? Buffer.alloc(endpoint.address.length);
  return { interfaceIndex: route.interfaceIndex, interfaceName: route.interfaceName, natSource };
}

function backendEntry(config: BackendConfig, state: number): Buffer {
  const endpoint = parseEndpoint(config.endpoint, operation);
  const entry = Buffer.alloc(backendEntryCodec.size);
  endpoint.address.copy(entry, 0);
  parseAddress(config.natSource, operation).copy(entry, 16);
  entry.writeUInt16BE(endpoint.port, 32);
  entry.writeUInt16LE(endpoint.address.length === 4 ? 2 : 10, 34);
  entry.writeUInt32LE(state, 36);
  entry.writeUInt32LE(config.interfaceIndex, 40);
  return entry;
}

/** Checks the options of open and list: an object whose `stateRoot`, when given, is a path. */
function checkStateRoot(options: { stateRoot?: string }): void {
  expectObject(operation, "options", options);
  if (options.stateRoot !== undefined) expectString(operation, "options.stateRoot", options.stateRoot);
}

/** Backends that receive new flows: active and not known to be down. */
function eligible(config: BalancerConfig): BackendConfig[] {
  return config.backends.filter((b) => b.state === "active" && b.health !== "down");
}

export class LoadBalancer {
  readonly component: StateComponent;
  #config: BalancerConfig;

  private constructor(component: StateComponent, config: BalancerConfig) {
    // Not for users: LoadBalancer.create and open construct balancers.
    expectInstance("construct LoadBalancer", "component", component, StateComponent, "a StateComponent (use LoadBalancer.create or LoadBalancer.open)");
    expectObject("construct LoadBalancer", "config", config);
    this.component = component;
    this.#config = config;
  }

  get service(): string {
    return this.#config.service;
  }

  get protocol(): BalancerProtocol {
    return this.#config.protocol;
  }

  get config(): Readonly<BalancerConfig> {
    return this.#config;
  }

  /**
   * Installs a balancer: checks everything first (addresses, families,
   * interfaces, routes to the backends), then loads, attaches and pins. On
   * any failure nothing stays installed.
   */
  static create(options: LoadBalancerOptions): LoadBalancer {
    expectObject(operation, "options", options);
    const protocol = checkProtocol(options.protocol ?? "tcp");
    const mode = options.mode ?? "nat";
    if (mode !== "nat" && mode !== "dsr") throw new UsageError(operation, `mode must be nat or dsr, got ${JSON.stringify(mode)}`);
    const service = parseEndpoint(expectString(operation, "options.service", options.service), operation);
    const serviceText = formatEndpoint(service);
    const tableSize = options.tableSize ?? defaultMaglevTableSize;
    if (!(maglevTableSizes as readonly number[]).includes(tableSize)) throw new UsageError(operation, `table size must be one of ${maglevTableSizes.join(", ")}, got ${tableSize}`);
    const natPorts = options.natPorts ?? { first: 10000, last: 32767 };
    checkInteger(natPorts.first, 1024, 65535, "the first NAT port");
    checkInteger(natPorts.last, natPorts.first, 65535, "the last NAT port");
    const natPortHoldMs = checkInteger(options.natPortHoldMs ?? defaultNatPortHoldMs, 0, 24 * 3600 * 1000, "the NAT port hold time (ms)");
    const maximumFlows = checkInteger(options.maximumFlows ?? 65536, 16, 1 << 24, "the number of tracked flows");
    if (!Array.isArray(options.interfaces) || options.interfaces.length === 0) {
      throw new UsageError(operation, "no interface given", "name the interfaces where clients' packets and backends' replies arrive (-i IFACE, repeatable)");
    }
    for (const name of options.interfaces) {
      if (typeof name !== "string" || !name || libcIfNameToIndex(name) === 0) throw new UsageError(operation, `no interface named ${JSON.stringify(name)}`, "list interfaces with `ip link`");
    }
    if (new Set(options.interfaces).size !== options.interfaces.length) throw new UsageError(operation, "an interface is named twice");
    if (!Array.isArray(options.backends) || options.backends.length === 0) throw new UsageError(operation, "no backend given", "add at least one --backend ADDR:PORT");
    if (options.backends.length > maximumBackends) throw new UsageError(operation, `at most ${maximumBackends} backends, got ${options.backends.length}`);
    const healthCheck = options.healthCheck === false || options.healthCheck === undefined && protocol === "udp" ? false : checkHealth(options.healthCheck ?? {}, protocol);
    const backends: BackendConfig[] = options.backends.map((b, id) => backendConfig(b, id, service.address.length, options.interfaces));
    const seen = new Set<string>();
    for (const b of backends) {
      if (seen.has(b.endpoint)) throw new UsageError(operation, `backend ${b.endpoint} is given twice`);
      seen.add(b.endpoint);
    }
    if (mode === "dsr" && backends.some((b) => parseEndpoint(b.endpoint, operation).port !== service.port)) {
      throw new UsageError(operation, "in DSR mode backends must listen on the service's own port (the packet is not rewritten)", `use port ${service.port} for every backend, or --mode nat`);
    }
    const config: BalancerConfig = { service: serviceText, protocol, mode, interfaces: [...options.interfaces], tableSize, natPorts, natPortHoldMs, maximumFlows, healthCheck, backends };
    const entries = backends.map((b) => backendEntry(b, BackendState.Active));

    const store = StateStore.open(options.stateRoot ? { root: options.stateRoot } : {});
    const component = store.component(kind, componentName(protocol, serviceText));
    if (component.exists()) {
      throw new UsageError(operation, `${protocol} ${serviceText} is already balanced`, "change its backends with `netbpf lb add|drain|remove`, or delete it with `netbpf lb delete`");
    }
    const lock = component.lock();
    try {
      const maps = mapsFor(config);
      try {
        entries.forEach((entry, i) => maps.backends.put(u32Key(backends[i]!.id), entry));
        writeTable(maps, config, 0);
        maps.control.put(u32Key(0), Buffer.alloc(controlCodec.size));
        using program = Program.load(
          { type: ProgramType.SchedCls, name: "nb_lb", instructions: balancerProgram({ vip: service.address, port: service.port, protocol, mode, tableSize, natPorts, natPortHoldMs }) },
          { maps: Object.fromEntries(Object.entries(balancerMapNames).map(([key, name]) => [name, maps[key as keyof typeof maps]])) },
        );
        for (const [key, map] of Object.entries(maps)) component.pin(key, map);
        component.pin("program", program);
        const attachments = [];
        for (const name of config.interfaces) {
          using link = attachTcx(program, { interface: name, direction: "ingress" });
          if (link.mechanism !== "tcx") throw new UsageError(operation, `tcx is not available on this kernel, so the balancer on ${name} could not be pinned`, "netbpf lb needs tcx links (Linux 6.6 or newer)");
          component.pin(`ingress-${name}`, link);
          attachments.push({ hook: "tc ingress", mechanism: "tcx", interface: name, pin: `ingress-${name}` });
        }
        const balancer = new LoadBalancer(component, config);
        balancer.#writeManifest();
        return balancer;
      } finally {
        Object.values(maps).forEach((m) => m.close());
      }
    } catch (error) {
      try {
        component.remove();
      } catch {
        // Report the original failure.
      }
      throw error;
    } finally {
      lock.release();
    }
  }

  /** Opens an installed balancer by its service (`ADDR:PORT`). */
  static open(service: string, options: { protocol?: BalancerProtocol; stateRoot?: string } = {}): LoadBalancer {
    expectString(operation, "service", service);
    checkStateRoot(options);
    const protocol = checkProtocol(options.protocol ?? "tcp");
    const text = formatEndpoint(parseEndpoint(service, operation));
    const component = StateStore.open(options.stateRoot ? { root: options.stateRoot } : {}).component(kind, componentName(protocol, text));
    const manifest = component.exists() ? component.readManifest<BalancerConfig>() : undefined;
    if (!manifest) throw new UsageError(operation, `no balancer for ${protocol} ${text}`, "list balancers with `netbpf lb status`");
    return new LoadBalancer(component, manifest.config);
  }

  /** Every installed balancer. */
  static list(options: { stateRoot?: string } = {}): LoadBalancer[] {
    checkStateRoot(options);
    const store = StateStore.open(options.stateRoot ? { root: options.stateRoot } : {});
    return store.components(kind).flatMap((component) => {
      const manifest = component.readManifest<BalancerConfig>();
      return manifest ? [new LoadBalancer(component, manifest.config)] : [];
    });
  }

  #reload(): void {
    const manifest = this.component.readManifest<BalancerConfig>();
    if (!manifest) throw new UsageError(operation, `the balancer for ${this.#config.service} was removed`);
    this.#config = manifest.config;
  }

  #writeManifest(): void {
    const c = this.#config;
    const up = c.backends.filter((b) => b.state === "active" && b.health !== "down").length;
    this.component.writeManifest({
      summary: `${c.protocol} ${c.service} (${c.mode}): ${c.backends.length} backends, ${up} taking new flows`,
      attachments: c.interfaces.map((name) => ({ hook: "tc ingress", mechanism: "tcx", interface: name, pin: `ingress-${name}` })),
      config: c,
    });
  }

  #openMaps(): BalancerMaps {
    return {
      backends: BpfMap.openPinned(this.component.pinPath("backends")),
      maglev: BpfMap.openPinned(this.component.pinPath("maglev")),
      control: BpfMap.openPinned(this.component.pinPath("control")),
      conntrack: BpfMap.openPinned(this.component.pinPath("conntrack")),
      stats: BpfMap.openPinned(this.component.pinPath("stats")),
    };
  }

  /** Runs `change` on the configuration under the component's lock, then rewrites maps and manifest. */
  #change(change: (config: BalancerConfig, maps: BalancerMaps) => void): void {
    using _lock = this.component.lock({ wait: true });
    this.#reload();
    const maps = this.#openMaps();
    try {
      const next: BalancerConfig = structuredClone(this.#config);
      change(next, maps);
      // The inactive half of the Maglev table gets the new layout, then one write flips to it.
      const active = maps.control.get(u32Key(0))!.readUInt32LE(0) & 1;
      writeTable(maps, next, 1 - active);
      const control = Buffer.alloc(controlCodec.size);
      control.writeUInt32LE(1 - active, 0);
      maps.control.put(u32Key(0), control);
      this.#config = next;
      this.#writeManifest();
    } finally {
      Object.values(maps).forEach((m) => m.close());
    }
  }

  /** Adds a backend; it takes its share of new flows at once. */
  add(backend: BackendOptions): void {
    expectObject("add a balancer backend", "backend", backend);
    parseEndpoint(expectString("add a balancer backend", "backend.endpoint", backend.endpoint), "add a balancer backend", "backend.endpoint");
    this.#change((config, maps) => {
      const family = parseEndpoint(config.service, operation).address.length;
      const used = new Set(config.backends.map((b) => b.id));
      let id = 0;
      while (used.has(id)) id++;
      if (id >= maximumBackends) throw new UsageError(operation, `a balancer has at most ${maximumBackends} backends`);
      const entry = backendConfig(backend, id, family, config.interfaces);
      if (config.backends.some((b) => b.endpoint === entry.endpoint)) throw new UsageError(operation, `backend ${entry.endpoint} is already in ${config.service}`);
      if (config.mode === "dsr" && parseEndpoint(entry.endpoint, operation).port !== parseEndpoint(config.service, operation).port) {
        throw new UsageError(operation, "in DSR mode backends must listen on the service's own port");
      }
      maps.backends.put(u32Key(id), backendEntry(entry, BackendState.Active));
      config.backends.push(entry);
    });
  }

  /** Stops new flows to a backend; its established flows carry on. */
  drain(endpoint: string): void {
    endpointArgument("drain a balancer backend", endpoint);
    this.#change((config, maps) => {
      const backend = findBackend(config, endpoint);
      backend.state = "draining";
      maps.backends.put(u32Key(backend.id), backendEntry(backend, BackendState.Draining));
    });
  }

  /** Removes a backend: no new flows; its established flows are sent elsewhere (and reset by the new backend). */
  remove(endpoint: string): void {
    endpointArgument("remove a balancer backend", endpoint);
    let removedId = -1;
    this.#change((config) => {
      const backend = findBackend(config, endpoint);
      removedId = backend.id;
      config.backends = config.backends.filter((b) => b !== backend);
    });
    // Only after the table no longer names it does the entry go.
    using backends = BpfMap.openPinned(this.component.pinPath("backends"));
    backends.put(u32Key(removedId), Buffer.alloc(backendEntryCodec.size));
  }

  /** Records a health check result; a backend that goes down leaves the table, one that comes up returns. */
  setHealth(endpoint: string, health: BackendHealth): void {
    endpointArgument("set backend health", endpoint);
    expectOneOf("set backend health", "health", health, ["up", "down", "unknown"]);
    this.#change((config) => {
      findBackend(config, endpoint).health = health;
    });
  }

  /**
   * Per-backend counters and the table's current shares. Cheap enough to call
   * on every metrics scrape: the counters are one small per-CPU array, the
   * shares were recorded in the manifest when the table was written, and the
   * per-backend count of tracked flows (a scan of the whole connection table)
   * is reused for up to `trackedFlowsMaximumAge` ms unless `fresh` is set.
   */
  status(options: { fresh?: boolean } = {}): LoadBalancerStatus {
    expectObject("read balancer status", "options", options);
    expectBoolean("read balancer status", "options.fresh", options.fresh, true);
    this.#reload();
    using stats = BpfMap.openPinned(this.component.pinPath("stats"));
    const sum = (key: number): BackendStats => {
      const total: BackendStats = { packets: 0n, bytes: 0n, flows: 0n, replyPackets: 0n, replyBytes: 0n };
      for (const raw of stats.getPerCpu(u32Key(key)) ?? []) {
        const v = backendStatsCodec.decode(raw as Buffer, 0);
        total.packets += v.packets; total.bytes += v.bytes; total.flows += v.flows; total.replyPackets += v.replyPackets; total.replyBytes += v.replyBytes;
      }
      return total;
    };
    const tracked = this.#trackedFlows(options.fresh ?? false);
    const shares = this.#config.backends.every((b) => b.share !== undefined) ? undefined : this.#readShares();
    return {
      service: this.#config.service, protocol: this.#config.protocol, mode: this.#config.mode, interfaces: this.#config.interfaces,
      backends: this.#config.backends.map((b) => ({
        endpoint: b.endpoint, weight: b.weight, state: b.state, health: b.health, trackedFlows: tracked.get(b.id) ?? 0,
        share: shares ? (shares.get(b.id) ?? 0) / this.#config.tableSize : b.share!, ...sum(b.id),
      })),
      dropped: sum(droppedSlot).packets,
    };
  }

  /** Flows per backend in the connection table, counted at most every `trackedFlowsMaximumAge` ms per balancer. */
  #trackedFlows(fresh: boolean): Map<number, number> {
    const cached = trackedFlowCounts.get(this.component.path);
    if (!fresh && cached && Date.now() - cached.at < trackedFlowsMaximumAge) return cached.counts;
    const counts = new Map<number, number>();
    using conntrack = BpfMap.openPinned(this.component.pinPath("conntrack"));
    conntrack.forEachBatch((_key, value) => {
      const id = (value as Buffer).readUInt32LE(0);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    });
    trackedFlowCounts.set(this.component.path, { at: Date.now(), counts });
    return counts;
  }

  /** Table slots per backend in the active half (state written before shares were recorded in the manifest). */
  #readShares(): Map<number, number> {
    using control = BpfMap.openPinned(this.component.pinPath("control"));
    using maglev = BpfMap.openPinned(this.component.pinPath("maglev"));
    const active = control.get(u32Key(0))!.readUInt32LE(0) & 1;
    const owned = new Map<number, number>();
    maglev.forEachBatch((key, value) => {
      const slot = (key as Buffer).readUInt32LE(0);
      if (Math.floor(slot / this.#config.tableSize) !== active) return;
      const id = (value as Buffer).readUInt32LE(0);
      owned.set(id, (owned.get(id) ?? 0) + 1);
    });
    return owned;
  }

  /** Detaches and removes the balancer. */
  delete(): void {
    using _lock = this.component.lock({ wait: true });
    this.component.remove();
  }

  /** One round of health checks (TCP connects, in parallel); returns the backends whose health changed. */
  async checkHealth(): Promise<{ endpoint: string; health: BackendHealth }[]> {
    this.#reload();
    const check = this.#config.healthCheck;
    if (!check) return [];
    const results = await Promise.all(this.#config.backends.map(async (b) => {
      const endpoint = parseEndpoint(b.endpoint, operation);
      return { backend: b, ok: await tcpConnects(formatAddress(endpoint.address), check.port ?? endpoint.port, check.timeoutMs) };
    }));
    const changes: { endpoint: string; health: BackendHealth }[] = [];
    for (const { backend, ok } of results) {
      const streak = this.#streaks.get(backend.endpoint) ?? { ok: 0, failed: 0 };
      if (ok) {
        streak.ok++;
        streak.failed = 0;
      } else {
        streak.failed++;
        streak.ok = 0;
      }
      this.#streaks.set(backend.endpoint, streak);
      const next: BackendHealth | undefined = ok && backend.health !== "up" && (streak.ok >= check.rise || backend.health === "unknown") ? "up"
        : !ok && backend.health !== "down" && streak.failed >= check.fall ? "down" : undefined;
      if (next) changes.push({ endpoint: backend.endpoint, health: next });
    }
    if (changes.length) {
      this.#change((config) => {
        for (const c of changes) {
          const backend = config.backends.find((b) => b.endpoint === c.endpoint);
          if (backend) backend.health = c.health;
        }
      });
    }
    return changes;
  }

  #streaks = new Map<string, { ok: number; failed: number }>();

  /** Runs health checks every interval until `signal` aborts; `onChange` hears every transition. */
  async runHealthChecks(options: { signal?: AbortSignal; onChange?: (change: { service: string; endpoint: string; health: BackendHealth }) => void } = {}): Promise<void> {
    const checking = "run balancer health checks";
    expectObject(checking, "options", options);
    if (options.signal !== undefined) expectInstance(checking, "options.signal", options.signal, AbortSignal, "an AbortSignal");
    if (options.onChange !== undefined) expectFunction(checking, "options.onChange", options.onChange);
    const check = this.#config.healthCheck;
    if (!check) return;
    while (!options.signal?.aborted) {
      for (const change of await this.checkHealth()) options.onChange?.({ service: this.#config.service, ...change });
      await delay(check.intervalMs, options.signal);
    }
  }
}

function checkHealth(options: HealthCheckOptions, protocol: BalancerProtocol): BalancerConfig["healthCheck"] {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as HealthCheckOptions;
  const merged = { ...defaultHealth, ...given };
  checkInteger(merged.intervalMs, 50, 3_600_000, "the health check interval (ms)");
  checkInteger(merged.timeoutMs, 10, 60_000, "the health check timeout (ms)");
  checkInteger(merged.rise, 1, 100, "the health check rise count");
  checkInteger(merged.fall, 1, 100, "the health check fall count");
  if (merged.port !== undefined) checkInteger(merged.port, 1, 65535, "the health check port");
  else if (protocol === "udp") throw new UsageError(operation, "a UDP service's health check needs a TCP port to connect to", "give --health-port PORT, or --no-health");
  return merged;
}

function backendConfig(options: BackendOptions, id: number, family: number, interfaces: readonly string[]): BackendConfig {
  if (!options || typeof options.endpoint !== "string") throw new UsageError(operation, "a backend needs an endpoint ADDR:PORT");
  const endpoint = parseEndpoint(options.endpoint, operation);
  const text = formatEndpoint(endpoint);
  if (endpoint.address.length !== family) {
    throw new UsageError(operation, `backend ${text} is ${endpoint.address.length === 4 ? "IPv4" : "IPv6"} but the service is ${family === 4 ? "IPv4" : "IPv6"}`, "use backends of the service's address family");
  }
  const weight = checkInteger(options.weight ?? 1, 1, 1000, `the weight of ${text}`);
  const route = routeTo(endpoint, text);
  if (!interfaces.includes(route.interfaceName)) {
    throw new UsageError(operation, `backend ${text} is reached through ${route.interfaceName}, where the balancer is not attached (its replies would not be translated)`,
      `attach there too (-i ${route.interfaceName}), and run netbpf in the network namespace the balancer works in`);
  }
  return { id, endpoint: text, weight, state: "active", health: "unknown", interface: route.interfaceName, interfaceIndex: route.interfaceIndex, natSource: formatAddress(route.natSource) };
}

/** Checks an endpoint argument: a string of the form ADDRESS:PORT. */
function endpointArgument(operation: string, endpoint: unknown): void {
  parseEndpoint(expectString(operation, "endpoint", endpoint), operation, "endpoint");
}

function findBackend(config: BalancerConfig, endpoint: string): BackendConfig {
  const text = formatEndpoint(parseEndpoint(endpoint, operation));
  const backend = config.backends.find((b) => b.endpoint === text);
  if (!backend) throw new UsageError(operation, `${text} is not a backend of ${config.service}`, `its backends: ${config.backends.map((b) => b.endpoint).join(", ") || "none"}`);
  return backend;
}

/** Writes one half of the Maglev table and records each backend's share of it in `config`. */
function writeTable(maps: { maglev: BpfMap }, config: BalancerConfig, half: number): void {
  const backends = eligible(config);
  const table = maglevTable(backends.map((b) => ({ key: b.endpoint, weight: b.weight })), config.tableSize);
  const entries: [Buffer, Buffer][] = [];
  const owned = new Map<number, number>();
  for (let i = 0; i < table.length; i++) {
    const index = table[i]!;
    const id = index < 0 ? noBackend : backends[index]!.id;
    owned.set(id, (owned.get(id) ?? 0) + 1);
    entries.push([u32Key(half * config.tableSize + i), u32Key(id)]);
  }
  maps.maglev.updateBatch(entries);
  for (const backend of config.backends) backend.share = (owned.get(backend.id) ?? 0) / config.tableSize;
}

/** How long `status()` reuses a count of the connection table (a full scan of an LRU map of up to millions of flows). */
export const trackedFlowsMaximumAge = 10_000;
const trackedFlowCounts = new Map<string, { at: number; counts: Map<number, number> }>();

function tcpConnects(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("error", () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

