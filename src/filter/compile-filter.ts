import { buildDecisionGraph, ConstantDivisionByZero, type DecisionTarget } from "./decision-graph.js";
import { evaluateDecisionGraph, type FilterPacket } from "./evaluate-predicate.js";
import { FilterSyntaxError } from "./filter-syntax-error.js";
import { lowerFilter, type LowerOptions } from "./lower-filter.js";
import { parseFilter } from "./parser.js";
import { expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import type { Predicate } from "./predicate.js";

/** A filter expression compiled for one link type. */
export interface CompiledFilter {
  expression: string;
  linkType: number;
  predicate: Predicate;
  /** The optimised decision graph code is generated from. */
  graph: DecisionTarget;
  /** Evaluates the filter over a packet in user space (reference semantics). */
  matches(packet: FilterPacket | Uint8Array): boolean;
}

/**
 * Parses, checks and compiles a pcap-filter(7) expression. Throws a
 * FilterSyntaxError (position, caret rendering, what was expected) for an
 * invalid expression; nothing is loaded into the kernel. Without options the
 * packets are Ethernet frames (LINKTYPE_ETHERNET, as on a live interface).
 */
export function compileFilter(expression: string, options: LowerOptions = { linkType: 1 }): CompiledFilter {
  expectString("compile filter", "the expression", expression);
  expectObject("compile filter", "the options", options);
  expectInteger("compile filter", "options.linkType", options.linkType, 0, 0xffffffff);
  if (expression.length > maximumExpressionLength) {
    throw new FilterSyntaxError(expression.slice(0, 200), { start: 0, end: 1 }, `expression is ${expression.length} characters long`, `at most ${maximumExpressionLength}`);
  }
  try {
    return compileChecked(expression, options);
  } catch (error) {
    if (error instanceof RangeError) {
      throw new FilterSyntaxError(expression.slice(0, 200), { start: 0, end: 1 }, "expression too complex to compile", "fewer primitives or less nesting");
    }
    throw error;
  }
}

/** Longest expression accepted. */
export const maximumExpressionLength = 16384;

function compileChecked(expression: string, options: LowerOptions): CompiledFilter {
  const ast = parseFilter(expression);
  const predicate = lowerFilter(expression, ast, options);
  let graph: DecisionTarget;
  try {
    graph = buildDecisionGraph(predicate);
  } catch (error) {
    if (error instanceof ConstantDivisionByZero) throw new FilterSyntaxError(expression, { start: 0, end: expression.length }, error.message, "a non-zero divisor");
    throw error;
  }
  if (graph.kind === "reject" && ast !== undefined) {
    throw new FilterSyntaxError(expression, { start: 0, end: expression.length }, "expression rejects all packets", `an expression that can match on link type ${options.linkType}`);
  }
  return {
    expression,
    linkType: options.linkType,
    predicate,
    graph,
    matches(packet) {
      return evaluateDecisionGraph(graph, packet instanceof Uint8Array ? { data: packet } : packet);
    },
  };
}
