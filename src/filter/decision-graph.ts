import type { CompareOperator, Predicate, Value } from "./predicate.js";
import { compareValues, computeBinary, constant, formatValue } from "./predicate.js";

/** A test the graph branches on: an unsigned comparison or a protochain walk. */
export type DecisionTest =
  | { kind: "compare"; operator: CompareOperator; left: Value; right: Value; origin?: "relation" }
  | Extract<Predicate, { kind: "protochain" }>
  /** Stores a value in a scratch register, then always continues with whenTrue (= whenFalse). */
  | Extract<Predicate, { kind: "assign" }>;

export type DecisionTarget = { kind: "accept" } | { kind: "reject" } | DecisionNode;

export interface DecisionNode {
  kind: "node";
  id: number;
  test: DecisionTest;
  whenTrue: DecisionTarget;
  whenFalse: DecisionTarget;
}

export const accept: DecisionTarget = { kind: "accept" };
export const reject: DecisionTarget = { kind: "reject" };

/** A constant divisor of zero appeared after folding constants (libpcap's optimizer rejects it). */
export class ConstantDivisionByZero extends Error {}

/**
 * Folds constants in a value the way libpcap's optimizer does: operations on
 * two constants are computed, `x & 0` and `x * 0` become 0 (the loads of x are
 * dropped), and `x + 0`, `x | 0`, `x ^ 0`, shifts by 0 become x; likewise with a
 * zero on the left (`0 * x` is 0, `0 + x` is x).
 */
export function foldValue(value: Value): Value {
  if (value.kind === "load") return { kind: "load", offset: foldValue(value.offset), size: value.size };
  if (value.kind !== "binary") return value;
  const left = foldValue(value.left);
  const right = foldValue(value.right);
  if (right.kind === "constant") {
    const k = right.value;
    if (k === 0) {
      switch (value.operator) {
        case "+":
        case "|":
        case "^":
        case "<<":
        case ">>":
          return left;
        case "*":
        case "&":
          return constant(0);
        case "/":
        case "%":
          throw new ConstantDivisionByZero(value.operator === "/" ? "division by zero" : "modulus by zero");
      }
    }
    if (left.kind === "constant") return constant(computeBinary(value.operator, left.value, k));
  }
  if (left.kind === "constant" && left.value === 0) {
    // libpcap's opt_stmt with a constant zero in A: `0 + x`, `0 | x`, `0 ^ x` are x; `0 * x`, `0 / x`,
    // `0 % x`, `0 & x`, `0 << x`, `0 >> x` are 0 (x's loads dropped, a zero divisor no longer rejects).
    switch (value.operator) {
      case "+":
      case "|":
      case "^":
        return right;
      case "-":
        break;
      default:
        return constant(0);
    }
  }
  return { kind: "binary", operator: value.operator, left, right };
}


/**
 * Turns a predicate into a decision graph (libpcap's blocks and jumps), in
 * the same test order, then optimises it like libpcap: tests whose outcome is
 * known from the tests on every path into them are bypassed, and tests whose
 * two branches lead to the same place are removed (their loads with them).
 */
export function buildDecisionGraph(predicate: Predicate, options: { optimize?: boolean } = {}): DecisionTarget {
  // libpcap turns its optimiser off for protochain (a loop) and geneve (a bare jump); so do we,
  // since the optimiser removes loads and so changes which truncated packets are rejected.
  const optimize = options.optimize ?? !disablesOptimizer(predicate);
  const fold = optimize ? foldValue : (value: Value) => value;
  let nextId = 0;
  const build = (p: Predicate, onTrue: DecisionTarget, onFalse: DecisionTarget): DecisionTarget => {
    switch (p.kind) {
      case "true":
        return onTrue;
      case "false":
        return onFalse;
      case "and":
        return build(p.left, build(p.right, onTrue, onFalse), onFalse);
      case "or":
        return build(p.left, onTrue, build(p.right, onTrue, onFalse));
      case "not":
        return build(p.operand, onFalse, onTrue);
      case "compare": {
        const left = fold(p.left);
        const right = fold(p.right);
        if (optimize && left.kind === "constant" && right.kind === "constant") return compareValues(p.operator, left.value, right.value) ? onTrue : onFalse;
        const test: DecisionTest = p.origin ? { kind: "compare", operator: p.operator, left, right, origin: p.origin } : { kind: "compare", operator: p.operator, left, right };
        return { kind: "node", id: nextId++, test, whenTrue: onTrue, whenFalse: onFalse };
      }
      case "protochain":
        return { kind: "node", id: nextId++, test: { ...p, network: fold(p.network) }, whenTrue: onTrue, whenFalse: onFalse };
      case "assign":
        return { kind: "node", id: nextId++, test: p, whenTrue: onTrue, whenFalse: onTrue };
    }
  };
  let root = build(predicate, accept, reject);
  if (!optimize) return root;
  for (let round = 0; round < 50; round++) {
    const changed = optimizeOnce(root);
    root = changed.root;
    if (!changed.changed) break;
  }
  return root;
}

interface Facts {
  /** Known value of an expression (from an == test that held). */
  equals: Map<string, number>;
  /** Known outcomes of tests. */
  outcomes: Map<string, boolean>;
}

