/**
 * The load balancer's tc program, generated for one virtual service
 * (address, port, protocol). Attached at tc ingress of every interface the
 * user names, it handles both directions:
 *
 * - a packet to the VIP: find the flow in `lb_conntrack`, or pick a backend
 *   from the active half of the Maglev table (`lb_maglev`, indexed by the
 *   skb's flow hash) and remember it; a TCP SYN (without ACK) always starts a
 *   new flow, so a client port reused while its old entry is still in the LRU
 *   map is balanced afresh and never follows the old flow to a draining
 *   backend; then NAT (destination → backend,
 *   source → the balancer's own address and a port of its own, recorded in
 *   `lb_reverse`) or DSR (packet unchanged, sent to the backend's MAC);
 * - a reply from a backend to a NAT port: look the reply's own flow key up
 *   in `lb_reverse` and translate it back (source → VIP, destination → client);
 * - TCP in NAT mode: FIN and RST either way are recorded in the flow's
 *   `lb_reverse` entry; a new flow that finds none of its candidate NAT ports
 *   free takes over one whose flow closed more than `natPortHoldMs` ago.
 *
 * Checksums are patched incrementally (csum_diff + l3/l4_csum_replace), which
 * also keeps CHECKSUM_PARTIAL packets right. Packets leave through
 * bpf_redirect_neigh on the interface that reaches the destination, so the
 * balancer needs no IP forwarding for NAT. In NAT mode the balancer is a
 * routing hop: it decrements the TTL (IPv4, with the header checksum) or hop
 * limit (IPv6) of what it forwards, and hands a packet that would expire to
 * the kernel instead. DSR forwards at layer 2 and leaves the TTL alone.
 * Headers are read with direct packet access, falling back to
 * bpf_skb_load_bytes when they are not in the skb's linear part.
 * Anything else goes on untouched.
 */
import { Assembler, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, type AssembledProgram, type Register } from "../asm/assembler.js";
import { bytes, struct, u16, u16be, u32, u64, type Codec } from "../core/codec.js";
import { describeValue, expectInteger, expectObject, expectOneOf } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";

export type BalancerProtocol = "tcp" | "udp";
export type BalancerMode = "nat" | "dsr";

export interface BalancerProgramOptions {
  /** 4 or 16 bytes. */
  vip: Buffer;
  port: number;
  protocol: BalancerProtocol;
  mode: BalancerMode;
  /** Slots in one half of the Maglev table (prime). */
  tableSize: number;
  /** Source ports the balancer allocates to NATed flows, inclusive. */
  natPorts: { first: number; last: number };
  /**
   * How long a closed TCP flow (a RST either way, or a FIN each way) keeps
   * its NAT port, so that its last packets are still translated; after it, a
   * new flow that finds no free port may take that one over. Default 5,000.
   */
  natPortHoldMs?: number;
}

export const defaultNatPortHoldMs = 5000;

export const maximumBackends = 256;
/** Stats slot for packets to the VIP that found no backend or no free NAT port. */
export const droppedSlot = maximumBackends;
export const noBackend = 0xffffffff;

export const balancerMapNames = { backends: "lb_backends", maglev: "lb_maglev", control: "lb_control", conntrack: "lb_conntrack", reverse: "lb_reverse", stats: "lb_stats" } as const;

export const BackendState = { Absent: 0, Active: 1, Draining: 2 } as const;

export interface BackendEntry {
  address: Buffer;
  natSource: Buffer;
  port: number;
  state: number;
  interfaceIndex: number;
}

/** lb_backends value: 48 bytes. */
export const backendEntryCodec: Codec<BackendEntry> = struct({
  address: bytes(16), natSource: bytes(16), port: u16be, family: u16, state: u32, interfaceIndex: u32, reserved: u32,
}) as unknown as Codec<BackendEntry>;

export interface BackendStats {
  packets: bigint;
  bytes: bigint;
  flows: bigint;
  replyPackets: bigint;
  replyBytes: bigint;
}

export const backendStatsCodec: Codec<BackendStats> = struct({ packets: u64, bytes: u64, flows: u64, replyPackets: u64, replyBytes: u64 });

/** A flow key as the program writes it: source, destination, ports (network order), protocol. 40 bytes. */
export interface FlowKey {
  source: Buffer;
  destination: Buffer;
  sourcePort: number;
  destinationPort: number;
  protocol: number;
}

