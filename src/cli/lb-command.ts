/** `netbpf lb`: the load balancer's command line, a thin shell over LoadBalancer. */
import type { Command } from "commander";
import { LoadBalancer, type BackendOptions, type LoadBalancerStatus } from "../balancer/load-balancer.js";
import { UsageError } from "../sys/errors.js";
import { parseDuration } from "./duration-option.js";
import { renderTable, toJson, writeLine } from "./output.js";

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `ADDR:PORT` or `ADDR:PORT,weight=N`. */
function parseBackend(text: string): BackendOptions {
  const [endpoint, ...options] = text.split(",");
  const backend: BackendOptions = { endpoint: endpoint! };
  for (const option of options) {
    const match = /^weight=(\d+)$/.exec(option);
    if (!match) throw new UsageError("lb", `unknown backend option "${option}" in "${text}"`, "write ADDR:PORT or ADDR:PORT,weight=N");
    backend.weight = Number(match[1]);
  }
  return backend;
}

function integerOption(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`option ${option}`, `"${text}" is not a whole number`);
  return Number(text);
}

function formatBytes(value: bigint): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = Number(value);
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(1)} ${units[unit]}`;
}

function printStatus(statuses: LoadBalancerStatus[], json: boolean): void {
  if (json) {
    for (const s of statuses) writeLine(toJson(s));
    return;
  }
  if (statuses.length === 0) {
    writeLine("no load balancers installed (create one with `netbpf lb VIP:PORT --backend ADDR:PORT -i IFACE`)");
    return;
  }
  statuses.forEach((s, i) => {
    if (i > 0) writeLine("");
    writeLine(`${s.protocol} ${s.service} (${s.mode}) on ${s.interfaces.join(", ")}${s.dropped ? `, ${s.dropped} packets dropped (no backend or NAT port)` : ""}`);
    writeLine(renderTable(["backend", "weight", "state", "health", "share", "tracked", "flows", "packets", "bytes", "reply packets", "reply bytes"],
      s.backends.map((b) => [b.endpoint, b.weight, b.state, b.health, `${(b.share * 100).toFixed(1)}%`, b.trackedFlows, String(b.flows), String(b.packets), formatBytes(b.bytes), String(b.replyPackets), formatBytes(b.replyBytes)])));
  });
}

interface CommonOptions {
  udp?: boolean;
  stateDir?: string;
}

function protocolOf(options: CommonOptions): "tcp" | "udp" {
  return options.udp ? "udp" : "tcp";
}

export function registerLbCommand(program: Command): void {
  const lb = program
    .command("lb")
    // Subcommands have options of the same names (--udp, --state-dir): each belongs to the command it follows.
    .enablePositionalOptions()
    .description("an L4 load balancer in the kernel: spread a virtual service (VIP:PORT) over backends with Maglev hashing, NAT or DSR")
    .argument("[service]", "the virtual service, ADDR:PORT or [IPV6]:PORT")
    .option("-b, --backend <addr:port[,weight=N]>", "a backend (repeatable)", collect)
    .option("-i, --interface <name>", "attach at tc ingress of this interface: where clients' packets and backends' replies arrive (repeatable, required)", collect)
    .option("--udp", "balance UDP instead of TCP")
    .option("--mode <mode>", "nat (rewrite destination and source; backends need nothing) or dsr (backends answer clients directly; they need the VIP on a loopback)", "nat")
    .option("--table-size <n>", "Maglev table size, a prime: 251, 509, 1021, 2039, 4093, 8191, 16381 (default), 32749 or 65521")
    .option("--nat-ports <first-last>", "source ports used for NATed flows", "10000-32767")
    .option("--nat-port-hold <duration>", "how long a closed TCP flow keeps its NAT port for its last packets", "5s")
    .option("--max-flows <n>", "flows tracked at once (least recently used ones are forgotten)", "65536")
    .option("--health-interval <duration>", "time between health checks (run by `netbpf lb health`)", "2s")
    .option("--health-timeout <duration>", "how long a TCP connect may take", "1s")
    .option("--rise <n>", "successful checks that bring a backend back", "2")
    .option("--fall <n>", "failed checks that take a backend out", "3")
    .option("--health-port <port>", "TCP port the health check connects to (default: the backend's port; needed for UDP)")
    .option("--no-health", "no health checks for this service")
    .option("--state-dir <path>", "bpffs folder for netbpf's state (default: $NETBPF_STATE_DIR or /sys/fs/bpf/netbpf)")
    .addHelpText("after", `
