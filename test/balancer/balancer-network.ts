/**
 * A private network for balancer tests: a client namespace and N backend
 * namespaces, each joined by a veth pair to a balancer namespace in the
 * middle. IPv4 and IPv6 (documentation and benchmark ranges, only ever used
 * inside these namespaces). Checksum offload is off on the hosts' ends, so
 * every packet carries a real checksum that the receiver verifies.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { inNetworkNamespace } from "../../src/sys/network-namespace.js";

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 30_000 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

export interface Host {
  namespace: string;
  /** The host's end of its veth pair. */
  interface: string;
  /** The balancer's end. */
  peer: string;
  ipv4: string;
  ipv6: string;
}

export const vip4 = "203.0.113.10";
export const vip6 = "2001:db8:f::10";

export class BalancerNetwork {
  readonly tag = randomBytes(3).toString("hex");
  readonly balancer: string;
  readonly client: Host;
  readonly backends: Host[] = [];
  readonly #children = new Set<ChildProcessWithoutNullStreams>();
  #namespaces: string[] = [];

  private constructor(backendCount: number) {
    this.balancer = `nb-lb${this.tag}-x`;
    this.client = this.#host("c", "192.0.2.1", "2001:db8:c::1");
    for (let i = 0; i < backendCount; i++) this.backends.push(this.#host(`b${i}`, `198.18.${i}.2`, `2001:db8:${i}::2`));
  }

  #host(role: string, ipv4: string, ipv6: string): Host {
    return { namespace: `nb-lb${this.tag}-${role}`, interface: `nblb${this.tag}${role}`, peer: `nblb${this.tag}${role}p`, ipv4, ipv6 };
  }

  static create(backendCount = 3): BalancerNetwork {
    const net = new BalancerNetwork(backendCount);
    try {
      net.#build();
    } catch (error) {
      net.destroy();
      throw error;
    }
    return net;
  }

