/**
 * Ports for a test's own servers. Tracepoints and cgroup hooks see every
 * connection on the machine, in every namespace, and tests (ours and other
 * suites) open thousands at once: a port inside the kernel's ephemeral range
 * can be, by chance, the local port of someone else's connection, which then
 * shows up in what a test counts for "its" port. Below that range no client
 * connection is ever given the port.
 */
import { ephemeralPortRange } from "../../src/server/port-labels.js";

const lowest = 10_000;

/** A random port from 10000 up to the start of the ephemeral range (or above its end when that start is too low). */
export function randomServicePort(): number {
  const [first, last] = ephemeralPortRange();
  const [low, high] = first - lowest >= 2000 ? [lowest, first - 1] : [last + 1, 65535];
  return low + Math.floor(Math.random() * (high - low + 1));
}
