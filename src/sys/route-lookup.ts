/** `ip route get ADDRESS` through netlink: which interface and source address reach a destination. */
import { argumentError, expectBytes } from "./argument-checks.js";
import { NetbpfError } from "./errors.js";
import { AttributeWriter, parseAttributes, RouteMessageType, RouteNetlink } from "./netlink.js";
import { AddressFamily } from "./socket.js";
import { libcIfIndexToName } from "./libc.js";

export interface RouteToAddress {
  /** Outgoing interface index and name. */
  interfaceIndex: number;
  interfaceName: string;
  /** The address the kernel would use as source (RTA_PREFSRC). */
  source: Buffer | undefined;
  /** The next hop when the destination is not on a connected network. */
  gateway: Buffer | undefined;
}

const routeAttribute = { destination: 1, outputInterface: 4, gateway: 5, preferredSource: 7 } as const;

/**
 * Asks the kernel's FIB of the calling thread's network namespace for the
 * route to `address` (4 or 16 bytes). Throws a SyscallError when there is none.
 */
export function lookupRoute(address: Buffer): RouteToAddress {
  const bytes = expectBytes("look up route", "address", address);
  if (bytes.length !== 4 && bytes.length !== 16) throw argumentError("look up route", "address.length", "4 (IPv4) or 16 (IPv6)", bytes.length);
  address = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const family = address.length === 4 ? AddressFamily.Inet : AddressFamily.Inet6;
  const header = Buffer.alloc(12);
  header.writeUInt8(family, 0);
  header.writeUInt8(address.length * 8, 1);
  const payload = Buffer.concat([header, new AttributeWriter().raw(routeAttribute.destination, address).toBuffer()]);
  using netlink = RouteNetlink.open();
  const replies = netlink.request(RouteMessageType.GetRoute, 0, payload, {
    operation: "look up route",
    hints: { ENETUNREACH: "no route to this address: add one (ip route add …)", EHOSTUNREACH: "the address is unreachable" },
  });
  const route = replies.find((m) => m.type === RouteMessageType.NewRoute);
  if (!route) throw new NetbpfError("look up route", "the kernel answered without a route");
  const attributes = parseAttributes(route.payload, 12);
  const interfaceIndex = attributes.get(routeAttribute.outputInterface)?.readUInt32LE(0) ?? 0;
  return {
    interfaceIndex,
    interfaceName: libcIfIndexToName(interfaceIndex, Buffer.alloc(16)) ?? String(interfaceIndex),
    source: attributes.get(routeAttribute.preferredSource),
    gateway: attributes.get(routeAttribute.gateway),
  };
}
