/**
 * Traffic metrics for `netbpf serve`: packets and bytes by interface,
 * direction, protocol and local port, from a TrafficWatcher (counting in the
 * kernel, read at every scrape), plus the watcher's own health.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { TrafficWatcher, type TrafficWatcherOptions } from "../monitor/traffic-watcher.js";
import { expectArray, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { expectRegistry, type MetricsSource } from "./metrics-source.js";
import { portLabelsOf, type PortLabels } from "./port-labels.js";

export interface TrafficMetricsOptions extends Pick<TrafficWatcherOptions, "interfaces" | "filter" | "maxEntries" | "cgroup"> {
  /** Ports that always get their own series. */
  ports?: readonly number[];
  /** Other ports with their own series (the first seen); the rest are port="other". Default 20. */
  topPorts?: number;
}

const labelNames = ["interface", "direction", "protocol", "port"] as const;
type Labels = Record<(typeof labelNames)[number], string>;

/** Running totals per label set, fed with the watcher's per-key counts (which restart when the kernel evicts a key). */
class Totals {
  readonly #previous = new Map<string, number>();
  readonly values = new Map<string, { labels: Labels; value: number }>();

  add(kernelKey: string, labels: Labels, current: number): void {
    const before = this.#previous.get(kernelKey) ?? 0;
    const delta = current >= before ? current - before : current;
    this.#previous.set(kernelKey, current);
    const key = JSON.stringify(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += delta;
    else this.values.set(key, { labels, value: delta });
  }
}

export class TrafficMetricsSource implements MetricsSource {
  readonly name = "traffic";
  readonly #options: TrafficMetricsOptions;
  readonly #ports: PortLabels;
  #watcher: TrafficWatcher | undefined;
  readonly #bytes = new Totals();
  readonly #packets = new Totals();
  #evictions = 0;
  #entries = 0;
  #lost = 0;

  constructor(options: TrafficMetricsOptions = {}) {
    const operation = "traffic metrics";
    this.#options = expectObject(operation, "options", options);
    this.#ports = portLabelsOf(operation, options);
    for (const name of expectArray(operation, "options.interfaces", options.interfaces, true)) expectString(operation, "options.interfaces[]", name);
    for (const name of ["filter", "cgroup"] as const) if (options[name] !== undefined) expectString(operation, `options.${name}`, options[name]);
    if (options.maxEntries !== undefined) expectInteger(operation, "options.maxEntries", options.maxEntries, 1);
  }

  /** Reads the kernel's counters into the running totals. */
  #update(): void {
    const watcher = this.#watcher;
    if (!watcher) return;
    const snapshot = watcher.snapshot();
    for (const row of snapshot.rows) {
      const port = this.#ports.label(row.localPort ?? 0);
      const common = { interface: row.interface ?? "unknown", protocol: row.protocol ?? "unknown", port };
      this.#bytes.add(`${row.key} in`, { ...common, direction: "in" }, row.bytesIn);
      this.#bytes.add(`${row.key} out`, { ...common, direction: "out" }, row.bytesOut);
      this.#packets.add(`${row.key} in`, { ...common, direction: "in" }, row.packetsIn);
      this.#packets.add(`${row.key} out`, { ...common, direction: "out" }, row.packetsOut);
    }
    this.#evictions = snapshot.evictions;
    this.#entries = snapshot.entries;
    this.#lost = snapshot.lost;
  }

  /** Called by the server once per scrape, before the metrics are rendered. */
  collect(): void {
    this.#update();
  }

  register(registry: Registry): void {
    expectRegistry("register traffic metrics", registry);
    const source = this;
    const fill = (metric: Counter<string>, totals: Totals) => {
      metric.reset();
      for (const { labels, value } of totals.values.values()) metric.inc(labels, value);
    };
    new Counter({
      name: "netbpf_traffic_bytes_total",
      help: "IP bytes (IP header and payload, as on the wire; link headers excluded) by interface, direction, protocol and local port",
      labelNames,
      registers: [registry],
      collect() {
        fill(this, source.#bytes);
      },
    });
    new Counter({
      name: "netbpf_traffic_packets_total",
      help: "Packets (GSO/GRO segments counted one by one) by interface, direction, protocol and local port",
      labelNames,
      registers: [registry],
      collect() {
        fill(this, source.#packets);
      },
    });
    new Counter({
      name: "netbpf_traffic_map_evictions_total",
      help: "Keys the kernel's LRU counting map evicted (their counts up to the last scrape are kept)",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(source.#evictions);
      },
    });
    new Counter({
      name: "netbpf_traffic_packets_lost_total",
      help: "Packets not counted because the kernel could not create a key for them",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(source.#lost);
      },
    });
    new Gauge({
      name: "netbpf_traffic_map_entries",
      help: "Keys in the kernel's counting map",
      registers: [registry],
      collect() {
        this.set(source.#entries);
      },
    });
  }

  start(): void {
    this.#watcher = TrafficWatcher.open({
      by: "port",
      perInterface: true,
      processes: false,
      interfaces: this.#options.interfaces,
      filter: this.#options.filter,
      maxEntries: this.#options.maxEntries,
      cgroup: this.#options.cgroup,
    });
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}
