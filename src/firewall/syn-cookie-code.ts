/**
 * SYN cookies for the rate limiter's SYN-flood guard, at tc ingress, with
 * the kernel's own cookie helpers:
 *
 * - a SYN to a guarded port that passed the per-source limit: find the
 *   listening socket (bpf_skc_lookup_tcp), let the kernel compute the cookie
 *   for it (bpf_tcp_gen_syncookie, which also marks the listener as "sending
 *   cookies" so that it accepts them), and answer with a SYN-ACK built in
 *   place (MACs, addresses and ports swapped, the cookie as sequence number,
 *   an MSS option) sent back out of the same interface (bpf_redirect). The
 *   SYN never reaches the listener: a flood fills no queue.
 * - an ACK (no SYN, no RST) to a guarded port whose socket is the listener
 *   (no connection yet): checked with bpf_tcp_check_syncookie and counted as
 *   validated or invalid, then passed on; the listener itself validates the
 *   cookie again and creates the connection.
 *
 * The SYN-ACK offers no TCP options but the MSS (like the kernel's own
 * cookies without timestamps): connections made this way have no window
 * scaling and no SACK. When no cookie is made the SYN goes to the kernel
 * as it is and the rule's `fallback` counter says so: no listener in this
 * network namespace, IP options, a resize that fails — and, by the
 * kernel's own rule for bpf_tcp_gen_syncookie, whenever
 * net.ipv4.tcp_syncookies is 1 (the default) and the listener's SYN queue
 * is not full yet (cookies for every SYN need tcp_syncookies=2).
 */
import { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, type Assembler } from "../asm/assembler.js";
import { struct, u64 } from "../core/codec.js";
import { FieldSlot } from "./packet-fields.js";

/** Per-CPU per-rule cookie counters. */
export const cookieCounter = struct({ sent: u64, validated: u64, invalid: u64, fallback: u64 });
export const cookieMapName = "cookies";

/** Helpers the cookie path calls (for the feature probe). */
export const synCookieHelpers = ["skc_lookup_tcp", "sk_release", "tcp_gen_syncookie", "tcp_check_syncookie", "skb_change_tail", "skb_store_bytes", "redirect", "csum_diff"] as const;

// Stack slots below the rate limiter's own (it uses down to -128). Stack
// accesses must be aligned: the reply starts 2 bytes before a 4-byte
// boundary so that its IP and TCP headers are aligned.
const ipCopy = -168; // 40 bytes
const tcpCopy = -232; // 60 bytes
const reply = -322; // 78 bytes: Ethernet, IPv4/IPv6, TCP with an MSS option
const pseudoHeader = -364; // 40 bytes
const tuple = -400; // 36 bytes (struct bpf_sock_tuple)

export const cookieStackSize = 400;

const ethernetHeader = 14;
const tcpListen = 10;
const bpfSockState = 72;
const skbInterfaceIndex = 40;
const currentNetworkNamespace = -1;
const counterOffset = { sent: 0, validated: 8, invalid: 16, fallback: 24 } as const;

/** Adds one to a cookie counter of `slot` (uses r0–r5). */
function count(a: Assembler, slot: number, which: keyof typeof counterOffset, label: string): void {
  a.store("u32", R10, FieldSlot.scratch2, slot)
    .mov64(R2, R10).add64(R2, FieldSlot.scratch2)
    .loadMapFd(R1, cookieMapName)
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, label)
    .load("u64", R1, R0, counterOffset[which]).add64(R1, 1).store("u64", R0, counterOffset[which], R1)
    .label(label);
}

/**
 * Copies the IP header to ipCopy and the TCP header (with options) to
 * tcpCopy; leaves the TCP header's length in r8 and the socket tuple built.
 * Jumps to `fail` when the packet is not one the cookie path handles.
 */
function copyHeaders(a: Assembler, family: 4 | 6, fail: string, p: string): void {
  const ipLength = family === 4 ? 20 : 40;
  for (let offset = tcpCopy; offset < tcpCopy + 56; offset += 8) a.store("u64", R10, offset, 0);
  a.store("u32", R10, tcpCopy + 56, 0);
  a.mov64(R1, R6).mov64(R2, ethernetHeader).mov64(R3, R10).add64(R3, ipCopy).mov64(R4, ipLength).call("skb_load_bytes")
    .jumpIf(R0, "!=", 0, fail);
  // IPv4 options would move the TCP header: those SYNs go to the kernel.
  if (family === 4) a.load("u8", R1, R10, ipCopy).jumpIf(R1, "!=", 0x45, fail);
  const tcpOffset = ethernetHeader + ipLength;
  a.mov64(R1, R6).mov64(R2, tcpOffset).mov64(R3, R10).add64(R3, tcpCopy).mov64(R4, 20).call("skb_load_bytes")
    .jumpIf(R0, "!=", 0, fail)
    .load("u8", R8, R10, tcpCopy + 12).rightShift64(R8, 4).leftShift64(R8, 2)
    .jumpIf(R8, "<", 20, fail)
    .jumpIf(R8, "==", 20, `${p}copied`)
    .mov64(R1, R6).mov64(R2, tcpOffset).mov64(R3, R10).add64(R3, tcpCopy).mov64(R4, R8).call("skb_load_bytes")
    .jumpIf(R0, "!=", 0, fail)
    .label(`${p}copied`);
  // struct bpf_sock_tuple: source, destination, source port, destination port (as in the packet).
  const addressOffset = family === 4 ? 12 : 8;
  const addressLength = family === 4 ? 4 : 16;
  for (let i = 0; i < 2 * addressLength; i += 4) a.load("u32", R1, R10, ipCopy + addressOffset + i).store("u32", R10, tuple + i, R1);
  a.load("u32", R1, R10, tcpCopy).store("u32", R10, tuple + 2 * addressLength, R1);
}

