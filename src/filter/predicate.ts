import type { ArithmeticOperator } from "./ast.js";
import { argumentError } from "../sys/argument-checks.js";

/**
 * The compiled form of a filter: a tree of tests over packet loads, in the
 * order libpcap evaluates them. Both the reference evaluator and the eBPF code
 * generators consume it. A load past the captured bytes rejects the whole
 * packet (classic BPF semantics), so the order of tests matters.
 */
export type Value =
  | { kind: "constant"; value: number }
  /** Big-endian load of `size` bytes at an absolute packet offset. */
  | { kind: "load"; offset: Value; size: 1 | 2 | 4 }
  /** The packet's length on the wire (`len`). */
  | { kind: "packetLength" }
  /** Linux packet type of the skb (PACKET_HOST 0 ... PACKET_OUTGOING 4); metadata, not packet data. */
  | { kind: "packetType" }
  /** 1 when the skb carries a VLAN tag in its metadata (the kernel stripped it from the data), else 0; metadata. */
  | { kind: "vlanPresent" }
  /** The stripped VLAN tag's TCI (priority, DEI, VLAN id) from the skb metadata; 0 without one. */
  | { kind: "vlanTci" }
  /** A scratch register written by an `assign` predicate earlier on the path (0 before). */
  | { kind: "register"; index: number }
  /** Unsigned 32-bit arithmetic; division or modulo by zero rejects the packet. */
  | { kind: "binary"; operator: ArithmeticOperator; left: Value; right: Value };

export type CompareOperator = "==" | ">" | ">=" | "&";

export type Predicate =
  | { kind: "true" }
  | { kind: "false" }
  | { kind: "and" | "or"; left: Predicate; right: Predicate }
  | { kind: "not"; operand: Predicate }
  /** Unsigned comparison; "&" is true when left & right is not zero (jset). */
  | {
      kind: "compare";
      operator: CompareOperator;
      left: Value;
      right: Value;
      /**
       * "relation" for the comparison of an `expr relop expr`: libpcap computes it as a
       * subtraction, so its optimiser relates it only to other relations, not to protocol tests.
       */
      origin?: "relation";
    }
  /**
   * libpcap's protocol-chain walk from the IPv4 or IPv6 header at `network`:
   * true when `protocol` appears in the next-header chain.
   */
  | { kind: "protochain"; version: 4 | 6; network: Value; protocol: number }
  /** Stores a value in a scratch register; always true (libpcap's geneve/vxlan offset code). */
  | { kind: "assign"; register: number; value: Value };

const predicateKinds = new Set<unknown>(["true", "false", "and", "or", "not", "compare", "protochain", "assign"]);

/** Throws a UsageError naming `name` unless `value` looks like a Predicate (an object with a predicate kind). */
export function expectPredicate(operation: string, name: string, value: unknown): Predicate {
  if (typeof value !== "object" || value === null || !predicateKinds.has((value as { kind?: unknown }).kind)) {
    throw argumentError(operation, name, "a filter predicate (from lowerFilter() or compileFilter().predicate)", value);
  }
  return value as Predicate;
}

export const truePredicate: Predicate = { kind: "true" };
export const falsePredicate: Predicate = { kind: "false" };

export function constant(value: number): Value {
  return { kind: "constant", value: value >>> 0 };
}

/** Adds a constant to an offset, folding constants. */
export function addOffset(base: Value, delta: number): Value {
  if (delta === 0) return base;
  if (base.kind === "constant") return constant(base.value + delta);
  if (base.kind === "binary" && base.operator === "+" && base.right.kind === "constant") {
    return { kind: "binary", operator: "+", left: base.left, right: constant(base.right.value + delta) };
  }
  return { kind: "binary", operator: "+", left: base, right: constant(delta) };
}

export function load(offset: Value, size: 1 | 2 | 4): Value {
  return { kind: "load", offset, size };
}

export function and(left: Predicate, right: Predicate): Predicate {
  return { kind: "and", left, right };
}

export function or(left: Predicate, right: Predicate): Predicate {
  return { kind: "or", left, right };
}

export function not(operand: Predicate): Predicate {
  return { kind: "not", operand };
}

export function compare(operator: CompareOperator, left: Value, right: Value): Predicate {
  return { kind: "compare", operator, left, right };
}

/** `(load & mask) == value`, the mask omitted when it is all ones (libpcap's gen_mcmp). */
export function loadEquals(offset: Value, size: 1 | 2 | 4, value: number, mask?: number): Predicate {
  let loaded = load(offset, size);
  if (mask !== undefined && (mask >>> 0) !== 0xffffffff) loaded = { kind: "binary", operator: "&", left: loaded, right: constant(mask) };
  return compare("==", loaded, constant(value));
}

/** Renders a predicate as text (for tests and `capture -d` comments). */
export function formatPredicate(predicate: Predicate): string {
  expectPredicate("format predicate", "predicate", predicate);
  switch (predicate.kind) {
    case "true":
    case "false":
      return predicate.kind;
    case "and":
    case "or":
      return `(${formatPredicate(predicate.left)} ${predicate.kind} ${formatPredicate(predicate.right)})`;
    case "not":
      return `!${formatPredicate(predicate.operand)}`;
    case "compare":
      return `${formatValue(predicate.left)} ${predicate.operator === "&" ? "&?" : predicate.operator} ${formatValue(predicate.right)}`;
    case "protochain":
      return `protochain${predicate.version}(${formatValue(predicate.network)}, ${predicate.protocol})`;
    case "assign":
      return `(r${predicate.register} := ${formatValue(predicate.value)})`;
  }
}

export function formatValue(value: Value): string {
  switch (value.kind) {
    case "constant":
      return value.value > 9 ? `0x${value.value.toString(16)}` : String(value.value);
    case "load":
      return `pkt[${formatValue(value.offset)}:${value.size}]`;
    case "packetLength":
      return "len";
    case "packetType":
      return "pkttype";
    case "vlanPresent":
      return "vlan_present";
    case "vlanTci":
      return "vlan_tci";
    case "register":
      return `r${value.index}`;
    case "binary":
      return `(${formatValue(value.left)} ${value.operator} ${formatValue(value.right)})`;
  }
}

/**
 * Unsigned 32-bit arithmetic as classic BPF does it: shifts of 32 or more give
 * 0. Division and modulo by zero give 0 here; a packet-time evaluation must
 * check for a zero divisor itself (libpcap rejects the packet then).
 */
export function computeBinary(operator: string, left: number, right: number): number {
  switch (operator) {
    case "+":
      return (left + right) >>> 0;
    case "-":
      return (left - right) >>> 0;
    case "*":
      return Number((BigInt(left) * BigInt(right)) & 0xffffffffn);
    case "/":
      return right === 0 ? 0 : Math.floor(left / right) >>> 0;
    case "%":
      return right === 0 ? 0 : left % right >>> 0;
    case "&":
      return (left & right) >>> 0;
    case "|":
      return (left | right) >>> 0;
    case "^":
      return (left ^ right) >>> 0;
    case "<<":
      return right < 32 ? (left << right) >>> 0 : 0;
    case ">>":
      return right < 32 ? left >>> right : 0;
    default:
      throw new Error(`unknown operator ${operator}`);
  }
}

/** A relation between two unsigned 32-bit values. */
export function compareValues(operator: CompareOperator, left: number, right: number): boolean {
  switch (operator) {
    case "==":
      return left === right;
    case ">":
      return left > right;
    case ">=":
      return left >= right;
    case "&":
      return (left & right) !== 0;
  }
}
