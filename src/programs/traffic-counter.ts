/**
 * The traffic counter behind `netbpf top` and `netbpf serve`: a cgroup skb
 * (or tc) program, generated with the Assembler, that counts packets and
 * bytes per key in a per-CPU LRU hash map. User space never sees a packet;
 * it reads the map with batch lookups.
 *
 * The key holds only what the grouping needs (the program is specialised to
 * it), so `--by port` keeps one entry per local port however many peers talk
 * to it. Entries are created with BPF_NOEXIST; every creation is counted, so
 * creations minus entries present = entries the LRU evicted.
 *
 * The value also keeps the first socket cookie seen (for the owning process).
 *
 * What is counted, per packet (an skb; a GSO/GRO skb stands for several
 * packets on the wire, `gso_segs` of them):
 *  - packets: max(gso_segs, 1);
 *  - bytes: IP bytes as on the wire: the skb's length from the IP header on
 *    (link headers excluded), plus the IP and transport headers of every
 *    segment after the first (the skb holds them once);
 *  - payload: transport payload (after the TCP/UDP header; after the IP
 *    header for other protocols): skb length - headers.
 */
import { Assembler, R0, R1, R2, R3, R4, R6, R7, R8, R9, R10, type AssembledProgram } from "../asm/assembler.js";
import { emitRecordCurrentProcess } from "./current-process.js";
import { expectBoolean, expectPorts, expectInteger, expectObject, expectOneOf } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { addToCounter } from "./add-to-counter.js";
import { expectFilterEmitter, type CaptureFilterEmitter } from "./capture-program.js";

export const trafficCountsName = "traffic_counts";
export const trafficStatisticsName = "traffic_stats";
export const trafficProcessesName = "capture_procs";
export const trafficPortOwnersName = "traffic_owners";

export type TrafficGrouping = "port" | "conn" | "process" | "remote";
export const trafficGroupings: readonly TrafficGrouping[] = ["port", "conn", "process", "remote"];

/** Keys of the statistics array (per-CPU u64 counters). */
export const TrafficStatistic = {
  /** Map entries created (evictions = created - present). */
  created: 0,
  /** Map entries that could not be created (counts lost). */
  createFailed: 1,
  /** Packets that reached the program. */
  seen: 2,
} as const;
export const trafficStatisticKinds = 3;

/** Key layout (bytes). */
export const trafficKeySize = 56;
export const TrafficKeyOffset = {
  family: 0,
  protocol: 1,
  localPort: 2,
  remotePort: 4,
  ifindex: 8,
  cookie: 16,
  localAddress: 24,
  remoteAddress: 40,
} as const;

/** Value layout (bytes), one per CPU: in and out counters, and the first socket cookie seen. */
export const trafficValueSize = 72;
export const TrafficValueOffset = {
  packetsIn: 0,
  bytesIn: 8,
  payloadIn: 16,
  packetsOut: 24,
  bytesOut: 32,
  payloadOut: 40,
  cookie: 48,
  /** CLOCK_MONOTONIC ns of the first packet this CPU counted for the key (0: none, or times not asked for). */
  firstSeen: 56,
  /** CLOCK_MONOTONIC ns of the last packet this CPU counted. */
  lastSeen: 64,
} as const;

/** Bytes of a port-owner value and of a process value: pid (u32), 4 bytes padding, command (16 bytes). */
export const trafficOwnerValueSize = 24;

export interface TrafficCounterOptions {
  hook: "cgroup" | "tc";
  direction: "ingress" | "egress";
  /** Bytes before the IP header (14 on Ethernet tc hooks; 0 for cgroup skb and raw-IP devices). */
  linkHeaderLength: number;
  by: TrafficGrouping;
  /** Key by interface too (the skb's ifindex). */
  perInterface?: boolean;
  /** Count only packets whose local or remote port is one of these (TCP/UDP). */
  ports?: readonly number[];
  /** Record the socket cookie (for the owning process). */
  processes?: boolean;
  /** Record when each key saw its first and last packet (one bpf_ktime_get_ns per packet). */
  times?: boolean;
  filter?: CaptureFilterEmitter;
}

/** __sk_buff fields (UAPI context offsets, rewritten by the verifier). */
const skbLength = 0;
const skbProtocol = 16;
const skbIfindex = 40;
const skbGsoSegments = 164;
/** skb->protocol as a little-endian load of the big-endian EtherType. */
const protocolIpv4 = 0x0008;
const protocolIpv6 = 0xdd86;
const updateNoExist = 1;

