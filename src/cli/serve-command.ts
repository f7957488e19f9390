import { hostname } from "node:os";
import { Command } from "commander";
import { MetricsServer, defaultListenAddress, parseListenAddress } from "../server/metrics-server.js";
import type { MetricsSource } from "../server/metrics-source.js";
import { TcpMetricsSource } from "../server/tcp-metrics.js";
import { BalancerMetricsSource } from "../server/balancer-metrics.js";
import { LoadBalancer } from "../balancer/load-balancer.js";
import { TrafficMetricsSource } from "../server/traffic-metrics.js";
import { UsageError } from "../sys/errors.js";
import { JsonLinesAlertSource } from "../server/alert-source.js";
import { DashboardAccess } from "../server/dashboard-access.js";
import { DashboardFeed } from "../server/dashboard-feed.js";
import { collect, parseInteger, parsePorts } from "./monitor-options.js";

interface ServeCommandOptions {
  listen?: string;
  interface?: string[];
  port?: string[];
  topPorts?: string;
  entries?: string;
  traffic?: boolean;
  tcp?: boolean;
  lb?: boolean;
  ui?: boolean;
  token?: string;
  alerts?: string;
  history?: string;
}

const operation = "serve";

const help = `
Endpoints:
  /metrics     Prometheus text format (traffic, TCP, the exporter's health)
  /healthz     200 {"status":"ok"} while every source runs, 503 otherwise
  /            with --ui: the live dashboard (charts, connections, rules, alerts)

With --ui on an address other than loopback, every path but /healthz needs a
token: the one given with --token (or $NETBPF_SERVE_TOKEN), else a random one
printed at start. Open the printed address (…/?token=…) in a browser; scrapers
send "Authorization: Bearer TOKEN".

Traffic is counted as by \`netbpf top\` (default: this host's sockets through
the root cgroup; -i for interfaces, which also sees forwarded traffic). Each
port seen gets its own series until --top-ports are taken; later ports are
counted as port="other" (--port pins ports that always get their own).

Examples:
  netbpf serve                               metrics on http://127.0.0.1:9435/metrics
  netbpf serve --listen :9435 --port 443     every interface, port 443 always its own series
  netbpf serve -i eth1 --no-tcp 'not port 22'
  netbpf serve --ui                          dashboard on http://127.0.0.1:9435/
  netbpf serve --ui --listen :9435           dashboard on every interface, with a token
  netbpf serve --ui --alerts /var/log/netbpf/alerts.jsonl`;

export function registerServeCommand(program: Command): void {
  program.command("serve")
    .description("export traffic, TCP and load balancer metrics to Prometheus over HTTP")
    .argument("[expression...]", "a pcap-filter expression selecting the traffic counted")
    .option("--listen <address>", `HOST:PORT to listen on (default ${defaultListenAddress.host}:${defaultListenAddress.port}; :PORT = all interfaces)`)
    .option("-i, --interface <name>", "count traffic on this interface with tcx instead of this host's sockets (repeatable)", collect)
    .option("--port <port>", "a port that always gets its own series (repeatable)", collect)
    .option("--top-ports <count>", "other ports with their own series, the first seen (default 20)")
    .option("--entries <count>", "most keys the kernel's traffic map keeps (LRU; default 16384)")
    .option("--no-traffic", "do not export traffic counters")
    .option("--no-tcp", "do not export TCP connection metrics")
    .option("--no-lb", "do not export the installed load balancers' per-backend counters")
    .option("--ui", "serve the live dashboard on / (watches connections too)")
    .option("--token <token>", "the token the dashboard and metrics require (default: a random one beyond loopback; or $NETBPF_SERVE_TOKEN)")
    .option("--alerts <file>", "show recent alerts from this JSON-lines file on the dashboard")
    .option("--history <seconds>", "seconds of per-second history the dashboard keeps (default 3600)")
    .addHelpText("after", help)
    .action(async (words: string[], options: ServeCommandOptions) => runServe(words.join(" ").trim(), options));
}

async function runServe(expression: string, options: ServeCommandOptions): Promise<void> {
  const listen = options.listen !== undefined ? parseListenAddress(options.listen) : defaultListenAddress;
  const ports = parsePorts(options.port, operation);
  const topPorts = parseInteger(options.topPorts, "--top-ports", operation, 0, 10000) ?? 20;
  const maxEntries = parseInteger(options.entries, "--entries", operation, 16, 1 << 24);
  const sources: MetricsSource[] = [];
  if (options.traffic !== false) sources.push(new TrafficMetricsSource({ interfaces: options.interface, filter: expression, maxEntries, ports, topPorts }));
  else if ((expression !== "" || options.interface?.length) && !options.ui) throw new UsageError(operation, "a filter or -i was given with --no-traffic", "drop one of them");
  if (options.tcp !== false) sources.push(new TcpMetricsSource({ ports, topPorts }));
  // The balancers' counters are exported whenever balancers are installed (read from their pins at scrape time).
  if (options.lb !== false && (sources.length > 0 || LoadBalancer.list().length > 0)) sources.push(new BalancerMetricsSource());
  if (sources.length === 0 && !options.ui) throw new UsageError(operation, "--no-traffic and --no-tcp leave nothing to export", "no load balancer is installed either");

  const token = options.token ?? (process.env.NETBPF_SERVE_TOKEN || undefined);
  if (!options.ui && (options.alerts !== undefined || options.history !== undefined)) throw new UsageError(operation, "--alerts and --history are for the dashboard", "add --ui");
  const historySeconds = parseInteger(options.history, "--history", operation, 10, 86400);
  const access = options.ui || token !== undefined ? DashboardAccess.forListen(listen.host, token) : undefined;
  const dashboard = options.ui ? new DashboardFeed({ interfaces: options.interface, filter: expression, maxEntries, historySeconds, alerts: options.alerts !== undefined ? new JsonLinesAlertSource(options.alerts) : undefined }) : undefined;

  const server = await MetricsServer.start({ listen, sources, dashboard, access });
  const stopped = new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  process.stderr.write(`netbpf: serving ${sources.map((source) => source.name).join(" and ")} metrics on ${server.url}/metrics\n`);
  // On every address, name this machine rather than 0.0.0.0 (which browsers refuse to open).
  const pageBase = listen.host === "0.0.0.0" || listen.host === "::" ? `http://${hostname()}:${server.address.port}` : server.url;
  if (dashboard) process.stderr.write(`netbpf: dashboard on ${pageBase}/${access?.required && token === undefined ? `?token=${access.token}` : ""}\n`);
  else if (access?.required) process.stderr.write(`netbpf: every path but /healthz needs the token given\n`);
  const signal = await stopped;
  await server.close();
  process.stderr.write(`netbpf: ${signal}: stopped, everything detached\n`);
}
