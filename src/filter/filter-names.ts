import { readFileSync } from "node:fs";
import { lookup } from "node:dns/promises";
import { parseIpv6Address } from "./lexer.js";
import { argumentError, expectInstance, expectIterable } from "../sys/argument-checks.js";

/** Addresses a host name stands for, in resolver order. */
export interface HostAddresses {
  ipv4: number[];
  ipv6: Uint8Array[];
}

/** A service name's port, and its protocol when only one of TCP/UDP has it. */
export interface ServicePort {
  port: number;
  /** undefined when the name means the same port for both TCP and UDP. */
  protocol: "tcp" | "udp" | undefined;
}

/**
 * Where names in a filter come from. The default reads /etc/services,
 * /etc/protocols, /etc/hosts, /etc/ethers and /etc/networks synchronously;
 * host names only DNS knows must be resolved beforehand with
 * `resolveFilterHostNames` (compilation itself never blocks on the network).
 */
export interface FilterNames {
  service(name: string): ServicePort | undefined;
  protocol(name: string): number | undefined;
  host(name: string): HostAddresses | undefined;
  ether(name: string): Uint8Array | undefined;
  network(name: string): number | undefined;
}

const etherProtocols: Record<string, number> = {
  ip: 0x0800, ip6: 0x86dd, arp: 0x0806, rarp: 0x8035, atalk: 0x809b, aarp: 0x80f3, decnet: 0x6003,
  sca: 0x6007, lat: 0x6004, mopdl: 0x6001, moprc: 0x6002, ipx: 0x8137, loopback: 0x9000,
};
const llcProtocols: Record<string, number> = { iso: 0xfe, stp: 0x42, ipx: 0xe0, netbeui: 0xf0 };

/** Ethernet type (or LLC SAP) for a name accepted by `ether proto`. */
export function etherProtocolNumber(name: string): number | undefined {
  return etherProtocols[name] ?? llcProtocols[name];
}

function readLines(path: string): string[][] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").map((line) => line.replace(/#.*/, "").trim().split(/\s+/)).filter((fields) => fields[0] !== "");
}

/** Parses a dotted-quad IPv4 address into a number; undefined if it is not one. */
export function parseIpv4Address(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^[0-9]{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0) >>> 0;
}

/** Used only when /etc/services cannot be read (minimal containers without netbase). */
const fallbackServices = `ftp-data 20/tcp
ftp 21/tcp
ssh 22/tcp
telnet 23/tcp
smtp 25/tcp
domain 53/tcp
domain 53/udp
bootps 67/udp
bootpc 68/udp
http 80/tcp www
ntp 123/udp
https 443/tcp
https 443/udp`;

class SystemFilterNames implements FilterNames {
  private services?: Map<string, { tcp?: number; udp?: number }>;
  private protocols?: Map<string, number>;
  private hosts?: Map<string, HostAddresses>;
  private ethers?: Map<string, Uint8Array>;
  private networks?: Map<string, number>;

  constructor(private readonly extraHosts: ReadonlyMap<string, HostAddresses>) {}

  service(name: string): ServicePort | undefined {
    if (!this.services) {
      this.services = new Map();
      let lines = readLines("/etc/services");
      if (lines.length === 0) lines = fallbackServices.split("\n").map((line) => line.split(" "));
      for (const [service, portProtocol, ...aliases] of lines) {
        const match = /^(\d+)\/(tcp|udp)$/.exec(portProtocol ?? "");
        if (!match) continue;
        for (const key of [service!, ...aliases]) {
          const entry = this.services.get(key) ?? {};
          const protocol = match[2] as "tcp" | "udp";
          if (entry[protocol] === undefined) entry[protocol] = Number(match[1]);
          this.services.set(key, entry);
        }
      }
    }
    const entry = this.services.get(name);
    if (!entry) return undefined;
    if (entry.tcp !== undefined) return { port: entry.tcp, protocol: entry.udp === entry.tcp ? undefined : "tcp" };
    if (entry.udp !== undefined) return { port: entry.udp, protocol: "udp" };
    return undefined;
  }

