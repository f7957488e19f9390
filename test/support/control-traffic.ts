/**
 * Traffic for firewall / limit / mark tests on a RoutedTestbed: a server
 * that counts UDP datagrams per port and accepts TCP, and client helpers.
 * Scripts run as `node -e` inside a namespace (nsenter).
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import type { RoutedHost, RoutedTestbed } from "./routed-testbed.js";

/**
 * Server script: listens on the given UDP and TCP ports (IPv4 and IPv6),
 * prints "ready", and on each stdin line prints the UDP datagram counts per
 * port (and per source address with "sources") as JSON.
 */
export function counterServerScript(udpPorts: number[], tcpPorts: number[]): string {
  return `
import dgram from "node:dgram";
import net from "node:net";
import readline from "node:readline";
const counts = {}; const sources = {};
const pending = [];
for (const port of ${JSON.stringify(udpPorts)}) {
  counts[port] = 0;
  for (const type of ["udp4", "udp6"]) {
    const socket = dgram.createSocket({ type, recvBufferSize: 8 << 20, ipv6Only: type === "udp6" });
    socket.on("message", (message, remote) => { counts[port]++; sources[remote.address] = (sources[remote.address] ?? 0) + 1; });
    pending.push(new Promise((resolve) => socket.bind(port, resolve)));
  }
}
for (const port of ${JSON.stringify(tcpPorts)}) {
  const server = net.createServer((socket) => { socket.on("error", () => {}); socket.end("hello\\n"); });
  server.on("error", (e) => { console.error(e.message); process.exit(1); });
  pending.push(new Promise((resolve) => server.listen({ port, host: "::", backlog: 4096 }, resolve)));
}
await Promise.all(pending);
console.log("ready");
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  console.log(JSON.stringify(line.trim() === "sources" ? sources : counts));
});
process.stdin.on("end", () => process.exit(0));
`;
}

export class CounterServer {
  readonly #process: ChildProcessWithoutNullStreams;
  readonly #unread: () => number;
  #buffer = "";
  #lines: string[] = [];
  #waiters: ((line: string) => void)[] = [];

