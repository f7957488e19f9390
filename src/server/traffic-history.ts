/**
 * The dashboard's recent past: one sample per second of bytes and packets in
 * and out by interface and by port, kept in a ring of fixed capacity (an hour
 * by default), so a page opened now shows the last hour, not an empty chart.
 * Memory is bounded: `capacity` samples of at most `maximumInterfaces` + 1 and
 * `topPorts` + 1 series each (the rest is summed as "other").
 */
import { argumentError, expectInstance, expectInteger, expectObject } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";

/** Rates over the second: [bytes in, bytes out, packets in, packets out] per second. */
export type TrafficRates4 = [number, number, number, number];

export interface TrafficSample {
  /** Milliseconds since the epoch (the end of the second the rates cover). */
  time: number;
  /** Series name → rates; at most maximumInterfaces names plus "other". */
  interfaces: Record<string, TrafficRates4>;
  /** Port ("tcp/443") → rates; the top ports of this second plus "other". */
  ports: Record<string, TrafficRates4>;
}

export interface TrafficHistoryOptions {
  /** Samples kept (default 3600: an hour at one per second). */
  capacity?: number;
  /** Ports kept per sample, the busiest (default 10). */
  topPorts?: number;
  /** Interfaces kept per sample, the busiest (default 16). */
  maximumInterfaces?: number;
}

const operation = "traffic history";


/** The `limit` busiest series of `series`, the others summed as "other". */
function busiest(series: ReadonlyMap<string, TrafficRates4>, limit: number): Record<string, TrafficRates4> {
  const sorted = [...series].sort((a, b) => b[1][0] + b[1][1] - (a[1][0] + a[1][1]) || (a[0] < b[0] ? -1 : 1));
  const kept: Record<string, TrafficRates4> = {};
  for (const [name, rates] of sorted.slice(0, limit)) kept[name] = [...rates];
  const rest = sorted.slice(limit);
  if (rest.length > 0) {
    const other = (kept.other ??= [0, 0, 0, 0]);
    for (const [, rates] of rest) for (let index = 0; index < 4; index++) other[index]! += rates[index]!;
  }
  return kept;
}

export class TrafficHistory {
  readonly capacity: number;
  readonly topPorts: number;
  readonly maximumInterfaces: number;
  readonly #samples: (TrafficSample | undefined)[];
  /** Index the next sample goes to. */
  #next = 0;
  #length = 0;

  constructor(options: TrafficHistoryOptions = {}) {
    expectObject(operation, "options", options);
    this.capacity = expectInteger(operation, "options.capacity", options.capacity ?? 3600, 1, 86400);
    this.topPorts = expectInteger(operation, "options.topPorts", options.topPorts ?? 10, 1, 1000);
    this.maximumInterfaces = expectInteger(operation, "options.maximumInterfaces", options.maximumInterfaces ?? 16, 1, 1000);
    this.#samples = new Array(this.capacity);
  }

  /** Samples held (at most capacity). */
  get length(): number {
    return this.#length;
  }

  /** Adds the rates of one second; the oldest sample goes when the ring is full. Times must not go backwards. */
  record(time: number, interfaces: ReadonlyMap<string, TrafficRates4>, ports: ReadonlyMap<string, TrafficRates4>): TrafficSample {
    if (typeof time !== "number" || !Number.isFinite(time)) throw argumentError(operation, "time", "a number of milliseconds", time);
    expectInstance(operation, "interfaces", interfaces, Map, "a Map of interface name → rates");
    expectInstance(operation, "ports", ports, Map, "a Map of port → rates");
    const last = this.latest();
    if (last && time < last.time) throw new UsageError(operation, `sample time ${time} is before the last one (${last.time})`);
    const sample: TrafficSample = { time, interfaces: busiest(interfaces, this.maximumInterfaces), ports: busiest(ports, this.topPorts) };
    this.#samples[this.#next] = sample;
    this.#next = (this.#next + 1) % this.capacity;
    this.#length = Math.min(this.#length + 1, this.capacity);
    return sample;
  }

  latest(): TrafficSample | undefined {
    return this.#length === 0 ? undefined : this.#samples[(this.#next - 1 + this.capacity) % this.capacity];
  }

  /** The samples later than `time` (all with no time), oldest first. */
  since(time = -Infinity): TrafficSample[] {
    if (typeof time !== "number" || Number.isNaN(time)) throw argumentError(operation, "time", "a number of milliseconds", time);
    const result: TrafficSample[] = [];
    const start = (this.#next - this.#length + this.capacity) % this.capacity;
    for (let offset = 0; offset < this.#length; offset++) {
      const sample = this.#samples[(start + offset) % this.capacity]!;
      if (sample.time > time) result.push(sample);
    }
    return result;
  }
}
