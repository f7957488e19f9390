import type { DecisionTarget } from "./decision-graph.js";
import type { Predicate, Value } from "./predicate.js";
import { compareValues, computeBinary, expectPredicate } from "./predicate.js";
import { argumentError } from "../sys/argument-checks.js";

/** A packet as a filter sees it. */
export interface FilterPacket {
  /** The captured bytes (possibly truncated). */
  data: Uint8Array;
  /** Length on the wire; defaults to the captured length. */
  length?: number;
  /** Linux packet type (0 host ... 4 outgoing), for inbound/outbound on non-cooked link types. */
  packetType?: number;
  /**
   * The TCI of a VLAN tag the kernel stripped into skb metadata (live tc and
   * socket hooks); undefined when the skb carries none. Used only by filters
   * compiled with `packetMetadata`.
   */
  vlanTci?: number;
}

/** Thrown inside the evaluator when the packet must be rejected outright (classic BPF semantics). */
class Reject {
  static readonly instance = new Reject();
}

/**
 * How far a protochain walk goes, in bytes of headers followed: every chain of IPv6
 * extension headers a 64 KiB packet holds, as libpcap. Only a walk that loops through
 * an AH header (whose length replaces the offset) gets further: libpcap loops forever
 * there; netbpf stops as at a load past the end of the packet (reject), in the
 * evaluator, the interpreter and kernel code alike.
 */
export const protochainMaximumBytes = 65536;

/**
 * Evaluates a compiled filter over one packet, as classic BPF would: a load
 * past the captured bytes, or a division by zero, rejects the packet
 * whatever the rest of the expression says.
 */
export function evaluatePredicate(predicate: Predicate, packet: FilterPacket): boolean {
  expectPredicate("evaluate predicate", "predicate", predicate);
  expectFilterPacket("evaluate predicate", packet);
  try {
    return test(predicate, packet, []);
  } catch (error) {
    if (error === Reject.instance) return false;
    throw error;
  }
}

/**
 * Runs a decision graph over one packet: the optimised form that eBPF code is
 * generated from, so its results are what the kernel programs select.
 */
export function evaluateDecisionGraph(root: DecisionTarget, packet: FilterPacket): boolean {
  const registers: number[] = [];
  try {
    let target = root;
    while (target.kind === "node") {
      const test = target.test;
      let outcome: boolean;
      if (test.kind === "assign") {
        registers[test.register] = value(test.value, packet, registers);
        outcome = true;
      } else if (test.kind === "protochain") {
        outcome = protochain(test.version, value(test.network, packet, registers), test.protocol, packet);
      } else {
        const left = value(test.left, packet, registers);
        const right = value(test.right, packet, registers);
        outcome = compareValues(test.operator, left, right);
      }
      target = outcome ? target.whenTrue : target.whenFalse;
    }
    if (target.kind === "accept") return true;
    if (target.kind !== "reject") throw argumentError("evaluate decision graph", "root", "a decision graph (from buildDecisionGraph() or compileFilter().graph)", root);
    return false;
  } catch (error) {
    if (error === Reject.instance) return false;
    // Checked only once something failed: this runs for every packet.
    if (error instanceof TypeError) {
      if (typeof root !== "object" || root === null) throw argumentError("evaluate decision graph", "root", "a decision graph (from buildDecisionGraph() or compileFilter().graph)", root);
      expectFilterPacket("evaluate decision graph", packet);
    }
    throw error;
  }
}

function expectFilterPacket(operation: string, packet: unknown): void {
  if (!((packet as FilterPacket | undefined)?.data instanceof Uint8Array)) throw argumentError(operation, "packet", "a packet ({ data: Uint8Array, length?, packetType?, vlanTci? })", packet);
}


function test(predicate: Predicate, packet: FilterPacket, registers: number[]): boolean {
  switch (predicate.kind) {
    case "true":
      return true;
    case "false":
      return false;
    case "and":
      return test(predicate.left, packet, registers) && test(predicate.right, packet, registers);
    case "or":
      return test(predicate.left, packet, registers) || test(predicate.right, packet, registers);
    case "not":
      return !test(predicate.operand, packet, registers);
    case "compare":
      return compareValues(predicate.operator, value(predicate.left, packet, registers), value(predicate.right, packet, registers));
    case "protochain":
      return protochain(predicate.version, value(predicate.network, packet, registers), predicate.protocol, packet);
    case "assign":
      registers[predicate.register] = value(predicate.value, packet, registers);
      return true;
  }
}

function loadBytes(packet: FilterPacket, offset: number, size: 1 | 2 | 4): number {
  const data = packet.data;
  if (offset + size > data.length) throw Reject.instance;
  if (size === 1) return data[offset]!;
  if (size === 2) return (data[offset]! << 8) | data[offset + 1]!;
  return ((data[offset]! << 24) | (data[offset + 1]! << 16) | (data[offset + 2]! << 8) | data[offset + 3]!) >>> 0;
}

function value(node: Value, packet: FilterPacket, registers: number[]): number {
  switch (node.kind) {
    case "constant":
      return node.value;
    case "load":
      return loadBytes(packet, value(node.offset, packet, registers), node.size);
    case "packetLength":
      return (packet.length ?? packet.data.length) >>> 0;
    case "packetType":
      return packet.packetType ?? 0;
    case "vlanPresent":
      return packet.vlanTci === undefined ? 0 : 1;
    case "vlanTci":
      return (packet.vlanTci ?? 0) & 0xffff;
    case "register":
      return registers[node.index] ?? 0;
    case "binary": {
      const left = value(node.left, packet, registers);
      const right = value(node.right, packet, registers);
      // A zero divisor rejects the packet at run time (constant folding gives 0 instead).
      if (right === 0 && (node.operator === "/" || node.operator === "%")) throw Reject.instance;
      return computeBinary(node.operator, left, right);
    }
  }
}

/**
 * libpcap's protochain loop: follows IPv6 extension headers (hop-by-hop,
 * destination options, routing, fragment) and AH, and for IPv4 only AH.
 * Like libpcap, the AH length replaces the running offset instead of adding to it.
 */
function protochain(version: 4 | 6, network: number, protocol: number, packet: FilterPacket): boolean {
  let next: number;
  let offset: number;
  if (version === 6) {
    next = loadBytes(packet, network + 6, 1);
    offset = 40;
  } else {
    next = loadBytes(packet, network + 9, 1);
    offset = (loadBytes(packet, network, 1) & 0xf) * 4;
  }
  let walked = 0;
  for (;;) {
    if (next === protocol || next === 59) break;
    const extension = version === 6 && (next === 0 || next === 60 || next === 43 || next === 44);
    if (!extension && next !== 51) break;
    if (walked >= protochainMaximumBytes) throw Reject.instance;
    const header = loadBytes(packet, network + offset, 1);
    const length = loadBytes(packet, network + offset + 1, 1);
    const size = extension ? (length + 1) * 8 : (length + 2) * 4;
    walked += size;
    offset = extension ? (offset + size) >>> 0 : size;
    next = header;
  }
  return next === protocol;
}
