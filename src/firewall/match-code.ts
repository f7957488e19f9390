/**
 * Code for "does this packet match the rule?" over the fields packet-fields.ts
 * parsed, plus filter expressions as bpf-to-bpf subprograms (src/filter
 * generates them; they take the context in r1 and keep r6–r9).
 */
import { Assembler, R0, R1, R2, R6, R10 } from "../asm/assembler.js";
import { expectArray, expectInteger, expectObject } from "../sys/argument-checks.js";
import { generateFilterSubprogram } from "../filter/generate-filter-program.js";
import { FieldSlot, type PacketHook } from "./packet-fields.js";
import { compileMatchExpression, type TrafficMatch } from "./traffic-match.js";

/**
 * Checks the rule list a program generator was given: an array of objects,
 * each with an integer slot and a match object (what every generator reads).
 */
export function expectProgramRules<Rule extends { slot: number; match: TrafficMatch }>(operation: string, name: string, rules: unknown): readonly Rule[] {
  expectArray(operation, name, rules);
  (rules as unknown[]).forEach((rule, index) => {
    expectObject(operation, `${name}[${index}]`, rule);
    expectInteger(operation, `${name}[${index}].slot`, (rule as Rule).slot, 0);
    expectObject(operation, `${name}[${index}].match`, (rule as Rule).match);
  });
  return rules as readonly Rule[];
}

/** Collects filter subprograms while the main program is written; append them after its last exit. */
export class FilterSubprograms {
  readonly #hook: PacketHook;
  readonly #parts: Assembler[] = [];
  #count = 0;

  constructor(hook: PacketHook) {
    this.#hook = hook;
  }

  /** Compiles `expression` into a subprogram; returns the label to callLocal. */
  add(expression: string): string {
    const compiled = compileMatchExpression(expression, this.#hook);
    const { assembler, entry } = generateFilterSubprogram(compiled, {
      context: this.#hook === "xdp" ? "xdp" : "skb",
      acceptValue: 1,
      rejectValue: 0,
      labelPrefix: `filter${this.#count++}_`,
    });
    this.#parts.push(assembler);
    return entry;
  }

  appendTo(main: Assembler): void {
    for (const part of this.#parts) main.append(part);
  }
}

/**
 * Emits the checks of `match`; jumps to `fail` at the first one that does
 * not hold and falls through when all hold. Needs the context in r6.
 */
export function emitMatchCheck(a: Assembler, match: TrafficMatch, fail: string, subprograms: FilterSubprograms): void {
  if (match.protocol !== undefined) {
    a.load("u32", R1, R10, FieldSlot.protocol).jumpIf(R1, "!=", match.protocol, fail);
  }
  if (match.ports) {
    const { first, last } = match.ports;
    const inRange = a.newLabel("port_ok_");
    const tryDestination = a.newLabel("port_dst_");
    a.load("u32", R1, R10, FieldSlot.hasPorts).jumpIf(R1, "==", 0, fail)
      .load("u32", R1, R10, FieldSlot.sourcePort)
      .jumpIf(R1, "<", first, tryDestination).jumpIf(R1, "<=", last, inRange)
      .label(tryDestination)
      .load("u32", R2, R10, FieldSlot.destinationPort)
      .jumpIf(R2, "<", first, fail).jumpIf(R2, ">", last, fail)
      .label(inRange);
  }
  if (match.expression !== undefined) {
    const entry = subprograms.add(match.expression);
    a.mov64(R1, R6).callLocal(entry).jumpIf(R0, "==", 0, fail);
  }
}