  private constructor(child: ChildProcessWithoutNullStreams, unread: () => number) {
    this.#process = child;
    this.#unread = unread;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      this.#buffer += chunk;
      let newline: number;
      while ((newline = this.#buffer.indexOf("\n")) >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        const waiter = this.#waiters.shift();
        if (waiter) waiter(line);
        else this.#lines.push(line);
      }
    });
  }

  static async start(bed: RoutedTestbed, host: RoutedHost, udpPorts: number[], tcpPorts: number[]): Promise<CounterServer> {
    const child = bed.start(host, [process.execPath, "--input-type=module", "-e", counterServerScript(udpPorts, tcpPorts)]);
    let errors = "";
    child.stderr.on("data", (chunk) => (errors += chunk));
    // Bytes waiting in the receive queues of the server's UDP sockets (ss's Recv-Q).
    const unread = () => bed.exec(host, ["ss", "-u", "-a", "-n", "-H"]).stdout.split("\n").reduce((total, line) => {
      const [, queued, , local] = line.trim().split(/\s+/);
      return udpPorts.includes(Number(local?.slice(local.lastIndexOf(":") + 1))) ? total + Number(queued) : total;
    }, 0);
    const server = new CounterServer(child, unread);
    const ready = await Promise.race([server.line(), once(child, "exit").then(() => `exited: ${errors}`)]);
    if (ready !== "ready") throw new Error(`counter server did not start: ${ready}`);
    return server;
  }

  private line(): Promise<string> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Waits until the server has read every datagram already queued to it: a
   * busy machine may not have run it since they came, and a server woken by
   * both a burst and our question answers before it has read the whole burst.
   */
  async #drained(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#unread() > 0) {
      if (Date.now() > deadline) throw new Error(`the counter server left datagrams unread for ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Datagrams received per port, counting everything queued to the server when asked. */
  async counts(): Promise<Record<string, number>> {
    await this.#drained();
    this.#process.stdin.write("counts\n");
    return JSON.parse(await this.line()) as Record<string, number>;
  }

  /** Datagrams received per source address, counting everything queued to the server when asked. */
  async sources(): Promise<Record<string, number>> {
    await this.#drained();
    this.#process.stdin.write("sources\n");
    return JSON.parse(await this.line()) as Record<string, number>;
  }

  async stop(): Promise<void> {
    if (this.#process.exitCode !== null || this.#process.signalCode !== null) return;
    const exited = once(this.#process, "exit");
    this.#process.stdin.end();
    const timer = setTimeout(() => this.#process.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Client script: sends `count` UDP datagrams to each host:port target in turn, paced in bursts; prints the number sent per target. */
export function udpSenderScript(targets: { host: string; port: number }[], count: number, options: { burst?: number; pauseMs?: number; size?: number } = {}): string {
  return `
import dgram from "node:dgram";
const targets = ${JSON.stringify(targets)};
const sockets = { udp4: dgram.createSocket("udp4"), udp6: dgram.createSocket("udp6") };
const payload = Buffer.alloc(${options.size ?? 64});
const sent = targets.map(() => 0);
for (let i = 0; i < ${count}; i++) {
  for (let t = 0; t < targets.length; t++) {
    const target = targets[t];
    const socket = target.host.includes(":") ? sockets.udp6 : sockets.udp4;
    await new Promise((resolve, reject) => socket.send(payload, target.port, target.host, (e) => (e ? reject(e) : resolve())));
    sent[t]++;
  }
  if ((i + 1) % ${options.burst ?? 50} === 0) await new Promise((resolve) => setTimeout(resolve, ${options.pauseMs ?? 2}));
}
sockets.udp4.close(); sockets.udp6.close();
console.log(JSON.stringify(sent));
`;
}

/** Client script: tries a TCP connection and reads the greeting; prints "ok" or the error code. */
export function tcpConnectScript(host: string, port: number, timeoutMs = 1500): string {
  return `
import net from "node:net";
const socket = net.connect({ host: ${JSON.stringify(host)}, port: ${port} });
const timer = setTimeout(() => { console.log("timeout"); process.exit(0); }, ${timeoutMs});
socket.on("data", (data) => { if (String(data).startsWith("hello")) { console.log("ok"); clearTimeout(timer); socket.destroy(); } });
socket.on("error", (e) => { console.log(e.code); clearTimeout(timer); });
`;
}

export function tcpConnects(bed: RoutedTestbed, host: string, port: number): string {
  return bed.tryExec(bed.client, [process.execPath, "--input-type=module", "-e", tcpConnectScript(host, port)]).stdout.trim();
}

/** True when one ping gets an answer within a second. */
export function pings(bed: RoutedTestbed, host: string): boolean {
  return bed.tryExec(bed.client, ["ping", "-n", "-q", "-c", "1", "-W", "1", host]).status === 0;
}

/**
 * Client script: sends UDP from `bind` (an address of the client) to
 * host:port at about `pps` for `seconds`; prints { sent, elapsedMs (first to
 * last datagram), times (ms after the first, one per datagram, taken just
 * before its send: a datagram crosses the veth pair inside that call) }.
 * After a timer delay it catches up with a burst of the datagrams it owes,
 * unless `catchUp` is false: then it sends at most one per 5 ms tick.
 */
export function pacedUdpScript(options: { bind: string; host: string; port: number; pps: number; seconds: number; size?: number; catchUp?: boolean }): string {
  return `
import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
await new Promise((resolve) => socket.bind({ address: ${JSON.stringify(options.bind)}, port: 0 }, resolve));
const payload = Buffer.alloc(${options.size ?? 64});
let sent = 0; let first = 0; let last = 0;
const times = [];
const start = performance.now();
while (performance.now() - start < ${options.seconds * 1000}) {
  const due = Math.floor((performance.now() - start) / 1000 * ${options.pps});
  const owed = ${options.catchUp === false ? "Math.min(due, sent + 1)" : "due"};
  while (sent < owed) {
    const now = performance.now();
    if (sent === 0) first = now;
    last = now;
    times.push(Math.round((now - first) * 1000) / 1000);
    await new Promise((resolve, reject) => socket.send(payload, ${options.port}, ${JSON.stringify(options.host)}, (e) => (e ? reject(e) : resolve())));
    sent++;
  }
  await new Promise((resolve) => setTimeout(resolve, 5));
}
socket.close();
console.log(JSON.stringify({ sent, elapsedMs: last - first, times }));
`;
}