export const flowKeyCodec: Codec<FlowKey> = struct({
  source: bytes(16), destination: bytes(16), sourcePort: u16be, destinationPort: u16be, protocol: u32,
}) as unknown as Codec<FlowKey>;

export interface ConntrackEntry {
  backend: number;
  natPort: number;
}

export const conntrackCodec: Codec<ConntrackEntry> = struct({ backend: u32, natPort: u16be, reserved: u16 }) as unknown as Codec<ConntrackEntry>;

export interface ReverseEntry {
  client: Buffer;
  clientPort: number;
  interfaceIndex: number;
  backend: number;
  /** TCP: closingClientFin | closingBackendFin | closingReset, as seen so far. */
  closing: number;
  /** bpf_ktime_get_ns() of the last FIN or RST that found the flow closed; 0 while it is open. */
  closedAt: bigint;
}

export const closingClientFin = 1;
export const closingBackendFin = 2;
export const closingReset = 4;

/** lb_reverse value: 40 bytes. */
export const reverseCodec: Codec<ReverseEntry> = struct({
  client: bytes(16), clientPort: u16be, reserved: u16, interfaceIndex: u32, backend: u32, closing: u32, closedAt: u64,
}) as unknown as Codec<ReverseEntry>;

export const controlCodec = struct({ activeTable: u32, reserved: u32 });

// __sk_buff offsets (UAPI).
const skbLength = 0;
const skbProtocol = 16;
const skbInterfaceIndex = 40;
const skbData = 76;
const skbDataEnd = 80;

const ethernetHeader = 14;
const tcActionShot = 2;
const tcxNext = -1;
const pseudoHeaderFlag = 0x10;
const mangledZeroFlag = 0x20;
const noExist = 1;

// Stack layout (offsets from r10).
const flowKey = -40; // source[16] @-40, destination[16] @-24, ports @-8, protocol @-4
const keySource = -40;
const keyDestination = -24;
const keyPorts = -8;
const keyProtocol = -4;
const header = -80; // copy of the IP header (40 bytes)
const newAddresses = -128; // new source then new destination (8 or 32 bytes)
const newPorts = -136; // new source port, new destination port
const entryScratch = -176; // a conntrack or reverse value being built (40 bytes)
const reverseKey = -216; // a reverse map key being built (40 bytes)
const indexScratch = -224; // a u32 map key
const savedHash = -232;
const savedBackendId = -240;
const savedIngress = -248;
const neighbourParameters = -272; // struct bpf_redir_neigh: family u32, address[16]
const ttlScratch = -280; // the new TTL (and protocol) bytes
const tcpFlags = -288; // the TCP header's flag byte (u8)
const oldFlowKey = -336; // the client flow key of a closed flow whose NAT port is taken over (40 bytes)
const savedReverse = -344; // a reverse entry pointer kept across a helper call
const savedClosedAt = -352;

const tcpFlagsOffset = 13;
const tcpFin = 0x01;
const tcpSyn = 0x02;
const tcpReset = 0x04;
const tcpAck = 0x10;

function littleEndianWords(address: Buffer): number[] {
  const words: number[] = [];
  for (let i = 0; i < address.length; i += 4) words.push(address.readUInt32LE(i));
  return words;
}

/**
 * Hashed candidates a new flow tries for its NAT port. Ports of UDP flows,
 * and of TCP flows that end without FIN or RST, stay taken until the LRU map
 * evicts them, so a new flow finds no free candidate (its SYN is dropped)
 * with probability share^candidates: at 25%, 1 in 256 with 4 candidates,
 * 1 in 4·10^9 with 16. (With 4, the test's 6,000 connections to 3 backends
 * dropped a SYN in about one run in 14.)
 */
const natPortCandidates = 16;

/** A port in network order, as a little-endian u16 load of the packet reads it. */
function portAsLoaded(port: number): number {
  return ((port & 0xff) << 8) | (port >> 8);
}

/**
 * The reverse map key of the backend entry in r7, all but the NAT port (at
 * reverseKey + 34): the flow key of the backend's replies, backend → our NAT
 * address.
 */
