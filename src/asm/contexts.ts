/**
 * Program contexts for the interpreter: the `struct xdp_md` and
 * `struct __sk_buff` a program gets in r1, with their pointer fields
 * (data, data_end, data_meta) pointing into the packet the way the kernel's
 * context rewriting makes them. Offsets are those of the uapi structs
 * (linux/bpf.h), which are a stable ABI.
 */

import { expectBytes, expectInteger, expectObject } from "../sys/argument-checks.js";
import type { Helper } from "./interpreter.js";

/** What a pointer field of a context points at. */
export type PacketPointer = "packet-start" | "packet-end";

/** A context structure: its size, its plain fields, and the fields that hold packet pointers. */
export interface ContextModel {
  name: string;
  size: number;
  /** Writes the plain fields (little-endian) for `packet` into `view`, which holds `size` zero bytes. */
  writeFields(view: DataView, packet: Uint8Array): void;
  /** Offsets of pointer fields → where they point; a program may only load them whole and never store them. */
  pointerFields: ReadonlyMap<number, PacketPointer>;
}

/** Checks `options` is an object (or undefined) whose fields in `maximums` are absent or integers from 0 to their maximum. */
function checkFields(operation: string, options: object | undefined, maximums: Record<string, number>): void {
  const fields = expectObject<Record<string, unknown>>(operation, "options", options, true);
  for (const [name, maximum] of Object.entries(maximums)) {
    if (fields[name] !== undefined) expectInteger(operation, `options.${name}`, fields[name], 0, maximum);
  }
}

/** Optional values of xdp_md's plain fields. */
export interface XdpContextOptions {
  ingressInterfaceIndex?: number;
  receiveQueueIndex?: number;
  egressInterfaceIndex?: number;
}

/** struct xdp_md: data 0, data_end 4, data_meta 8, ingress_ifindex 12, rx_queue_index 16, egress_ifindex 20. */
export function xdpContext(options: XdpContextOptions = {}): ContextModel {
  checkFields("model xdp_md", options, { ingressInterfaceIndex: 0xffff_ffff, receiveQueueIndex: 0xffff_ffff, egressInterfaceIndex: 0xffff_ffff });
  return {
    name: "xdp_md",
    size: 24,
    writeFields: (view) => {
      view.setUint32(12, options.ingressInterfaceIndex ?? 0, true);
      view.setUint32(16, options.receiveQueueIndex ?? 0, true);
      view.setUint32(20, options.egressInterfaceIndex ?? 0, true);
    },
    pointerFields: new Map<number, PacketPointer>([
      [0, "packet-start"],
      [4, "packet-end"],
      [8, "packet-start"],
    ]),
  };
}

/**
 * skb->protocol for an Ethernet frame, as eth_type_trans sets it: the
 * EtherType when it is one (≥ 0x0600); for an 802.3 length field, ETH_P_802_3
 * (1) when the payload starts with 0xffff (raw IPX), else ETH_P_802_2 (4).
 */
export function ethernetProtocol(packet: Uint8Array): number {
  return frameProtocol(expectBytes("read Ethernet protocol", "packet", packet));
}

function frameProtocol(packet: Uint8Array): number {
  if (packet.length < 14) return 0;
  const type = (packet[12]! << 8) | packet[13]!;
  if (type >= 0x0600) return type;
  return packet.length >= 16 && packet[14] === 0xff && packet[15] === 0xff ? 0x0001 : 0x0004;
}

/** Optional values of __sk_buff's plain fields; `len` and `protocol` default to what the packet says. */
export interface SocketBufferContextOptions {
  mark?: number;
  priority?: number;
  ingressInterfaceIndex?: number;
  interfaceIndex?: number;
  hash?: number;
  /** Ethernet protocol in host order (e.g. 0x0800); by default derived from the packet as the kernel's eth_type_trans does. */
  protocol?: number;
  packetType?: number;
  /** TCI of a VLAN tag stripped into the skb's metadata; when given, vlan_present reads 1. */
  vlanTci?: number;
  /** TPID of that tag in host order (default 0x8100 when vlanTci is given). */
  vlanProtocol?: number;
}