function disablesOptimizer(predicate: Predicate): boolean {
  switch (predicate.kind) {
    case "and":
    case "or":
      return disablesOptimizer(predicate.left) || disablesOptimizer(predicate.right);
    case "not":
      return disablesOptimizer(predicate.operand);
    case "assign":
    case "protochain":
      return true;
    default:
      return false;
  }
}

interface TestKeys {
  value: string;
  test: string;
  constant: number | undefined;
}

const keyCache = new WeakMap<DecisionTest, TestKeys>();

function testKeys(test: DecisionTest): TestKeys {
  let keys = keyCache.get(test);
  if (!keys) {
    keys = computeTestKeys(test);
    keyCache.set(test, keys);
  }
  return keys;
}

function computeTestKeys(test: DecisionTest): TestKeys {
  if (test.kind === "assign") {
    const key = `assign r${test.register} ${formatValue(test.value)}`;
    return { value: key, test: key, constant: undefined };
  }
  if (test.kind === "protochain") {
    const key = `protochain${test.version}(${formatValue(test.network)},${test.protocol})`;
    return { value: key, test: key, constant: undefined };
  }
  const value = (test.origin === "relation" ? "relation " : "") + formatValue(test.left);
  const right = test.right.kind === "constant" ? test.right.value : undefined;
  return { value, test: `${value} ${test.operator} ${formatValue(test.right)}`, constant: right };
}

function decide(test: DecisionTest, facts: Facts): boolean | undefined {
  const keys = testKeys(test);
  const known = facts.outcomes.get(keys.test);
  if (known !== undefined) return known;
  if (test.kind === "compare" && keys.constant !== undefined) {
    const value = facts.equals.get(keys.value);
    if (value !== undefined) return compareValues(test.operator, value, keys.constant);
  }
  return undefined;
}

/** Facts kept per edge: the most recent tests only, so long filters stay linear. */
const maximumFacts = 64;

function extend(facts: Facts, test: DecisionTest, outcome: boolean): Facts {
  const keys = testKeys(test);
  const result: Facts = { equals: new Map(facts.equals), outcomes: new Map(facts.outcomes) };
  if (result.outcomes.size >= maximumFacts) result.outcomes.delete(result.outcomes.keys().next().value!);
  if (result.equals.size >= maximumFacts) result.equals.delete(result.equals.keys().next().value!);
  result.outcomes.set(keys.test, outcome);
  if (test.kind === "compare" && test.operator === "==" && outcome && keys.constant !== undefined) result.equals.set(keys.value, keys.constant);
  return result;
}

function intersect(a: Facts, b: Facts): Facts {
  const equals = new Map<string, number>();
  for (const [k, v] of a.equals) if (b.equals.get(k) === v) equals.set(k, v);
  const outcomes = new Map<string, boolean>();
  for (const [k, v] of a.outcomes) if (b.outcomes.get(k) === v) outcomes.set(k, v);
  return { equals, outcomes };
}

/** Nodes reachable from the root, parents before children. */
export function topologicalNodes(root: DecisionTarget): DecisionNode[] {
  const order: DecisionNode[] = [];
  if (root.kind !== "node") return order;
  const seen = new Set<DecisionNode>([root]);
  // Iterative depth-first post-order (long filters make deep graphs).
  const stack: { node: DecisionNode; state: 0 | 1 | 2 }[] = [{ node: root, state: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.state === 2) {
      order.push(top.node);
      stack.pop();
      continue;
    }
    const child = top.state === 0 ? top.node.whenTrue : top.node.whenFalse;
    top.state = top.state === 0 ? 1 : 2;
    if (child.kind === "node" && !seen.has(child)) {
      seen.add(child);
      stack.push({ node: child, state: 0 });
    }
  }
  return order.reverse();
}

function optimizeOnce(root: DecisionTarget): { root: DecisionTarget; changed: boolean } {
  let changed = false;
  // Remove tests whose branches agree.
  const collapse = (target: DecisionTarget): DecisionTarget => {
    while (target.kind === "node" && target.whenTrue === target.whenFalse) {
      target = target.whenTrue;
      changed = true;
    }
    return target;
  };
  root = collapse(root);
  for (const node of topologicalNodes(root)) {
    node.whenTrue = collapse(node.whenTrue);
    node.whenFalse = collapse(node.whenFalse);
  }
  // Thread jumps through tests decided by what every path into them has established.
  const nodes = topologicalNodes(root);
  const factsAt = new Map<DecisionNode, Facts>();
  if (root.kind === "node") factsAt.set(root, { equals: new Map(), outcomes: new Map() });
  for (const node of nodes) {
    const facts = factsAt.get(node) ?? { equals: new Map(), outcomes: new Map() };
    for (const branch of [true, false]) {
      const edgeFacts = extend(facts, node.test, branch);
      let target = branch ? node.whenTrue : node.whenFalse;
      for (;;) {
        if (target.kind !== "node") break;
        const outcome = decide(target.test, edgeFacts);
        if (outcome === undefined) break;
        target = outcome ? target.whenTrue : target.whenFalse;
        changed = true;
      }
      if (branch) node.whenTrue = target;
      else node.whenFalse = target;
      if (target.kind === "node") {
        const existing = factsAt.get(target);
        factsAt.set(target, existing ? intersect(existing, edgeFacts) : edgeFacts);
      }
    }
  }
  return { root, changed };
}
