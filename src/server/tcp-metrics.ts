/**
 * TCP metrics for `netbpf serve`, from watchTcp()'s events (tracepoints):
 * connections opened, closed, reset and retransmitted by service port (the
 * local port of accepted connections, the remote port of outgoing ones),
 * round-trip time and duration histograms, and events lost.
 */
import { Counter, Histogram, type Registry } from "prom-client";
import { watchTcp, type TcpEvent, type TcpWatcher } from "../monitor/tcp-watcher.js";
import { expectInstance, expectObject } from "../sys/argument-checks.js";
import { expectRegistry, type MetricsSource } from "./metrics-source.js";
import { portLabelsOf, type PortLabels } from "./port-labels.js";

export interface TcpMetricsOptions {
  /** Ports that always get their own series. */
  ports?: readonly number[];
  /** Other ports with their own series (the first seen); the rest are port="other". Default 20. */
  topPorts?: number;
}

type DirectionLabel = "incoming" | "outgoing" | "unknown";

export class TcpMetricsSource implements MetricsSource {
  readonly name = "tcp";
  readonly #ports: PortLabels;
  #watcher: TcpWatcher | undefined;
  #failure: string | undefined;
  #opened!: Counter<"direction" | "port">;
  #closed!: Counter<"direction" | "port">;
  #resets!: Counter<"direction" | "port">;
  #retransmits!: Counter<"port">;
  #rtt!: Histogram<"direction">;
  #duration!: Histogram<"direction">;

  constructor(options: TcpMetricsOptions = {}) {
    this.#ports = portLabelsOf("TCP metrics", expectObject("TCP metrics", "options", options));
  }

  get failure(): string | undefined {
    return this.#failure;
  }

  register(registry: Registry): void {
    expectRegistry("register TCP metrics", registry);
    const source = this;
    this.#opened = new Counter({ name: "netbpf_tcp_connections_opened_total", help: "TCP connections established, by direction (incoming = accepted here) and service port", labelNames: ["direction", "port"], registers: [registry] });
    this.#closed = new Counter({ name: "netbpf_tcp_connections_closed_total", help: "TCP connections closed, by direction and service port", labelNames: ["direction", "port"], registers: [registry] });
    this.#resets = new Counter({ name: "netbpf_tcp_resets_total", help: "TCP resets, by direction (sent or received) and service port", labelNames: ["direction", "port"], registers: [registry] });
    this.#retransmits = new Counter({ name: "netbpf_tcp_retransmits_total", help: "TCP segments retransmitted, by service port", labelNames: ["port"], registers: [registry] });
    this.#rtt = new Histogram({ name: "netbpf_tcp_rtt_seconds", help: "Smoothed round-trip time of TCP connections when they close", labelNames: ["direction"], buckets: [0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1], registers: [registry] });
    this.#duration = new Histogram({ name: "netbpf_tcp_connection_duration_seconds", help: "Lifetime of TCP connections, from the first SYN to CLOSE", labelNames: ["direction"], buckets: [0.001, 0.01, 0.1, 1, 10, 60, 600, 3600], registers: [registry] });
    new Counter({
      name: "netbpf_tcp_events_lost_total",
      help: "TCP events the kernel could not hand over (ring buffer full)",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(source.#watcher?.lost ?? 0);
      },
    });
  }

  #direction(event: TcpEvent): DirectionLabel {
    return event.role === "active" ? "outgoing" : event.role === "passive" ? "incoming" : "unknown";
  }

  /** The service port: the local one for accepted connections and listeners, the remote one for outgoing. */
  #port(event: TcpEvent): string {
    return this.#ports.label(event.role === "active" ? event.remotePort : event.role === null ? Math.min(event.localPort, event.remotePort) : event.localPort);
  }

  #count(event: TcpEvent): void {
    const direction = this.#direction(event);
    switch (event.type) {
      case "open":
        this.#opened.inc({ direction, port: this.#port(event) });
        break;
      case "close":
        if (event.role === "listener") break;
        this.#closed.inc({ direction, port: this.#port(event) });
        if (event.smoothedRttMilliseconds !== null) this.#rtt.observe({ direction }, event.smoothedRttMilliseconds / 1000);
        if (event.durationMilliseconds !== null) this.#duration.observe({ direction }, event.durationMilliseconds / 1000);
        break;
      case "reset":
        this.#resets.inc({ direction: event.resetDirection ?? "unknown", port: this.#port(event) });
        break;
      case "retransmit":
        this.#retransmits.inc({ port: this.#port(event) });
        break;
      default:
        break;
    }
  }

  start(signal: AbortSignal): void {
    expectInstance("start TCP metrics", "signal", signal, AbortSignal);
    const watcher = watchTcp({ signal, types: ["open", "close", "reset", "retransmit"] });
    this.#watcher = watcher;
    void (async () => {
      try {
        for await (const event of watcher) this.#count(event);
      } catch (error) {
        this.#failure = error instanceof Error ? error.message : String(error);
      }
    })();
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}
