/**
 * Follows TCP connections through their life: a program on the stable
 * tracepoint sock:inet_sock_set_state sends every state change to a ring
 * buffer; this process prints them as they arrive.
 *
 *   node dist/examples/tcp-states.js [--port N] [--count N] [--json]
 *
 * Stop with Ctrl-C, or after --count events.
 */
import { BpfMap, MapType, NetbpfError, Program, ProgramType, u32, u64, UsageError } from "../src/index.js";
import { attachTracepoint } from "../src/link/tracepoint.js";
import { RingBufferReader } from "../src/ringbuf/ring-buffer-reader.js";
import { decodeTcpStateEvent, tcpStateLayout, tcpStateLostName, tcpStateProgram, tcpStateRingName } from "../src/programs/tcp-state-events.js";

function parseArguments(argv: string[]) {
  let port: number | undefined;
  let count = Infinity;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--port") port = Number(argv[++i]);
    else if (arg === "--count") count = Number(argv[++i]);
    else if (arg === "--json") json = true;
    else throw new UsageError("tcp-states", `unknown argument "${arg}"`, "usage: tcp-states [--port N] [--count N] [--json]");
  }
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new UsageError("tcp-states", "--port needs a port number 1-65535");
  if (!(count > 0)) throw new UsageError("tcp-states", "--count needs a positive number");
  return { port, count, json };
}

async function main(): Promise<void> {
  const { port, count, json } = parseArguments(process.argv.slice(2));
  const layout = tcpStateLayout();
  using ring = BpfMap.create({ type: MapType.Ringbuf, maxEntries: 1 << 20, name: tcpStateRingName });
  using lost = BpfMap.create({ type: MapType.Array, key: u32, value: u64, maxEntries: 1, name: tcpStateLostName });
  using program = Program.load({ type: ProgramType.Tracepoint, instructions: tcpStateProgram(layout), name: "tcp_states" }, { maps: { [tcpStateRingName]: ring, [tcpStateLostName]: lost } });
  using link = attachTracepoint(program, "sock", "inet_sock_set_state");
  using reader = new RingBufferReader(ring, { lostCounter: { map: lost, key: 0 } });
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  if (!json) process.stderr.write(`following TCP state changes${port ? ` on port ${port}` : ""}; Ctrl-C to stop\n`);
  let printed = 0;
  for await (const record of reader.records({ signal: stop.signal })) {
    const event = decodeTcpStateEvent(layout, record);
    if (port !== undefined && event.sourcePort !== port && event.destinationPort !== port) continue;
    if (json) {
      process.stdout.write(JSON.stringify({ ...event, timestamp: event.timestamp.toString() }) + "\n");
    } else {
      const from = event.family === "ipv6" ? `[${event.source}]:${event.sourcePort}` : `${event.source}:${event.sourcePort}`;
      const to = event.family === "ipv6" ? `[${event.destination}]:${event.destinationPort}` : `${event.destination}:${event.destinationPort}`;
      process.stdout.write(`${(Number(event.timestamp) / 1e9).toFixed(6)} ${from} -> ${to}  ${event.oldState} -> ${event.newState}\n`);
    }
    if (++printed >= count) break;
  }
  void link;
  if (!json) process.stderr.write(`${printed} events shown, ${reader.lost ?? 0} lost (ring full)\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`tcp-states: ${error instanceof NetbpfError ? error.message : String(error)}\n`);
  process.exit(1);
});
