/**
 * Known transfers for the monitoring tests: a server (TCP and UDP on free
 * ports) that reports what it received, and a client that sends given byte
 * counts over separate TCP connections plus a UDP flow. Both run as their own
 * Node processes (so their pids can be checked) and talk in JSON lines.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";

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

/** tcpdump, the reference: payload bytes per flow ("srcport>dstport") as it prints them (`length N`). */
export class TcpdumpReference {
  readonly process: ScriptProcess;

  private constructor(process: ScriptProcess) {
    this.process = process;
  }

  static async start(interfaceName: string, filter: string, prefix: string[] = []): Promise<TcpdumpReference> {
    const reference = new TcpdumpReference(new ScriptProcess([...prefix, "tcpdump", "-i", interfaceName, "-nn", "-v", "-l", "--immediate-mode", "-B", "16384", filter]));
    const start = Date.now();
    while (!reference.process.stderr.includes("listening on")) {
      if (Date.now() - start > 20_000 || reference.process.child.exitCode !== null) throw new Error(`tcpdump did not start: ${reference.process.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return reference;
  }

  /** Stops tcpdump and sums the payload (`length N` of TCP/UDP) and IP bytes (the IP header's length) of each flow ("srcport>dstport"). */
  async flows(): Promise<{ payload: Map<string, number>; ipBytes: Map<string, number> }> {
    // Let it print what is still in its buffer: SIGINT ends the loop without reading the rest.
    await new Promise((resolve) => setTimeout(resolve, 500));
    this.process.child.kill("SIGINT");
    const lines = await this.process.rest(20_000);
    await this.process.exited();
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
