import { Command, Option } from "commander";
import { TrafficWatcher, trafficGroupings, type TrafficGrouping, type TrafficSnapshot } from "../monitor/traffic-watcher.js";
import { UsageError } from "../sys/errors.js";
import { collect, parseInteger, parsePorts, parseSeconds } from "./monitor-options.js";
import { toJson } from "./output.js";
import { renderRows, renderScreen, sortRows, TerminalScreen, topColumns } from "./top-screen.js";

interface TopCommandOptions {
  interface?: string[];
  by?: string;
  port?: string[];
  json?: boolean;
  interval?: string;
  duration?: string;
  entries?: string;
  perInterface?: boolean;
  process?: boolean;
}

const operation = "top";

const help = `
What is seen:
  default      cgroup skb ingress+egress on the cgroup v2 root: every packet a
               socket of this host sends or receives, on any interface and in
               any network namespace, loopback included. Forwarded (routed,
               bridged) traffic never reaches a local socket: it is not seen.
  -i IFACE     tcx ingress+egress on that interface: everything crossing it,
               forwarded traffic included (repeatable).

What is counted (per row, in and out):
  packets      wire packets (a GSO/GRO skb counts as its segments);
  bytes        IP bytes as on the wire: IP header and everything after it,
               link-layer headers excluded;
  payload      (--json) TCP/UDP payload bytes (after the transport header).
  "local port" is the port on this host: the destination port of incoming
  packets, the source port of outgoing ones.

Examples:
  netbpf top                          live table by local port
  netbpf top --port 8080 --by conn    connections of port 8080
  netbpf top --json --interval 5 --duration 60 udp
  netbpf top -i veth0 'net 10.0.0.0/8'`;

export function registerTopCommand(program: Command): void {
  program.command("top")
    .description("live traffic by local port, connection, process or remote host, counted in the kernel")
    .argument("[expression...]", "a pcap-filter expression selecting what is counted")
    .option("-i, --interface <name>", "watch this interface with tcx instead of this host's sockets (repeatable)", collect)
    .addOption(new Option("--by <grouping>", "what a row is").choices([...trafficGroupings]).default("port"))
    .option("--port <port>", "only traffic to or from this port, local or remote (repeatable; comma-separated list allowed)", collect)
    .option("--json", "print one JSON snapshot object per interval instead of the live screen")
    .option("--interval <seconds>", "seconds between updates (default 1)")
    .option("--duration <seconds>", "stop after this many seconds")
    .option("--entries <count>", "most keys the kernel keeps (LRU; default 16384)")
    .option("--per-interface", "split rows by interface")
    .addOption(new Option("--no-process", "do not attribute traffic to processes"))
    .addHelpText("after", help)
    .action(async (words: string[], options: TopCommandOptions) => runTop(words.join(" ").trim(), options));
}

async function runTop(expression: string, options: TopCommandOptions): Promise<void> {
  const by = (options.by ?? "port") as TrafficGrouping;
  const interval = parseSeconds(options.interval, "--interval", operation, 1000)!;
  const duration = parseSeconds(options.duration, "--duration", operation);
  const ports = parsePorts(options.port, operation);
  const maxEntries = parseInteger(options.entries, "--entries", operation, 16, 1 << 24);
  const interfaces = options.interface ?? [];
  if (interfaces.includes("any")) throw new UsageError(operation, "-i any is not supported", "leave -i out to watch every socket of this host, or name interfaces");

  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  using watcher = TrafficWatcher.open({ by, interfaces, ports, filter: expression, maxEntries, perInterface: options.perInterface, processes: options.process !== false });
  if (options.process !== false && !watcher.processes) process.stderr.write(`netbpf: process information unavailable: ${watcher.processesUnavailable}\n`);
  const timer = duration !== undefined ? setTimeout(stop, duration) : undefined;
  const description = `${watcher.source === "cgroup" ? "this host's sockets" : `interfaces ${interfaces.join(", ")}`}, by ${by}${ports.length ? `, ports ${ports.join(",")}` : ""}${expression ? `, "${expression}"` : ""}`;
  const live = !options.json && process.stdout.isTTY && process.stdin.isTTY;
  if (!live) process.stderr.write(`netbpf: watching ${description}\n`);
  try {
    if (options.json) await jsonLoop(watcher, interval, abort.signal);
    else if (process.stdout.isTTY && process.stdin.isTTY) await screenLoop(watcher, interval, abort, description);
    else await tableLoop(watcher, interval, abort.signal);
  } finally {
    if (timer) clearTimeout(timer);
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
  }
}

/** Waits for the next interval, or until the signal aborts. */
async function nextTick(interval: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const end = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", end);
      resolve();
    };
    const timer = setTimeout(end, interval);
    signal.addEventListener("abort", end, { once: true });
  });
}

async function jsonLoop(watcher: TrafficWatcher, interval: number, signal: AbortSignal): Promise<void> {
  // On the end (duration or a signal) a last snapshot covers the time since the previous one.
  for (;;) {
    await nextTick(interval, signal);
    process.stdout.write(`${toJson(watcher.snapshot())}\n`);
    if (signal.aborted) return;
  }
}

async function tableLoop(watcher: TrafficWatcher, interval: number, signal: AbortSignal): Promise<void> {
  const columns = topColumns(watcher.by, watcher.perInterface);
  const sortColumn = columns.find((column) => column.title === "TOTAL")!;
  for (;;) {
    await nextTick(interval, signal);
    const snapshot: TrafficSnapshot = watcher.snapshot();
    process.stdout.write(`${snapshot.time}\n${renderRows(columns, sortRows(snapshot.rows, sortColumn, false), sortColumn).join("\n")}\n\n`);
    if (signal.aborted) return;
  }
}

async function screenLoop(watcher: TrafficWatcher, interval: number, abort: AbortController, description: string): Promise<void> {
  const columns = topColumns(watcher.by, watcher.perInterface);
  let sortColumn = columns.find((column) => column.title === "TOTAL")!;
  let reverse = false;
  let last: TrafficSnapshot | undefined;
  const redraw = () => {
    if (last) screen.draw(renderScreen(last, columns, sortColumn, reverse, screen.size, description));
  };
  const screen = new TerminalScreen(process.stdin, process.stdout, (key) => {
    if (key === "q" || key === "Q" || key === "\x03" || key === "\x1b") return abort.abort();
    if (key === "r") reverse = !reverse;
    const chosen = columns.find((column) => column.key === key);
    if (chosen) {
      sortColumn = chosen;
      reverse = false;
    }
    redraw();
  });
  const onResize = () => redraw();
  screen.start();
  process.stdout.on("resize", onResize);
  try {
    last = watcher.snapshot();
    redraw();
    while (!abort.signal.aborted) {
      await nextTick(interval, abort.signal);
      if (abort.signal.aborted) break;
      last = watcher.snapshot();
      redraw();
    }
  } finally {
    process.stdout.removeListener("resize", onResize);
    screen.restore();
  }
}
