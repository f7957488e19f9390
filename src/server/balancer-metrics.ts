/**
 * Load balancer metrics for `netbpf serve`: every balancer installed under
 * the state folder, read from its pinned maps at scrape time (nothing is
 * attached by the exporter). Series are per service and backend: a balancer
 * has at most 256 backends, so cardinality is bounded by what is installed.
 */
import { Gauge, type Registry } from "prom-client";
import { LoadBalancer } from "../balancer/load-balancer.js";
import { expectObject, expectString } from "../sys/argument-checks.js";
import { expectRegistry, type MetricsSource } from "./metrics-source.js";

type Labels = "service" | "protocol" | "backend";

export class BalancerMetricsSource implements MetricsSource {
  readonly name = "lb";
  readonly #stateRoot: string | undefined;
  #failure: string | undefined;
  #gauges: Record<string, Gauge<Labels>> = {};
  #dropped!: Gauge<"service" | "protocol">;

  constructor(options: { stateRoot?: string } = {}) {
    expectObject("balancer metrics", "options", options);
    if (options.stateRoot !== undefined) expectString("balancer metrics", "options.stateRoot", options.stateRoot);
    this.#stateRoot = options.stateRoot;
  }

  get failure(): string | undefined {
    return this.#failure;
  }

  register(registry: Registry): void {
    expectRegistry("register balancer metrics", registry);
    const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ["service", "protocol", "backend"], registers: [registry] });
    // Counters in the kernel, exposed as gauges: a backend removed and added again starts from zero.
    this.#gauges = {
      packets: gauge("netbpf_lb_backend_packets", "Packets the balancer sent to a backend"),
      bytes: gauge("netbpf_lb_backend_bytes", "Bytes the balancer sent to a backend"),
      replyPackets: gauge("netbpf_lb_backend_reply_packets", "Reply packets from a backend translated back to clients (NAT)"),
      replyBytes: gauge("netbpf_lb_backend_reply_bytes", "Reply bytes from a backend translated back to clients (NAT)"),
      flows: gauge("netbpf_lb_backend_flows", "Flows assigned to a backend since it was added"),
      trackedFlows: gauge("netbpf_lb_backend_tracked_flows", "Flows to a backend currently in the connection table"),
      share: gauge("netbpf_lb_backend_share", "Share of new flows a backend receives (its part of the Maglev table), 0..1"),
      up: gauge("netbpf_lb_backend_up", "1 when a backend takes new flows (active and not failing its health check)"),
    };
    this.#dropped = new Gauge({ name: "netbpf_lb_dropped_packets", help: "Packets to a service dropped for want of a backend or a free NAT port", labelNames: ["service", "protocol"], registers: [registry] });
  }

  start(): void {}

  collect(): void {
    for (const gauge of [...Object.values(this.#gauges), this.#dropped]) gauge.reset();
    try {
      for (const balancer of LoadBalancer.list({ stateRoot: this.#stateRoot })) {
        const status = balancer.status();
        this.#dropped.set({ service: status.service, protocol: status.protocol }, Number(status.dropped));
        for (const backend of status.backends) {
          const labels = { service: status.service, protocol: status.protocol, backend: backend.endpoint };
          this.#gauges.packets!.set(labels, Number(backend.packets));
          this.#gauges.bytes!.set(labels, Number(backend.bytes));
          this.#gauges.replyPackets!.set(labels, Number(backend.replyPackets));
          this.#gauges.replyBytes!.set(labels, Number(backend.replyBytes));
          this.#gauges.flows!.set(labels, Number(backend.flows));
          this.#gauges.trackedFlows!.set(labels, backend.trackedFlows);
          this.#gauges.share!.set(labels, backend.share);
          this.#gauges.up!.set(labels, backend.state === "active" && backend.health !== "down" ? 1 : 0);
        }
      }
      this.#failure = undefined;
    } catch (error) {
      this.#failure = (error as Error).message;
    }
  }

  stop(): void {}
}