The balancer stays installed after this command exits (it is pinned under the
state folder) until \`netbpf lb delete\` or \`netbpf reset\`. Run it in the network
namespace (or on the router) that clients' packets to the VIP pass through; in
NAT mode backends' replies come back to this host's own address, so backends
need no configuration. Health checks run while \`netbpf lb health\` runs.

Examples:
  netbpf lb 203.0.113.10:80 -i veth-clients -i veth-servers \\
      --backend 198.18.0.2:8080 --backend 198.18.1.2:8080,weight=2
  netbpf lb add 203.0.113.10:80 198.18.2.2:8080
  netbpf lb drain 203.0.113.10:80 198.18.0.2:8080
  netbpf lb status --json`)
    .action((service: string | undefined, options: CommonOptions & {
      backend?: string[]; interface?: string[]; mode: string; tableSize?: string; natPorts: string; natPortHold: string; maxFlows: string;
      healthInterval: string; healthTimeout: string; rise: string; fall: string; healthPort?: string; health: boolean;
    }) => {
      if (!service) {
        lb.outputHelp();
        throw new UsageError("lb", "no service given", "netbpf lb VIP:PORT --backend ADDR:PORT -i IFACE, or a subcommand (status, add, drain, remove, delete, health)");
      }
      const ports = /^(\d+)-(\d+)$/.exec(options.natPorts);
      if (!ports) throw new UsageError("option --nat-ports", `"${options.natPorts}" is not FIRST-LAST`, "write e.g. 10000-32767");
      const protocol = protocolOf(options);
      const health = options.health === false || (protocol === "udp" && options.healthPort === undefined) ? false : {
        intervalMs: parseDuration(options.healthInterval, "--health-interval"),
        timeoutMs: parseDuration(options.healthTimeout, "--health-timeout"),
        rise: integerOption(options.rise, "--rise"), fall: integerOption(options.fall, "--fall"), port: integerOption(options.healthPort, "--health-port"),
      };
      const balancer = LoadBalancer.create({
        service, protocol, mode: options.mode as "nat" | "dsr", interfaces: options.interface ?? [], backends: (options.backend ?? []).map(parseBackend),
        tableSize: integerOption(options.tableSize, "--table-size"), natPorts: { first: Number(ports[1]), last: Number(ports[2]) },
        natPortHoldMs: parseDuration(options.natPortHold, "--nat-port-hold"),
        maximumFlows: integerOption(options.maxFlows, "--max-flows"), healthCheck: health, stateRoot: options.stateDir,
      });
      writeLine(`balancing ${balancer.protocol} ${balancer.service} over ${balancer.config.backends.length} backends on ${balancer.config.interfaces.join(", ")} (${balancer.config.mode})`);
    });

  const withService = (command: Command) => command.option("--udp", "the UDP service of that address").option("--state-dir <path>", "bpffs folder for netbpf's state");

  withService(lb.command("add").description("add a backend to a service").argument("<service>").argument("<backend>", "ADDR:PORT or ADDR:PORT,weight=N"))
    .action((service: string, backend: string, options: CommonOptions) => {
      LoadBalancer.open(service, { protocol: protocolOf(options), stateRoot: options.stateDir }).add(parseBackend(backend));
      writeLine(`added ${backend} to ${service}`);
    });
  withService(lb.command("drain").description("stop sending new flows to a backend; its established flows finish").argument("<service>").argument("<backend>"))
    .action((service: string, backend: string, options: CommonOptions) => {
      LoadBalancer.open(service, { protocol: protocolOf(options), stateRoot: options.stateDir }).drain(backend);
      writeLine(`draining ${backend} of ${service}`);
    });
  withService(lb.command("remove").description("remove a backend (its flows go elsewhere)").argument("<service>").argument("<backend>"))
    .action((service: string, backend: string, options: CommonOptions) => {
      LoadBalancer.open(service, { protocol: protocolOf(options), stateRoot: options.stateDir }).remove(backend);
      writeLine(`removed ${backend} from ${service}`);
    });
  withService(lb.command("delete").description("remove a whole balancer").argument("<service>"))
    .action((service: string, options: CommonOptions) => {
      LoadBalancer.open(service, { protocol: protocolOf(options), stateRoot: options.stateDir }).delete();
      writeLine(`deleted ${service}`);
    });
  lb.command("status").description("per-backend share, flows, packets, bytes and health of every balancer")
    .argument("[service]").option("--udp", "the UDP service of that address").option("--json", "one JSON object per balancer")
    .option("--state-dir <path>", "bpffs folder for netbpf's state")
    .action((service: string | undefined, options: CommonOptions & { json?: boolean }) => {
      const balancers = service ? [LoadBalancer.open(service, { protocol: protocolOf(options), stateRoot: options.stateDir })] : LoadBalancer.list({ stateRoot: options.stateDir });
      printStatus(balancers.map((b) => b.status({ fresh: true })), options.json === true);
    });
  lb.command("health").description("run the health checks of every balancer (TCP connects) until Ctrl-C, taking failing backends out and putting them back")
    .option("--json", "one JSON object per change").option("--state-dir <path>", "bpffs folder for netbpf's state")
    .action(async (options: { json?: boolean; stateDir?: string }) => {
      const balancers = LoadBalancer.list({ stateRoot: options.stateDir }).filter((b) => b.config.healthCheck !== false);
      if (balancers.length === 0) throw new UsageError("lb health", "no balancer with health checks is installed", "create one with `netbpf lb VIP:PORT …` (UDP services need --health-port)");
      const controller = new AbortController();
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => controller.abort());
      writeLine(options.json ? toJson({ event: "ready", services: balancers.map((b) => b.service) }) : `checking ${balancers.map((b) => `${b.protocol} ${b.service}`).join(", ")} (Ctrl-C to stop)`);
      await Promise.all(balancers.map((b) => b.runHealthChecks({
        signal: controller.signal,
        onChange: (change) => writeLine(options.json ? toJson({ event: "health", ...change, time: new Date().toISOString() }) : `${new Date().toISOString()} ${change.service} ${change.endpoint} is ${change.health}`),
      })));
    });
}
