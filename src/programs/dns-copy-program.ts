/**
 * The audit's DNS program: a cgroup skb program (ingress or egress, at the
 * cgroup v2 root) that copies UDP datagrams and TCP segments to or from port
 * 53 — and nothing else — into a ring buffer, for src/audit to parse in user
 * space. Every other packet costs a protocol check and one or two header
 * loads. A copy is at most dnsCopyLength bytes of the packet from its IP
 * header (an Ethernet MTU: EDNS answers and most answers over TCP fit); a
 * copy the ring has no room for is counted in the
 * per-CPU `dns_lost` counter. The program always returns 1 (allow): it never
 * changes what happens to a packet.
 *
 * Record: u64 ktime_get_ns, u32 bytes copied, u32 direction (0 ingress, 1
 * egress), then the bytes.
 */
import { Assembler, R0, R1, R2, R3, R4, R6, R7, R8, R9, R10, type AssembledProgram } from "../asm/assembler.js";
import { addToCounter } from "./add-to-counter.js";

export const dnsRingName = "dns_ring";
export const dnsScratchName = "dns_scratch";
export const dnsLostName = "dns_lost";
export const dnsCopyLength = 1500;
export const dnsHeaderSize = 16;
/** Bytes of a scratch value (one per direction and CPU). */
export const dnsScratchValueSize = dnsHeaderSize + dnsCopyLength;

/** __sk_buff fields (UAPI offsets). */
const skbLength = 0;
const skbProtocol = 16;
/** skb->protocol as a little-endian load of the big-endian EtherType. */
const protocolIpv4 = 0x0008;
const protocolIpv6 = 0xdd86;
/** Port 53 as a little-endian load of the big-endian field. */
const port53 = 0x3500;

const headerSlot = -48;
const portsSlot = -56;
const keySlot = -60;

export function dnsCopyProgram(direction: "ingress" | "egress"): AssembledProgram {
  const a = new Assembler();
  const loadBytes = (offset: number | typeof R7, slot: number, length: number) => {
    a.mov64(R1, R6);
    if (typeof offset === "number") a.mov64(R2, offset);
    else a.mov64(R2, offset);
    a.mov64(R3, R10).add64(R3, slot).mov64(R4, length).call("skb_load_bytes").jumpIf(R0, "!=", 0, "out");
  };
  a.mov64(R6, R1)
    .load("u32", R1, R6, skbProtocol)
    .jumpIf(R1, "==", protocolIpv4, "ipv4")
    .jumpIf(R1, "==", protocolIpv6, "ipv6")
    .jump("out");
  a.label("ipv4");
  loadBytes(0, headerSlot, 20);
  a.load("u8", R1, R10, headerSlot + 9).jumpIf(R1, "==", 17, "transport_v4").jumpIf(R1, "!=", 6, "out")
    .label("transport_v4")
    // Later fragments carry no UDP or TCP header.
    .load("u16", R1, R10, headerSlot + 6).and64(R1, 0xff1f).jumpIf(R1, "!=", 0, "out")
    .load("u8", R7, R10, headerSlot).and64(R7, 0x0f).leftShift64(R7, 2)
    .jumpIf(R7, "<", 20, "out")
    .jump("ports");
  a.label("ipv6");
  loadBytes(0, headerSlot, 40);
  a.load("u8", R1, R10, headerSlot + 6).jumpIf(R1, "==", 17, "transport_v6").jumpIf(R1, "!=", 6, "out")
    .label("transport_v6").mov64(R7, 40);
  a.label("ports");
  loadBytes(R7, portsSlot, 4);
  a.load("u16", R1, R10, portsSlot).jumpIf(R1, "==", port53, "copy")
    .load("u16", R1, R10, portsSlot + 2).jumpIf(R1, "==", port53, "copy")
    .jump("out");
  a.label("copy")
    .store("u32", R10, keySlot, direction === "ingress" ? 0 : 1)
    .mov64(R2, R10).add64(R2, keySlot)
    .loadMapFd(R1, dnsScratchName)
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, "out")
    .mov64(R8, R0)
    .call("ktime_get_ns")
    .store("u64", R8, 0, R0)
    .load("u32", R9, R6, skbLength)
    .jumpIf(R9, "<=", dnsCopyLength, "length_ok")
    .mov64(R9, dnsCopyLength)
    .label("length_ok")
    .jumpIf(R9, "==", 0, "out")
    .store("u32", R8, 8, R9)
    .store("u32", R8, 12, direction === "ingress" ? 0 : 1)
    .mov64(R1, R6).mov64(R2, 0).mov64(R3, R8).add64(R3, dnsHeaderSize).mov64(R4, R9)
    .call("skb_load_bytes")
    .jumpIf(R0, "!=", 0, "out")
    .loadMapFd(R1, dnsRingName).mov64(R2, R8).mov64(R3, R9).add64(R3, dnsHeaderSize).mov64(R4, 0)
    .call("ringbuf_output")
    .jumpIf(R0, "==", 0, "out");
  addToCounter(a, dnsLostName, 0, { stackOffset: keySlot, skip: "out" });
  return a.label("out").return(1).finish();
}

export interface DnsCopy {
  timestamp: bigint;
  direction: "ingress" | "egress";
  /** The packet from its IP header (at most dnsCopyLength bytes). */
  packet: Buffer;
}

export function decodeDnsCopy(data: Uint8Array): DnsCopy {
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const length = Math.min(view.readUInt32LE(8), view.length - dnsHeaderSize);
  return { timestamp: view.readBigUInt64LE(0), direction: view.readUInt32LE(12) === 0 ? "ingress" : "egress", packet: Buffer.from(view.subarray(dnsHeaderSize, dnsHeaderSize + length)) };
}
