/**
 * Known transfers for the monitoring tests: a server (TCP and UDP on free
 * ports) that reports what it received, and a client that sends given byte
 * counts over separate TCP connections plus a UDP flow. Both run as their own
 * Node processes (so their pids can be checked) and talk in JSON lines.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { randomServicePort } from "./service-port.js";

export interface ServerReady {
  pid: number;
  tcpPort: number;
  udpPort: number;
}

export interface ServerReport {
  connections: { remotePort: number; bytes: number }[];
  udpBytes: number;
  udpDatagrams: number;
}

export interface ClientReport {
  pid: number;
  tcpLocalPorts: number[];
  udpLocalPort: number;
}

/**
 * Listens on host (ports chosen by the kernel); reports after `connections`
 * TCP connections closed and `udpDatagrams` datagrams arrived (or 30 s), and
 * keeps its sockets until killed.
 */
export function serverScript(host: string, connections: number, udpDatagrams: number): string {
  return `
import net from "node:net";
import dgram from "node:dgram";
const report = { connections: [], udpBytes: 0, udpDatagrams: 0 };
const udp = dgram.createSocket(${JSON.stringify(host.includes(":") ? "udp6" : "udp4")});
const server = net.createServer((socket) => {
  let bytes = 0;
  const remotePort = socket.remotePort;
  socket.on("data", (chunk) => { bytes += chunk.length; });
  socket.on("end", () => socket.end());
  socket.on("close", () => { report.connections.push({ remotePort, bytes }); check(); });
});
udp.on("message", (message) => { report.udpBytes += message.length; report.udpDatagrams++; check(); });
function check() {
  if (report.connections.length >= ${connections} && report.udpDatagrams >= ${udpDatagrams}) finish();
}
let reported = false;
function finish() {
  if (reported) return;
  reported = true;
  process.stdout.write(JSON.stringify(report) + "\\n");
}
setTimeout(finish, 30000);
setTimeout(() => process.exit(0), 120000);
await new Promise((resolve) => server.listen(0, ${JSON.stringify(host)}, resolve));
await new Promise((resolve) => udp.bind(0, ${JSON.stringify(host)}, resolve));
process.stdout.write(JSON.stringify({ pid: process.pid, tcpPort: server.address().port, udpPort: udp.address().port }) + "\\n");
`;
}

/** Sends `sizes` bytes over one TCP connection each (one after another), then `udpDatagrams` datagrams of `udpSize` bytes. */
export function clientScript(host: string, tcpPort: number, udpPort: number, sizes: number[], udpDatagrams: number, udpSize: number): string {
  return `
import net from "node:net";
import dgram from "node:dgram";
const tcpLocalPorts = [];
for (const size of ${JSON.stringify(sizes)}) {
  await new Promise((resolve, reject) => {
    const socket = net.connect(${tcpPort}, ${JSON.stringify(host)}, () => {
      tcpLocalPorts.push(socket.localPort);
      socket.end(Buffer.alloc(size, 0x61));
    });
    socket.on("data", () => {});
    socket.on("error", reject);
    socket.on("close", resolve);
  });
}
const udp = dgram.createSocket(${JSON.stringify(host.includes(":") ? "udp6" : "udp4")});
await new Promise((resolve) => udp.bind(0, resolve));
for (let i = 0; i < ${udpDatagrams}; i++) {
  await new Promise((resolve, reject) => udp.send(Buffer.alloc(${udpSize}, 0x62), ${udpPort}, ${JSON.stringify(host)}, (e) => e ? reject(e) : resolve()));
  if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 2));
}
const udpLocalPort = udp.address().port;
udp.close();
process.stdout.write(JSON.stringify({ pid: process.pid, tcpLocalPorts, udpLocalPort }) + "\\n");
`;
}

