/**
 * A tracepoint program on sock:inet_sock_set_state that sends every TCP
 * state change to a ring buffer. Field offsets come from the running
 * kernel's tracepoint format, not from constants.
 */
import { Assembler, R0, R1, R2, R3, R4, R6, R10, type AssembledProgram } from "../asm/assembler.js";
import { addToCounter } from "./add-to-counter.js";
import { readTracepointFormat, requireField, type TracepointFormat } from "../sys/tracepoint-format.js";

export const tcpStateRingName = "tcp_events";
export const tcpStateLostName = "tcp_lost";

/** Bytes of one event: an 8-byte timestamp, then the tracepoint record from its first own field on. */
export interface TcpStateLayout {
  format: TracepointFormat;
  /** Offset in the record of the first byte copied (after the common_* fields). */
  copyStart: number;
  /** Bytes copied from the record (a multiple of 8). */
  copyLength: number;
  eventSize: number;
}

export function tcpStateLayout(format = readTracepointFormat("sock", "inet_sock_set_state")): TcpStateLayout {
  for (const field of ["oldstate", "newstate", "sport", "dport", "family", "protocol", "saddr", "daddr", "saddr_v6", "daddr_v6"]) requireField(format, field);
  const copyStart = 8; // after common_type, common_flags, common_preempt_count, common_pid
  const copyLength = Math.ceil((format.size - copyStart) / 8) * 8;
  return { format, copyStart, copyLength, eventSize: 8 + copyLength };
}

export function tcpStateProgram(layout: TcpStateLayout): AssembledProgram {
  const stackBase = -layout.eventSize;
  const assembler = new Assembler().mov64(R6, R1);
  assembler.call("ktime_get_ns").store("u64", R10, stackBase, R0);
  // Copy the record 8 bytes at a time; the last load may read past the record's
  // end only within the tracepoint's buffer, which the verifier bounds.
  for (let offset = 0; offset < layout.copyLength; offset += 8) {
    const size = Math.min(8, layout.format.size - layout.copyStart - offset);
    const type = size >= 8 ? "u64" : size >= 4 ? "u32" : size >= 2 ? "u16" : "u8";
    assembler.load(type, R1, R6, layout.copyStart + offset).store("u64", R10, stackBase + 8 + offset, R1);
  }
  assembler
    .loadMapFd(R1, tcpStateRingName)
    .mov64(R2, R10).add64(R2, stackBase)
    .mov64(R3, layout.eventSize)
    .mov64(R4, 0)
    .call("ringbuf_output")
    .jumpIf(R0, "==", 0, "out");
  // The ring was full: count the event as lost.
  addToCounter(assembler, tcpStateLostName, 0, { stackOffset: stackBase - 4, skip: "out" });
  return assembler.label("out").return(0).finish();
}

export interface TcpStateEvent {
  /** Nanoseconds since boot (CLOCK_MONOTONIC). */
  timestamp: bigint;
  family: "ipv4" | "ipv6";
  protocol: number;
  oldState: string;
  newState: string;
  source: string;
  destination: string;
  sourcePort: number;
  destinationPort: number;
}

export const tcpStateNames: Record<number, string> = {
  1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
  7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
};

function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::").replace(/:{3,}/, "::");
}

export function decodeTcpStateEvent(layout: TcpStateLayout, event: Buffer): TcpStateEvent {
  const at = (field: string) => 8 + requireField(layout.format, field).offset - layout.copyStart;
  const family = event.readUInt16LE(at("family")) === 10 ? "ipv6" : "ipv4";
  const address = (field: string) =>
    family === "ipv4" ? [...event.subarray(at(field), at(field) + 4)].join(".") : ipv6Text(event.subarray(at(`${field}_v6`), at(`${field}_v6`) + 16));
  const state = (field: string) => tcpStateNames[event.readInt32LE(at(field))] ?? String(event.readInt32LE(at(field)));
  return {
    timestamp: event.readBigUInt64LE(0),
    family,
    protocol: event.readUInt16LE(at("protocol")),
    oldState: state("oldstate"),
    newState: state("newstate"),
    source: address("saddr"),
    destination: address("daddr"),
    sourcePort: event.readUInt16LE(at("sport")),
    destinationPort: event.readUInt16LE(at("dport")),
  };
}
