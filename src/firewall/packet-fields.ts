/**
 * The header parsing the firewall, rate limiter and marker programs share:
 * Ethernet → IPv4/IPv6 → TCP/UDP/SCTP ports, written to fixed stack slots so
 * that rule checks (and filter subprograms, which keep r6–r9) can read them
 * at any point. XDP and tc differ only in where data/data_end and the length come from.
 *
 * Not parsed (documented limits): VLAN tags in the frame, IPv6 extension
 * headers (a packet whose next header is not the transport protocol has no
 * ports), IPv4 options are skipped with the header length.
 */
import { R1, R2, R3, R4, R5, R6, R10, type Assembler } from "../asm/assembler.js";

export type PacketHook = "xdp" | "tc";

/** Stack offsets (from r10) of the parsed fields. */
export const FieldSlot = {
  /** u64: bytes in the packet (skb->len at tc; data_end - data at XDP). */
  length: -8,
  /** u32: IP protocol, or 0xffff for a packet that is not IPv4/IPv6. */
  protocol: -12,
  /** u32: 4, 6, or 0 when not IP. */
  family: -16,
  /** u32: ports in host order (0 when the packet has none). */
  sourcePort: -20,
  destinationPort: -24,
  /** u32: 1 when the ports were read. */
  hasPorts: -28,
  /** u32: the TCP flags byte (0 for other protocols). */
  tcpFlags: -32,
  /**
   * LPM trie key of the chosen address: u32 prefix length (32 or 128) at
   * key, then the 4 or 16 address bytes. 20 bytes, up to -36.
   */
  key: -56,
  /** u32 free for the caller (rule slot numbers, …). */
  scratch: -60,
  scratch2: -64,
} as const;

/** Bytes of stack below r10 the fields use. */
export const fieldStackSize = 64;

export const nonIpProtocol = 0xffff;

const ethernetHeader = 14;
/** xdp_md and __sk_buff offsets (uapi, stable). */
const xdpData = 0;
const xdpDataEnd = 4;
const skbLength = 0;
const skbData = 76;
const skbDataEnd = 80;

export interface PacketFieldOptions {
  hook: PacketHook;
  /** Which address goes into the LPM key: the packet's source or destination. */
  address: "source" | "destination";
  /** Label prefix so the code can appear more than once in a program. */
  labelPrefix?: string;
}

/**
 * Emits the parser. Expects the context in r6 (kept); uses r0–r5. Falls
 * through at its end with every slot written.
 */
export function emitPacketFields(a: Assembler, options: PacketFieldOptions): void {
  const p = options.labelPrefix ?? "fields_";
  const done = `${p}done`;
  const ipv4 = `${p}ipv4`;
  const ipv6 = `${p}ipv6`;
  const ports = `${p}ports`;
  const noPorts = done;
  const data = R2;
  const end = R3;

  if (options.hook === "xdp") {
    a.load("u32", data, R6, xdpData).load("u32", end, R6, xdpDataEnd)
      .mov64(R4, end).sub64(R4, data).store("u64", R10, FieldSlot.length, R4);
  } else {
    a.load("u32", R4, R6, skbLength).store("u64", R10, FieldSlot.length, R4)
      .load("u32", data, R6, skbData).load("u32", end, R6, skbDataEnd);
  }
  a.store("u32", R10, FieldSlot.protocol, nonIpProtocol)
    .store("u32", R10, FieldSlot.family, 0)
    .store("u32", R10, FieldSlot.sourcePort, 0)
    .store("u32", R10, FieldSlot.destinationPort, 0)
    .store("u32", R10, FieldSlot.hasPorts, 0)
    .store("u32", R10, FieldSlot.tcpFlags, 0);
  // The key is read as a whole by map lookups: every byte written.
  for (let offset = FieldSlot.key; offset < FieldSlot.key + 20; offset += 4) a.store("u32", R10, offset, 0);

  a.mov64(R4, data).add64(R4, ethernetHeader).jumpIf(R4, ">", end, done)
    .load("u16", R5, data, 12)
    .jumpIf(R5, "==", 0x0008, ipv4)
    .jumpIf(R5, "==", 0xdd86, ipv6)
    .jump(done);

  // IPv4: the fixed header must be there; options are skipped by IHL.
  a.label(ipv4)
    .mov64(R4, data).add64(R4, ethernetHeader + 20).jumpIf(R4, ">", end, done)
    .store("u32", R10, FieldSlot.family, 4)
    .load("u8", R5, data, ethernetHeader + 9).store("u32", R10, FieldSlot.protocol, R5)
    .store("u32", R10, FieldSlot.key, 32)
    .load("u32", R4, data, ethernetHeader + (options.address === "source" ? 12 : 16))
    .store("u32", R10, FieldSlot.key + 4, R4)
    // Only a first fragment (offset 0) carries the transport header.
    .load("u16", R4, data, ethernetHeader + 6).and64(R4, 0xff1f).jumpIf(R4, "!=", 0, noPorts)
    .load("u8", R4, data, ethernetHeader).and64(R4, 0x0f).leftShift64(R4, 2)
    .jumpIf(R4, "<", 20, noPorts)
    .add64(R4, ethernetHeader)
    .mov64(R1, data).add64(R1, R4)
    .jump(ports);

  a.label(ipv6)
    .mov64(R4, data).add64(R4, ethernetHeader + 40).jumpIf(R4, ">", end, done)
    .store("u32", R10, FieldSlot.family, 6)
    .load("u8", R5, data, ethernetHeader + 6).store("u32", R10, FieldSlot.protocol, R5)
    .store("u32", R10, FieldSlot.key, 128);
  const addressOffset = ethernetHeader + (options.address === "source" ? 8 : 24);
  for (let i = 0; i < 4; i++) a.load("u32", R4, data, addressOffset + 4 * i).store("u32", R10, FieldSlot.key + 4 + 4 * i, R4);
  a.mov64(R1, data).add64(R1, ethernetHeader + 40);

  // r1 = transport header, r5 = protocol.
  const tcp = `${p}tcp`;
  a.label(ports)
    .jumpIf(R5, "==", 6, tcp)
    .jumpIf(R5, "==", 17, `${p}read_ports`)
    .jumpIf(R5, "==", 132, `${p}read_ports`)
    .jump(done)
    .label(tcp)
    .mov64(R4, R1).add64(R4, 14).jumpIf(R4, ">", end, done)
    .load("u8", R4, R1, 13).store("u32", R10, FieldSlot.tcpFlags, R4)
    .label(`${p}read_ports`)
    .mov64(R4, R1).add64(R4, 4).jumpIf(R4, ">", end, done)
    .load("u16", R4, R1, 0).toBigEndian(R4, 16).store("u32", R10, FieldSlot.sourcePort, R4)
    .load("u16", R4, R1, 2).toBigEndian(R4, 16).store("u32", R10, FieldSlot.destinationPort, R4)
    .store("u32", R10, FieldSlot.hasPorts, 1);
  a.label(done);
}
