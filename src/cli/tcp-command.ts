/**
 * `netbpf tcp`: the life of every TCP connection (a thin shell over
 * watchTcp()). Default: one line per closed connection (tcplife); --events:
 * every state change, accept, retransmission and reset (tcpstates); --json:
 * one object per event with the field names of TcpEvent.
 */
import { CommanderError, type Command } from "commander";
import { watchTcp, type TcpEvent, type TcpEventType, type WatchTcpOptions } from "../monitor/tcp-watcher.js";
import { NetbpfError, SyscallError, UnsupportedFeatureError, UsageError } from "../sys/errors.js";
import { toJson, writeLine } from "./output.js";

interface TcpCommandOptions {
  pid?: string;
  localPort?: string[];
  remotePort?: string[];
  state?: string[];
  events?: boolean;
  json?: boolean;
  count?: string;
  duration?: string;
}

const operation = "tcp";
const repeatable = (value: string, previous: string[] = []) => [...previous, value];

function parsePort(text: string, flag: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new UsageError(operation, `${flag} needs a port number 1-65535, got "${text}"`);
  return port;
}

function parsePositive(text: string | undefined, flag: string, integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!(value > 0 && Number.isFinite(value)) || (integer && !Number.isInteger(value)) || text.trim() === "") {
    throw new UsageError(operation, `${flag} needs a positive ${integer ? "whole " : ""}number, got "${text}"`);
  }
  return value;
}

/** The watchTcp() options a command line asks for. */
export function tcpWatchOptions(options: TcpCommandOptions): WatchTcpOptions & { types: TcpEventType[] } {
  const events = options.events === true || options.state !== undefined;
  const watch: WatchTcpOptions & { types: TcpEventType[] } = { types: events ? ["state", "accept", "retransmit", "reset"] : ["close"] };
  if (options.pid !== undefined) {
    if (!/^\d+$/.test(options.pid) || Number(options.pid) < 1) throw new UsageError(operation, `-p needs a process id, got "${options.pid}"`);
    watch.pid = Number(options.pid);
  }
  if (options.localPort) watch.localPorts = options.localPort.map((port) => parsePort(port, "-L"));
  if (options.remotePort) watch.remotePorts = options.remotePort.map((port) => parsePort(port, "-D"));
  if (options.state) watch.states = options.state.flatMap((state) => state.split(","));
  return watch;
}

const lifeColumns: [string, number][] = [["PID", 7], ["COMM", 15], ["LADDR", 15], ["LPORT", 5], ["RADDR", 15], ["RPORT", 5], ["TX_KB", 8], ["RX_KB", 8], ["MS", 10], ["RTT_MS", 7], ["RETR", 4]];
const eventColumns: [string, number][] = [["TIME", 12], ["EVENT", 10], ["PID", 7], ["COMM", 15], ["LADDR", 15], ["LPORT", 5], ["RADDR", 15], ["RPORT", 5], ["STATE", 26], ["MS", 10]];

function row(columns: [string, number][], cells: (string | number)[]): string {
  return cells.map((cell, index) => {
    const text = String(cell);
    const width = columns[index]![1];
    return index === cells.length - 1 ? text : /^[-\d.]+$/.test(text) && index > 1 ? text.padStart(width) : text.padEnd(width);
  }).join(" ").trimEnd();
}

const fixed = (value: number | null, digits: number) => (value === null ? "-" : value.toFixed(digits));

function lifeRow(event: TcpEvent): string {
  return row(lifeColumns, [
    event.pid ?? "-", event.command ?? "-", event.localAddress, event.localPort, event.remoteAddress, event.remotePort,
    event.bytesSent === null ? "-" : Math.round(event.bytesSent / 1024), event.bytesReceived === null ? "-" : Math.round(event.bytesReceived / 1024),
    fixed(event.durationMilliseconds, 2), fixed(event.smoothedRttMilliseconds, 3), event.retransmits,
  ]);
}

function clock(time: Date): string {
  return `${time.toTimeString().slice(0, 8)}.${String(time.getMilliseconds()).padStart(3, "0")}`;
}

function eventRow(event: TcpEvent): string {
  const state = event.type === "state" ? `${event.oldState} -> ${event.state}` : event.state;
  const type = event.type === "reset" ? `reset-${event.resetDirection === "sent" ? "out" : "in"}` : event.type;
  return row(eventColumns, [
    clock(event.time), type, event.pid ?? "-", event.command ?? "-", event.localAddress, event.localPort, event.remoteAddress, event.remotePort,
    state, fixed(event.durationMilliseconds, 3),
  ]);
}

