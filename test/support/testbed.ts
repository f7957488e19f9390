/**
 * A private network for tests: two network namespaces joined by a veth pair,
 * with unique names, torn down by destroy() (call it in a finally / t.after).
 * Traffic between them never leaves the machine's test namespaces.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams, type SpawnSyncReturns } from "node:child_process";
import { randomBytes } from "node:crypto";
import { inNetworkNamespace } from "../../src/sys/network-namespace.js";

function run(command: string, args: string[], input?: string): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { encoding: "utf8", input, timeout: 20_000 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${result.stderr.trim()}`);
  return result;
}

export interface Side {
  namespace: string;
  interface: string;
  address: string;
}

export class Testbed {
  readonly a: Side;
  readonly b: Side;
  #destroyed = false;

  private constructor(prefix: string) {
    const tag = randomBytes(3).toString("hex");
    this.a = { namespace: `nb-${prefix}-${tag}-a`, interface: `nb${prefix.slice(0, 4)}${tag}a`, address: "192.0.2.1" };
    this.b = { namespace: `nb-${prefix}-${tag}-b`, interface: `nb${prefix.slice(0, 4)}${tag}b`, address: "192.0.2.2" };
  }

  /**
   * Creates both namespaces (loopback up in each) and the veth pair between
   * them. `disableIpv6` keeps router solicitations and MLD reports out of captures.
   */
  static create(prefix = "link", options: { disableIpv6?: boolean } = {}): Testbed {
    const bed = new Testbed(prefix);
    try {
      for (const side of [bed.a, bed.b]) run("ip", ["netns", "add", side.namespace]);
      run("ip", ["link", "add", bed.a.interface, "netns", bed.a.namespace, "type", "veth", "peer", "name", bed.b.interface, "netns", bed.b.namespace]);
      for (const side of [bed.a, bed.b]) {
        if (options.disableIpv6) run("ip", ["netns", "exec", side.namespace, "sysctl", "-q", "-w", `net.ipv6.conf.${side.interface}.disable_ipv6=1`]);
        run("ip", ["-n", side.namespace, "addr", "add", `${side.address}/24`, "dev", side.interface]);
        run("ip", ["-n", side.namespace, "link", "set", side.interface, "up"]);
        run("ip", ["-n", side.namespace, "link", "set", "lo", "up"]);
      }
    } catch (error) {
      bed.destroy();
      throw error;
    }
    return bed;
  }

  /** Runs a command inside a namespace. */
  exec(side: Side, command: string[], input?: string): SpawnSyncReturns<string> {
    return run("ip", ["netns", "exec", side.namespace, ...command], input);
  }

  /**
   * Starts a command in a namespace without waiting: "netns" (ip netns exec,
   * which also gives it the namespace's /sys) or "nsenter" (network namespace only).
   */
  start(side: Side, command: string[], mode: "netns" | "nsenter" = "netns"): ChildProcessWithoutNullStreams {
    const prefix = mode === "netns" ? ["ip", "netns", "exec", side.namespace] : ["nsenter", `--net=/run/netns/${side.namespace}`];
    return spawn(prefix[0]!, [...prefix.slice(1), ...command]);
  }

  /** Runs a Node script inside a namespace; returns its stdout. */
  node(side: Side, script: string): string {
    return this.exec(side, [process.execPath, "--input-type=module", "-e", script]).stdout;
  }

  /**
   * Sends raw Ethernet frames out of a side's veth through an AF_PACKET
   * socket, in order, 5 ms apart.
   */
  sendFrames(side: Side, frames: Uint8Array[]): void {
    const socketModule = new URL("../../src/sys/socket.js", import.meta.url).href;
    const libcModule = new URL("../../src/sys/libc.js", import.meta.url).href;
    this.node(side, `
import { PacketSocket } from ${JSON.stringify(socketModule)};
import { libcWrite } from ${JSON.stringify(libcModule)};
const socket = PacketSocket.open({ interface: ${JSON.stringify(side.interface)}, protocol: 0x88b5 });
try {
  for (const hex of ${JSON.stringify(frames.map((frame) => Buffer.from(frame).toString("hex")))}) {
    const frame = Buffer.from(hex, "hex");
    if (libcWrite(socket.fd.value, frame, frame.length) !== frame.length) throw new Error("short write");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
} finally {
  socket.close();
}
`);
  }

  /**
   * Runs `action` with this thread in the namespace: sockets, netlink and
   * bpf attach calls made by it act there. The namespace is restored after.
   */
  inNamespace<T>(side: Side, action: () => T): T {
    return inNetworkNamespace(side.namespace, action);
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const side of [this.a, this.b]) spawnSync("ip", ["netns", "del", side.namespace], { timeout: 20_000 });
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** A script that sends `count` UDP datagrams of `payload` to host:port, one after another. */
export function udpSenderScript(host: string, port: number, count: number, payload = "netbpf"): string {
  return `
import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
for (let i = 0; i < ${count}; i++) {
  await new Promise((resolve, reject) => socket.send(${JSON.stringify(payload)}, ${port}, ${JSON.stringify(host)}, (e) => e ? reject(e) : resolve()));
}
socket.close();
`;
}