function reverseKeyOfBackend(a: Assembler, protocolNumber: number): void {
  for (let i = 0; i < 16; i += 4) {
    a.load("u32", R1, R7, i).store("u32", R10, reverseKey + i, R1); // source: backend address
    a.load("u32", R1, R7, 16 + i).store("u32", R10, reverseKey + 16 + i, R1); // destination: NAT address
  }
  a.load("u16", R1, R7, 32).store("u16", R10, reverseKey + 32, R1);
  a.store("u32", R10, reverseKey + 36, protocolNumber);
}

/** The NAT port a new flow tries in its given attempt, from the flow hash saved on the stack, into r1. */
function natPortCandidate(a: Assembler, attempt: number, natPorts: { first: number; last: number }): void {
  a.load("u64", R1, R10, savedHash).rightShift64(R1, 7).add64(R1, attempt * 7919).mod64(R1, natPorts.last - natPorts.first + 1).add64(R1, natPorts.first);
}

/**
 * Record a FIN or RST in the reverse entry at `entry` (a callee-saved
 * register); r1 holds the closing bits it brings. The two directions may run
 * on two CPUs at once, so the bits are or-ed atomically; once a RST or a FIN
 * each way has been seen, the flow is closed as of now.
 */
function markClosing(a: Assembler, entry: Register, done: string): void {
  a.mov64(R2, R1);
  a.atomic("u32", "or", entry, 28, R1, { fetch: true });
  a.or64(R1, R2);
  a.jumpIf(R1, "&", closingReset, `${done}_closed`);
  a.and64(R1, closingClientFin | closingBackendFin).jumpIf(R1, "!=", closingClientFin | closingBackendFin, done);
  a.label(`${done}_closed`);
  a.call("ktime_get_ns").store("u64", entry, 32, R0);
  a.label(done);
}

