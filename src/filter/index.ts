/** netbpf/filter: the filter layer on its own (pure: loads without the FFI or libc). */
export { compileFilter, maximumExpressionLength, type CompiledFilter } from "./compile-filter.js";
export { FilterSyntaxError } from "./filter-syntax-error.js";
export { lowerFilter, type LowerOptions } from "./lower-filter.js";
export { generateFilterProgram, generateFilterSubprogram, type FilterContext, type GenerateFilterOptions, type GeneratedFilter } from "./generate-filter-program.js";
export { formatFilterProgram } from "./format-filter-program.js";
export { parseFilter } from "./parser.js";
export { systemFilterNames, resolveFilterHostNames, type FilterNames, type HostAddresses } from "./filter-names.js";
export { buildDecisionGraph } from "./decision-graph.js";
export { evaluatePredicate, evaluateDecisionGraph, type FilterPacket } from "./evaluate-predicate.js";
export { formatPredicate, type Predicate, type Value } from "./predicate.js";
export type { FilterNode } from "./ast.js";
