/** Parsing and printing the endpoints a balancer works with: `192.0.2.10:80`, `[2001:db8::10]:443`. */
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from "../pcap/address-text.js";
import { UsageError } from "../sys/errors.js";

export interface Endpoint {
  /** 4 or 16 bytes. */
  address: Buffer;
  port: number;
}

export function formatAddress(address: Buffer): string {
  return address.length === 4 ? formatIpv4(address) : formatIpv6(address);
}

export function formatEndpoint(endpoint: Endpoint): string {
  const text = formatAddress(endpoint.address);
  return endpoint.address.length === 16 ? `[${text}]:${endpoint.port}` : `${text}:${endpoint.port}`;
}

export function parseAddress(text: string, operation: string): Buffer {
  const address = parseIpv4(text) ?? (text.includes(":") ? parseIpv6(text) : undefined);
  if (!address) throw new UsageError(operation, `"${text}" is not an IPv4 or IPv6 address`, "write e.g. 192.0.2.10 or 2001:db8::10");
  return address;
}

/** `ADDR:PORT` or `[IPV6]:PORT`; `name` (the argument it came from) is named in errors when given. */
export function parseEndpoint(text: string, operation: string, name?: string): Endpoint {
  const what = name === undefined ? `"${text}"` : `${name} "${text}"`;
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\[\]]+):(\d+)$/.exec(text);
  if (!match) throw new UsageError(operation, `${what} is not ADDRESS:PORT`, "write 192.0.2.10:80, or [2001:db8::10]:80 for IPv6");
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(operation, `port ${match[2]} in ${what} is out of range`, "ports are 1-65535");
  return { address: parseAddress(match[1]!, operation), port };
}