export function balancerProgram(options: BalancerProgramOptions): AssembledProgram {
  const operation = "generate balancer program";
  expectObject(operation, "options", options);
  if (!(options.vip instanceof Uint8Array) || (options.vip.length !== 4 && options.vip.length !== 16)) {
    throw new UsageError(operation, `options.vip must be a 4- or 16-byte Buffer, got ${describeValue(options.vip)}`);
  }
  expectInteger(operation, "options.port", options.port, 0, 0xffff);
  expectOneOf(operation, "options.protocol", options.protocol, ["tcp", "udp"]);
  expectOneOf(operation, "options.mode", options.mode, ["nat", "dsr"]);
  expectInteger(operation, "options.tableSize", options.tableSize, 1);
  expectObject(operation, "options.natPorts", options.natPorts);
  expectInteger(operation, "options.natPorts.first", options.natPorts.first, 1, 0xffff);
  expectInteger(operation, "options.natPorts.last", options.natPorts.last, options.natPorts.first, 0xffff);
  const natPortHoldMs = options.natPortHoldMs ?? defaultNatPortHoldMs;
  expectInteger(operation, "options.natPortHoldMs", natPortHoldMs, 0, 24 * 3600 * 1000);
  // Only TCP says when a flow ends.
  const releasesPorts = options.mode === "nat" && options.protocol === "tcp";
  const ipv6 = options.vip.length === 16;
  const protocolNumber = options.protocol === "tcp" ? 6 : 17;
  const checksumOffset = options.protocol === "tcp" ? 16 : 6;
  const l4Flags = options.protocol === "udp" ? mangledZeroFlag : 0;
  const addressLength = ipv6 ? 16 : 4;
  // Where the addresses sit in the IP header (source then destination, contiguous).
  const headerAddresses = ipv6 ? 8 : 12;
  const a = new Assembler();

  a.mov64(R6, R1);
  a.load("u32", R7, R6, skbProtocol);
  a.jumpIf32(R7, "!=", ipv6 ? 0xdd86 : 0x0008, "next");
  for (let offset = -40; offset < 0; offset += 8) a.store("u64", R10, offset, 0);
  a.store("u64", R10, newPorts, 0);

  // Parse: copy the IP header, find the L4 header (r8 = its offset), fill the flow key.
  // Direct packet access when the headers are in the linear part (the usual
  // case); bpf_skb_load_bytes only when they are not.
  const headerLength = ipv6 ? 40 : 20;
  a.load("u32", R2, R6, skbData).load("u32", R3, R6, skbDataEnd);
  a.mov64(R1, R2).add64(R1, ethernetHeader + headerLength).jumpIf(R1, ">", R3, "load_header");
  for (let i = 0; i < headerLength; i += 4) a.load("u32", R1, R2, ethernetHeader + i).store("u32", R10, header + i, R1);
  a.jump("header_copied");
  a.label("load_header");
  a.mov64(R1, R6).mov64(R2, ethernetHeader).mov64(R3, R10).add64(R3, header).mov64(R4, headerLength).call("skb_load_bytes");
  a.jumpIf(R0, "!=", 0, "next");
  a.label("header_copied");
  if (ipv6) {
    a.load("u8", R1, R10, header + 6).jumpIf(R1, "!=", protocolNumber, "next");
    for (let i = 0; i < 32; i += 4) a.load("u32", R1, R10, header + 8 + i).store("u32", R10, flowKey + i, R1);
    a.mov64(R8, ethernetHeader + 40);
  } else {
    a.load("u8", R1, R10, header + 9).jumpIf(R1, "!=", protocolNumber, "next");
    // Fragments other than a first fragment with no more to come carry no ports: leave them alone.
    a.load("u16", R1, R10, header + 6).and64(R1, 0xff3f).jumpIf(R1, "!=", 0, "next");
    a.load("u32", R1, R10, header + 12).store("u32", R10, keySource, R1);
    a.load("u32", R1, R10, header + 16).store("u32", R10, keyDestination, R1);
    a.load("u8", R8, R10, header).and64(R8, 0x0f).leftShift64(R8, 2).add64(R8, ethernetHeader);
  }
  // The ports (and for TCP the flag byte, which tells a new connection's SYN).
  const l4Read = options.protocol === "tcp" ? tcpFlagsOffset + 1 : 4;
  a.load("u32", R2, R6, skbData).load("u32", R3, R6, skbDataEnd);
  a.add64(R2, R8).mov64(R1, R2).add64(R1, l4Read).jumpIf(R1, ">", R3, "load_ports");
  a.load("u32", R1, R2, 0).store("u32", R10, keyPorts, R1);
  if (options.protocol === "tcp") a.load("u8", R1, R2, tcpFlagsOffset).store("u8", R10, tcpFlags, R1);
  a.jump("ports_copied");
  a.label("load_ports");
  a.mov64(R1, R6).mov64(R2, R8).mov64(R3, R10).add64(R3, keyPorts).mov64(R4, 4).call("skb_load_bytes");
  a.jumpIf(R0, "!=", 0, "next");
  if (options.protocol === "tcp") {
    a.mov64(R1, R6).mov64(R2, R8).add64(R2, tcpFlagsOffset).mov64(R3, R10).add64(R3, tcpFlags).mov64(R4, 1).call("skb_load_bytes");
    a.jumpIf(R0, "!=", 0, "next");
  }
  a.label("ports_copied");
  a.store("u32", R10, keyProtocol, protocolNumber);

  // To the VIP?
  littleEndianWords(options.vip).forEach((word, i) => {
    a.load("u32", R1, R10, keyDestination + 4 * i).jumpIf32(R1, "!=", word, "reply");
  });
  a.load("u16", R1, R10, keyPorts + 2).jumpIf(R1, "!=", portAsLoaded(options.port), "reply");

  // ---- forward path ----
  a.mov64(R2, R10).add64(R2, flowKey).loadMapFd(R1, balancerMapNames.conntrack).call("map_lookup_elem");
  a.jumpIf(R0, "==", 0, "pick");
  a.load("u32", R9, R0, 0);
  a.load("u16", R1, R0, 4).store("u16", R10, newPorts, R1);
  a.store("u32", R10, indexScratch, R9);
  a.mov64(R2, R10).add64(R2, indexScratch).loadMapFd(R1, balancerMapNames.backends).call("map_lookup_elem");
  a.jumpIf(R0, "==", 0, "pick");
  a.load("u32", R1, R0, 36).jumpIf(R1, "==", 0, "pick"); // removed since: choose again
  a.mov64(R7, R0);
  if (options.protocol === "tcp") {
    // One test keeps the common segment (no SYN, FIN or RST) on the short path.
    a.load("u8", R1, R10, tcpFlags).jumpIf(R1, "&", tcpSyn | (releasesPorts ? tcpFin | tcpReset : 0), "syn_fin_or_reset");
    a.jump("rewrite_forward");
    a.label("syn_fin_or_reset");
    a.and64(R1, tcpSyn | tcpAck).jumpIf(R1, "!=", tcpSyn, releasesPorts ? "client_closing" : "rewrite_forward");
    // A new connection on the 5-tuple of an old one: forget the old flow's NAT port, then pick again.
    if (options.mode === "nat") {
      reverseKeyOfBackend(a, protocolNumber);
      a.load("u16", R1, R10, newPorts).store("u16", R10, reverseKey + 34, R1);
      a.mov64(R2, R10).add64(R2, reverseKey).loadMapFd(R1, balancerMapNames.reverse).call("map_delete_elem");
    }
    a.store("u64", R10, newPorts, 0);
    a.jump("pick");
    if (releasesPorts) {
      // The client's FIN or RST: mark the flow's reverse entry.
      a.label("client_closing");
      a.load("u8", R1, R10, tcpFlags).and64(R1, tcpFin | tcpReset).jumpIf(R1, "==", 0, "rewrite_forward");
      reverseKeyOfBackend(a, protocolNumber);
      a.load("u16", R1, R10, newPorts).store("u16", R10, reverseKey + 34, R1);
      a.mov64(R2, R10).add64(R2, reverseKey).loadMapFd(R1, balancerMapNames.reverse).call("map_lookup_elem");
      a.jumpIf(R0, "==", 0, "rewrite_forward");
      a.store("u64", R10, savedBackendId, R9);
      a.mov64(R9, R0);
      a.load("u8", R1, R10, tcpFlags).and64(R1, tcpFin | tcpReset); // the client's bits are the flags' own
      markClosing(a, R9, "client_marked");
      a.load("u64", R9, R10, savedBackendId);
      a.jump("rewrite_forward");
    }
  } else {
    a.jump("rewrite_forward");
  }

  a.label("pick");
  a.mov64(R1, R6).call("get_hash_recalc");
  a.mov32(R0, R0); // the hash is u32: clear the upper half
  a.store("u64", R10, savedHash, R0);
  a.store("u32", R10, indexScratch, 0);
  a.mov64(R2, R10).add64(R2, indexScratch).loadMapFd(R1, balancerMapNames.control).call("map_lookup_elem");
  a.jumpIf(R0, "==", 0, "drop");
  a.load("u32", R9, R0, 0).and64(R9, 1).mul64(R9, options.tableSize);
  a.load("u64", R1, R10, savedHash).mod64(R1, options.tableSize).add64(R9, R1);
  a.store("u32", R10, indexScratch, R9);
  a.mov64(R2, R10).add64(R2, indexScratch).loadMapFd(R1, balancerMapNames.maglev).call("map_lookup_elem");
  a.jumpIf(R0, "==", 0, "drop");
  a.load("u32", R9, R0, 0);
  a.jumpIf32(R9, ">=", maximumBackends, "drop");
  a.store("u32", R10, indexScratch, R9);
  a.mov64(R2, R10).add64(R2, indexScratch).loadMapFd(R1, balancerMapNames.backends).call("map_lookup_elem");
  a.jumpIf(R0, "==", 0, "drop");
  a.load("u32", R1, R0, 36).jumpIf(R1, "==", 0, "drop");
  a.mov64(R7, R0); // r7: the backend entry, r9: its id
  a.store("u64", R10, savedBackendId, R9);

  if (options.mode === "nat") {
    reverseKeyOfBackend(a, protocolNumber);
    // Reverse value: the client, where it came in, which backend.
    for (let i = 0; i < 16; i += 4) a.load("u32", R1, R10, keySource + i).store("u32", R10, entryScratch + i, R1);
    a.load("u16", R1, R10, keyPorts).store("u16", R10, entryScratch + 16, R1);
    a.store("u16", R10, entryScratch + 18, 0);
    a.load("u32", R1, R6, skbInterfaceIndex).store("u32", R10, entryScratch + 20, R1);
    a.store("u32", R10, entryScratch + 24, R9);
    a.store("u32", R10, entryScratch + 28, 0);
    a.store("u64", R10, entryScratch + 32, 0);
    // A NAT port: hashed candidates; one that is taken fails NOEXIST.
    for (let attempt = 0; attempt < natPortCandidates; attempt++) {
      natPortCandidate(a, attempt, options.natPorts);
      a.toBigEndian(R1, 16).store("u16", R10, reverseKey + 34, R1);
      a.mov64(R2, R10).add64(R2, reverseKey).mov64(R3, R10).add64(R3, entryScratch).mov64(R4, noExist)
        .loadMapFd(R1, balancerMapNames.reverse).call("map_update_elem");
      a.jumpIf(R0, "==", 0, "port_found");
    }
    if (releasesPorts) {
      // None free: take over a candidate whose flow closed more than the hold time ago.
      for (let attempt = 0; attempt < natPortCandidates; attempt++) {
        const next = `takeover_${attempt + 1}`;
        natPortCandidate(a, attempt, options.natPorts);
        a.toBigEndian(R1, 16).store("u16", R10, reverseKey + 34, R1);
        a.mov64(R2, R10).add64(R2, reverseKey).loadMapFd(R1, balancerMapNames.reverse).call("map_lookup_elem");
        a.jumpIf(R0, "==", 0, next);
        a.load("u64", R1, R0, 32).jumpIf(R1, "==", 0, next);
        a.store("u64", R10, savedReverse, R0).store("u64", R10, savedClosedAt, R1);
        a.call("ktime_get_ns");
        a.load("u64", R1, R10, savedClosedAt).sub64(R0, R1);
        a.loadImmediate64(R1, BigInt(natPortHoldMs) * 1_000_000n).jumpIf(R0, "<=", R1, next);
        // Claim it: of two CPUs taking over the same port, only one sees its closedAt unchanged.
        a.load("u64", R1, R10, savedReverse).load("u64", R0, R10, savedClosedAt).mov64(R2, 0);
        a.atomicCompareExchange("u64", R1, 32, R2);
        a.load("u64", R2, R10, savedClosedAt).jumpIf(R0, "!=", R2, next);
        a.jump("take_over");
        a.label(next);
      }
      a.jump("drop");

      // r1: the claimed reverse entry. Forget its flow (if the client's flow key still leads to this port), then overwrite it.
      a.label("take_over");
      for (let i = 0; i < 16; i += 4) {
        a.load("u32", R2, R1, i).store("u32", R10, oldFlowKey + i, R2);
        a.load("u32", R2, R10, keyDestination + i).store("u32", R10, oldFlowKey + 16 + i, R2);
      }
      a.load("u16", R2, R1, 16).store("u16", R10, oldFlowKey + 32, R2);
      a.load("u16", R2, R10, keyPorts + 2).store("u16", R10, oldFlowKey + 34, R2);
      a.store("u32", R10, oldFlowKey + 36, protocolNumber);
      a.mov64(R2, R10).add64(R2, oldFlowKey).loadMapFd(R1, balancerMapNames.conntrack).call("map_lookup_elem");
      a.jumpIf(R0, "==", 0, "old_flow_gone");
      a.load("u32", R1, R0, 0).jumpIf(R1, "!=", R9, "old_flow_gone");
      a.load("u16", R1, R0, 4).load("u16", R2, R10, reverseKey + 34).jumpIf(R1, "!=", R2, "old_flow_gone");
      a.mov64(R2, R10).add64(R2, oldFlowKey).loadMapFd(R1, balancerMapNames.conntrack).call("map_delete_elem");
      a.label("old_flow_gone");
      a.mov64(R2, R10).add64(R2, reverseKey).mov64(R3, R10).add64(R3, entryScratch).mov64(R4, 0)
        .loadMapFd(R1, balancerMapNames.reverse).call("map_update_elem");
      a.jumpIf(R0, "!=", 0, "drop");
    } else {
      a.jump("drop");
    }
    a.label("port_found");
    a.load("u16", R1, R10, reverseKey + 34).store("u16", R10, newPorts, R1);
  }
  // Remember the flow.
  a.load("u64", R9, R10, savedBackendId);
  a.store("u32", R10, entryScratch, R9);
  a.load("u16", R1, R10, newPorts).store("u16", R10, entryScratch + 4, R1);
  a.store("u16", R10, entryScratch + 6, 0);
  a.mov64(R2, R10).add64(R2, flowKey).mov64(R3, R10).add64(R3, entryScratch).mov64(R4, 0)
    .loadMapFd(R1, balancerMapNames.conntrack).call("map_update_elem");
  a.store("u32", R10, indexScratch, R9);
  a.mov64(R2, R10).add64(R2, indexScratch).loadMapFd(R1, balancerMapNames.stats).call("map_lookup_elem");
  a.jumpIf(R0, "==", 0, "rewrite_forward");
  a.load("u64", R1, R0, 16).add64(R1, 1).store("u64", R0, 16, R1);

  a.label("rewrite_forward");
  // r7: backend entry, r9: backend id. Count the packet.
  a.store("u32", R10, indexScratch, R9);
  a.mov64(R2, R10).add64(R2, indexScratch).loadMapFd(R1, balancerMapNames.stats).call("map_lookup_elem");
  a.jumpIf(R0, "==", 0, "counted_forward");
  a.load("u64", R1, R0, 0).add64(R1, 1).store("u64", R0, 0, R1);
  a.load("u32", R2, R6, skbLength).load("u64", R1, R0, 8).add64(R1, R2).store("u64", R0, 8, R1);
  a.label("counted_forward");
  if (options.mode === "dsr") {
    // DSR: the packet stays as it is and goes to the backend's MAC (it has the VIP on a loopback).
    a.store("u32", R10, neighbourParameters, ipv6 ? 10 : 2);
    for (let i = 0; i < addressLength; i += 4) a.load("u32", R1, R7, i).store("u32", R10, neighbourParameters + 4 + i, R1);
    a.load("u32", R1, R7, 40).mov64(R2, R10).add64(R2, neighbourParameters).mov64(R3, 20).mov64(R4, 0).call("redirect_neigh");
    a.exit();
  } else {
    for (let i = 0; i < addressLength; i += 4) {
      a.load("u32", R1, R7, 16 + i).store("u32", R10, newAddresses + i, R1); // source: our NAT address
      a.load("u32", R1, R7, i).store("u32", R10, newAddresses + addressLength + i, R1); // destination: backend
    }
    a.load("u16", R1, R7, 32).store("u16", R10, newPorts + 2, R1);
    a.load("u32", R1, R7, 40).store("u64", R10, savedIngress, R1);
    a.jump("rewrite");
  }

  // ---- reply path: the reply's own flow key is the reverse map's key ----
  a.label("reply");
  if (options.mode === "dsr") {
    a.jump("next");
  } else {
    // Only a packet to one of our NAT ports can be a reply: skip the lookup for the rest.
    a.load("u16", R1, R10, keyPorts + 2).toBigEndian(R1, 16)
      .jumpIf(R1, "<", options.natPorts.first, "next").jumpIf(R1, ">", options.natPorts.last, "next");
    a.mov64(R2, R10).add64(R2, flowKey).loadMapFd(R1, balancerMapNames.reverse).call("map_lookup_elem");
    a.jumpIf(R0, "==", 0, "next");
    a.mov64(R7, R0);
    if (releasesPorts) {
      // The backend's FIN or RST: mark the entry.
      a.load("u8", R1, R10, tcpFlags).jumpIf(R1, "&", tcpFin | tcpReset, "backend_closing");
      a.label("backend_marked");
    }
    littleEndianWords(options.vip).forEach((word, i) => a.store("u32", R10, newAddresses + i * 4, word));
    for (let i = 0; i < addressLength; i += 4) a.load("u32", R1, R7, i).store("u32", R10, newAddresses + addressLength + i, R1);
    a.store("u16", R10, newPorts, portAsLoaded(options.port));
    a.load("u16", R1, R7, 16).store("u16", R10, newPorts + 2, R1);
    a.load("u32", R1, R7, 20).store("u64", R10, savedIngress, R1);
    a.load("u32", R1, R7, 24).store("u32", R10, indexScratch, R1);
    a.mov64(R2, R10).add64(R2, indexScratch).loadMapFd(R1, balancerMapNames.stats).call("map_lookup_elem");
    a.jumpIf(R0, "==", 0, "rewrite");
    a.load("u64", R1, R0, 24).add64(R1, 1).store("u64", R0, 24, R1);
    a.load("u32", R2, R6, skbLength).load("u64", R1, R0, 32).add64(R1, R2).store("u64", R0, 32, R1);

    // ---- NAT rewrite: addresses at newAddresses, ports at newPorts, out through savedIngress ----
    a.label("rewrite");
    // The balancer is a routing hop: one less TTL / hop limit. An expiring packet goes to the kernel (which answers it as a router does).
    if (ipv6) {
      a.load("u8", R1, R10, header + 7).jumpIf(R1, "<=", 1, "next").sub64(R1, 1).store("u8", R10, ttlScratch, R1);
      a.mov64(R1, R6).mov64(R2, ethernetHeader + 7).mov64(R3, R10).add64(R3, ttlScratch).mov64(R4, 1).mov64(R5, 0).call("skb_store_bytes");
      a.jumpIf(R0, "!=", 0, "drop");
    } else {
      // The TTL and protocol bytes as one 16-bit word, as the header checksum sums them.
      a.load("u16", R3, R10, header + 8).mov64(R1, R3).and64(R1, 0xff).jumpIf(R1, "<=", 1, "next");
      a.mov64(R4, R3).sub64(R4, 1).store("u16", R10, ttlScratch, R4);
      a.mov64(R1, R6).mov64(R2, ethernetHeader + 10).mov64(R5, 2).call("l3_csum_replace");
      a.jumpIf(R0, "!=", 0, "drop");
      a.mov64(R1, R6).mov64(R2, ethernetHeader + 8).mov64(R3, R10).add64(R3, ttlScratch).mov64(R4, 2).mov64(R5, 0).call("skb_store_bytes");
      a.jumpIf(R0, "!=", 0, "drop");
    }
    a.mov64(R1, R10).add64(R1, header + headerAddresses).mov64(R2, 2 * addressLength)
      .mov64(R3, R10).add64(R3, newAddresses).mov64(R4, 2 * addressLength).mov64(R5, 0).call("csum_diff");
    a.mov64(R9, R0);
    if (!ipv6) {
      a.mov64(R1, R6).mov64(R2, ethernetHeader + 10).mov64(R3, 0).mov64(R4, R9).mov64(R5, 0).call("l3_csum_replace");
      a.jumpIf(R0, "!=", 0, "drop");
    }
    a.mov64(R1, R6).mov64(R2, R8).add64(R2, checksumOffset).mov64(R3, 0).mov64(R4, R9).mov64(R5, pseudoHeaderFlag | l4Flags).call("l4_csum_replace");
    a.jumpIf(R0, "!=", 0, "drop");
    a.mov64(R1, R10).add64(R1, keyPorts).mov64(R2, 4).mov64(R3, R10).add64(R3, newPorts).mov64(R4, 4).mov64(R5, 0).call("csum_diff");
    a.mov64(R4, R0);
    a.mov64(R1, R6).mov64(R2, R8).add64(R2, checksumOffset).mov64(R3, 0).mov64(R5, l4Flags).call("l4_csum_replace");
    a.jumpIf(R0, "!=", 0, "drop");
    a.mov64(R1, R6).mov64(R2, ethernetHeader + headerAddresses).mov64(R3, R10).add64(R3, newAddresses).mov64(R4, 2 * addressLength).mov64(R5, 0).call("skb_store_bytes");
    a.jumpIf(R0, "!=", 0, "drop");
    a.mov64(R1, R6).mov64(R2, R8).mov64(R3, R10).add64(R3, newPorts).mov64(R4, 4).mov64(R5, 0).call("skb_store_bytes");
    a.jumpIf(R0, "!=", 0, "drop");
    a.load("u64", R1, R10, savedIngress).mov64(R2, 0).mov64(R3, 0).mov64(R4, 0).call("redirect_neigh");
    a.exit();

    if (releasesPorts) {
      // Out of line, so that a reply without FIN or RST does not jump over it.
      a.label("backend_closing");
      a.mov64(R2, R1).and64(R2, tcpFin).leftShift64(R2, 1).and64(R1, tcpReset).or64(R1, R2); // FIN → closingBackendFin, RST → closingReset
      markClosing(a, R7, "backend_mark_done");
      a.jump("backend_marked");
    }
  }

  a.label("drop");
  a.store("u32", R10, indexScratch, droppedSlot);
  a.mov64(R2, R10).add64(R2, indexScratch).loadMapFd(R1, balancerMapNames.stats).call("map_lookup_elem");
  a.jumpIf(R0, "==", 0, "shot");
  a.load("u64", R1, R0, 0).add64(R1, 1).store("u64", R0, 0, R1);
  a.label("shot");
  a.return(tcActionShot);

  a.label("next");
  a.return(tcxNext);
  return a.finish();
}