  protocol(name: string): number | undefined {
    if (!this.protocols) {
      this.protocols = new Map();
      for (const [protocol, number, ...aliases] of readLines("/etc/protocols")) {
        if (!/^\d+$/.test(number ?? "")) continue;
        for (const key of [protocol!, ...aliases]) if (!this.protocols.has(key)) this.protocols.set(key, Number(number));
      }
      // Names libpcap knows even without /etc/protocols.
      for (const [key, value] of Object.entries({ ip: 0, icmp: 1, igmp: 2, tcp: 6, udp: 17, ipv6: 41, "ipv6-icmp": 58, sctp: 132 })) {
        if (!this.protocols.has(key)) this.protocols.set(key, value);
      }
    }
    return this.protocols.get(name);
  }

  host(name: string): HostAddresses | undefined {
    const extra = this.extraHosts.get(name);
    if (extra) return extra;
    if (!this.hosts) {
      this.hosts = new Map();
      for (const [address, ...names] of readLines("/etc/hosts")) {
        const ipv4 = parseIpv4Address(address!);
        const ipv6 = ipv4 === undefined ? parseIpv6Address(address!) : undefined;
        if (ipv4 === undefined && !ipv6) continue;
        for (const key of names) {
          const entry = this.hosts.get(key) ?? { ipv4: [], ipv6: [] };
          if (ipv4 !== undefined && !entry.ipv4.includes(ipv4)) entry.ipv4.push(ipv4);
          if (ipv6 && !entry.ipv6.some((a) => Buffer.compare(a, ipv6) === 0)) entry.ipv6.push(ipv6);
          this.hosts.set(key, entry);
        }
      }
    }
    return this.hosts.get(name);
  }

  ether(name: string): Uint8Array | undefined {
    if (!this.ethers) {
      this.ethers = new Map();
      for (const [address, host] of readLines("/etc/ethers")) {
        const parts = address!.split(":");
        if (parts.length !== 6 || !host) continue;
        this.ethers.set(host, Uint8Array.from(parts.map((p) => parseInt(p, 16))));
      }
    }
    return this.ethers.get(name);
  }

  network(name: string): number | undefined {
    if (!this.networks) {
      this.networks = new Map();
      for (const [network, number, ...aliases] of readLines("/etc/networks")) {
        const parts = (number ?? "").split(".");
        if (!parts.every((p) => /^\d+$/.test(p))) continue;
        let value = 0;
        for (const part of parts) value = value * 256 + Number(part);
        for (const key of [network!, ...aliases]) this.networks.set(key, value >>> 0);
      }
    }
    return this.networks.get(name);
  }
}

/** The system's name databases, plus host names resolved beforehand. */
export function systemFilterNames(resolvedHosts: ReadonlyMap<string, HostAddresses> = new Map()): FilterNames {
  expectInstance("system filter names", "resolvedHosts", resolvedHosts, Map, "a Map from resolveFilterHostNames()");
  return new SystemFilterNames(resolvedHosts);
}

/**
 * Resolves host names through the system resolver (DNS included) so that a
 * later synchronous compile can use them. Pass the result to `systemFilterNames`.
 * Names that do not resolve are left out (the compile then reports them).
 */
export async function resolveFilterHostNames(names: Iterable<string>): Promise<Map<string, HostAddresses>> {
  const result = new Map<string, HostAddresses>();
  for (const name of expectIterable<string>("resolve filter host names", "names", names)) {
    if (typeof name !== "string") throw argumentError("resolve filter host names", "names", "host names (strings)", name);
    try {
      const addresses = await lookup(name, { all: true, verbatim: true });
      const entry: HostAddresses = { ipv4: [], ipv6: [] };
      for (const address of addresses) {
        if (address.family === 4) entry.ipv4.push(parseIpv4Address(address.address)!);
        else entry.ipv6.push(parseIpv6Address(address.address.replace(/%.*/, ""))!);
      }
      result.set(name, entry);
    } catch {
      // unresolvable: reported by the compiler with its position
    }
  }
  return result;
}
