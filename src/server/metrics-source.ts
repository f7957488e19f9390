/**
 * A source of metrics for `netbpf serve`: each tool (traffic, TCP, and later
 * the firewall and the load balancer) plugs one in. The server creates the
 * registry, lets every source register its metrics, starts them, and stops
 * them (detaching everything they attached) on shutdown.
 */
import { Registry } from "prom-client";
import { expectInstance } from "../sys/argument-checks.js";

export interface MetricsSource {
  /** Short name, shown by /healthz ("traffic", "tcp", …). */
  readonly name: string;
  /** Creates the source's metrics in the registry (values may be filled in at scrape time). */
  register(registry: Registry): void;
  /** Attaches and begins collecting; ends quietly when `signal` aborts. Throws when it cannot start. */
  start(signal: AbortSignal): void | Promise<void>;
  /** Called once per scrape before the metrics are rendered: read the kernel's counters here. */
  collect?(): void | Promise<void>;
  /** Detaches everything; safe to call twice. */
  stop(): void;
  /** Why the source is unhealthy (it stopped on an error), or undefined when it is fine. */
  readonly failure?: string | undefined;
}

/** The registry a source registers its metrics in (the server's, or one of prom-client's). */
export function expectRegistry(operation: string, registry: unknown): Registry {
  return expectInstance(operation, "registry", registry, Registry, "a prom-client Registry");
}