/** r7 = the socket that would receive the packet, if it is a listener; otherwise jumps to `none` (released). */
function lookupListener(a: Assembler, family: 4 | 6, none: string, p: string): void {
  a.mov64(R1, R6).mov64(R2, R10).add64(R2, tuple).mov64(R3, family === 4 ? 12 : 36).mov64(R4, currentNetworkNamespace).mov64(R5, 0)
    .call("skc_lookup_tcp")
    .jumpIf(R0, "==", 0, none)
    .mov64(R7, R0)
    .load("u32", R1, R7, bpfSockState)
    .jumpIf(R1, "==", tcpListen, `${p}listener`)
    .mov64(R1, R7).call("sk_release")
    .jump(none)
    .label(`${p}listener`);
}

/** Folds a csum_diff sum in r0 to the 16-bit ones' complement checksum in r0. */
function fold(a: Assembler): void {
  for (let i = 0; i < 2; i++) a.mov64(R1, R0).rightShift64(R1, 16).and64(R0, 0xffff).add64(R0, R1);
  a.xor64(R0, 0xffff);
}

/**
 * The ACK check of a cookie-guarding rule: counts validated and invalid
 * cookies, then continues at `next` (the kernel decides).
 */
export function emitCookieAckCheck(a: Assembler, slot: number, label: string, next: string): void {
  a.label(label);
  for (const family of [4, 6] as const) {
    const p = `cookie_ack_${slot}_v${family}_`;
    a.label(`${p}start`);
    if (family === 4) a.load("u32", R1, R10, FieldSlot.family).jumpIf(R1, "!=", 4, `cookie_ack_${slot}_v6_start`);
    copyHeaders(a, family, next, p);
    lookupListener(a, family, next, p);
    a.mov64(R1, R7).mov64(R2, R10).add64(R2, ipCopy).mov64(R3, family === 4 ? 20 : 40).mov64(R4, R10).add64(R4, tcpCopy).mov64(R5, R8)
      .call("tcp_check_syncookie")
      .mov64(R9, R0)
      .mov64(R1, R7).call("sk_release")
      .jumpIf(R9, "!=", 0, `${p}invalid`);
    count(a, slot, "validated", `${p}counted_valid`);
    a.jump(next).label(`${p}invalid`);
    count(a, slot, "invalid", `${p}counted_invalid`);
    a.jump(next);
  }
}

/**
 * Answers a SYN with a cookie SYN-ACK (see above); on any failure the SYN
 * goes on to `pass` and the fallback counter of `slot` grows.
 */
