/**
 * A routed network for firewall, limit and mark tests: client, router and
 * server namespaces, joined by two veth pairs, with IPv4 and IPv6 and
 * forwarding on the router. Unique names (prefix "nb-" / "nb"), torn down by
 * destroy() — call it in t.after / finally.
 *
 *   client (192.0.2.2, 2001:db8:1::2) ─ clientSide | router | serverSide ─ server (198.51.100.2, 2001:db8:2::2)
 *
 * Spoofed sources (203.0.113.0/24 and 2001:db8:3::/48) are routed back to
 * the client side, so a flood from a raw socket in the client can be answered.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams, type SpawnSyncReturns } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cliPath as netbpfCliPath } from "./cli.js";

function run(command: string, args: string[], input?: string, timeout = 30_000): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { encoding: "utf8", input, timeout, maxBuffer: 64 << 20 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${result.stderr.trim()}`);
  return result;
}

export interface RoutedHost {
  namespace: string;
}

export class RoutedTestbed {
  readonly tag: string;
  readonly client: RoutedHost;
  readonly router: RoutedHost;
  readonly server: RoutedHost;
  /** The router's interface towards the client (where ingress filtering happens). */
  readonly routerClientSide: string;
  /** The router's interface towards the server (where egress marking happens). */
  readonly routerServerSide: string;
  readonly clientInterface: string;
  readonly serverInterface: string;
  readonly clientAddress = "192.0.2.2";
  readonly serverAddress = "198.51.100.2";
  readonly clientAddress6 = "2001:db8:1::2";
  readonly serverAddress6 = "2001:db8:2::2";
  readonly spoofedRange = "203.0.113.0/24";
  #destroyed = false;

  private constructor(prefix: string) {
    this.tag = randomBytes(3).toString("hex");
    const short = prefix.slice(0, 3);
    this.client = { namespace: `nb-${prefix}-${this.tag}-client` };
    this.router = { namespace: `nb-${prefix}-${this.tag}-router` };
    this.server = { namespace: `nb-${prefix}-${this.tag}-server` };
    this.clientInterface = `nb${short}${this.tag}c`;
    this.routerClientSide = `nb${short}${this.tag}rc`;
    this.routerServerSide = `nb${short}${this.tag}rs`;
    this.serverInterface = `nb${short}${this.tag}s`;
  }

  static create(prefix: string): RoutedTestbed {
    const bed = new RoutedTestbed(prefix);
    try {
      bed.build();
    } catch (error) {
      bed.destroy();
      throw error;
    }
    return bed;
  }

  private build(): void {
    for (const host of [this.client, this.router, this.server]) {
      run("ip", ["netns", "add", host.namespace]);
      run("ip", ["-n", host.namespace, "link", "set", "lo", "up"]);
    }
    run("ip", ["link", "add", this.clientInterface, "netns", this.client.namespace, "type", "veth", "peer", "name", this.routerClientSide, "netns", this.router.namespace]);
    run("ip", ["link", "add", this.serverInterface, "netns", this.server.namespace, "type", "veth", "peer", "name", this.routerServerSide, "netns", this.router.namespace]);
    const sysctl = (host: RoutedHost, ...settings: string[]) => run("ip", ["netns", "exec", host.namespace, "sysctl", "-q", ...settings.flatMap((s) => ["-w", s])]);
    sysctl(this.router, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0");
    sysctl(this.server, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0");
    const address = (host: RoutedHost, device: string, ...addresses: string[]) => {
      for (const a of addresses) run("ip", ["-n", host.namespace, "addr", "add", a, "dev", device, ...(a.includes(":") ? ["nodad"] : [])]);
      run("ip", ["-n", host.namespace, "link", "set", device, "up"]);
    };
    address(this.client, this.clientInterface, "192.0.2.2/24", "2001:db8:1::2/64");
    address(this.router, this.routerClientSide, "192.0.2.1/24", "2001:db8:1::1/64");
    address(this.router, this.routerServerSide, "198.51.100.1/24", "2001:db8:2::1/64");
    address(this.server, this.serverInterface, "198.51.100.2/24", "2001:db8:2::2/64");
    run("ip", ["-n", this.client.namespace, "route", "add", "default", "via", "192.0.2.1"]);
    run("ip", ["-n", this.client.namespace, "-6", "route", "add", "default", "via", "2001:db8:1::1"]);
    run("ip", ["-n", this.server.namespace, "route", "add", "default", "via", "198.51.100.1"]);
    run("ip", ["-n", this.server.namespace, "-6", "route", "add", "default", "via", "2001:db8:2::1"]);
    run("ip", ["-n", this.router.namespace, "route", "add", this.spoofedRange, "via", "192.0.2.2"]);
    run("ip", ["-n", this.router.namespace, "-6", "route", "add", "2001:db8:3::/48", "via", "2001:db8:1::2"]);
    // The client accepts replies to spoofed addresses without answering them with resets.
    run("ip", ["-n", this.client.namespace, "route", "add", "blackhole", this.spoofedRange]);
  }

  /** Runs a command in a namespace (network namespace only: /sys/fs/bpf stays visible). */
  exec(host: RoutedHost, command: string[], options: { input?: string; timeout?: number } = {}): SpawnSyncReturns<string> {
    return run("nsenter", [`--net=/run/netns/${host.namespace}`, ...command], options.input, options.timeout);
  }

  /** Like exec, but returns the result whatever the exit status. */
  tryExec(host: RoutedHost, command: string[], options: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): SpawnSyncReturns<string> {
    return spawnSync("nsenter", [`--net=/run/netns/${host.namespace}`, ...command], { encoding: "utf8", timeout: options.timeout ?? 60_000, env: options.env ?? process.env });
  }

  /** Runs the netbpf command line in a host's network namespace (this host's bpffs, so pinned state is shared). */
  netbpf(host: RoutedHost, env: NodeJS.ProcessEnv, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const result = this.tryExec(host, [process.execPath, netbpfCliPath, ...args], { env });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  start(host: RoutedHost, command: string[], env?: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams {
    return spawn("nsenter", [`--net=/run/netns/${host.namespace}`, ...command], { env: env ?? process.env });
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const host of [this.client, this.router, this.server]) spawnSync("ip", ["netns", "del", host.namespace], { timeout: 20_000 });
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}
