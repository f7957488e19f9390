import { readFileSync } from "node:fs";

/** The kernel's range for ephemeral (client) ports, from net.ipv4.ip_local_port_range. */
export function ephemeralPortRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    // not Linux procfs: the kernel's default
  }
  return [32768, 60999];
}

/**
 * Bounded label values for ports, so a port scan cannot blow up a metric's
 * cardinality: pinned ports always get their own value; ports in the
 * kernel's ephemeral range (the client side of connections) are
 * "ephemeral"; then the first `limit` other ports seen get their own value
 * (a port keeps it once given); every later port is "other". Series never
 * move between values, so counters stay monotonic.
 */
export class PortLabels {
  readonly limit: number;
  readonly #pinned: Set<number>;
  readonly #chosen = new Set<number>();
  readonly #ephemeral: [number, number];

  constructor(limit: number, pinned: Iterable<number> = [], ephemeral: [number, number] = ephemeralPortRange()) {
    this.limit = limit;
    this.#pinned = new Set(pinned);
    this.#ephemeral = ephemeral;
  }

  /** The label value for a port (0 = no port: "none"). */
  label(port: number): string {
    if (port === 0) return "none";
    if (this.#pinned.has(port) || this.#chosen.has(port)) return String(port);
    if (port >= this.#ephemeral[0] && port <= this.#ephemeral[1]) return "ephemeral";
    if (this.#chosen.size < this.limit) {
      this.#chosen.add(port);
      return String(port);
    }
    return "other";
  }

  /** Ports with their own value now. */
  get ports(): number[] {
    return [...new Set([...this.#pinned, ...this.#chosen])].sort((a, b) => a - b);
  }
}