/**
 * struct __sk_buff as a tc (sched_cls) program sees it, the packet starting
 * at the Ethernet header: len 0, pkt_type 4, mark 8, queue_mapping 12,
 * protocol 16 (network order), vlan_present 20, vlan_tci 24, vlan_proto 28,
 * priority 32, ingress_ifindex 36, ifindex 40, tc_index 44, cb 48-67,
 * hash 68, tc_classid 72, data 76, data_end 80, … data_meta 140 (size 192).
 */
export function socketBufferContext(options: SocketBufferContextOptions = {}): ContextModel {
  checkFields("model __sk_buff", options, {
    mark: 0xffff_ffff, priority: 0xffff_ffff, ingressInterfaceIndex: 0xffff_ffff, interfaceIndex: 0xffff_ffff, hash: 0xffff_ffff,
    protocol: 0xffff, packetType: 0xffff_ffff, vlanTci: 0xffff, vlanProtocol: 0xffff,
  });
  return {
    name: "__sk_buff",
    size: 192,
    writeFields: (view, packet) => {
      const protocol = options.protocol ?? frameProtocol(packet);
      view.setUint32(0, packet.length, true);
      view.setUint32(4, options.packetType ?? 0, true);
      view.setUint32(8, options.mark ?? 0, true);
      // __be16 in a u32: the two bytes in network order at the start of the field.
      view.setUint16(16, protocol, false);
      view.setUint32(20, options.vlanTci === undefined ? 0 : 1, true);
      view.setUint32(24, options.vlanTci ?? 0, true);
      // __be16 in a u32, like protocol.
      if (options.vlanTci !== undefined) view.setUint16(28, options.vlanProtocol ?? 0x8100, false);
      view.setUint32(32, options.priority ?? 0, true);
      view.setUint32(36, options.ingressInterfaceIndex ?? 0, true);
      view.setUint32(40, options.interfaceIndex ?? 0, true);
      view.setUint32(68, options.hash ?? 0, true);
    },
    pointerFields: new Map<number, PacketPointer>([
      [76, "packet-start"],
      [80, "packet-end"],
      [140, "packet-start"],
    ]),
  };
}

const EFAULT = 14;
const EINVAL = 22;

function loadBytes(failure: number, zeroOnFailure: boolean): Helper {
  return (context) => {
    const [, offset, destination, length] = context.arguments;
    const size = Number(length & 0xffff_ffffn);
    const start = Number(BigInt.asIntN(32, offset & 0xffff_ffffn));
    if (start < 0 || start + size > context.packet.length) {
      if (zeroOnFailure && size > 0) context.write(destination, new Uint8Array(size));
      return BigInt.asUintN(64, BigInt(-failure));
    }
    context.write(destination, context.packet.subarray(start, start + size));
    return 0n;
  };
}

const ENOMEM = 12;

/**
 * bpf_skb_pull_data(skb, length) on socketBufferContext: makes the first `length` bytes
 * linear (0: the linear part as it is), as the kernel's skb_ensure_writable: -ENOMEM when
 * `length` exceeds skb->len (the context's len field); data_end loaded afterwards moves.
 */
const pullData: Helper = (context) => {
  const [skb, length] = context.arguments;
  const wanted = Number(length & 0xffff_ffffn);
  const skbLength = new DataView(context.read(skb, 4).buffer).getUint32(0, true);
  if (wanted > skbLength) return BigInt.asUintN(64, BigInt(-ENOMEM));
  if (wanted > context.linearLength) context.setLinearLength(wanted);
  return 0n;
};

/**
 * Helpers that read the packet, for offline runs, with the kernel's error
 * results: skb_load_bytes (26; -EFAULT and a zeroed destination when out of
 * bounds) and xdp_load_bytes (189; -EINVAL), both
 * `(context, offset, destination, length)`; and skb_pull_data (39), which
 * moves the end of the linear part of a run with a linearLength.
 */
export const packetHelpers: Readonly<Record<number, Helper>> = Object.freeze({
  26: loadBytes(EFAULT, true),
  39: pullData,
  189: loadBytes(EINVAL, false),
});