export function emitCookieAnswer(a: Assembler, slot: number, label: string, pass: string): void {
  const fallback = `cookie_fallback_${slot}`;
  a.label(label);
  for (const family of [4, 6] as const) {
    const p = `cookie_syn_${slot}_v${family}_`;
    const ipLength = family === 4 ? 20 : 40;
    const tcpStart = reply + ethernetHeader + ipLength;
    const frameLength = ethernetHeader + ipLength + 24;
    a.label(`${p}start`);
    if (family === 4) a.load("u32", R1, R10, FieldSlot.family).jumpIf(R1, "!=", 4, `cookie_syn_${slot}_v6_start`);
    copyHeaders(a, family, fallback, p);
    lookupListener(a, family, fallback, p);
    a.mov64(R1, R7).mov64(R2, R10).add64(R2, ipCopy).mov64(R3, ipLength).mov64(R4, R10).add64(R4, tcpCopy).mov64(R5, R8)
      .call("tcp_gen_syncookie")
      .mov64(R9, R0)
      .mov64(R1, R7).call("sk_release")
      .jumpIf(R9, "s<", 0, fallback);

    // Ethernet: the addresses swapped.
    a.mov64(R1, R6).mov64(R2, 0).mov64(R3, R10).add64(R3, reply).mov64(R4, ethernetHeader).call("skb_load_bytes")
      .jumpIf(R0, "!=", 0, fallback);
    for (let i = 0; i < 6; i += 2) {
      a.load("u16", R1, R10, reply + i).load("u16", R2, R10, reply + 6 + i)
        .store("u16", R10, reply + i, R2).store("u16", R10, reply + 6 + i, R1);
    }
    // IP header.
    const ip = reply + ethernetHeader;
    if (family === 4) {
      a.store("u32", R10, ip, 0x2c000045) // version 4, IHL 5, TOS 0, total length 44
        .store("u32", R10, ip + 4, 0x00400000) // id 0, don't fragment
        .store("u32", R10, ip + 8, 0x00000640) // TTL 64, TCP, checksum 0 for now
        .load("u32", R1, R10, ipCopy + 16).store("u32", R10, ip + 12, R1)
        .load("u32", R1, R10, ipCopy + 12).store("u32", R10, ip + 16, R1);
    } else {
      a.store("u32", R10, ip, 0x00000060) // version 6, no class or flow label
        .store("u32", R10, ip + 4, 0x40061800); // payload 24, next header TCP, hop limit 64
      for (let i = 0; i < 16; i += 4) {
        a.load("u32", R1, R10, ipCopy + 24 + i).store("u32", R10, ip + 8 + i, R1)
          .load("u32", R1, R10, ipCopy + 8 + i).store("u32", R10, ip + 24 + i, R1);
      }
    }
    // TCP: ports swapped, cookie as sequence number, acknowledging the SYN.
    a.load("u16", R1, R10, tcpCopy + 2).store("u16", R10, tcpStart, R1)
      .load("u16", R1, R10, tcpCopy).store("u16", R10, tcpStart + 2, R1)
      .mov64(R1, R9).toBigEndian(R1, 32).store("u32", R10, tcpStart + 4, R1)
      .load("u32", R1, R10, tcpCopy + 4).toBigEndian(R1, 32).add64(R1, 1).toBigEndian(R1, 32).store("u32", R10, tcpStart + 8, R1)
      .store("u32", R10, tcpStart + 12, 0xffff1260) // data offset 6, SYN+ACK, window 65535
      .store("u32", R10, tcpStart + 16, 0) // checksum (for now), urgent pointer
      .store("u16", R10, tcpStart + 20, 0x0402) // MSS option: kind 2, length 4
      .mov64(R1, R9).rightShift64(R1, 32).and64(R1, 0xffff).toBigEndian(R1, 16).store("u16", R10, tcpStart + 22, R1);
    // Checksums: the IPv4 header's, then TCP's over the pseudo-header and the segment.
    if (family === 4) {
      a.mov64(R1, 0).mov64(R2, 0).mov64(R3, R10).add64(R3, ip).mov64(R4, 20).mov64(R5, 0).call("csum_diff");
      fold(a);
      a.store("u16", R10, ip + 10, R0);
      a.load("u32", R1, R10, ip + 12).store("u32", R10, pseudoHeader, R1)
        .load("u32", R1, R10, ip + 16).store("u32", R10, pseudoHeader + 4, R1)
        .store("u32", R10, pseudoHeader + 8, 0x18000600); // zero, TCP, length 24
    } else {
      for (let i = 0; i < 32; i += 4) a.load("u32", R1, R10, ip + 8 + i).store("u32", R10, pseudoHeader + i, R1);
      a.store("u32", R10, pseudoHeader + 32, 0x18000000) // length 24
        .store("u32", R10, pseudoHeader + 36, 0x06000000); // zeros, TCP
    }
    a.mov64(R1, 0).mov64(R2, 0).mov64(R3, R10).add64(R3, pseudoHeader).mov64(R4, family === 4 ? 12 : 40).mov64(R5, 0).call("csum_diff")
      .mov64(R5, R0).mov64(R1, 0).mov64(R2, 0).mov64(R3, R10).add64(R3, tcpStart).mov64(R4, 24).call("csum_diff");
    fold(a);
    a.store("u16", R10, tcpStart + 16, R0);
    // The packet becomes the reply, and leaves where it came in.
    a.mov64(R1, R6).mov64(R2, frameLength).mov64(R3, 0).call("skb_change_tail")
      .jumpIf(R0, "!=", 0, fallback)
      .mov64(R1, R6).mov64(R2, 0).mov64(R3, R10).add64(R3, reply).mov64(R4, frameLength).mov64(R5, 0).call("skb_store_bytes")
      .jumpIf(R0, "!=", 0, `${p}broken`);
    count(a, slot, "sent", `${p}counted`);
    a.load("u32", R1, R6, skbInterfaceIndex).mov64(R2, 0).call("redirect").exit();
    // The packet was resized but could not be rewritten: it is no SYN any more.
    a.label(`${p}broken`).return(2);
  }
  a.label(fallback);
  count(a, slot, "fallback", `${fallback}_counted`);
  a.jump(pass);
}