/** One JSON object per event: TcpEvent's fields, `time` as ISO 8601. */
export function tcpEventJson(event: TcpEvent): string {
  return toJson(event);
}

/** Bad input and a missing privilege or kernel feature exit with 2; other failures with 1. */
function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || error instanceof UnsupportedFeatureError) return 2;
  if (error instanceof SyscallError && (error.code === "EPERM" || error.code === "EACCES")) return 2;
  return 1;
}

async function runTcp(options: TcpCommandOptions): Promise<void> {
  const watchOptions = tcpWatchOptions(options);
  const count = parsePositive(options.count, "-c", true);
  const duration = parsePositive(options.duration, "--duration", false);
  const stop = new AbortController();
  const watcher = watchTcp({ ...watchOptions, signal: stop.signal });
  const abort = () => stop.abort();
  process.once("SIGINT", abort);
  process.once("SIGTERM", abort);
  const timer = duration === undefined ? undefined : setTimeout(abort, duration * 1000);
  const events = watchOptions.types.length > 1;
  let shown = 0;
  try {
    process.stderr.write(`netbpf: tracing TCP ${events ? "events" : "connections"} (${watcher.tracepoints.length} tracepoints); Ctrl-C to stop\n`);
    if (!options.json) writeLine(row(events ? eventColumns : lifeColumns, (events ? eventColumns : lifeColumns).map(([name]) => name)));
    for await (const event of watcher) {
      writeLine(options.json ? tcpEventJson(event) : events ? eventRow(event) : lifeRow(event));
      if (++shown === count) break;
    }
  } finally {
    const lost = watcher.lost;
    watcher.close();
    if (timer) clearTimeout(timer);
    process.removeListener("SIGINT", abort);
    process.removeListener("SIGTERM", abort);
    process.stderr.write(`netbpf: ${shown} ${events ? "event" : "connection"}${shown === 1 ? "" : "s"} shown${lost ? `, ${lost} lost (ring full)` : ""}\n`);
  }
}

export function registerTcpCommand(program: Command): void {
  const command = program
    .command("tcp")
    .description("follow TCP connections: one line per closed connection (tcplife), or every event with --events (tcpstates)")
    .option("-p, --pid <pid>", "only connections of this process (the one that connected, accepted or listens)")
    .option("-L, --local-port <port>", "only this local port (repeatable)", repeatable)
    .option("-D, --remote-port <port>", "only this remote port (repeatable)", repeatable)
    .option("--state <state>", "only events entering this state, e.g. ESTABLISHED or TIME_WAIT (repeatable or comma-separated; implies --events)", repeatable)
    .option("--events", "every state change, accept, retransmission and reset instead of one line per closed connection")
    .option("--json", "one JSON object per line (field names as in the library's TcpEvent)")
    .option("-c, --count <count>", "stop after this many lines")
    .option("--duration <seconds>", "stop after this many seconds")
    .addHelpText("after", `
Connections are followed from the tracepoints sock:inet_sock_set_state,
syscalls:sys_exit_accept4, tcp:tcp_retransmit_skb, tcp:tcp_send_reset and
tcp:tcp_receive_reset (and tcp:tcp_destroy_sock). PID/COMM: the process that called connect(), accept()
or listen(); "-" when the connection began before netbpf started, or was
never accepted. TX_KB/RX_KB: payload bytes acknowledged by the peer and
received (struct tcp_sock bytes_acked/bytes_received). MS: time since
SYN_SENT/SYN_RECV. RTT_MS: smoothed round-trip time. RETR: retransmitted
segments. Needs root (or CAP_BPF and CAP_PERFMON).

Examples:
  netbpf tcp                          # every connection as it closes
  netbpf tcp -L 8080 --json           # connections to local port 8080, as JSON lines
  netbpf tcp --events -D 443          # every event of connections to remote port 443
  netbpf tcp --state ESTABLISHED -p 1234`)
    .action(async (options: TcpCommandOptions) => {
      try {
        await runTcp(options);
      } catch (error) {
        process.stderr.write(`netbpf: ${error instanceof NetbpfError ? error.message : error instanceof Error ? error.message : String(error)}\n`);
        if (process.env.NETBPF_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
        process.exit(exitCodeOf(error));
      }
    });
  // Bad options are bad input: exit 2 (help and version stay 0).
  command.exitOverride((error) => {
    if (error.exitCode === 0) throw error;
    throw new CommanderError(2, error.code, error.message);
  });
}
