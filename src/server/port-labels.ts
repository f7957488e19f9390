import { readFileSync } from "node:fs";
import { argumentError, expectInteger, expectIterable, expectPorts } from "../sys/argument-checks.js";

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
    const operation = "port labels";
    this.limit = expectInteger(operation, "limit", limit, 0);
    this.#pinned = new Set(expectIterable<number>(operation, "pinned", pinned));
    for (const port of this.#pinned) expectInteger(operation, "pinned[]", port, 0, 65535);
    if (!Array.isArray(ephemeral) || ephemeral.length !== 2 || !ephemeral.every((port) => Number.isInteger(port) && port >= 0 && port <= 65535) || ephemeral[0] > ephemeral[1]) {
      throw argumentError(operation, "ephemeral", "a [low, high] port range", ephemeral);
    }
    this.#ephemeral = ephemeral;
  }

  /** The label value for a port (0 = no port: "none"). */
  label(port: number): string {
    expectInteger("label a port", "port", port, 0, 65535);
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

/** The PortLabels of a metrics source's options: `ports` pinned, the first `topPorts` others (default 20) with their own value. */
export function portLabelsOf(operation: string, options: { ports?: readonly number[]; topPorts?: number }): PortLabels {
  expectPorts(operation, "options.ports", options.ports);
  if (options.topPorts !== undefined) expectInteger(operation, "options.topPorts", options.topPorts, 0);
  return new PortLabels(options.topPorts ?? 20, options.ports ?? []);
}