/** Stack layout. */
const keySlot = -56;
const headerSlot = -120;
const transportSlot = headerSlot + 40;
const valueSlot = -192;
const protocolSlot = -200;

/** What the key holds for each grouping. */
export function trafficKeyFields(by: TrafficGrouping): { family: boolean; protocol: boolean; localPort: boolean; remotePort: boolean; localAddress: boolean; remoteAddress: boolean; cookie: boolean } {
  switch (by) {
    case "port":
      return { family: false, protocol: true, localPort: true, remotePort: false, localAddress: false, remoteAddress: false, cookie: false };
    case "conn":
      return { family: true, protocol: true, localPort: true, remotePort: true, localAddress: true, remoteAddress: true, cookie: false };
    case "remote":
      return { family: true, protocol: false, localPort: false, remotePort: false, localAddress: false, remoteAddress: true, cookie: false };
    case "process":
      return { family: false, protocol: true, localPort: true, remotePort: false, localAddress: false, remoteAddress: false, cookie: true };
  }
}

/** Generates the counting program for one hook and direction. */
export function trafficCounterProgram(options: TrafficCounterOptions): AssembledProgram {
  const operation = "traffic counter";
  expectObject(operation, "options", options);
  expectOneOf(operation, "options.hook", options.hook, ["cgroup", "tc"]);
  expectOneOf(operation, "options.direction", options.direction, ["ingress", "egress"]);
  expectInteger(operation, "options.linkHeaderLength", options.linkHeaderLength, 0, 255);
  expectOneOf(operation, "options.by", options.by, trafficGroupings);
  for (const flag of ["perInterface", "processes", "times"] as const) expectBoolean(operation, `options.${flag}`, options[flag], true);
  if (options.filter !== undefined) expectFilterEmitter(operation, "options.filter", options.filter);
  const ports = [...new Set(expectPorts(operation, "options.ports", options.ports))];
  if (ports.length > 64) throw new UsageError("traffic counter", `at most 64 ports, got ${ports.length}`, "use a filter expression (portrange) for more");
  const fields = trafficKeyFields(options.by);
  const ingress = options.direction === "ingress";
  // Verdict that lets the packet go on: 1 (allow) for cgroup skb, TCX_NEXT for tc. Every exit returns it.
  const allow = options.hook === "cgroup" ? 1 : -1;
  const link = options.linkHeaderLength;
  const directionBase = ingress ? TrafficValueOffset.packetsIn : TrafficValueOffset.packetsOut;
  const a = new Assembler();
  a.mov64(R6, R1);
  const seen = a.newLabel("seen_");
  addToCounter(a, trafficStatisticsName, TrafficStatistic.seen, { stackOffset: -4, skip: seen });
  a.label(seen).mov64(R1, R6);

  if (options.filter) {
    options.filter.emit(a, { accept: "accept", reject: "out" });
    a.label("accept");
  }

  // Zero the key and the value to be.
  for (let offset = 0; offset < trafficKeySize; offset += 8) a.store("u64", R10, keySlot + offset, 0);
  for (let offset = 0; offset < trafficValueSize; offset += 8) a.store("u64", R10, valueSlot + offset, 0);
  a.store("u64", R10, protocolSlot, 0);

  a.load("u32", R1, R6, skbProtocol)
    .jumpIf(R1, "==", protocolIpv4, "ipv4")
    .jumpIf(R1, "==", protocolIpv6, "ipv6")
    .jump("out");

  const loadBytes = (offset: number | "r7", slot: number, length: number, fail: string) => {
    a.mov64(R1, R6);
    if (offset === "r7") a.mov64(R2, R7).add64(R2, link);
    else a.mov64(R2, offset);
    a.mov64(R3, R10).add64(R3, slot).mov64(R4, length).call("skb_load_bytes").jumpIf(R0, "!=", 0, fail);
  };
  const copyAddress = (from: number, to: number, words: number) => {
    for (let word = 0; word < words; word++) a.load("u32", R1, R10, headerSlot + from + word * 4).store("u32", R10, keySlot + to + word * 4, R1);
  };

  // IPv4: r7 = header length so far.
  a.label("ipv4");
  loadBytes(link, headerSlot, 20, "out");
  a.load("u8", R7, R10, headerSlot).and64(R7, 0x0f).leftShift64(R7, 2)
    .jumpIf(R7, "<", 20, "out")
    .load("u8", R1, R10, headerSlot + 9).store("u8", R10, protocolSlot, R1);
  if (fields.family) a.store("u8", R10, keySlot + TrafficKeyOffset.family, 4);
  if (fields.localAddress) copyAddress(ingress ? 16 : 12, TrafficKeyOffset.localAddress, 1);
  if (fields.remoteAddress) copyAddress(ingress ? 12 : 16, TrafficKeyOffset.remoteAddress, 1);
  // Later fragments carry no transport header.
  a.load("u16", R1, R10, headerSlot + 6).and64(R1, 0xff1f)
    .jumpIf(R1, "!=", 0, "no_ports")
    .jump("transport");

  a.label("ipv6");
  loadBytes(link, headerSlot, 40, "out");
  a.mov64(R7, 40)
    .load("u8", R1, R10, headerSlot + 6).store("u8", R10, protocolSlot, R1);
  if (fields.family) a.store("u8", R10, keySlot + TrafficKeyOffset.family, 6);
  if (fields.localAddress) copyAddress(ingress ? 24 : 8, TrafficKeyOffset.localAddress, 4);
  if (fields.remoteAddress) copyAddress(ingress ? 8 : 24, TrafficKeyOffset.remoteAddress, 4);

  // Extension headers before the transport header: hop-by-hop (BIG TCP's jumbo option), routing, destination options.
  for (let hop = 0; hop < 3; hop++) {
    const next = a.newLabel("extension_");
    a.load("u8", R1, R10, protocolSlot)
      .jumpIf(R1, "==", 0, `${next}skip`)
      .jumpIf(R1, "==", 43, `${next}skip`)
      .jumpIf(R1, "==", 60, `${next}skip`)
      .jump("transport")
      .label(`${next}skip`);
    loadBytes("r7", transportSlot, 8, "no_ports");
    a.load("u8", R1, R10, transportSlot).store("u8", R10, protocolSlot, R1)
      .load("u8", R1, R10, transportSlot + 1).add64(R1, 1).leftShift64(R1, 3).add64(R7, R1);
  }

  a.label("transport");
  a.load("u8", R1, R10, protocolSlot)
    .jumpIf(R1, "==", 6, "tcp")
    .jumpIf(R1, "==", 17, "udp")
    .jump("no_ports");
  a.label("tcp");
  loadBytes("r7", transportSlot, 20, "no_ports");
  a.load("u8", R1, R10, transportSlot + 12).rightShift64(R1, 4).leftShift64(R1, 2).add64(R7, R1).jump("ports");
  a.label("udp");
  loadBytes("r7", transportSlot, 8, "no_ports");
  a.add64(R7, 8);

  // r8 = local port, r9 = remote port (host order).
  a.label("ports")
    .load("u16", R8, R10, transportSlot + (ingress ? 2 : 0)).toBigEndian(R8, 16)
    .load("u16", R9, R10, transportSlot + (ingress ? 0 : 2)).toBigEndian(R9, 16);
  if (ports.length > 0) {
    for (const port of ports) a.jumpIf(R8, "==", port, "port_match").jumpIf(R9, "==", port, "port_match");
    a.jump("out");
    a.label("port_match");
  }
  if (fields.localPort) a.store("u16", R10, keySlot + TrafficKeyOffset.localPort, R8);
  if (fields.remotePort) a.store("u16", R10, keySlot + TrafficKeyOffset.remotePort, R9);
  a.jump("lengths");

  a.label("no_ports");
  if (ports.length > 0) a.jump("out");

  // r8 = IP bytes of the skb, r9 = segments, r7 = headers per segment.
  a.label("lengths");
  if (fields.protocol) a.load("u8", R1, R10, protocolSlot).store("u8", R10, keySlot + TrafficKeyOffset.protocol, R1);
  a.load("u32", R8, R6, skbLength);
  if (link > 0) a.jumpIf(R8, "<", link, "out").add64(R8, -link);
  a.load("u32", R9, R6, skbGsoSegments)
    .jumpIf(R9, "!=", 0, "segments_known")
    .mov64(R9, 1)
    .label("segments_known")
    .store("u64", R10, valueSlot + directionBase, R9)
    // bytes = length + (segments - 1) * headers
    .mov64(R1, R9).add64(R1, -1).mul64(R1, R7).add64(R1, R8)
    .store("u64", R10, valueSlot + directionBase + 8, R1)
    // payload = length - headers (0 when shorter)
    .mov64(R1, 0)
    .jumpIf(R8, "<=", R7, "payload_known")
    .mov64(R1, R8).sub64(R1, R7)
    .label("payload_known")
    .store("u64", R10, valueSlot + directionBase + 16, R1);
  if (options.perInterface) a.load("u32", R1, R6, skbIfindex).store("u32", R10, keySlot + TrafficKeyOffset.ifindex, R1);
  if (options.processes || fields.cookie) {
    a.mov64(R1, R6).call("get_socket_cookie").store("u64", R10, valueSlot + TrafficValueOffset.cookie, R0);
    if (fields.cookie) a.store("u64", R10, keySlot + TrafficKeyOffset.cookie, R0);
  }

  if (options.times) {
    a.call("ktime_get_ns")
      .store("u64", R10, valueSlot + TrafficValueOffset.firstSeen, R0)
      .store("u64", R10, valueSlot + TrafficValueOffset.lastSeen, R0);
  }

  const addCounts = () => {
    for (const field of [0, 8, 16]) a.load("u64", R1, R10, valueSlot + directionBase + field).atomic("u64", "add", R0, directionBase + field, R1);
    if (options.times) {
      // Per-CPU values: this CPU's slot of a key another CPU created starts at 0.
      const known = a.newLabel("first_known_");
      a.load("u64", R1, R10, valueSlot + TrafficValueOffset.lastSeen).store("u64", R0, TrafficValueOffset.lastSeen, R1)
        .load("u64", R2, R0, TrafficValueOffset.firstSeen).jumpIf(R2, "!=", 0, known)
        .store("u64", R0, TrafficValueOffset.firstSeen, R1)
        .label(known);
    }
    // The socket cookie stays the first one seen: later packets may come from sockets no process created (a
    // TIME_WAIT ACK or a RST goes out through the kernel's control socket). Only a missing one (tc ingress) is filled in.
    if (options.processes || fields.cookie) {
      const skip = a.newLabel("cookie_kept_");
      a.load("u64", R1, R0, TrafficValueOffset.cookie).jumpIf(R1, "!=", 0, skip)
        .load("u64", R1, R10, valueSlot + TrafficValueOffset.cookie).store("u64", R0, TrafficValueOffset.cookie, R1)
        .label(skip);
    }
  };
  const lookup = () => a.loadMapFd(R1, trafficCountsName).mov64(R2, R10).add64(R2, keySlot).call("map_lookup_elem");

  lookup();
  a.jumpIf(R0, "==", 0, "create");
  addCounts();
  a.jump("out");

  a.label("create")
    .loadMapFd(R1, trafficCountsName)
    .mov64(R2, R10).add64(R2, keySlot)
    .mov64(R3, R10).add64(R3, valueSlot)
    .mov64(R4, updateNoExist)
    .call("map_update_elem")
    .jumpIf(R0, "!=", 0, "create_failed");
  addToCounter(a, trafficStatisticsName, TrafficStatistic.created, { stackOffset: -4, skip: "out" });
  a.jump("out");
  // Created meanwhile (by a packet on another CPU or a nested hook): add to it.
  a.label("create_failed");
  lookup();
  a.jumpIf(R0, "==", 0, "lost");
  addCounts();
  a.jump("out");
  a.label("lost");
  addToCounter(a, trafficStatisticsName, TrafficStatistic.createFailed, { stackOffset: -4, skip: "out" });

  a.label("out").return(allow);
  return a.finish();
}

/**
 * A cgroup post_bind4/post_bind6 program recording, for every socket bound
 * to a port, (protocol << 16 | port) → the binding process and command: the
 * owner of sockets accepted on that port later (an accepted socket is not
 * created by a process, so sock_create never sees it). Always allows.
 */
export function portOwnerProgram(): AssembledProgram {
  /** struct bpf_sock fields. */
  const sockProtocol = 12;
  const sockSourcePort = 44;
  const assembler = new Assembler()
    .mov64(R6, R1)
    .load("u32", R7, R6, sockProtocol).leftShift64(R7, 16)
    .load("u32", R1, R6, sockSourcePort).or64(R7, R1)
    .store("u32", R10, -4, R7);
  return emitRecordCurrentProcess(assembler, trafficPortOwnersName, -4).return(1).finish();
}
