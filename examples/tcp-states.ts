/**
 * Follows TCP connections through their life with the library's watchTcp():
 * every state change, as it happens (tcpstates-style).
 *
 *   node dist/examples/tcp-states.js [--port N] [--count N] [--json]
 *
 * Stop with Ctrl-C, or after --count events.
 */
import { NetbpfError, UsageError, watchTcp } from "../src/index.js";

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
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  // Output piped into `head` that has had enough (EPIPE): stop like Ctrl-C.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    stop.abort();
  });
  process.once("SIGTERM", () => stop.abort());
  const watcher = watchTcp({ types: ["state"], signal: stop.signal });
  process.stderr.write(`following TCP state changes${port ? ` on port ${port}` : ""}; Ctrl-C to stop\n`);
  let printed = 0;
  for await (const event of watcher) {
    if (port !== undefined && event.localPort !== port && event.remotePort !== port) continue;
    if (json) {
      process.stdout.write(JSON.stringify({ timestamp: event.timestamp.toString(), family: event.family, oldState: event.oldState, newState: event.state, source: event.localAddress, sourcePort: event.localPort, destination: event.remoteAddress, destinationPort: event.remotePort, pid: event.pid }) + "\n");
    } else {
      const from = event.family === "ipv6" ? `[${event.localAddress}]:${event.localPort}` : `${event.localAddress}:${event.localPort}`;
      const to = event.family === "ipv6" ? `[${event.remoteAddress}]:${event.remotePort}` : `${event.remoteAddress}:${event.remotePort}`;
      process.stdout.write(`${(Number(event.timestamp) / 1e9).toFixed(6)} ${from} -> ${to}  ${event.oldState} -> ${event.state}\n`);
    }
    if (++printed >= count) break;
  }
  if (!json) process.stderr.write(`${printed} events shown\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`tcp-states: ${error instanceof NetbpfError ? error.message : String(error)}\n`);
  process.exit(1);
});
