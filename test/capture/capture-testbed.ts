/**
 * Two network namespaces joined by a veth pair, every name prefixed
 * `nb-cap-`, for live capture tests. destroy() removes both namespaces (and
 * with them the veth pair); call it in a finally / t.after.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";

export interface CaptureSide {
  namespace: string;
  interface: string;
  address: string;
}

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 20_000 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

export class CaptureTestbed {
  readonly a: CaptureSide;
  readonly b: CaptureSide;
  #destroyed = false;

  private constructor() {
    const tag = randomBytes(3).toString("hex");
    this.a = { namespace: `nb-cap-${tag}-a`, interface: `nb-cap-${tag}a`, address: "192.0.2.1" };
    this.b = { namespace: `nb-cap-${tag}-b`, interface: `nb-cap-${tag}b`, address: "192.0.2.2" };
  }

  static create(): CaptureTestbed {
    const bed = new CaptureTestbed();
    try {
      for (const side of [bed.a, bed.b]) run("ip", ["netns", "add", side.namespace]);
      run("ip", ["link", "add", bed.a.interface, "netns", bed.a.namespace, "type", "veth", "peer", "name", bed.b.interface, "netns", bed.b.namespace]);
      for (const side of [bed.a, bed.b]) {
        // No IPv6 on the veth: no router solicitations or MLD reports in the captures.
        run("ip", ["netns", "exec", side.namespace, "sysctl", "-q", "-w", `net.ipv6.conf.${side.interface}.disable_ipv6=1`]);
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

  /** Runs a command in a namespace (ip netns exec: its own /sys) and waits. */
  exec(side: CaptureSide, command: string[]): string {
    return run("ip", ["netns", "exec", side.namespace, ...command]);
  }

  /** Starts a command in a namespace without waiting. `mode` "netns" (ip netns exec) or "nsenter" (network namespace only). */
  start(side: CaptureSide, command: string[], mode: "netns" | "nsenter" = "netns"): ChildProcessWithoutNullStreams {
    const prefix = mode === "netns" ? ["ip", "netns", "exec", side.namespace] : ["nsenter", `--net=/run/netns/${side.namespace}`];
    return spawn(prefix[0]!, [...prefix.slice(1), ...command]);
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const side of [this.a, this.b]) spawnSync("ip", ["netns", "del", side.namespace], { timeout: 20_000 });
  }
}

/** A Node script that sends `payloads` as UDP datagrams to host:port, in order, `gapMs` apart. */
export function udpSendScript(host: string, port: number, payloads: string[], gapMs = 5): string {
  return `
import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
for (const payload of ${JSON.stringify(payloads)}) {
  await new Promise((resolve, reject) => socket.send(payload, ${port}, ${JSON.stringify(host)}, (e) => e ? reject(e) : resolve()));
  await new Promise((resolve) => setTimeout(resolve, ${gapMs}));
}
socket.close();
`;
}
