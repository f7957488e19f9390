/**
 * The network interfaces of the calling thread's network namespace, from
 * rtnetlink (RTM_GETLINK): unlike /sys/class/net, this is right even when
 * /sys belongs to another namespace (`nsenter --net`). Also the link state
 * that libpcap shows in `tcpdump -D` (ethtool's ETHTOOL_GLINK).
 */
import { closeSync } from "node:fs";
import { argumentError, expectString } from "./argument-checks.js";
import { addressOf, libcIoctlPointer, libcSocket } from "./libc.js";
import { RouteNetlink, RouteMessageType, parseAttributes, attributeString } from "./netlink.js";
import { AddressFamily, SocketType } from "./socket.js";

/** Interface flags (IFF_*) from <linux/if.h>. */
export const InterfaceFlag = { Up: 0x1, Broadcast: 0x2, Loopback: 0x8, PointToPoint: 0x10, Running: 0x40, NoArp: 0x80, LowerUp: 0x10000 } as const;

export interface NetworkInterface {
  name: string;
  index: number;
  /** IFF_* flags. */
  flags: number;
  /** ARPHRD_* device type (1 = Ethernet, 772 = loopback, …). */
  deviceType: number;
  /** Received packets the interface dropped (rtnl_link_stats64 rx_dropped), when the kernel reports it. */
  receiveDropped?: bigint;
}

const interfaceNameAttribute = 3;
const interfaceStatistics64Attribute = 23;
/** Offset of rx_dropped in struct rtnl_link_stats64. */
const receiveDroppedOffset = 48;
const interfaceInfoSize = 16;

/** Every interface of this network namespace, by index. */
export function listNetworkInterfaces(): NetworkInterface[] {
  using netlink = RouteNetlink.open();
  const request = Buffer.alloc(interfaceInfoSize);
  const messages = netlink.dump(RouteMessageType.GetLink, request, { operation: "list network interfaces" });
  const interfaces: NetworkInterface[] = [];
  for (const message of messages) {
    if (message.type !== RouteMessageType.NewLink || message.payload.length < interfaceInfoSize) continue;
    const payload = message.payload;
    const attributes = parseAttributes(payload, interfaceInfoSize);
    const name = attributeString(attributes.get(interfaceNameAttribute));
    if (name === undefined) continue;
    const statistics = attributes.get(interfaceStatistics64Attribute);
    interfaces.push({
      name,
      index: payload.readInt32LE(4),
      flags: payload.readUInt32LE(8),
      deviceType: payload.readUInt16LE(2),
      receiveDropped: statistics !== undefined && statistics.length >= receiveDroppedOffset + 8 ? statistics.readBigUInt64LE(receiveDroppedOffset) : undefined,
    });
  }
  return interfaces.sort((a, b) => a.index - b.index);
}

/** One interface by name, or undefined when there is none. */
export function findNetworkInterface(name: string): NetworkInterface | undefined {
  expectString("find network interface", "name", name);
  return listNetworkInterfaces().find((i) => i.name === name);
}

const ioctlEthtool = 0x8946;
const ethtoolGetLink = 0x0000000a;

/**
 * Whether the link has carrier, as ethtool reports it (ETHTOOL_GLINK): true,
 * false, or undefined when the driver does not say (libpcap then prints no
 * connection status).
 */
export function interfaceLinkDetected(name: string): boolean | undefined {
  if (typeof name !== "string" || name.length === 0 || name.length > 15) throw argumentError("read link state", "name", "an interface name of 1 to 15 characters", name);
  const fd = libcSocket(AddressFamily.Inet, SocketType.Datagram | SocketType.CloseOnExec, 0);
  if (fd < 0) return undefined;
  try {
    const value = Buffer.alloc(8);
    value.writeUInt32LE(ethtoolGetLink, 0);
    // struct ifreq: the name, then (in the union) a pointer to the ethtool command.
    const request = Buffer.alloc(40);
    request.write(name, 0, 15, "utf8");
    request.writeBigUInt64LE(addressOf(value), 16);
    if (libcIoctlPointer(fd, ioctlEthtool, request) < 0) return undefined;
    return value.readUInt32LE(4) !== 0;
  } finally {
    closeSync(fd);
  }
}
