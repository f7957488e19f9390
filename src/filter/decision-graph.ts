import type { CompareOperator, Predicate, Value } from "./predicate.js";
import { compareValues, computeBinary, constant, expectPredicate, formatValue } from "./predicate.js";
import { expectObject } from "../sys/argument-checks.js";

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
  expectPredicate("build decision graph", "predicate", predicate);
  expectObject("build decision graph", "options", options);
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
  const keys = new Keys();
  for (let round = 0; round < 50; round++) {
    const changed = optimizeOnce(root, keys);
    root = changed.root;
    if (!changed.changed) break;
  }
  return root;
}

/**
 * What is known on a path: the outcomes of the most recent tests and the known values of
 * expressions (from == tests that held). Tests and values are numbered (see Keys), so a set of
 * facts is two short arrays, cheap to copy onto every edge of every pass.
 */
interface Facts {
  /** Test number * 2 + outcome (1 true, 0 false), oldest first. */
  outcomes: readonly number[];
  /** Pairs of value number and its known constant, oldest first. */
  equals: readonly number[];
}

const noFacts: Facts = { outcomes: [], equals: [] };

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
  /** Number of the tested expression (equal numbers, equal text). */
  value: number;
  /** Number of the whole test. */
  test: number;
  constant: number | undefined;
}

/** Numbers the tests of one graph by their text, so facts compare numbers, not strings. */
class Keys {
  private readonly numbers = new Map<string, number>();
  private readonly byTest = new WeakMap<DecisionTest, TestKeys>();

  of(test: DecisionTest): TestKeys {
    let keys = this.byTest.get(test);
    if (!keys) {
      const text = testText(test);
      keys = { value: this.number(text.value), test: this.number(text.test), constant: text.constant };
      this.byTest.set(test, keys);
    }
    return keys;
  }

  private number(text: string): number {
    let number = this.numbers.get(text);
    if (number === undefined) {
      number = this.numbers.size;
      this.numbers.set(text, number);
    }
    return number;
  }
}

function testText(test: DecisionTest): { value: string; test: string; constant: number | undefined } {
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

function decide(keys: TestKeys, test: DecisionTest, facts: Facts): boolean | undefined {
  const { outcomes, equals } = facts;
  for (let index = outcomes.length - 1; index >= 0; index--) {
    if (outcomes[index]! >> 1 === keys.test) return (outcomes[index]! & 1) === 1;
  }
  if (test.kind === "compare" && keys.constant !== undefined) {
    for (let index = equals.length - 2; index >= 0; index -= 2) {
      if (equals[index] === keys.value) return compareValues(test.operator, equals[index + 1]!, keys.constant);
    }
  }
  return undefined;
}

/** Facts kept per edge: the most recent tests only, so long filters stay linear. */
const maximumFacts = 64;

function extend(facts: Facts, keys: TestKeys, test: DecisionTest, outcome: boolean): Facts {
  const outcomes = facts.outcomes.slice(facts.outcomes.length >= maximumFacts ? 1 : 0);
  outcomes.push(keys.test * 2 + (outcome ? 1 : 0));
  let equals = facts.equals;
  if (test.kind === "compare" && test.operator === "==" && outcome && keys.constant !== undefined) {
    const copy = equals.slice(equals.length >= 2 * maximumFacts ? 2 : 0);
    copy.push(keys.value, keys.constant);
    equals = copy;
  }
  return { outcomes, equals };
}

function intersect(a: Facts, b: Facts): Facts {
  if (a === b) return a;
  const outcomes = new Set(b.outcomes);
  const equals = new Map<number, number>();
  for (let index = 0; index < b.equals.length; index += 2) equals.set(b.equals[index]!, b.equals[index + 1]!);
  const keptEquals: number[] = [];
  for (let index = 0; index < a.equals.length; index += 2) {
    if (equals.get(a.equals[index]!) === a.equals[index + 1]) keptEquals.push(a.equals[index]!, a.equals[index + 1]!);
  }
  return { outcomes: a.outcomes.filter((outcome) => outcomes.has(outcome)), equals: keptEquals };
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

function optimizeOnce(root: DecisionTarget, keys: Keys): { root: DecisionTarget; changed: boolean } {
  let changed = false;
  // Tests found redundant in this pass (both branches lead to the same place), and where to go instead.
  const bypass = new Map<DecisionNode, DecisionTarget>();
  const resolve = (target: DecisionTarget): DecisionTarget => {
    while (target.kind === "node") {
      if (target.whenTrue === target.whenFalse) target = target.whenTrue;
      else {
        const next = bypass.get(target);
        if (next === undefined) break;
        target = next;
      }
      changed = true;
    }
    return target;
  };
  root = resolve(root);
  // Thread jumps through tests decided by what every path into them has established. Parents come
  // before children, so a test whose branches end up agreeing is bypassed in this same pass, and
  // what its parents established flows on to its successor.
  const factsAt = new Map<DecisionNode, Facts>();
  if (root.kind === "node") factsAt.set(root, noFacts);
  const addFacts = (target: DecisionTarget, facts: Facts) => {
    if (target.kind !== "node") return;
    const existing = factsAt.get(target);
    factsAt.set(target, existing ? intersect(existing, facts) : facts);
  };
  for (const node of topologicalNodes(root)) {
    // A node no threaded edge reached is no longer reachable: skip it (walking on from it would
    // cost a pass over the rest of the graph for nothing).
    const facts = factsAt.get(node);
    if (!facts) continue;
    const nodeKeys = keys.of(node.test);
    const edgeFacts = [extend(facts, nodeKeys, node.test, true), extend(facts, nodeKeys, node.test, false)] as const;
    const targets = [node.whenTrue, node.whenFalse].map((start, index) => {
      let target = resolve(start);
      for (;;) {
        if (target.kind !== "node") break;
        const outcome = decide(keys.of(target.test), target.test, edgeFacts[index]!);
        if (outcome === undefined) break;
        target = resolve(outcome ? target.whenTrue : target.whenFalse);
        changed = true;
      }
      return target;
    });
    node.whenTrue = targets[0]!;
    node.whenFalse = targets[1]!;
    if (node.whenTrue === node.whenFalse) {
      bypass.set(node, node.whenTrue);
      addFacts(node.whenTrue, facts);
      changed = true;
    } else {
      addFacts(node.whenTrue, edgeFacts[0]);
      addFacts(node.whenFalse, edgeFacts[1]);
    }
  }
  // Children first, so that a test whose branches come to agree when its successors are
  // bypassed is itself bypassed in this pass (a chain of them would otherwise take a pass each).
  for (const node of topologicalNodes(root).reverse()) {
    node.whenTrue = resolve(node.whenTrue);
    node.whenFalse = resolve(node.whenFalse);
  }
  return { root: resolve(root), changed };
}