/** A child process with its stdout as JSON lines. */
export class ScriptProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  readonly #waiters: ((line: string | undefined) => void)[] = [];
  #ended = false;
  stderr = "";

  constructor(command: string[]) {
    this.child = spawn(command[0]!, command.slice(1));
    this.child.stderr.on("data", (chunk: Buffer) => void (this.stderr += chunk.toString()));
    const lines = createInterface({ input: this.child.stdout });
    lines.on("line", (line) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(line);
      else this.#lines.push(line);
    });
    lines.on("close", () => {
      this.#ended = true;
      for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    });
  }

  /** Node script in this network namespace (or, with a prefix, `ip netns exec NS`). */
  static node(script: string, prefix: string[] = []): ScriptProcess {
    return new ScriptProcess([...prefix, process.execPath, "--input-type=module", "-e", script]);
  }

  /** The next stdout line, or undefined when stdout ended or `timeout` ms passed. */
  nextLine(timeout = 30_000): Promise<string | undefined> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const index = this.#waiters.indexOf(done);
        if (index >= 0) this.#waiters.splice(index, 1);
        resolve(undefined);
      }, timeout);
      const done = (value: string | undefined) => {
        clearTimeout(timer);
        resolve(value);
      };
      this.#waiters.push(done);
    });
  }

  async nextJson<T>(timeout = 30_000): Promise<T> {
    const line = await this.nextLine(timeout);
    if (line === undefined) throw new Error(`no output (stderr: ${this.stderr.trim()})`);
    return JSON.parse(line) as T;
  }

  /** Every remaining stdout line once the process has ended. */
  async rest(timeout = 30_000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.nextLine(timeout);
      if (line === undefined) return lines;
      lines.push(line);
    }
  }

  exited(timeout = 30_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve(this.child.exitCode);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), timeout);
      this.child.once("exit", (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

/**
 * tcpdump, the reference: payload bytes per flow ("srcport>dstport") as it prints them (`length N`).
 * Stopping it is a barrier, not a pause: a sentinel datagram goes out after the traffic (to a port
 * of its own, through the captured interface) and tcpdump is stopped once it has printed that, so a
 * tcpdump that a busy machine has not run for a while still reports every packet before it.
 * Headers are all it needs (lengths come from them): a 256-byte snap length lets its 16 MB ring hold
 * tens of thousands of packets while it is not running (with the full 256 KB snap length it held 128).
 */
export class TcpdumpReference {
  readonly process: ScriptProcess;
  readonly #sentinel: { host: string; port: number; prefix: string[] };

  private constructor(process: ScriptProcess, sentinel: { host: string; port: number; prefix: string[] }) {
    this.process = process;
    this.#sentinel = sentinel;
  }

  /** `sentinelHost`: an address reached through `interfaceName` from the namespace of `prefix`. */
  static async start(interfaceName: string, filter: string, prefix: string[] = [], sentinelHost = "127.0.0.1"): Promise<TcpdumpReference> {
    const sentinel = { host: sentinelHost, port: randomServicePort(), prefix };
    const command = [...prefix, "tcpdump", "-i", interfaceName, "-nn", "-v", "-l", "--immediate-mode", "-B", "16384", "-s", "256", `(${filter}) or (udp dst port ${sentinel.port})`];
    const reference = new TcpdumpReference(new ScriptProcess(command), sentinel);
    const start = Date.now();
    while (!reference.process.stderr.includes("listening on")) {
      if (Date.now() - start > 20_000 || reference.process.child.exitCode !== null) throw new Error(`tcpdump did not start: ${reference.process.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return reference;
  }

  /** Sends the sentinel (again every second, in case the ring had no room for it) and returns every line tcpdump printed before it, then stops tcpdump. */
  async #linesUntilSentinel(): Promise<string[]> {
    const { host, port, prefix } = this.#sentinel;
    const script = `const s = require("node:dgram").createSocket(${JSON.stringify(host.includes(":") ? "udp6" : "udp4")}); s.send("sentinel", ${port}, ${JSON.stringify(host)}, () => s.close());`;
    const send = () => spawn(prefix[0] ?? process.execPath, [...prefix.slice(1), ...(prefix.length ? [process.execPath] : []), "-e", script], { stdio: "ignore" });
    const sentinelLine = new RegExp(`\\.\\d+ > \\S+\\.${port}: UDP`);
    const lines: string[] = [];
    const deadline = Date.now() + 30_000;
    let sentAt = 0;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`tcpdump did not print the sentinel within 30 s: ${this.process.stderr}`);
      if (Date.now() - sentAt >= 1000) {
        send();
        sentAt = Date.now();
      }
      const line = await this.process.nextLine(200);
      if (line === undefined) {
        if (this.process.child.exitCode !== null) throw new Error(`tcpdump ended before the sentinel: ${this.process.stderr}`);
        continue;
      }
      if (sentinelLine.test(line)) break;
      lines.push(line);
    }
    this.process.child.kill("SIGINT");
    await this.process.rest(20_000);
    await this.process.exited();
    return lines;
  }

  /** Stops tcpdump and sums the payload (`length N` of TCP/UDP) and IP bytes (the IP header's length) of each flow ("srcport>dstport"). */
  async flows(): Promise<{ payload: Map<string, number>; ipBytes: Map<string, number> }> {
    const lines = await this.#linesUntilSentinel();
    const dropped = /(\d+) packets? dropped by kernel/.exec(this.process.stderr);
    if (dropped && dropped[1] !== "0") throw new Error(`tcpdump dropped packets: ${this.process.stderr}`);
    const payload = new Map<string, number>();
    const ipBytes = new Map<string, number>();
    let ipLength = 0;
    for (const line of lines) {
      // -v: "IP (tos …, proto TCP (6), length 1052)" then "    a.b.c.d.PORT > e.f.g.h.PORT: …, length 1000"
      const header = /^\S+ IP6? \(.*length (\d+)\)$/.exec(line);
      if (header) {
        ipLength = Number(header[1]);
        continue;
      }
      const match = /^\s+\S+?\.(\d+) > \S+?\.(\d+): .*length (\d+)/.exec(line);
      if (!match) continue;
      const key = `${match[1]}>${match[2]}`;
      payload.set(key, (payload.get(key) ?? 0) + Number(match[3]));
      ipBytes.set(key, (ipBytes.get(key) ?? 0) + ipLength);
      ipLength = 0;
    }
    return { payload, ipBytes };
  }

  async payloadByFlow(): Promise<Map<string, number>> {
    return (await this.flows()).payload;
  }
}
