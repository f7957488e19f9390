import { evaluatePredicate, type FilterPacket } from "./evaluatePredicate.js";
import { lowerFilter, type LowerOptions } from "./lowerFilter.js";
import { parseFilter } from "./parser.js";
import type { Predicate } from "./predicate.js";

/** A filter expression compiled for one link type. */
export interface CompiledFilter {
  expression: string;
  linkType: number;
  predicate: Predicate;
  /** Evaluates the filter over a packet in user space (reference semantics). */
  matches(packet: FilterPacket | Uint8Array): boolean;
}

/**
 * Parses, checks and compiles a pcap-filter(7) expression. Throws a
 * FilterSyntaxError (position, caret rendering, what was expected) for an
 * invalid expression; nothing is loaded into the kernel.
 */
export function compileFilter(expression: string, options: LowerOptions): CompiledFilter {
  const ast = parseFilter(expression);
  const predicate = lowerFilter(expression, ast, options);
  return {
    expression,
    linkType: options.linkType,
    predicate,
    matches(packet) {
      return evaluatePredicate(predicate, packet instanceof Uint8Array ? { data: packet } : packet);
    },
  };
}