  #build(): void {
    const ns = (namespace: string, ...args: string[]) => run("ip", ["-n", namespace, ...args]);
    const sysctl = (namespace: string, setting: string) => run("ip", ["netns", "exec", namespace, "sysctl", "-q", "-w", setting]);
    for (const namespace of [this.balancer, this.client.namespace, ...this.backends.map((b) => b.namespace)]) {
      run("ip", ["netns", "add", namespace]);
      this.#namespaces.push(namespace);
      ns(namespace, "link", "set", "lo", "up");
    }
    const gateway4 = (host: Host) => host.ipv4.replace(/\.\d+$/, ".254");
    const gateway6 = (host: Host) => host.ipv6.replace(/::\d+$/, "::fe");
    for (const host of [this.client, ...this.backends]) {
      run("ip", ["link", "add", host.interface, "netns", host.namespace, "type", "veth", "peer", "name", host.peer, "netns", this.balancer]);
      sysctl(host.namespace, `net.ipv6.conf.${host.interface}.accept_dad=0`);
      sysctl(this.balancer, `net.ipv6.conf.${host.peer}.accept_dad=0`);
      ns(host.namespace, "addr", "add", `${host.ipv4}/24`, "dev", host.interface);
      ns(host.namespace, "addr", "add", `${host.ipv6}/64`, "dev", host.interface, "nodad");
      ns(this.balancer, "addr", "add", `${gateway4(host)}/24`, "dev", host.peer);
      ns(this.balancer, "addr", "add", `${gateway6(host)}/64`, "dev", host.peer, "nodad");
      ns(host.namespace, "link", "set", host.interface, "up");
      ns(this.balancer, "link", "set", host.peer, "up");
      // Real checksums on the wire, so receivers verify what the balancer rewrote.
      run("ip", ["netns", "exec", host.namespace, "ethtool", "-K", host.interface, "tx", "off"]);
      run("ip", ["netns", "exec", this.balancer, "ethtool", "-K", host.peer, "tx", "off"]);
    }
    // The client reaches the VIPs through the balancer; backends need no route beyond their own network.
    ns(this.client.namespace, "route", "add", "203.0.113.0/24", "via", gateway4(this.client));
    ns(this.client.namespace, "-6", "route", "add", "2001:db8:f::/64", "via", gateway6(this.client));
  }

  /** Runs `action` on this thread inside the balancer namespace. */
  inBalancer<T>(action: () => T): T {
    return inNetworkNamespace(this.balancer, action);
  }

  exec(namespace: string, command: string[], timeout = 60_000): string {
    const result = spawnSync("ip", ["netns", "exec", namespace, ...command], { encoding: "utf8", timeout });
    if (result.error) throw result.error;
    if (result.status !== 0) throw new Error(`${command.join(" ")} in ${namespace} failed (${result.status}): ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** Runs a Node script (ES module) in a namespace and returns its standard output. */
  node(namespace: string, script: string, timeout = 60_000): string {
    return this.exec(namespace, [process.execPath, "--input-type=module", "-e", script], timeout);
  }

  /**
   * Starts a long-running process in a namespace; stopped by destroy() unless
   * stopped before. "nsenter" enters the network namespace only: `ip netns
   * exec` also gives the process a fresh /sys, without this host's bpffs and
   * so without netbpf's pinned state.
   */
  start(namespace: string, command: string[], mode: "netns" | "nsenter" = "netns"): ChildProcessWithoutNullStreams {
    const prefix = mode === "netns" ? ["ip", "netns", "exec", namespace] : ["nsenter", `--net=/run/netns/${namespace}`];
    const child = spawn(prefix[0]!, [...prefix.slice(1), ...command]);
    this.#children.add(child);
    child.on("exit", () => this.#children.delete(child));
    return child;
  }

  /** Counters the kernel keeps for packets dropped for a bad checksum, summed over the backends and the client. */
  checksumErrors(): number {
    let total = 0;
    for (const host of [this.client, ...this.backends]) {
      const out = this.exec(host.namespace, ["nstat", "-az", "TcpInCsumErrors", "UdpInCsumErrors", "Udp6InCsumErrors"]);
      for (const line of out.split("\n")) {
        const match = /^\S+InCsumErrors\s+(\d+)/.exec(line);
        if (match) total += Number(match[1]);
      }
    }
    return total;
  }

  destroy(): void {
    for (const child of this.#children) child.kill("SIGKILL");
    for (const namespace of this.#namespaces.reverse()) spawnSync("ip", ["netns", "delete", namespace]);
    this.#namespaces = [];
  }
}

/** A TCP and UDP server that answers every connection / datagram with its name; `GET n` asks for n bytes. */
export function serverScript(name: string, port: number): string {
  return `
import net from "node:net"; import dgram from "node:dgram";
const name = ${JSON.stringify(name)};
net.createServer((socket) => {
  socket.on("error", () => {});
  let buffered = "";
  socket.on("data", (chunk) => {
    buffered += chunk;
    const match = /^GET (\\d+)\\n/.exec(buffered);
    if (!match) return;
    buffered = "";
    const total = Number(match[1]);
    let sent = 0;
    const block = Buffer.alloc(65536, 120);
    const pump = () => {
      while (sent < total) {
        const piece = block.subarray(0, Math.min(block.length, total - sent));
        sent += piece.length;
        if (!socket.write(piece)) return socket.once("drain", pump);
      }
      socket.end();
    };
    pump();
  });
  socket.write(name + "\\n");
}).listen(${port}, "::", () => process.stdout.write("ready\\n"));
for (const type of ["udp4", "udp6"]) {
  const udp = dgram.createSocket({ type, ipv6Only: type === "udp6" });
  udp.on("message", (message, from) => udp.send(name, from.port, from.address));
  udp.bind(${port}, type === "udp4" ? "0.0.0.0" : "::");
}
`;
}

/** A client script: `count` TCP connections (50 at a time) to host:port; prints {name: connections}. */
export function connectionsScript(host: string, port: number, count: number): string {
  return `
import net from "node:net";
const counts = {}; let failed = 0; let started = 0; let finished = 0;
await new Promise((resolve) => {
  const next = () => {
    if (started === ${count}) { if (finished === ${count}) resolve(); return; }
    started++;
    const socket = net.connect(${port}, ${JSON.stringify(host)});
    let text = "";
    const done = (name) => { if (name) counts[name] = (counts[name] ?? 0) + 1; else failed++; finished++; socket.destroy(); next(); };
    socket.setTimeout(5000, () => done());
    socket.on("error", () => done());
    socket.on("data", (chunk) => { text += chunk; const line = text.indexOf("\\n"); if (line >= 0) done(text.slice(0, line)); });
  };
  for (let i = 0; i < 50; i++) next();
});
process.stdout.write(JSON.stringify({ counts, failed }));
`;
}

/**
 * A client script that opens `count` connections asking for `bytes` each and
 * reads them at about `rate` bytes/s per connection; prints "connected" lines
 * as {index, name} once all are connected, waits for "go" on stdin … simply runs
 * to completion and prints [{name, received}].
 */
export function transfersScript(host: string, port: number, count: number, bytes: number, rate: number): string {
  return `
import net from "node:net";
const results = [];
await Promise.all(Array.from({ length: ${count} }, (_, index) => new Promise((resolve) => {
  const socket = net.connect(${port}, ${JSON.stringify(host)});
  let name; let received = 0; let head = "";
  const started = Date.now();
  socket.on("connect", () => socket.write("GET ${bytes}\\n"));
  socket.on("data", (chunk) => {
    if (name === undefined) {
      head += chunk.toString("latin1");
      const line = head.indexOf("\\n");
      if (line < 0) return;
      name = head.slice(0, line);
      process.stdout.write(JSON.stringify({ index, name }) + "\\n");
      received += head.length - line - 1;
    } else received += chunk.length;
    const ahead = received / ${rate} * 1000 - (Date.now() - started);
    if (ahead > 5) { socket.pause(); setTimeout(() => socket.resume(), ahead); }
  });
  const finish = (error) => { results[index] = { name, received, error: error?.code }; resolve(); };
  socket.on("end", () => finish()); socket.on("error", finish);
})));
process.stdout.write(JSON.stringify({ results }) + "\\n");
`;
}

/** A client script: one UDP datagram from each of `count` sockets to host:port; prints {name: replies}. */
export function udpScript(host: string, port: number, count: number): string {
  return `
import dgram from "node:dgram";
const counts = {}; let lost = 0;
await Promise.all(Array.from({ length: ${count} }, () => new Promise((resolve) => {
  const socket = dgram.createSocket(${JSON.stringify(host.includes(":") ? "udp6" : "udp4")});
  const timer = setTimeout(() => { lost++; socket.close(); resolve(); }, 3000);
  socket.on("message", (message, from) => {
    clearTimeout(timer);
    const key = message.toString() + "@" + from.address + ":" + from.port;
    counts[key] = (counts[key] ?? 0) + 1; socket.close(); resolve();
  });
  socket.send("hello", ${port}, ${JSON.stringify(host)});
})));
process.stdout.write(JSON.stringify({ counts, lost }));
`;
}
